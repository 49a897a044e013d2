//! `tern pub` and `tern sub` as black boxes against a real broker (mosquitto by default),
//! side by side with mosquitto_pub/mosquitto_sub: output byte for byte, flags, exit codes,
//! TLS. Every wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../tern-client/tests/common/mod.rs"]
mod common;

use std::io::Write;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Broker, Pki, TempDir, wait_until};

const TERN: &str = env!("CARGO_BIN_EXE_tern");
const LIMIT: Duration = Duration::from_secs(15);

/// A broker that logs everything, so tests can wait for SUBACK/UNSUBACK by client id.
fn broker() -> Broker {
    Broker::start_with(&[], "log_type all\n")
}

fn spawn(prog: &str, args: &[&str]) -> Child {
    Command::new(prog)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {prog}: {e} (apt-get install mosquitto-clients)"))
}

/// Waits (bounded) for a child and returns its output.
fn finish(mut child: Child, what: &str) -> Output {
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{what} did not finish within {LIMIT:?}; stdout {:?} stderr {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn run(prog: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut c = spawn(prog, args);
    if let Some(input) = stdin {
        c.stdin.take().unwrap().write_all(input).unwrap();
    }
    drop(c.stdin.take());
    finish(c, &format!("{prog} {args:?}"))
}

fn tern(args: &[&str]) -> Output {
    run(TERN, args, None)
}

fn ok(out: &Output) -> &Output {
    assert!(
        out.status.success(),
        "exit {:?}; stderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn wait_log(b: &Broker, needle: &str) {
    assert!(
        wait_until(LIMIT, || b.log().contains(needle)),
        "the broker log never showed {needle:?}:\n{}",
        b.log()
    );
}

/// Waits until the broker has sent SUBACK to `id`.
fn wait_subscribed(b: &Broker, id: &str) {
    wait_log(b, &format!("Sending SUBACK to {id}"));
}

fn port(b: &Broker) -> String {
    b.port.to_string()
}

fn mpub(b: &Broker, args: &[&str]) {
    let p = port(b);
    let mut all = vec!["-h", "127.0.0.1", "-p", &p];
    all.extend_from_slice(args);
    ok(&run("mosquitto_pub", &all, None));
}

/// Publishes the comparison set; `v5` adds properties.
fn publish_set(b: &Broker, v5: bool, dir: &TempDir) {
    let bin: Vec<u8> = (0..=255u8).collect();
    let f = dir.join("bin");
    std::fs::write(&f, &bin).unwrap();
    let f = f.display().to_string();
    let v: &[&str] = if v5 { &["-V", "5"] } else { &[] };
    let with =
        |extra: &[&str]| -> Vec<String> { v.iter().chain(extra).map(|s| s.to_string()).collect() };
    // Subscribers may deliver QoS 2 on PUBREL (libmosquitto does) or on PUBLISH (tern
    // does): a pause after each message keeps the order the same for both.
    let call = |args: Vec<String>| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        mpub(b, &refs);
        std::thread::sleep(Duration::from_millis(100));
    };
    call(with(&["-t", "cmp/a", "-m", "hello world"]));
    call(with(&["-t", "cmp/bin", "-f", &f, "-q", "1"]));
    call(with(&["-t", "cmp/empty", "-n", "-q", "2"]));
    call(with(&["-t", "cmp/nl", "-m", "a\nb", "-q", "1"]));
    call(with(&["-t", "cmp/pct", "-m", "100% %t \\n @Y", "-q", "2"]));
    if v5 {
        call(with(&[
            "-t",
            "cmp/props",
            "-m",
            "{\"x\": 1}",
            "-q",
            "1",
            "-D",
            "publish",
            "payload-format-indicator",
            "1",
            "-D",
            "publish",
            "content-type",
            "application/json",
            "-D",
            "publish",
            "response-topic",
            "reply/to",
            "-D",
            "publish",
            "correlation-data",
            "corr-1",
            "-D",
            "publish",
            "user-property",
            "k1",
            "v1",
            "-D",
            "publish",
            "user-property",
            "k2",
            "v 2",
        ]));
    }
    call(with(&["-t", "cmp/last", "-m", "bye"]));
}

/// Runs mosquitto_sub and tern sub with the same arguments on the same messages and
/// compares their stdout. `mask` replaces digits (for time codes) before comparing.
fn side_by_side(v5: bool, sub_args: &[&str], mask: bool) {
    let b = broker();
    let dir = TempDir::new("cmp");
    let p = port(&b);
    // A retained message published before the subscribers start.
    let vflag: &[&str] = if v5 { &["-V", "5"] } else { &[] };
    let mut r = vec!["-t", "cmp/retained", "-m", "kept", "-r", "-q", "1"];
    r.extend_from_slice(vflag);
    mpub(&b, &r);
    let count = if v5 { "8" } else { "7" };
    let mk = |id: &str| -> Vec<String> {
        let mut a: Vec<String> = [
            "-h",
            "127.0.0.1",
            "-p",
            &p,
            "-t",
            "cmp/#",
            "-q",
            "2",
            "-C",
            count,
            "-i",
            id,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(vflag.iter().map(|s| s.to_string()));
        a.extend(sub_args.iter().map(|s| s.to_string()));
        a
    };
    let ma = mk("cmp-mosq");
    let mut ta = mk("cmp-tern");
    ta.insert(0, "sub".to_owned());
    let m = spawn(
        "mosquitto_sub",
        &ma.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let t = spawn(TERN, &ta.iter().map(String::as_str).collect::<Vec<_>>());
    wait_subscribed(&b, "cmp-mosq");
    wait_subscribed(&b, "cmp-tern");
    publish_set(&b, v5, &dir);
    let mo = finish(m, "mosquitto_sub");
    let to = finish(t, "tern sub");
    ok(&mo);
    ok(&to);
    let prep = |v: &[u8]| -> Vec<u8> {
        if mask {
            v.iter()
                .map(|c| if c.is_ascii_digit() { b'#' } else { *c })
                .collect()
        } else {
            v.to_vec()
        }
    };
    assert!(!mo.stdout.is_empty());
    assert!(
        prep(&to.stdout) == prep(&mo.stdout),
        "tern sub {sub_args:?} (v5={v5}) differs from mosquitto_sub\n tern: {:?}\n mosq: {:?}",
        String::from_utf8_lossy(&prep(&to.stdout)),
        String::from_utf8_lossy(&prep(&mo.stdout))
    );
}

#[test]
fn output_matches_mosquitto_sub_plain_v311() {
    side_by_side(false, &[], false);
}

#[test]
fn output_matches_mosquitto_sub_verbose_v311() {
    side_by_side(false, &["-v"], false);
}

#[test]
fn output_matches_mosquitto_sub_verbose_no_eol_v5() {
    side_by_side(true, &["-v", "-N"], false);
}

#[test]
fn output_matches_mosquitto_sub_format_v311() {
    side_by_side(
        false,
        &[
            "-F",
            "%t %p %q %r %l %x %X %m|%-8t|%8.3t|%05l|%-4l|%6p|%%|\\t@@",
        ],
        false,
    );
}

#[test]
fn output_matches_mosquitto_sub_format_properties_v5() {
    side_by_side(
        true,
        &[
            "-F",
            "%t %p %q %r %l %x %P %C %R %D %F %S %A|%10C|%-12R|%3F",
        ],
        false,
    );
}

#[test]
fn output_matches_mosquitto_sub_time_codes_masked() {
    side_by_side(
        true,
        &["-F", "%t %p %q %r %l %x %I %U %P %C @Y-@m-@dT@H:@M:@S @N"],
        true,
    );
}

#[test]
fn output_matches_mosquitto_sub_json_masked() {
    side_by_side(true, &["-F", "%j"], true);
}

#[test]
fn output_matches_mosquitto_sub_json_pretty_masked() {
    side_by_side(false, &["-F", "%j", "--pretty"], true);
}

/// Starts `tern sub` with `args` and waits until it is subscribed (client id `id`).
fn tern_sub_bg(b: &Broker, id: &str, args: &[&str]) -> Child {
    let p = port(b);
    let mut all = vec!["sub", "-h", "127.0.0.1", "-p", &p, "-i", id];
    all.extend_from_slice(args);
    let c = spawn(TERN, &all);
    wait_subscribed(b, id);
    c
}

fn tern_pub(b: &Broker, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let p = port(b);
    let mut all = vec!["pub", "-h", "127.0.0.1", "-p", &p];
    all.extend_from_slice(args);
    let out = run(TERN, &all, stdin);
    ok(&out);
    out
}

#[test]
fn pub_stdin_lines_l() {
    let b = broker();
    let s = tern_sub_bg(&b, "l", &["-t", "l", "-v", "-C", "4"]);
    tern_pub(&b, &["-t", "l", "-l", "-q", "1"], Some(b"a\n\nb\r\nc"));
    let out = finish(s, "tern sub");
    assert_eq!(out.stdout, b"l a\nl (null)\nl b\r\nl c\n");
}

#[test]
fn pub_null_file_stdin_and_repeat() {
    let b = broker();
    let dir = TempDir::new("pubf");
    let f = dir.join("payload");
    std::fs::write(&f, [0u8, 1, 2, 0xFF]).unwrap();
    let s = tern_sub_bg(&b, "nfs", &["-t", "x/#", "-F", "%t %x", "-C", "6"]);
    tern_pub(&b, &["-t", "x/n", "-n"], None);
    tern_pub(
        &b,
        &["-t", "x/f", "-f", &f.display().to_string(), "-q", "2"],
        None,
    );
    tern_pub(&b, &["-t", "x/s", "-s"], Some(b"whole\nstdin\n"));
    let start = Instant::now();
    tern_pub(
        &b,
        &[
            "-t",
            "x/r",
            "-m",
            "r",
            "--repeat",
            "3",
            "--repeat-delay",
            "0.2",
        ],
        None,
    );
    assert!(
        start.elapsed() >= Duration::from_millis(400),
        "--repeat-delay is honoured"
    );
    let out = finish(s, "tern sub");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "x/n \nx/f 000102ff\nx/s 77686f6c650a737464696e0a\nx/r 72\nx/r 72\nx/r 72\n"
    );
}

#[test]
fn pub_refuses_bad_arguments() {
    for args in [
        &["pub", "-t", "a/+", "-m", "x"][..],
        &["pub", "-t", "a", "-m", "x", "-n"],
        &["pub", "-t", "a"],
        &["pub", "-m", "x"],
        &["pub", "-t", "a", "-m", "x", "-q", "3"],
        &["pub", "-t", "a", "-m", "x", "-V", "7"],
    ] {
        let out = tern(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?} explains itself");
    }
}

#[test]
fn sub_count_and_timeout_exit_codes() {
    let b = broker();
    let p = port(&b);
    let start = Instant::now();
    let out = tern(&[
        "sub",
        "-h",
        "127.0.0.1",
        "-p",
        &p,
        "-t",
        "nothing",
        "-W",
        "1",
    ]);
    assert_eq!(
        out.status.code(),
        Some(27),
        "-W expiry exits like mosquitto_sub"
    );
    assert!(start.elapsed() >= Duration::from_secs(1));
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), "Timed out");
    let s = tern_sub_bg(&b, "c2", &["-t", "c", "-C", "2"]);
    for m in ["1", "2", "3"] {
        mpub(&b, &["-t", "c", "-m", m]);
    }
    let out = finish(s, "tern sub -C 2");
    assert!(out.status.success());
    assert_eq!(out.stdout, b"1\n2\n");
}

#[test]
fn sub_exit_after_subscribe_e() {
    let b = broker();
    let out = tern(&["sub", "-h", "127.0.0.1", "-p", &port(&b), "-t", "e", "-E"]);
    ok(&out);
    assert!(out.stdout.is_empty());
}

#[test]
fn sub_hides_retained_with_r_and_retained_only_stops_at_live() {
    let b = broker();
    mpub(&b, &["-t", "rr/old", "-m", "stale", "-r"]);
    let s = tern_sub_bg(&b, "rr", &["-t", "rr/#", "-R", "-v", "-C", "1"]);
    mpub(&b, &["-t", "rr/new", "-m", "fresh"]);
    assert_eq!(finish(s, "tern sub -R").stdout, b"rr/new fresh\n");

    let s = tern_sub_bg(&b, "ro", &["-t", "rr/#", "--retained-only", "-v"]);
    mpub(&b, &["-t", "rr/new", "-m", "live"]);
    let out = finish(s, "tern sub --retained-only");
    assert!(out.status.success());
    assert_eq!(out.stdout, b"rr/old stale\n");
}

#[test]
fn sub_remove_retained() {
    let b = broker();
    mpub(&b, &["-t", "rm/a", "-m", "1", "-r"]);
    mpub(&b, &["-t", "rm/b", "-m", "2", "-r"]);
    let p = port(&b);
    let out = tern(&[
        "sub",
        "-h",
        "127.0.0.1",
        "-p",
        &p,
        "-t",
        "rm/#",
        "--remove-retained",
        "-C",
        "2",
        "-v",
    ]);
    ok(&out);
    assert_eq!(out.stdout, b"rm/a 1\nrm/b 2\n");
    // Nothing retained any more.
    let out = tern(&["sub", "-h", "127.0.0.1", "-p", &p, "-t", "rm/#", "-W", "1"]);
    assert_eq!(out.status.code(), Some(27));
    assert!(
        out.stdout.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn sub_filter_out_t() {
    let b = broker();
    let s = tern_sub_bg(&b, "ft", &["-t", "f/#", "-T", "f/noise/#", "-v", "-C", "1"]);
    mpub(&b, &["-t", "f/noise/x", "-m", "n"]);
    mpub(&b, &["-t", "f/signal", "-m", "s"]);
    assert_eq!(finish(s, "tern sub -T").stdout, b"f/signal s\n");
}

#[test]
fn sub_unsubscribe_u() {
    let b = broker();
    let p = port(&b);
    // A persistent session subscribed to u/#, then a run that removes it with -U.
    ok(&tern(&[
        "sub",
        "-h",
        "127.0.0.1",
        "-p",
        &p,
        "-i",
        "uu",
        "-c",
        "-q",
        "1",
        "-t",
        "u/#",
        "-E",
    ]));
    ok(&tern(&[
        "sub",
        "-h",
        "127.0.0.1",
        "-p",
        &p,
        "-i",
        "uu",
        "-c",
        "-q",
        "1",
        "-t",
        "other",
        "-U",
        "u/#",
        "-E",
    ]));
    wait_log(&b, "Sending UNSUBACK to uu");
    mpub(&b, &["-t", "u/1", "-m", "after", "-q", "1"]);
    mpub(&b, &["-t", "other", "-m", "o", "-q", "1"]);
    let out = tern(&[
        "sub",
        "-h",
        "127.0.0.1",
        "-p",
        &p,
        "-i",
        "uu",
        "-c",
        "-q",
        "1",
        "-t",
        "other",
        "-C",
        "1",
        "-v",
    ]);
    ok(&out);
    assert_eq!(out.stdout, b"other o\n", "u/1 was not kept for the session");
}

#[test]
fn v5_properties_and_will_flags() {
    let b = broker();
    let s = tern_sub_bg(
        &b,
        "w5",
        &[
            "-V",
            "5",
            "-t",
            "p5",
            "-t",
            "will/t",
            "-F",
            "%t %p %P %C",
            "-C",
            "2",
        ],
    );
    tern_pub(
        &b,
        &[
            "-V",
            "5",
            "-t",
            "p5",
            "-m",
            "m",
            "-D",
            "publish",
            "user-property",
            "a",
            "b",
            "-D",
            "publish",
            "content-type",
            "text/x",
        ],
        None,
    );
    // A client with a will that dies: the will is published.
    let p = port(&b);
    let mut dying = spawn(
        TERN,
        &[
            "sub",
            "-h",
            "127.0.0.1",
            "-p",
            &p,
            "-i",
            "dying",
            "-t",
            "z",
            "--will-topic",
            "will/t",
            "--will-payload",
            "gone",
            "--will-qos",
            "1",
        ],
    );
    wait_subscribed(&b, "dying");
    dying.kill().unwrap();
    let _ = dying.wait();
    let out = finish(s, "tern sub");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "p5 m a:b text/x\nwill/t gone  \n"
    );
}

#[test]
fn exit_code_on_refused_connection() {
    let b = Broker::start_with(&[], "allow_anonymous false\npassword_file /dev/null\n");
    let p = port(&b);
    let out = tern(&["pub", "-h", "127.0.0.1", "-p", &p, "-t", "t", "-m", "x"]);
    assert_eq!(out.status.code(), Some(5), "CONNACK return code 5 (3.1.1)");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not authorized"));
    let out = tern(&["sub", "-h", "127.0.0.1", "-p", &p, "-t", "t", "-V", "5"]);
    assert_eq!(
        out.status.code(),
        Some(0x87),
        "CONNACK reason code 0x87 (5.0)"
    );
    // The same codes as mosquitto's own tools.
    let m = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &p, "-t", "t", "-m", "x"])
        .output()
        .unwrap();
    assert_eq!(m.status.code(), Some(5));
}

#[test]
fn exit_code_when_nothing_listens() {
    let port = common::free_port().to_string();
    let out = tern(&["pub", "-h", "127.0.0.1", "-p", &port, "-t", "t", "-m", "x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is the broker running"));
}

#[test]
fn url_flag() {
    let b = broker();
    let url = format!("mqtt://127.0.0.1:{}/url/topic", b.port);
    let s = tern_sub_bg(&b, "url", &["-L", &url, "-v", "-C", "1"]);
    ok(&tern(&["pub", "-L", &url, "-m", "via url"]));
    assert_eq!(finish(s, "tern sub -L").stdout, b"url/topic via url\n");
}

#[test]
fn tls_cafile_pinning_and_hostname_errors() {
    let pki = Pki::new();
    let b = Broker::start_with(
        &[
            ("san", &pki.listener("server.crt", "server.key", false)),
            ("v1", &pki.listener("v1.crt", "v1.key", false)),
            ("other", &pki.listener("other.crt", "other.key", false)),
        ],
        "",
    );
    let san = b.port_of("san").to_string();
    let v1 = b.port_of("v1").to_string();
    let ca = pki.p("ca.crt");
    ok(&tern(&[
        "pub",
        "-h",
        "localhost",
        "-p",
        &san,
        "--cafile",
        &ca,
        "-t",
        "t",
        "-m",
        "x",
        "-q",
        "1",
    ]));
    // By IP with a certificate for another name: plain words and the fix.
    let out = tern(&[
        "pub",
        "-h",
        "127.0.0.1",
        "-p",
        &v1,
        "--cafile",
        &ca,
        "-t",
        "t",
        "-m",
        "x",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("X.509 version 1") && err.contains("--fingerprint"),
        "{err}"
    );
    // The tutorial's v1 certificate, pinned by its SHA-1 fingerprint as an ESP8266 would.
    let fp = Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-fingerprint",
            "-sha1",
            "-in",
            &pki.p("v1.crt"),
        ])
        .output()
        .unwrap();
    let fp = String::from_utf8(fp.stdout).unwrap();
    let fp = fp.trim().split_once('=').unwrap().1.to_owned();
    ok(&tern(&[
        "pub",
        "-h",
        "127.0.0.1",
        "-p",
        &v1,
        "--fingerprint",
        &fp,
        "-t",
        "t",
        "-m",
        "x",
        "-q",
        "1",
    ]));
    let wrong = "00:".repeat(19) + "00";
    let out = tern(&[
        "pub",
        "-h",
        "127.0.0.1",
        "-p",
        &v1,
        "--fingerprint",
        &wrong,
        "-t",
        "t",
        "-m",
        "x",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("does not match the pinned") && err.contains(&fp),
        "{err}"
    );
    // Name mismatch: a certificate for broker.local reached by IP.
    let other = b.port_of("other").to_string();
    let out = tern(&[
        "sub",
        "-h",
        "127.0.0.1",
        "-p",
        &other,
        "--cafile",
        &ca,
        "-t",
        "t",
        "-E",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the broker's certificate is for 'broker.local', not '127.0.0.1'")
            && err.contains("tern pki server --ip 127.0.0.1"),
        "{err}"
    );
    // --insecure skips only the name check.
    ok(&tern(&[
        "sub",
        "-h",
        "127.0.0.1",
        "-p",
        &other,
        "--cafile",
        &ca,
        "--insecure",
        "-t",
        "t",
        "-E",
    ]));
}
