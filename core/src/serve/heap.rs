//! The local server's heap: what it uses, and the memory a load left free given back to the
//! system once the load is over. glibc keeps what the program frees for later, in an arena per
//! thread that allocated it: after a burst of runs on many threads the process stays at the
//! burst's size (tens of MiB) while its heap is back to a few. Elsewhere (another allocator, or
//! a Lambda, whose memory is billed as configured and which is frozen between invocations) there
//! is nothing to do.

use std::time::Duration;

/// How often the heap is looked at.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// Free memory kept for the next load: below it, a trim would give back too little to matter.
const KEEP_FREE_BYTES: usize = 256 << 10;

/// The allocator's counters, where it has them.
#[derive(Debug, Clone, Copy)]
pub struct Heap {
    /// Handed out and not given back.
    pub in_use: usize,
    /// Free, but kept by the allocator.
    pub free: usize,
}

/// The heap now (glibc 2.33 on); looked up when called, so that a binary linked against an older
/// glibc, as Lambda builds may be, still loads.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn heap() -> Option<Heap> {
    type MallInfo2 = unsafe extern "C" fn() -> libc::mallinfo2;
    // SAFETY: dlsym with a NUL-terminated name only looks the symbol up; the one it finds is
    // glibc's `struct mallinfo2 mallinfo2(void)`, which only reads the allocator's counters.
    let info = unsafe {
        let symbol = libc::dlsym(libc::RTLD_DEFAULT, c"mallinfo2".as_ptr());
        if symbol.is_null() {
            return None;
        }
        std::mem::transmute::<*mut libc::c_void, MallInfo2>(symbol)()
    };
    // Small blocks in the arenas, and the large ones glibc maps one by one.
    Some(Heap { in_use: info.uordblks + info.hblkhd, free: info.fordblks })
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn heap() -> Option<Heap> {
    None
}

/// What SQLite holds of the heap, its page cache above all, which grows with the database up to
/// the cache's size (2 MB): the rest is the server's own.
#[cfg(feature = "sqlite")]
pub fn held_by_sqlite() -> usize {
    // SAFETY: sqlite3_memory_used only reads SQLite's counter (kept since memory statistics are
    // on by default, as in the bundled build).
    usize::try_from(unsafe { rusqlite::ffi::sqlite3_memory_used() }).unwrap_or(0)
}

#[cfg(not(feature = "sqlite"))]
pub fn held_by_sqlite() -> usize {
    0
}

/// Gives the free memory of every arena back to the system once the heap stops growing (the
/// load is over, or paused) and more than `KEEP_FREE_BYTES` of it is free; once per change of
/// the heap, so not again and again while the server is idle. A load that comes back takes its
/// pages again from the system, which costs little next to its work.
pub async fn give_back_after_loads() {
    let mut ticks = tokio::time::interval(CHECK_EVERY);
    let mut last_in_use = usize::MAX;
    let mut trimmed_at = None;
    loop {
        ticks.tick().await;
        let Some(now) = heap() else { return };
        if now.in_use <= last_in_use && now.free > KEEP_FREE_BYTES && trimmed_at != Some(now.in_use) {
            trim();
            trimmed_at = Some(now.in_use);
        }
        last_in_use = now.in_use;
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim takes no pointers; it returns the arenas' free pages to the system.
    unsafe { libc::malloc_trim(0) };
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
