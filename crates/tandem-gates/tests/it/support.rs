//! Shared helpers: a gates config, and a license source with licenses set by the test.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tandem_dlp::{PiiConfig, Rules, Scanner};
use tandem_gates::{
    Dependency, DependencyLists, DependencyPolicy, GatesConfig, LicenseSource, UnknownLicense,
};

/// A scanner with the built-in secret rules, as `tandem dlp scan` builds it.
pub fn scanner() -> Arc<Scanner> {
    let rules = Rules::builtin().unwrap();
    Arc::new(Scanner::new(&rules, &PiiConfig::none()).unwrap())
}

/// A config with the given commands, the DLP gate on and an empty dependency policy.
pub fn config(test: Option<&str>, timeout: Duration) -> GatesConfig {
    GatesConfig {
        test: test.map(str::to_owned),
        lint: None,
        typecheck: None,
        timeout,
        dlp: Some(scanner()),
        dependencies: DependencyPolicy::new(&DependencyLists::default(), UnknownLicense::Deny)
            .unwrap(),
    }
}

/// Licenses by `ecosystem:name`.
#[derive(Default)]
pub struct Licenses(pub HashMap<String, String>);

impl Licenses {
    pub fn with(pairs: &[(&str, &str)]) -> Licenses {
        Licenses(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }
}

impl LicenseSource for Licenses {
    fn license(&self, dep: &Dependency) -> Option<String> {
        self.0.get(&dep.to_string()).cloned()
    }
}
