//! Tests for rule conditions, TOML parsing, reasons and validation.

use pretty_assertions::assert_eq;
use tandem_protocol::{ChatRequest, Message, ReasoningEffort, Role};

use crate::{
    Condition, Error, Features, RuleConfig, RuleTable, SessionFacts, TaskClass, default_rules,
    extract,
};

fn base() -> Features {
    let req = ChatRequest::new("auto", vec![Message::text(Role::User, "hello")]);
    extract(&req, &SessionFacts::default())
}

fn tiers() -> Vec<String> {
    vec!["live".to_owned(), "deep".to_owned()]
}

fn parse_rule(when: &str) -> RuleConfig {
    toml::from_str(&format!("name = \"r\"\nwhen = {when}\ntier = \"deep\"\n")).unwrap()
}

/// Whether the rule `when = <when>` matches `f`, and its reason when it does.
#[track_caller]
fn check(when: &str, f: &Features, expect: Option<&str>) {
    let table = RuleTable::new(&[parse_rule(when)], &tiers()).unwrap();
    let reason = table.first_match(f).map(|r| r.reason(f));
    assert_eq!(reason.as_deref(), expect, "when = {when}");
}

#[test]
fn each_condition() {
    let f = base();
    let with = |edit: &dyn Fn(&mut Features)| {
        let mut f = base();
        edit(&mut f);
        f
    };
    let big = with(&|f| f.prompt_tokens = 50_000);
    check("{ prompt_tokens_above = 48000 }", &f, None);
    check(
        "{ prompt_tokens_above = 48000 }",
        &big,
        Some("rule:r prompt_tokens=50000>48000"),
    );
    check("{ prompt_tokens_above = 50000 }", &big, None);

    let long = with(&|f| f.last_user_tokens = 1001);
    check(
        "{ last_user_tokens_above = 1000 }",
        &long,
        Some("rule:r last_user_tokens=1001>1000"),
    );
    check("{ last_user_tokens_above = 1000 }", &f, None);

    let chatty = with(&|f| {
        f.turns = 5;
        f.tools = 30;
    });
    check("{ turns_above = 4 }", &chatty, Some("rule:r turns=5>4"));
    check("{ turns_above = 5 }", &chatty, None);
    check("{ tools_above = 20 }", &chatty, Some("rule:r tools=30>20"));

    let high = with(&|f| f.reasoning_effort = Some(ReasoningEffort::High));
    let low = with(&|f| f.reasoning_effort = Some(ReasoningEffort::Low));
    check(
        "{ reasoning_effort_at_least = \"medium\" }",
        &high,
        Some("rule:r reasoning_effort=high>=medium"),
    );
    check("{ reasoning_effort_at_least = \"medium\" }", &low, None);
    check("{ reasoning_effort_at_least = \"minimal\" }", &f, None);

    let files = with(&|f| f.files_named = 3);
    check(
        "{ files_named_at_least = 3 }",
        &files,
        Some("rule:r files_named=3>=3"),
    );
    check("{ files_named_at_most = 2 }", &files, None);
    check(
        "{ files_named_at_most = 3 }",
        &files,
        Some("rule:r files_named=3<=3"),
    );

    let rename = with(&|f| f.task_class = TaskClass::Rename);
    check(
        "{ task_class_in = [\"rename\", \"docs\"] }",
        &rename,
        Some("rule:r task_class=rename in[rename,docs]"),
    );
    check("{ task_class_in = [\"fix\"] }", &rename, None);

    let verbs = with(&|f| {
        f.deep_verbs = 2;
        f.live_verbs = 1;
    });
    check(
        "{ deep_verbs_at_least = 2 }",
        &verbs,
        Some("rule:r deep_verbs=2>=2"),
    );
    check("{ deep_verbs_at_least = 3 }", &verbs, None);
    check(
        "{ live_verbs_at_least = 1 }",
        &verbs,
        Some("rule:r live_verbs=1>=1"),
    );

    let red = with(&|f| {
        f.tool_errors = 2;
        f.trailing_tool_error = true;
    });
    check(
        "{ tool_errors_at_least = 2 }",
        &red,
        Some("rule:r tool_errors=2>=2"),
    );
    check(
        "{ trailing_tool_error = true }",
        &red,
        Some("rule:r trailing_tool_error=true==true"),
    );
    check("{ trailing_tool_error = true }", &f, None);
    check(
        "{ trailing_tool_error = false }",
        &f,
        Some("rule:r trailing_tool_error=false==false"),
    );

    let session = with(&|f| {
        f.interrupts = 1;
        f.steers = 2;
        f.prior_failures = 1;
        f.retries = 3;
        f.escalated = true;
    });
    check(
        "{ interrupts_at_least = 1 }",
        &session,
        Some("rule:r interrupts=1>=1"),
    );
    check("{ interrupts_at_least = 2 }", &session, None);
    check(
        "{ steers_at_least = 2 }",
        &session,
        Some("rule:r steers=2>=2"),
    );
    check(
        "{ prior_failures_at_least = 1 }",
        &session,
        Some("rule:r prior_failures=1>=1"),
    );
    check("{ prior_failures_at_least = 1 }", &f, None);
    check(
        "{ retries_at_least = 3 }",
        &session,
        Some("rule:r retries=3>=3"),
    );
    check(
        "{ escalated = true }",
        &session,
        Some("rule:r escalated=true==true"),
    );
    check("{ escalated = true }", &f, None);
}

#[test]
fn all_keys_must_hold() {
    let mut f = base();
    f.task_class = TaskClass::Rename;
    f.files_named = 1;
    let when = "{ task_class_in = [\"rename\", \"docs\"], files_named_at_most = 1 }";
    check(
        when,
        &f,
        Some("rule:r task_class=rename in[rename,docs] files_named=1<=1"),
    );
    f.files_named = 2;
    check(when, &f, None);
    // An empty condition matches everything.
    check("{}", &f, Some("rule:r"));
}

#[test]
fn first_match_wins() {
    let rules: Vec<RuleConfig> = toml::from_str::<toml::Table>(
        r#"
[[rules]]
name = "a"
when = { files_named_at_least = 5 }
tier = "deep"
[[rules]]
name = "b"
when = { files_named_at_least = 1 }
tier = "live"
[[rules]]
name = "c"
when = {}
tier = "deep"
"#,
    )
    .unwrap()["rules"]
        .clone()
        .try_into()
        .unwrap();
    let table = RuleTable::new(&rules, &tiers()).unwrap();
    let mut f = base();
    let pick = |f: &Features| {
        table
            .first_match(f)
            .map(|r| (r.name().to_owned(), r.tier().to_owned()))
    };
    f.files_named = 6;
    assert_eq!(pick(&f), Some(("a".into(), "deep".into())));
    f.files_named = 2;
    assert_eq!(pick(&f), Some(("b".into(), "live".into())));
    f.files_named = 0;
    assert_eq!(pick(&f), Some(("c".into(), "deep".into())));
}

#[test]
fn unknown_keys_are_refused() {
    let err = toml::from_str::<RuleConfig>(
        "name = \"r\"\nwhen = { prompt_tokens_abov = 1 }\ntier = \"deep\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("prompt_tokens_abov"), "{err}");
    let err = toml::from_str::<RuleConfig>("name = \"r\"\nwhen = {}\ntier = \"deep\"\nx = 1\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field"), "{err}");
    let err = toml::from_str::<RuleConfig>(
        "name = \"r\"\nwhen = { task_class_in = [\"renames\"] }\ntier = \"deep\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("renames"), "{err}");
}

#[track_caller]
fn check_invalid(rules: &[RuleConfig], expect: &str) {
    let err = RuleTable::new(rules, &tiers()).unwrap_err().to_string();
    assert_eq!(err, expect);
}

fn named(name: &str, tier: &str) -> RuleConfig {
    RuleConfig {
        name: name.to_owned(),
        when: Condition::default(),
        tier: tier.to_owned(),
    }
}

#[test]
fn validation() {
    check_invalid(
        &[named("ok", "deep"), named("to-gpu", "gpu")],
        "rule `to-gpu` names unknown tier `gpu` (known tiers: live, deep)",
    );
    assert!(matches!(
        RuleTable::new(&[named("x", "gpu")], &tiers()),
        Err(Error::UnknownTier { .. })
    ));
    check_invalid(
        &[named("ok", "deep"), named("", "deep")],
        "invalid router config: rule #2 has an empty name",
    );
    check_invalid(
        &[named("a", "deep"), named("a", "live")],
        "invalid router config: duplicate rule name `a`",
    );
    check_invalid(
        &[named("a b", "deep")],
        "invalid router config: rule name `a b` may only hold ASCII letters, digits, `-`, `_` and `.`",
    );
    let mut empty_classes = named("e", "deep");
    empty_classes.when.task_class_in = Some(Vec::new());
    check_invalid(
        &[empty_classes],
        "invalid router config: rule `e` has an empty task_class_in, which never matches",
    );
    let mut contradiction = named("c", "deep");
    contradiction.when.files_named_at_least = Some(3);
    contradiction.when.files_named_at_most = Some(1);
    check_invalid(
        &[contradiction],
        "invalid router config: rule `c` can never match: files_named_at_least 3 > files_named_at_most 1",
    );
}

#[test]
fn default_rules_are_valid_and_round_trip_through_toml() {
    let rules = default_rules();
    RuleTable::new(&rules, &tiers()).unwrap();
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Doc {
        rules: Vec<RuleConfig>,
    }
    let text = toml::to_string(&Doc {
        rules: rules.clone(),
    })
    .unwrap();
    let back: Doc = toml::from_str(&text).unwrap();
    assert_eq!(back.rules, rules);
    insta::assert_snapshot!(text);
}
