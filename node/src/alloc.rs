//! The C allocator's free memory, given back to the OS (issue #14).
//!
//! glibc's malloc gives a thread that finds the arenas busy an arena of its
//! own, up to eight per core, and keeps memory freed into an arena for
//! that arena's later allocations; it returns memory to the OS only from
//! the top of the main heap. A node allocates on many threads (the
//! runtime's workers, the bucket rebuilds, the storage engine's flush and
//! compaction workers) and frees on others, so its resident memory kept
//! rising for minutes after every cache was full: on fjall at 2,000 tx/s,
//! 354–370 MiB after a 5-minute warm-up and 388–424 MiB at minute 30
//! (docs/benchmarks.md, "A node's memory over 30 minutes").
//!
//! Two alternatives were measured and dropped: two arenas
//! (`MALLOC_ARENA_MAX=2`) kept memory flat but cost throughput (allocating
//! threads wait on each other), and under jemalloc resident memory still
//! rose over a 5-minute run at 2,000 tx/s. What is kept: the arenas
//! stay, and every [`TRIM_INTERVAL`] a thread calls `malloc_trim(0)`, which
//! gives every whole free page of every arena back to the OS (glibc 2.8
//! and later). Resident memory then follows what is in use.

use std::time::Duration;

/// How often the free pages of the allocator's arenas are given back.
pub const TRIM_INTERVAL: Duration = Duration::from_secs(10);

/// Gives every whole free page of the allocator's arenas back to the OS
/// now. Returns whether memory was released (always `false` on other C
/// libraries than glibc, which have nothing to do).
pub fn trim() -> bool {
    trim_glibc()
}

/// Starts the thread that calls [`trim`] every [`TRIM_INTERVAL`] for as
/// long as the process runs (glibc only; elsewhere nothing is started).
/// Returns whether it started.
pub fn start_trimming() -> bool {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        return false;
    }
    std::thread::Builder::new()
        .name("malloc-trim".into())
        .spawn(|| loop {
            std::thread::sleep(TRIM_INTERVAL);
            trim();
        })
        .is_ok()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn trim_glibc() -> bool {
    // SAFETY: malloc_trim takes no pointers; glibc locks each arena while
    // it walks it, so it is safe against allocation on other threads.
    unsafe { libc::malloc_trim(0) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim_glibc() -> bool {
    false
}
