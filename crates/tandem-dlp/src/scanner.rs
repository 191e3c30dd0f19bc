//! The compiled scanner: one Aho-Corasick DFA pass over every rule keyword, then each triggered rule's
//! byte regex (Unicode off) only inside a window around its keyword hits, then secret extraction,
//! entropy, validators and allowlists.
//!
//! Windows: a rule's regex has a maximum match length `w` (from its syntax tree, or
//! [`UNBOUNDED_WINDOW`] when it has none), and a keyword must occur inside every match, so a match
//! that holds a keyword hit lies within `w` bytes of it. Windows of one rule that touch are merged so
//! no byte is searched twice for the same rule. Rules without keywords search the whole text.

use std::ops::Range;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, MatchKind};
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input, hybrid, meta, nfa::thompson};

use crate::entropy::shannon;
use crate::pii::{self, PiiConfig, PiiKind};
use crate::rules::{AllowlistSpec, RuleSpec, Rules, Target};
use crate::{Error, Result};

/// The search window for a regex with no maximum match length, in bytes each side of a keyword.
pub const UNBOUNDED_WINDOW: usize = 512;

/// The text a redaction leaves behind starts with this; findings inside a placeholder are dropped,
/// so redacting twice changes nothing.
pub(crate) const PLACEHOLDER_PREFIX: &[u8] = b"[REDACTED:";

/// What kind of data a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// A credential: key, token, password, private key.
    Secret,
    /// Personal data.
    Pii(PiiKind),
}

/// One detected secret or piece of personal data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The rule id.
    pub rule: Arc<str>,
    /// Secret or personal data.
    pub class: Class,
    /// Byte range of the secret itself (the rule's secret group), the part a redaction replaces.
    pub span: Range<usize>,
    /// Byte range of the whole regex match (keyword, assignment, quotes).
    pub matched: Range<usize>,
}

/// A compiled rule set. Cheap to share (`Arc`); scanning takes `&self` from any thread.
#[derive(Debug)]
pub struct Scanner {
    rules: Vec<Compiled>,
    keywords: Option<KeywordDfa>,
    /// For each keyword (Aho-Corasick pattern id), the rules it triggers.
    keyword_rules: Vec<Vec<u32>>,
    /// Rules with no keywords: searched over the whole text.
    unkeyed: Vec<u32>,
    /// All unkeyed rules' regexes as one multi-pattern regex (pattern i is `unkeyed[i]`): one pass
    /// over the text finds where each may match, instead of one pass per rule.
    unkeyed_set: Option<meta::Regex>,
    allowlists: Vec<Allow>,
    /// All rule regexes as one lazy DFA, used by streams to ask whether a match could still start at
    /// a position.
    live: hybrid::dfa::DFA,
    /// Idle caches of `live` (see [`Scanner::with_live_cache`]).
    live_pool: std::sync::Mutex<Vec<hybrid::dfa::Cache>>,
    /// The longest window of any rule: no match is longer than twice this.
    pub(crate) max_window: usize,
}

#[derive(Debug)]
struct Compiled {
    id: Arc<str>,
    class: Class,
    regex: Option<meta::Regex>,
    group: Option<usize>,
    has_groups: bool,
    entropy: Option<f32>,
    path: Option<meta::Regex>,
    allowlists: Vec<Allow>,
    window: usize,
    validate: Option<fn(&[u8]) -> bool>,
}

#[derive(Debug)]
struct Allow {
    all: bool,
    paths: Vec<meta::Regex>,
    regexes: Option<meta::Regex>,
    target: Target,
    stopwords: Option<AhoCorasick>,
    commits: bool,
    target_rules: Vec<Arc<str>>,
}

fn syntax_config() -> syntax::Config {
    syntax::Config::new().unicode(false).utf8(false)
}

fn compile(owner: &str, patterns: &[&str]) -> Result<meta::Regex> {
    meta::Regex::builder()
        .syntax(syntax_config())
        .configure(meta::Config::new().utf8_empty(false))
        .build_many(patterns)
        .map_err(|e| Error::Regex {
            rule: owner.into(),
            message: e.to_string().into(),
        })
}

/// The longest match `pattern` can produce, if it is bounded.
fn max_len(owner: &str, pattern: &str) -> Result<Option<usize>> {
    let hir = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern)
        .map_err(|e| Error::Regex {
            rule: owner.into(),
            message: e.to_string().into(),
        })?;
    Ok(hir.properties().maximum_len())
}

impl Allow {
    fn compile(owner: &str, spec: &AllowlistSpec) -> Result<Allow> {
        let paths = spec
            .paths
            .iter()
            .map(|p| compile(owner, &[p.as_str()]))
            .collect::<Result<Vec<_>>>()?;
        let regexes = if spec.regexes.is_empty() {
            None
        } else {
            let pats: Vec<&str> = spec.regexes.iter().map(String::as_str).collect();
            Some(compile(owner, &pats)?)
        };
        let stopwords = if spec.stopwords.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .ascii_case_insensitive(true)
                    .build(&spec.stopwords)
                    .map_err(|e| Error::Rule {
                        rule: owner.into(),
                        message: format!("stopwords: {e}").into(),
                    })?,
            )
        };
        Ok(Allow {
            all: spec.all,
            paths,
            regexes,
            target: spec.target,
            stopwords,
            commits: spec.commits,
            target_rules: spec
                .target_rules
                .iter()
                .map(|r| Arc::from(r.as_str()))
                .collect(),
        })
    }

    /// Whether this allowlist lets the candidate through (suppresses it).
    fn allows(&self, c: &Candidate<'_>) -> bool {
        let mut results = [None; 4];
        if self.commits {
            results[0] = Some(false);
        }
        if !self.paths.is_empty() {
            results[1] = Some(
                c.path
                    .is_some_and(|p| self.paths.iter().any(|r| r.is_match(p))),
            );
        }
        if let Some(re) = &self.regexes {
            let hay = match self.target {
                Target::Secret => c.secret,
                Target::Match => c.matched,
                Target::Line => c.line,
            };
            results[2] = Some(re.is_match(hay));
        }
        if let Some(sw) = &self.stopwords {
            results[3] = Some(sw.is_match(c.secret));
        }
        let mut present = results.iter().flatten().peekable();
        if present.peek().is_none() {
            return false;
        }
        if self.all {
            present.all(|&r| r)
        } else {
            present.any(|&r| r)
        }
    }
}

struct Candidate<'a> {
    secret: &'a [u8],
    matched: &'a [u8],
    line: &'a [u8],
    path: Option<&'a str>,
}

impl Compiled {
    fn from_rule(spec: &RuleSpec) -> Result<Compiled> {
        let regex = spec
            .regex
            .as_deref()
            .map(|r| compile(&spec.id, &[r]))
            .transpose()?;
        let window = match &spec.regex {
            Some(r) => max_len(&spec.id, r)?.unwrap_or(UNBOUNDED_WINDOW),
            None => 0,
        };
        let groups = regex
            .as_ref()
            .map(|r| r.group_info().group_len(regex_automata::PatternID::ZERO))
            .unwrap_or(0);
        if let Some(g) = spec.secret_group
            && g >= groups
        {
            return Err(Error::Rule {
                rule: spec.id.clone().into(),
                message: format!(
                    "`secretGroup = {g}` but the regex has {} capture groups",
                    groups.saturating_sub(1)
                )
                .into(),
            });
        }
        Ok(Compiled {
            id: Arc::from(spec.id.as_str()),
            class: Class::Secret,
            regex,
            group: spec.secret_group.filter(|&g| g > 0),
            has_groups: groups > 1,
            entropy: spec.entropy.filter(|&e| e > 0.0),
            path: spec
                .path
                .as_deref()
                .map(|p| compile(&spec.id, &[p]))
                .transpose()?,
            allowlists: spec
                .allowlists
                .iter()
                .map(|a| Allow::compile(&spec.id, a))
                .collect::<Result<_>>()?,
            window,
            validate: None,
        })
    }

    fn from_pii(spec: &pii::PiiSpec) -> Result<Compiled> {
        let id = spec.kind.rule_id();
        Ok(Compiled {
            id: Arc::from(id),
            class: Class::Pii(spec.kind),
            regex: Some(compile(id, &[spec.regex])?),
            group: None,
            has_groups: false,
            entropy: None,
            path: None,
            allowlists: Vec::new(),
            window: max_len(id, spec.regex)?.unwrap_or(UNBOUNDED_WINDOW),
            validate: Some(spec.validate),
        })
    }
}

impl Scanner {
    /// Compiles `rules` plus the personal-data detectors `pii` turns on.
    pub fn new(rules: &Rules, pii: &PiiConfig) -> Result<Scanner> {
        let mut compiled = Vec::new();
        let mut keyword_lists: Vec<Vec<String>> = Vec::new();
        for spec in &rules.rules {
            compiled.push(Compiled::from_rule(spec)?);
            keyword_lists.push(spec.keywords.clone());
        }
        for spec in pii::specs(pii) {
            compiled.push(Compiled::from_pii(&spec)?);
            keyword_lists.push(spec.keywords.iter().map(|k| (*k).to_owned()).collect());
        }

        let mut keywords: Vec<String> = Vec::new();
        let mut keyword_rules: Vec<Vec<u32>> = Vec::new();
        let mut unkeyed = Vec::new();
        for (idx, list) in keyword_lists.iter().enumerate() {
            let idx = u32::try_from(idx).map_err(|_| Error::Rule {
                rule: "rules".into(),
                message: "too many rules".into(),
            })?;
            if list.iter().all(|k| k.is_empty()) {
                if compiled[idx as usize].regex.is_some() {
                    unkeyed.push(idx);
                }
                continue;
            }
            for kw in list.iter().filter(|k| !k.is_empty()) {
                match keywords.iter().position(|k| k == kw) {
                    Some(pos) => keyword_rules[pos].push(idx),
                    None => {
                        keywords.push(kw.clone());
                        keyword_rules.push(vec![idx]);
                    }
                }
            }
        }
        let ac = if keywords.is_empty() {
            None
        } else {
            Some(KeywordDfa::new(&keywords)?)
        };

        let allowlists = rules
            .allowlists
            .iter()
            .map(|a| Allow::compile("allowlist", a))
            .collect::<Result<Vec<_>>>()?;

        let patterns: Vec<&str> = rules
            .rules
            .iter()
            .filter_map(|r| r.regex.as_deref())
            .chain(pii::specs(pii).iter().map(|s| s.regex))
            .collect();
        let live = build_live(&patterns)?;
        let max_window = compiled.iter().map(|c| c.window).max().unwrap_or(0);
        // The source of each compiled rule's regex, by rule index.
        let pii_specs = pii::specs(pii);
        let sources: Vec<Option<&str>> = rules
            .rules
            .iter()
            .map(|r| r.regex.as_deref())
            .chain(pii_specs.iter().map(|s| Some(s.regex)))
            .collect();
        let unkeyed_sources: Vec<&str> = unkeyed
            .iter()
            .filter_map(|&r| sources.get(r as usize).copied().flatten())
            .collect();
        let unkeyed_set = if unkeyed.len() > 1 && unkeyed_sources.len() == unkeyed.len() {
            Some(compile("rules without keywords", &unkeyed_sources)?)
        } else {
            None
        };

        Ok(Scanner {
            rules: compiled,
            keywords: ac,
            keyword_rules,
            unkeyed,
            unkeyed_set,
            allowlists,
            live,
            live_pool: std::sync::Mutex::new(Vec::new()),
            max_window,
        })
    }

    /// The number of compiled rules, personal-data detectors included.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// Finds secrets and personal data in text sent to or received from a model. Rules restricted to
    /// paths do not apply, and inline `gitleaks:allow` comments are not honoured (a prompt must not
    /// be able to switch its own scanning off).
    pub fn scan(&self, text: &[u8]) -> Vec<Finding> {
        self.scan_with(text, None, 0)
    }

    /// Like [`Scanner::scan`], but only finds matches that start at or after `from`; the bytes
    /// before it are context (look-behind, `^`). Streams use it to rescan only what they hold.
    pub(crate) fn scan_from(&self, text: &[u8], from: usize) -> Vec<Finding> {
        self.scan_with(text, None, from.min(text.len()))
    }

    /// Finds secrets in a file: path rules and path allowlists apply, and lines carrying a
    /// `gitleaks:allow` comment are skipped, as in gitleaks.
    pub fn scan_path(&self, path: &str, text: &[u8]) -> Vec<Finding> {
        self.scan_with(text, Some(path), 0)
    }

    fn scan_with(&self, text: &[u8], path: Option<&str>, from: usize) -> Vec<Finding> {
        let mut windows: Vec<(u32, usize, usize)> = Vec::new();
        if let Some(kw) = &self.keywords {
            // Hits arrive in order within each of the keyword pass's lanes: a rule's new window
            // that touches its last one in the same lane extends it, so number-heavy text (every
            // digit pair is a keyword of the personal-data detectors) makes few windows.
            let rules = self.rules.len();
            let mut last = Vec::new();
            let base = from;
            kw.each_hit(&text[base..], |lane, pattern, start, end| {
                let (start, end) = (start + base, end + base);
                if last.is_empty() {
                    last = vec![usize::MAX; KeywordDfa::LANES * rules];
                }
                for &r in &self.keyword_rules[pattern] {
                    let w = self.rules[r as usize].window;
                    let (from, to) = (start.saturating_sub(w).max(base), (end + w).min(text.len()));
                    let slot = &mut last[lane * rules + r as usize];
                    match windows.get_mut(*slot) {
                        // Ends grow within a lane, so the two overlap: keep their union.
                        Some(prev) if prev.2 >= from => {
                            prev.1 = prev.1.min(from);
                            prev.2 = prev.2.max(to);
                        }
                        _ => {
                            *slot = windows.len();
                            windows.push((r, from, to));
                        }
                    }
                }
            });
        }
        match &self.unkeyed_set {
            // One pass for all of them, trying every start position; each candidate becomes a
            // window of its own rule, where the rule's regex runs again for captures and
            // validation. (At one start, the first pattern of the set that matches wins.)
            Some(set) => {
                let mut at = from;
                while let Some(m) = set.search(&Input::new(text).range(at..)) {
                    if let Some(&r) = self.unkeyed.get(m.pattern().as_usize()) {
                        let end = (m.start() + self.rules[r as usize].window).min(text.len());
                        windows.push((r, m.start(), end.max(m.end())));
                    }
                    at = m.start() + 1;
                }
            }
            None => {
                for &r in &self.unkeyed {
                    windows.push((r, from, text.len()));
                }
            }
        }
        windows.sort_unstable();

        let mut findings = Vec::new();
        let mut i = 0;
        while i < windows.len() {
            let (rule, start, mut end) = windows[i];
            i += 1;
            while i < windows.len() && windows[i].0 == rule && windows[i].1 <= end {
                end = end.max(windows[i].2);
                i += 1;
            }
            self.search(rule as usize, text, start..end, path, &mut findings);
        }
        if let Some(path) = path {
            for rule in self.rules.iter().filter(|r| r.regex.is_none()) {
                if rule.path.as_ref().is_some_and(|p| p.is_match(path)) {
                    findings.push((
                        0,
                        Finding {
                            rule: rule.id.clone(),
                            class: rule.class,
                            span: 0..0,
                            matched: 0..0,
                        },
                    ));
                }
            }
        }
        // A rule's matches from later start positions inside one of its own findings (the tail of
        // an email, a shorter prefix before a keyword) are the same secret: keep the outer one.
        findings.sort_by_key(|(rank, f)| (*rank, f.span.start, std::cmp::Reverse(f.span.end)));
        let mut outer: Option<(usize, Range<usize>)> = None;
        findings.retain(|(rank, f)| {
            let inside = outer.as_ref().is_some_and(|(r, span)| {
                r == rank && span.start <= f.span.start && f.span.end <= span.end
            });
            if !inside {
                outer = Some((*rank, f.span.clone()));
            }
            !inside
        });
        // One finding per secret span: where rules overlap exactly, the earlier (more specific) rule
        // in file order wins.
        findings.sort_by_key(|(rank, f)| (f.span.start, f.span.end, *rank));
        findings.dedup_by(|b, a| a.1.span == b.1.span);
        findings.into_iter().map(|(_, f)| f).collect()
    }

    fn search(
        &self,
        idx: usize,
        text: &[u8],
        window: Range<usize>,
        path: Option<&str>,
        out: &mut Vec<(usize, Finding)>,
    ) {
        let rule = &self.rules[idx];
        let Some(re) = &rule.regex else { return };
        match (&rule.path, path) {
            (Some(_), None) => return,
            (Some(p), Some(path)) if !p.is_match(path) => return,
            _ => {}
        }
        let mut caps = None;
        // A match does not hide later candidates that overlap it: the search goes on from its next
        // byte, so every start position gets its own leftmost-first match. A text's findings then do
        // not depend on where a search started, which stream redaction relies on. (Matches of one
        // secret from several starts share its span and are reported once.)
        let mut at = window.start;
        while at < window.end {
            let Some(m) = re.search(&Input::new(text).range(at..window.end)) else {
                break;
            };
            let matched = m.range();
            at = matched.start + 1;
            let span = if rule.group.is_some() || rule.has_groups {
                let caps = caps.get_or_insert_with(|| re.create_captures());
                re.search_captures(
                    &Input::new(text)
                        .range(matched.clone())
                        .anchored(Anchored::Yes),
                    caps,
                );
                let group = match rule.group {
                    Some(g) => caps.get_group(g),
                    None => (1..caps.group_len()).find_map(|g| caps.get_group(g)),
                };
                match group {
                    Some(g) => g.range(),
                    None if rule.group.is_some() => continue,
                    None => matched.clone(),
                }
            } else {
                matched.clone()
            };
            if span.is_empty() {
                continue;
            }
            let secret = &text[span.clone()];
            if rule.entropy.is_some_and(|t| shannon(secret) <= t) {
                continue;
            }
            if rule.validate.is_some_and(|v| !v(secret)) {
                continue;
            }
            if inside_placeholder(text, &span) {
                continue;
            }
            let line = line_of(text, &matched);
            if path.is_some() && contains(line, b"gitleaks:allow") {
                continue;
            }
            let candidate = Candidate {
                secret,
                matched: &text[matched.clone()],
                line,
                path,
            };
            // Global allowlists belong to the (gitleaks) secret rules, not to personal data.
            let allowed = rule.allowlists.iter().any(|a| a.allows(&candidate))
                || rule.class == Class::Secret
                    && self.allowlists.iter().any(|a| {
                        (a.target_rules.is_empty() || a.target_rules.contains(&rule.id))
                            && a.allows(&candidate)
                    });
            if allowed {
                continue;
            }
            out.push((
                idx,
                Finding {
                    rule: rule.id.clone(),
                    class: rule.class,
                    span,
                    matched,
                },
            ));
        }
    }

    /// Runs `f` with a cache for [`Scanner::could_match_from`], taken from a pool shared by all
    /// streams and put back after. A cache sized for the union of every rule is large (its sparse
    /// sets are sized to the automaton), so one per stream would cost megabytes per open stream;
    /// the pool holds about as many as there are threads pushing at once.
    pub(crate) fn with_live_cache<T>(&self, f: impl FnOnce(&mut hybrid::dfa::Cache) -> T) -> T {
        let taken = self
            .live_pool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let mut cache = taken.unwrap_or_else(|| self.live.create_cache());
        let out = f(&mut cache);
        self.live_pool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(cache);
        out
    }

    /// Whether some rule's regex could match starting at `at`, given `hay[..end]` and any bytes that
    /// may follow `end`. Conservative: `true` when unsure. A candidate alive for more than
    /// `2 * max_window` bytes is longer than any match the scanner can report, so it does not count.
    pub(crate) fn could_match_from(
        &self,
        cache: &mut hybrid::dfa::Cache,
        hay: &[u8],
        at: usize,
    ) -> bool {
        let input = Input::new(hay).range(at..).anchored(Anchored::Yes);
        let Ok(mut state) = self.live.start_state_forward(cache, &input) else {
            return true;
        };
        let limit = (at + 2 * self.max_window + 1).min(hay.len());
        for &b in &hay[at..limit] {
            state = match self.live.next_state(cache, state, b) {
                Ok(s) => s,
                Err(_) => return true,
            };
            if state.is_dead() {
                return false;
            }
            if state.is_quit() {
                return true;
            }
        }
        limit == hay.len()
    }
}

/// The keyword pass: Aho-Corasick's DFA over every rule keyword (ASCII case-insensitive, standard
/// semantics, so every occurrence is reported, overlapping ones included), copied into a compact
/// table and walked over four parts of the text at once.
///
/// Why not `AhoCorasick::find_overlapping_iter`: its loop follows one chain of dependent table
/// lookups per byte, with a bounds check and 32-bit state ids. Here the crate's automaton is
/// re-laid as 16-bit states in a power-of-two table indexed with a mask (no bounds checks in safe
/// Rust), match states numbered first (one compare says "maybe a match"), and four independent walks
/// share one loop so their lookups overlap. Measured on 0.5 MB of code, this pass is several times
/// faster than the crate's own loop; the automaton itself is the crate's.
#[derive(Debug)]
struct KeywordDfa {
    /// Transitions: `trans[(state | class) & MASK]`; states are row offsets (id × stride).
    trans: Box<[u32; KeywordDfa::TABLE]>,
    classes: [u8; 256],
    shift: u32,
    start: u32,
    /// States from this row offset (a power of two) on are match states.
    first_match: u32,
    /// For each match state, from `first_match` on: (keyword, keyword length).
    matches: Vec<Vec<(usize, usize)>>,
    /// The longest keyword: each part's walk starts this many bytes early, so keywords that cross a
    /// part boundary are seen whole (and reported by the part they end in).
    longest: usize,
}

impl KeywordDfa {
    const LANES: usize = 4;
    /// Texts shorter than this are walked in one lane.
    const SMALL: usize = 4096;
    /// Table entries (a power of two): states × stride must fit.
    const TABLE: usize = 1 << 18;

    fn new(keywords: &[String]) -> Result<KeywordDfa> {
        use aho_corasick::automaton::Automaton as _;
        let bad = |message: String| Error::Rule {
            rule: "keywords".into(),
            message: message.into(),
        };
        let dfa = aho_corasick::dfa::DFA::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(keywords)
            .map_err(|e| bad(e.to_string()))?;
        let start = dfa
            .start_state(aho_corasick::Anchored::No)
            .map_err(|e| bad(e.to_string()))?;
        // Every reachable state, breadth first.
        let mut states = vec![start];
        let mut seen = std::collections::HashMap::from([(start.as_usize(), 0usize)]);
        let mut at = 0;
        while at < states.len() {
            let sid = states[at];
            at += 1;
            for b in 0..=255u8 {
                let next = dfa.next_state(aho_corasick::Anchored::No, sid, b);
                if let std::collections::hash_map::Entry::Vacant(e) = seen.entry(next.as_usize()) {
                    e.insert(states.len());
                    states.push(next);
                }
            }
        }
        // Other states first, then match states from the next power of two, so "is any of four
        // states a match state" is one OR and one compare.
        let plain: Vec<usize> = (0..states.len())
            .filter(|&i| !dfa.is_match(states[i]))
            .collect();
        let matching: Vec<usize> = (0..states.len())
            .filter(|&i| dfa.is_match(states[i]))
            .collect();
        let first_match = plain.len().next_power_of_two();
        let mut index = vec![0usize; states.len()];
        for (new, &old) in plain.iter().enumerate() {
            index[old] = new;
        }
        for (n, &old) in matching.iter().enumerate() {
            index[old] = first_match + n;
        }
        let rows = first_match + matching.len();
        let id = |sid: aho_corasick::automaton::StateID| index[seen[&sid.as_usize()]];
        // Byte classes: bytes with the same transition from every state.
        let mut classes = [0u8; 256];
        let mut signatures: Vec<Vec<usize>> = Vec::new();
        for b in 0..=255u8 {
            let sig: Vec<usize> = states
                .iter()
                .map(|&sid| id(dfa.next_state(aho_corasick::Anchored::No, sid, b)))
                .collect();
            let class = match signatures.iter().position(|s| *s == sig) {
                Some(c) => c,
                None => {
                    signatures.push(sig);
                    signatures.len() - 1
                }
            };
            classes[usize::from(b)] =
                u8::try_from(class).map_err(|_| bad("too many byte classes".into()))?;
        }
        let stride = signatures.len().next_power_of_two();
        let shift = stride.trailing_zeros();
        if rows * stride > Self::TABLE {
            return Err(bad(format!(
                "{rows} keyword states × {stride} classes do not fit the keyword table"
            )));
        }
        let mut trans: Box<[u32; Self::TABLE]> = vec![0u32; Self::TABLE]
            .into_boxed_slice()
            .try_into()
            .map_err(|_| bad("keyword table".into()))?;
        let mut matches = Vec::new();
        for old in 0..states.len() {
            let row = index[old] << shift;
            for (class, sig) in signatures.iter().enumerate() {
                // `sig[old]` is the new id of the state reached from `sid` on this class.
                trans[row | class] = u32::try_from(sig[old] << shift).unwrap_or(0);
            }
        }
        for &old in &matching {
            let sid = states[old];
            matches.push(
                (0..dfa.match_len(sid))
                    .map(|i| {
                        let pid = dfa.match_pattern(sid, i);
                        (pid.as_usize(), dfa.pattern_len(pid))
                    })
                    .collect(),
            );
        }
        Ok(KeywordDfa {
            trans,
            classes,
            shift,
            start: u32::try_from(index[0] << shift).unwrap_or(0),
            first_match: u32::try_from(first_match << shift).unwrap_or(u32::MAX),
            matches,
            longest: keywords.iter().map(String::len).max().unwrap_or(0),
        })
    }

    #[inline(always)]
    fn step(&self, state: u32, byte: u8) -> u32 {
        let class = u32::from(self.classes[usize::from(byte)]);
        self.trans[((state | class) as usize) & (Self::TABLE - 1)]
    }

    /// One lane from `state` over `text[range]`, reporting match states where a keyword ends after
    /// `from`.
    fn walk(
        &self,
        lane: usize,
        mut state: u32,
        text: &[u8],
        range: Range<usize>,
        from: usize,
        report: &mut impl FnMut(usize, u32, usize),
    ) {
        for (at, &b) in (range.start + 1..).zip(&text[range]) {
            state = self.step(state, b);
            if state >= self.first_match && at > from {
                report(lane, state, at);
            }
        }
    }

    /// Calls `hit(lane, pattern, start, end)` for every keyword occurrence: in increasing order of
    /// end within a lane, lanes in no particular order.
    fn each_hit(&self, text: &[u8], mut hit: impl FnMut(usize, usize, usize, usize)) {
        let m = self.first_match;
        let mut report = |lane: usize, state: u32, at: usize| {
            if let Some(list) = self.matches.get(((state - m) >> self.shift) as usize) {
                for &(pattern, len) in list {
                    hit(lane, pattern, at - len, at);
                }
            }
        };
        if text.len() < Self::SMALL {
            // One lane: the others' warm-up would cost more than they save.
            self.walk(0, self.start, text, 0..text.len(), 0, &mut report);
            return;
        }
        let part = text.len().div_ceil(Self::LANES);
        // Per lane: where its own part starts (it reports keywords ending after that), where it
        // starts reading (earlier, to see keywords crossing into its part), and where it ends.
        let from: [usize; Self::LANES] = std::array::from_fn(|k| (k * part).min(text.len()));
        let end: [usize; Self::LANES] = std::array::from_fn(|k| ((k + 1) * part).min(text.len()));
        let pos: [usize; Self::LANES] =
            std::array::from_fn(|k| from[k].saturating_sub(self.longest.saturating_sub(1)));
        // All lanes in step while every lane has bytes left; then each lane finishes alone.
        let common = (0..Self::LANES).map(|k| end[k] - pos[k]).min().unwrap_or(0);
        let lane = |k: usize| &text[pos[k]..pos[k] + common];
        let (l0, l1, l2, l3) = (lane(0), lane(1), lane(2), lane(3));
        let [mut s0, mut s1, mut s2, mut s3] = [self.start; Self::LANES];
        for i in 0..common {
            s0 = self.step(s0, l0[i]);
            s1 = self.step(s1, l1[i]);
            s2 = self.step(s2, l2[i]);
            s3 = self.step(s3, l3[i]);
            if (s0 | s1 | s2 | s3) >= m {
                for (k, s) in [s0, s1, s2, s3].into_iter().enumerate() {
                    let at = pos[k] + i + 1;
                    if s >= m && at > from[k] {
                        report(k, s, at);
                    }
                }
            }
        }
        for (k, s) in [s0, s1, s2, s3].into_iter().enumerate() {
            self.walk(k, s, text, pos[k] + common..end[k], from[k], &mut report);
        }
    }
}

fn build_live(patterns: &[&str]) -> Result<hybrid::dfa::DFA> {
    if patterns.is_empty() {
        return hybrid::dfa::DFA::never_match().map_err(|e| Error::Rule {
            rule: "rules".into(),
            message: e.to_string().into(),
        });
    }
    hybrid::dfa::DFA::builder()
        .syntax(syntax_config())
        .thompson(thompson::Config::new().which_captures(thompson::WhichCaptures::None))
        .configure(
            hybrid::dfa::Config::new()
                .cache_capacity(4 << 20)
                .skip_cache_capacity_check(true)
                .minimum_cache_clear_count(None),
        )
        .build_many(patterns)
        .map_err(|e| Error::Rule {
            rule: "rules".into(),
            message: format!("cannot build the stream automaton: {e}").into(),
        })
}

fn line_of<'a>(text: &'a [u8], m: &Range<usize>) -> &'a [u8] {
    let start = text[..m.start]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let end = text[m.end..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(text.len(), |p| m.end + p);
    &text[start..end]
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Whether `span` lies inside a `[REDACTED:…]` placeholder: a `[REDACTED:` opening at most 80 bytes
/// before it, with only placeholder characters (rule-id characters, `:` and hex, and a final `]`)
/// from there to the end of the span. Nothing after the span is read, so a stream that has not seen the closing `]`
/// yet decides the same as the whole text.
fn inside_placeholder(text: &[u8], span: &Range<usize>) -> bool {
    let from = span.start.saturating_sub(80);
    let Some(open) = text[from..span.end]
        .windows(PLACEHOLDER_PREFIX.len())
        .rposition(|w| w == PLACEHOLDER_PREFIX)
        .map(|p| from + p)
    else {
        return false;
    };
    let inner = &text[open + PLACEHOLDER_PREFIX.len()..span.end];
    // The span may end with the placeholder's own closing bracket.
    let inner = inner.strip_suffix(b"]").unwrap_or(inner);
    open <= span.start
        && inner
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}
