//! Test helpers shared by tern-client and tern-cli integration tests: start a broker on a
//! free 127.0.0.1 port, make TLS fixtures with `openssl`, temporary directories.
//!
//! The broker under test is `mosquitto` unless `TERN_TEST_BROKER` names another command
//! that takes mosquitto's `-c FILE` (e.g. `TERN_TEST_BROKER="target/debug/tern broker"`).
//! A missing broker or openssl FAILS the test with a message saying what to install.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "tern-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

mod ports;
#[allow(unused_imports)]
pub use ports::{free_port, free_ports};

fn broker_command() -> (String, Vec<String>) {
    let spec = std::env::var("TERN_TEST_BROKER").unwrap_or_else(|_| "mosquitto".to_owned());
    let mut parts = spec.split_whitespace().map(str::to_owned);
    let prog = parts.next().unwrap_or_else(|| "mosquitto".to_owned());
    (prog, parts.collect())
}

/// A running broker, killed on drop.
pub struct Broker {
    pub port: u16,
    /// Extra listener ports by name (e.g. "tls").
    pub ports: Vec<(String, u16)>,
    child: Option<Child>,
    conf: PathBuf,
    pub dir: TempDir,
}

impl Broker {
    /// A broker with one plain listener allowing anonymous clients.
    pub fn start() -> Broker {
        Self::start_with(&[], "")
    }

    /// `extra` is appended to the config after the plain listener; `tls` is a list of
    /// (name, listener config lines) each given its own free port: `listener {port}` is
    /// written before the lines.
    pub fn start_with(tls: &[(&str, &str)], extra: &str) -> Broker {
        let dir = TempDir::new("broker");
        let mut free = free_ports(1 + tls.len()).into_iter();
        let port = free.next().unwrap();
        let mut conf = format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\nper_listener_settings false\n{extra}\n"
        );
        let mut ports = Vec::new();
        for (name, lines) in tls {
            let p = free.next().unwrap();
            conf.push_str(&format!("listener {p} 127.0.0.1\n{lines}\n"));
            ports.push(((*name).to_owned(), p));
        }
        let path = dir.join("broker.conf");
        std::fs::write(&path, conf).unwrap();
        let mut b = Broker {
            port,
            ports,
            child: None,
            conf: path,
            dir,
        };
        b.spawn();
        b
    }

    fn spawn(&mut self) {
        let (prog, args) = broker_command();
        let log = std::fs::File::create(self.dir.join("broker.log")).unwrap();
        let child = Command::new(&prog)
            .args(&args)
            .arg("-c")
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start the broker '{prog}': {e}. Install mosquitto (apt-get install mosquitto) or set TERN_TEST_BROKER"
                )
            });
        self.child = Some(child);
        let mut all = vec![self.port];
        all.extend(self.ports.iter().map(|(_, p)| *p));
        for p in all {
            let start = Instant::now();
            loop {
                if TcpStream::connect(("127.0.0.1", p)).is_ok() {
                    break;
                }
                let exited = self
                    .child
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten());
                if exited.is_some() || start.elapsed() > Duration::from_secs(10) {
                    panic!(
                        "the broker did not listen on port {p} (exit status {exited:?}); its log:\n{}",
                        self.log()
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    pub fn port_of(&self, name: &str) -> u16 {
        self.ports.iter().find(|(n, _)| n == name).unwrap().1
    }

    /// The broker's log so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("broker.log")).unwrap_or_default()
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills and starts the broker again on the same ports.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Stops the broker with SIGTERM, as an init system would, and waits (bounded) for it
    /// to exit: mosquitto writes its persistence store on the way out. Killed if it is still
    /// running after 10 s (and the test fails).
    pub fn stop(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status()
            .is_ok_and(|s| s.success());
        let exited = sent
            && wait_until(Duration::from_secs(10), || {
                matches!(c.try_wait(), Ok(Some(_)))
            });
        if !exited {
            let _ = c.kill();
            let _ = c.wait();
            panic!(
                "the broker did not stop on SIGTERM within 10 s; its log:\n{}",
                self.log()
            );
        }
    }

    /// Stops the broker gracefully ([`Broker::stop`]) and starts it again on the same ports.
    pub fn restart_graceful(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run openssl: {e}. Install it (apt-get install openssl)")
        });
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// TLS fixtures made with openssl.
pub struct Pki {
    pub dir: TempDir,
}

impl Pki {
    /// A CA; a server certificate with SAN localhost and 127.0.0.1 (`server.crt`); one for
    /// `broker.local` only (`other.crt`); the tutorial's X.509 v1 certificate with no SAN
    /// (`v1.crt`, CN myhostname.com); a client certificate (`client.crt`, SEC1 EC key); a
    /// second unrelated CA (`rogue-ca.crt`).
    pub fn new() -> Pki {
        let dir = TempDir::new("pki");
        let d = dir.path();
        std::fs::write(
            d.join("san.ext"),
            "basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        std::fs::write(
            d.join("other.ext"),
            "basicConstraints=CA:FALSE\nsubjectAltName=DNS:broker.local\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        std::fs::write(
            d.join("client.ext"),
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        )
        .unwrap();
        // The tutorial's commands (seed 000): CA, then a server cert signed without extensions.
        openssl(d, &["genrsa", "-out", "ca.key", "2048"]);
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
                "/CN=Test CA",
            ],
        );
        openssl(d, &["genrsa", "-out", "v1.key", "2048"]);
        openssl(
            d,
            &[
                "req",
                "-new",
                "-out",
                "v1.csr",
                "-key",
                "v1.key",
                "-subj",
                "/CN=myhostname.com",
            ],
        );
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "v1.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "v1.crt",
                "-days",
                "3650",
            ],
        );
        for (name, ext, cn) in [
            ("server", "san.ext", "localhost"),
            ("other", "other.ext", "broker.local"),
        ] {
            openssl(
                d,
                &[
                    "ecparam",
                    "-name",
                    "prime256v1",
                    "-genkey",
                    "-noout",
                    "-out",
                    &format!("{name}.key"),
                ],
            );
            openssl(
                d,
                &[
                    "req",
                    "-new",
                    "-key",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}.csr"),
                    "-subj",
                    &format!("/CN={cn}"),
                ],
            );
            openssl(
                d,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &format!("{name}.csr"),
                    "-CA",
                    "ca.crt",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-out",
                    &format!("{name}.crt"),
                    "-days",
                    "365",
                    "-extfile",
                    ext,
                ],
            );
        }
        // Client certificate with a SEC1 EC key ("BEGIN EC PRIVATE KEY").
        openssl(
            d,
            &[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                "client.key",
            ],
        );
        openssl(
            d,
            &[
                "req",
                "-new",
                "-key",
                "client.key",
                "-out",
                "client.csr",
                "-subj",
                "/CN=device-1",
            ],
        );
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "client.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "client.crt",
                "-days",
                "365",
                "-extfile",
                "client.ext",
            ],
        );
        // An unrelated CA.
        openssl(d, &["genrsa", "-out", "rogue-ca.key", "2048"]);
        openssl(
            d,
            &[
                "req",
                "-new",
                "-x509",
                "-days",
                "30",
                "-key",
                "rogue-ca.key",
                "-out",
                "rogue-ca.crt",
                "-subj",
                "/CN=Rogue CA",
            ],
        );
        // The broker may drop root privileges before reading its key (mosquitto does).
        for e in std::fs::read_dir(d).unwrap() {
            use std::os::unix::fs::PermissionsExt;
            let path = e.unwrap().path();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        Pki { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn p(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// DER of a PEM certificate file.
    pub fn der(&self, name: &str) -> Vec<u8> {
        let out = Command::new("openssl")
            .args(["x509", "-outform", "der", "-in"])
            .arg(self.path(name))
            .output()
            .unwrap();
        assert!(out.status.success());
        out.stdout
    }

    /// Listener lines for a TLS listener serving `cert`/`key`.
    pub fn listener(&self, cert: &str, key: &str, require_cert: bool) -> String {
        format!(
            "cafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate {}\n",
            self.p("ca.crt"),
            self.p(cert),
            self.p(key),
            require_cert
        )
    }
}

/// Bounded wait for a condition.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Runs mosquitto_pub with args (bounded to 10 s) and asserts success.
pub fn mosquitto_pub(args: &[&str]) {
    run_tool("mosquitto_pub", args, None);
}

pub fn run_tool(prog: &str, args: &[&str], stdin: Option<&[u8]>) -> std::process::Output {
    let mut child = Command::new(prog)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {prog}: {e}. Install mosquitto-clients (apt-get install mosquitto-clients)")
        });
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    drop(child.stdin.take());
    let start = Instant::now();
    loop {
        if let Some(_status) = child.try_wait().unwrap() {
            break;
        }
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("{prog} {args:?} did not finish within 10 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{prog} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
