//! The data representations of MQTT 5.0 section 1.5: integers, variable byte integers,
//! UTF-8 strings and binary data; a bounds-checked reader over a borrowed slice and writers
//! that either count bytes or fill a caller-owned slice.

use crate::error::{DecodeError, EncodeError};

/// The largest value a variable byte integer can hold (MQTT 5.0 section 1.5.5).
pub const VBI_MAX: u32 = 268_435_455;

/// Decodes a variable byte integer from the start of `buf`.
///
/// `Ok(None)` means more bytes are needed. [MQTT-1.5.5-1] values must be minimally encoded
/// and at most 4 bytes long; anything else is an error naming `field`.
pub fn decode_vbi(buf: &[u8], field: &'static str) -> Result<Option<(u32, usize)>, DecodeError> {
    let mut value: u32 = 0;
    for i in 0..4 {
        let Some(&b) = buf.get(i) else {
            return Ok(None);
        };
        value |= u32::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            if i > 0 && b == 0 {
                // A trailing zero byte: 0x80 0x00 is not the minimal encoding of 0.
                return Err(DecodeError::BadVarInt { field });
            }
            return Ok(Some((value, i + 1)));
        }
    }
    Err(DecodeError::BadVarInt { field })
}

/// How many bytes `v` takes as a variable byte integer.
pub const fn vbi_len(v: u32) -> usize {
    match v {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// A bounds-checked cursor over one packet's bytes. Every read names its field so that a
/// truncated packet says where it ended.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// The unread bytes, without consuming them.
    pub(crate) fn peek(&self) -> &'a [u8] {
        self.buf
    }

    /// Everything not yet read.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.buf)
    }

    pub(crate) fn bytes(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated { field });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.bytes(1, field)?[0])
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        let b = self.bytes(2, field)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        let b = self.bytes(4, field)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn vbi(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        match decode_vbi(self.buf, field)? {
            Some((v, n)) => {
                self.buf = &self.buf[n..];
                Ok(v)
            }
            None => Err(DecodeError::Truncated { field }),
        }
    }

    /// Binary data: a two-byte length and that many bytes (section 1.5.6).
    pub(crate) fn binary(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.u16(field)?;
        self.bytes(usize::from(len), field)
    }

    /// A UTF-8 encoded string (section 1.5.4): valid UTF-8 without U+0000.
    pub(crate) fn str(&mut self, field: &'static str) -> Result<&'a str, DecodeError> {
        let raw = self.binary(field)?;
        utf8(raw, field)
    }
}

/// Validates an MQTT UTF-8 string: [MQTT-1.5.4-1] well-formed, no surrogates,
/// [MQTT-1.5.4-2] no U+0000.
pub(crate) fn utf8<'a>(raw: &'a [u8], field: &'static str) -> Result<&'a str, DecodeError> {
    if raw.contains(&0) {
        return Err(DecodeError::BadString { field });
    }
    core::str::from_utf8(raw).map_err(|_| DecodeError::BadString { field })
}

/// Where encoded bytes go: [`Counter`] measures, [`SliceWriter`] fills a buffer.
pub(crate) trait Sink {
    fn put(&mut self, bytes: &[u8]) -> Result<(), EncodeError>;

    fn put_u8(&mut self, v: u8) -> Result<(), EncodeError> {
        self.put(&[v])
    }
    fn put_u16(&mut self, v: u16) -> Result<(), EncodeError> {
        self.put(&v.to_be_bytes())
    }
    fn put_u32(&mut self, v: u32) -> Result<(), EncodeError> {
        self.put(&v.to_be_bytes())
    }
    fn put_vbi(&mut self, mut v: u32) -> Result<(), EncodeError> {
        if v > VBI_MAX {
            return Err(EncodeError::PacketTooLarge);
        }
        let mut out = [0u8; 4];
        let mut n = 0;
        loop {
            let mut b = (v & 0x7F) as u8;
            v >>= 7;
            if v > 0 {
                b |= 0x80;
            }
            out[n] = b;
            n += 1;
            if v == 0 {
                break;
            }
        }
        self.put(&out[..n])
    }
    fn put_binary(&mut self, v: &[u8], field: &'static str) -> Result<(), EncodeError> {
        let len = u16::try_from(v.len()).map_err(|_| EncodeError::FieldTooLong { field })?;
        self.put_u16(len)?;
        self.put(v)
    }
    fn put_str(&mut self, v: &str, field: &'static str) -> Result<(), EncodeError> {
        self.put_binary(v.as_bytes(), field)
    }
}

/// A sink that only counts.
#[derive(Debug, Default)]
pub(crate) struct Counter(pub usize);

impl Sink for Counter {
    fn put(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        self.0 += bytes.len();
        Ok(())
    }
}

/// A sink over a caller-owned slice.
#[derive(Debug)]
pub(crate) struct SliceWriter<'a> {
    pub(crate) buf: &'a mut [u8],
    pub(crate) pos: usize,
}

impl Sink for SliceWriter<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        let end = self.pos + bytes.len();
        let Some(dst) = self.buf.get_mut(self.pos..end) else {
            return Err(EncodeError::BufferTooSmall { needed: end });
        };
        dst.copy_from_slice(bytes);
        self.pos = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MQTT 5.0 section 1.5.5, table 1-1: the boundaries of each length.
    const VBI: &[(u32, &[u8])] = &[
        (0, &[0x00]),
        (127, &[0x7F]),
        (128, &[0x80, 0x01]),
        (16_383, &[0xFF, 0x7F]),
        (16_384, &[0x80, 0x80, 0x01]),
        (2_097_151, &[0xFF, 0xFF, 0x7F]),
        (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
        (268_435_455, &[0xFF, 0xFF, 0xFF, 0x7F]),
    ];

    #[test]
    fn vbi_table_1_1() {
        for &(v, bytes) in VBI {
            assert_eq!(decode_vbi(bytes, "x"), Ok(Some((v, bytes.len()))), "{v}");
            let mut out = [0u8; 4];
            let mut w = SliceWriter {
                buf: &mut out,
                pos: 0,
            };
            w.put_vbi(v).unwrap();
            let n = w.pos;
            assert_eq!(&out[..n], bytes);
            assert_eq!(vbi_len(v), bytes.len());
        }
    }

    #[test]
    fn vbi_needs_more_and_errors_mqtt_1_5_5_1() {
        assert_eq!(decode_vbi(&[], "x"), Ok(None));
        assert_eq!(decode_vbi(&[0x80], "x"), Ok(None));
        assert_eq!(decode_vbi(&[0xFF, 0xFF, 0xFF], "x"), Ok(None));
        // Five bytes: too long.
        assert_eq!(
            decode_vbi(&[0xFF, 0xFF, 0xFF, 0xFF, 0x01], "x"),
            Err(DecodeError::BadVarInt { field: "x" })
        );
        // Not minimal.
        assert_eq!(
            decode_vbi(&[0x80, 0x00], "x"),
            Err(DecodeError::BadVarInt { field: "x" })
        );
        let mut c = Counter::default();
        assert_eq!(c.put_vbi(VBI_MAX + 1), Err(EncodeError::PacketTooLarge));
    }

    #[test]
    fn strings_mqtt_1_5_4() {
        assert_eq!(utf8(b"ok", "s"), Ok("ok"));
        assert_eq!(
            utf8(b"a\0b", "s"),
            Err(DecodeError::BadString { field: "s" })
        );
        // An encoded surrogate U+D800 is not valid UTF-8.
        assert_eq!(
            utf8(&[0xED, 0xA0, 0x80], "s"),
            Err(DecodeError::BadString { field: "s" })
        );
        assert_eq!(
            utf8(&[0xC3], "s"),
            Err(DecodeError::BadString { field: "s" })
        );
    }
}
