//! `Policy::explain`: the request as Cedar sees it, the decision and what decided it.

use tandem_policy::{Action, Policy};

use crate::{example, model, query, tool, user};

#[test]
fn explain_a_forbid() {
    let mut carol = user("carol", &["platform", "contractors"], Some("payments"));
    carol.key_id = Some("key-7".to_owned());
    let mut q = query(carol, model(Some("deep"), "anthropic", "claude-opus"));
    q.context_tokens = 48_213;
    insta::assert_snapshot!("forbid", example().explain(&q));
}

#[test]
fn explain_a_permit() {
    let q = query(user("frank", &[], Some("staging")), tool("exec_command"));
    insta::assert_snapshot!("permit", example().explain(&q));
}

#[test]
fn explain_a_default_deny() {
    let q = query(user("gina", &["research"], None), Action::EnableInternet);
    insta::assert_snapshot!("default_deny", example().explain(&q));
}

#[test]
fn explain_evaluation_errors() {
    let policy = Policy::parse(
        "@id(\"everything\")\npermit(principal, action, resource);\n\n@id(\"overflowing\")\nforbid(principal, action, resource)\nwhen { context.context_tokens * 1000000 > 5000000000 };\n",
        "overflow.cedar",
    )
    .unwrap();
    let mut q = query(user("kim", &[], None), tool("read_file"));
    q.context_tokens = u64::MAX;
    insta::assert_snapshot!("errors", policy.explain(&q));
}
