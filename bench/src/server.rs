//! The API server as a separate process, measured from outside through /proc.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    child: Child,
    pub base: String,
    /// From spawning the process to its first 200 on `/ok`.
    pub startup: Duration,
}

impl Server {
    pub async fn start(binary: &Path, env: &[(&str, String)]) -> Server {
        let port = free_port();
        let mut command = Command::new(binary);
        command.env("PORT", port.to_string()).env("RUST_LOG", "error");
        for (name, value) in env {
            command.env(name, value);
        }
        Server::spawn(command, port, "/ok", Duration::from_secs(30)).await
    }

    /// Runs `command`, which serves on `port`, until `health` answers 200.
    pub async fn spawn(mut command: Command, port: u16, health: &str, patience: Duration) -> Server {
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let started = Instant::now();
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {command:?}: {error}"));
        loop {
            if let Ok(response) = client.get(format!("{base}{health}")).send().await {
                if response.status() == 200 {
                    break;
                }
            }
            assert!(started.elapsed() < patience, "{command:?} did not start");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Server { startup: started.elapsed(), child, base }
    }

    /// The process and the processes it started.
    fn tree(&self) -> Vec<u32> {
        let parent_of = |pid: u32| -> Option<u32> {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
        };
        let all: Vec<u32> = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
            .collect();
        let mut tree = vec![self.child.id()];
        let mut grew = true;
        while grew {
            grew = false;
            for pid in &all {
                if !tree.contains(pid) && parent_of(*pid).is_some_and(|parent| tree.contains(&parent)) {
                    tree.push(*pid);
                    grew = true;
                }
            }
        }
        tree
    }

    /// Resident memory of the process and those it started, in MiB.
    pub fn tree_rss_mib(&self) -> f64 {
        self.tree().into_iter().map(rss_kib).sum::<f64>() / 1024.0
    }

    /// CPU time of the process and those it started, every thread.
    pub fn tree_cpu_time(&self) -> Duration {
        self.tree().into_iter().map(cpu_of).sum()
    }

    /// Of its resident memory, the pages of its own binary's code (the executable mappings of
    /// the file it runs), in MiB: what bench/hot_code keeps small.
    pub fn code_rss_mib(&self) -> f64 {
        let pid = self.child.id();
        let Ok(binary) = std::fs::read_link(format!("/proc/{pid}/exe")) else { return 0.0 };
        let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
        let mut in_code = false;
        let mut kib = 0.0;
        for line in smaps.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                ["Rss:", kib_resident, ..] if in_code => kib += kib_resident.parse::<f64>().unwrap_or(0.0),
                // Field lines are "Name: value"; the others head a mapping: "range perms offset
                // device inode path".
                [first, ..] if first.ends_with(':') => {}
                [_, perms, _, _, _, path, ..] => in_code = perms.contains('x') && Path::new(path) == binary,
                _ => in_code = false,
            }
        }
        kib / 1024.0
    }

    /// Resident memory, in MiB.
    pub fn rss_mib(&self) -> f64 {
        rss_kib(self.child.id()) / 1024.0
    }

    /// User and system CPU time of the process so far (from /proc/<pid>/stat, in clock ticks of
    /// 10 ms: measure over many requests).
    pub fn cpu_split(&self) -> (Duration, Duration) {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
        let fields: Vec<u64> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .unwrap_or("")
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        let tick = Duration::from_millis(10);
        (tick * fields.get(11).copied().unwrap_or(0) as u32, tick * fields.get(12).copied().unwrap_or(0) as u32)
    }

    /// CPU time used by every thread of the process so far (from schedstat, in nanoseconds).
    pub fn cpu_time(&self) -> Duration {
        cpu_of(self.child.id())
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn rss_kib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0)
}

fn cpu_of(pid: u32) -> Duration {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten();
    let nanos: u64 = tasks
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()))
        .sum();
    Duration::from_nanos(nanos)
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How many of the functions `functions/api/hot-code.txt` names (the code the linker lays out
/// together, bench/hot_code) the binary holds, of how many it names. Symbol names carry a hash of
/// the crate's features, so a list traced from a build with other features finds fewer, and the
/// code the server runs spreads over more pages again.
pub fn hot_code_found(binary: &Path) -> (usize, usize) {
    let list = Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions/api/hot-code.txt");
    let listed: Vec<String> = std::fs::read_to_string(list).unwrap_or_default().lines().map(str::to_string).collect();
    let symbols =
        Command::new("nm").arg("--defined-only").arg(binary).output().map(|out| out.stdout).unwrap_or_default();
    let defined: std::collections::HashSet<&str> = std::str::from_utf8(&symbols)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_whitespace().last())
        .collect();
    (listed.iter().filter(|name| defined.contains(name.as_str())).count(), listed.len())
}
