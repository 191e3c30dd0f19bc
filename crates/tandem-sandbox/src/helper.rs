//! The helper process: `exec --mode bwrap|landlock --policy JSON [--bridge PORT --proxy-socket
//! PATH] -- PROGRAM ARGS…` confines its own single thread and `exec`s the program; `bridge PORT
//! SOCKET` is the in-sandbox end of the proxy. Run by the `tandem-sandbox` binary and by `tandem
//! __sandbox`.

use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::{Mode, Policy};

/// The helper's entry point: `args` are what follows the program name (`exec …` or `bridge …`).
/// Call it first thing in `main`, before any thread starts: it confines the calling thread.
pub fn main(args: &[String]) -> ExitCode {
    let result = match args.first().map(String::as_str) {
        Some("exec") => exec(args.get(1..).unwrap_or_default()),
        Some("bridge") => bridge(args.get(1..).unwrap_or_default()),
        _ => Err("usage: tandem-sandbox exec --mode M --policy JSON [--bridge PORT --proxy-socket PATH] -- PROGRAM [ARGS…]".to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            // The helper has no logger: its one line of output goes to the command's stderr.
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                format!("tandem-sandbox: {message}\n").as_bytes(),
            );
            ExitCode::from(126)
        }
    }
}

fn exec(args: &[String]) -> Result<(), String> {
    let split = args
        .iter()
        .position(|a| a == "--")
        .ok_or("missing `--` before the program")?;
    let (options, command) = (&args[..split], &args[split + 1..]);
    let option = |name: &str| {
        options
            .iter()
            .position(|a| a == name)
            .and_then(|i| options.get(i + 1))
    };
    let mode = match option("--mode").map(String::as_str) {
        Some("bwrap") => Mode::Bwrap,
        Some("landlock") => Mode::Landlock,
        other => return Err(format!("unknown --mode {other:?}")),
    };
    let mut policy: Policy = serde_json::from_str(option("--policy").ok_or("missing --policy")?)
        .map_err(|e| format!("--policy: {e}"))?;
    // Without namespaces there is no private /tmp: the command gets a directory of its own.
    let tmpdir = if mode == Mode::Landlock {
        let dir = std::env::temp_dir().join(format!("tandem-sandbox-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        policy.writable.push(dir.clone());
        Some(dir)
    } else {
        None
    };
    let (program, program_args) = command.split_first().ok_or("no program to run")?;
    let bridge = match (option("--bridge"), option("--proxy-socket")) {
        (Some(port), Some(socket)) => {
            let port: u16 = port.parse().map_err(|_| "--bridge is not a port")?;
            start_bridge(port, socket)?;
            Some(port)
        }
        _ => None,
    };
    crate::confine(&policy, mode, bridge).map_err(|e| e.to_string())?;
    let mut command = std::process::Command::new(program);
    command.args(program_args);
    if let Some(dir) = &tmpdir {
        command.env("TMPDIR", dir);
    }
    if let Some(port) = bridge {
        let url = format!("http://127.0.0.1:{port}");
        for name in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
        ] {
            command.env(name, &url);
        }
        command.env_remove("NO_PROXY").env_remove("no_proxy");
    }
    let err = command.exec();
    Err(format!("running `{program}`: {err}"))
}

/// Starts the bridge as a child process and waits until it listens.
fn start_bridge(port: u16, socket: &str) -> Result<(), String> {
    let me = std::env::current_exe().map_err(|e| format!("finding the helper: {e}"))?;
    // Hosted behind `tandem __sandbox`, the bridge needs the same prefix.
    let prefix: Vec<String> = std::env::args()
        .nth(1)
        .filter(|a| a == "__sandbox")
        .into_iter()
        .collect();
    let mut child = std::process::Command::new(me)
        .args(prefix)
        .args(["bridge", &port.to_string(), socket])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting the proxy bridge: {e}"))?;
    let mut ready = [0u8; 1];
    let stdout = child.stdout.as_mut().ok_or("bridge without stdout")?;
    std::io::Read::read_exact(stdout, &mut ready).map_err(|e| format!("proxy bridge: {e}"))?;
    Ok(())
}

fn bridge(args: &[String]) -> Result<(), String> {
    let [port, socket] = args else {
        return Err("usage: tandem-sandbox bridge PORT SOCKET".into());
    };
    let port: u16 = port.parse().map_err(|_| "bad port")?;
    crate::proxy::bridge(port, &PathBuf::from(socket), || {
        let _ = std::io::Write::write_all(&mut std::io::stdout(), b"r");
        let _ = std::io::Write::flush(&mut std::io::stdout());
    })
    .map_err(|e| e.to_string())
}
