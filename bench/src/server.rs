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
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let started = Instant::now();
        let mut command = Command::new(binary);
        command.env("PORT", port.to_string()).env("RUST_LOG", "error").stdout(Stdio::null()).stderr(Stdio::null());
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command.spawn().unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
        loop {
            if let Ok(response) = client.get(format!("{base}/ok")).send().await {
                if response.status() == 200 {
                    break;
                }
            }
            assert!(started.elapsed() < Duration::from_secs(30), "the server did not start");
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        Server { startup: started.elapsed(), child, base }
    }

    /// Resident memory, in MiB.
    pub fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        let kib: f64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(f64::NAN);
        kib / 1024.0
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
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.child.id())).into_iter().flatten().flatten();
        let nanos: u64 = tasks
            .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
            .filter_map(|stat| stat.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()))
            .sum();
        Duration::from_nanos(nanos)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
