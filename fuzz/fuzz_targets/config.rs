//! Fuzz target: `tandem_config::parse` on arbitrary `tandem.toml` text either gives a config or a
//! non-empty error (TOML errors name the config's source), never a panic; a config it accepts has at
//! least one provider, with unique names.
//!
//! The config names files (a policy, DLP rules, a router scorer, local models) that `parse` reads or
//! looks at. Inputs whose TOML strings point anywhere under `/dev`, `/proc` or `/sys` are skipped: a
//! config reading `/dev/zero` or stdin never ends, which is the operator's doing, not a parser bug.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use tandem_config::{Error, ProviderConfig, Source, parse};

/// Whether any string in `value`, at any depth, could name a special file.
fn names_special_file(value: &toml::Value) -> bool {
    match value {
        toml::Value::String(text) => ["dev", "proc", "sys", "fd"]
            .iter()
            .any(|word| text.contains(word)),
        toml::Value::Array(items) => items.iter().any(names_special_file),
        toml::Value::Table(table) => table.values().any(names_special_file),
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Text that is not TOML cannot name a file; it goes to `parse` to check its error.
    if let Ok(table) = text.parse::<toml::Table>()
        && table.values().any(names_special_file)
    {
        return;
    }
    match parse(text, Source::Embedded, &|_| None) {
        Ok(config) => {
            assert!(!config.providers.is_empty(), "no providers for {text:?}");
            let names: HashSet<&str> = config.providers.iter().map(ProviderConfig::name).collect();
            assert_eq!(
                names.len(),
                config.providers.len(),
                "provider names repeat for {text:?}"
            );
        }
        Err(Error::Parse {
            source_name,
            message,
        }) => {
            assert_eq!(source_name, "embedded default", "for {text:?}");
            assert!(!message.is_empty(), "an empty TOML error for {text:?}");
        }
        // A policy file's errors name that file.
        Err(Error::Invalid {
            source_name,
            message,
        }) => assert!(
            !source_name.is_empty() && !message.is_empty(),
            "an empty error for {text:?}"
        ),
        // A file the config names that cannot be read.
        Err(Error::Read { .. }) => {}
    }
});
