//! Just enough DER to read a server certificate for diagnostics, pinning and the
//! libmosquitto-style host name check: version, validity dates, subject and issuer common
//! names, subject alternative names (DNS and IP) and the SubjectPublicKeyInfo.
//!
//! Chain validation is not done here (webpki does it); this parser only reads fields and
//! must never panic on hostile input: every length is checked against the buffer.

use std::net::IpAddr;

/// The fields of a certificate that tern-client looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    /// 1 or 3 (the X.509 version, not the DER value).
    pub version: u8,
    /// Unix seconds.
    pub not_before: i64,
    /// Unix seconds.
    pub not_after: i64,
    pub subject_cn: Option<String>,
    pub issuer_cn: Option<String>,
    pub san_dns: Vec<String>,
    pub san_ip: Vec<IpAddr>,
    /// The whole SubjectPublicKeyInfo, DER (what SPKI pins hash).
    pub spki: Vec<u8>,
    /// The contents of the SPKI AlgorithmIdentifier SEQUENCE (matched against the
    /// verification algorithm's public key identifier).
    pub spki_algorithm: Vec<u8>,
    /// The subjectPublicKey BIT STRING contents, without the unused-bits byte.
    pub public_key: Vec<u8>,
}

/// Why a certificate could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the certificate is not valid DER: {0}")]
pub struct DerError(&'static str);

struct Der<'a> {
    buf: &'a [u8],
}

impl<'a> Der<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn peek_tag(&self) -> Option<u8> {
        self.buf.first().copied()
    }

    /// Reads one TLV; returns (tag, contents, whole TLV).
    fn read(&mut self) -> Result<(u8, &'a [u8], &'a [u8]), DerError> {
        let buf = self.buf;
        let tag = *buf.first().ok_or(DerError("truncated tag"))?;
        let first = *buf.get(1).ok_or(DerError("truncated length"))?;
        let (len, hdr) = if first < 0x80 {
            (usize::from(first), 2)
        } else {
            let n = usize::from(first & 0x7F);
            if n == 0 || n > 4 {
                return Err(DerError("unsupported length"));
            }
            let bytes = buf.get(2..2 + n).ok_or(DerError("truncated length"))?;
            let len = bytes.iter().fold(0usize, |a, &b| (a << 8) | usize::from(b));
            (len, 2 + n)
        };
        let end = hdr.checked_add(len).ok_or(DerError("length overflow"))?;
        let whole = buf.get(..end).ok_or(DerError("truncated value"))?;
        self.buf = &buf[end..];
        Ok((tag, &whole[hdr..], whole))
    }

    fn expect(&mut self, tag: u8, what: &'static str) -> Result<&'a [u8], DerError> {
        let (t, v, _) = self.read()?;
        if t != tag {
            return Err(DerError(what));
        }
        Ok(v)
    }
}

const OID_CN: &[u8] = &[0x55, 0x04, 0x03];
const OID_SAN: &[u8] = &[0x55, 0x1D, 0x11];

/// Reads the fields of a DER certificate.
pub fn parse(der: &[u8]) -> Result<CertInfo, DerError> {
    let mut outer = Der::new(der);
    let cert = outer.expect(0x30, "certificate is not a SEQUENCE")?;
    let mut cert = Der::new(cert);
    let tbs = cert.expect(0x30, "tbsCertificate is not a SEQUENCE")?;
    let mut t = Der::new(tbs);
    let mut version = 1;
    if t.peek_tag() == Some(0xA0) {
        let v = t.expect(0xA0, "version")?;
        let v = Der::new(v).expect(0x02, "version is not an INTEGER")?;
        version = v.last().copied().unwrap_or(0).saturating_add(1);
    }
    t.expect(0x02, "serial number")?;
    t.expect(0x30, "signature algorithm")?;
    let issuer = t.expect(0x30, "issuer")?;
    let validity = t.expect(0x30, "validity")?;
    let subject = t.expect(0x30, "subject")?;
    let (_, spki_contents, spki_whole) = t.read()?;
    let mut s = Der::new(spki_contents);
    let spki_algorithm = s.expect(0x30, "public key algorithm")?.to_vec();
    let bits = s.expect(0x03, "public key is not a BIT STRING")?;
    let public_key = bits.get(1..).ok_or(DerError("empty public key"))?.to_vec();
    let mut v = Der::new(validity);
    let not_before = time(&mut v)?;
    let not_after = time(&mut v)?;
    let mut info = CertInfo {
        version,
        not_before,
        not_after,
        subject_cn: common_name(subject),
        issuer_cn: common_name(issuer),
        san_dns: Vec::new(),
        san_ip: Vec::new(),
        spki: spki_whole.to_vec(),
        spki_algorithm,
        public_key,
    };
    // issuerUniqueID [1], subjectUniqueID [2], extensions [3].
    while !t.is_empty() {
        let (tag, contents, _) = t.read()?;
        if tag == 0xA3 {
            read_extensions(contents, &mut info)?;
        }
    }
    Ok(info)
}

fn read_extensions(contents: &[u8], info: &mut CertInfo) -> Result<(), DerError> {
    let list = Der::new(contents).expect(0x30, "extensions")?;
    let mut list = Der::new(list);
    while !list.is_empty() {
        let ext = list.expect(0x30, "extension")?;
        let mut e = Der::new(ext);
        let oid = e.expect(0x06, "extension id")?;
        if e.peek_tag() == Some(0x01) {
            e.read()?; // critical
        }
        let value = e.expect(0x04, "extension value")?;
        if oid != OID_SAN {
            continue;
        }
        let names = Der::new(value).expect(0x30, "subjectAltName")?;
        let mut names = Der::new(names);
        while !names.is_empty() {
            let (tag, v, _) = names.read()?;
            match tag {
                0x82 => {
                    if let Ok(s) = std::str::from_utf8(v) {
                        info.san_dns.push(s.to_owned());
                    }
                }
                0x87 => match v.len() {
                    4 => {
                        let a: [u8; 4] = v.try_into().map_err(|_| DerError("IP address"))?;
                        info.san_ip.push(IpAddr::from(a));
                    }
                    16 => {
                        let a: [u8; 16] = v.try_into().map_err(|_| DerError("IP address"))?;
                        info.san_ip.push(IpAddr::from(a));
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }
    Ok(())
}

/// The last CN in a Name (the most specific), as text.
fn common_name(name: &[u8]) -> Option<String> {
    let mut rdns = Der::new(name);
    let mut cn = None;
    while !rdns.is_empty() {
        let set = rdns.expect(0x31, "RDN").ok()?;
        let mut set = Der::new(set);
        while !set.is_empty() {
            let atv = set.expect(0x30, "attribute").ok()?;
            let mut a = Der::new(atv);
            let oid = a.expect(0x06, "attribute type").ok()?;
            let (_, value, _) = a.read().ok()?;
            if oid == OID_CN {
                cn = Some(String::from_utf8_lossy(value).into_owned());
            }
        }
    }
    cn
}

fn digits(b: &[u8]) -> Result<i64, DerError> {
    b.iter().try_fold(0i64, |acc, &c| {
        if c.is_ascii_digit() {
            Ok(acc * 10 + i64::from(c - b'0'))
        } else {
            Err(DerError("bad digit in time"))
        }
    })
}

fn time(d: &mut Der<'_>) -> Result<i64, DerError> {
    let (tag, v, _) = d.read()?;
    let (year, rest) = match tag {
        // UTCTime YYMMDDHHMMSSZ
        0x17 if v.len() >= 12 => {
            let yy = digits(&v[..2])?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &v[2..])
        }
        // GeneralizedTime YYYYMMDDHHMMSSZ
        0x18 if v.len() >= 14 => (digits(&v[..4])?, &v[4..]),
        _ => return Err(DerError("validity time")),
    };
    let month = digits(&rest[0..2])?;
    let day = digits(&rest[2..4])?;
    let hour = digits(&rest[4..6])?;
    let min = digits(&rest[6..8])?;
    let sec = digits(&rest[8..10])?;
    Ok(days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec)
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DD HH:MM:SS UTC` for Unix seconds.
pub fn format_time(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Inverse of days_from_civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// libmosquitto's host name rule (lib/tls_mosq.c): match SAN DNS entries (with a leading
/// `*.` wildcard for one label) and SAN IP entries; only when the certificate has no SAN DNS
/// entry, fall back to the subject CN.
pub fn matches_host(info: &CertInfo, host: &str) -> bool {
    if let Ok(ip) = host.parse::<IpAddr>() {
        if info.san_ip.contains(&ip) {
            return true;
        }
        // libmosquitto also compares the CN text when there is no SAN DNS entry.
        return info.san_dns.is_empty() && info.subject_cn.as_deref() == Some(host);
    }
    if info.san_dns.is_empty() {
        return info
            .subject_cn
            .as_deref()
            .is_some_and(|cn| name_matches(cn, host));
    }
    info.san_dns.iter().any(|n| name_matches(n, host))
}

fn name_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.trim_end_matches('.');
    let host = host.trim_end_matches('.');
    if pattern.eq_ignore_ascii_case(host) {
        return true;
    }
    if let Some(suffix) = pattern.strip_prefix("*.")
        && let Some((first, rest)) = host.split_once('.')
    {
        return !first.is_empty() && rest.eq_ignore_ascii_case(suffix);
    }
    false
}

/// The names a certificate is valid for, for error messages.
pub fn names(info: &CertInfo) -> Vec<String> {
    let mut v: Vec<String> = info.san_dns.clone();
    v.extend(info.san_ip.iter().map(ToString::to_string));
    if info.san_dns.is_empty()
        && let Some(cn) = &info.subject_cn
        && !v.contains(cn)
    {
        v.push(cn.clone());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(format_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_time(4_102_444_799), "2099-12-31 23:59:59 UTC");
    }

    #[test]
    fn hostile_input_does_not_panic() {
        for der in [
            &[][..],
            &[0x30],
            &[0x30, 0x84, 0xFF, 0xFF, 0xFF, 0xFF],
            &[0x30, 0x02, 0x30, 0x00],
            &[0x30, 0x03, 0x30, 0x01, 0xA0],
        ] {
            assert!(parse(der).is_err());
        }
    }

    fn info(cn: Option<&str>, dns: &[&str], ip: &[&str]) -> CertInfo {
        CertInfo {
            version: 3,
            not_before: 0,
            not_after: 0,
            subject_cn: cn.map(String::from),
            issuer_cn: None,
            san_dns: dns.iter().map(|s| s.to_string()).collect(),
            san_ip: ip.iter().map(|s| s.parse().unwrap()).collect(),
            spki: vec![],
            spki_algorithm: vec![],
            public_key: vec![],
        }
    }

    #[test]
    fn host_rules_like_libmosquitto() {
        let c = info(Some("cn.example"), &[], &[]);
        assert!(matches_host(&c, "cn.example"), "CN fallback without SAN");
        assert!(!matches_host(&c, "other.example"));
        let c = info(
            Some("cn.example"),
            &["broker.local", "*.iot.example"],
            &["10.0.0.5"],
        );
        assert!(
            !matches_host(&c, "cn.example"),
            "no CN fallback when SAN DNS exists"
        );
        assert!(matches_host(&c, "BROKER.local"));
        assert!(matches_host(&c, "a.iot.example"));
        assert!(!matches_host(&c, "a.b.iot.example"));
        assert!(matches_host(&c, "10.0.0.5"));
        assert!(!matches_host(&c, "10.0.0.6"));
        assert_eq!(names(&c), ["broker.local", "*.iot.example", "10.0.0.5"]);
    }
}
