//! tern-codec: `decode` / `frame` / `Packet::encode` / `encoded_len`.
//!
//! Properties (ARCHITECTURE.md conventions 2, 3 and 8):
//! - nothing panics, whatever the bytes and the protocol version;
//! - `frame` and `decode` agree on where a packet ends;
//! - a packet that decodes re-encodes (`encoded_len` equals what `encode` writes, a buffer one
//!   byte short is refused), decodes again to an equal packet using every byte, and encoding
//!   that packet again gives the same bytes (the encoding is stable);
//! - encoding for another version may be refused, but never panics and `encoded_len` agrees;
//! - `max_packet_size` is exact: the packet decodes with a maximum of its size and is refused
//!   as too large with one byte less;
//! - "need more bytes" is never wrong: a prefix of the input either needs more bytes or gives
//!   the same answer as the whole input; every strict prefix of a packet needs more bytes;
//! - a stream of packets fed in arbitrary pieces yields the same packets, and the same error,
//!   as the stream decoded in one go.

use arbitrary::Unstructured;
use tern_codec::{DecodeError, EncodeError, Packet, ProtocolVersion, decode, frame};

/// Every version the decoder distinguishes (3.1 differs from 3.1.1 only in CONNECT).
pub const VERSIONS: [ProtocolVersion; 3] = [
    ProtocolVersion::V31,
    ProtocolVersion::V311,
    ProtocolVersion::V5,
];

/// Maximum packet sizes the split target chooses from (the first byte after the version).
pub const MAX_SIZES: [u32; 6] = [u32::MAX, 268_435_460, 1024, 64, 16, 2];

/// Target `decode`: the whole input as one packet under every version.
pub fn run_decode(data: &[u8]) {
    for v in VERSIONS {
        check_decode(data, v);
    }
}

/// Decodes `data` once and checks everything that follows from the answer.
pub fn check_decode(data: &[u8], v: ProtocolVersion) {
    let framed = frame(data, u32::MAX);
    match decode(data, v, u32::MAX) {
        Ok(Some((p, n))) => {
            assert!(n <= data.len(), "decode used {n} of {} bytes", data.len());
            match framed {
                Ok(Some(f)) => assert_eq!(f.total_len(), n, "frame and decode disagree on length"),
                other => panic!("decode found a {n}-byte packet but frame said {other:?}"),
            }
            check_max_packet_size(data, v, n, &p);
            check_roundtrip(&p, v);
            for other in VERSIONS.into_iter().filter(|&o| o != v) {
                check_cross_version(&p, other);
            }
        }
        Ok(None) => match framed {
            Ok(None) => {}
            Ok(Some(f)) => assert!(
                f.total_len() > data.len(),
                "decode needs more bytes but frame says the packet ({} bytes) is complete in {}",
                f.total_len(),
                data.len()
            ),
            Err(e) => panic!("decode needs more bytes but frame fails with {e:?}"),
        },
        Err(e) => {
            // The wire mapping and the message exist for every error.
            let _ = e.reason_code();
            let _ = e.to_string();
            if let Err(fe) = framed {
                assert_eq!(e, fe, "decode and frame report different header errors");
            }
        }
    }
}

/// The packet of `n` bytes at the start of `data` decodes with `max_packet_size == n` and is
/// refused with `n - 1`, before its body is looked at.
fn check_max_packet_size(data: &[u8], v: ProtocolVersion, n: usize, p: &Packet<'_>) {
    let Ok(n32) = u32::try_from(n) else { return };
    match decode(data, v, n32) {
        Ok(Some((q, m))) => {
            assert_eq!(m, n);
            assert_eq!(&q, p);
        }
        other => panic!("packet of {n} bytes refused with max_packet_size {n}: {other:?}"),
    }
    match decode(data, v, n32 - 1) {
        Err(DecodeError::PacketTooLarge { len, max }) => {
            assert_eq!((len, max), (n32, n32 - 1));
        }
        other => panic!(
            "packet of {n} bytes with max_packet_size {}: {other:?}",
            n - 1
        ),
    }
}

/// Encoding a packet for another version (a broker forwarding between 3.1.1 and 5.0 clients)
/// may be refused, but `encoded_len` and `encode` agree and nothing panics. The bytes need not
/// decode: "fields that `v` cannot carry are left out" (see `Packet::encode`).
fn check_cross_version(p: &Packet<'_>, v: ProtocolVersion) {
    let Ok(len) = p.encoded_len(v) else { return };
    let mut buf = vec![0u8; len];
    match p.encode(v, &mut buf) {
        Ok(n) => assert_eq!(n, len, "encoded_len disagrees with encode for {v}\n{p:?}"),
        Err(e) => panic!("encoded_len is {len} but encode fails for {v}: {e:?}\n{p:?}"),
    }
    let _ = decode(&buf, v, u32::MAX);
}

/// Encodes `p` for `v` and decodes it again: equal packet, every byte used, stable bytes.
/// Returns the encoding.
pub fn check_roundtrip(p: &Packet<'_>, v: ProtocolVersion) -> Vec<u8> {
    let len = match p.encoded_len(v) {
        Ok(len) => len,
        Err(e) => panic!("decoded packet cannot be re-encoded for {v}: {e:?}\n{p:?}"),
    };
    let mut buf = vec![0u8; len];
    let n = match p.encode(v, &mut buf) {
        Ok(n) => n,
        Err(e) => panic!("encoded_len is {len} but encode fails for {v}: {e:?}\n{p:?}"),
    };
    assert_eq!(n, len, "encoded_len disagrees with encode for {v}\n{p:?}");
    let mut short = vec![0u8; len - 1];
    assert_eq!(
        p.encode(v, &mut short),
        Err(EncodeError::BufferTooSmall { needed: len }),
        "encode into a buffer one byte short"
    );
    let q = match decode(&buf, v, u32::MAX) {
        Ok(Some((q, used))) => {
            assert_eq!(used, len, "re-encoded packet not fully used: {buf:02x?}");
            q
        }
        other => panic!(
            "re-encoded packet does not decode for {v}: {other:?}\nbytes {buf:02x?}\nfrom {p:?}"
        ),
    };
    assert_eq!(
        p, &q,
        "round trip changed the packet for {v}; bytes {buf:02x?}"
    );
    let mut again = vec![0u8; len];
    match q.encode(v, &mut again) {
        Ok(m) => assert_eq!(m, len),
        Err(e) => panic!("second encoding failed: {e:?}"),
    }
    assert_eq!(buf, again, "encoding is not stable for {v}\n{p:?}");
    buf
}

/// The input of target `framer_split`, taken apart with `arbitrary`:
/// byte 0 chooses the version, byte 1 the maximum packet size, byte 2 the number of cuts
/// (0 to 8), then two bytes per cut, then the stream itself. See [`split_input_bytes`].
#[derive(Debug)]
pub struct SplitInput<'a> {
    pub version: ProtocolVersion,
    pub max_packet_size: u32,
    pub cuts: Vec<usize>,
    pub stream: &'a [u8],
}

impl<'a> SplitInput<'a> {
    pub fn parse(data: &'a [u8]) -> Self {
        let mut u = Unstructured::new(data);
        let byte = |u: &mut Unstructured<'_>| u.arbitrary::<u8>().unwrap_or(0);
        let version = VERSIONS[usize::from(byte(&mut u)) % VERSIONS.len()];
        let max_packet_size = MAX_SIZES[usize::from(byte(&mut u)) % MAX_SIZES.len()];
        let ncuts = byte(&mut u) % 9;
        let raw: Vec<u16> = (0..ncuts)
            .map(|_| u.arbitrary::<u16>().unwrap_or(0))
            .collect();
        let stream = u.take_rest();
        let mut cuts: Vec<usize> = raw
            .into_iter()
            .map(|c| usize::from(c) % (stream.len() + 1))
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        Self {
            version,
            max_packet_size,
            cuts,
            stream,
        }
    }
}

/// The bytes that [`SplitInput::parse`] reads as `stream` under version index `v` (into
/// [`VERSIONS`]) and maximum index `max` (into [`MAX_SIZES`]), cut at `cuts` (for seeds).
pub fn split_input_bytes(v: u8, max: u8, cuts: &[u16], stream: &[u8]) -> Vec<u8> {
    assert!(cuts.len() <= 8);
    let mut out = vec![v, max, cuts.len() as u8];
    for c in cuts {
        // `Unstructured::arbitrary::<u16>` reads its two bytes little-endian.
        out.extend_from_slice(&c.to_le_bytes());
    }
    out.extend_from_slice(stream);
    out
}

/// What a reader loop saw: each packet's raw bytes, then how it stopped (an error, or an
/// incomplete tail left in the buffer).
#[derive(Debug, PartialEq)]
struct Consumed {
    packets: Vec<Vec<u8>>,
    error: Option<DecodeError>,
    leftover: Vec<u8>,
}

/// Target `framer_split`.
pub fn run_framer_split(data: &[u8]) {
    let input = SplitInput::parse(data);
    check_prefixes(input.stream, input.version, input.max_packet_size);
    let whole = consume(input.stream, input.version, input.max_packet_size, &[]);
    let pieces = consume(
        input.stream,
        input.version,
        input.max_packet_size,
        &input.cuts,
    );
    assert_eq!(
        whole, pieces,
        "stream decoded in one go and in pieces (cut at {:?}) differ",
        input.cuts
    );
    // Every byte before the first error or the incomplete tail was consumed.
    let used: usize = whole.packets.iter().map(Vec::len).sum();
    if whole.error.is_none() {
        assert_eq!(&input.stream[used..], &whole.leftover[..]);
    }
}

/// Decodes every prefix of the first packet of `stream`.
fn check_prefixes(stream: &[u8], v: ProtocolVersion, max: u32) {
    let whole = decode(stream, v, max);
    let end = match (&whole, frame(stream, max)) {
        (Ok(Some((_, n))), _) => *n,
        // Refused after the header: up to the declared end the prefixes need more bytes,
        // and from there on decode reads exactly what it read for the whole input.
        (_, Ok(Some(f))) => f.total_len().min(stream.len()),
        // No header yet, or a bad one: the header is at most 5 bytes.
        _ => stream.len().min(6),
    };
    for k in 0..end {
        match decode(&stream[..k], v, max) {
            Ok(None) => {}
            Ok(Some((_, n))) => {
                panic!("prefix of {k} bytes decodes a {n}-byte packet; whole: {whole:?}")
            }
            Err(e) => assert_eq!(
                Err(e),
                whole.map(|o| o.map(|(_, n)| n)),
                "prefix of {k} bytes fails differently from the whole input"
            ),
        }
    }
    if let Ok(Some((p, n))) = &whole {
        assert_eq!(
            decode(&stream[..*n], v, max),
            Ok(Some((*p, *n))),
            "the packet alone decodes differently"
        );
    }
}

/// A connection's reader loop: append each piece to a buffer, take every complete packet
/// off its front, stop at the first error.
fn consume(stream: &[u8], v: ProtocolVersion, max: u32, cuts: &[usize]) -> Consumed {
    let mut out = Consumed {
        packets: Vec::new(),
        error: None,
        leftover: Vec::new(),
    };
    let mut buf: Vec<u8> = Vec::new();
    let mut start = 0;
    let ends = cuts.iter().copied().chain(core::iter::once(stream.len()));
    for end in ends {
        if end < start {
            continue;
        }
        buf.extend_from_slice(&stream[start..end]);
        start = end;
        loop {
            match decode(&buf, v, max) {
                Ok(Some((p, n))) => {
                    // Re-encoding works on the packet found mid-stream too.
                    let _ = p.encoded_len(v);
                    out.packets.push(buf[..n].to_vec());
                    buf.drain(..n);
                }
                Ok(None) => break,
                Err(e) => {
                    // What was buffered when the error showed depends on the pieces; the
                    // error itself and the packets before it must not.
                    out.error = Some(e);
                    return out;
                }
            }
        }
    }
    out.leftover = buf;
    out
}
