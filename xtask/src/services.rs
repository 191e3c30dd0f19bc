//! PostgreSQL and Redis servers for the test step: private, on free loopback ports, with their data in a
//! temporary directory, stopped when the [`Services`] guard is dropped.
//!
//! The servers come from Debian's `postgresql` and `redis-server` packages (installed by `setup`).
//! PostgreSQL refuses to run as root, so as root its cluster is created and run as the `postgres` system
//! user that the package adds (through `runuser`). The cluster trusts local connections and runs without
//! `fsync`: it holds nothing but test databases.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::cmd;

/// Running test servers; dropping this stops them and removes their data.
pub(crate) struct Services {
    /// `postgres://tandem@127.0.0.1:PORT/postgres`: a superuser that may create databases.
    pub(crate) postgres_url: String,
    /// `redis://127.0.0.1:PORT/`.
    pub(crate) redis_url: String,
    redis: Child,
    pg_ctl: PathBuf,
    data: PathBuf,
    as_postgres: bool,
    _dir: tempfile::TempDir,
}

impl Services {
    /// Environment variables that point the tests at these servers, and make a missing one a failure.
    pub(crate) fn env(&self) -> [(&'static str, &str); 3] {
        [
            ("TANDEM_TEST_POSTGRES_URL", self.postgres_url.as_str()),
            ("TANDEM_TEST_REDIS_URL", self.redis_url.as_str()),
            ("TANDEM_REQUIRE_SERVICES", "1"),
        ]
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        let _ = self.redis.kill();
        let _ = self.redis.wait();
        let mut stop = as_user(
            self.as_postgres,
            &self.pg_ctl,
            [
                "-D",
                &self.data.to_string_lossy(),
                "stop",
                "-m",
                "immediate",
            ],
        );
        let _ = stop.stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

/// Starts both servers.
pub(crate) fn start() -> Result<Services> {
    let dir = tempfile::Builder::new()
        .prefix("tandem-services-")
        .tempdir()
        .context("creating a directory for the test servers")?;
    let redis_port = free_port()?;
    let redis = Command::new("redis-server")
        .args([
            "--port",
            &redis_port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()
        .context("starting redis-server (Debian package redis-server)")?;
    wait_for_port(redis_port, "redis-server")?;

    let bin = postgres_bin()?;
    let pg_ctl = bin.join("pg_ctl");
    let as_postgres = running_as_root();
    let data = dir.path().join("pg");
    std::fs::create_dir_all(&data)?;
    if as_postgres {
        cmd::run(cmd::new("chown", ["-R", "postgres:postgres"]).arg(dir.path()))?;
    }
    let data_text = data.to_string_lossy().into_owned();
    let mut initdb = as_user(
        as_postgres,
        &bin.join("initdb"),
        [
            "-D",
            &data_text,
            "-U",
            "tandem",
            "--auth=trust",
            "-E",
            "UTF8",
        ],
    );
    initdb.stdout(Stdio::null());
    cmd::run(&mut initdb)?;
    let pg_port = free_port()?;
    let options = format!(
        "-p {pg_port} -k {data_text} -c listen_addresses=127.0.0.1 -c fsync=off \
         -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
    );
    let log = data.join("server.log").to_string_lossy().into_owned();
    let mut start = as_user(
        as_postgres,
        &pg_ctl,
        ["-D", &data_text, "-l", &log, "-o", &options, "-w", "start"],
    );
    start.stdout(Stdio::null());
    let services = Services {
        postgres_url: format!("postgres://tandem@127.0.0.1:{pg_port}/postgres"),
        redis_url: format!("redis://127.0.0.1:{redis_port}/"),
        redis,
        pg_ctl,
        data,
        as_postgres,
        _dir: dir,
    };
    cmd::run(&mut start).with_context(|| format!("starting postgres; its log is {log}"))?;
    wait_for_port(pg_port, "postgres")?;
    eprintln!("services: postgres on 127.0.0.1:{pg_port}, redis on 127.0.0.1:{redis_port}");
    Ok(services)
}

/// `cargo xtask services`: starts the servers, prints their variables, and stops them on Enter.
pub(crate) fn hold() -> Result<()> {
    use std::io::Write as _;
    let services = start()?;
    let mut out = std::io::stdout().lock();
    for (name, value) in services.env() {
        writeln!(out, "export {name}={value}")?;
    }
    drop(out);
    eprintln!("press Enter to stop the servers");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    drop(services);
    Ok(())
}

/// `program args`, as the `postgres` user when `as_postgres`.
fn as_user<'a>(
    as_postgres: bool,
    program: &Path,
    args: impl IntoIterator<Item = &'a str>,
) -> Command {
    match as_postgres {
        true => {
            let mut command = cmd::new("runuser", ["-u", "postgres", "--"]);
            command.arg(program).args(args);
            command
        }
        false => cmd::new(program, args),
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin`.
fn postgres_bin() -> Result<PathBuf> {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .with_context(|| {
            format!(
                "{} is missing: install the Debian package postgresql",
                root.display()
            )
        })?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("initdb").is_file())
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => Ok(bin),
        None => bail!("no PostgreSQL server under {}", root.display()),
    }
}

fn running_as_root() -> bool {
    cmd::probe(&mut cmd::new("id", ["-u"])).is_some_and(|uid| uid.trim() == "0")
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

fn wait_for_port(port: u16, what: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("{what} did not listen on 127.0.0.1:{port} within 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}
