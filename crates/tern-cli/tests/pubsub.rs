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
    let count = if v5 { 7 } else { 6 };
    compare_with(v5, sub_args, mask, count, &|b, dir| publish_set(b, v5, dir));
}

/// Like [`side_by_side`] with the messages `publish` sends (`count` of them, plus the
/// retained one); returns (mosquitto_sub, tern sub) outputs.
fn compare_with(
    v5: bool,
    sub_args: &[&str],
    mask: bool,
    count: usize,
    publish: &dyn Fn(&Broker, &TempDir),
) -> (Output, Output) {
    let b = broker();
    let dir = TempDir::new("cmp");
    let p = port(&b);
    // A retained message published before the subscribers start.
    let vflag: &[&str] = if v5 { &["-V", "5"] } else { &[] };
    let mut r = vec!["-t", "cmp/retained", "-m", "kept", "-r", "-q", "1"];
    r.extend_from_slice(vflag);
    mpub(&b, &r);
    let count = (count + 1).to_string();
    let count = count.as_str();
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
    publish(&b, &dir);
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
    (mo, to)
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

#[test]
fn output_matches_mosquitto_sub_json_payload_capital_j_masked_v5() {
    side_by_side(true, &["-F", "%J"], true);
}

#[test]
fn output_matches_mosquitto_sub_json_payload_capital_j_pretty_masked_v311() {
    side_by_side(false, &["-F", "%J", "--pretty"], true);
}

/// Payloads for `%J`: JSON that cJSON re-prints differently (numbers, escapes, spacing,
/// nesting, duplicate keys, lenient numbers) and text it refuses.
const JSON_PAYLOADS: &[&str] = &[
    r#"{"a": [1, 2.50, -0, 1e2, 1E-7, 0.1, 123456789012, 3.14159265358979, -2147483649], "b": {"c": [], "d": {}, "n": [{"x": [1, {"y": 2}]}]}, "e": "x\/y\u00e9\ud83d\ude00\n\t", "f": true, "g": null, "h": false}"#,
    " \t [ {\"k\" :1} , [ ] , \"s\" ] \n",
    r#""just a string""#,
    "42",
    "01",
    "1.",
    "1e999",
    "[1e15, 1e16, 123456789012345678, 0.1e-3, 0.00001, 1.5e300, -1e-300, 0.1, 1.0000000000000002, 100000000000000000000, 2147483647, 2147483648]",
    r#"{"dup":1,"dup":2}"#,
    r#"{"a":1,}"#,
    "[1,]",
    r#"{"a" 1}"#,
    "tru",
    r#""bad \q escape""#,
    "{} x",
    "-",
    r#"{"a":"\ud800"}"#,
];

/// Replaces the value of every `"tst"` field (the time of printing) with `T`.
fn mask_tst(out: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(out);
    let mut res = String::new();
    let mut rest: &str = &text;
    while let Some(at) = rest.find("\"tst\":") {
        let (head, tail) = rest.split_at(at + 6);
        res.push_str(head);
        let open = tail.find('"').unwrap();
        let close = tail[open + 1..].find('"').unwrap() + open + 1;
        res.push_str(&tail[..open]);
        res.push_str("\"T\"");
        rest = &tail[close + 1..];
    }
    res.push_str(rest);
    res.into_bytes()
}

fn publish_json_payloads(b: &Broker, v5: bool) {
    for (i, payload) in JSON_PAYLOADS.iter().enumerate() {
        let topic = format!("cmp/j{i}");
        let mut args = vec!["-t", &topic, "-m", payload];
        if v5 {
            args.extend(["-V", "5"]);
        }
        mpub(b, &args);
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn output_matches_mosquitto_sub_json_payload_forms_capital_j() {
    for pretty in [false, true] {
        let args: &[&str] = if pretty {
            &["-F", "%J", "--pretty"]
        } else {
            &["-F", "%J"]
        };
        let (mo, to) = compare_with(true, args, true, JSON_PAYLOADS.len(), &|b, _| {
            publish_json_payloads(b, true)
        });
        // Digits masked above; here only the time stamps are, so numbers count too.
        assert_eq!(
            String::from_utf8_lossy(&mask_tst(&to.stdout)),
            String::from_utf8_lossy(&mask_tst(&mo.stdout)),
            "pretty={pretty}"
        );
        // The same complaints on stderr, in the same order.
        assert_eq!(
            String::from_utf8_lossy(&to.stderr),
            String::from_utf8_lossy(&mo.stderr),
            "pretty={pretty}"
        );
    }
}

#[test]
fn output_matches_mosquitto_sub_backslash_escapes() {
    // Every escape `man mosquitto_sub` lists: \\ \0 \a \e \n \r \t \v.
    side_by_side(false, &["-F", r"\\|\0|\a|\e|\n|\r|\t|\v|%t\0%p\\"], false);
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

/// Publishes retained `{pre}/a`, `{pre}/noise/x` and `{pre}/b`.
fn seed_retained(b: &Broker, pre: &str) {
    for (t, m) in [("a", "1"), ("noise/x", "n"), ("b", "2")] {
        mpub(b, &["-t", &format!("{pre}/{t}"), "-m", m, "-r", "-q", "1"]);
    }
}

/// What is still retained under `{pre}/#`, as sorted `topic payload` lines.
fn still_retained(b: &Broker, pre: &str) -> String {
    let p = port(b);
    let filter = format!("{pre}/#");
    let out = run(
        "mosquitto_sub",
        &["-h", "127.0.0.1", "-p", &p, "-t", &filter, "-v", "-W", "1"],
        None,
    );
    assert_eq!(out.status.code(), Some(27), "mosquitto_sub -W 1 times out");
    // Sorted: brokers may keep retained messages in any order.
    let mut lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| format!("{l}\n"))
        .collect();
    lines.sort();
    lines.concat()
}

/// Runs `prog` (mosquitto_sub, or tern with "sub" first) with --remove-retained and `extra`
/// on `{pre}/#` until -W 1 expires; returns (stdout, what is left retained, what a QoS 2
/// watcher saw as `topic qos length`).
fn remove_retained_run(
    b: &Broker,
    prog: &str,
    pre: &str,
    extra: &[&str],
) -> (String, String, String) {
    seed_retained(b, pre);
    let p = port(b);
    let filter = format!("{pre}/#");
    let noise = format!("{pre}/noise/#");
    let watch_id = format!("{pre}-watch");
    let watcher = spawn(
        "mosquitto_sub",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &p,
            "-i",
            &watch_id,
            "-t",
            &filter,
            "-q",
            "2",
            "-R",
            "-F",
            "%t %q %l",
            "-W",
            "3",
        ],
    );
    wait_subscribed(b, &watch_id);
    let mut args: Vec<&str> = if prog == TERN { vec!["sub"] } else { vec![] };
    args.extend([
        "-h",
        "127.0.0.1",
        "-p",
        &p,
        "-t",
        &filter,
        "-T",
        &noise,
        "--remove-retained",
        "-v",
        "-W",
        "1",
    ]);
    args.extend_from_slice(extra);
    let out = run(prog, &args, None);
    assert_eq!(
        out.status.code(),
        Some(27),
        "{prog} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let watched = finish(watcher, "mosquitto_sub watcher");
    (
        String::from_utf8(out.stdout).unwrap().replace(pre, "P"),
        still_retained(b, pre).replace(pre, "P"),
        String::from_utf8(watched.stdout).unwrap().replace(pre, "P"),
    )
}

#[test]
fn sub_remove_retained() {
    let b = broker();
    // -T: a filtered-out retained message is neither printed nor cleared; the others are
    // cleared at QoS 1 (the watcher subscribed at QoS 2 gets them at QoS 1).
    let t = remove_retained_run(&b, TERN, "rt", &[]);
    // The clearing messages come back (not retained, empty) and are printed too.
    assert_eq!(t.0, "P/a 1\nP/b 2\nP/a (null)\nP/b (null)\n");
    assert_eq!(t.1, "P/noise/x n\n", "only the filtered-out topic survives");
    assert_eq!(t.2, "P/a 1 0\nP/b 1 0\n", "cleared with QoS 1");
    let m = remove_retained_run(&b, "mosquitto_sub", "rm", &[]);
    assert_eq!(
        t, m,
        "tern sub (left) and mosquitto_sub (right) clear the same"
    );
    // -R: stale retained messages are skipped, so none is cleared.
    let t = remove_retained_run(&b, TERN, "rrt", &["-R"]);
    assert_eq!(t.0, "");
    assert_eq!(t.1, "P/a 1\nP/b 2\nP/noise/x n\n", "nothing was cleared");
    assert_eq!(t.2, "");
    let m = remove_retained_run(&b, "mosquitto_sub", "rrm", &["-R"]);
    assert_eq!(
        t, m,
        "with -R, tern sub (left) and mosquitto_sub (right) clear the same"
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

/// `-c` and `-x` are refused or accepted as by mosquitto_sub/mosquitto_pub: same exit code,
/// and a refusal says why (mosquitto's words, tern's words with the fix).
#[test]
fn session_flags_refused_and_accepted_like_mosquitto() {
    let b = broker();
    let p = port(&b);
    // (args, None if accepted or Some((what mosquitto says, what tern says))).
    let client_id = Some(("must provide a client id", "add -i ID"));
    type Refusal = Option<(&'static str, &'static str)>;
    let cases: &[(&[&str], Refusal)] = &[
        (&["-c"], client_id),
        (&["-c", "-I", "pre"], client_id),
        (&["-c", "-V", "5"], client_id),
        (&["-x", "-1", "-V", "5"], client_id),
        (&["-x", "∞", "-V", "5"], client_id),
        (&["-x", "4294967295", "-V", "5"], client_id),
        (
            &["-c", "-V", "5", "-x", "60"],
            // mosquitto_sub: "Invalid id and/or clean_session.", mosquitto_pub: "Invalid id."
            Some(("Invalid id", "add -i ID")),
        ),
        (
            &["-x", "abc", "-V", "5"],
            Some(("not a number", "not a number")),
        ),
        (
            &["-x", "-2", "-V", "5"],
            Some(("out of range", "out of range")),
        ),
        (
            &["-x", "4294967296", "-V", "5"],
            Some(("out of range", "out of range")),
        ),
        // Accepted: -x is ignored before MQTT 5; -1 is "never expires" with an id.
        (&["-x", "60"], None),
        (&["-x", "60", "-V", "5"], None),
        (&["-x", "0x10", "-V", "5"], None),
        (&["-c", "-i", "keep311"], None),
        (&["-c", "-i", "keep5", "-V", "5", "-x", "-1"], None),
        (&["-c", "-i", "keep5b", "-V", "5", "-x", "60"], None),
    ];
    for (tool, mosq) in [("sub", "mosquitto_sub"), ("pub", "mosquitto_pub")] {
        for (extra, refusal) in cases {
            // Each run keeps its session under its own id.
            let args_for = |who: &str| -> Vec<String> {
                let mut a: Vec<String> = ["-h", "127.0.0.1", "-p", &p, "-t", "sess"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                if tool == "sub" {
                    a.push("-E".into());
                } else {
                    a.extend(["-m".into(), "x".into()]);
                }
                a.extend(extra.iter().map(|x| {
                    if x.starts_with("keep") {
                        format!("{x}-{tool}-{who}")
                    } else {
                        (*x).to_owned()
                    }
                }));
                a
            };
            let ma = args_for("mosq");
            let args: Vec<&str> = ma.iter().map(String::as_str).collect();
            let m = run(mosq, &args, None);
            let ta = args_for("tern");
            let mut targs = vec![tool];
            targs.extend(ta.iter().map(String::as_str));
            let t = tern(&targs);
            let (merr, terr) = (
                String::from_utf8_lossy(&m.stderr),
                String::from_utf8_lossy(&t.stderr),
            );
            assert_eq!(
                t.status.code(),
                m.status.code(),
                "tern {targs:?} exits like {mosq}\n tern: {terr}\n mosq: {merr}"
            );
            match refusal {
                Some((mw, tw)) => {
                    assert_eq!(m.status.code(), Some(1), "{mosq} {args:?} refuses: {merr}");
                    assert!(merr.contains(mw), "{mosq} {args:?}: {merr}");
                    assert!(terr.contains(tw), "tern {targs:?}: {terr}");
                }
                None => assert_eq!(t.status.code(), Some(0), "tern {targs:?}: {terr}"),
            }
        }
    }
}

/// %E (message expiry) and %S (subscription identifier) with the properties present, side
/// by side with mosquitto_sub, byte for byte; %A stays empty (the broker sends no alias to
/// a client that allows none).
#[test]
fn output_matches_mosquitto_sub_expiry_and_subscription_id_present() {
    let b = broker();
    let p = port(&b);
    let args = |id: &str| -> Vec<String> {
        [
            "-h",
            "127.0.0.1",
            "-p",
            &p,
            "-V",
            "5",
            "-i",
            id,
            "-t",
            "se/#",
            "-D",
            "subscribe",
            "subscription-identifier",
            "7",
            "-F",
            "%t %E %S %A|%5E|%-3S|%03S|%-4E|",
            "-C",
            "3",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let ma = args("se-mosq");
    let m = spawn(
        "mosquitto_sub",
        &ma.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let mut ta = args("se-tern");
    ta.insert(0, "sub".to_owned());
    let t = spawn(TERN, &ta.iter().map(String::as_str).collect::<Vec<_>>());
    wait_subscribed(&b, "se-mosq");
    wait_subscribed(&b, "se-tern");
    let expiry =
        |s: &'static str| -> [&'static str; 3] { ["publish", "message-expiry-interval", s] };
    let e60 = expiry("60");
    let e3600 = expiry("3600");
    let mut a = vec!["-V", "5", "-t", "se/a", "-m", "x", "-q", "1", "-D"];
    a.extend_from_slice(&e60);
    mpub(&b, &a);
    mpub(&b, &["-V", "5", "-t", "se/b", "-m", "y", "-q", "1"]);
    let mut c = vec!["-V", "5", "-t", "se/c", "-m", "z", "-q", "1", "-D"];
    c.extend_from_slice(&e3600);
    mpub(&b, &c);
    let mo = finish(m, "mosquitto_sub");
    let to = finish(t, "tern sub");
    ok(&mo);
    ok(&to);
    let expected = "se/a 60 7 |   60|7  |007|60  |\nse/b  7 |     |7  |007|    |\nse/c 3600 7 | 3600|7  |007|3600|\n";
    assert_eq!(
        String::from_utf8_lossy(&mo.stdout),
        expected,
        "mosquitto_sub's output (the reference)"
    );
    assert_eq!(
        String::from_utf8_lossy(&to.stdout),
        String::from_utf8_lossy(&mo.stdout),
        "tern sub (left) differs from mosquitto_sub (right)"
    );
}

#[test]
fn pub_retain_r_is_seen_by_a_later_subscriber() {
    let b = broker();
    let p = port(&b);
    tern_pub(&b, &["-t", "ret/kept", "-m", "kept", "-r", "-q", "1"], None);
    tern_pub(&b, &["-t", "ret/not", "-m", "gone", "-q", "1"], None);
    // A subscriber that starts afterwards gets only the retained one, with the retain flag,
    // as mosquitto_sub shows it.
    let sub = |prog: &str| -> Output {
        let mut a: Vec<&str> = if prog == TERN { vec!["sub"] } else { vec![] };
        a.extend([
            "-h",
            "127.0.0.1",
            "-p",
            &p,
            "-t",
            "ret/#",
            "-F",
            "%t %r %p",
            "-W",
            "1",
        ]);
        run(prog, &a, None)
    };
    let t = sub(TERN);
    let m = sub("mosquitto_sub");
    assert_eq!(t.status.code(), Some(27));
    assert_eq!(String::from_utf8_lossy(&t.stdout), "ret/kept 1 kept\n");
    assert_eq!(t.stdout, m.stdout, "tern sub and mosquitto_sub agree");
}

#[test]
fn id_prefix_capital_i_appends_the_process_id() {
    let b = broker();
    let p = port(&b);
    let s = spawn(
        TERN,
        &[
            "sub",
            "-h",
            "127.0.0.1",
            "-p",
            &p,
            "-I",
            "pfx-",
            "-t",
            "idp",
            "-C",
            "1",
        ],
    );
    let sub_id = format!("pfx-{}", s.id());
    wait_subscribed(&b, &sub_id);
    let pb = spawn(
        TERN,
        &[
            "pub",
            "-h",
            "127.0.0.1",
            "-p",
            &p,
            "-I",
            "pfp-",
            "-t",
            "idp",
            "-m",
            "x",
            "-q",
            "1",
        ],
    );
    let pub_id = format!("pfp-{}", pb.id());
    ok(&finish(pb, "tern pub -I"));
    wait_log(&b, &format!("Received PUBLISH from {pub_id}"));
    assert_eq!(finish(s, "tern sub -I").stdout, b"x\n");
    // -i and -I together are refused.
    let out = tern(&["pub", "-i", "a", "-I", "b", "-t", "t", "-m", "x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("-i and -I"));
}

/// A broker that needs user alice with password s3cret, its password file made by
/// `tern passwd`; the directory holding the file lives as long as the broker.
fn password_broker() -> (Broker, TempDir) {
    let dir = TempDir::new("pw");
    let file = dir.join("passwd");
    let f = file.display().to_string();
    ok(&tern(&["passwd", "-c", "-b", &f, "alice", "s3cret"]));
    // The broker may drop privileges before reading it (mosquitto does).
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let b = Broker::start_with(
        &[],
        &format!("log_type all\nallow_anonymous false\npassword_file {f}\n"),
    );
    (b, dir)
}

#[test]
fn user_and_password_u_p_against_a_password_file() {
    let (b, _pw) = password_broker();
    let p = port(&b);
    let s = tern_sub_bg(
        &b,
        "pw-sub",
        &["-u", "alice", "-P", "s3cret", "-t", "pw", "-C", "1"],
    );
    tern_pub(
        &b,
        &[
            "-u", "alice", "-P", "s3cret", "-t", "pw", "-m", "in", "-q", "1",
        ],
        None,
    );
    assert_eq!(finish(s, "tern sub -u -P").stdout, b"in\n");
    // A wrong password: the same exit codes as mosquitto_pub (the CONNACK code).
    for v in ["311", "5"] {
        let args = [
            "-h",
            "127.0.0.1",
            "-p",
            &p,
            "-V",
            v,
            "-u",
            "alice",
            "-P",
            "wrong",
            "-t",
            "pw",
            "-m",
            "x",
        ];
        let m = run("mosquitto_pub", &args, None);
        let mut ta = vec!["pub"];
        ta.extend_from_slice(&args);
        let t = tern(&ta);
        assert_eq!(t.status.code(), m.status.code(), "-V {v}");
        if v == "311" {
            // mosquitto answers 5 (not authorised), tern broker 4 (bad user name or password).
            assert!(matches!(t.status.code(), Some(4 | 5)), "{:?}", t.status);
        } else {
            assert!(t.status.code().is_some_and(|c| c >= 0x80), "{:?}", t.status);
        }
        let err = String::from_utf8_lossy(&t.stderr);
        assert!(!err.is_empty(), "a refusal explains itself");
    }
}

#[test]
fn quiet_prints_nothing_on_a_refused_connection() {
    let (b, _pw) = password_broker();
    let p = port(&b);
    for args in [
        &["pub", "-t", "q", "-m", "x"][..],
        &["sub", "-t", "q", "-E"],
        &["pub", "-t", "q", "-m", "x", "-V", "5"],
    ] {
        let mut full = args.to_vec();
        full.extend(["-h", "127.0.0.1", "-p", &p, "--quiet"]);
        let t = tern(&full);
        let m = run(&format!("mosquitto_{}", args[0]), &full[1..], None);
        assert_eq!(t.status.code(), m.status.code(), "{full:?}");
        assert_ne!(t.status.code(), Some(0), "{full:?}");
        assert_eq!(
            String::from_utf8_lossy(&t.stderr),
            "",
            "tern {full:?} is quiet"
        );
        assert_eq!(m.stderr, t.stderr, "mosquitto is quiet too");
        // Without --quiet the refusal is explained.
        let loud = tern(&full[..full.len() - 1]);
        assert!(!loud.stderr.is_empty(), "{full:?} without --quiet");
    }
}

#[test]
fn will_retain_keeps_the_will_for_later_subscribers() {
    let b = broker();
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
            "dying-r",
            "-t",
            "z",
            "--will-topic",
            "will/r",
            "--will-payload",
            "gone",
            "--will-qos",
            "1",
            "--will-retain",
        ],
    );
    wait_subscribed(&b, "dying-r");
    dying.kill().unwrap();
    let _ = dying.wait();
    // Connected after the will went out: only a retained will reaches it.
    let out = finish(
        spawn(
            TERN,
            &[
                "sub",
                "-h",
                "127.0.0.1",
                "-p",
                &p,
                "-t",
                "will/r",
                "-F",
                "%t %r %p",
                "-C",
                "1",
            ],
        ),
        "tern sub will/r",
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "will/r 1 gone\n");
}

#[test]
fn retain_as_published_like_mosquitto_sub() {
    let b = broker();
    let p = port(&b);
    let sub = |prog: &str, id: &str, rap: bool| -> Child {
        let mut a: Vec<&str> = if prog == TERN { vec!["sub"] } else { vec![] };
        a.extend([
            "-h",
            "127.0.0.1",
            "-p",
            &p,
            "-V",
            "5",
            "-i",
            id,
            "-t",
            "rap",
            "-F",
            "%r %p",
            "-C",
            "1",
        ]);
        if rap {
            a.push("--retain-as-published");
        }
        let c = spawn(prog, &a);
        wait_subscribed(&b, id);
        c
    };
    let t = sub(TERN, "rap-t", true);
    let m = sub("mosquitto_sub", "rap-m", true);
    let plain = sub(TERN, "rap-plain", false);
    mpub(&b, &["-V", "5", "-t", "rap", "-m", "live", "-r"]);
    let (t, m, plain) = (
        finish(t, "tern sub --retain-as-published"),
        finish(m, "mosquitto_sub --retain-as-published"),
        finish(plain, "tern sub"),
    );
    assert_eq!(String::from_utf8_lossy(&t.stdout), "1 live\n");
    assert_eq!(t.stdout, m.stdout, "tern sub and mosquitto_sub agree");
    assert_eq!(
        String::from_utf8_lossy(&plain.stdout),
        "0 live\n",
        "without the flag a live message arrives unretained"
    );
}

/// TLS: a listener that requires a client certificate (--cert/--key), reached with -L
/// mqtts:// and with --tls-version.
#[test]
fn tls_client_certificate_url_and_tls_version() {
    let pki = Pki::new();
    let b = Broker::start_with(
        &[
            ("mtls", &pki.listener("server.crt", "server.key", true)),
            ("tls", &pki.listener("server.crt", "server.key", false)),
        ],
        "log_type all\n",
    );
    let mtls = b.port_of("mtls").to_string();
    let tls = b.port_of("tls").to_string();
    let (ca, cert, key) = (pki.p("ca.crt"), pki.p("client.crt"), pki.p("client.key"));
    let tls_args = |port: &str| -> Vec<String> {
        ["-h", "localhost", "-p", port, "--cafile", &ca]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let with = |base: Vec<String>, extra: &[&str]| -> Vec<String> {
        let mut v = vec![];
        v.extend(base);
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let tern_s = |v: &[String]| tern(&v.iter().map(String::as_str).collect::<Vec<_>>());
    // Subscriber on the mutual-TLS listener, through an mqtts:// URL.
    let url = format!("mqtts://localhost:{mtls}/tls/t");
    let s = spawn(
        TERN,
        &[
            "sub", "-L", &url, "--cafile", &ca, "--cert", &cert, "--key", &key, "-i", "tls-sub",
            "-v", "-C", "2",
        ],
    );
    wait_subscribed(&b, "tls-sub");
    let mut base = vec!["pub".to_string()];
    base.extend(tls_args(&mtls));
    ok(&tern_s(&with(
        base.clone(),
        &[
            "--cert", &cert, "--key", &key, "-t", "tls/t", "-m", "mtls", "-q", "1",
        ],
    )));
    // Without a client certificate the listener refuses, as it refuses mosquitto_pub
    // (whose exit code depends on when the TLS 1.3 refusal arrives).
    let out = tern_s(&with(base.clone(), &["-t", "tls/t", "-m", "x", "-q", "1"]));
    let mut margs = tls_args(&mtls);
    margs.extend(["-t", "tls/t", "-m", "x", "-q", "1"].map(String::from));
    let m = Command::new("mosquitto_pub").args(&margs).output().unwrap();
    assert_ne!(m.status.code(), Some(0), "mosquitto_pub is refused too");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pass --cert and --key"), "{err}");
    // --tls-version tlsv1.3 and tlsv1.2 connect (both are allowed by the listener);
    // an unknown version is refused with the accepted values.
    let mut tbase = vec!["pub".to_string()];
    tbase.extend(tls_args(&tls));
    for v in ["tlsv1.3", "tlsv1.2"] {
        ok(&tern_s(&with(
            tbase.clone(),
            &["--tls-version", v, "-t", "x", "-m", "x"],
        )));
    }
    let out = tern_s(&with(
        tbase.clone(),
        &["--tls-version", "tlsv9", "-t", "x", "-m", "x"],
    ));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("use tlsv1.3 or tlsv1.2"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The URL form for pub too (the topic comes from the URL).
    ok(&tern(&[
        "pub", "-L", &url, "--cafile", &ca, "--cert", &cert, "--key", &key, "-m", "via url", "-q",
        "1",
    ]));
    let out = finish(s, "tern sub -L mqtts://");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "tls/t mtls\ntls/t via url\n"
    );
}

/// --tls-version is the lowest version tern accepts: against a server that speaks only
/// TLS 1.2 (openssl s_server), tlsv1.3 fails the handshake with a hint, as mosquitto_pub's
/// does.
#[test]
fn tls_version_13_refuses_a_tls_12_only_server() {
    let pki = Pki::new();
    let port = common::free_port().to_string();
    let mut server = Command::new("openssl")
        .args(["s_server", "-quiet", "-tls1_2", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-cert", &pki.p("server.crt"), "-key", &pki.p("server.key")])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_server (apt-get install openssl)");
    assert!(
        wait_until(LIMIT, || std::net::TcpStream::connect((
            "127.0.0.1",
            port.parse::<u16>().unwrap()
        ))
        .is_ok()),
        "openssl s_server did not listen"
    );
    let ca = pki.p("ca.crt");
    let args = [
        "-h",
        "localhost",
        "-p",
        &port,
        "--cafile",
        &ca,
        "--tls-version",
        "tlsv1.3",
        "-t",
        "t",
        "-m",
        "x",
    ];
    let mut targs = vec!["pub"];
    targs.extend_from_slice(&args);
    let t = tern(&targs);
    let m = run("mosquitto_pub", &args, None);
    let _ = server.kill();
    let _ = server.wait();
    assert_ne!(
        m.status.code(),
        Some(0),
        "mosquitto_pub --tls-version tlsv1.3 fails too"
    );
    assert_eq!(t.status.code(), Some(1));
    let err = String::from_utf8_lossy(&t.stderr);
    assert!(err.contains("--tls-version"), "{err}");
}
