//! Loading: what refuses to load, and with which message.

use pretty_assertions::assert_eq;
use tandem_policy::{DEFAULT_POLICY, Error, Policy};

/// Loads `text` as `policies.cedar` and checks the error message.
#[track_caller]
fn check_err(text: &str, expect: &str) {
    let err = Policy::parse(text, "policies.cedar").unwrap_err();
    assert_eq!(err.to_string(), expect);
    assert_eq!(err.kind(), tandem_protocol::ErrorKind::BadRequest);
}

#[test]
fn the_example_and_the_default_load() {
    let policy = crate::example();
    assert_eq!(
        policy.ids(),
        [
            "live-for-everyone",
            "no-huge-live-contexts",
            "deep-for-platform",
            "no-deep-for-contractors",
            "local-models-for-everyone",
            "no-openai-for-payments",
            "revoked-key",
            "tools-allowed",
            "no-exec-in-prod-readonly",
            "internet-for-research",
        ]
    );
    assert_eq!(policy.source_name(), "example.cedar");
    assert!(policy.warnings().is_empty());

    let default = Policy::parse(DEFAULT_POLICY, "<default>").unwrap();
    assert_eq!(default.ids(), ["default-allow-all"]);
    assert_eq!(
        Policy::default_policy().unwrap().ids(),
        ["default-allow-all"]
    );
}

#[test]
fn an_empty_file_loads_and_denies_everything() {
    let policy = Policy::parse("// nothing yet\n", "empty.cedar").unwrap();
    assert!(policy.ids().is_empty());
    let decision = policy.evaluate(&crate::query(
        crate::user("alice", &[], None),
        crate::tool("read_file"),
    ));
    assert!(!decision.allowed);
}

#[test]
fn syntax_errors_name_line_and_column() {
    check_err(
        "@id(\"a\")\npermit(principal, action, resource)\n",
        "cannot parse policies in `policies.cedar`:\npolicies.cedar:2:36: unexpected end of input",
    );
    check_err(
        "@id(\"a\")\npermit(principal, action, resource);\n\n@id(\"b\")\npermit(principal, action, resource) when { context.tools > };\n",
        "cannot parse policies in `policies.cedar`:\npolicies.cedar:5:60: unexpected token `}`",
    );
    let Error::Parse { diagnostics, .. } =
        Policy::parse("permit(principal, action, resource) when { 1 + };\nforbid(principal, action, resource) unless {", "policies.cedar").unwrap_err()
    else {
        panic!("not a parse error");
    };
    assert_eq!(diagnostics.len(), 2, "{diagnostics:?}");
}

#[test]
fn unknown_attributes_and_actions_are_refused_by_the_schema() {
    check_err(
        "@id(\"a\")\npermit(principal, action, resource);\n\n@id(\"b\")\nforbid(principal, action == Tandem::Action::\"use_model\", resource) when { resource.size > 3 };\n",
        "policies in `policies.cedar` do not match the Tandem schema:\npolicies.cedar:5:75: for policy `b`, attribute `size` on entity type `Tandem::Model` not found (help: did you mean `name`?)",
    );
    check_err(
        "@id(\"a\")\npermit(principal, action == Tandem::Action::\"delete\", resource);\n",
        "policies in `policies.cedar` do not match the Tandem schema:\npolicies.cedar:2:29: for policy `a`, unrecognized action `Tandem::Action::\"delete\"` (help: did you mean `Tandem::Action::\"use_tool\"`?)",
    );
    check_err(
        "@id(\"tier-check\")\npermit(principal, action, resource in Tandem::Tierr::\"live\");\n",
        "policies in `policies.cedar` do not match the Tandem schema:\npolicies.cedar:2:39: for policy `tier-check`, unrecognized entity type `Tandem::Tierr` (help: did you mean `Tandem::Tier`?)",
    );
}

#[test]
fn type_errors_and_unguarded_optional_attributes_are_refused() {
    check_err(
        "@id(\"a\")\npermit(principal, action, resource) when { context.project == 3 };\n",
        "policies in `policies.cedar` do not match the Tandem schema:\npolicies.cedar:2:44: policy `a`: the types Long and String are not compatible (help: for policy `a`, both operands to a `==` expression must have compatible types. Types must be exactly equal to be compatible)",
    );
    check_err(
        "@id(\"a\")\npermit(principal, action, resource) when { principal.key_id == \"x\" };\n",
        "policies in `policies.cedar` do not match the Tandem schema:\npolicies.cedar:2:44: for policy `a`, unable to guarantee safety of access to optional attribute `key_id` on entity type `Tandem::User` (help: try testing for the attribute's presence with `e has key_id && ..`)",
    );
}

#[test]
fn every_policy_needs_an_id() {
    check_err(
        "@id(\"a\")\npermit(principal, action, resource);\n  permit(principal, action, resource);\n",
        "policies.cedar:3:3: policy has no @id annotation; add `@id(\"a-unique-name\")` before it",
    );
    check_err(
        "@id(\"\")\npermit(principal, action, resource);\n",
        "policies.cedar:1:1: policy has no @id annotation; add `@id(\"a-unique-name\")` before it",
    );
    check_err(
        "@reason(\"no id here\")\nforbid(principal, action, resource);\n",
        "policies.cedar:1:1: policy has no @id annotation; add `@id(\"a-unique-name\")` before it",
    );
}

#[test]
fn ids_are_unique() {
    check_err(
        "@id(\"a\")\npermit(principal, action, resource);\n// again\n@id(\"b\")\npermit(principal, action, resource);\n@id(\"a\")\nforbid(principal, action, resource);\n",
        "policies.cedar:6:1: duplicate policy id `a` (first used at line 1)",
    );
}

#[test]
fn templates_are_refused() {
    check_err(
        "@id(\"a\")\npermit(principal == ?principal, action, resource);\n",
        "policies in `policies.cedar` do not match the Tandem schema:\npolicies.cedar:1:1: templates (policies with `?principal` or `?resource` slots) are not supported",
    );
}
