//! `tandem pr`: a pull request for a `tandem/<slug>` branch. The description is written from the
//! branch's commits and their provenance trailers; with a forge configured, the branch is pushed and
//! the pull request opened through the forge's API (GitHub, or Gitea/Forgejo, whose API matches).

use std::path::Path;

use serde_json::json;

use crate::{Error, Result};

/// Which forge API to call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forge {
    /// `POST {api}/repos/{owner}/{repo}/pulls`, `Authorization: Bearer`.
    GitHub,
    /// `POST {api}/repos/{owner}/{repo}/pulls` under `/api/v1`, `Authorization: token`.
    Gitea,
}

/// A pull request to open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullRequest {
    /// The title: the first commit's subject.
    pub title: String,
    /// Markdown: what changed, the gates, and the provenance of each commit.
    pub body: String,
}

/// One commit of the branch.
struct Commit {
    id: String,
    subject: String,
    body: String,
}

/// The description of `branch` against `base`.
pub fn describe(repo: &Path, base: &str, branch: &str) -> Result<PullRequest> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(repo)
        .args([
            "log",
            "--reverse",
            "--format=%H%x00%s%x00%b%x1e",
            &format!("{base}..{branch}"),
        ])
        .output()
        .map_err(|e| Error::Git(format!("running git: {e}")))?;
    if !out.status.success() {
        return Err(Error::Git(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let commits: Vec<Commit> = text
        .split('\u{1e}')
        .filter_map(|record| {
            let mut fields = record.trim_start_matches('\n').splitn(3, '\0');
            let id = fields.next()?.trim().to_owned();
            if id.is_empty() {
                return None;
            }
            Some(Commit {
                id,
                subject: fields.next().unwrap_or_default().to_owned(),
                body: fields.next().unwrap_or_default().trim().to_owned(),
            })
        })
        .collect();
    let Some(first) = commits.first() else {
        return Err(Error::Git(format!(
            "`{branch}` has no commits that `{base}` lacks"
        )));
    };
    let trailer = |body: &str, name: &str| {
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or("-")
            .to_owned()
    };
    let mut body = String::new();
    for c in &commits {
        let prose: Vec<&str> = c
            .body
            .lines()
            .filter(|l| {
                !["Assisted-by: ", "Tandem-Task: ", "Tandem-Ledger: "]
                    .iter()
                    .any(|t| l.starts_with(t))
            })
            .collect();
        body.push_str(&format!(
            "## {}\n\n{}\n\n",
            c.subject,
            prose.join("\n").trim()
        ));
    }
    body.push_str("## Provenance\n\n| commit | assisted by | task | audit ledger entry |\n|---|---|---|---:|\n");
    for c in &commits {
        body.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            &c.id[..c.id.len().min(12)],
            trailer(&c.body, "Assisted-by"),
            trailer(&c.body, "Tandem-Task"),
            trailer(&c.body, "Tandem-Ledger"),
        ));
    }
    body.push_str("\nEach change was recorded in Tandem's audit ledger before it was committed; `tandem audit prove --index N` proves an entry is in the signed log.\n");
    Ok(PullRequest {
        title: first.subject.clone(),
        body,
    })
}

/// `owner/name` from a remote URL (`https://host/owner/name(.git)`, `git@host:owner/name.git`).
pub fn owner_repo(url: &str) -> Option<String> {
    let path = url
        .split_once("://")
        .map(|(_, rest)| rest.split_once('/').map_or("", |(_, p)| p))
        .or_else(|| url.split_once(':').map(|(_, p)| p))?;
    let path = path.trim_end_matches('/').trim_end_matches(".git");
    let mut parts = path.rsplitn(3, '/');
    let name = parts.next()?;
    let owner = parts.next()?;
    (!owner.is_empty() && !name.is_empty()).then(|| format!("{owner}/{name}"))
}

/// Opens the pull request; returns its web URL.
pub async fn open(
    forge: Forge,
    api: &str,
    token: &str,
    owner_repo: &str,
    head: &str,
    base: &str,
    pr: &PullRequest,
) -> Result<String> {
    let api = api.trim_end_matches('/');
    let url = format!("{api}/repos/{owner_repo}/pulls");
    let auth = match forge {
        Forge::GitHub => format!("Bearer {token}"),
        Forge::Gitea => format!("token {token}"),
    };
    let resp = reqwest::Client::new()
        .post(&url)
        .header("authorization", auth)
        .header("accept", "application/vnd.github+json")
        .header("user-agent", "tandem")
        .json(&json!({"title": pr.title, "head": head, "base": base, "body": pr.body}))
        .send()
        .await
        .map_err(|e| Error::Record(format!("{url}: {e}")))?;
    let status = resp.status();
    let body: serde_json::Value = resp
        .json()
        .await
        .map_err(|e| Error::Record(format!("{url}: {status}: {e}")))?;
    if !status.is_success() {
        return Err(Error::Record(format!("{url}: {status}: {body}")));
    }
    Ok(body["html_url"].as_str().unwrap_or_default().to_owned())
}

#[cfg(test)]
mod tests {
    use super::owner_repo;

    #[test]
    fn remotes_name_their_repository() {
        assert_eq!(
            owner_repo("https://github.com/acme/tool.git").as_deref(),
            Some("acme/tool")
        );
        assert_eq!(
            owner_repo("git@gitea.example:team/app.git").as_deref(),
            Some("team/app")
        );
        assert_eq!(
            owner_repo("https://git.example/org/sub/repo").as_deref(),
            Some("sub/repo")
        );
        assert_eq!(owner_repo("/srv/git/repo.git"), None);
    }
}
