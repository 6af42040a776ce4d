//! The allocator's free pages go back to the OS when trimmed
//! (`alliance_node::alloc`): freed memory a thread's arena keeps is
//! resident until then. Its own test binary, so that no other test's
//! allocations move the resident set while it is measured.

/// Resident memory of this process, in MiB.
fn rss_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("statm");
    let pages: f64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096.0 / (1 << 20) as f64
}

#[test]
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn freed_memory_kept_by_an_arena_is_given_back_by_a_trim() {
    const CHUNK: usize = 1024;
    const CHUNKS: usize = 256 * 1024; // 256 MiB
                                      // On a thread of its own: its allocations come from an arena of their
                                      // own, which glibc shrinks only from the top.
    let (kept, before, after_free) = std::thread::spawn(|| {
        let before = rss_mib();
        let mut chunks: Vec<Vec<u8>> = (0..CHUNKS).map(|i| vec![i as u8; CHUNK]).collect();
        // One chunk in every 1,024 stays alive (every MiB of the arena
        // holds one), the rest is freed.
        let kept: Vec<Vec<u8>> = chunks
            .iter_mut()
            .step_by(1024)
            .map(std::mem::take)
            .collect();
        drop(chunks);
        (kept, before, rss_mib())
    })
    .join()
    .unwrap();
    assert!(
        after_free - before > 128.0,
        "the freed memory stays resident until trimmed ({before:.0} -> {after_free:.0} MiB)"
    );
    assert!(alliance_node::alloc::trim(), "a trim releases memory");
    let after_trim = rss_mib();
    assert!(
        after_free - after_trim > 128.0,
        "a trim gives the freed pages back ({after_free:.0} -> {after_trim:.0} MiB)"
    );
    assert_eq!(kept.len(), CHUNKS / 1024);
}
