//! Commits with provenance: the changed files, as they are in the working tree, become a commit on
//! `tandem/<slug>` on top of `HEAD`, built through a temporary index so the person's own index and
//! branch stay as they are. Uses the `git` program.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::{Error, Result};

fn git(repo: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("git");
    c.arg("-C").arg(repo).args(args);
    c
}

fn output(command: Command, input: Option<&str>) -> Result<String> {
    raw(command, input).map(|s| s.trim().to_owned())
}

/// Standard output as it is (porcelain status lines start with a space; file contents end with
/// their newline).
fn raw(mut command: Command, input: Option<&str>) -> Result<String> {
    command
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|e| Error::Git(format!("running git: {e}")))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        std::io::Write::write_all(&mut stdin, text.as_bytes())
            .map_err(|e| Error::Git(format!("writing to git: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::Git(format!("running git: {e}")))?;
    if !out.status.success() {
        return Err(Error::Git(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A branch-name-safe slug of `text`: lowercase words joined by `-`, at most 40 characters.
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    for word in text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        if out.len() + word.len() + 1 > 40 {
            break;
        }
        if !out.is_empty() {
            out.push('-');
        }
        out.push_str(&word.to_ascii_lowercase());
    }
    if out.is_empty() {
        "edit".to_owned()
    } else {
        out
    }
}

/// The repository's git directory.
pub fn git_dir(repo: &Path) -> Result<std::path::PathBuf> {
    output(git(repo, &["rev-parse", "--absolute-git-dir"]), None).map(std::path::PathBuf::from)
}

/// Paths (relative) that differ from `HEAD` in the work tree: modified, added, deleted, untracked
/// (not ignored).
pub fn changed_paths(repo: &Path) -> Result<Vec<String>> {
    let text = raw(
        git(repo, &["status", "--porcelain=v1", "-uall", "--no-renames"]),
        None,
    )?;
    Ok(text
        .lines()
        .filter_map(|line| line.get(3..))
        .map(|p| p.trim_matches('"').to_owned())
        .collect())
}

/// A file's content at `HEAD`, if it exists there.
pub fn head_content(repo: &Path, path: &str) -> Option<String> {
    raw(git(repo, &["show", &format!("HEAD:{path}")]), None).ok()
}

/// The configured user name, or `None`.
pub fn user_name(repo: &Path) -> Option<String> {
    output(git(repo, &["config", "user.name"]), None)
        .ok()
        .filter(|s| !s.is_empty())
}

/// Commits `files` (paths relative to `repo`) on a new branch `tandem/<slug>` (with `-2`, `-3`…
/// when taken) on top of `HEAD`. Returns the branch and the commit id.
pub fn commit_on_branch(
    repo: &Path,
    slug: &str,
    files: &[String],
    message: &str,
) -> Result<(String, String)> {
    let head = output(git(repo, &["rev-parse", "HEAD"]), None)?;
    let git_dir = output(git(repo, &["rev-parse", "--absolute-git-dir"]), None)?;
    let index = Path::new(&git_dir).join(format!("tandem-index-{}", std::process::id()));
    let with_index = |args: &[&str]| {
        let mut c = git(repo, args);
        c.env("GIT_INDEX_FILE", &index);
        c
    };
    let result = (|| {
        output(with_index(&["read-tree", "HEAD"]), None)?;
        let mut add: Vec<&str> = vec!["update-index", "--add", "--remove", "--"];
        add.extend(files.iter().map(String::as_str));
        output(with_index(&add), None)?;
        let tree = output(with_index(&["write-tree"]), None)?;
        let mut commit = git(repo, &["commit-tree", &tree, "-p", &head, "-F", "-"]);
        if user_name(repo).is_none() {
            for (k, v) in [
                ("GIT_AUTHOR_NAME", "tandem"),
                ("GIT_AUTHOR_EMAIL", "tandem@localhost"),
                ("GIT_COMMITTER_NAME", "tandem"),
                ("GIT_COMMITTER_EMAIL", "tandem@localhost"),
            ] {
                commit.env(k, v);
            }
        }
        let commit = output(commit, Some(message))?;
        let mut branch = format!("tandem/{slug}");
        let mut n = 2;
        while output(
            git(
                repo,
                &[
                    "rev-parse",
                    "--verify",
                    "--quiet",
                    &format!("refs/heads/{branch}"),
                ],
            ),
            None,
        )
        .is_ok()
        {
            branch = format!("tandem/{slug}-{n}");
            n += 1;
        }
        output(
            git(
                repo,
                &["update-ref", &format!("refs/heads/{branch}"), &commit, ""],
            ),
            None,
        )?;
        Ok((branch, commit))
    })();
    let _ = std::fs::remove_file(&index);
    result
}
