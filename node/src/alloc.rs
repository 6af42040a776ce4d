//! The C allocator's arenas, bounded (issue #14).
//!
//! glibc's malloc gives a thread that finds the arenas busy an arena of its
//! own, up to eight per core, and memory freed into one arena is reused
//! only by the threads allocating from it. A node allocates on many threads
//! (the runtime's workers, the bucket rebuilds, the storage engine's flush
//! and compaction workers) and frees on others, so its resident memory kept
//! rising for minutes after every cache was full: on fjall at 2,000 tx/s,
//! 354–370 MiB after a 5-minute warm-up and 388–424 MiB at minute 30. With
//! two arenas the same run stayed within 312–375 MiB from minute 3 to
//! minute 14 (docs/benchmarks.md, "A node's memory over 30 minutes").

/// Arenas the node's allocator may use.
pub const MALLOC_ARENAS: i32 = 2;

/// Bounds glibc's malloc to [`MALLOC_ARENAS`] arenas, unless the operator
/// set `MALLOC_ARENA_MAX` (glibc reads it at start; it wins). Call it first
/// thing in `main`, before any thread starts. Returns whether the bound
/// was set (never on other C libraries).
pub fn bound_malloc_arenas() -> bool {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return false;
    }
    set_arena_max(MALLOC_ARENAS)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn set_arena_max(arenas: i32) -> bool {
    // SAFETY: mallopt only changes a tunable of glibc's allocator; it takes
    // no pointers, and glibc serialises it against concurrent allocation.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_arena_max(_arenas: i32) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_is_set_on_glibc_unless_the_operator_chose() {
        let chose = std::env::var_os("MALLOC_ARENA_MAX").is_some();
        let glibc = cfg!(all(target_os = "linux", target_env = "gnu"));
        assert_eq!(bound_malloc_arenas(), glibc && !chose);
    }
}
