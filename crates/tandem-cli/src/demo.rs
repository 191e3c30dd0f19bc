//! `tandem demo`: a scratch repository, audit ledger and configuration filled with a synthetic
//! history, so a newcomer sees `tandem report` and the `/ui` dashboard in one command.
//!
//! Everything it writes is synthetic and says so: five people in three teams ask Tandem for changes
//! on working days over the last `--days` days, more as the weeks go on. Each task has a class (with
//! the router's classes and a realistic mix), goes to the live or the deep tier (fixes sometimes start
//! live and are escalated), streams at that tier's pace, is sometimes interrupted and steered, and
//! mostly lands as a commit with Tandem's trailers: live ones straight on `main`, deep ones through a
//! `tandem/<task>` branch and a merge. People commit in between and now and then touch lines Tandem
//! wrote (rework), revert a change or fix one (`Fixes:`); a few later gates fail on the same files.
//!
//! The numbers come from a seeded SplitMix64 generator, written out here (a dozen lines) because the
//! demo needs a reproducible stream for a given `--seed`, not statistical or cryptographic quality.

use std::collections::{BTreeMap, BinaryHeap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};
use tandem_audit::{ChangeEntry, CheckRun, Entry, FileChange, Principal, RequestEntry, Tokens};

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
const MINUTE_MS: i64 = 60_000;
/// The file that marks a directory as the demo's own, so a second run may replace it.
const MARKER: &str = ".tandem-demo";

/// Arguments of `tandem demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Where to write the demo (replaced when it holds an earlier demo).
    #[arg(long, default_value = "tandem-demo")]
    pub dir: PathBuf,
    /// Days of history to make.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(7..=365))]
    pub days: u32,
    /// Seed of the synthetic history (the same seed and day give the same history).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Only write the demo, print the report and exit; do not serve the dashboard.
    #[arg(long)]
    pub no_serve: bool,
    /// Listen address of the dashboard's server (default: the config's, 127.0.0.1:4000).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}

/// SplitMix64 (see the module comment for why it is written out).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        let span = u64::try_from(hi - lo + 1).unwrap_or(1).max(1);
        lo + i64::try_from(self.next() % span).unwrap_or(0)
    }

    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        let i = usize::try_from(self.next() % items.len().max(1) as u64).unwrap_or(0);
        &items[i.min(items.len() - 1)]
    }
}

const PEOPLE: [(&str, &str); 5] = [
    ("ada", "payments"),
    ("grace", "payments"),
    ("linus", "platform"),
    ("margaret", "platform"),
    ("alan", "mobile"),
];

/// Class, weight, share sent to the deep tier.
const CLASSES: [(&str, i64, f64); 8] = [
    ("rename", 18, 0.02),
    ("fix", 22, 0.25),
    ("test", 15, 0.10),
    ("refactor", 10, 0.80),
    ("migration", 5, 0.90),
    ("docs", 14, 0.02),
    ("config", 10, 0.05),
    ("other", 6, 0.60),
];

/// Prices per million tokens (input, output) of each tier's model, as written into the config.
const LIVE_PRICE: (f64, f64) = (0.10, 0.40);
const DEEP_PRICE: (f64, f64) = (1.25, 10.0);

fn files_for(class: &str) -> &'static [&'static str] {
    match class {
        "docs" => &["README.md", "docs/guide.md"],
        "test" => &["tests/parse.rs", "tests/api.rs"],
        "config" => &["Cargo.toml", "config/app.toml", ".ci/pipeline.yml"],
        _ => &["src/lib.rs", "src/parser.rs", "src/api.rs", "src/store.rs"],
    }
}

fn instruction(class: &str, file: &str) -> String {
    let what = match class {
        "rename" => "rename the helper for clarity in",
        "fix" => "fix the failing edge case in",
        "test" => "add tests for the parser errors in",
        "refactor" => "split the long function in",
        "migration" => "migrate the storage calls in",
        "docs" => "document the setup steps in",
        "config" => "bump the pinned version in",
        _ => "investigate the slow path in",
    };
    format!("{what} {file}")
}

/// Something that happens at a time; processed oldest first.
#[derive(PartialEq, Eq)]
enum Event {
    Task(u64),
    Human,
    Rework {
        commit: String,
        file: String,
        revert: bool,
        fix: bool,
    },
}

struct Timed(i64, u64, Event);

impl PartialEq for Timed {
    fn eq(&self, other: &Self) -> bool {
        (self.0, self.1) == (other.0, other.1)
    }
}
impl Eq for Timed {}
impl PartialOrd for Timed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Timed {
    // Reversed: BinaryHeap pops the greatest, and the earliest must come first.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.0, other.1).cmp(&(self.0, self.1))
    }
}

/// The scratch repository, its files in memory, and the git program that commits them.
struct Repo {
    dir: PathBuf,
    files: BTreeMap<String, Vec<String>>,
    counter: u64,
    /// Lines each commit wrote, per file (for later rework, reverts and fixes).
    wrote: BTreeMap<String, Vec<(String, String)>>,
}

impl Repo {
    fn git(&self, at_ms: i64, args: &[&str], input: Option<&str>) -> anyhow::Result<String> {
        let date = format!("@{} +0000", at_ms / 1000);
        let mut command = Command::new("git");
        command
            .arg("-C")
            .arg(&self.dir)
            .args([
                "-c",
                "user.name=Tandem demo",
                "-c",
                "user.email=demo@example.invalid",
            ])
            .args([
                "-c",
                "commit.gpgsign=false",
                "-c",
                "core.hooksPath=/dev/null",
            ])
            .args(args)
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().context("running git (is it installed?)")?;
        if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
            std::io::Write::write_all(&mut stdin, text.as_bytes())?;
        }
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "git {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    fn line(&mut self, file: &str) -> String {
        self.counter += 1;
        let n = self.counter;
        if file.ends_with(".md") {
            format!("- Note {n}: how the service handles case {}.", n % 17)
        } else if file.ends_with(".toml") {
            format!("setting_{n} = {}", n % 97)
        } else if file.ends_with(".yml") {
            format!("  step_{n}: run check {}", n % 13)
        } else {
            format!("    let value_{n} = compute_{}(input, {});", n % 23, n % 7)
        }
    }

    /// Replaces `replace` lines and inserts `add` lines of `file`; returns the new lines.
    fn edit(&mut self, rng: &mut Rng, file: &str, replace: i64, add: i64) -> Vec<String> {
        let mut fresh = Vec::new();
        for _ in 0..replace {
            let line = self.line(file);
            let len = self.files.get(file).map_or(0, Vec::len);
            if len == 0 {
                break;
            }
            let at = usize::try_from(rng.range(0, len as i64 - 1)).unwrap_or(0);
            if let Some(lines) = self.files.get_mut(file) {
                lines[at] = line.clone();
            }
            fresh.push(line);
        }
        for _ in 0..add {
            let line = self.line(file);
            let lines = self.files.entry(file.to_owned()).or_default();
            let at = usize::try_from(rng.range(0, lines.len() as i64)).unwrap_or(0);
            lines.insert(at.min(lines.len()), line.clone());
            fresh.push(line);
        }
        fresh
    }

    /// Rewrites the lines `commit` wrote in `file` that are still there (at most `max`).
    fn touch(&mut self, commit: &str, file: &str, max: usize) -> usize {
        let targets: Vec<String> = self
            .wrote
            .get(commit)
            .map(|w| {
                w.iter()
                    .filter(|(f, _)| f == file)
                    .map(|(_, l)| l.clone())
                    .take(max)
                    .collect()
            })
            .unwrap_or_default();
        let mut n = 0;
        for target in targets {
            let replacement = self.line(file);
            if let Some(lines) = self.files.get_mut(file)
                && let Some(at) = lines.iter().position(|l| *l == target)
            {
                lines[at] = replacement;
                n += 1;
            }
        }
        n
    }

    fn write_all(&self) -> anyhow::Result<()> {
        for (path, lines) in &self.files {
            let full = self.dir.join(path);
            if let Some(parent) = full.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let mut text = lines.join("\n");
            text.push('\n');
            std::fs::write(&full, text)?;
        }
        Ok(())
    }

    fn commit(&self, at_ms: i64, message: &str) -> anyhow::Result<String> {
        self.write_all()?;
        self.git(at_ms, &["add", "-A"], None)?;
        self.git(
            at_ms,
            &["commit", "-q", "--allow-empty", "-F", "-"],
            Some(message),
        )?;
        self.git(at_ms, &["rev-parse", "HEAD"], None)
    }
}

fn initial_files(repo: &mut Repo) {
    let skeleton: [(&str, usize); 12] = [
        ("README.md", 24),
        ("docs/guide.md", 30),
        ("Cargo.toml", 16),
        ("config/app.toml", 20),
        (".ci/pipeline.yml", 14),
        ("src/lib.rs", 60),
        ("src/parser.rs", 80),
        ("src/api.rs", 70),
        ("src/store.rs", 50),
        ("tests/parse.rs", 30),
        ("tests/api.rs", 30),
        ("CHANGELOG.md", 6),
    ];
    for (file, n) in skeleton {
        let lines = (0..n * 3).map(|_| repo.line(file)).collect();
        repo.files.insert(file.to_owned(), lines);
    }
}

fn cost((input, output): (u64, u64), (p_in, p_out): (f64, f64)) -> f64 {
    (input as f64 * p_in + output as f64 * p_out) / 1e6
}

struct Request {
    tier: &'static str,
    class: &'static str,
    session: String,
    started: i64,
    stream: bool,
    outcome: &'static str,
    tokens: (u64, u64),
    ttft: Option<u64>,
    latency: u64,
    reason: &'static str,
}

fn principal(user: &str, team: &str) -> Principal {
    Principal {
        user: user.to_owned(),
        teams: vec![team.to_owned()],
        project: Some("checkout-service".into()),
        key_id: None,
    }
}

impl Request {
    /// The ledger entry of this request, as the gateway would have sealed it.
    fn entry(&self, id: String, user: &str, team: &str) -> RequestEntry {
        let price = if self.tier == "live" {
            LIVE_PRICE
        } else {
            DEEP_PRICE
        };
        RequestEntry {
            id,
            started_at_ms: self.started,
            principal: principal(user, team),
            client: Some("tandem-agent (demo)".into()),
            session: Some(self.session.clone()),
            api: "chat".into(),
            stream: self.stream,
            model: "auto".into(),
            tier: Some(self.tier.to_owned()),
            target: Some(format!("local/{}", self.tier)),
            route_reason: Some(self.reason.to_owned()),
            class: Some(self.class.to_owned()),
            status: 200,
            outcome: self.outcome.to_owned(),
            tokens: Tokens {
                input: self.tokens.0,
                output: self.tokens.1,
                exact: self.outcome == "ok",
                ..Tokens::default()
            },
            cost_usd: cost(self.tokens, price),
            latency_ms: self.latency,
            ttft_ms: self.ttft,
            ..RequestEntry::default()
        }
    }
}

/// Writes the demo under `args.dir`; returns the config file's path.
pub fn generate(args: &DemoArgs) -> anyhow::Result<PathBuf> {
    let dir = &args.dir;
    if dir.exists() {
        let empty = std::fs::read_dir(dir)?.next().is_none();
        if !empty && !dir.join(MARKER).exists() {
            bail!(
                "{} exists and is not an earlier demo; choose another --dir",
                dir.display()
            );
        }
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("removing the earlier demo in {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir.join("repo"))?;
    let dir = dir.canonicalize()?;
    std::fs::write(
        dir.join(MARKER),
        "Written by `tandem demo`: a synthetic history, not real data.\n",
    )?;
    let now = crate::report::now_ms();
    let start = (now - i64::from(args.days) * DAY_MS).div_euclid(DAY_MS) * DAY_MS;
    let mut rng = Rng(args.seed);
    let mut repo = Repo {
        dir: dir.join("repo"),
        files: BTreeMap::new(),
        counter: 0,
        wrote: BTreeMap::new(),
    };
    repo.git(start, &["init", "-q", "-b", "main"], None)?;
    initial_files(&mut repo);
    repo.commit(
        start + 8 * HOUR_MS,
        "Initial import of the checkout service\n\n(Synthetic history written by `tandem demo`.)",
    )?;

    // Schedule the tasks and people's own commits, day by day.
    let mut queue = BinaryHeap::new();
    let mut seq = 0u64;
    let days = i64::from(args.days);
    for day in 0..days {
        let day_ms = start + day * DAY_MS;
        let weekday = (day_ms.div_euclid(DAY_MS) + 3).rem_euclid(7);
        if weekday >= 5 && !rng.chance(0.1) {
            continue;
        }
        // Adoption grows: two or three tasks a day at first, five to eight at the end.
        let tasks = rng.range(2, 3) + (day * 5) / days;
        for _ in 0..tasks {
            seq += 1;
            let at = day_ms + 8 * HOUR_MS + rng.range(0, 9 * 60) * MINUTE_MS;
            queue.push(Timed(at, seq, Event::Task(seq)));
        }
        for _ in 0..rng.range(1, 3) {
            seq += 1;
            let at = day_ms + 9 * HOUR_MS + rng.range(0, 8 * 60) * MINUTE_MS;
            queue.push(Timed(at, seq, Event::Human));
        }
    }

    let audit_dir = dir.join("state/audit");
    let ledger = tandem_audit::Ledger::open(&audit_dir, tandem_audit::Options::default())
        .context("opening the demo's audit ledger")?;
    let append = |entry: Entry| -> anyhow::Result<()> {
        ledger.append(&entry, None)?;
        Ok(())
    };
    let mut recent_ai: Vec<(String, String)> = Vec::new();
    let mut spend: BTreeMap<(String, String), (u64, f64, u64)> = BTreeMap::new();
    let month_start = tandem_budget::Period::Month.window_start(now);
    let day_start = tandem_budget::Period::Day.window_start(now);
    let mut landed = 0u64;
    while let Some(Timed(at, id, event)) = queue.pop() {
        if at > now {
            continue;
        }
        match event {
            Event::Human => {
                let message = if let (true, Some((commit, f))) =
                    (rng.chance(0.15), recent_ai.last().cloned())
                {
                    // Someone tidies up what Tandem just wrote.
                    repo.touch(&commit, &f, usize::try_from(rng.range(1, 2)).unwrap_or(1));
                    format!("Tidy up {f}")
                } else {
                    let all: Vec<String> = repo.files.keys().cloned().collect();
                    let file = rng.pick(&all).clone();
                    let (replace, add) = (rng.range(1, 4), rng.range(0, 3));
                    repo.edit(&mut rng, &file, replace, add);
                    format!("Adjust {file}")
                };
                repo.commit(at, &message)?;
            }
            Event::Rework {
                commit,
                file,
                revert,
                fix,
            } => {
                repo.touch(&commit, &file, usize::MAX);
                let message = if revert {
                    format!("Revert the change to {file}\n\nThis reverts commit {commit}.")
                } else if fix {
                    format!("Fix a regression in {file}\n\nFixes: {}", &commit[..12])
                } else {
                    format!("Rework {file}")
                };
                repo.commit(at, &message)?;
            }
            Event::Task(n) => {
                let (user, team) = *rng.pick(&PEOPLE);
                let total: i64 = CLASSES.iter().map(|c| c.1).sum();
                let mut roll = rng.range(1, total);
                let (class, _, deep_share) = *CLASSES
                    .iter()
                    .find(|c| {
                        roll -= c.1;
                        roll <= 0
                    })
                    .unwrap_or(&CLASSES[7]);
                let escalated = class == "fix" && rng.chance(0.2);
                let tier = if escalated || rng.chance(deep_share) {
                    "deep"
                } else {
                    "live"
                };
                let task = format!("demo{n:05}");
                let file = rng.pick(files_for(class)).to_string();
                let mut requests = Vec::new();
                let mut t = at;
                let live_request = |rng: &mut Rng, t: i64, outcome: &'static str, reason| {
                    let output = u64::try_from(rng.range(120, 900)).unwrap_or(200);
                    let ttft = u64::try_from(rng.range(45, 190)).unwrap_or(80);
                    let speed = rng.range(900, 1800) as f64;
                    let streamed = (output as f64 / speed * 1000.0) as u64;
                    let (output, latency) = if outcome == "cancelled" {
                        (output / 3, ttft + streamed / 3)
                    } else {
                        (output, ttft + streamed)
                    };
                    Request {
                        tier: "live",
                        class,
                        session: String::new(),
                        started: t,
                        stream: true,
                        outcome,
                        tokens: (
                            u64::try_from(rng.range(1_500, 9_000)).unwrap_or(2_000),
                            output,
                        ),
                        ttft: Some(ttft),
                        latency,
                        reason,
                    }
                };
                if tier == "live" || escalated {
                    if rng.chance(0.15) {
                        requests.push(live_request(&mut rng, t, "cancelled", "rule:short-edit"));
                        t += rng.range(5, 40) * 1000;
                    }
                    requests.push(live_request(&mut rng, t, "ok", "rule:short-edit"));
                    t += rng.range(30, 240) * 1000;
                }
                if tier == "deep" {
                    for turn in 0..rng.range(2, 6) {
                        let output = u64::try_from(rng.range(400, 4_000)).unwrap_or(800);
                        let ttft = u64::try_from(rng.range(500, 2_400)).unwrap_or(900);
                        let speed = rng.range(60, 140) as f64;
                        let latency = ttft + (output as f64 / speed * 1000.0) as u64;
                        requests.push(Request {
                            tier: "deep",
                            class,
                            session: String::new(),
                            started: t,
                            stream: turn > 0,
                            outcome: "ok",
                            tokens: (
                                u64::try_from(rng.range(12_000, 70_000)).unwrap_or(20_000),
                                output,
                            ),
                            ttft: (turn > 0).then_some(ttft),
                            latency,
                            reason: if escalated && turn == 0 {
                                "escalate:check-failed"
                            } else if turn == 0 {
                                "rule:deep-verbs"
                            } else {
                                "session:sticky"
                            },
                        });
                        t += i64::try_from(latency).unwrap_or(0) + rng.range(5, 60) * 1000;
                    }
                }
                let mut ids = Vec::new();
                for (k, mut r) in requests.into_iter().enumerate() {
                    r.session.clone_from(&task);
                    let price = if r.tier == "live" {
                        LIVE_PRICE
                    } else {
                        DEEP_PRICE
                    };
                    let usd = cost(r.tokens, price);
                    let request_id = format!("req-{task}-{k}");
                    ids.push(request_id.clone());
                    if r.started >= month_start {
                        let e = spend
                            .entry(("team-month".into(), format!("team:{team}")))
                            .or_default();
                        *e = (e.0 + r.tokens.0 + r.tokens.1, e.1 + usd, e.2 + 1);
                    }
                    if r.started >= day_start {
                        let e = spend
                            .entry(("team-day".into(), format!("team:{team}")))
                            .or_default();
                        *e = (e.0 + r.tokens.0 + r.tokens.1, e.1 + usd, e.2 + 1);
                    }
                    append(Entry::Request(r.entry(request_id, user, team)))?;
                }
                // Review and gates, then the commit: minutes for live edits, hours for deep tasks.
                let lead = if tier == "live" {
                    rng.range(2, 45) * MINUTE_MS
                } else {
                    rng.range(60, 26 * 60) * MINUTE_MS
                };
                let land = t + lead;
                let merged = rng.chance(0.92) && land < now;
                let (replace, add) = match class {
                    "rename" => (rng.range(2, 6), 0),
                    "fix" => (rng.range(1, 4), rng.range(0, 3)),
                    "test" => (0, rng.range(5, 18)),
                    "refactor" => (rng.range(5, 12), rng.range(3, 8)),
                    "migration" => (rng.range(8, 16), rng.range(2, 6)),
                    "docs" => (rng.range(0, 2), rng.range(3, 9)),
                    "config" => (rng.range(1, 3), 0),
                    _ => (rng.range(1, 5), rng.range(1, 5)),
                };
                let checks = vec![
                    CheckRun {
                        name: "dlp".into(),
                        command: None,
                        passed: true,
                        duration_ms: u64::try_from(rng.range(3, 30)).unwrap_or(5),
                    },
                    CheckRun {
                        name: "test".into(),
                        command: Some("cargo test".into()),
                        passed: true,
                        duration_ms: u64::try_from(rng.range(4_000, 40_000)).unwrap_or(9_000),
                    },
                ];
                let subject = instruction(class, &file);
                let mut commit = None;
                if merged {
                    let before = repo.files.clone();
                    let fresh = repo.edit(&mut rng, &file, replace, add);
                    let message = format!(
                        "{}{}\n\nInitiated by {user} with `tandem {}`.\n\nAssisted-by: tandem:{tier}/local/{tier}\nTandem-Task: {task}\n",
                        subject[..1].to_uppercase(),
                        &subject[1..],
                        if tier == "live" { "edit" } else { "task" }
                    );
                    let id = if tier == "deep" {
                        // Through a branch and a merge, as a reviewed pull request would land.
                        let branch = format!("tandem/{task}");
                        let after = std::mem::replace(&mut repo.files, before);
                        repo.write_all()?;
                        repo.git(land, &["checkout", "-q", "-b", &branch], None)?;
                        repo.files = after;
                        let id = repo.commit(land - 10 * MINUTE_MS, &message)?;
                        repo.git(land, &["checkout", "-q", "main"], None)?;
                        repo.git(
                            land,
                            &[
                                "merge",
                                "-q",
                                "--no-ff",
                                "-m",
                                &format!("Merge branch '{branch}'"),
                                &branch,
                            ],
                            None,
                        )?;
                        id
                    } else {
                        repo.commit(land, &message)?
                    };
                    repo.wrote.insert(
                        id.clone(),
                        fresh.into_iter().map(|l| (file.clone(), l)).collect(),
                    );
                    recent_ai.push((id.clone(), file.clone()));
                    if recent_ai.len() > 6 {
                        recent_ai.remove(0);
                    }
                    // What happens to it later.
                    let roll = rng.range(1, 100);
                    let later =
                        |rng: &mut Rng, lo: i64, hi: i64| land + rng.range(lo, hi) * HOUR_MS;
                    let follow = match roll {
                        1..=3 => Some((later(&mut rng, 24, 240), true, false)),
                        4..=8 => Some((later(&mut rng, 12, 144), false, true)),
                        9..=16 => Some((later(&mut rng, 24, 500), false, false)),
                        _ => None,
                    };
                    if let Some((when, revert, fix)) = follow {
                        seq += 1;
                        queue.push(Timed(
                            when,
                            seq,
                            Event::Rework {
                                commit: id.clone(),
                                file: file.clone(),
                                revert,
                                fix,
                            },
                        ));
                    }
                    landed += 1;
                    commit = Some(id);
                }
                append(Entry::Change(ChangeEntry {
                    task: task.clone(),
                    principal: principal(user, team),
                    tier: Some(tier.to_owned()),
                    class: Some(class.to_owned()),
                    requests: ids,
                    repository: Some(repo.dir.display().to_string()),
                    files: vec![FileChange {
                        path: file.clone(),
                        sha256: None,
                        added: u64::try_from(replace + add).unwrap_or(0),
                        removed: u64::try_from(replace).unwrap_or(0),
                    }],
                    diff_sha256: format!("{:064x}", rng.next()),
                    checks,
                    accepted: true,
                    decided_by: Some(user.to_owned()),
                    reason: Some("accepted by the person; every gate that ran passed".into()),
                    commit,
                    ..ChangeEntry::default()
                }))?;
                // Now and then a later change to the same file fails its gate.
                let followup_at = land + rng.range(4, 200) * HOUR_MS;
                if merged && rng.chance(0.05) && followup_at < now {
                    let followup = format!("{task}-followup");
                    let mut r = live_request(&mut rng, followup_at, "ok", "rule:short-edit");
                    r.class = "fix";
                    r.session.clone_from(&followup);
                    append(Entry::Request(r.entry(
                        format!("req-{followup}"),
                        user,
                        team,
                    )))?;
                    append(Entry::Change(ChangeEntry {
                        task: followup,
                        principal: principal(user, team),
                        tier: Some("live".into()),
                        class: Some("fix".into()),
                        files: vec![FileChange {
                            path: file.clone(),
                            sha256: None,
                            added: 1,
                            removed: 1,
                        }],
                        diff_sha256: format!("{:064x}", rng.next()),
                        checks: vec![CheckRun {
                            name: "test".into(),
                            command: Some("cargo test".into()),
                            passed: false,
                            duration_ms: 12_000,
                        }],
                        accepted: false,
                        decided_by: Some("gates".into()),
                        reason: Some("the test gate failed".into()),
                        ..ChangeEntry::default()
                    }))?;
                }
                let _ = id;
            }
        }
    }
    ledger.close().context("sealing the demo's audit ledger")?;

    // Settled budget spend, so the dashboard's budget panel shows this month and today.
    let store =
        tandem_store::Store::open(&dir.join("state")).context("opening the demo's store")?;
    let rows: Vec<tandem_store::BudgetRow> = spend
        .into_iter()
        .map(
            |((rule, scope), (tokens, usd, requests))| tandem_store::BudgetRow {
                window_start_ms: if rule == "team-day" {
                    day_start
                } else {
                    month_start
                },
                rule,
                scope,
                tokens,
                cost_nanos: (usd * 1e9) as u64,
                requests,
            },
        )
        .collect();
    store.save_budget_usage(&rows)?;
    store.flush()?;

    let config = dir.join("tandem.toml");
    std::fs::write(&config, config_text(&dir))?;
    tracing::info!(
        commits = landed,
        dir = %dir.display(),
        "synthetic demo history written"
    );
    Ok(config)
}

fn config_text(dir: &Path) -> String {
    format!(
        r#"# Written by `tandem demo`: a SYNTHETIC history for trying `tandem report` and the /ui dashboard.
# Serve it with: TANDEM_ADMIN_TOKEN=<token> tandem serve --config {config}
[server]
state_dir = {state:?}

# The embedded default's upstream: llama.cpp's `llama-server` or `tandem testkit` on port 8080.
[[providers]]
name = "local"
kind = "openai"
base_url = "{upstream}"
api_key_env = "TANDEM_UPSTREAM_API_KEY"

[tiers.live]
fallback_tier = "deep"
[[tiers.live.targets]]
provider = "local"
model = "live"

[tiers.deep]
[[tiers.deep.targets]]
provider = "local"
model = "deep"

[prices."local/live"]
input_per_mtok = {live_in}
output_per_mtok = {live_out}

[prices."local/deep"]
input_per_mtok = {deep_in}
output_per_mtok = {deep_out}

[[budgets]]
name = "team-day"
applies_to = "team:*"
period = "day"
max_cost_usd = 6.0

[[budgets]]
name = "team-month"
applies_to = "team:*"
period = "month"
max_tokens = 40000000

[report]
repositories = ["repo"]
"#,
        config = dir.join("tandem.toml").display(),
        state = dir.join("state").display().to_string(),
        upstream = tandem_config::DEFAULT_UPSTREAM,
        live_in = LIVE_PRICE.0,
        live_out = LIVE_PRICE.1,
        deep_in = DEEP_PRICE.0,
        deep_out = DEEP_PRICE.1,
    )
}
