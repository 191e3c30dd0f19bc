//! Tests of the agent's pieces that need no server: escalation decisions and prompt regions.

#[cfg(test)]
mod escalation {
    use tandem_agent::edit::escalation;

    #[test]
    fn spot_edits_stay_live_and_broad_work_goes_deep() {
        assert_eq!(
            escalation("make answer return 42", &["src/lib.rs".into()]),
            None
        );
        let files: Vec<String> = ["src/a.rs", "src/b.rs", "src/c.rs"]
            .map(String::from)
            .to_vec();
        let reason = escalation(
            "rename parse to parse_all in src/a.rs, src/b.rs and src/c.rs",
            &files,
        );
        assert!(
            reason.as_deref().is_some_and(|r| r.contains("multi-file")),
            "{reason:?}"
        );
        let reason = escalation(
            "refactor the config loader into a module with its own error type",
            &["src/config.rs".into()],
        );
        assert!(reason.is_some(), "a refactor goes deep");
    }
}
