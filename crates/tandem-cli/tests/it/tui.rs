//! The `tandem edit` terminal UI driven through tmux (send-keys, capture-pane): the diff appears
//! while the model still streams, the steer prompt takes typing, Esc stops the model and changes
//! nothing, and after a complete answer Enter applies the reviewed hunks and commits them.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{Serve, commit_all, init_repo, url_encode};

struct Tmux {
    socket: String,
    session: String,
}

impl Tmux {
    fn start(dir: &Path, command: &str) -> Tmux {
        let socket = format!("tandem-test-{}-{}", std::process::id(), uuid_ish());
        let session = "edit".to_owned();
        let status = Command::new("tmux")
            .args([
                "-L",
                &socket,
                "new-session",
                "-d",
                "-s",
                &session,
                "-x",
                "120",
                "-y",
                "40",
                "-c",
            ])
            .arg(dir)
            .arg(format!("{command}; echo EXITED-$?; sleep 60"))
            .status()
            .unwrap();
        assert!(status.success());
        Tmux { socket, session }
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args([
                "-L",
                &self.socket,
                "capture-pane",
                "-p",
                "-t",
                &self.session,
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let status = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", &self.session])
            .args(keys)
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn wait_for(&self, what: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let screen = self.screen();
            if what.iter().all(|w| screen.contains(w)) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {what:?}; the screen is:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

fn uuid_ish() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

const BLOCK: &str = "lib.rs\n<<<<<<< SEARCH\n    41\n=======\n    42\n>>>>>>> REPLACE\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tui_shows_the_growing_diff_takes_a_steer_and_stops_on_esc_then_reviews_and_commits() {
    let upstream = crate::support::upstream().await;
    let serve = Serve::with_upstream(&upstream).await;
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path();
    init_repo(root);
    let original = "pub fn answer() -> u32 {\n    41\n}\n";
    std::fs::write(root.join("lib.rs"), original).unwrap();
    commit_all(root);
    let tandem = env!("CARGO_BIN_EXE_tandem");

    // 1. A slow answer: the edit block first, then a long tail the model is still streaming.
    let slow = format!("{BLOCK}{}", "and some more explanation ".repeat(40));
    let model = format!("scripted?say={}&rate=30", url_encode(&slow));
    let tmux = Tmux::start(
        root,
        &format!(
            "{tandem} edit --server {} --model '{model}' 'make answer return 42' lib.rs",
            serve.base
        ),
    );
    let screen = tmux.wait_for(&["+    42", "-    41", "streaming", "steer>"]);
    assert!(
        screen.contains("tandem edit: make answer return 42"),
        "{screen}"
    );
    tmux.keys(&["-l", "make it 43"]);
    tmux.wait_for(&["steer> make it 43"]);
    tmux.keys(&["Escape"]);
    let screen = tmux.wait_for(&["stopped", "EXITED-0"]);
    assert!(screen.contains("nothing changed"), "{screen}");
    assert_eq!(
        std::fs::read_to_string(root.join("lib.rs")).unwrap(),
        original
    );
    assert!(upstream.stats().streams_cancelled >= 1);
    drop(tmux);

    // 2. A complete answer: review the hunk, Enter applies and commits it.
    let model = format!("scripted?say={}", url_encode(BLOCK));
    let tmux = Tmux::start(
        root,
        &format!(
            "{tandem} edit --server {} --model '{model}' 'make answer return 42' lib.rs",
            serve.base
        ),
    );
    tmux.wait_for(&["review", "[x] lib.rs"]);
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for(&["committed", "EXITED-0"]);
    assert!(screen.contains("tandem/make-answer-return-42"), "{screen}");
    assert_eq!(
        std::fs::read_to_string(root.join("lib.rs")).unwrap(),
        original.replace("41", "42")
    );
}
