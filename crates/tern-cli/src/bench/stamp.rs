//! The 16-byte stamp at the front of every benchmark payload: send time, sequence number and
//! publisher id, little-endian. Owns only the byte layout; it never reads a clock itself.
//!
//! ```text
//! bytes 0..8   send time, nanoseconds since the run's clock base (u64)
//! bytes 8..12  sequence number within the publisher, from 0 (u32)
//! bytes 12..16 publisher id (u32)
//! bytes 16..   filler (b'.')
//! ```

/// Bytes the stamp takes; the smallest payload `tern bench` accepts.
pub const STAMP_LEN: usize = 16;

/// What a subscriber reads back from a payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// Send time in nanoseconds since the run's clock base.
    pub sent_ns: u64,
    /// Sequence number within the publisher.
    pub seq: u32,
    /// Publisher id.
    pub publisher: u32,
}

/// A payload buffer of `len` bytes (at least [`STAMP_LEN`]) with the filler in place.
pub fn new_payload(len: usize) -> Vec<u8> {
    vec![b'.'; len.max(STAMP_LEN)]
}

/// Writes `stamp` over the first 16 bytes of `payload`. Returns false (and writes nothing)
/// when the payload is shorter than the stamp.
pub fn write(payload: &mut [u8], stamp: Stamp) -> bool {
    let Some(head) = payload.get_mut(..STAMP_LEN) else {
        return false;
    };
    head[0..8].copy_from_slice(&stamp.sent_ns.to_le_bytes());
    head[8..12].copy_from_slice(&stamp.seq.to_le_bytes());
    head[12..16].copy_from_slice(&stamp.publisher.to_le_bytes());
    true
}

/// Reads the stamp from a payload; `None` when it is too short to hold one.
pub fn read(payload: &[u8]) -> Option<Stamp> {
    let head = payload.get(..STAMP_LEN)?;
    let mut t = [0u8; 8];
    t.copy_from_slice(&head[0..8]);
    let mut s = [0u8; 4];
    s.copy_from_slice(&head[8..12]);
    let mut p = [0u8; 4];
    p.copy_from_slice(&head[12..16]);
    Some(Stamp {
        sent_ns: u64::from_le_bytes(t),
        seq: u32::from_le_bytes(s),
        publisher: u32::from_le_bytes(p),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_filler() {
        let mut p = new_payload(64);
        let st = Stamp {
            sent_ns: 0x0102_0304_0506_0708,
            seq: 0xA0B0_C0D0,
            publisher: 49,
        };
        assert!(write(&mut p, st));
        assert_eq!(read(&p), Some(st));
        assert_eq!(p.len(), 64);
        assert!(p[16..].iter().all(|&b| b == b'.'));
    }

    #[test]
    fn layout_is_little_endian_at_fixed_offsets() {
        let mut p = new_payload(16);
        write(
            &mut p,
            Stamp {
                sent_ns: 1,
                seq: 2,
                publisher: 3,
            },
        );
        assert_eq!(p, [1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0]);
    }

    #[test]
    fn short_payloads_are_refused() {
        assert_eq!(read(&[0u8; 15]), None);
        let mut short = [0u8; 8];
        assert!(!write(
            &mut short,
            Stamp {
                sent_ns: 1,
                seq: 1,
                publisher: 1
            }
        ));
        assert_eq!(short, [0u8; 8]);
        assert_eq!(new_payload(3).len(), STAMP_LEN);
    }
}
