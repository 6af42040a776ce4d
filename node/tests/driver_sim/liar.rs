//! A peer that lies in its sync answers: it runs the real driver (so it
//! follows the chain and has real blocks and certificates to lie with) and
//! the world rewrites what it answers.
//!
//! Lies: an overstated tip; bulk answers reordered, with a gap, truncated
//! after a block without finalization, duplicated, with another height's
//! certificate, with a certificate cut below quorum, with garbage or a
//! corrupted block; fetched blocks swapped for another or garbage;
//! certificates of other views, or tampered.

use alliance_node::network::{ChainStatus, SyncRequest, SyncResponse};
use alliance_protocol::{Certificate, FinalizedBlock};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Rewrites an honest `response` to `request` into a lie (sometimes the
/// truth: a liar that always lies is easy to spot). Returns the answer and a
/// short description for the step log.
pub fn lie(
    rng: &mut ChaCha8Rng,
    request: &SyncRequest,
    response: SyncResponse,
) -> (SyncResponse, &'static str) {
    match (request, response) {
        (SyncRequest::Status, SyncResponse::Status(s)) => {
            if rng.gen_bool(0.7) {
                let tip_height = s.tip_height + rng.gen_range(3..40);
                (
                    SyncResponse::Status(ChainStatus {
                        tip_height,
                        tip_hash: s.tip_hash,
                    }),
                    "overstated tip",
                )
            } else {
                (SyncResponse::Status(s), "truth")
            }
        }
        (SyncRequest::GetBlocks { .. }, SyncResponse::Blocks(blocks)) => lie_blocks(rng, blocks),
        (SyncRequest::GetBlock { .. }, SyncResponse::Blocks(blocks)) => match rng.gen_range(0..3) {
            0 => (SyncResponse::Blocks(vec![vec![0xAB; 64]]), "garbage block"),
            1 => (SyncResponse::Blocks(Vec::new()), "nothing"),
            _ => (SyncResponse::Blocks(blocks), "truth"),
        },
        (SyncRequest::GetCertificates { .. }, SyncResponse::Certificates(mut certs)) => {
            if certs.is_empty() || rng.gen_bool(0.3) {
                return (SyncResponse::Certificates(certs), "truth");
            }
            let i = rng.gen_range(0..certs.len());
            if rng.gen_bool(0.5) {
                certs[i].view += 1;
                (
                    SyncResponse::Certificates(certs),
                    "certificate moved to another view",
                )
            } else {
                certs[i].votes.truncate(1);
                (
                    SyncResponse::Certificates(certs),
                    "certificate cut below quorum",
                )
            }
        }
        (_, other) => (other, "truth"),
    }
}

fn decode(bytes: &[u8]) -> Option<FinalizedBlock> {
    FinalizedBlock::from_bytes(bytes).ok()
}

fn lie_blocks(rng: &mut ChaCha8Rng, mut blocks: Vec<Vec<u8>>) -> (SyncResponse, &'static str) {
    let n = blocks.len();
    let what = match rng.gen_range(0..9) {
        0 if n >= 2 => {
            let (a, b) = (rng.gen_range(0..n), rng.gen_range(0..n));
            blocks.swap(a, b);
            "reordered"
        }
        1 if n >= 2 => {
            blocks.remove(rng.gen_range(0..n - 1));
            "gap"
        }
        2 if n >= 1 => {
            let i = rng.gen_range(0..n);
            let copy = blocks[i].clone();
            blocks.insert(i, copy);
            "duplicated"
        }
        3 if n >= 2 => {
            // Another height's certificate on a block.
            let (a, b) = (rng.gen_range(0..n), rng.gen_range(0..n));
            if let (Some(mut fa), Some(fb)) = (decode(&blocks[a]), decode(&blocks[b])) {
                if a != b {
                    fa.certificate = fb.certificate;
                    blocks[a] = fa.to_bytes();
                }
            }
            "another height's certificate"
        }
        4 if n >= 1 => {
            let i = rng.gen_range(0..n);
            if let Some(mut fb) = decode(&blocks[i]) {
                let keep = fb.certificate.votes.len().saturating_sub(2).max(1);
                fb.certificate.votes.truncate(keep);
                blocks[i] = fb.to_bytes();
            }
            "certificate below quorum"
        }
        5 if n >= 1 => {
            let i = rng.gen_range(0..n);
            let at = rng.gen_range(0..blocks[i].len());
            blocks[i][at] ^= 0x5A;
            "corrupted byte"
        }
        6 => {
            blocks.push(vec![0xCD; 100]);
            "garbage appended"
        }
        7 if n >= 1 => {
            // A certified block with its certificate made a stranger's.
            let i = rng.gen_range(0..n);
            if let Some(mut fb) = decode(&blocks[i]) {
                fb.certificate = Certificate {
                    height: fb.certificate.height + 1,
                    ..fb.certificate
                };
                blocks[i] = fb.to_bytes();
            }
            "certificate for another height"
        }
        _ => "truth",
    };
    (SyncResponse::Blocks(blocks), what)
}
