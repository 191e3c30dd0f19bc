//! `tandem keys` and `tandem policy` on a scratch state directory.

use std::process::Command;

fn tandem(args: &[&str], dir: &std::path::Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(args)
        .current_dir(dir)
        .env_remove("TANDEM_CONFIG")
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn keys_create_list_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = tandem(
        &[
            "keys",
            "create",
            "--user",
            "alice",
            "--team",
            "platform",
            "--expires",
            "30d",
        ],
        dir.path(),
    );
    assert!(ok, "{err}");
    let secret = out.lines().next().unwrap().to_owned();
    assert!(secret.starts_with("tdm_"), "{out}");
    let (ok, listed, _) = tandem(&["keys", "list"], dir.path());
    assert!(ok);
    assert!(!listed.contains(&secret), "list never shows the secret");
    let id = listed
        .lines()
        .nth(1)
        .unwrap()
        .split('\t')
        .next()
        .unwrap()
        .to_owned();
    assert!(id.starts_with("key_"));
    let (ok, out, _) = tandem(&["keys", "revoke", &id], dir.path());
    assert!(ok && out.contains(&id));
    let (ok, _, err) = tandem(&["keys", "revoke", &id], dir.path());
    assert!(!ok && err.contains("no live key"), "{err}");
    let (ok, _, err) = tandem(
        &["keys", "create", "--user", "bob", "--expires", "soon"],
        dir.path(),
    );
    assert!(!ok && err.contains("soon"), "{err}");
}

#[test]
fn policy_check_and_explain() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.cedar");
    std::fs::write(
        &good,
        "@id(\"live\")\npermit(principal, action == Tandem::Action::\"use_model\", resource in Tandem::Tier::\"live\");\n",
    )
    .unwrap();
    let (ok, out, err) = tandem(&["policy", "check", good.to_str().unwrap()], dir.path());
    assert!(ok && out.contains("1 policies: live"), "{out}{err}");
    let bad = dir.path().join("bad.cedar");
    std::fs::write(
        &bad,
        "@id(\"x\")\npermit(principal, action == Tandem::Action::\"fly\", resource);\n",
    )
    .unwrap();
    let (ok, _, err) = tandem(&["policy", "check", bad.to_str().unwrap()], dir.path());
    assert!(!ok && err.contains("bad.cedar"), "{err}");
    let (ok, out, _) = tandem(
        &[
            "policy",
            "explain",
            "--file",
            good.to_str().unwrap(),
            "--principal",
            "bob",
            "--action",
            "use_model",
            "--tier",
            "deep",
            "--resource",
            "tk/m",
        ],
        dir.path(),
    );
    assert!(ok);
    assert!(
        out.contains("decision: deny") && out.contains("default deny"),
        "{out}"
    );
    let (ok, out, _) = tandem(
        &[
            "policy",
            "explain",
            "--file",
            good.to_str().unwrap(),
            "--principal",
            "bob",
            "--action",
            "use_model",
            "--tier",
            "live",
            "--resource",
            "tk/m",
        ],
        dir.path(),
    );
    assert!(
        ok && out.contains("decision: allow") && out.contains("live"),
        "{out}"
    );
}
