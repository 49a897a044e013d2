//! Black-box tests of `tern passwd`: the real `tern` binary against Debian's real
//! `mosquitto`, `mosquitto_passwd` and `mosquitto_pub`. These tests FAIL (they never skip)
//! when the Mosquitto tools are missing: install them with
//! `apt-get install mosquitto mosquitto-clients`.
// Test helpers outside #[test] fns may panic too: a panic is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::io::Read as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

#[path = "../../tern-client/tests/common/ports.rs"]
mod ports;

use tern_conf::passwd::{HashAlgorithm, PasswordFile, PasswordHash};

const TERN: &str = env!("CARGO_BIN_EXE_tern");

/// A fresh directory for one test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("tern-passwd-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Panics with an install hint when a Mosquitto tool is missing.
fn require(tool: &str) {
    if let Err(e) = Command::new(tool)
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        panic!(
            "cannot run `{tool}` ({e}); install Debian's mosquitto and mosquitto-clients packages (apt-get install mosquitto mosquitto-clients) to run this test"
        );
    }
}

/// Runs a command with a bounded wait; panics if it does not finish in 20 s.
fn run(cmd: &mut Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stdout = Vec::new();
            let mut stderr = Vec::new();
            if let Some(mut o) = child.stdout.take() {
                o.read_to_end(&mut stdout).unwrap();
            }
            if let Some(mut e) = child.stderr.take() {
                e.read_to_end(&mut stderr).unwrap();
            }
            return Output {
                status,
                stdout,
                stderr,
            };
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within 20 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn tern(args: &[&str]) -> Output {
    run(Command::new(TERN).arg("passwd").args(args))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A Mosquitto broker on a free loopback port, killed when dropped.
struct Broker {
    child: Child,
    port: u16,
}

impl Broker {
    fn start(dir: &TempDir, password_file: &Path) -> Self {
        require("mosquitto");
        let port = ports::free_port();
        let conf = dir.path("mosquitto.conf");
        // `user root` keeps a root-run broker from switching to the `mosquitto` user, which
        // could not read our 0600 file; a non-root broker ignores it.
        fs::write(
            &conf,
            format!(
                "user root\nlistener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\nlog_dest stderr\n",
                password_file.display()
            ),
        )
        .unwrap();
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto is installed (checked above)");
        let mut broker = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return broker;
            }
            if let Some(status) = broker.child.try_wait().unwrap() {
                panic!(
                    "mosquitto exited at start ({status}); config: {}",
                    fs::read_to_string(&conf).unwrap()
                );
            }
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen on {port} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Publishes one message with `mosquitto_pub`; true when the broker accepted the login.
    fn publish_as(&self, user: Option<&str>, password: Option<&str>) -> bool {
        require("mosquitto_pub");
        let mut cmd = Command::new("mosquitto_pub");
        cmd.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-t",
            "t",
            "-m",
            "x",
            "-q",
            "1",
        ]);
        if let Some(u) = user {
            cmd.args(["-u", u]);
        }
        if let Some(p) = password {
            cmd.args(["-P", p]);
        }
        run(&mut cmd).status.success()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn file_written_by_tern_passwd_is_accepted_by_real_mosquitto() {
    let dir = TempDir::new("tern-to-mosquitto");
    let pw = dir.path("passwd");
    let o = tern(&["-c", "-b", s(&pw), "alice", "right horse"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = tern(&["-H", "sha512", "-b", s(&pw), "bob", "b0b"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = tern(&["-I", "2000", "-b", s(&pw), "carol", "c"]);
    assert!(o.status.success(), "{}", stderr(&o));

    let broker = Broker::start(&dir, &pw);
    assert!(broker.publish_as(Some("alice"), Some("right horse")));
    assert!(!broker.publish_as(Some("alice"), Some("wrong horse")));
    assert!(broker.publish_as(Some("bob"), Some("b0b")));
    assert!(!broker.publish_as(Some("bob"), Some("b0")));
    assert!(broker.publish_as(Some("carol"), Some("c")));
    assert!(!broker.publish_as(Some("mallory"), Some("right horse")));
    assert!(!broker.publish_as(None, None));
}

#[test]
fn file_edited_by_tern_keeps_mosquitto_users_working() {
    require("mosquitto_passwd");
    let dir = TempDir::new("edit-mosquitto-file");
    let pw = dir.path("passwd");
    let o = run(Command::new("mosquitto_passwd").args(["-c", "-b", s(&pw), "dave", "d"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(Command::new("mosquitto_passwd").args(["-b", s(&pw), "erin", "e"]));
    assert!(o.status.success(), "{}", stderr(&o));
    // tern adds a user, changes one, and deletes one
    assert!(tern(&["-b", s(&pw), "frank", "f"]).status.success());
    assert!(tern(&["-b", s(&pw), "dave", "d2"]).status.success());
    assert!(tern(&["-D", s(&pw), "erin"]).status.success());

    let broker = Broker::start(&dir, &pw);
    assert!(broker.publish_as(Some("frank"), Some("f")));
    assert!(broker.publish_as(Some("dave"), Some("d2")));
    assert!(!broker.publish_as(Some("dave"), Some("d")));
    assert!(!broker.publish_as(Some("erin"), Some("e")));
}

#[test]
fn file_written_by_mosquitto_passwd_verifies_with_tern_conf() {
    require("mosquitto_passwd");
    let dir = TempDir::new("mosquitto-to-tern");
    let pw = dir.path("passwd");
    for args in [
        vec!["-c", "-b", s(&pw), "alice", "pässwörd"],
        vec!["-H", "sha512", "-b", s(&pw), "bob", "b"],
        vec![
            "-H",
            "sha512-pbkdf2",
            "-I",
            "500",
            "-b",
            s(&pw),
            "carol",
            "c c",
        ],
    ] {
        let o = run(Command::new("mosquitto_passwd").args(&args));
        assert!(
            o.status.success(),
            "mosquitto_passwd {args:?}: {}",
            stderr(&o)
        );
    }
    let text = fs::read_to_string(&pw).unwrap();
    let file = PasswordFile::parse(&pw, &text);
    assert!(file.errors().is_empty(), "{:?}", file.errors());
    assert!(file.verify("alice", "pässwörd"));
    assert!(!file.verify("alice", "passwort"));
    assert!(file.verify("bob", "b"));
    assert!(file.verify("carol", "c c"));
    assert_eq!(
        file.get("bob").map(PasswordHash::algorithm),
        Some(HashAlgorithm::Sha512)
    );
}

#[test]
fn new_file_is_0600_and_an_existing_mode_is_kept() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = TempDir::new("modes");
    let pw = dir.path("passwd");
    assert!(tern(&["-c", "-b", s(&pw), "alice", "a"]).status.success());
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&pw), 0o600);
    fs::set_permissions(&pw, fs::Permissions::from_mode(0o640)).unwrap();
    assert!(tern(&["-b", s(&pw), "bob", "b"]).status.success());
    assert_eq!(mode(&pw), 0o640);
    // no temporary file is left behind
    let names: Vec<_> = fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["passwd"]);
    let f = PasswordFile::parse(&pw, &fs::read_to_string(&pw).unwrap());
    assert!(f.verify("alice", "a") && f.verify("bob", "b"));
}

#[test]
fn symlinked_file_is_updated_through_the_link() {
    let dir = TempDir::new("symlink");
    let real = dir.path("real");
    let link = dir.path("link");
    assert!(tern(&["-c", "-b", s(&real), "alice", "a"]).status.success());
    std::os::unix::fs::symlink(&real, &link).unwrap();
    assert!(tern(&["-b", s(&link), "bob", "b"]).status.success());
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let f = PasswordFile::parse(&real, &fs::read_to_string(&real).unwrap());
    assert!(f.verify("bob", "b"));
}

/// Each refusal prints what mosquitto_passwd prints and exits 1, and leaves the file alone.
#[test]
fn refusals_match_mosquitto_passwd() {
    require("mosquitto_passwd");
    let dir = TempDir::new("refusals");
    let pw = dir.path("passwd");
    assert!(tern(&["-c", "-b", s(&pw), "alice", "a"]).status.success());
    let before = fs::read(&pw).unwrap();
    let cases: &[&[&str]] = &[
        &["-c", "-D", s(&pw), "alice"],
        &["-c", "-U", s(&pw)],
        &["-D", "-U", s(&pw)],
        &["-b", "-D", s(&pw), "alice"],
        &["-H", "md5", "-b", s(&pw), "a", "b"],
        &["-I", "0", "-b", s(&pw), "a", "b"],
        &["-D", s(&pw), "nobody"],
        &["-c", "-b", s(&pw), "alice"],
        &["-U", s(&pw), "extra"],
    ];
    for args in cases {
        let ours = tern(args);
        let theirs = run(Command::new("mosquitto_passwd").args(*args));
        assert_eq!(
            ours.status.code(),
            Some(1),
            "tern passwd {args:?}: {}",
            stderr(&ours)
        );
        assert_eq!(theirs.status.code(), Some(1), "mosquitto_passwd {args:?}");
        assert_eq!(stderr(&ours), stderr(&theirs), "stderr for {args:?}");
        assert_eq!(fs::read(&pw).unwrap(), before, "file changed by {args:?}");
    }
}

#[test]
fn other_refusals() {
    let dir = TempDir::new("other-refusals");
    let pw = dir.path("passwd");
    let o = tern(&["-b", s(&pw), "alice", "a"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with(&format!(
            "Error: Unable to open password file {}. No such file",
            pw.display()
        )),
        "{}",
        stderr(&o)
    );
    assert!(!pw.exists());
    let o = tern(&["-c", "-b", s(&pw), "a:b", "x"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "Error: user name must not contain the ':' character.\n"
    );
    let o = tern(&["-I", "20000000", "-c", "-b", s(&pw), "a", "x"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "Error: Number of iterations must be at most 10000000; each login would cost seconds of CPU.\n"
    );
    assert!(!pw.exists());
}

#[test]
fn update_hashes_plain_passwords_and_keeps_the_file_on_error() {
    let dir = TempDir::new("update");
    let pw = dir.path("passwd");
    fs::write(&pw, "# plain file\nalice:apple\nbob:banana\n").unwrap();
    let o = tern(&["-U", s(&pw)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = fs::read_to_string(&pw).unwrap();
    assert!(text.starts_with("# plain file\nalice:$7$101$"), "{text}");
    let f = PasswordFile::parse(&pw, &text);
    assert!(f.verify("alice", "apple") && f.verify("bob", "banana"));

    // running -U again does not hash the hashes
    let o = tern(&["-U", s(&pw)]);
    assert!(o.status.success());
    assert_eq!(
        stderr(&o),
        "Warning: 2 line(s) already held a password hash and were left unchanged.\n"
    );
    assert_eq!(fs::read_to_string(&pw).unwrap(), text);

    // a corrupt line stops the conversion and the old file stays
    fs::write(&pw, "carol:cherry\ngarbage\n").unwrap();
    let o = tern(&["-U", s(&pw)]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "Error: Corrupt password file at line 2; it is not \"user:password\". Nothing was changed.\n"
    );
    assert_eq!(fs::read_to_string(&pw).unwrap(), "carol:cherry\ngarbage\n");
}

/// The rename is the last step: when it fails (here the target is a non-empty directory,
/// which fails even for root), the temporary file is removed and the target is untouched.
#[test]
fn failed_write_removes_the_temporary_file_and_keeps_the_target() {
    let dir = TempDir::new("failed-write");
    let target = dir.path("passwd");
    fs::create_dir(&target).unwrap();
    fs::write(target.join("keep"), "old").unwrap();
    let o = tern(&["-c", "-b", s(&target), "alice", "a"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with(&format!(
            "Error: cannot write password file {}; the old file is unchanged",
            target.display()
        )),
        "{}",
        stderr(&o)
    );
    assert_eq!(fs::read_to_string(target.join("keep")).unwrap(), "old");
    let names: Vec<_> = fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["passwd"], "temporary file left behind");
}
