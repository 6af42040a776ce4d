//! Byte mutations for structure-aware fuzzing of the canonical encoding.
//!
//! The canonical encoding (bincode, fixed-width little-endian integers) puts
//! every length as a u64 and every enum tag as a u32 right before what they
//! describe, so the mutations that matter most are the ones that rewrite
//! those fields with boundary values: they make decoders allocate, loop or
//! index with hostile numbers. The rest are the classic ones: bit flips,
//! truncation, extension, insertion, deletion and splicing two inputs.

use rand::seq::SliceRandom;
use rand::Rng;

/// u64 values that break length and integer handling.
const INTERESTING_U64: &[u64] = &[
    0,
    1,
    2,
    7,
    8,
    31,
    32,
    63,
    64,
    127,
    128,
    255,
    256,
    1_023,
    1_024,
    4_095,
    4_096,
    65_535,
    65_536,
    (1 << 24) - 1,
    1 << 24,
    i32::MAX as u64,
    1 << 31,
    u32::MAX as u64,
    1 << 32,
    1 << 40,
    i64::MAX as u64,
    1 << 63,
    u64::MAX - 1,
    u64::MAX,
];

/// u32 values for enum tags and 32-bit counts.
const INTERESTING_U32: &[u32] = &[0, 1, 2, 3, 4, 5, 6, 7, 255, 256, 65_535, 1 << 31, u32::MAX];

/// Bytes worth planting.
const INTERESTING_U8: &[u8] = &[0, 1, 0x7f, 0x80, 0xfe, 0xff, b'"', b'\\', b'{', b'['];

/// Largest input a mutation produces: past the decoders' own limits for
/// transactions, well under them for blocks (big inputs only slow the run).
pub const MUTATED_BYTES_MAX: usize = 256 * 1024;

/// Offsets of 8-byte windows holding a small little-endian value: most are
/// lengths or integers of the canonical encoding.
fn small_u64_offsets(data: &[u8]) -> Vec<usize> {
    (0..data.len().saturating_sub(7))
        .filter(|&i| {
            let v = u64::from_le_bytes(data[i..i + 8].try_into().expect("8 bytes"));
            v > 0 && v < 1 << 20
        })
        .collect()
}

/// Applies one random mutation to `data`; `other` is a second corpus input
/// for splicing.
pub fn mutate_once(data: &mut Vec<u8>, other: &[u8], rng: &mut impl Rng) {
    if data.is_empty() {
        data.extend((0..rng.gen_range(1..16)).map(|_| rng.gen::<u8>()));
        return;
    }
    let len = data.len();
    match rng.gen_range(0..12) {
        // Bit flip.
        0 => {
            let i = rng.gen_range(0..len);
            data[i] ^= 1 << rng.gen_range(0..8);
        }
        // Interesting byte.
        1 => {
            let i = rng.gen_range(0..len);
            data[i] = *INTERESTING_U8.choose(rng).expect("non-empty");
        }
        // Random byte.
        2 => {
            let i = rng.gen_range(0..len);
            data[i] = rng.gen();
        }
        // Length field overwrite: a small u64 becomes a boundary value or
        // its neighbour.
        3 | 4 => {
            let offsets = small_u64_offsets(data);
            let Some(&i) = offsets.choose(rng) else {
                return;
            };
            let old = u64::from_le_bytes(data[i..i + 8].try_into().expect("8 bytes"));
            let new = match rng.gen_range(0..3) {
                0 => old.wrapping_add(1),
                1 => old.wrapping_sub(1),
                _ => *INTERESTING_U64.choose(rng).expect("non-empty"),
            };
            data[i..i + 8].copy_from_slice(&new.to_le_bytes());
        }
        // Tag or 32-bit count overwrite.
        5 => {
            if len < 4 {
                return;
            }
            let i = rng.gen_range(0..=len - 4);
            let v = *INTERESTING_U32.choose(rng).expect("non-empty");
            data[i..i + 4].copy_from_slice(&v.to_le_bytes());
        }
        // Truncation.
        6 => data.truncate(rng.gen_range(0..len)),
        // Extension: random bytes or a copy of a chunk of itself.
        7 => {
            if rng.gen_bool(0.5) {
                data.extend((0..rng.gen_range(1..64)).map(|_| rng.gen::<u8>()));
            } else {
                let a = rng.gen_range(0..len);
                let b = rng.gen_range(a..=len.min(a + 4096));
                let chunk = data[a..b].to_vec();
                data.extend_from_slice(&chunk);
            }
        }
        // Insertion.
        8 => {
            let i = rng.gen_range(0..=len);
            let n = rng.gen_range(1..32);
            let bytes: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
            data.splice(i..i, bytes);
        }
        // Deletion.
        9 => {
            let a = rng.gen_range(0..len);
            let b = rng.gen_range(a..=len.min(a + 64));
            data.drain(a..b);
        }
        // Splice: our prefix, the other input's suffix.
        10 => {
            if other.is_empty() {
                return;
            }
            let a = rng.gen_range(0..=len);
            let b = rng.gen_range(0..other.len());
            data.truncate(a);
            data.extend_from_slice(&other[b..]);
        }
        // Overwrite a chunk with one from the other input at the same place
        // (keeps the structure, swaps values).
        _ => {
            let n = len.min(other.len());
            if n == 0 {
                return;
            }
            let a = rng.gen_range(0..n);
            let b = rng.gen_range(a..=n.min(a + 64));
            data[a..b].copy_from_slice(&other[a..b]);
        }
    }
    data.truncate(MUTATED_BYTES_MAX);
}

/// 1 to 4 stacked mutations of `base`.
pub fn mutate(base: &[u8], other: &[u8], rng: &mut impl Rng) -> Vec<u8> {
    let mut data = base.to_vec();
    for _ in 0..rng.gen_range(1..=4) {
        mutate_once(&mut data, other, rng);
    }
    data
}

/// Pure random input: mostly short, sometimes a few KiB.
pub fn random_input(rng: &mut impl Rng) -> Vec<u8> {
    let len = if rng.gen_bool(0.9) {
        rng.gen_range(0..256)
    } else {
        rng.gen_range(256..8192)
    };
    (0..len).map(|_| rng.gen()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn length_fields_are_found() {
        let mut data = vec![0xffu8; 4];
        data.extend_from_slice(&5u64.to_le_bytes());
        data.extend_from_slice(b"hello");
        assert!(small_u64_offsets(&data).contains(&4));
    }

    #[test]
    fn mutations_stay_bounded_and_change_inputs() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let base = vec![1u8; 100];
        let changed = (0..200)
            .filter(|_| {
                let m = mutate(&base, &[2u8; 50], &mut rng);
                assert!(m.len() <= MUTATED_BYTES_MAX);
                m != base
            })
            .count();
        assert!(changed > 150, "{changed} of 200 mutated");
    }
}
