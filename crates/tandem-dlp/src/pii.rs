//! Personal data detectors: emails, phone numbers, payment cards (Luhn) and IBANs (ISO 7064 mod-97).
//!
//! Each is a byte regex that finds candidates plus a validator that rejects most of them, in the way
//! Presidio's pattern recognizers work; names and addresses (which need a language model) are left out
//! of the synchronous path.

use std::str::FromStr;

/// Which personal-data detectors a [`crate::Scanner`] runs. All are off in [`PiiConfig::none`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PiiConfig {
    /// Email addresses.
    pub email: bool,
    /// Phone numbers in international (`+…`) or North American (`(555) 123-4567`) form.
    pub phone: bool,
    /// Payment card numbers (13–19 digits passing the Luhn check).
    pub card: bool,
    /// International bank account numbers passing the country length and mod-97 checks.
    pub iban: bool,
}

impl PiiConfig {
    /// No personal-data detection.
    pub fn none() -> PiiConfig {
        PiiConfig::default()
    }

    /// Turns on one detector by name (`email`, `phone`, `card`, `iban`) or all of them (`all`), as
    /// written in configuration and on the command line.
    pub fn enable(&mut self, name: &str) -> Result<(), String> {
        match name {
            "all" => *self = PiiConfig::all(),
            "email" => self.email = true,
            "phone" => self.phone = true,
            "card" => self.card = true,
            "iban" => self.iban = true,
            other => {
                return Err(format!(
                    "`{other}` is not one of email, phone, card, iban, all"
                ));
            }
        }
        Ok(())
    }

    /// Every personal-data detector.
    pub fn all() -> PiiConfig {
        PiiConfig {
            email: true,
            phone: true,
            card: true,
            iban: true,
        }
    }
}

/// A kind of personal data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PiiKind {
    /// An email address.
    Email,
    /// A phone number.
    Phone,
    /// A payment card number.
    Card,
    /// An IBAN.
    Iban,
}

impl PiiKind {
    /// The rule id findings of this kind carry (`pii-email`, `pii-phone`, `pii-card`, `pii-iban`).
    pub fn rule_id(self) -> &'static str {
        match self {
            PiiKind::Email => "pii-email",
            PiiKind::Phone => "pii-phone",
            PiiKind::Card => "pii-card",
            PiiKind::Iban => "pii-iban",
        }
    }
}

/// A built-in detector: regex, prefilter keywords (one occurs inside every match; none: the regex
/// runs over the whole text, which measured faster for digit-based formats than a window around
/// every digit pair) and validator.
pub(crate) struct PiiSpec {
    pub(crate) kind: PiiKind,
    pub(crate) regex: &'static str,
    pub(crate) keywords: &'static [&'static str],
    pub(crate) validate: fn(&[u8]) -> bool,
}

/// The detectors `config` turns on.
pub(crate) fn specs(config: &PiiConfig) -> Vec<PiiSpec> {
    let mut out = Vec::new();
    if config.email {
        out.push(PiiSpec {
            kind: PiiKind::Email,
            regex: r"[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9][A-Za-z0-9-]{0,62}(?:\.[A-Za-z0-9-]{1,63}){0,6}\.[A-Za-z]{2,24}\b",
            keywords: &["@"],
            validate: valid_email,
        });
    }
    if config.phone {
        out.push(PiiSpec {
            kind: PiiKind::Phone,
            regex: r"(?:\+[1-9][0-9]{0,2}[ .-]?(?:\(?[0-9]{1,4}\)?[ .-]?){1,4}[0-9]{2,6}\b)|(?:(?:\(\b[2-9][0-9]{2}\)|\b[2-9][0-9]{2})[ .-][2-9][0-9]{2}[ .-][0-9]{4}\b)",
            keywords: &[],
            validate: valid_phone,
        });
    }
    if config.card {
        out.push(PiiSpec {
            kind: PiiKind::Card,
            regex: r"\b[2-6][0-9]{3}(?:[ -]?[0-9]{2,6}){2,4}\b",
            keywords: &[],
            validate: valid_card,
        });
    }
    if config.iban {
        out.push(PiiSpec {
            kind: PiiKind::Iban,
            regex: r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}\b",
            keywords: &[],
            validate: valid_iban,
        });
    }
    out
}

/// File extensions that follow `@` in asset names (`icon@2x.png`), not top-level domains.
const NOT_TLDS: &[&str] = &[
    "png", "jpg", "jpeg", "gif", "svg", "webp", "js", "ts", "rs", "py", "css", "html", "json",
    "md", "txt", "toml", "yaml", "yml", "lock",
];

/// Domains reserved for documentation and tests (RFC 2606, RFC 6761): nobody's address.
const RESERVED_DOMAINS: &[&str] = &["example.com", "example.org", "example.net"];
const RESERVED_TLDS: &[&str] = &["example", "test", "invalid", "localhost"];

fn valid_email(m: &[u8]) -> bool {
    let Some(dot) = m.iter().rposition(|&b| b == b'.') else {
        return false;
    };
    let tld = String::from_utf8_lossy(&m[dot + 1..]).to_ascii_lowercase();
    let domain = m
        .iter()
        .position(|&b| b == b'@')
        .map(|at| String::from_utf8_lossy(&m[at + 1..]).to_ascii_lowercase())
        .unwrap_or_default();
    let reserved = RESERVED_TLDS.contains(&tld.as_str())
        || RESERVED_DOMAINS
            .iter()
            .any(|d| domain == *d || domain.ends_with(&format!(".{d}")));
    !NOT_TLDS.contains(&tld.as_str()) && !reserved
}

fn digits(m: &[u8]) -> Vec<u8> {
    m.iter().copied().filter(u8::is_ascii_digit).collect()
}

fn all_same(d: &[u8]) -> bool {
    d.windows(2).all(|w| w[0] == w[1])
}

fn valid_phone(m: &[u8]) -> bool {
    let d = digits(m);
    let range = if m.first() == Some(&b'+') {
        8..=15
    } else {
        10..=10
    };
    range.contains(&d.len()) && !all_same(&d)
}

fn valid_card(m: &[u8]) -> bool {
    let d = digits(m);
    if !(13..=19).contains(&d.len()) || all_same(&d) {
        return false;
    }
    // One separator style throughout: none, spaces or dashes.
    let has_space = m.contains(&b' ');
    let has_dash = m.contains(&b'-');
    if has_space && has_dash {
        return false;
    }
    std::str::from_utf8(&d).is_ok_and(luhn::valid)
}

fn valid_iban(m: &[u8]) -> bool {
    let compact: String = m
        .iter()
        .filter(|b| !b.is_ascii_whitespace())
        .map(|&b| char::from(b))
        .collect();
    iban::Iban::from_str(&compact).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validators() {
        assert!(valid_card(b"4111 1111 1111 1111"));
        assert!(valid_card(b"4111111111111111"));
        assert!(!valid_card(b"4111 1111 1111 1112"));
        assert!(!valid_card(b"4111 1111-1111 1111"));
        assert!(valid_iban(b"DE89 3704 0044 0532 0130 00"));
        assert!(valid_iban(b"GB82WEST12345698765432"));
        assert!(!valid_iban(b"GB82WEST12345698765433"));
        assert!(valid_phone(b"+44 20 7946 0958"));
        assert!(valid_phone(b"(415) 555-2671"));
        assert!(!valid_phone(b"+1 2"));
        assert!(valid_email(b"jane.doe@acmecorp.io"));
        assert!(!valid_email(b"jane.doe@corp.example"));
        assert!(!valid_email(b"ana@mail.example.com"));
        assert!(!valid_email(b"icon@2x.png"));
    }
}
