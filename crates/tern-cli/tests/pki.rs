//! Black-box tests of `tern pki` and `tern doctor`: the real binary in temporary
//! directories, checked against Debian's `openssl`, `mosquitto` and `mosquitto-clients`.
//! A missing tool fails the test with the command that installs it; nothing is skipped.
//! Every process started here is killed by its guard; only loopback addresses are used.
// Helpers outside #[test] functions are test code too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const INSTALL: &str = "install them with: apt-get install openssl mosquitto mosquitto-clients";

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let p =
            std::env::temp_dir().join(format!("tern-test-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Fails (never skips) when a required external tool is missing.
fn require(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(found, "required tool `{tool}` is not installed; {INSTALL}");
}

fn run_timeout(cmd: &mut Command, secs: u64) -> Output {
    let program = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}; {INSTALL}"));
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{program} did not finish within {secs} s\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn tern_cmd(dir: &TempDir) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tern"));
    c.env("RUST_BACKTRACE", "0")
        .env("TERN_DATA_DIR", dir.join("data"))
        .current_dir(dir.path());
    c
}

/// Runs tern, asserts success, returns stdout.
fn tern(dir: &TempDir, args: &[&str]) -> String {
    let out = run_timeout(tern_cmd(dir).args(args), 120);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "tern {args:?} failed: {}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Runs tern, returns (exit code, stdout, stderr).
fn tern_any(dir: &TempDir, args: &[&str]) -> (i32, String, String) {
    let out = run_timeout(tern_cmd(dir).args(args), 120);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn openssl(dir: &TempDir, args: &[&str]) -> String {
    require("openssl");
    let out = run_timeout(
        Command::new("openssl").args(args).current_dir(dir.path()),
        60,
    );
    assert!(
        out.status.success(),
        "openssl {args:?} failed\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[path = "../../tern-client/tests/common/ports.rs"]
mod ports;
use ports::free_port;

fn free_ports<const N: usize>() -> [u16; N] {
    let v = ports::free_ports(N);
    std::array::from_fn(|i| v[i])
}

/// A running mosquitto, killed on drop.
struct Mosquitto {
    child: Child,
    log: PathBuf,
}

impl Mosquitto {
    /// Starts mosquitto with `listeners` (mosquitto.conf text) and waits for `ports`.
    fn start(dir: &TempDir, listeners: &str, ports: &[u16]) -> Self {
        require("mosquitto");
        let conf = dir.join("mosquitto.conf");
        // `user root` keeps a root test run from dropping to the mosquitto user, which
        // could not read the 0700 PKI directory; it is ignored when not run as root.
        std::fs::write(&conf, format!("user root\n{listeners}")).unwrap();
        let log = dir.join("mosquitto.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .arg("-v")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start mosquitto: {e}; {INSTALL}"));
        let mut m = Self { child, log };
        let deadline = Instant::now() + Duration::from_secs(10);
        for &port in ports {
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                if let Some(status) = m.child.try_wait().unwrap() {
                    panic!("mosquitto exited ({status}):\n{}", m.log_text());
                }
                assert!(
                    Instant::now() < deadline,
                    "mosquitto did not listen on {port} within 10 s:\n{}",
                    m.log_text()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        m
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tls_listener(port: u16, pki: &Path, extra: &str) -> String {
    format!(
        "listener {port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\n{extra}allow_anonymous true\n",
        s(&pki.join("ca.crt")),
        s(&pki.join("server.crt")),
        s(&pki.join("server.key"))
    )
}

/// Subscribes and publishes over TLS with mosquitto's clients; returns what arrived.
fn pub_sub(
    port: u16,
    cafile: &Path,
    client: Option<(&Path, &Path)>,
    message: &str,
) -> (Output, Output) {
    require("mosquitto_sub");
    require("mosquitto_pub");
    let port_s = port.to_string();
    let mut tls: Vec<String> = vec!["--cafile".into(), s(cafile).into()];
    if let Some((c, k)) = client {
        tls.extend(["--cert".into(), s(c).into(), "--key".into(), s(k).into()]);
    }
    let topic = format!("tern/test/{message}");
    let mut sub = Command::new("mosquitto_sub");
    sub.args([
        "-h",
        "localhost",
        "-p",
        &port_s,
        "-t",
        &topic,
        "-C",
        "1",
        "-W",
        "10",
    ])
    .args(&tls)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .stdin(Stdio::null());
    let sub_child = sub
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run mosquitto_sub: {e}; {INSTALL}"));
    std::thread::sleep(Duration::from_millis(300));
    // Retained, so it also arrives if the subscription was made after the publish.
    let pub_out = run_timeout(
        Command::new("mosquitto_pub")
            .args([
                "-h",
                "localhost",
                "-p",
                &port_s,
                "-t",
                &topic,
                "-m",
                message,
                "-r",
            ])
            .args(&tls),
        20,
    );
    let sub_out = wait_output(sub_child, 20);
    (pub_out, sub_out)
}

fn wait_output(mut child: Child, secs: u64) -> Output {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn ca_server_client_pass_openssl_verify() {
    let d = TempDir::new("verify");
    let pki = d.join("pki");
    let out = tern(&d, &["pki", "ca", "--dir", s(&pki)]);
    assert!(out.contains("ca.crt"), "{out}");
    let out = tern(
        &d,
        &[
            "pki",
            "server",
            "--dir",
            s(&pki),
            "--host",
            "broker.example.com",
            "--ip",
            "192.0.2.1",
        ],
    );
    assert!(
        out.contains(&format!("certfile {}", s(&pki.join("server.crt")))),
        "{out}"
    );
    assert!(out.contains("sha1 Fingerprint="), "{out}");
    tern(
        &d,
        &[
            "pki",
            "client",
            "sensor-1",
            "--dir",
            s(&pki),
            "--key",
            "rsa-2048",
        ],
    );
    let ca = pki.join("ca.crt");
    for leaf in ["server.crt", "sensor-1.crt"] {
        let v = openssl(&d, &["verify", "-CAfile", s(&ca), s(&pki.join(leaf))]);
        assert!(v.trim_end().ends_with(": OK"), "{v}");
    }
    let text = openssl(
        &d,
        &["x509", "-noout", "-text", "-in", s(&pki.join("server.crt"))],
    );
    assert!(text.contains("DNS:broker.example.com"), "{text}");
    assert!(text.contains("IP Address:192.0.2.1"), "{text}");
    assert!(text.contains("TLS Web Server Authentication"), "{text}");
    let text = openssl(&d, &["x509", "-noout", "-text", "-in", s(&ca)]);
    assert!(text.contains("CA:TRUE"), "{text}");
    assert!(text.contains("Certificate Sign, CRL Sign"), "{text}");
    for key in ["ca.key", "server.key", "sensor-1.key"] {
        assert_eq!(mode(&pki.join(key)), 0o600, "{key}");
    }
    assert_eq!(mode(&pki.join("server.crt")), 0o644);
}

#[test]
fn default_dir_comes_from_tern_data_dir() {
    let d = TempDir::new("default-dir");
    tern(&d, &["pki", "ca"]);
    assert!(d.join("data/pki/ca.crt").is_file());
    assert!(d.join("data/pki/ca.key").is_file());
}

#[test]
fn ca_is_not_replaced_without_force() {
    let d = TempDir::new("force");
    let pki = d.join("pki");
    tern(&d, &["pki", "ca", "--dir", s(&pki)]);
    let before = std::fs::read(pki.join("ca.crt")).unwrap();
    let (code, _, err) = tern_any(&d, &["pki", "ca", "--dir", s(&pki)]);
    assert_ne!(code, 0);
    assert!(err.contains("--force"), "{err}");
    assert_eq!(std::fs::read(pki.join("ca.crt")).unwrap(), before);
    tern(
        &d,
        &[
            "pki",
            "ca",
            "--dir",
            s(&pki),
            "--force",
            "--key",
            "rsa-2048",
        ],
    );
    assert_ne!(std::fs::read(pki.join("ca.crt")).unwrap(), before);
}

#[test]
fn fingerprint_is_byte_identical_to_openssl() {
    let d = TempDir::new("fp");
    let pki = d.join("pki");
    tern(&d, &["pki", "ca", "--dir", s(&pki)]);
    tern(
        &d,
        &["pki", "server", "--dir", s(&pki), "--key", "rsa-2048"],
    );
    for cert in ["ca.crt", "server.crt"] {
        let f = pki.join(cert);
        assert_eq!(
            tern(&d, &["pki", "fingerprint", s(&f)]),
            openssl(
                &d,
                &["x509", "-noout", "-fingerprint", "-sha1", "-in", s(&f)]
            )
        );
        assert_eq!(
            tern(&d, &["pki", "fingerprint", "--sha1", s(&f)]),
            openssl(
                &d,
                &["x509", "-noout", "-fingerprint", "-sha1", "-in", s(&f)]
            )
        );
        assert_eq!(
            tern(&d, &["pki", "fingerprint", "--sha256", s(&f)]),
            openssl(
                &d,
                &["x509", "-noout", "-fingerprint", "-sha256", "-in", s(&f)]
            )
        );
    }
    let f = pki.join("server.crt");
    let ossl = openssl(
        &d,
        &["x509", "-noout", "-fingerprint", "-sha1", "-in", s(&f)],
    );
    let hex: String = ossl.trim().split('=').nth(1).unwrap().replace(':', "");
    let arduino = tern(&d, &["pki", "fingerprint", s(&f), "--format", "arduino"]);
    let bytes: Vec<String> = (0..20)
        .map(|i| format!("0x{}", &hex[2 * i..2 * i + 2]))
        .collect();
    assert_eq!(
        arduino.trim(),
        format!(
            "const uint8_t mqttCertFingerprint[] = {{{}}};",
            bytes.join(",")
        )
    );
    assert_eq!(
        tern(&d, &["pki", "fingerprint", s(&f), "--format", "hex"]).trim(),
        hex.to_lowercase()
    );
    // SPKI pin as `openssl pkey -pubout | openssl dgst -sha256 -binary | base64` computes it.
    let pubkey = openssl(&d, &["x509", "-noout", "-pubkey", "-in", s(&f)]);
    std::fs::write(d.join("pub.pem"), pubkey).unwrap();
    openssl(
        &d,
        &[
            "pkey", "-pubin", "-in", "pub.pem", "-outform", "der", "-out", "pub.der",
        ],
    );
    openssl(
        &d,
        &["dgst", "-sha256", "-binary", "-out", "pub.sha", "pub.der"],
    );
    let b64 = openssl(&d, &["base64", "-A", "-in", "pub.sha"]);
    assert_eq!(
        tern(&d, &["pki", "fingerprint", "--spki", s(&f)]).trim(),
        format!("pin-sha256=\"{}\"", b64.trim())
    );
}

/// The tutorial's six openssl commands, made non-interactive with -subj.
fn tutorial_pki(d: &TempDir, genrsa: &[&str]) {
    let mut ca_gen = vec!["genrsa"];
    ca_gen.extend_from_slice(genrsa);
    ca_gen.extend(["-out", "ca.key", "2048"]);
    openssl(d, &ca_gen);
    openssl(
        d,
        &[
            "req",
            "-new",
            "-x509",
            "-days",
            "3650",
            "-key",
            "ca.key",
            "-out",
            "ca.crt",
            "-subj",
            "/C=BH/ST=Manama/L=Manama/O=Grasspalm/OU=Grasspalm-IOT/CN=gb.grasspalm.com/emailAddress=info@grasspalm.com",
        ],
    );
    openssl(d, &["genrsa", "-out", "server.key", "2048"]);
    openssl(
        d,
        &[
            "req",
            "-new",
            "-out",
            "server.csr",
            "-key",
            "server.key",
            "-subj",
            "/CN=broker.example.com",
        ],
    );
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "3650",
        ],
    );
}

#[test]
fn tutorial_ca_signs_and_tutorial_server_cert_is_explained() {
    let d = TempDir::new("tutorial");
    tutorial_pki(&d, &[]);
    assert!(
        std::fs::read_to_string(d.join("ca.key"))
            .unwrap()
            .contains("BEGIN PRIVATE KEY")
    );
    let out = tern(
        &d,
        &[
            "pki",
            "server",
            "--dir",
            "issued",
            "--ca-cert",
            "ca.crt",
            "--ca-key",
            "ca.key",
            "--host",
            "broker.example.com",
            "--key",
            "rsa-2048",
        ],
    );
    assert!(out.contains("signed by C=BH"), "{out}");
    let v = openssl(&d, &["verify", "-CAfile", "ca.crt", "issued/server.crt"]);
    assert!(v.trim_end().ends_with(": OK"), "{v}");
    tern(
        &d,
        &[
            "pki",
            "client",
            "dev1",
            "--dir",
            "issued",
            "--ca-cert",
            "ca.crt",
            "--ca-key",
            "ca.key",
        ],
    );
    let v = openssl(&d, &["verify", "-CAfile", "ca.crt", "issued/dev1.crt"]);
    assert!(v.trim_end().ends_with(": OK"), "{v}");

    let report = tern(&d, &["pki", "inspect", "server.crt", "--key", "server.key"]);
    assert!(report.contains("version:    1"), "{report}");
    assert!(report.contains("matches the certificate"), "{report}");
    assert!(
        report.contains("X.509 v1 certificate with no subjectAltName, so strict TLS clients will refuse it; reissue it with: tern pki server --host broker.example.com"),
        "{report}"
    );
    // And tern's replacement has no warnings.
    let report = tern(
        &d,
        &[
            "pki",
            "inspect",
            "issued/server.crt",
            "--key",
            "issued/server.key",
        ],
    );
    assert!(report.contains("no warnings"), "{report}");
}

#[test]
fn existing_ca_keys_in_pkcs1_and_sec1_are_accepted() {
    // PKCS#1 "BEGIN RSA PRIVATE KEY" as OpenSSL 1.x wrote it.
    let d = TempDir::new("pkcs1");
    tutorial_pki(&d, &["-traditional"]);
    assert!(
        std::fs::read_to_string(d.join("ca.key"))
            .unwrap()
            .contains("BEGIN RSA PRIVATE KEY")
    );
    tern(
        &d,
        &[
            "pki",
            "server",
            "--dir",
            "o",
            "--ca-cert",
            "ca.crt",
            "--ca-key",
            "ca.key",
            "--host",
            "h.example",
        ],
    );
    let v = openssl(&d, &["verify", "-CAfile", "ca.crt", "o/server.crt"]);
    assert!(v.trim_end().ends_with(": OK"), "{v}");

    // SEC1 "BEGIN EC PRIVATE KEY" (with EC PARAMETERS first), as `openssl ecparam -genkey` writes it.
    let d = TempDir::new("sec1");
    openssl(
        &d,
        &[
            "ecparam",
            "-genkey",
            "-name",
            "prime256v1",
            "-out",
            "ca.key",
        ],
    );
    let key = std::fs::read_to_string(d.join("ca.key")).unwrap();
    assert!(key.contains("BEGIN EC PRIVATE KEY"), "{key}");
    openssl(
        &d,
        &[
            "req",
            "-new",
            "-x509",
            "-days",
            "365",
            "-key",
            "ca.key",
            "-out",
            "ca.crt",
            "-subj",
            "/CN=ec ca",
        ],
    );
    tern(
        &d,
        &[
            "pki",
            "server",
            "--dir",
            "o",
            "--ca-cert",
            "ca.crt",
            "--ca-key",
            "ca.key",
            "--host",
            "h.example",
        ],
    );
    let v = openssl(&d, &["verify", "-CAfile", "ca.crt", "o/server.crt"]);
    assert!(v.trim_end().ends_with(": OK"), "{v}");
    // The openssl-made CA also signs CRLs that openssl accepts (the AKI must match its SKI).
    std::fs::create_dir_all(d.join("o")).unwrap();
    std::fs::copy(d.join("ca.crt"), d.join("o/ca.crt")).unwrap();
    std::fs::copy(d.join("ca.key"), d.join("o/ca.key")).unwrap();
    let out = tern(&d, &["pki", "revoke", "server", "--dir", "o"]);
    assert!(out.contains("revoked server"), "{out}");
    let crl = openssl(
        &d,
        &[
            "crl", "-in", "o/ca.crl", "-CAfile", "ca.crt", "-noout", "-text",
        ],
    );
    assert!(crl.contains("Revoked Certificates"), "{crl}");
}

#[test]
fn wrong_files_are_named_in_errors() {
    let d = TempDir::new("errors");
    let pki = d.join("pki");
    tern(&d, &["pki", "ca", "--dir", s(&pki)]);
    tern(&d, &["pki", "server", "--dir", s(&pki)]);
    let crt = pki.join("server.crt");
    let (code, _, err) = tern_any(&d, &["pki", "inspect", s(&crt), "--key", s(&crt)]);
    assert_ne!(code, 0);
    assert!(
        err.contains("the file holds a certificate, not a private key"),
        "{err}"
    );
    let (code, _, err) = tern_any(&d, &["pki", "fingerprint", s(&pki.join("server.key"))]);
    assert_ne!(code, 0);
    assert!(
        err.contains("the file holds a private key, not a certificate"),
        "{err}"
    );
    let (code, _, err) = tern_any(&d, &["pki", "server", "--dir", s(&d.join("nothing"))]);
    assert_ne!(code, 0);
    assert!(err.contains("tern pki ca --dir"), "{err}");
    // Mismatched key is a warning in inspect.
    tern(&d, &["pki", "client", "other", "--dir", s(&pki)]);
    let report = tern(
        &d,
        &[
            "pki",
            "inspect",
            s(&crt),
            "--key",
            s(&pki.join("other.key")),
        ],
    );
    assert!(report.contains("does NOT match"), "{report}");
}

#[test]
fn client_p12_opens_with_openssl() {
    let d = TempDir::new("p12");
    let pki = d.join("pki");
    tern(&d, &["pki", "ca", "--dir", s(&pki)]);
    let out = tern(
        &d,
        &[
            "pki",
            "client",
            "dev",
            "--dir",
            s(&pki),
            "--p12",
            "--p12-password",
            "s3cret",
        ],
    );
    assert!(out.contains("dev.p12"), "{out}");
    assert_eq!(mode(&pki.join("dev.p12")), 0o600);
    let certs = openssl(
        &d,
        &[
            "pkcs12",
            "-in",
            s(&pki.join("dev.p12")),
            "-nokeys",
            "-passin",
            "pass:s3cret",
        ],
    );
    assert!(certs.contains("subject=CN = dev"), "{certs}");
    let key = openssl(
        &d,
        &[
            "pkcs12",
            "-in",
            s(&pki.join("dev.p12")),
            "-nocerts",
            "-nodes",
            "-passin",
            "pass:s3cret",
        ],
    );
    assert!(key.contains("PRIVATE KEY"), "{key}");
}

#[test]
fn header_carries_ca_and_fingerprints() {
    let d = TempDir::new("header");
    let pki = d.join("pki");
    tern(&d, &["pki", "ca", "--dir", s(&pki)]);
    tern(
        &d,
        &[
            "pki",
            "server",
            "--dir",
            s(&pki),
            "--host",
            "mqtt.example.com",
        ],
    );
    let h = tern(&d, &["pki", "header", "--dir", s(&pki)]);
    let ca = std::fs::read_to_string(pki.join("ca.crt")).unwrap();
    assert!(
        h.contains(&format!(
            "const char caCert[] PROGMEM = R\"EOF(\n{ca})EOF\";"
        )),
        "{h}"
    );
    let fp = tern(
        &d,
        &[
            "pki",
            "fingerprint",
            s(&pki.join("server.crt")),
            "--format",
            "arduino",
        ],
    );
    let array = fp
        .trim()
        .replace("mqttCertFingerprint[]", "mqttCertFingerprint[20]");
    assert!(h.contains(&array), "{h}\n{array}");
    assert!(
        h.contains("#define MQTT_SERVER_NAME \"mqtt.example.com\""),
        "{h}"
    );
}

fn mosquitto_round_trip(key: &str) {
    let d = TempDir::new(&format!("mosq-{key}"));
    let pki = d.join("pki");
    tern(&d, &["pki", "ca", "--dir", s(&pki), "--key", key]);
    tern(&d, &["pki", "server", "--dir", s(&pki), "--key", key]);
    let port = free_port();
    let m = Mosquitto::start(&d, &tls_listener(port, &pki, ""), &[port]);
    let msg = format!("hello-{key}");
    let (pub_out, sub_out) = pub_sub(port, &pki.join("ca.crt"), None, &msg);
    assert!(
        pub_out.status.success(),
        "mosquitto_pub failed: {}\n{}",
        String::from_utf8_lossy(&pub_out.stderr),
        m.log_text()
    );
    assert_eq!(
        String::from_utf8_lossy(&sub_out.stdout).trim(),
        msg,
        "mosquitto_sub stderr: {}\nlog:\n{}",
        String::from_utf8_lossy(&sub_out.stderr),
        m.log_text()
    );
}

#[test]
fn mosquitto_accepts_ecdsa_certificates() {
    mosquitto_round_trip("ecdsa-p256");
}

#[test]
fn mosquitto_accepts_rsa_certificates() {
    mosquitto_round_trip("rsa-2048");
}

#[test]
fn mosquitto_refuses_revoked_client_with_tern_crl() {
    let d = TempDir::new("crl");
    let pki = d.join("pki");
    tern(&d, &["pki", "ca", "--dir", s(&pki)]);
    tern(&d, &["pki", "server", "--dir", s(&pki)]);
    tern(&d, &["pki", "client", "good", "--dir", s(&pki)]);
    tern(&d, &["pki", "client", "bad", "--dir", s(&pki)]);
    let out = tern(&d, &["pki", "revoke", "bad", "--dir", s(&pki)]);
    assert!(out.contains("revoked bad"), "{out}");
    assert!(out.contains("crlfile"), "{out}");
    let crl = openssl(
        &d,
        &[
            "crl",
            "-in",
            s(&pki.join("ca.crl")),
            "-CAfile",
            s(&pki.join("ca.crt")),
            "-noout",
            "-text",
        ],
    );
    assert!(crl.contains("Version 2"), "{crl}");
    assert!(crl.contains("X509v3 CRL Number"), "{crl}");
    let port = free_port();
    let extra = format!(
        "require_certificate true\ncrlfile {}\n",
        s(&pki.join("ca.crl"))
    );
    let m = Mosquitto::start(&d, &tls_listener(port, &pki, &extra), &[port]);
    let ca = pki.join("ca.crt");
    let (pub_out, sub_out) = pub_sub(
        port,
        &ca,
        Some((&pki.join("good.crt"), &pki.join("good.key"))),
        "from-good",
    );
    assert!(
        pub_out.status.success(),
        "good client refused:\n{}",
        m.log_text()
    );
    assert_eq!(
        String::from_utf8_lossy(&sub_out.stdout).trim(),
        "from-good",
        "{}",
        m.log_text()
    );
    let port_s = port.to_string();
    let bad = run_timeout(
        Command::new("mosquitto_pub")
            .args([
                "-h",
                "localhost",
                "-p",
                &port_s,
                "-t",
                "x",
                "-m",
                "x",
                "--cafile",
                s(&ca),
            ])
            .args([
                "--cert",
                s(&pki.join("bad.crt")),
                "--key",
                s(&pki.join("bad.key")),
            ]),
        20,
    );
    assert!(
        !bad.status.success(),
        "revoked client was accepted:\n{}",
        m.log_text()
    );
    // And doctor says why.
    let (code, out, _) = tern_any(
        &d,
        &[
            "doctor",
            &format!("localhost:{port}"),
            "--cafile",
            s(&ca),
            "--cert",
            s(&pki.join("bad.crt")),
            "--key",
            s(&pki.join("bad.key")),
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("revoked"), "{out}");
}

/// A mosquitto with a TLS listener (tern certificates for localhost) and a plain one.
fn doctor_setup(tag: &str) -> (TempDir, Mosquitto, u16, u16) {
    let d = TempDir::new(tag);
    let pki = d.join("pki");
    tern(&d, &["pki", "ca", "--dir", s(&pki)]);
    tern(
        &d,
        &[
            "pki",
            "server",
            "--dir",
            s(&pki),
            "--host",
            "localhost",
            "--ip",
            "127.0.0.1",
        ],
    );
    let [tls, plain] = free_ports();
    let conf = format!(
        "{}listener {plain} 127.0.0.1\n",
        tls_listener(tls, &pki, "")
    );
    let m = Mosquitto::start(&d, &conf, &[tls, plain]);
    (d, m, tls, plain)
}

#[test]
fn doctor_success() {
    let (d, m, tls, _) = doctor_setup("doctor-ok");
    let ca = d.join("pki/ca.crt");
    let (code, out, err) = tern_any(
        &d,
        &["doctor", &format!("localhost:{tls}"), "--cafile", s(&ca)],
    );
    assert_eq!(code, 0, "{out}\n{err}\n{}", m.log_text());
    assert!(out.contains("verdict: OK"), "{out}");
    assert!(out.contains("chains to"), "{out}");
    assert!(out.contains("\"localhost\" matches DNS:localhost"), "{out}");
    assert!(out.contains("MQTT: CONNECT accepted"), "{out}");
    assert!(out.contains("TLS 1."), "{out}");
    assert!(out.contains("client certificate: not requested"), "{out}");
}

#[test]
fn doctor_wrong_ca() {
    let (d, _m, tls, _) = doctor_setup("doctor-ca");
    tern(
        &d,
        &[
            "pki",
            "ca",
            "--dir",
            s(&d.join("other")),
            "--cn",
            "Other CA",
        ],
    );
    let other = d.join("other/ca.crt");
    let (code, out, _) = tern_any(
        &d,
        &["doctor", &format!("localhost:{tls}"), "--cafile", s(&other)],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("does not chain to"), "{out}");
    assert!(
        out.contains(
            "most important: the server's certificate (issuer CN=tern CA) does not chain to"
        ),
        "{out}"
    );
}

#[test]
fn doctor_wrong_host_name() {
    let (d, _m, tls, _) = doctor_setup("doctor-name");
    let ca = d.join("pki/ca.crt");
    let (code, out, _) = tern_any(
        &d,
        &[
            "doctor",
            &format!("127.0.0.1:{tls}"),
            "--cafile",
            s(&ca),
            "--servername",
            "broker.example.com",
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("\"broker.example.com\" does not match the certificate"),
        "{out}"
    );
    assert!(
        out.contains("tern pki server --host broker.example.com"),
        "{out}"
    );
}

#[test]
fn doctor_plain_mqtt_port() {
    let (d, _m, _, plain) = doctor_setup("doctor-plain");
    let ca = d.join("pki/ca.crt");
    let (code, out, _) = tern_any(
        &d,
        &["doctor", &format!("localhost:{plain}"), "--cafile", s(&ca)],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("is a plain MQTT (non-TLS) port"), "{out}");
}

#[test]
fn doctor_tutorial_certificate_only_passes_cn_fallback() {
    let d = TempDir::new("doctor-tutorial");
    tutorial_pki(&d, &[]);
    // Make the tutorial's certificate name this machine, as users do.
    openssl(
        &d,
        &[
            "req",
            "-new",
            "-out",
            "local.csr",
            "-key",
            "server.key",
            "-subj",
            "/CN=localhost",
        ],
    );
    openssl(
        &d,
        &[
            "x509",
            "-req",
            "-in",
            "local.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "3650",
        ],
    );
    let port = free_port();
    let conf = format!(
        "listener {port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\nallow_anonymous true\n",
        s(&d.join("ca.crt")),
        s(&d.join("server.crt")),
        s(&d.join("server.key"))
    );
    let m = Mosquitto::start(&d, &conf, &[port]);
    // libmosquitto accepts it through the CN fallback...
    let (pub_out, sub_out) = pub_sub(port, &d.join("ca.crt"), None, "tutorial");
    assert!(pub_out.status.success(), "{}", m.log_text());
    assert_eq!(String::from_utf8_lossy(&sub_out.stdout).trim(), "tutorial");
    // ...but a strict client would not, and doctor says so.
    let (code, out, _) = tern_any(
        &d,
        &[
            "doctor",
            &format!("localhost:{port}"),
            "--cafile",
            s(&d.join("ca.crt")),
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("only libmosquitto's CN fallback accepts it"),
        "{out}"
    );
    assert!(out.contains("tern pki server --host localhost"), "{out}");
}

/// A server certificate for localhost / 127.0.0.1 signed by the tern CA in `pki`, made by
/// `openssl ca` with explicit dates (YYYYMMDDHHMMSSZ), written to pki/NAME.crt and NAME.key.
fn openssl_server_cert_with_dates(d: &TempDir, pki: &Path, name: &str, start: &str, end: &str) {
    let work = d.join(&format!("openssl-ca-{name}"));
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("index.txt"), "").unwrap();
    std::fs::write(work.join("serial"), "1000\n").unwrap();
    let cnf = work.join("ca.cnf");
    std::fs::write(
        &cnf,
        format!(
            "[ca]\ndefault_ca = d\n[d]\ndatabase = {w}/index.txt\nnew_certs_dir = {w}\n\
             serial = {w}/serial\ndefault_md = sha256\npolicy = p\nx509_extensions = ext\n\
             [p]\ncommonName = supplied\n[ext]\nbasicConstraints = critical,CA:FALSE\n\
             keyUsage = critical,digitalSignature\nextendedKeyUsage = serverAuth\n\
             subjectAltName = DNS:localhost,IP:127.0.0.1\n",
            w = s(&work)
        ),
    )
    .unwrap();
    let key = pki.join(format!("{name}.key"));
    let csr = work.join("server.csr");
    openssl(
        d,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            s(&key),
            "-out",
            s(&csr),
            "-subj",
            "/CN=localhost",
        ],
    );
    openssl(
        d,
        &[
            "ca",
            "-batch",
            "-notext",
            "-config",
            s(&cnf),
            "-cert",
            s(&pki.join("ca.crt")),
            "-keyfile",
            s(&pki.join("ca.key")),
            "-in",
            s(&csr),
            "-out",
            s(&pki.join(format!("{name}.crt"))),
            "-startdate",
            start,
            "-enddate",
            end,
        ],
    );
}

/// Runs `tern doctor localhost:PORT --cafile ca.crt` against a mosquitto serving
/// pki/NAME.crt, made by openssl with the given dates; returns (exit code, stdout).
fn doctor_on_dated_certificate(tag: &str, start: &str, end: &str) -> (i32, String) {
    let d = TempDir::new(tag);
    let pki = d.join("pki");
    tern(&d, &["pki", "ca", "--dir", s(&pki)]);
    openssl_server_cert_with_dates(&d, &pki, "dated", start, end);
    let port = free_port();
    let conf = format!(
        "listener {port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\nallow_anonymous true\n",
        s(&pki.join("ca.crt")),
        s(&pki.join("dated.crt")),
        s(&pki.join("dated.key"))
    );
    let m = Mosquitto::start(&d, &conf, &[port]);
    let (code, out, err) = tern_any(
        &d,
        &[
            "doctor",
            &format!("localhost:{port}"),
            "--cafile",
            s(&pki.join("ca.crt")),
        ],
    );
    assert!(!err.contains("panicked"), "{err}");
    drop(m);
    (code, out)
}

#[test]
fn doctor_expired_server_certificate_names_the_dates() {
    let (code, out) =
        doctor_on_dated_certificate("doctor-expired", "20200101000000Z", "20210101000000Z");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("dates: EXPIRED on 2021-01-01 00:00:00 UTC (this machine's clock: "),
        "{out}"
    );
    assert!(
        out.contains("verdict: FAIL, a strict TLS client would refuse this server: it has expired"),
        "{out}"
    );
    assert!(
        out.contains(
            "most important: the certificate expired on 2021-01-01 00:00:00 UTC; reissue it with: tern pki server --host localhost --ip 127.0.0.1"
        ),
        "{out}"
    );
    // It was signed by this CA: expiry is the only problem named.
    assert!(out.contains("chain: chains to"), "{out}");
    assert!(!out.contains("does not chain"), "{out}");
}

#[test]
fn doctor_not_yet_valid_server_certificate_names_the_dates() {
    let (code, out) =
        doctor_on_dated_certificate("doctor-future", "20400101000000Z", "20410101000000Z");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("dates: NOT YET VALID until 2040-01-01 00:00:00 UTC (this machine's clock: "),
        "{out}"
    );
    assert!(
        out.contains(
            "verdict: FAIL, a strict TLS client would refuse this server: it is not valid yet"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "most important: the certificate is not valid before 2040-01-01 00:00:00 UTC: check the clocks"
        ),
        "{out}"
    );
    assert!(out.contains("chain: chains to"), "{out}");
    assert!(!out.contains("does not chain"), "{out}");
}

/// The date in `notAfter=YYYY-MM-DD hh:mm:ssZ` (openssl x509 -enddate -dateopt iso_8601).
fn not_after_date(d: &TempDir, cert: &Path) -> time::Date {
    let out = openssl(
        d,
        &[
            "x509",
            "-noout",
            "-enddate",
            "-dateopt",
            "iso_8601",
            "-in",
            s(cert),
        ],
    );
    let ymd = out
        .trim()
        .strip_prefix("notAfter=")
        .and_then(|v| v.get(..10))
        .unwrap_or_else(|| panic!("unexpected openssl output: {out}"));
    let n: Vec<i32> = ymd.split('-').map(|p| p.parse().unwrap()).collect();
    let month = time::Month::try_from(u8::try_from(n[1]).unwrap()).unwrap();
    time::Date::from_calendar_date(n[0], month, u8::try_from(n[2]).unwrap()).unwrap()
}

#[test]
fn ca_days_on_the_command_line_sets_not_after() {
    let d = TempDir::new("ca-days");
    let today = time::OffsetDateTime::now_utc().date();
    for days in [30i64, 400] {
        let pki = d.join(&format!("pki-{days}"));
        tern(
            &d,
            &["pki", "ca", "--dir", s(&pki), "--days", &days.to_string()],
        );
        let end = not_after_date(&d, &pki.join("ca.crt"));
        let out = (end - today).whole_days();
        assert!(
            (days - 1..=days + 1).contains(&out),
            "--days {days} gave notAfter {end}, {out} days from {today}"
        );
    }
}

#[test]
fn revoke_by_serial_number_puts_that_serial_in_the_crl() {
    let d = TempDir::new("revoke-serial");
    let pki = d.join("pki");
    tern(&d, &["pki", "ca", "--dir", s(&pki)]);
    tern(&d, &["pki", "client", "keep", "--dir", s(&pki)]);
    tern(&d, &["pki", "client", "lost", "--dir", s(&pki)]);
    let serial_of = |name: &str| {
        let out = openssl(
            &d,
            &[
                "x509",
                "-noout",
                "-serial",
                "-in",
                s(&pki.join(format!("{name}.crt"))),
            ],
        );
        out.trim().strip_prefix("serial=").unwrap().to_owned()
    };
    let lost = serial_of("lost");
    let keep = serial_of("keep");
    // As openssl prints it, in lower case to show case does not matter.
    let out = tern(
        &d,
        &["pki", "revoke", &lost.to_lowercase(), "--dir", s(&pki)],
    );
    // tern writes serials without leading zeros.
    let short = lost.trim_start_matches('0');
    assert!(
        out.contains(&format!("revoked lost (serial {short})")),
        "{out}"
    );
    let crl = openssl(
        &d,
        &[
            "crl",
            "-in",
            s(&pki.join("ca.crl")),
            "-CAfile",
            s(&pki.join("ca.crt")),
            "-noout",
            "-text",
        ],
    );
    assert!(
        crl.contains(&format!("Serial Number: {lost}\n")),
        "serial {lost} not in the CRL:\n{crl}"
    );
    assert!(!crl.contains(&keep), "{crl}");
    // And openssl refuses the revoked certificate with that CRL, not the other one.
    let verify = |name: &str| {
        run_timeout(
            Command::new("openssl")
                .args(["verify", "-crl_check", "-CAfile"])
                .arg(pki.join("ca.crt"))
                .arg("-CRLfile")
                .arg(pki.join("ca.crl"))
                .arg(pki.join(format!("{name}.crt"))),
            30,
        )
    };
    let v = verify("lost");
    assert!(!v.status.success(), "{v:?}");
    assert!(
        String::from_utf8_lossy(&v.stdout).contains("certificate revoked")
            || String::from_utf8_lossy(&v.stderr).contains("certificate revoked"),
        "{v:?}"
    );
    assert!(verify("keep").status.success());
}
