//! Control packets: the fixed header and framer (section 2.1), the [`Packet`] enum, and one
//! module per packet type that owns its decoding, encoding and byte-level tests.

mod ack;
mod connack;
mod connect;
mod disconnect;
mod publish;
mod suback;
mod subscribe;

pub use ack::Ack;
pub use connack::Connack;
pub use connect::{Connect, Will};
pub use disconnect::{Auth, Disconnect};
pub use publish::Publish;
pub use suback::{Suback, Unsuback};
pub use subscribe::{Subscribe, SubscribeFilters, Unsubscribe, UnsubscribeFilters};

use crate::error::{DecodeError, EncodeError};
use crate::types::ProtocolVersion;
use crate::wire::{Counter, Reader, Sink, SliceWriter, decode_vbi, vbi_len};

/// Control packet types (section 2.1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    Connect = 1,
    Connack = 2,
    Publish = 3,
    Puback = 4,
    Pubrec = 5,
    Pubrel = 6,
    Pubcomp = 7,
    Subscribe = 8,
    Suback = 9,
    Unsubscribe = 10,
    Unsuback = 11,
    Pingreq = 12,
    Pingresp = 13,
    Disconnect = 14,
    Auth = 15,
}

impl PacketType {
    /// The packet's name as the specification spells it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Connect => "CONNECT",
            Self::Connack => "CONNACK",
            Self::Publish => "PUBLISH",
            Self::Puback => "PUBACK",
            Self::Pubrec => "PUBREC",
            Self::Pubrel => "PUBREL",
            Self::Pubcomp => "PUBCOMP",
            Self::Subscribe => "SUBSCRIBE",
            Self::Suback => "SUBACK",
            Self::Unsubscribe => "UNSUBSCRIBE",
            Self::Unsuback => "UNSUBACK",
            Self::Pingreq => "PINGREQ",
            Self::Pingresp => "PINGRESP",
            Self::Disconnect => "DISCONNECT",
            Self::Auth => "AUTH",
        }
    }

    fn from_first_byte(b: u8, version: ProtocolVersion) -> Result<Self, DecodeError> {
        use PacketType::*;
        let t = match b >> 4 {
            1 => Connect,
            2 => Connack,
            3 => Publish,
            4 => Puback,
            5 => Pubrec,
            6 => Pubrel,
            7 => Pubcomp,
            8 => Subscribe,
            9 => Suback,
            10 => Unsubscribe,
            11 => Unsuback,
            12 => Pingreq,
            13 => Pingresp,
            14 => Disconnect,
            15 if version.is_v5() => Auth,
            other => return Err(DecodeError::ReservedPacketType(other)),
        };
        // [MQTT-2.1.3-1] reserved flags: 0b0010 for PUBREL, SUBSCRIBE, UNSUBSCRIBE; 0 otherwise.
        let expected = match t {
            Publish => return Ok(t),
            Pubrel | Subscribe | Unsubscribe => 0b0010,
            _ => 0,
        };
        if b & 0x0F != expected {
            return Err(DecodeError::BadFixedHeaderFlags {
                packet: t.name(),
                expected,
            });
        }
        Ok(t)
    }
}

/// The fixed header of a complete or partial packet, as found by [`frame`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The first byte: type and flags.
    pub first_byte: u8,
    /// Bytes taken by the fixed header (2 to 5).
    pub header_len: usize,
    /// The remaining length declared in the fixed header.
    pub remaining_len: u32,
}

impl Frame {
    /// The size of the whole packet.
    pub const fn total_len(&self) -> usize {
        self.header_len + self.remaining_len as usize
    }
}

/// Reads the fixed header at the start of `buf`.
///
/// `Ok(None)` means more bytes are needed to know the length. The declared size is checked
/// against `max_packet_size` as soon as it is known, before the caller buffers the body
/// (ARCHITECTURE.md convention 3).
pub fn frame(buf: &[u8], max_packet_size: u32) -> Result<Option<Frame>, DecodeError> {
    let Some(&first_byte) = buf.first() else {
        return Ok(None);
    };
    let Some((remaining_len, n)) = decode_vbi(&buf[1..], "remaining length")? else {
        return Ok(None);
    };
    let total = remaining_len as u64 + 1 + n as u64;
    if total > u64::from(max_packet_size) {
        return Err(DecodeError::PacketTooLarge {
            len: u32::try_from(total).unwrap_or(u32::MAX),
            max: max_packet_size,
        });
    }
    Ok(Some(Frame {
        first_byte,
        header_len: 1 + n,
        remaining_len,
    }))
}

/// Any control packet, borrowing from the buffer it was decoded from.
///
/// CONNECT is the largest variant (two property sets); boxing is not available without
/// `alloc`, and packets are short-lived views, so the size difference is accepted.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Packet<'a> {
    Connect(Connect<'a>),
    Connack(Connack<'a>),
    Publish(Publish<'a>),
    Puback(Ack<'a>),
    Pubrec(Ack<'a>),
    Pubrel(Ack<'a>),
    Pubcomp(Ack<'a>),
    Subscribe(Subscribe<'a>),
    Suback(Suback<'a>),
    Unsubscribe(Unsubscribe<'a>),
    Unsuback(Unsuback<'a>),
    Pingreq,
    Pingresp,
    Disconnect(Disconnect<'a>),
    Auth(Auth<'a>),
}

/// Decodes one packet from the start of `buf`.
///
/// `version` is the connection's protocol version (ignored for CONNECT, which carries its own).
/// Returns the packet and the number of bytes it took, or `Ok(None)` when `buf` does not yet
/// hold the whole packet. Never panics, whatever the input.
pub fn decode(
    buf: &[u8],
    version: ProtocolVersion,
    max_packet_size: u32,
) -> Result<Option<(Packet<'_>, usize)>, DecodeError> {
    let Some(f) = frame(buf, max_packet_size)? else {
        return Ok(None);
    };
    let total = f.total_len();
    let Some(body) = buf.get(f.header_len..total) else {
        return Ok(None);
    };
    let packet = decode_body(f.first_byte, body, version)?;
    Ok(Some((packet, total)))
}

/// Decodes a packet whose fixed header has already been read by [`frame`].
pub fn decode_body(
    first_byte: u8,
    body: &[u8],
    version: ProtocolVersion,
) -> Result<Packet<'_>, DecodeError> {
    let t = PacketType::from_first_byte(first_byte, version)?;
    let mut r = Reader::new(body);
    let p = match t {
        PacketType::Connect => Packet::Connect(Connect::decode(&mut r)?),
        PacketType::Connack => Packet::Connack(Connack::decode(&mut r, version)?),
        PacketType::Publish => Packet::Publish(Publish::decode(first_byte, &mut r, version)?),
        PacketType::Puback => Packet::Puback(Ack::decode(t, &mut r, version)?),
        PacketType::Pubrec => Packet::Pubrec(Ack::decode(t, &mut r, version)?),
        PacketType::Pubrel => Packet::Pubrel(Ack::decode(t, &mut r, version)?),
        PacketType::Pubcomp => Packet::Pubcomp(Ack::decode(t, &mut r, version)?),
        PacketType::Subscribe => Packet::Subscribe(Subscribe::decode(&mut r, version)?),
        PacketType::Suback => Packet::Suback(Suback::decode(&mut r, version)?),
        PacketType::Unsubscribe => Packet::Unsubscribe(Unsubscribe::decode(&mut r, version)?),
        PacketType::Unsuback => Packet::Unsuback(Unsuback::decode(&mut r, version)?),
        PacketType::Pingreq => Packet::Pingreq,
        PacketType::Pingresp => Packet::Pingresp,
        PacketType::Disconnect => Packet::Disconnect(Disconnect::decode(&mut r, version)?),
        PacketType::Auth => Packet::Auth(Auth::decode(&mut r)?),
    };
    if !r.is_empty() {
        return Err(DecodeError::TrailingBytes(r.remaining() as u32));
    }
    Ok(p)
}

impl Packet<'_> {
    /// The packet's type.
    pub const fn packet_type(&self) -> PacketType {
        match self {
            Self::Connect(_) => PacketType::Connect,
            Self::Connack(_) => PacketType::Connack,
            Self::Publish(_) => PacketType::Publish,
            Self::Puback(_) => PacketType::Puback,
            Self::Pubrec(_) => PacketType::Pubrec,
            Self::Pubrel(_) => PacketType::Pubrel,
            Self::Pubcomp(_) => PacketType::Pubcomp,
            Self::Subscribe(_) => PacketType::Subscribe,
            Self::Suback(_) => PacketType::Suback,
            Self::Unsubscribe(_) => PacketType::Unsubscribe,
            Self::Unsuback(_) => PacketType::Unsuback,
            Self::Pingreq => PacketType::Pingreq,
            Self::Pingresp => PacketType::Pingresp,
            Self::Disconnect(_) => PacketType::Disconnect,
            Self::Auth(_) => PacketType::Auth,
        }
    }

    fn first_byte(&self) -> u8 {
        let flags = match self {
            Self::Publish(p) => p.flags(),
            Self::Pubrel(_) | Self::Subscribe(_) | Self::Unsubscribe(_) => 0b0010,
            _ => 0,
        };
        ((self.packet_type() as u8) << 4) | flags
    }

    fn write_body<S: Sink>(&self, v: ProtocolVersion, s: &mut S) -> Result<(), EncodeError> {
        match self {
            Self::Connect(p) => p.write_body(s),
            Self::Connack(p) => p.write_body(v, s),
            Self::Publish(p) => p.write_body(v, s),
            Self::Puback(p) | Self::Pubrec(p) | Self::Pubrel(p) | Self::Pubcomp(p) => {
                p.write_body(v, s)
            }
            Self::Subscribe(p) => p.write_body(v, s),
            Self::Suback(p) => p.write_body(v, s),
            Self::Unsubscribe(p) => p.write_body(v, s),
            Self::Unsuback(p) => p.write_body(v, s),
            Self::Pingreq | Self::Pingresp => Ok(()),
            Self::Disconnect(p) => p.write_body(v, s),
            Self::Auth(p) => {
                if !v.is_v5() {
                    return Err(EncodeError::Invalid("AUTH exists only in MQTT 5.0"));
                }
                p.write_body(s)
            }
        }
    }

    fn body_len(&self, v: ProtocolVersion) -> Result<u32, EncodeError> {
        let mut c = Counter::default();
        self.write_body(v, &mut c)?;
        u32::try_from(c.0)
            .ok()
            .filter(|&n| n <= crate::wire::VBI_MAX)
            .ok_or(EncodeError::PacketTooLarge)
    }

    /// The size of the encoded packet, fixed header included.
    pub fn encoded_len(&self, v: ProtocolVersion) -> Result<usize, EncodeError> {
        let body = self.body_len(v)?;
        Ok(1 + vbi_len(body) + body as usize)
    }

    /// Encodes the packet for a connection of version `v` into `out`, returning the bytes
    /// written. Fields that `v` cannot carry (properties before 5.0) are left out.
    pub fn encode(&self, v: ProtocolVersion, out: &mut [u8]) -> Result<usize, EncodeError> {
        let body = self.body_len(v)?;
        let needed = 1 + vbi_len(body) + body as usize;
        if out.len() < needed {
            return Err(EncodeError::BufferTooSmall { needed });
        }
        let mut w = SliceWriter { buf: out, pos: 0 };
        w.put_u8(self.first_byte())?;
        w.put_vbi(body)?;
        self.write_body(v, &mut w)?;
        debug_assert_eq!(w.pos, needed);
        Ok(w.pos)
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::*;

    /// Encodes and returns a fixed array + length (no alloc in this crate).
    pub fn enc(p: &Packet<'_>, v: ProtocolVersion) -> ([u8; 512], usize) {
        let mut out = [0u8; 512];
        let n = p.encode(v, &mut out).unwrap();
        assert_eq!(p.encoded_len(v).unwrap(), n);
        (out, n)
    }

    pub fn dec(bytes: &[u8], v: ProtocolVersion) -> Result<Packet<'_>, DecodeError> {
        match decode(bytes, v, u32::MAX)? {
            Some((p, n)) => {
                assert_eq!(n, bytes.len(), "packet did not use all bytes");
                Ok(p)
            }
            None => panic!("incomplete packet"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::dec;
    use super::*;
    use ProtocolVersion::*;

    #[test]
    fn framer_needs_more_bytes_is_ok_none() {
        assert_eq!(frame(&[], 100), Ok(None));
        assert_eq!(frame(&[0x30], 100), Ok(None));
        assert_eq!(frame(&[0x30, 0x80], 100), Ok(None));
        assert_eq!(
            frame(&[0x30, 0x05], 100),
            Ok(Some(Frame {
                first_byte: 0x30,
                header_len: 2,
                remaining_len: 5
            }))
        );
        assert_eq!(decode(&[0x30, 0x05, 0, 1], V311, 100), Ok(None));
    }

    #[test]
    fn framer_rejects_before_buffering() {
        // Declares 16,384 bytes; only the header is present and it is already refused.
        assert_eq!(
            frame(&[0x30, 0x80, 0x80, 0x01], 1024),
            Err(DecodeError::PacketTooLarge {
                len: 16_388,
                max: 1024
            })
        );
        assert_eq!(
            frame(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], u32::MAX),
            Err(DecodeError::BadVarInt {
                field: "remaining length"
            })
        );
    }

    #[test]
    fn reserved_types_and_flags_mqtt_2_1_3_1() {
        assert_eq!(
            dec(&[0x00, 0x00], V5),
            Err(DecodeError::ReservedPacketType(0))
        );
        assert_eq!(
            dec(&[0xF0, 0x00], V311),
            Err(DecodeError::ReservedPacketType(15))
        );
        assert_eq!(
            dec(&[0xC1, 0x00], V311),
            Err(DecodeError::BadFixedHeaderFlags {
                packet: "PINGREQ",
                expected: 0
            })
        );
        assert_eq!(
            dec(&[0x60, 0x02, 0x00, 0x01], V311),
            Err(DecodeError::BadFixedHeaderFlags {
                packet: "PUBREL",
                expected: 2
            })
        );
        assert_eq!(
            dec(&[0x80, 0x06, 0, 1, 0, 1, b'a', 0], V311),
            Err(DecodeError::BadFixedHeaderFlags {
                packet: "SUBSCRIBE",
                expected: 2
            })
        );
    }

    #[test]
    fn ping_packets() {
        assert_eq!(dec(&[0xC0, 0x00], V311), Ok(Packet::Pingreq));
        assert_eq!(dec(&[0xD0, 0x00], V5), Ok(Packet::Pingresp));
        assert_eq!(
            dec(&[0xC0, 0x01, 0x00], V311),
            Err(DecodeError::TrailingBytes(1))
        );
    }

    #[test]
    fn decode_at_every_split_point_is_need_more_then_whole() {
        // PUBLISH QoS 1 "a/b" id 10 payload "hi".
        let bytes = [0x32, 0x09, 0, 3, b'a', b'/', b'b', 0, 10, b'h', b'i'];
        for split in 0..bytes.len() {
            assert_eq!(
                decode(&bytes[..split], V311, 1000),
                Ok(None),
                "split {split}"
            );
        }
        assert!(matches!(
            decode(&bytes, V311, 1000),
            Ok(Some((Packet::Publish(_), 11)))
        ));
    }
}
