//! Unit tests for the rewrite drafter.

use pretty_assertions::assert_eq;

use crate::draft::Drafter;

#[test]
fn follows_the_original_forward() {
    let original = "fn a() {\n    x();\n}\n\nfn b() {\n    x();\n}\n";
    let mut d = Drafter::new(original);
    assert_eq!(d.propose("", 8), "fn a() {");
    assert_eq!(d.propose("fn a() {\n    y();\n}\n", 9), "\nfn b() {");
    // `    x();` occurs twice; the pointer has moved past the first.
    assert_eq!(
        d.propose("fn a() {\n    y();\n}\n\nfn b() {\n    x();", 3),
        "\n}\n"
    );
    assert_eq!(d.propose("zzzzzzzzzz", 3), "");
}
