//! Reading a file under a deadline and a memory cap enforced from outside the reader: it runs in
//! a child process (a `fork` of this one, so the same code on any binary, tests included) with
//! kernel limits on its CPU time and address space, and the parent kills it at the wall-clock
//! deadline. However a hostile file makes a parser behave, the parser's time and memory end with
//! the child, and the request gets a clear refusal naming the file and the limit.

use std::time::{Duration, Instant};

use super::kind::{FileKind, ParseError};
use super::parse::extract_text;
use crate::config::IngestLimits;

/// What reading one file cost its reader.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadCost {
    pub wall: Duration,
    pub cpu: Duration,
    /// The reader's peak resident memory beyond the function's own when it started (on Linux;
    /// zero where the system does not say).
    pub peak_bytes: u64,
}

/// The text of `name`, read within `limits`; its cost is logged.
pub fn read_text(name: &str, kind: FileKind, bytes: &[u8], limits: &IngestLimits) -> Result<String, ParseError> {
    let (text, cost) = read_text_measured(name, kind, bytes, limits);
    tracing::info!(
        file = name,
        bytes = bytes.len(),
        ok = text.is_ok(),
        wall_ms = cost.wall.as_millis() as u64,
        cpu_ms = cost.cpu.as_millis() as u64,
        peak_mb = cost.peak_bytes >> 20,
        "file read"
    );
    text
}

/// [`read_text`], with what it cost.
pub fn read_text_measured(
    name: &str,
    kind: FileKind,
    bytes: &[u8],
    limits: &IngestLimits,
) -> (Result<String, ParseError>, ReadCost) {
    let read = || extract_text(name, kind, bytes, limits.max_text_chars, limits.max_zip_entry_bytes);
    #[cfg(unix)]
    {
        child::run(read, name, limits)
    }
    #[cfg(not(unix))]
    {
        let started = Instant::now();
        let text = read();
        (text, ReadCost { wall: started.elapsed(), ..ReadCost::default() })
    }
}

#[cfg(unix)]
mod child {
    use super::*;

    /// Runs `read` in a forked child, its result sent back as JSON through a pipe.
    pub fn run(
        read: impl FnOnce() -> Result<String, ParseError>,
        name: &str,
        limits: &IngestLimits,
    ) -> (Result<String, ParseError>, ReadCost) {
        let started = Instant::now();
        let mut cost = ReadCost::default();
        let result = run_in_child(read, name, limits, &mut cost);
        cost.wall = started.elapsed();
        (result, cost)
    }

    fn run_in_child(
        read: impl FnOnce() -> Result<String, ParseError>,
        name: &str,
        limits: &IngestLimits,
        cost: &mut ReadCost,
    ) -> Result<String, ParseError> {
        let deadline = Duration::from_secs(limits.file_seconds.max(1));
        let failed = |reason: String| ParseError::Unreadable {
            file: name.to_string(),
            kind: "a file".into(),
            reason: format!("the reader could not be started ({reason})"),
        };
        let mut fds = [0; 2];
        // SAFETY: `pipe2` fills the two descriptors it is given.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(failed(std::io::Error::last_os_error().to_string()));
        }
        let (reading, writing) = (fds[0], fds[1]);
        // The child's address space may grow this far past the parent's when it forks.
        // Without /proc (not Linux), no cap on the address space beyond the CPU one.
        let address_space =
            memory_field("VmSize:").unwrap_or(u64::MAX >> 2).saturating_add(limits.file_memory_mb << 20);
        // SAFETY: the child only reads the bytes it was given, allocates (glibc's allocator is
        // fork-safe), writes to its pipe and leaves with `_exit`: it takes no lock that another
        // thread of the parent could have held, and runs no destructor of the parent's state.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            unsafe { libc::close(reading) };
            unsafe { libc::close(writing) };
            return Err(failed(std::io::Error::last_os_error().to_string()));
        }
        if pid == 0 {
            unsafe { libc::close(reading) };
            set_limit(libc::RLIMIT_CPU, deadline.as_secs());
            set_limit(libc::RLIMIT_AS, address_space);
            // The peak is counted from here: what the reader adds to the pages it shares.
            let _ = std::fs::write("/proc/self/clear_refs", "5");
            let start = memory_field("VmRSS:").unwrap_or(0);
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)).unwrap_or_else(|_| {
                Err(ParseError::Unreadable {
                    file: name.into(),
                    kind: "a file".into(),
                    reason: "the reader failed".into(),
                })
            });
            let peak = memory_field("VmHWM:").unwrap_or(0).saturating_sub(start);
            let answer = serde_json::to_vec(&(result, peak)).unwrap_or_default();
            write_all(writing, &answer);
            unsafe { libc::_exit(0) };
        }
        unsafe { libc::close(writing) };
        let answer = read_until(reading, Instant::now() + deadline);
        unsafe { libc::close(reading) };
        let status = match answer {
            Some(_) => wait(pid, cost),
            None => {
                // SAFETY: `pid` is our child, not yet reaped.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                wait(pid, cost);
                return Err(ParseError::TooSlow { file: name.to_string(), seconds: deadline.as_secs() });
            }
        };
        match answer.and_then(|bytes| serde_json::from_slice::<(Result<String, ParseError>, u64)>(&bytes).ok()) {
            Some((result, peak)) => {
                cost.peak_bytes = peak;
                result
            }
            // Killed by its CPU limit (SIGXCPU, then SIGKILL) or out of memory (an allocation
            // failure aborts it), before it could answer.
            None if matches!(status, Some(libc::SIGXCPU) | Some(libc::SIGKILL)) => {
                Err(ParseError::TooSlow { file: name.to_string(), seconds: deadline.as_secs() })
            }
            None => Err(ParseError::TooLarge { file: name.to_string(), megabytes: limits.file_memory_mb }),
        }
    }

    fn set_limit(resource: libc::__rlimit_resource_t, value: u64) {
        let limit = libc::rlimit { rlim_cur: value as libc::rlim_t, rlim_max: value as libc::rlim_t };
        // SAFETY: a plain system call on a valid struct.
        unsafe { libc::setrlimit(resource, &limit) };
    }

    /// A field of this process's `/proc/self/status`, in bytes (Linux only).
    fn memory_field(name: &str) -> Option<u64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let field = status.lines().find_map(|line| line.strip_prefix(name))?;
        let kib = field.trim().trim_end_matches("kB").trim().parse::<u64>().ok()?;
        Some(kib << 10)
    }

    fn write_all(fd: i32, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            // SAFETY: writes from a live slice.
            let written = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
            if written <= 0 {
                return;
            }
            bytes = &bytes[written as usize..];
        }
    }

    /// Everything the child writes, or `None` if it is not done by `deadline`.
    fn read_until(fd: i32, deadline: Instant) -> Option<Vec<u8>> {
        let mut answer = Vec::new();
        let mut buffer = vec![0u8; 64 << 10];
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let mut poll = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
            let timeout = left.as_millis().min(i32::MAX as u128) as i32;
            // SAFETY: one valid pollfd.
            match unsafe { libc::poll(&mut poll, 1, timeout) } {
                0 => return None,
                n if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => continue,
                n if n < 0 => return Some(answer),
                _ => {}
            }
            // SAFETY: reads into a live buffer of its length.
            let read = unsafe { libc::read(fd, buffer.as_mut_ptr().cast(), buffer.len()) };
            if read <= 0 {
                return Some(answer);
            }
            answer.extend_from_slice(&buffer[..read as usize]);
        }
    }

    /// Reaps the child, noting its CPU time; the signal that ended it, if one did.
    fn wait(pid: i32, cost: &mut ReadCost) -> Option<i32> {
        let mut status = 0;
        loop {
            // SAFETY: waits for our own child, into a zeroed rusage.
            let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
            let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
            if reaped == pid {
                let time =
                    |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
                cost.cpu = time(usage.ru_utime) + time(usage.ru_stime);
                return libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status));
            }
            if reaped < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                return None;
            }
        }
    }
}
