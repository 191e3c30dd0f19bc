//! A repository's main branch, read with gix: every commit, when it reached the branch, which ones
//! Tandem assisted, what reverted or fixed them, and how many of their lines were changed again.
//!
//! A commit *reached the branch* when the first commit of the branch's first-parent line that has it
//! as an ancestor was made (a merge commit's time for work merged from a side branch, its own time for
//! work committed or fast-forwarded onto the branch).
//!
//! Rework follows the code-churn studies: a line an assisted commit introduced counts as reworked
//! within N days when, at the branch as it was N days after the commit reached it, blame no longer
//! attributes that line to the commit (it was changed or deleted). Only commits whose window has ended
//! are counted. A renamed file counts as deleted.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::Path;

use gix::ObjectId;
use gix::bstr::{BStr, ByteSlice};

use crate::error::git;
use crate::{Error, Result};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// How far before the period the history is read: reverts, fixes and rework only look forward from a
/// commit, so older commits matter only as side-branch work merged in the period. Work on a branch for
/// longer than this before its merge is not seen.
const HORIZON_MS: i64 = 90 * DAY_MS;
/// Blame stops at commits made this long before the commit whose lines it counts: older lines cannot
/// be that commit's, and a whole-history walk per file would make long histories slow. (A commit made
/// after this one but dated more than a week before it would hide its lines; rebases and merges
/// re-date commits, so this does not happen in practice.)
const BLAME_MARGIN_MS: i64 = 7 * DAY_MS;

/// Lines an assisted commit introduced and how many were changed again.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rework {
    /// Lines the commit introduced (blame at the commit attributes them to it).
    pub lines: u64,
    /// Of those, lines changed or deleted within 14 days; `None` while the window is open.
    pub within_14d: Option<u64>,
    /// Within 21 days.
    pub within_21d: Option<u64>,
}

/// One commit of the branch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Commit {
    /// Full hex id.
    pub id: String,
    /// Committer time, Unix milliseconds.
    pub time_ms: i64,
    /// When it reached the branch, Unix milliseconds.
    pub merged_ms: i64,
    /// The first line of the message.
    pub subject: String,
    /// The `Tandem-Task` trailer.
    pub task: Option<String>,
    /// Whether Tandem assisted it (a `Tandem-Task` or `Assisted-by: tandem…` trailer).
    pub assisted: bool,
    /// Ids named by `This reverts commit <id>`.
    pub reverts: Vec<String>,
    /// Commit ids or prefixes named by `Fixes:` trailers.
    pub fixes: Vec<String>,
    /// Paths it changed against its first parent (assisted commits only).
    pub files: Vec<String>,
    /// Its rework (assisted commits only).
    pub rework: Option<Rework>,
}

/// A repository's main branch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// The repository's path.
    pub path: String,
    /// The branch read.
    pub branch: String,
    /// The branch's commit.
    pub head: String,
    /// The commits reachable from the branch made in the 90 days before the period or since (older
    /// ones are not read; the branch's newest commit always is), in the order they reached it (oldest
    /// first).
    pub commits: Vec<Commit>,
}

/// Trailers and markers read from a commit message.
#[derive(Default)]
struct Message {
    subject: String,
    task: Option<String>,
    assisted: bool,
    reverts: Vec<String>,
    fixes: Vec<String>,
}

fn parse_message(text: &str) -> Message {
    let mut m = Message {
        subject: text.lines().next().unwrap_or_default().trim().to_owned(),
        ..Message::default()
    };
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("This reverts commit ") {
            let id: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
            if id.len() >= 7 {
                m.reverts.push(id.to_ascii_lowercase());
            }
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim().to_ascii_lowercase().as_str() {
            "tandem-task" if !value.is_empty() => {
                m.task = Some(value.to_owned());
                m.assisted = true;
            }
            "assisted-by" if value.starts_with("tandem") => m.assisted = true,
            "fixes" => {
                let id: String = value.chars().take_while(char::is_ascii_hexdigit).collect();
                if id.len() >= 7 {
                    m.fixes.push(id.to_ascii_lowercase());
                }
            }
            _ => {}
        }
    }
    m
}

fn millis(commit: &gix::Commit<'_>) -> Result<i64> {
    let time = commit
        .time()
        .map_err(|e| git("reading a commit's time")(e.to_string()))?;
    Ok(time.seconds.saturating_mul(1000))
}

fn first_parent(commit: &gix::Commit<'_>) -> Option<ObjectId> {
    commit.parent_ids().next().map(|id| id.detach())
}

impl History {
    /// Reads `branch` (default: `HEAD`) of the repository at `path`, computing rework as of `now_ms`
    /// for the assisted commits that reached the branch at or after `since_ms`.
    pub fn read(path: &Path, branch: Option<&str>, since_ms: i64, now_ms: i64) -> Result<History> {
        let repo = gix::open(path)
            .map_err(|e| git(&format!("opening {}", path.display()))(e.to_string()))?;
        let (head, branch) = match branch {
            Some(name) => {
                let id = repo
                    .rev_parse_single(name)
                    .map_err(|e| git(&format!("finding branch `{name}`"))(e.to_string()))?;
                (id.detach(), name.to_owned())
            }
            None => {
                let commit = repo
                    .head_commit()
                    .map_err(|e| git("reading HEAD")(e.to_string()))?;
                let name = repo
                    .head_name()
                    .ok()
                    .flatten()
                    .map(|n| n.shorten().to_string())
                    .unwrap_or_else(|| "HEAD".to_owned());
                (commit.id, name)
            }
        };

        // The first-parent line back to the horizon, oldest first.
        let horizon = since_ms.saturating_sub(HORIZON_MS);
        let mut line = Vec::new();
        let mut next = Some(head);
        while let Some(id) = next {
            let commit = find(&repo, id)?;
            let time = millis(&commit)?;
            if time < horizon && !line.is_empty() {
                break;
            }
            line.push((id, time));
            next = first_parent(&commit);
        }
        line.reverse();

        // Every commit, in the order it reached the branch.
        let mut seen = HashSet::new();
        let mut commits = Vec::new();

        for &(tip, merged_ms) in &line {
            let mut queue = VecDeque::from([tip]);
            let mut batch = Vec::new();
            while let Some(id) = queue.pop_front() {
                if !seen.insert(id) {
                    continue;
                }
                let commit = find(&repo, id)?;
                let time = millis(&commit)?;
                if time < horizon && id != tip {
                    continue;
                }
                queue.extend(commit.parent_ids().map(|p| p.detach()));
                batch.push((time, id, commit));
            }
            batch.sort_by_key(|(time, _, _)| *time);
            for (time_ms, id, commit) in batch {
                let text = commit
                    .message_raw()
                    .map_err(|e| git("reading a commit message")(e.to_string()))?
                    .to_str_lossy()
                    .into_owned();
                let m = parse_message(&text);
                let files = if m.assisted && merged_ms >= since_ms {
                    changed_files(&repo, &commit)?
                } else {
                    Vec::new()
                };

                commits.push(Commit {
                    id: id.to_string(),
                    time_ms,
                    merged_ms,
                    subject: m.subject,
                    task: m.task,
                    assisted: m.assisted,
                    reverts: m.reverts,
                    fixes: m.fixes,
                    files,
                    rework: None,
                });
            }
        }

        let mut blames = Blames::new(&repo);
        for commit in &mut commits {
            if !commit.assisted || commit.merged_ms < since_ms {
                continue;
            }
            let id = parse_id(&commit.id)?;
            let mut rework = Rework::default();
            let mut survived = [0u64; 2];
            let windows = [14, 21].map(|days| {
                let end = commit.merged_ms + days * DAY_MS;
                (end <= now_ms).then(|| snapshot(&line, end))
            });
            for file in &commit.files {
                let since = (commit.time_ms.min(commit.merged_ms) - BLAME_MARGIN_MS) / 1000;
                let introduced = blames.lines_of(id, file, id, since)?;
                rework.lines += introduced;
                for (slot, window) in windows.iter().enumerate() {
                    if let Some(at) = window {
                        survived[slot] += blames.lines_of(*at, file, id, since)?.min(introduced);
                    }
                }
            }
            rework.within_14d = windows[0].map(|_| rework.lines - survived[0]);
            rework.within_21d = windows[1].map(|_| rework.lines - survived[1]);
            commit.rework = Some(rework);
        }
        Ok(History {
            path: path.display().to_string(),
            branch,
            head: head.to_string(),
            commits,
        })
    }

    /// The commit with this full id or unique prefix (at least 7 hex digits).
    pub fn find(&self, id: &str) -> Option<&Commit> {
        if id.len() < 7 {
            return None;
        }
        let mut found = self.commits.iter().filter(|c| c.id.starts_with(id));
        let first = found.next()?;
        found.next().is_none().then_some(first)
    }
}

/// The newest first-parent commit made at or before `at_ms` (the branch as it was then).
fn snapshot(line: &[(ObjectId, i64)], at_ms: i64) -> ObjectId {
    let mut current = line[0].0;
    for &(id, time) in line {
        if time > at_ms {
            break;
        }
        current = id;
    }
    current
}

fn parse_id(hex: &str) -> Result<ObjectId> {
    ObjectId::from_hex(hex.as_bytes()).map_err(|e| git("parsing a commit id")(e.to_string()))
}

fn find<'r>(repo: &'r gix::Repository, id: ObjectId) -> Result<gix::Commit<'r>> {
    repo.find_commit(id)
        .map_err(|e| git(&format!("reading commit {id}"))(e.to_string()))
}

/// Paths a commit changed against its first parent (against nothing for a root commit).
fn changed_files(repo: &gix::Repository, commit: &gix::Commit<'_>) -> Result<Vec<String>> {
    let tree = commit
        .tree()
        .map_err(|e| git("reading a tree")(e.to_string()))?;
    let parent_tree = match first_parent(commit) {
        Some(parent) => Some(
            find(repo, parent)?
                .tree()
                .map_err(|e| git("reading a tree")(e.to_string()))?,
        ),
        None => None,
    };
    let mut options = gix::diff::Options::default();
    options.track_path().track_rewrites(None);
    let changes = repo
        .diff_tree_to_tree(parent_tree.as_ref(), Some(&tree), Some(options))
        .map_err(|e| git("diffing a commit")(e.to_string()))?;
    let mut files: Vec<String> = changes
        .iter()
        .filter(|c| !c.entry_mode().is_tree())
        .map(|c| c.location().to_str_lossy().into_owned())
        .collect();
    files.sort();
    files.dedup();
    Ok(files)
}

/// Blame results, each file at each commit computed once: lines per introducing commit.
struct Blames<'r> {
    repo: &'r gix::Repository,
    done: HashMap<(ObjectId, String, i64), BTreeMap<ObjectId, u64>>,
}

impl<'r> Blames<'r> {
    fn new(repo: &'r gix::Repository) -> Self {
        Blames {
            repo,
            done: HashMap::new(),
        }
    }

    /// Lines of `file` at `at` that blame attributes to `origin`, looking no further back than
    /// `since_s` (0 when the file is gone or binary).
    fn lines_of(
        &mut self,
        at: ObjectId,
        file: &str,
        origin: ObjectId,
        since_s: i64,
    ) -> Result<u64> {
        let key = (at, file.to_owned(), since_s);
        if !self.done.contains_key(&key) {
            let counts = self.blame(at, file, since_s)?;
            self.done.insert(key.clone(), counts);
        }
        Ok(self
            .done
            .get(&key)
            .and_then(|c| c.get(&origin))
            .copied()
            .unwrap_or(0))
    }

    fn blame(&self, at: ObjectId, file: &str, since_s: i64) -> Result<BTreeMap<ObjectId, u64>> {
        let path: &BStr = file.as_bytes().as_bstr();
        let options = gix::repository::blame_file::Options {
            since: Some(gix::date::Time::new(since_s, 0)),
            ..Default::default()
        };
        let outcome = match self.repo.blame_file(path, at, options) {
            Ok(outcome) => outcome,
            Err(gix::repository::blame_file::Error::Blame(missing)) if is_missing(&missing) => {
                return Ok(BTreeMap::new());
            }
            Err(e) => return Err(Error::Git(format!("blaming {file} at {at}: {e}"))),
        };
        let mut counts = BTreeMap::new();
        if outcome.blob.contains(&0) {
            return Ok(counts);
        }
        for entry in &outcome.entries {
            *counts.entry(entry.commit_id).or_insert(0) += u64::from(entry.len.get());
        }
        Ok(counts)
    }
}

/// Whether blame failed because the file does not exist at that commit.
fn is_missing(error: &gix::blame::Error) -> bool {
    matches!(error, gix::blame::Error::FileMissing { .. })
}
