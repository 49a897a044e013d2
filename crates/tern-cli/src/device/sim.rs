//! The simulated board behind `tern device run`: a relay and an LED driven by command
//! payloads, the topic names a device uses, the JSON it reports, the serial-console text of
//! the tutorial's sketch, and wandering telemetry values.
//!
//! Pure logic: no sockets, clocks or random number generator. Time (uptime) and randomness
//! are arguments, so every behaviour is unit-tested without a network. Per-device memory is
//! a few bytes ([`Device`] is `Copy`); the client id lives with the caller.

use std::fmt;

/// The sketch's client id prefix (`String clientId = "ESP8266Client-"`).
pub const DEFAULT_ID_PREFIX: &str = "ESP8266Client-";
/// The sketch's command topic (`mqttClient.subscribe("test001")`).
pub const DEFAULT_COMMAND_TOPIC: &str = "test001";
/// Retained on `devices/<id>/status` after connecting.
pub const ONLINE: &str = "online";
/// The will on `devices/<id>/status` (retained), and what a clean stop publishes.
pub const OFFLINE: &str = "offline";

/// The RSSI the simulated radio wanders around, in dBm.
pub const RSSI_CENTER: i16 = -60;
const RSSI_MIN: i16 = -90;
const RSSI_MAX: i16 = -30;
/// Free heap of an ESP8266 running WiFi + TLS + PubSubClient, roughly.
pub const HEAP_CENTER: u32 = 40_960;
const HEAP_MIN: u32 = 30_000;
const HEAP_MAX: u32 = 45_000;

/// The sketch's random suffix: `String(random(0xffff), HEX)`, a number below 0xffff in
/// lower-case hexadecimal without leading zeros (Arduino's `String(n, HEX)`).
pub fn random_suffix(random: u16) -> String {
    format!("{:x}", random % 0xffff)
}

/// `devices/<id>/state`: retained JSON of the relay and LED.
pub fn state_topic(id: &str) -> String {
    format!("devices/{id}/state")
}

/// `devices/<id>/status`: retained `online`, will `offline`.
pub fn status_topic(id: &str) -> String {
    format!("devices/{id}/status")
}

/// `devices/<id>/telemetry`: periodic JSON (not retained).
pub fn telemetry_topic(id: &str) -> String {
    format!("devices/{id}/telemetry")
}

/// The three lines the sketch's `subCallback` prints for a message, byte for byte: the
/// payload is written as raw bytes, like `Serial.print((char)payload[i])`.
pub fn message_block(topic: &str, payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b"Message arrived in topic: ");
    out.extend_from_slice(topic.as_bytes());
    out.extend_from_slice(b"\nMessage:");
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\n-----------------------\n");
}

/// A command a payload asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// `ON`: relay and LED on.
    On,
    /// `OFF`: relay and LED off.
    Off,
    /// `TOGGLE`: flip the relay; the LED follows it.
    Toggle,
    /// JSON `{"relay":true}` (the LED follows the relay) and/or `{"led":false}` (the LED
    /// alone).
    Set {
        relay: Option<bool>,
        led: Option<bool>,
    },
}

/// Why a payload is not a command. The device reports it and changes nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandError {
    Empty,
    NotUtf8,
    /// Not ON, OFF, TOGGLE or a JSON object; holds a short preview of the payload.
    Unknown(String),
    /// A JSON object, but not one this device understands.
    BadJson(String),
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const USE: &str = r#"use ON, OFF, TOGGLE, {"relay":true|false} or {"led":true|false}"#;
        match self {
            Self::Empty => write!(f, "empty payload: {USE}"),
            Self::NotUtf8 => write!(f, "the payload is not UTF-8 text: {USE}"),
            Self::Unknown(p) => write!(f, "unknown command '{p}': {USE}"),
            Self::BadJson(why) => write!(f, "unsupported JSON command ({why}): {USE}"),
        }
    }
}

/// At most this many characters of an unknown payload are quoted back.
const PREVIEW_CHARS: usize = 40;

fn preview(s: &str) -> String {
    let mut p: String = s
        .chars()
        .take(PREVIEW_CHARS)
        .map(|c| if c.is_control() { '.' } else { c })
        .collect();
    if s.chars().count() > PREVIEW_CHARS {
        p.push_str("...");
    }
    p
}

/// Parses a payload: `ON`, `OFF`, `TOGGLE` (any case, surrounding white space ignored) or
/// a flat JSON object whose only keys are `relay` and `led` with boolean values.
pub fn parse_command(payload: &[u8]) -> Result<Command, CommandError> {
    let text = std::str::from_utf8(payload).map_err(|_| CommandError::NotUtf8)?;
    let t = text.trim();
    if t.is_empty() {
        return Err(CommandError::Empty);
    }
    if t.eq_ignore_ascii_case("ON") {
        return Ok(Command::On);
    }
    if t.eq_ignore_ascii_case("OFF") {
        return Ok(Command::Off);
    }
    if t.eq_ignore_ascii_case("TOGGLE") {
        return Ok(Command::Toggle);
    }
    if t.starts_with('{') {
        let fields = parse_bool_object(t).map_err(|e| CommandError::BadJson(e.to_owned()))?;
        let (mut relay, mut led) = (None, None);
        for (key, value) in fields {
            match key.as_str() {
                "relay" => relay = Some(value),
                "led" => led = Some(value),
                other => {
                    return Err(CommandError::BadJson(format!(
                        "unknown key \"{}\"",
                        preview(other)
                    )));
                }
            }
        }
        if relay.is_none() && led.is_none() {
            return Err(CommandError::BadJson("no \"relay\" or \"led\" key".into()));
        }
        return Ok(Command::Set { relay, led });
    }
    Err(CommandError::Unknown(preview(t)))
}

/// A flat JSON object of boolean values: `{"a":true, "b":false}`. Strings may hold the
/// usual escapes except `\u`; anything nested, numeric or null is refused. At most 8 keys.
fn parse_bool_object(s: &str) -> Result<Vec<(String, bool)>, &'static str> {
    let b = s.as_bytes();
    let mut i = 0;
    let ws = |i: &mut usize| {
        while *i < b.len() && matches!(b[*i], b' ' | b'\t' | b'\n' | b'\r') {
            *i += 1;
        }
    };
    let mut out = Vec::new();
    if b.first() != Some(&b'{') {
        return Err("not an object");
    }
    i += 1;
    ws(&mut i);
    if b.get(i) == Some(&b'}') {
        i += 1;
        ws(&mut i);
        return if i == b.len() {
            Ok(out)
        } else {
            Err("text after the object")
        };
    }
    loop {
        ws(&mut i);
        if b.get(i) != Some(&b'"') {
            return Err("expected a quoted key");
        }
        i += 1;
        let mut key = String::new();
        loop {
            match b.get(i) {
                None => return Err("unterminated string"),
                Some(b'"') => {
                    i += 1;
                    break;
                }
                Some(b'\\') => {
                    let c = match b.get(i + 1) {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'n') => '\n',
                        Some(b't') => '\t',
                        _ => return Err("unsupported escape in a key"),
                    };
                    key.push(c);
                    i += 2;
                }
                Some(_) => {
                    // Copy one UTF-8 character (the input is valid UTF-8).
                    let rest = &s[i..];
                    let Some(c) = rest.chars().next() else {
                        return Err("unterminated string");
                    };
                    key.push(c);
                    i += c.len_utf8();
                }
            }
        }
        ws(&mut i);
        if b.get(i) != Some(&b':') {
            return Err("expected ':' after a key");
        }
        i += 1;
        ws(&mut i);
        let value = if s[i..].starts_with("true") {
            i += 4;
            true
        } else if s[i..].starts_with("false") {
            i += 5;
            false
        } else {
            return Err("values must be true or false");
        };
        if out.len() == 8 {
            return Err("too many keys");
        }
        out.push((key, value));
        ws(&mut i);
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => {
                i += 1;
                ws(&mut i);
                return if i == b.len() {
                    Ok(out)
                } else {
                    Err("text after the object")
                };
            }
            _ => return Err("expected ',' or '}'"),
        }
    }
}

/// The relay and LED outputs. The LED shows the relay's state unless set on its own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outputs {
    pub relay: bool,
    pub led: bool,
}

impl Outputs {
    /// `{"relay":true,"led":false}`: what is retained on the state topic.
    pub fn to_json(self) -> String {
        format!(r#"{{"relay":{},"led":{}}}"#, self.relay, self.led)
    }

    /// `Relay ON, LED ON`: the line printed after a command.
    pub fn describe(self) -> String {
        let on = |b: bool| if b { "ON" } else { "OFF" };
        format!("Relay {}, LED {}", on(self.relay), on(self.led))
    }
}

/// One simulated board: its outputs and the state of its wandering telemetry values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Device {
    outputs: Outputs,
    rssi: i16,
    heap: u32,
}

impl Default for Device {
    fn default() -> Self {
        Self::new()
    }
}

/// One telemetry sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Telemetry {
    pub uptime_secs: u64,
    pub rssi_dbm: i16,
    pub free_heap: u32,
}

impl Telemetry {
    /// `{"uptime":12,"rssi":-61,"free_heap":40912}`.
    pub fn to_json(self) -> String {
        format!(
            r#"{{"uptime":{},"rssi":{},"free_heap":{}}}"#,
            self.uptime_secs, self.rssi_dbm, self.free_heap
        )
    }
}

impl Device {
    /// A board after power-on: relay and LED off (GPIO low).
    pub const fn new() -> Self {
        Self {
            outputs: Outputs {
                relay: false,
                led: false,
            },
            rssi: RSSI_CENTER,
            heap: HEAP_CENTER,
        }
    }

    pub fn outputs(&self) -> Outputs {
        self.outputs
    }

    /// Applies a command; returns the outputs after it.
    pub fn apply(&mut self, cmd: Command) -> Outputs {
        let o = &mut self.outputs;
        match cmd {
            Command::On => {
                o.relay = true;
                o.led = true;
            }
            Command::Off => {
                o.relay = false;
                o.led = false;
            }
            Command::Toggle => {
                o.relay = !o.relay;
                o.led = o.relay;
            }
            Command::Set { relay, led } => {
                if let Some(r) = relay {
                    o.relay = r;
                    o.led = r;
                }
                if let Some(l) = led {
                    o.led = l;
                }
            }
        }
        *o
    }

    /// The next telemetry sample. `random` is any random 32-bit number: the RSSI takes a
    /// step of -2..=+2 dBm, pulled back towards [`RSSI_CENTER`] when more than 4 dBm away;
    /// the free heap takes a step of -256..=+256 bytes (multiples of 8), pulled back
    /// towards [`HEAP_CENTER`] when more than 2 KiB away. Both stay within fixed bounds.
    pub fn telemetry(&mut self, uptime_secs: u64, random: u32) -> Telemetry {
        let step = i16::try_from(random % 5).unwrap_or(0) - 2;
        let off = self.rssi - RSSI_CENTER;
        let pull = if off > 4 {
            -1
        } else if off < -4 {
            1
        } else {
            0
        };
        self.rssi = (self.rssi + step + pull).clamp(RSSI_MIN, RSSI_MAX);

        let hstep = i64::from((random >> 8) % 65) * 8 - 256;
        let hoff = i64::from(self.heap) - i64::from(HEAP_CENTER);
        let hpull = if hoff > 2048 {
            -64
        } else if hoff < -2048 {
            64
        } else {
            0
        };
        let heap =
            (i64::from(self.heap) + hstep + hpull).clamp(i64::from(HEAP_MIN), i64::from(HEAP_MAX));
        self.heap = u32::try_from(heap).unwrap_or(HEAP_CENTER);
        Telemetry {
            uptime_secs,
            rssi_dbm: self.rssi,
            free_heap: self.heap,
        }
    }
}

/// PubSubClient's `state()` code for a failed connection attempt, printed as the sketch
/// does (`Failed, rc=-2`): the CONNACK return code (1..5) when the broker refused,
/// -4 (MQTT_CONNECTION_TIMEOUT) for a time-out, -2 (MQTT_CONNECT_FAILED) otherwise.
pub fn pubsubclient_rc(refusal_v3: Option<u8>, timed_out: bool) -> i32 {
    match refusal_v3 {
        Some(code) => i32::from(code),
        None if timed_out => -4,
        None => -2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_topics() {
        assert_eq!(random_suffix(0x3fa2), "3fa2");
        assert_eq!(random_suffix(0x000f), "f");
        // random(0xffff) never yields 0xffff.
        assert_eq!(random_suffix(0xffff), "0");
        assert_eq!(state_topic("d1"), "devices/d1/state");
        assert_eq!(status_topic("d1"), "devices/d1/status");
        assert_eq!(telemetry_topic("d1"), "devices/d1/telemetry");
    }

    #[test]
    fn message_block_is_the_sketch_callback_output() {
        let mut out = Vec::new();
        message_block("test001", b"Hello MQTT", &mut out);
        assert_eq!(
            out,
            b"Message arrived in topic: test001\nMessage:Hello MQTT\n-----------------------\n"
        );
        out.clear();
        message_block("t", &[0xff, b'x'], &mut out);
        assert_eq!(&out[..30], b"Message arrived in topic: t\nMe");
        assert!(out.windows(2).any(|w| w == [0xff, b'x']));
    }

    #[test]
    fn plain_commands() {
        assert_eq!(parse_command(b"ON"), Ok(Command::On));
        assert_eq!(parse_command(b"off"), Ok(Command::Off));
        assert_eq!(parse_command(b" Toggle\n"), Ok(Command::Toggle));
        assert_eq!(parse_command(b""), Err(CommandError::Empty));
        assert_eq!(parse_command(b"  "), Err(CommandError::Empty));
        assert_eq!(parse_command(&[0xc3, 0x28]), Err(CommandError::NotUtf8));
        assert_eq!(
            parse_command(b"blink"),
            Err(CommandError::Unknown("blink".into()))
        );
        assert_eq!(
            parse_command(b"ONN"),
            Err(CommandError::Unknown("ONN".into()))
        );
        let long = "x".repeat(100);
        let Err(CommandError::Unknown(p)) = parse_command(long.as_bytes()) else {
            panic!("long text is not a command");
        };
        assert_eq!(p.len(), PREVIEW_CHARS + 3);
        assert_eq!(
            parse_command(b"a\x07b"),
            Err(CommandError::Unknown("a.b".into()))
        );
    }

    #[test]
    fn json_commands() {
        let set = |relay, led| Ok(Command::Set { relay, led });
        assert_eq!(parse_command(br#"{"relay":true}"#), set(Some(true), None));
        assert_eq!(
            parse_command(br#" { "relay" : false } "#),
            set(Some(false), None)
        );
        assert_eq!(parse_command(br#"{"led":true}"#), set(None, Some(true)));
        assert_eq!(
            parse_command(b"{\"relay\":true,\n\"led\":false}"),
            set(Some(true), Some(false))
        );
        assert_eq!(parse_command(br#"{"re\/lay":true}"#).ok(), None);
        for bad in [
            r#"{}"#,
            r#"{"relay":1}"#,
            r#"{"relay":"ON"}"#,
            r#"{"relay":null}"#,
            r#"{"relay":true"#,
            r#"{"relay":true}x"#,
            r#"{"relay":true,}"#,
            r#"{"fan":true}"#,
            r#"{"relay":{"a":true}}"#,
            r#"{relay:true}"#,
            r#"{"rel"#,
            r#"{"\u0041":true}"#,
            r#"{"a":true,"b":true,"c":true,"d":true,"e":true,"f":true,"g":true,"h":true,"i":true}"#,
        ] {
            assert!(
                matches!(parse_command(bad.as_bytes()), Err(CommandError::BadJson(_))),
                "{bad}"
            );
        }
        let e = parse_command(br#"{"fan":true}"#).unwrap_err().to_string();
        assert!(
            e.contains("unknown key \"fan\"") && e.contains("TOGGLE"),
            "{e}"
        );
    }

    #[test]
    fn relay_and_led() {
        let mut d = Device::new();
        assert_eq!(d.outputs(), Outputs::default());
        assert_eq!(
            d.apply(Command::On).to_json(),
            r#"{"relay":true,"led":true}"#
        );
        assert_eq!(
            d.apply(Command::Toggle).to_json(),
            r#"{"relay":false,"led":false}"#
        );
        assert_eq!(d.apply(Command::Toggle).describe(), "Relay ON, LED ON");
        let o = d.apply(Command::Set {
            relay: Some(false),
            led: None,
        });
        assert_eq!((o.relay, o.led), (false, false));
        let o = d.apply(Command::Set {
            relay: None,
            led: Some(true),
        });
        assert_eq!(o.describe(), "Relay OFF, LED ON");
        // The relay sets the LED, then an explicit LED value wins.
        let o = d.apply(Command::Set {
            relay: Some(true),
            led: Some(false),
        });
        assert_eq!(o.to_json(), r#"{"relay":true,"led":false}"#);
        assert_eq!(d.apply(Command::Off), Outputs::default());
    }

    #[test]
    fn telemetry_wanders_within_bounds() {
        let mut d = Device::new();
        // A simple LCG stands in for the random source.
        let mut r: u32 = 12345;
        let mut seen_rssi = std::collections::BTreeSet::new();
        for t in 0..10_000u64 {
            r = r.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let s = d.telemetry(t, r);
            assert_eq!(s.uptime_secs, t);
            assert!((RSSI_MIN..=RSSI_MAX).contains(&s.rssi_dbm));
            assert!((HEAP_MIN..=HEAP_MAX).contains(&s.free_heap));
            assert_eq!(s.free_heap % 8, 0);
            seen_rssi.insert(s.rssi_dbm);
        }
        // It moves, and stays near the centre.
        assert!(seen_rssi.len() > 5);
        assert!(seen_rssi.iter().all(|v| (-75..=-45).contains(v)));
        // Always the lowest and always the highest step.
        let mut d = Device::new();
        assert_eq!(d.telemetry(0, 0).rssi_dbm, -62);
        assert_eq!(d.telemetry(0, 0).rssi_dbm, -64);
        assert_eq!(d.telemetry(0, 0).rssi_dbm, -66);
        assert_eq!(d.telemetry(0, 0).rssi_dbm, -67, "pulled back past 4 dBm");
        // A stuck random source cannot push the values out of bounds.
        let mut d = Device::new();
        for _ in 0..1000 {
            d.telemetry(0, 4);
        }
        let s = d.telemetry(0, 4);
        assert_eq!((s.rssi_dbm, s.free_heap), (RSSI_MAX, HEAP_MIN));
        assert_eq!(
            Telemetry {
                uptime_secs: 12,
                rssi_dbm: -61,
                free_heap: 40912
            }
            .to_json(),
            r#"{"uptime":12,"rssi":-61,"free_heap":40912}"#
        );
    }

    #[test]
    fn rc_codes_like_pubsubclient() {
        assert_eq!(pubsubclient_rc(Some(5), false), 5);
        assert_eq!(pubsubclient_rc(None, true), -4);
        assert_eq!(pubsubclient_rc(None, false), -2);
    }
}
