//! The block sync protocol: messages and their wire codec.
//!
//! Frame: a 4-byte big-endian length, then the message in the canonical
//! bincode encoding of `alliance_protocol::encoding` (fixed-width little
//! endian integers, enum tags as u32). One request and one response per
//! stream. Both directions have hard limits checked *before* a byte of the
//! body is buffered: a length prefix over the limit fails the stream with
//! `InvalidData`, and the body is read through `take(len)`, so memory grows
//! only with bytes actually received. A `Blocks` response also has its block
//! count checked before any block is allocated.
//!
//! The network never decodes the blocks themselves: each element is the
//! canonical bytes of a `FinalizedBlock`, checked by the node.

use std::io;

use alliance_protocol::encoding::{self, DecodeError};
use alliance_protocol::Hash32;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::request_response;
use libp2p::StreamProtocol;
use serde::de::{self, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::limits::SYNC_BLOCKS_PER_REQUEST_MAX;

/// Bytes of the frame length prefix.
const LENGTH_PREFIX_BYTES: usize = 4;

/// A block sync request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncRequest {
    /// Finalized blocks from `from_height` on, in height order.
    GetBlocks {
        /// First height wanted.
        from_height: u64,
        /// Most blocks wanted; capped by the network to the configured
        /// maximum (default [`SYNC_BLOCKS_PER_REQUEST_MAX`]) on both sides.
        max_count: u32,
    },
    /// The responder's finalized tip.
    Status,
    /// One block by hash, with a quorum certificate: finalized (from the
    /// store) or notarized and not yet finalized (from consensus memory).
    /// Consensus asks for this when it saw a certificate for a block whose
    /// proposal it missed.
    GetBlock {
        /// The block hash.
        hash: alliance_protocol::Hash32,
    },
    /// Consensus certificates (notarizations, nullifications, or the
    /// responder's latest finalization for views it has settled) of these
    /// views: the consensus resolver's request. At most
    /// [`alliance_consensus::config::RESOLVE_VIEWS_MAX`] views.
    GetCertificates {
        /// The views.
        views: Vec<u64>,
    },
}

/// A node's finalized tip, as answered to [`SyncRequest::Status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainStatus {
    /// Height of the last finalized block.
    pub tip_height: u64,
    /// Hash of the last finalized block.
    pub tip_hash: Hash32,
}

/// Why a responder did not answer a request with data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefusalReason {
    /// The responder's node is overloaded (its event queue is full): try
    /// another peer or later.
    Busy,
    /// The responder does not have what was asked (e.g. heights above its
    /// tip, or pruned history).
    Unavailable,
    /// The request made no sense (e.g. `max_count` of 0).
    BadRequest,
}

/// A block sync response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncResponse {
    /// Canonical `FinalizedBlock` bytes, consecutive heights from the
    /// requested one; possibly fewer than asked (limits, or the tip).
    Blocks(#[serde(serialize_with = "ser_blocks", deserialize_with = "de_blocks")] Vec<Vec<u8>>),
    /// Answer to [`SyncRequest::Status`].
    Status(ChainStatus),
    /// Answer to [`SyncRequest::GetCertificates`]: what the responder has
    /// (possibly nothing), each verified by the requester's consensus core.
    Certificates(Vec<alliance_protocol::Certificate>),
    /// No data, and why.
    Refused(RefusalReason),
}

/// The encoded size of `SyncResponse::Blocks(blocks)`, without framing:
/// enum tag (4) + count (8) + per block length (8) and bytes.
pub fn blocks_response_bytes(blocks: &[Vec<u8>]) -> usize {
    4 + 8 + blocks.iter().map(|b| 8 + b.len()).sum::<usize>()
}

/// Trims a `Blocks` response to at most `count_max` blocks and
/// `frame_bytes_max` encoded bytes (a prefix of whole blocks). Returns how
/// many blocks were removed.
pub fn truncate_blocks(
    blocks: &mut Vec<Vec<u8>>,
    count_max: usize,
    frame_bytes_max: usize,
) -> usize {
    let before = blocks.len();
    blocks.truncate(count_max);
    let mut size = 4 + 8;
    let mut keep = 0;
    for block in blocks.iter() {
        size += 8 + block.len();
        if size + LENGTH_PREFIX_BYTES > frame_bytes_max {
            break;
        }
        keep += 1;
    }
    blocks.truncate(keep);
    before - blocks.len()
}

// Blocks go on the wire as byte strings (one length, then raw bytes), the
// same bytes serde would write for a `Vec<u8>` but decoded in one copy
// instead of byte by byte; and the count is checked before allocating.

fn ser_blocks<S: Serializer>(blocks: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
    let mut seq = s.serialize_seq(Some(blocks.len()))?;
    for block in blocks {
        seq.serialize_element(&Bytes(block))?;
    }
    seq.end()
}

struct Bytes<'a>(&'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

struct ByteBuf(Vec<u8>);

impl<'de> Deserialize<'de> for ByteBuf {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ByteBuf;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("block bytes")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<ByteBuf, E> {
                Ok(ByteBuf(v.to_vec()))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<ByteBuf, E> {
                Ok(ByteBuf(v))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

fn de_blocks<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<Vec<u8>>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            write!(f, "at most {SYNC_BLOCKS_PER_REQUEST_MAX} blocks")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let max = SYNC_BLOCKS_PER_REQUEST_MAX as usize;
            // bincode announces the exact count: refuse before allocating.
            let claimed = seq.size_hint().unwrap_or(0);
            if claimed > max {
                return Err(de::Error::invalid_length(claimed, &self));
            }
            let mut blocks = Vec::with_capacity(claimed);
            while let Some(ByteBuf(block)) = seq.next_element()? {
                if blocks.len() == max {
                    return Err(de::Error::invalid_length(max + 1, &self));
                }
                blocks.push(block);
            }
            Ok(blocks)
        }
    }
    d.deserialize_seq(V)
}

/// The request-response codec of the sync protocol, with its limits.
#[derive(Debug, Clone, Copy)]
pub struct SyncCodec {
    /// Largest request frame (prefix included) read or written.
    pub request_bytes_max: usize,
    /// Largest response frame (prefix included) read or written.
    pub response_bytes_max: usize,
}

impl SyncCodec {
    /// Encodes one framed message, refusing to write more than `max` bytes:
    /// we hold ourselves to the limit we hold peers to.
    pub fn encode_frame<T: Serialize>(value: &T, max: usize) -> io::Result<Vec<u8>> {
        let body = encoding::encode(value);
        let total = LENGTH_PREFIX_BYTES + body.len();
        if total > max {
            return Err(invalid(format!(
                "frame of {total} bytes exceeds the {max}-byte limit"
            )));
        }
        let len =
            u32::try_from(body.len()).map_err(|_| invalid("frame length overflows u32".into()))?;
        let mut frame = Vec::with_capacity(total);
        frame.extend_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(&body);
        Ok(frame)
    }

    /// Reads one framed message of at most `max` bytes (prefix included).
    pub async fn read_frame<T, R>(io: &mut R, max: usize) -> io::Result<T>
    where
        T: serde::de::DeserializeOwned,
        R: AsyncRead + Unpin + Send,
    {
        let mut prefix = [0u8; LENGTH_PREFIX_BYTES];
        io.read_exact(&mut prefix).await?;
        let len = u32::from_be_bytes(prefix) as usize;
        let body_max = max.saturating_sub(LENGTH_PREFIX_BYTES);
        if len > body_max {
            return Err(invalid(format!(
                "peer announced a {len}-byte frame, limit is {body_max}"
            )));
        }
        // take() bounds the read; the buffer grows with bytes received, not
        // with the length the peer claimed.
        let mut body = Vec::new();
        io.take(len as u64).read_to_end(&mut body).await?;
        if body.len() != len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "frame truncated",
            ));
        }
        encoding::decode(&body, body_max).map_err(|e: DecodeError| invalid(e.to_string()))
    }

    async fn write_frame<T, W>(io: &mut W, value: &T, max: usize) -> io::Result<()>
    where
        T: Serialize,
        W: AsyncWrite + Unpin + Send,
    {
        let frame = Self::encode_frame(value, max)?;
        io.write_all(&frame).await?;
        io.close().await
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = SyncRequest;
    type Response = SyncResponse;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<SyncRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        Self::read_frame(io, self.request_bytes_max).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<SyncResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        Self::read_frame(io, self.response_bytes_max).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: SyncRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        Self::write_frame(io, &req, self.request_bytes_max).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: SyncResponse,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        Self::write_frame(io, &res, self.response_bytes_max).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use futures::io::Cursor;

    const MAX: usize = 64 * 1024;

    fn read<T: serde::de::DeserializeOwned>(bytes: Vec<u8>, max: usize) -> io::Result<T> {
        block_on(SyncCodec::read_frame(&mut Cursor::new(bytes), max))
    }

    #[test]
    fn messages_round_trip() {
        let messages = [
            SyncResponse::Blocks(vec![vec![1, 2, 3], vec![], vec![9; 1000]]),
            SyncResponse::Blocks(vec![]),
            SyncResponse::Status(ChainStatus {
                tip_height: 7,
                tip_hash: Hash32([3; 32]),
            }),
            SyncResponse::Refused(RefusalReason::Busy),
        ];
        for m in messages {
            let frame = SyncCodec::encode_frame(&m, MAX).unwrap();
            assert_eq!(read::<SyncResponse>(frame, MAX).unwrap(), m);
        }
        let req = SyncRequest::GetBlocks {
            from_height: 5,
            max_count: 10,
        };
        let frame = SyncCodec::encode_frame(&req, 64).unwrap();
        assert_eq!(read::<SyncRequest>(frame, 64).unwrap(), req);
    }

    /// The consensus resolver's answers (`GetCertificates`) decode through
    /// the protocol's certificate decoder: votes out of signer order (the
    /// same certificate in another encoding) are refused with the stream.
    #[test]
    fn certificates_out_of_canonical_order_are_refused() {
        use alliance_protocol::{Certificate, Keypair, VoteKind};
        let cert = Certificate::from_votes(
            VoteKind::Notarize,
            4,
            2,
            Hash32([5; 32]),
            (0..3).map(|i| {
                let k = Keypair::from_label(&format!("v{i}"));
                (k.public(), k.sign(b"vote"))
            }),
        );
        let good = SyncResponse::Certificates(vec![cert.clone()]);
        let frame = SyncCodec::encode_frame(&good, MAX).unwrap();
        assert_eq!(read::<SyncResponse>(frame, MAX).unwrap(), good);
        let mut swapped = cert;
        swapped.votes.swap(0, 2);
        let frame =
            SyncCodec::encode_frame(&SyncResponse::Certificates(vec![swapped]), MAX).unwrap();
        let err = read::<SyncResponse>(frame, MAX).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("canonical order"), "{err}");
    }

    #[test]
    fn blocks_size_formula_matches_encoding() {
        let blocks = vec![vec![1u8; 10], vec![2u8; 300], vec![]];
        let body = encoding::encode(&SyncResponse::Blocks(blocks.clone()));
        assert_eq!(body.len(), blocks_response_bytes(&blocks));
    }

    #[test]
    fn oversized_length_prefix_is_refused_before_reading() {
        // Announces 1 GiB and sends nothing more.
        let frame = (1u32 << 30).to_be_bytes().to_vec();
        let err = read::<SyncResponse>(frame, MAX).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn writer_refuses_to_exceed_the_limit() {
        let big = SyncResponse::Blocks(vec![vec![0; MAX]]);
        assert!(SyncCodec::encode_frame(&big, MAX).is_err());
    }

    #[test]
    fn garbage_and_truncation_are_errors() {
        let mut frame = 5u32.to_be_bytes().to_vec();
        frame.extend_from_slice(&[0xff; 5]);
        assert_eq!(
            read::<SyncResponse>(frame, MAX).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        let mut frame = 50u32.to_be_bytes().to_vec();
        frame.extend_from_slice(&[0; 10]);
        assert_eq!(
            read::<SyncResponse>(frame, MAX).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        // Trailing bytes inside the frame.
        let mut body = encoding::encode(&SyncRequest::Status);
        body.push(0);
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        assert!(read::<SyncRequest>(frame, 64).is_err());
    }

    #[test]
    fn hostile_block_count_is_refused_without_allocating() {
        // Blocks tag, then a count of 2^40 blocks, then nothing.
        let mut body = 0u32.to_le_bytes().to_vec();
        body.extend_from_slice(&(1u64 << 40).to_le_bytes());
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        assert!(read::<SyncResponse>(frame, MAX).is_err());
        // Just over the count limit, with real (empty) blocks.
        let blocks = vec![Vec::new(); SYNC_BLOCKS_PER_REQUEST_MAX as usize + 1];
        let frame = SyncCodec::encode_frame(&SyncResponse::Blocks(blocks), MAX).unwrap();
        assert!(read::<SyncResponse>(frame, MAX).is_err());
    }

    #[test]
    fn truncation_keeps_whole_blocks_within_limits() {
        let mut blocks = vec![vec![0u8; 100]; 10];
        assert_eq!(truncate_blocks(&mut blocks, 4, usize::MAX), 6);
        assert_eq!(blocks.len(), 4);
        // Room for exactly two blocks: prefix + tag + count + 2 * (8 + 100).
        let mut blocks = vec![vec![0u8; 100]; 10];
        truncate_blocks(&mut blocks, 10, 4 + 4 + 8 + 2 * 108);
        assert_eq!(blocks.len(), 2);
        let frame =
            SyncCodec::encode_frame(&SyncResponse::Blocks(blocks), 4 + 4 + 8 + 2 * 108).unwrap();
        assert_eq!(frame.len(), 4 + 4 + 8 + 2 * 108);
    }
}
