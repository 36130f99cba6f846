//! The `api` binary run as its own process, as a user runs it: for tests that kill it, or that
//! read its memory from outside.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::TestApp;

/// A process killed when the test ends, however it ends: a test that fails half-way leaves no
/// server behind.
pub struct KilledAtEnd(pub Child);

impl Drop for KilledAtEnd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for KilledAtEnd {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for KilledAtEnd {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

/// The `api` binary of this workspace, built beside the test binaries.
pub fn api_binary() -> PathBuf {
    let deps = std::env::current_exe().expect("own path").parent().expect("deps folder").to_path_buf();
    let binary = deps.parent().expect("profile folder").join("api");
    assert!(binary.exists(), "{} is missing: run `cargo build --workspace` (make test does)", binary.display());
    binary
}

/// Starts the server on a port of its choosing, its output appended to `log`, and reads the
/// address it logs.
pub async fn spawn_api(log: &Path, env: &[(&str, String)]) -> (Child, TestApp) {
    let logged_before = std::fs::read_to_string(log).map(|text| text.len()).unwrap_or(0);
    let output = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    let child = Command::new(api_binary())
        .envs(env.iter().map(|(name, value)| (*name, value.as_str())))
        .env("PORT", "0")
        .stdout(Stdio::from(output.try_clone().unwrap()))
        .stderr(Stdio::from(output))
        .spawn()
        .expect("the server starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    let address = loop {
        let text = std::fs::read_to_string(log).unwrap();
        if let Some((_, rest)) = text[logged_before..].split_once("listening on ") {
            break rest.split_whitespace().next().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "the server did not come up: {text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    (child, TestApp::remote(address))
}
