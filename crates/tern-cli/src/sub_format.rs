//! How `tern sub` prints a message: plain, `-v`, `-F` and `%j`/`%J`, byte for byte like
//! mosquitto_sub 2.0 (client/sub_client_output.c): `%` codes with optional `-`, `0`,
//! field width and precision, `@` strftime codes (`@N` nanoseconds, `@@`), and `\` escapes.
//! Output goes into a byte buffer; the caller writes it to stdout.

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, Local};
use tern_client::{Message, QoS};

/// What to print.
#[derive(Debug, Clone, Default)]
pub struct OutputConfig {
    pub verbose: bool,
    /// Print a newline after each message (`-N` turns it off).
    pub eol: bool,
    pub format: Option<String>,
    pub pretty: bool,
}

/// The time a message is printed, read once per message (as mosquitto does).
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub local: DateTime<Local>,
}

impl Now {
    pub fn read() -> Self {
        Self {
            local: Local::now(),
        }
    }

    fn nanos(&self) -> u32 {
        self.local.timestamp_subsec_nanos()
    }

    fn strftime(&self, fmt: &str) -> Option<String> {
        let items: Vec<Item<'_>> = StrftimeItems::new(fmt).collect();
        if items.iter().any(|i| matches!(i, Item::Error)) {
            return None;
        }
        Some(self.local.format_with_items(items.into_iter()).to_string())
    }
}

/// Appends the output for one message to `out`.
pub fn print_message(cfg: &OutputConfig, m: &Message, now: &Now, out: &mut Vec<u8>) {
    if let Some(f) = &cfg.format {
        formatted(cfg, f.as_bytes(), m, now, out);
        if cfg.eol {
            out.push(b'\n');
        }
    } else if cfg.verbose {
        if !m.payload.is_empty() {
            out.extend_from_slice(m.topic.as_bytes());
            out.push(b' ');
            out.extend_from_slice(&m.payload);
            if cfg.eol {
                out.push(b'\n');
            }
        } else if cfg.eol {
            out.extend_from_slice(m.topic.as_bytes());
            out.extend_from_slice(b" (null)\n");
        }
    } else if !m.payload.is_empty() {
        out.extend_from_slice(&m.payload);
        if cfg.eol {
            out.push(b'\n');
        }
    }
}

#[derive(Clone, Copy)]
struct Spec {
    left: bool,
    zero: bool,
    width: usize,
    precision: Option<usize>,
}

fn pad(out: &mut Vec<u8>, c: u8, n: usize) {
    out.extend(std::iter::repeat_n(c, n));
}

/// `%d` with `-`, `0` and width, as printf does.
fn int(out: &mut Vec<u8>, v: i64, s: Spec) {
    let text = v.to_string();
    let t = text.as_bytes();
    if s.width <= t.len() {
        out.extend_from_slice(t);
    } else if s.left {
        out.extend_from_slice(t);
        pad(out, b' ', s.width - t.len());
    } else if s.zero {
        let (sign, digits) = if v < 0 {
            (&t[..1], &t[1..])
        } else {
            (&t[..0], t)
        };
        out.extend_from_slice(sign);
        pad(out, b'0', s.width - t.len());
        out.extend_from_slice(digits);
    } else {
        pad(out, b' ', s.width - t.len());
        out.extend_from_slice(t);
    }
}

/// `%s` with `-`, width and precision (precision counts bytes, as in C).
fn string(out: &mut Vec<u8>, v: &[u8], s: Spec) {
    let v = match s.precision {
        Some(p) if p < v.len() => &v[..p],
        _ => v,
    };
    let padn = s.width.saturating_sub(v.len());
    if !s.left {
        pad(out, b' ', padn);
    }
    out.extend_from_slice(v);
    if s.left {
        pad(out, b' ', padn);
    }
}

fn blank(out: &mut Vec<u8>, c: u8, width: usize) {
    pad(out, c, width);
}

/// write_payload(): hex 0 raw, 1 lower, 2 upper. The width truncates the payload and pads.
fn payload(out: &mut Vec<u8>, p: &[u8], hex: u8, s: Spec) {
    let mut len = p.len();
    let padn: i64;
    if s.width > 0 {
        if len > s.width {
            len = s.width;
        }
        if hex > 0 {
            len /= 2;
            padn = s.width as i64 - (len as i64) * 2;
        } else {
            padn = s.width as i64 - len as i64;
        }
    } else {
        padn = -(len as i64);
    }
    if !s.left {
        pad(out, if s.zero { b'0' } else { b' ' }, padn.max(0) as usize);
    }
    let p = &p[..len];
    match hex {
        0 => out.extend_from_slice(p),
        1 => p
            .iter()
            .for_each(|b| out.extend_from_slice(format!("{b:02x}").as_bytes())),
        _ => p
            .iter()
            .for_each(|b| out.extend_from_slice(format!("{b:02X}").as_bytes())),
    }
    if s.left {
        pad(out, b' ', padn.max(0) as usize);
    }
}

fn qos_digit(q: QoS) -> u8 {
    b'0' + q.as_u8()
}

fn percent(cfg: &OutputConfig, c: u8, m: &Message, now: &Now, s: Spec, out: &mut Vec<u8>) {
    let p = &m.properties;
    let padc = if s.zero { b'0' } else { b' ' };
    match c {
        b'%' => out.push(b'%'),
        b'A' => match p.topic_alias {
            Some(v) => int(out, i64::from(v), s),
            None => blank(out, padc, s.width),
        },
        b'C' => match &p.content_type {
            Some(v) => string(out, v.as_bytes(), s),
            None => blank(out, b' ', s.width),
        },
        b'D' => {
            if let Some(v) = &p.correlation_data {
                out.extend_from_slice(v);
            }
        }
        b'E' => match p.message_expiry_interval {
            Some(v) => int(out, i64::from(v as i32), s),
            None => blank(out, padc, s.width),
        },
        b'F' => match p.payload_format_indicator {
            Some(v) => int(out, i64::from(v), s),
            None => blank(out, padc, s.width),
        },
        b'I' => match now.strftime("%Y-%m-%dT%H:%M:%S%z") {
            Some(t) => string(out, t.as_bytes(), s),
            None => blank(out, b' ', s.width),
        },
        b'j' => json(cfg, m, now, true, out),
        b'J' => json(cfg, m, now, false, out),
        b'l' => int(out, m.payload.len() as i64, s),
        b'm' => int(out, i64::from(m.packet_id.map_or(0, |p| p.get())), s),
        b'P' => {
            for (i, (k, v)) in p.user_properties.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                out.extend_from_slice(k.as_bytes());
                out.push(b':');
                out.extend_from_slice(v.as_bytes());
            }
        }
        b'p' => payload(out, &m.payload, 0, s),
        b'q' => out.push(qos_digit(m.qos)),
        b'R' => {
            if let Some(v) = &p.response_topic {
                string(out, v.as_bytes(), s);
            }
        }
        b'r' => out.push(if m.retain { b'1' } else { b'0' }),
        b'S' => match p.subscription_identifiers.first() {
            Some(v) => int(out, i64::from(*v as i32), s),
            None => blank(out, padc, s.width),
        },
        b't' => string(out, m.topic.as_bytes(), s),
        b'U' => {
            out.extend_from_slice(
                format!("{}.{:09}", now.local.timestamp(), now.nanos()).as_bytes(),
            );
        }
        b'x' => payload(out, &m.payload, 1, s),
        b'X' => payload(out, &m.payload, 2, s),
        _ => {}
    }
}

fn formatted(cfg: &OutputConfig, f: &[u8], m: &Message, now: &Now, out: &mut Vec<u8>) {
    let len = f.len();
    let mut i = 0;
    while i < len {
        match f[i] {
            b'%' => {
                let mut s = Spec {
                    left: false,
                    zero: false,
                    width: 0,
                    precision: None,
                };
                if i + 1 < len {
                    i += 1;
                    if f[i] == b'-' {
                        s.left = true;
                        if i + 1 < len {
                            i += 1;
                        }
                    }
                    if f[i] == b'0' {
                        s.zero = true;
                        if i + 1 < len {
                            i += 1;
                        }
                    }
                    while i + 1 < len && f[i].is_ascii_digit() {
                        s.width = s.width * 10 + usize::from(f[i] - b'0');
                        i += 1;
                    }
                    if f[i] == b'.' && i + 1 < len {
                        i += 1;
                        let mut p = 0;
                        while i + 1 < len && f[i].is_ascii_digit() {
                            p = p * 10 + usize::from(f[i] - b'0');
                            i += 1;
                        }
                        s.precision = Some(p);
                    }
                    percent(cfg, f[i], m, now, s, out);
                }
            }
            b'@' => {
                if i + 1 < len {
                    i += 1;
                    let c = f[i];
                    if c == b'@' {
                        out.push(b'@');
                    } else if c == b'N' {
                        out.extend_from_slice(format!("{:09}", now.nanos()).as_bytes());
                    } else if let Some(t) = now.strftime(&format!("%{}", c as char)) {
                        out.extend_from_slice(t.as_bytes());
                    }
                }
            }
            b'\\' => {
                if i + 1 < len {
                    i += 1;
                    match f[i] {
                        b'\\' => out.push(b'\\'),
                        b'0' => out.push(0),
                        b'a' => out.push(0x07),
                        b'e' => out.push(0x1B),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'v' => out.push(0x0B),
                        _ => {}
                    }
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
}

/// A JSON string as cJSON prints it.
fn json_str(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0C => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            c if c < 0x20 => out.extend_from_slice(format!("\\u{c:04x}").as_bytes()),
            c => out.push(c),
        }
    }
    out.push(b'"');
}

/// JSON values in insertion order; printed the way cJSON does (unformatted or pretty).
/// Properties come in a fixed order (payload format, expiry, content type, response topic,
/// correlation data, subscription ids, topic alias, user properties); mosquitto_sub keeps
/// the order they had on the wire.
enum J {
    Num(i64),
    Str(Vec<u8>),
    Raw(Vec<u8>),
    Arr(Vec<J>),
    Obj(Vec<(Vec<u8>, J)>),
}

fn write_json(out: &mut Vec<u8>, v: &J, pretty: bool, depth: usize) {
    match v {
        J::Num(n) => out.extend_from_slice(n.to_string().as_bytes()),
        J::Str(s) => json_str(out, s),
        J::Raw(r) => out.extend_from_slice(r),
        J::Arr(items) => {
            // cJSON: "[a,b]", or "[a, b]" when formatted; items one level deeper.
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                write_json(out, v, pretty, depth + 1);
                if i + 1 < items.len() {
                    out.push(b',');
                    if pretty {
                        out.push(b' ');
                    }
                }
            }
            out.push(b']');
        }
        J::Obj(fields) => {
            out.push(b'{');
            if pretty {
                out.push(b'\n');
            }
            for (i, (k, v)) in fields.iter().enumerate() {
                if pretty {
                    pad(out, b'\t', depth + 1);
                }
                json_str(out, k);
                out.push(b':');
                if pretty {
                    out.push(b'\t');
                }
                write_json(out, v, pretty, depth + 1);
                if i + 1 < fields.len() {
                    out.push(b',');
                }
                if pretty {
                    out.push(b'\n');
                }
            }
            if pretty {
                pad(out, b'\t', depth);
            }
            out.push(b'}');
        }
    }
}

/// cJSON's nesting limit (CJSON_NESTING_LIMIT).
const JSON_NESTING_LIMIT: usize = 1000;

/// Parses a payload the way mosquitto_sub's `%J` does (cJSON 1.7 `cJSON_ParseWithOpts`
/// with a NUL-terminated copy, then a check that the whole payload was used): `None`
/// when mosquitto_sub would say the payload is not valid JSON. The value is printed again
/// by [`write_json`], as cJSON re-prints it.
fn parse_json_payload(p: &[u8]) -> Option<J> {
    // A NUL byte ends the C string early, so the parse cannot reach the payload's end.
    if p.contains(&0) {
        return None;
    }
    let mut r = JsonReader { s: p, i: 0 };
    if r.s.starts_with(b"\xEF\xBB\xBF") {
        r.i = 3;
    }
    r.ws();
    let v = r.value(0)?;
    r.ws();
    (r.i == r.s.len()).then_some(v)
}

struct JsonReader<'a> {
    s: &'a [u8],
    i: usize,
}

impl JsonReader<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    /// cJSON skips every byte up to and including space.
    fn ws(&mut self) {
        while self.peek().is_some_and(|c| c <= b' ') {
            self.i += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Option<J> {
        let rest = &self.s[self.i..];
        for lit in [&b"null"[..], b"false", b"true"] {
            if rest.starts_with(lit) {
                self.i += lit.len();
                return Some(J::Raw(lit.to_vec()));
            }
        }
        match self.peek()? {
            b'"' => self.string().map(J::Str),
            b'-' | b'0'..=b'9' => self.number(),
            b'[' => self.array(depth),
            b'{' => self.object(depth),
            _ => None,
        }
    }

    fn number(&mut self) -> Option<J> {
        // cJSON copies at most 63 bytes of [0-9+-eE.] and lets strtod take what it can.
        let run = self.s[self.i..]
            .iter()
            .take(63)
            .take_while(|c| matches!(c, b'0'..=b'9' | b'+' | b'-' | b'e' | b'E' | b'.'))
            .count();
        let text = std::str::from_utf8(&self.s[self.i..self.i + run]).ok()?;
        let (used, d) = (1..=run)
            .rev()
            .find_map(|n| text[..n].parse::<f64>().ok().map(|d| (n, d)))?;
        self.i += used;
        Some(J::Raw(cjson_number(d).into_bytes()))
    }

    fn string(&mut self) -> Option<Vec<u8>> {
        if self.peek()? != b'"' {
            return None;
        }
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let c = self.peek()?;
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let e = self.peek()?;
                    self.i += 1;
                    match e {
                        b'b' => out.push(0x08),
                        b'f' => out.push(0x0C),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'u' => {
                            let ch = self.utf16_escape()?;
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => return None,
                    }
                }
                c => out.push(c),
            }
        }
        // cJSON keeps C strings: a \u0000 ends the text.
        if let Some(end) = out.iter().position(|&b| b == 0) {
            out.truncate(end);
        }
        Some(out)
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = self.s.get(self.i..self.i + 4)?;
        let v = u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()?;
        if !h.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        self.i += 4;
        Some(v)
    }

    /// After `\u`: one code point, from a surrogate pair when needed.
    fn utf16_escape(&mut self) -> Option<char> {
        let first = self.hex4()?;
        match first {
            0xDC00..=0xDFFF => None,
            0xD800..=0xDBFF => {
                if self.s.get(self.i..self.i + 2)? != b"\\u" {
                    return None;
                }
                self.i += 2;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return None;
                }
                char::from_u32(0x10000 + (((first & 0x3FF) << 10) | (second & 0x3FF)))
            }
            c => char::from_u32(c),
        }
    }

    fn array(&mut self, depth: usize) -> Option<J> {
        if depth >= JSON_NESTING_LIMIT {
            return None;
        }
        self.i += 1;
        self.ws();
        let mut items = Vec::new();
        if self.peek()? == b']' {
            self.i += 1;
            return Some(J::Arr(items));
        }
        loop {
            self.ws();
            items.push(self.value(depth + 1)?);
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(J::Arr(items));
                }
                _ => return None,
            }
        }
    }

    fn object(&mut self, depth: usize) -> Option<J> {
        if depth >= JSON_NESTING_LIMIT {
            return None;
        }
        self.i += 1;
        self.ws();
        let mut fields = Vec::new();
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(J::Obj(fields));
        }
        loop {
            self.ws();
            let key = self.string()?;
            self.ws();
            if self.peek()? != b':' {
                return None;
            }
            self.i += 1;
            self.ws();
            let v = self.value(depth + 1)?;
            fields.push((key, v));
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(J::Obj(fields));
                }
                _ => return None,
            }
        }
    }
}

/// A number as cJSON 1.7.15 (Debian 12's, which mosquitto_sub 2.0.11 uses) prints it:
/// `%1.15g`, or `%1.17g` when 15 digits do not give the number back; `null` for what
/// overflowed to infinity.
fn cjson_number(d: f64) -> String {
    if !d.is_finite() {
        return "null".to_owned();
    }
    let short = c_format_g(d, 15);
    let back: f64 = short.parse().unwrap_or(f64::NAN);
    if (back - d).abs() <= back.abs().max(d.abs()) * f64::EPSILON {
        short
    } else {
        c_format_g(d, 17)
    }
}

/// C's `%1.{prec}g` for a finite number.
fn c_format_g(d: f64, prec: usize) -> String {
    let sci = format!("{:.*e}", prec - 1, d);
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let strip = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s.to_owned()
        }
    };
    let p = i64::try_from(prec).unwrap_or(17);
    if exp < -4 || exp >= p {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", strip(mant), exp.unsigned_abs())
    } else {
        let decimals = usize::try_from(p - 1 - exp).unwrap_or(0);
        strip(&format!("{d:.decimals$}"))
    }
}

fn json(cfg: &OutputConfig, m: &Message, now: &Now, escaped: bool, out: &mut Vec<u8>) {
    let tst = format!(
        "{}.{:06}Z{}",
        now.local.format("%Y-%m-%dT%H:%M:%S"),
        now.nanos() / 1000,
        now.local.format("%z")
    );
    let mut fields = vec![
        (b"tst".to_vec(), J::Str(tst.into_bytes())),
        (b"topic".to_vec(), J::Str(m.topic.clone().into_bytes())),
        (b"qos".to_vec(), J::Num(i64::from(m.qos.as_u8()))),
        (b"retain".to_vec(), J::Num(i64::from(m.retain))),
        (b"payloadlen".to_vec(), J::Num(m.payload.len() as i64)),
    ];
    if m.qos != QoS::AtMostOnce {
        fields.push((
            b"mid".to_vec(),
            J::Num(i64::from(m.packet_id.map_or(0, |p| p.get()))),
        ));
    }
    let p = &m.properties;
    if !p.is_empty() {
        let mut props = Vec::new();
        if let Some(v) = p.payload_format_indicator {
            props.push((b"payload-format-indicator".to_vec(), J::Num(i64::from(v))));
        }
        if let Some(v) = p.message_expiry_interval {
            props.push((b"message-expiry-interval".to_vec(), J::Num(i64::from(v))));
        }
        if let Some(v) = &p.content_type {
            props.push((b"content-type".to_vec(), J::Str(v.clone().into_bytes())));
        }
        if let Some(v) = &p.response_topic {
            props.push((b"response-topic".to_vec(), J::Str(v.clone().into_bytes())));
        }
        if let Some(v) = &p.correlation_data {
            props.push((b"correlation-data".to_vec(), J::Str(v.clone())));
        }
        for v in &p.subscription_identifiers {
            props.push((b"subscription-identifier".to_vec(), J::Num(i64::from(*v))));
        }
        if let Some(v) = p.topic_alias {
            props.push((b"topic-alias".to_vec(), J::Num(i64::from(v))));
        }
        if !p.user_properties.is_empty() {
            let users = p
                .user_properties
                .iter()
                .map(|(k, v)| (k.clone().into_bytes(), J::Str(v.clone().into_bytes())))
                .collect();
            props.push((b"user-properties".to_vec(), J::Obj(users)));
        }
        fields.push((b"properties".to_vec(), J::Obj(props)));
    }
    let payload = if escaped {
        // mosquitto 2.0.11 (cJSON_CreateString on the payload as a C string): null for an
        // empty payload, text up to the first NUL byte otherwise.
        if m.payload.is_empty() {
            J::Raw(b"null".to_vec())
        } else {
            let end = m
                .payload
                .iter()
                .position(|&b| b == 0)
                .unwrap_or(m.payload.len());
            J::Str(m.payload[..end].to_vec())
        }
    } else if m.payload.is_empty() {
        J::Raw(b"null".to_vec())
    } else {
        match parse_json_payload(&m.payload) {
            Some(v) => v,
            None => {
                eprintln!(
                    "Error: Message payload is not valid JSON on topic {}.",
                    m.topic
                );
                return;
            }
        }
    };
    fields.push((b"payload".to_vec(), payload));
    write_json(out, &J::Obj(fields), cfg.pretty, 0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_client::PacketId;

    fn msg() -> Message {
        let mut m = Message::new("a/b", "hello").with_qos(QoS::AtLeastOnce);
        m.packet_id = PacketId::new(3);
        m.properties.content_type = Some("text/plain".into());
        m.properties.user_properties = vec![("k".into(), "v".into()), ("x".into(), "y".into())];
        m
    }

    fn fmt(f: &str, m: &Message) -> Vec<u8> {
        let cfg = OutputConfig {
            format: Some(f.into()),
            ..Default::default()
        };
        let mut out = Vec::new();
        print_message(&cfg, m, &Now::read(), &mut out);
        out
    }

    #[test]
    fn percent_codes() {
        let m = msg();
        assert_eq!(
            fmt("%t %p %q %r %l %m %C %P %%", &m),
            b"a/b hello 1 0 5 3 text/plain k:v x:y %"
        );
        assert_eq!(
            fmt("%x|%X", &Message::new("t", vec![0xAB, 0x01])),
            b"ab01|AB01"
        );
        assert_eq!(fmt("[%10t][%-6t][%.1t]", &m), b"[       a/b][a/b   ][a]");
        assert_eq!(fmt("[%05l][%-5l][%5l]", &m), b"[00005][5    ][    5]");
        assert_eq!(fmt("[%3p]", &m), b"[hel]");
        assert_eq!(fmt("[%8p]", &m), b"[   hello]");
        assert_eq!(fmt("[%E][%3E]", &m), b"[][   ]");
        assert_eq!(fmt("a\\tb\\n\\\\@@", &m), b"a\tb\n\\@");
        assert_eq!(fmt("%", &m), b"");
    }

    #[test]
    fn plain_and_verbose() {
        let mut out = Vec::new();
        let now = Now::read();
        let v = OutputConfig {
            verbose: true,
            eol: true,
            ..Default::default()
        };
        print_message(&v, &Message::new("t", ""), &now, &mut out);
        print_message(&v, &Message::new("t", "x"), &now, &mut out);
        let plain = OutputConfig {
            eol: true,
            ..Default::default()
        };
        print_message(&plain, &Message::new("t", ""), &now, &mut out);
        print_message(&plain, &Message::new("t", "y"), &now, &mut out);
        assert_eq!(out, b"t (null)\nt x\ny\n");
    }

    #[test]
    fn json_output() {
        let m = Message::new("t", "hi\"");
        let out = fmt("%j", &m);
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("{\"tst\":\""), "{s}");
        assert!(
            s.ends_with(
                "\",\"topic\":\"t\",\"qos\":0,\"retain\":0,\"payloadlen\":3,\"payload\":\"hi\\\"\"}"
            ),
            "{s}"
        );
        let out = String::from_utf8(fmt("%J", &Message::new("t", "{ \"a\" : [1, 2] }"))).unwrap();
        assert!(out.ends_with("\"payload\":{\"a\":[1,2]}}"), "{out}");
        let out = String::from_utf8_lossy(&fmt("%j", &Message::new("t", vec![b'a', 1, 0, 2])))
            .into_owned();
        assert!(out.ends_with("\"payload\":\"a\\u0001\"}"), "{out}");
        let out = String::from_utf8(fmt("%j", &Message::new("t", ""))).unwrap();
        assert!(out.ends_with("\"payload\":null}"), "{out}");
    }

    #[test]
    fn json_payload_nesting_is_bounded_and_numbers_print_like_c() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n)).into_bytes();
        assert!(parse_json_payload(&deep(JSON_NESTING_LIMIT)).is_some());
        assert!(parse_json_payload(&deep(JSON_NESTING_LIMIT + 1)).is_none());
        assert!(parse_json_payload(&deep(100_000)).is_none());
        assert_eq!(c_format_g(1e15, 15), "1e+15");
        assert_eq!(c_format_g(1e-5, 15), "1e-05");
        assert_eq!(c_format_g(0.0001, 15), "0.0001");
        assert_eq!(c_format_g(-0.0, 15), "-0");
        assert_eq!(cjson_number(0.1), "0.1");
        // cJSON compares within DBL_EPSILON, so 15 digits are kept here.
        assert_eq!(cjson_number(1.0000000000000002), "1");
        assert_eq!(cjson_number(f64::INFINITY), "null");
    }
}
