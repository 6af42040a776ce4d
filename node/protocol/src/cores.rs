//! The number of cores this process may use, asked of the OS once.
//!
//! `std::thread::available_parallelism` reads the cgroup's CPU quota
//! from `/sys/fs/cgroup` at every call: 3.6 % of a validator's CPU at
//! 3,000 tx/s when signature checks, reads and bucket rebuilds asked it
//! for every batch (docs/benchmarks.md, issue #19). The answer does not
//! change while the node runs, so it is read once.

use std::sync::OnceLock;

/// The cores this process may use (at least 1), as
/// `std::thread::available_parallelism` said at its first call.
pub fn available() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn at_least_one_and_stable() {
        let n = super::available();
        assert!(n >= 1);
        assert_eq!(super::available(), n);
    }
}
