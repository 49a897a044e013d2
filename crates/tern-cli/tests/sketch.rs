//! Black-box tests of `tern device sketch`: the real binary writes Arduino projects for
//! ESP8266 and ESP32 in every validation mode, with and without client certificates, and
//! each generated `.ino` is compiled by the host's `g++ -Wall -Wextra -Werror` against the
//! stub headers in `tests/arduino-stubs/`, which declare the real ESP8266 / arduino-esp32 /
//! PubSubClient 2.8 signatures. The text is also checked for what the tutorial got wrong
//! (one validation setter, NTP before TLS, no blocking retry loop...), and the files for a
//! fixed input are compared with `tests/snapshots/sketch/` (UPDATE_SNAPSHOTS=1 rewrites
//! them). A missing `g++` fails the tests with the command that installs it; nothing is
//! skipped.
// Helpers outside #[test] functions are test code too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const TERN: &str = env!("CARGO_BIN_EXE_tern");

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> String {
    manifest_dir()
        .join("tests/fixtures/sketch")
        .join(name)
        .display()
        .to_string()
}

fn stubs() -> PathBuf {
    manifest_dir().join("tests/arduino-stubs")
}

/// Fails (never skips) when g++ is missing.
fn require_gxx() {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join("g++").is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "g++ is required to compile the generated sketches against the Arduino stubs; \
         install it with: apt-get install g++ (scripts/test does)"
    );
}

fn tern(args: &[&str]) -> Output {
    Command::new(TERN)
        .args(["device", "sketch"])
        .args(args)
        .output()
        .expect("run tern")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A generated project in a temporary directory.
struct Project {
    _dir: tempfile::TempDir,
    path: PathBuf,
    name: String,
    stdout: String,
}

impl Project {
    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.path.join(file))
            .unwrap_or_else(|e| panic!("{}/{file}: {e}", self.path.display()))
    }

    fn ino(&self) -> String {
        self.read(&format!("{}.ino", self.name))
    }
}

/// Runs `tern device sketch ARGS --name NAME -o TMP` and expects success.
fn generate(name: &str, args: &[&str]) -> Project {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().display().to_string();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--name", name, "-o", &out_dir]);
    let out = tern(&all);
    assert!(
        out.status.success(),
        "tern device sketch {all:?} failed:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    Project {
        path: dir.path().join(name),
        _dir: dir,
        name: name.to_owned(),
        stdout: text(&out.stdout),
    }
}

/// Runs `tern device sketch ARGS` expecting failure; returns stderr.
fn refuse(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().display().to_string();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["-o", &out_dir]);
    let out = tern(&all);
    assert!(
        !out.status.success(),
        "tern device sketch {all:?} should have failed:\n{}",
        text(&out.stdout)
    );
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing may be written when refusing"
    );
    text(&out.stderr)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Board {
    Esp8266,
    Esp32,
}

impl Board {
    fn arg(self) -> &'static str {
        match self {
            Self::Esp8266 => "esp8266",
            Self::Esp32 => "esp32",
        }
    }
}

/// Compiles `NAME.ino` of a project with g++ against the board's stubs.
fn compile(p: &Project, board: Board) -> Result<(), String> {
    compile_file(&p.path.join(format!("{}.ino", p.name)), board)
}

fn compile_file(ino: &Path, board: Board) -> Result<(), String> {
    require_gxx();
    let define = match board {
        Board::Esp8266 => "-DESP8266",
        Board::Esp32 => "-DESP32",
    };
    let out = Command::new("g++")
        .args([
            "-std=gnu++17",
            "-fsyntax-only",
            "-Wall",
            "-Wextra",
            "-Werror",
            define,
            "-DARDUINO=10819",
        ])
        .arg("-I")
        .arg(stubs().join(board.arg()))
        .arg("-I")
        .arg(stubs().join("common"))
        .args(["-x", "c++"])
        .arg(ino)
        .output()
        .expect("run g++ (apt-get install g++)");
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "g++ rejected {}:\n{}",
            ino.display(),
            text(&out.stderr)
        ))
    }
}

/// C++ source without comments (string literals, including raw strings, are kept), so
/// that the checks below look at code only.
fn strip_comments(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            let end = src[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
            out.push(' ');
            i = end;
        } else if b[i] == b'R' && b.get(i + 1) == Some(&b'"') {
            let open = src[i + 2..].find('(').map_or(b.len(), |o| i + 2 + o);
            let delim = format!("){}\"", &src[i + 2..open]);
            let end = src[open..]
                .find(&delim)
                .map_or(b.len(), |e| open + e + delim.len());
            out.push_str(&src[i..end]);
            i = end;
        } else if b[i] == b'"' || b[i] == b'\'' {
            let quote = b[i];
            let start = i;
            i += 1;
            while i < b.len() && b[i] != quote {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i = (i + 1).min(b.len());
            out.push_str(&src[start..i]);
        } else {
            let ch = src[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pin {
    Ca,
    Fingerprint,
    Spki,
}

impl Pin {
    fn arg(self) -> &'static str {
        match self {
            Self::Ca => "ca",
            Self::Fingerprint => "fingerprint",
            Self::Spki => "spki",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientCert {
    None,
    Rsa,
    Ec,
}

fn find(code: &str, what: &str) -> Result<usize, String> {
    code.find(what)
        .ok_or_else(|| format!("`{what}` is missing"))
}

fn before(code: &str, first: &str, second: &str) -> Result<(), String> {
    let a = find(code, first)?;
    let b = find(code, second)?;
    if a < b {
        Ok(())
    } else {
        Err(format!("`{first}` must come before `{second}`"))
    }
}

/// The properties the tutorial's sketch lacked, checked on the generated text.
fn check_semantics(
    ino: &str,
    board: Board,
    pin: Pin,
    client: ClientCert,
    buffer_size: u16,
) -> Result<(), String> {
    for banned in ["setInsecure", "allowSelfSignedCerts"] {
        if ino.contains(banned) {
            return Err(format!("`{banned}` appears in the sketch"));
        }
    }
    let code = strip_comments(ino);
    // Exactly one validation setter, the one asked for.
    let setters = [
        ".setTrustAnchors(",
        ".setFingerprint(",
        ".setKnownKey(",
        ".setCACert(",
    ];
    let used: Vec<&str> = setters
        .iter()
        .copied()
        .filter(|s| code.contains(s))
        .collect();
    let count: usize = setters.iter().map(|s| code.matches(s).count()).sum();
    let want = match (board, pin) {
        (Board::Esp8266, Pin::Ca) => ".setTrustAnchors(",
        (Board::Esp8266, Pin::Fingerprint) => ".setFingerprint(",
        (Board::Esp8266, Pin::Spki) => ".setKnownKey(",
        (Board::Esp32, _) => ".setCACert(",
    };
    if count != 1 || used != [want] {
        return Err(format!(
            "want exactly one validation setter {want}, found {count}: {used:?}"
        ));
    }
    // The clock before TLS whenever a CA is checked; the loop waits for it.
    let clock = pin == Pin::Ca || (board == Board::Esp32 && pin == Pin::Fingerprint);
    if clock {
        before(&code, "configTime(", ".connect(")?;
        before(&code, "if (!clockReady(now)) return;", "maintainMqtt(now);")?;
        find(&code, "time(nullptr)")?;
    } else if code.contains("configTime(") {
        return Err("NTP set up although nothing checks dates".into());
    }
    // TLS to the name in the certificate.
    if board == Board::Esp8266 {
        find(&code, "probeMaxFragmentLength(")?;
        find(&code, "net.setBufferSizes(")?;
        before(&code, "net.setBufferSizes(", "net.connect(")?;
    }
    if board == Board::Esp32 && pin == Pin::Fingerprint {
        before(&code, "net.connect(", "net.verify(SERVER_CERT_SHA256")?;
    }
    match (board, client) {
        (_, ClientCert::None) => {
            for s in [
                "setClientRSACert",
                "setClientECCert",
                "setCertificate",
                "setPrivateKey",
            ] {
                if code.contains(s) {
                    return Err(format!("{s} without a client certificate"));
                }
            }
        }
        (Board::Esp8266, ClientCert::Rsa) => {
            find(&code, "net.setClientRSACert(&clientCertChain, &clientKey);")?;
        }
        (Board::Esp8266, ClientCert::Ec) => {
            find(&code, "net.setClientECCert(&clientCertChain, &clientKey,")?;
        }
        (Board::Esp32, _) => {
            find(&code, "net.setCertificate(CLIENT_CERT);")?;
            find(&code, "net.setPrivateKey(CLIENT_KEY);")?;
        }
    }
    // PubSubClient set up on purpose.
    find(&code, &format!("#define MQTT_BUFFER_SIZE {buffer_size}\n"))?;
    find(&code, "mqtt.setBufferSize(MQTT_BUFFER_SIZE)")?;
    find(&code, "mqtt.setKeepAlive(")?;
    find(&code, "mqtt.setSocketTimeout(")?;
    before(
        &code,
        "void messageArrived(char* topic, byte* payload, unsigned int length)",
        "mqtt.setCallback(messageArrived)",
    )?;
    find(&code, "Serial.print(\"Message arrived [\");")?;
    // Will, online status, subscription after every connect.
    before(
        &code,
        "mqtt.connect(clientId, user, pass, statusTopic, 1, true, \"offline\", true)",
        "mqtt.subscribe(commandTopic, 1)",
    )?;
    before(
        &code,
        "mqtt.subscribe(commandTopic, 1)",
        "mqtt.publish(statusTopic, \"online\", true)",
    )?;
    find(&code, "\"devices/%s/state\"")?;
    find(&code, "\"devices/%s/telemetry\"")?;
    // Never a blocking retry loop.
    if code.contains("delay(") || code.contains("while (!mqtt.connected())") {
        return Err("a blocking delay()/retry loop".into());
    }
    find(&code, "backoffMs * 2")?;
    Ok(())
}

fn client_args(client: ClientCert) -> Vec<String> {
    match client {
        ClientCert::None => vec![],
        ClientCert::Rsa => vec![
            "--client-cert".into(),
            fixture("sensor-rsa.crt"),
            "--client-key".into(),
            fixture("sensor-rsa.key"),
        ],
        ClientCert::Ec => vec![
            "--client-cert".into(),
            fixture("sensor-ec.crt"),
            "--client-key".into(),
            fixture("sensor-ec.key"),
        ],
    }
}

/// Generates, checks and compiles every pin mode x client certificate for one board.
fn matrix(board: Board, pins: &[Pin]) {
    require_gxx();
    let mut failures = Vec::new();
    let mut compiled = 0;
    for &pin in pins {
        for client in [ClientCert::None, ClientCert::Rsa, ClientCert::Ec] {
            for host in ["broker.example.com", "192.168.1.10"] {
                let name = format!(
                    "{}_{}_{:?}_{}",
                    board.arg(),
                    pin.arg(),
                    client,
                    if host.starts_with('1') { "ip" } else { "dns" }
                )
                .to_lowercase();
                let ca = fixture("ca.crt");
                let server = fixture("server.crt");
                let mut args: Vec<String> = vec![
                    "--board".into(),
                    board.arg().into(),
                    "--host".into(),
                    host.into(),
                    "--ca".into(),
                    ca,
                    "--server-cert".into(),
                    server,
                    "--pin".into(),
                    pin.arg().into(),
                    "--buffer-size".into(),
                    "2048".into(),
                ];
                args.extend(client_args(client));
                let argv: Vec<&str> = args.iter().map(String::as_str).collect();
                let p = generate(&name, &argv);
                let ino = p.ino();
                if let Err(e) = check_semantics(&ino, board, pin, client, 2048) {
                    failures.push(format!("{name}: {e}"));
                }
                if host.starts_with('1') && board == Board::Esp8266 {
                    if !strip_comments(&ino).contains("net.connect(brokerIp, MQTT_PORT)") {
                        failures.push(format!("{name}: an IP host must be connected by address"));
                    }
                } else if !strip_comments(&ino).contains("net.connect(MQTT_HOST, MQTT_PORT)") {
                    failures.push(format!("{name}: connect(MQTT_HOST, MQTT_PORT) missing"));
                }
                if let Err(e) = compile(&p, board) {
                    failures.push(format!("{name}: {e}"));
                }
                compiled += 1;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {compiled} sketches failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn esp8266_sketches_in_every_mode_compile_against_the_core_headers() {
    matrix(Board::Esp8266, &[Pin::Ca, Pin::Fingerprint, Pin::Spki]);
}

#[test]
fn esp32_sketches_in_every_mode_compile_against_the_core_headers() {
    matrix(Board::Esp32, &[Pin::Ca, Pin::Fingerprint]);
}

#[test]
fn sketch_without_server_cert_compiles_and_says_what_was_not_checked() {
    for board in [Board::Esp8266, Board::Esp32] {
        let name = format!("{}_noserver", board.arg());
        let p = generate(
            &name,
            &[
                "--board",
                board.arg(),
                "--host",
                "mqtt.example.org",
                "--ca",
                &fixture("ca.crt"),
                "--port",
                "18883",
                "--topic",
                "home/{id}/relay/100%",
                "--client-id-prefix",
                "relay_",
            ],
        );
        assert!(p.stdout.contains("note: add --server-cert"), "{}", p.stdout);
        let ino = p.ino();
        check_semantics(&ino, board, Pin::Ca, ClientCert::None, 1024).unwrap();
        assert!(ino.contains("#define MQTT_PORT 18883\n"));
        assert!(ino.contains("#define CLIENT_ID_PREFIX \"relay_\"\n"));
        assert!(ino.contains("\"home/%s/relay/100%%\", clientId);"));
        compile(&p, board).unwrap();
    }
}

/// The stubs must reject what the real headers reject, or the compile test proves nothing.
#[test]
fn stubs_reject_wrong_calls() {
    let p = generate(
        "mutations",
        &[
            "--board",
            "esp8266",
            "--host",
            "broker.example.com",
            "--ca",
            &fixture("ca.crt"),
            "--server-cert",
            &fixture("server.crt"),
            "--client-cert",
            &fixture("sensor-ec.crt"),
            "--client-key",
            &fixture("sensor-ec.key"),
        ],
    );
    compile(&p, Board::Esp8266).unwrap();
    let ino_path = p.path.join("mutations.ino");
    let original = p.ino();
    for (from, to) in [
        // A pointer is wanted, as in the real header.
        (
            "net.setTrustAnchors(&trustAnchors);",
            "net.setTrustAnchors(trustAnchors);",
        ),
        // setClientECCert takes the usages and the issuer's key type too.
        (
            "BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN,\n                      BR_KEYTYPE_EC);",
            "BR_KEYTYPE_EC);",
        ),
        // PubSubClient 2.8 has no setBufferSizes; BearSSL has no setBufferSize.
        (
            "net.setBufferSizes(TLS_MFLN_SIZE, TLS_MFLN_SIZE);",
            "net.setBufferSize(TLS_MFLN_SIZE);",
        ),
        (
            "mqtt.setKeepAlive(MQTT_KEEPALIVE_S);",
            "mqtt.setKeepalive(MQTT_KEEPALIVE_S);",
        ),
        // The callback signature is fixed.
        (
            "void messageArrived(char* topic, byte* payload, unsigned int length)",
            "void messageArrived(char* topic, char* payload, unsigned int length)",
        ),
        // printf arguments are checked against the format.
        ("(unsigned long)ESP.getFreeHeap()", "ESP.getFreeHeap()"),
        // ESP32-only API on an ESP8266.
        ("net.setSession(&tlsSession);", "net.setCACert(CA_CERT);"),
    ] {
        assert!(original.contains(from), "mutation source missing: {from}");
        std::fs::write(&ino_path, original.replacen(from, to, 1)).unwrap();
        assert!(
            compile_file(&ino_path, Board::Esp8266).is_err(),
            "the stubs accepted `{to}`"
        );
    }
    // And the checker rejects the tutorial's three setters.
    let tutorial = original.replacen(
        "net.setTrustAnchors(&trustAnchors);",
        "net.setTrustAnchors(&trustAnchors);\n  net.setFingerprint(SERVER_CERT_SHA1);",
        1,
    );
    let err =
        check_semantics(&tutorial, Board::Esp8266, Pin::Ca, ClientCert::Ec, 1024).unwrap_err();
    assert!(err.contains("exactly one validation setter"), "{err}");
    let blocking = original.replacen(
        "maintainMqtt(now);",
        "maintainMqtt(now);\n  delay(5000);",
        1,
    );
    assert!(check_semantics(&blocking, Board::Esp8266, Pin::Ca, ClientCert::Ec, 1024).is_err());
}

#[test]
fn esp32_sketch_avoids_the_deprecated_header() {
    // arduino-esp32 3.x: WiFiClientSecure.h carries a #warning (an error under -Werror).
    let p = generate(
        "esp32_header",
        &[
            "--board",
            "esp32",
            "--host",
            "broker.example.com",
            "--ca",
            &fixture("ca.crt"),
        ],
    );
    compile(&p, Board::Esp32).unwrap();
    let ino_path = p.path.join("esp32_header.ino");
    let forced = p
        .ino()
        .replacen("#if __has_include(<NetworkClientSecure.h>)", "#if 0", 1);
    std::fs::write(&ino_path, forced).unwrap();
    let err = compile_file(&ino_path, Board::Esp32).unwrap_err();
    assert!(err.contains("deprecated"), "{err}");
}

#[test]
fn certs_h_holds_the_pins_of_the_server_certificate() {
    let server_pem = std::fs::read(fixture("server.crt")).unwrap();
    let der = tern_pki::load_certs(&server_pem).unwrap().remove(0);
    let fp = tern_pki::Fingerprints::of(&der).unwrap();
    let common = |board: &str, pin: &str| {
        generate(
            &format!("pins_{board}_{pin}"),
            &[
                "--board",
                board,
                "--host",
                "broker.example.com",
                "--ca",
                &fixture("ca.crt"),
                "--server-cert",
                &fixture("server.crt"),
                "--pin",
                pin,
            ],
        )
    };
    let sha1: Vec<String> = fp.sha1.iter().map(|b| format!("0x{b:02X}")).collect();
    let certs = common("esp8266", "fingerprint").read("certs.h");
    assert!(
        certs.contains(&format!(
            "const uint8_t SERVER_CERT_SHA1[20] PROGMEM = {{{}}};",
            sha1.join(",")
        )),
        "{certs}"
    );
    let certs = common("esp32", "fingerprint").read("certs.h");
    assert!(certs.contains(&format!(
        "const char SERVER_CERT_SHA256[] = \"{}\";",
        tern_pki::colon_hex(&fp.sha256)
    )));
    let certs = common("esp8266", "spki").read("certs.h");
    let key_pem = tern_pki::public_key_pem(&der).unwrap();
    assert!(certs.contains(&format!(
        "const char SERVER_PUBLIC_KEY[] PROGMEM = R\"EOF(\n{key_pem})EOF\";"
    )));
    // The CA always, as a raw string X509List parses.
    let ca_pem = std::fs::read_to_string(fixture("ca.crt")).unwrap();
    assert!(certs.contains(&format!(
        "const char CA_CERT[] PROGMEM = R\"EOF(\n{ca_pem})EOF\";"
    )));
    // Nothing secret without a client key, and no secrets in the sketch itself.
    let p = common("esp8266", "ca");
    assert!(!p.read("certs.h").contains("PRIVATE KEY"));
    assert_eq!(
        p.read(".gitignore")
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>(),
        ["secrets.h"]
    );
    assert!(p.read("secrets.h").contains("#define WIFI_PASSWORD"));
    assert!(!p.ino().contains("WIFI_PASSWORD \""));
}

#[test]
fn client_key_lands_in_a_private_certs_h() {
    let p = generate(
        "client_key",
        &[
            "--board",
            "esp8266",
            "--host",
            "broker.example.com",
            "--ca",
            &fixture("ca.crt"),
            "--client-cert",
            &fixture("sensor-rsa.crt"),
            "--client-key",
            &fixture("sensor-rsa.key"),
        ],
    );
    let certs = p.read("certs.h");
    assert!(certs.contains("PRIVATE KEY"));
    assert!(certs.contains("tern pki revoke sensor-rsa"));
    assert!(p.read(".gitignore").contains("certs.h"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        for f in ["certs.h", "secrets.h"] {
            let mode = std::fs::metadata(p.path.join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{f} must not be readable by others");
        }
    }
}

#[test]
fn regenerating_keeps_secrets_and_needs_force() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().display().to_string();
    let args = [
        "--board",
        "esp32",
        "--host",
        "broker.example.com",
        "--ca",
        &fixture("ca.crt"),
        "--name",
        "again",
        "-o",
        &out,
    ];
    assert!(tern(&args).status.success());
    let secrets = dir.path().join("again/secrets.h");
    std::fs::write(&secrets, "#define WIFI_SSID \"mine\"\n").unwrap();
    let second = tern(&args);
    assert!(!second.status.success());
    assert!(
        text(&second.stderr).contains("--force"),
        "{}",
        text(&second.stderr)
    );
    let mut forced = args.to_vec();
    forced.push("--force");
    let third = tern(&forced);
    assert!(third.status.success(), "{}", text(&third.stderr));
    assert!(text(&third.stdout).contains("kept"));
    assert_eq!(
        std::fs::read_to_string(&secrets).unwrap(),
        "#define WIFI_SSID \"mine\"\n"
    );
}

#[test]
fn refuses_what_the_device_would_refuse() {
    let ca = fixture("ca.crt");
    let server = fixture("server.crt");
    let rsa_cert = fixture("sensor-rsa.crt");
    let ec_key = fixture("sensor-ec.key");
    let tutorial_ca = manifest_dir()
        .join("../tern-pki/testdata/tutorial-ca.crt")
        .display()
        .to_string();
    let tutorial_server = manifest_dir()
        .join("../tern-pki/testdata/tutorial-server.crt")
        .display()
        .to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        // The tutorial's server certificate has no subjectAltName.
        (
            vec![
                "--board",
                "esp8266",
                "--host",
                "broker.example.com",
                "--ca",
                &tutorial_ca,
                "--server-cert",
                &tutorial_server,
            ],
            "no subjectAltName at all). Reissue it: tern pki server --host broker.example.com",
        ),
        (
            vec![
                "--board",
                "esp32",
                "--host",
                "other.example.com",
                "--ca",
                &ca,
                "--server-cert",
                &server,
            ],
            "does not name other.example.com (it lists DNS:broker.example.com, IP:192.168.1.10)",
        ),
        (
            vec![
                "--board",
                "esp8266",
                "--host",
                "broker.example.com",
                "--ca",
                &tutorial_ca,
                "--server-cert",
                &server,
            ],
            "is not signed by the CA",
        ),
        (
            vec![
                "--board",
                "esp8266",
                "--host",
                "broker.example.com",
                "--ca",
                &server,
            ],
            "not a CA certificate",
        ),
        (
            vec![
                "--board",
                "esp8266",
                "--host",
                "broker.example.com",
                "--ca",
                &ca,
                "--pin",
                "fingerprint",
            ],
            "--pin fingerprint needs the broker's certificate",
        ),
        (
            vec![
                "--board",
                "esp32",
                "--host",
                "broker.example.com",
                "--ca",
                &ca,
                "--server-cert",
                &server,
                "--pin",
                "spki",
            ],
            "--pin spki is for ESP8266",
        ),
        (
            vec!["--board", "esp8266", "--host", "192.168.1.10", "--ca", &ca],
            "is an IP address: add --server-cert",
        ),
        (
            vec![
                "--board",
                "esp8266",
                "--host",
                "192.168.1.99",
                "--ca",
                &ca,
                "--server-cert",
                &server,
            ],
            "tern pki server --ip 192.168.1.99",
        ),
        (
            vec![
                "--board",
                "esp8266",
                "--host",
                "broker.example.com",
                "--ca",
                &ca,
                "--client-cert",
                &rsa_cert,
                "--client-key",
                &ec_key,
            ],
            "is not the key of --client-cert",
        ),
        (
            vec![
                "--board",
                "esp8266",
                "--host",
                "broker.example.com",
                "--ca",
                &ca,
                "--topic",
                "devices/{ID}/set",
            ],
            "only {id} is replaced",
        ),
        (
            vec![
                "--board",
                "esp8266",
                "--host",
                "broker.example.com",
                "--ca",
                &ca,
                "--client-id-prefix",
                "a/b",
            ],
            "--client-id-prefix",
        ),
        (
            vec![
                "--board",
                "esp8266",
                "--host",
                "broker.example.com",
                "--ca",
                &ca,
                "--buffer-size",
                "100",
            ],
            "256..=16384",
        ),
        (
            vec!["--board", "esp8266", "--host", "bad host", "--ca", &ca],
            "neither a DNS name nor an IP address",
        ),
    ];
    for (args, want) in cases {
        let err = refuse(&args);
        assert!(err.contains(want), "{args:?}\nwant: {want}\ngot: {err}");
    }
}

#[test]
fn fingerprint_mode_tolerates_a_nameless_certificate_but_says_so() {
    // The tutorial's own setup: a server certificate without subjectAltName, pinned.
    let tutorial = |f: &str| {
        manifest_dir()
            .join("../tern-pki/testdata")
            .join(f)
            .display()
            .to_string()
    };
    let p = generate(
        "tutorial_pin",
        &[
            "--board",
            "esp8266",
            "--host",
            "broker.example.com",
            "--ca",
            &tutorial("tutorial-ca.crt"),
            "--server-cert",
            &tutorial("tutorial-server.crt"),
            "--pin",
            "fingerprint",
        ],
    );
    assert!(
        p.stdout.contains("note: the server certificate"),
        "{}",
        p.stdout
    );
    assert!(
        p.stdout.contains("the device does not check the name"),
        "{}",
        p.stdout
    );
    check_semantics(
        &p.ino(),
        Board::Esp8266,
        Pin::Fingerprint,
        ClientCert::None,
        1024,
    )
    .unwrap();
    compile(&p, Board::Esp8266).unwrap();
}

#[test]
fn esp8266_with_an_ecdsa_server_gets_the_rsa_advice() {
    let p = generate(
        "ec_server",
        &[
            "--board",
            "esp8266",
            "--host",
            "broker.example.com",
            "--ca",
            &fixture("ca.crt"),
            "--server-cert",
            &fixture("server-ec.crt"),
        ],
    );
    assert!(
        p.stdout
            .contains("tern pki server --host broker.example.com --key rsa-2048"),
        "{}",
        p.stdout
    );
    assert!(p.ino().contains("--key rsa-2048"));
    assert!(p.stdout.contains("next:"));
    assert!(p.stdout.contains("PubSubClient\" 2.8"));
}

// ---- Running the sketches -------------------------------------------------------------

/// Compiles a project with the host fakes (tests/arduino-stubs/host) and the driver, runs
/// it, and returns the driver's complaints, if any.
fn run_on_host(
    p: &Project,
    board: Board,
    setter: &str,
    clock: bool,
    verify: bool,
) -> Result<(), String> {
    let host = stubs().join("host");
    let bin = p.path.join("sketch-test");
    let define = match board {
        Board::Esp8266 => "-DESP8266",
        Board::Esp32 => "-DESP32",
    };
    let out = Command::new("g++")
        .args(["-std=gnu++17", "-Wall", "-Wextra", "-Werror", define])
        .arg(format!("-DTERN_SETTER=\"{setter}\""))
        .arg(format!("-DTERN_CLOCK={}", u8::from(clock)))
        .arg(format!("-DTERN_VERIFY={}", u8::from(verify)))
        .arg("-I")
        .arg(stubs().join(board.arg()))
        .arg("-I")
        .arg(stubs().join("common"))
        .arg("-I")
        .arg(&host)
        .args(["-x", "c++"])
        .arg(p.path.join(format!("{}.ino", p.name)))
        .arg(host.join("fake_core.cpp"))
        .arg(host.join("driver.cpp"))
        .arg("-o")
        .arg(&bin)
        .output()
        .expect("run g++ (apt-get install g++)");
    if !out.status.success() {
        return Err(format!(
            "g++ could not build the host test:\n{}",
            text(&out.stderr)
        ));
    }
    let mut child = Command::new(&bin)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(
                "the sketch did not return from loop() within 20 s (a blocking loop?)".into(),
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    if out.status.success() && text(&out.stdout).contains("all checks passed") {
        Ok(())
    } else {
        Err(format!("{}{}", text(&out.stdout), text(&out.stderr)))
    }
}

#[test]
fn sketches_run_on_the_host_and_behave() {
    require_gxx();
    let cases = [
        (
            Board::Esp8266,
            Pin::Ca,
            ClientCert::None,
            "setTrustAnchors",
            true,
            false,
        ),
        (
            Board::Esp8266,
            Pin::Fingerprint,
            ClientCert::Rsa,
            "setFingerprint",
            false,
            false,
        ),
        (
            Board::Esp8266,
            Pin::Spki,
            ClientCert::Ec,
            "setKnownKey",
            false,
            false,
        ),
        (
            Board::Esp32,
            Pin::Ca,
            ClientCert::Rsa,
            "setCACert",
            true,
            false,
        ),
        (
            Board::Esp32,
            Pin::Fingerprint,
            ClientCert::Ec,
            "setCACert",
            true,
            true,
        ),
    ];
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = cases
            .iter()
            .map(|&(board, pin, client, setter, clock, verify)| {
                scope.spawn(move || {
                    let name = format!("run_{}_{}", board.arg(), pin.arg());
                    let mut args: Vec<String> = [
                        "--board",
                        board.arg(),
                        "--host",
                        "broker.example.com",
                        "--ca",
                        &fixture("ca.crt"),
                        "--server-cert",
                        &fixture("server.crt"),
                        "--pin",
                        pin.arg(),
                    ]
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect();
                    args.extend(client_args(client));
                    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
                    let p = generate(&name, &argv);
                    run_on_host(&p, board, setter, clock, verify)
                        .err()
                        .map(|e| format!("{name}:\n{e}"))
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

// ---- Snapshots ----------------------------------------------------------------------------

/// Fixed inputs whose output is committed under tests/snapshots/sketch/CASE/.
fn snapshot_cases() -> Vec<(&'static str, Vec<String>)> {
    let f = |s: &str| fixture(s);
    let args = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    vec![
        (
            "esp8266_ca",
            args(&[
                "--board",
                "esp8266",
                "--host",
                "broker.example.com",
                "--ca",
                &f("ca.crt"),
                "--server-cert",
                &f("server.crt"),
            ]),
        ),
        (
            "esp8266_fingerprint_rsa_client",
            args(&[
                "--board",
                "esp8266",
                "--host",
                "broker.example.com",
                "--ca",
                &f("ca.crt"),
                "--server-cert",
                &f("server.crt"),
                "--pin",
                "fingerprint",
                "--client-cert",
                &f("sensor-rsa.crt"),
                "--client-key",
                &f("sensor-rsa.key"),
            ]),
        ),
        (
            "esp8266_spki_ip_ec_client",
            args(&[
                "--board",
                "esp8266",
                "--host",
                "192.168.1.10",
                "--ca",
                &f("ca.crt"),
                "--server-cert",
                &f("server.crt"),
                "--pin",
                "spki",
                "--client-cert",
                &f("sensor-ec.crt"),
                "--client-key",
                &f("sensor-ec.key"),
                "--buffer-size",
                "512",
                "--telemetry-secs",
                "30",
            ]),
        ),
        (
            "esp32_ca_ec_client",
            args(&[
                "--board",
                "esp32",
                "--host",
                "broker.example.com",
                "--ca",
                &f("ca.crt"),
                "--server-cert",
                &f("server.crt"),
                "--client-cert",
                &f("sensor-ec.crt"),
                "--client-key",
                &f("sensor-ec.key"),
                "--topic",
                "home/{id}/relay",
            ]),
        ),
        (
            "esp32_fingerprint",
            args(&[
                "--board",
                "esp32",
                "--host",
                "broker.example.com",
                "--ca",
                &f("ca.crt"),
                "--server-cert",
                &f("server.crt"),
                "--pin",
                "fingerprint",
            ]),
        ),
    ]
}

/// Name of a generated file in the snapshot directory (a `.gitignore` there would act).
fn snapshot_name(file: &str) -> String {
    file.strip_prefix('.')
        .map_or_else(|| file.to_owned(), |rest| format!("dot-{rest}"))
}

#[test]
fn generated_files_match_the_snapshots() {
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1");
    let root = manifest_dir().join("tests/snapshots/sketch");
    let mut mismatches = Vec::new();
    for (case, args) in snapshot_cases() {
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let p = generate(case, &argv);
        let snap_dir = root.join(case);
        let mut files: Vec<String> = std::fs::read_dir(&p.path)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        if update {
            let _ = std::fs::remove_dir_all(&snap_dir);
            std::fs::create_dir_all(&snap_dir).unwrap();
        }
        let mut expected: Vec<String> = std::fs::read_dir(&snap_dir)
            .map(|rd| {
                rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        expected.sort();
        for file in &files {
            let got = p.read(file);
            let snap = snap_dir.join(snapshot_name(file));
            if update {
                std::fs::write(&snap, &got).unwrap();
                continue;
            }
            match std::fs::read_to_string(&snap) {
                Err(_) => mismatches.push(format!("{case}/{file}: no snapshot {}", snap.display())),
                Ok(want) if want != got => {
                    let line = want
                        .lines()
                        .zip(got.lines())
                        .position(|(a, b)| a != b)
                        .map_or_else(
                            || want.lines().count().min(got.lines().count()) + 1,
                            |i| i + 1,
                        );
                    mismatches.push(format!(
                        "{case}/{file} differs from the snapshot at line {line}:\n  want: {:?}\n  got:  {:?}",
                        want.lines().nth(line - 1).unwrap_or("<end>"),
                        got.lines().nth(line - 1).unwrap_or("<end>")
                    ));
                }
                Ok(_) => {}
            }
        }
        if !update {
            let names: Vec<String> = files.iter().map(|f| snapshot_name(f)).collect();
            for e in expected.iter().filter(|e| !names.contains(e)) {
                mismatches.push(format!("{case}: snapshot {e} is no longer generated"));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{}\n\nIf the change is intended, regenerate with:\n  UPDATE_SNAPSHOTS=1 cargo test -p tern-cli --test sketch generated_files_match_the_snapshots",
        mismatches.join("\n")
    );
}

#[test]
fn snapshot_sketches_compile() {
    // The committed snapshots are what reviewers read: they must compile too.
    let root = manifest_dir().join("tests/snapshots/sketch");
    for (case, _) in snapshot_cases() {
        let board = if case.starts_with("esp32") {
            Board::Esp32
        } else {
            Board::Esp8266
        };
        let dir = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(root.join(case)).unwrap() {
            let e = entry.unwrap();
            std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
        }
        compile_file(&dir.path().join(format!("{case}.ino")), board).unwrap();
    }
}
