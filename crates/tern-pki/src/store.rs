//! The PKI directory: the tutorial's file names (`ca.crt ca.key server.crt server.key
//! NAME.crt NAME.key ca.crl`), the `issued.txt` and `revoked.txt` indexes, and safe
//! writing: every file is written to a temporary file in the same directory and renamed
//! into place, and private keys are created with mode 0600 from the start (never
//! chmod-ed afterwards), in a directory created with mode 0700.
//!
//! Index lines are `SERIAL DATE NAME`: upper-case hex serial, RFC 3339 UTC date (issue or
//! revocation), certificate name (the file stem, `-` when unknown).

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::PkiError;
use crate::issue::{self, CaOptions, CaSigner, ClientOptions, Issued, ServerOptions};

/// `ca.crt`: the CA certificate, for `cafile` and for devices.
pub const CA_CERT: &str = "ca.crt";
/// `ca.key`: the CA private key. Keep it off the broker if you can.
pub const CA_KEY: &str = "ca.key";
/// `ca.crl`: the certificate revocation list, for `crlfile`.
pub const CA_CRL: &str = "ca.crl";
/// `issued.txt`: one line per certificate issued.
pub const ISSUED: &str = "issued.txt";
/// `revoked.txt`: one line per certificate revoked.
pub const REVOKED: &str = "revoked.txt";

/// File permission for what is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileMode {
    /// 0600: private keys and PKCS#12 bundles.
    Secret,
    /// 0644: certificates, CRLs, indexes.
    Public,
}

/// One line of `issued.txt` or `revoked.txt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// Serial number, upper-case hex without separators.
    pub serial: String,
    /// When it was issued (issued.txt) or revoked (revoked.txt).
    pub date: OffsetDateTime,
    /// Certificate name (file stem), `-` when unknown.
    pub name: String,
}

/// Canonical form of a serial typed by a user: no colons or spaces, upper-case, no
/// leading zero bytes, no `0x`.
pub fn normalize_serial(s: &str) -> String {
    let s = s.trim();
    let s = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    let s = s.strip_prefix("serial=").unwrap_or(s);
    let hex: String = s
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .collect::<String>()
        .to_uppercase();
    let trimmed = hex.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, created
/// with the final permissions, synced, then renamed over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: FileMode) -> Result<(), PkiError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_owned());
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
    let tmp = dir.join(format!(".{file_name}.{}.{nanos}.tmp", std::process::id()));
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(match mode {
            FileMode::Secret => 0o600,
            FileMode::Public => 0o644,
        });
    }
    #[cfg(not(unix))]
    let _ = mode;
    let result = (|| {
        let mut f = opts
            .open(&tmp)
            .map_err(|e| PkiError::io("create", &tmp, e))?;
        f.write_all(bytes)
            .map_err(|e| PkiError::io("write", &tmp, e))?;
        f.sync_all().map_err(|e| PkiError::io("write", &tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| PkiError::io("rename", path, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Creates `dir` (and parents) with mode 0700 if it does not exist.
pub fn create_private_dir(dir: &Path) -> Result<(), PkiError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        b.mode(0o700);
    }
    b.create(dir)
        .map_err(|e| PkiError::io("create directory", dir, e))
}

fn read(path: &Path) -> Result<Vec<u8>, PkiError> {
    fs::read(path).map_err(|e| PkiError::io("read", path, e))
}

/// Whether `name` is safe as a file stem and not one of the CA's own names.
pub fn check_name(name: &str) -> Result<(), PkiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name != "ca"
        && name != "issued"
        && name != "revoked";
    if ok {
        Ok(())
    } else {
        Err(PkiError::InvalidFileName(name.to_owned()))
    }
}

/// A PKI directory.
#[derive(Debug, Clone)]
pub struct PkiDir {
    root: PathBuf,
}

impl PkiDir {
    /// A PKI directory at `root` (created when something is first written).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// `DIR/ca.crt`.
    pub fn ca_cert_path(&self) -> PathBuf {
        self.root.join(CA_CERT)
    }

    /// `DIR/ca.key`.
    pub fn ca_key_path(&self) -> PathBuf {
        self.root.join(CA_KEY)
    }

    /// `DIR/ca.crl`.
    pub fn crl_path(&self) -> PathBuf {
        self.root.join(CA_CRL)
    }

    /// `DIR/NAME.crt`.
    pub fn cert_path(&self, name: &str) -> PathBuf {
        self.root.join(format!("{name}.crt"))
    }

    /// `DIR/NAME.key`.
    pub fn key_path(&self, name: &str) -> PathBuf {
        self.root.join(format!("{name}.key"))
    }

    /// `DIR/NAME.p12`.
    pub fn p12_path(&self, name: &str) -> PathBuf {
        self.root.join(format!("{name}.p12"))
    }

    /// Makes a new CA and writes `ca.crt` and `ca.key`. Refuses to replace an existing CA
    /// unless `force`.
    pub fn create_ca(&self, opts: &CaOptions, force: bool) -> Result<Issued, PkiError> {
        for p in [self.ca_cert_path(), self.ca_key_path()] {
            if p.exists() && !force {
                return Err(PkiError::CaExists { path: p });
            }
        }
        create_private_dir(&self.root)?;
        let made = issue::ca(opts)?;
        write_atomic(
            &self.ca_key_path(),
            made.key_pem.as_bytes(),
            FileMode::Secret,
        )?;
        write_atomic(
            &self.ca_cert_path(),
            made.cert_pem.as_bytes(),
            FileMode::Public,
        )?;
        self.record_issued(&made.serial, "ca", opts.now)?;
        Ok(made)
    }

    /// Loads `ca.crt` and `ca.key` from this directory.
    pub fn load_ca(&self) -> Result<CaSigner, PkiError> {
        let (cert, key) = (self.ca_cert_path(), self.ca_key_path());
        for p in [&cert, &key] {
            if !p.exists() {
                return Err(PkiError::Missing {
                    path: p.clone(),
                    hint: format!(
                        "make a CA first with `tern pki ca --dir {}`, or pass --ca-cert and --ca-key",
                        self.root.display()
                    ),
                });
            }
        }
        load_ca_files(&cert, &key)
    }

    /// Issues a server certificate and writes `NAME.crt` and `NAME.key`.
    pub fn issue_server(
        &self,
        ca: &CaSigner,
        name: &str,
        opts: &ServerOptions,
    ) -> Result<Issued, PkiError> {
        check_name(name)?;
        create_private_dir(&self.root)?;
        let made = issue::server(ca, opts)?;
        self.write_pair(name, &made, opts.now)?;
        Ok(made)
    }

    /// Issues a client certificate and writes `NAME.crt` and `NAME.key`, and `NAME.p12`
    /// when a PKCS#12 password is given.
    pub fn issue_client(
        &self,
        ca: &CaSigner,
        name: &str,
        opts: &ClientOptions,
        p12_password: Option<&str>,
    ) -> Result<Issued, PkiError> {
        check_name(name)?;
        create_private_dir(&self.root)?;
        let made = issue::client(ca, name, opts)?;
        self.write_pair(name, &made, opts.now)?;
        if let Some(pw) = p12_password {
            let bundle = issue::pkcs12(&made, ca, pw)?;
            write_atomic(&self.p12_path(name), &bundle, FileMode::Secret)?;
        }
        Ok(made)
    }

    fn write_pair(&self, name: &str, made: &Issued, now: OffsetDateTime) -> Result<(), PkiError> {
        write_atomic(
            &self.key_path(name),
            made.key_pem.as_bytes(),
            FileMode::Secret,
        )?;
        write_atomic(
            &self.cert_path(name),
            made.cert_pem.as_bytes(),
            FileMode::Public,
        )?;
        self.record_issued(&made.serial, name, now)
    }

    fn record_issued(&self, serial: &str, name: &str, now: OffsetDateTime) -> Result<(), PkiError> {
        let mut entries = self.issued()?;
        entries.push(IndexEntry {
            serial: normalize_serial(serial),
            date: now,
            name: name.to_owned(),
        });
        self.write_index(ISSUED, &entries)
    }

    /// The entries of `issued.txt` (empty when it does not exist).
    pub fn issued(&self) -> Result<Vec<IndexEntry>, PkiError> {
        self.read_index(ISSUED)
    }

    /// The entries of `revoked.txt` (empty when it does not exist).
    pub fn revoked(&self) -> Result<Vec<IndexEntry>, PkiError> {
        self.read_index(REVOKED)
    }

    pub(crate) fn write_revoked(&self, entries: &[IndexEntry]) -> Result<(), PkiError> {
        self.write_index(REVOKED, entries)
    }

    fn read_index(&self, file: &str) -> Result<Vec<IndexEntry>, PkiError> {
        let path = self.root.join(file);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(PkiError::io("read", &path, e)),
        };
        parse_index(&path, &text)
    }

    fn write_index(&self, file: &str, entries: &[IndexEntry]) -> Result<(), PkiError> {
        let mut text = String::new();
        for e in entries {
            let date = e
                .date
                .format(&Rfc3339)
                .unwrap_or_else(|_| e.date.unix_timestamp().to_string());
            text.push_str(&format!("{} {} {}\n", e.serial, date, e.name));
        }
        write_atomic(&self.root.join(file), text.as_bytes(), FileMode::Public)
    }
}

fn parse_index(path: &Path, text: &str) -> Result<Vec<IndexEntry>, PkiError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |reason| PkiError::BadIndex {
            path: path.to_owned(),
            line: i + 1,
            reason,
        };
        let mut parts = line.splitn(3, char::is_whitespace);
        let serial = parts.next().ok_or_else(|| bad("no serial"))?;
        if !serial.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad("the serial is not hex"));
        }
        let date = parts.next().ok_or_else(|| bad("no date"))?;
        let date =
            OffsetDateTime::parse(date, &Rfc3339).map_err(|_| bad("the date is not RFC 3339"))?;
        let name = parts.next().unwrap_or("-").trim().to_owned();
        out.push(IndexEntry {
            serial: normalize_serial(serial),
            date,
            name,
        });
    }
    Ok(out)
}

/// Loads a CA from a certificate file and a key file, naming the file in errors.
pub fn load_ca_files(cert: &Path, key: &Path) -> Result<CaSigner, PkiError> {
    CaSigner::from_pem(&read(cert)?, &read(key)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(tag: &str) -> PathBuf {
        let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
        let d = std::env::temp_dir().join(format!("tern-pki-{tag}-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn serial_normalisation() {
        assert_eq!(normalize_serial("0a:1B:ff"), "A1BFF");
        assert_eq!(normalize_serial("serial=00AB"), "AB");
        assert_eq!(normalize_serial("0x10"), "10");
        assert_eq!(normalize_serial("00"), "0");
    }

    #[test]
    fn names_that_would_clobber_the_ca_are_refused() {
        for bad in ["ca", "../x", ".hidden", "a b", "", "issued"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        for good in ["server", "sensor-1", "esp_8266.kitchen"] {
            check_name(good).unwrap();
        }
    }

    #[test]
    fn ca_is_not_overwritten_without_force_and_keys_are_private() {
        let d = tempdir("ca");
        let pki = PkiDir::new(&d);
        pki.create_ca(&CaOptions::default(), false).unwrap();
        let err = pki.create_ca(&CaOptions::default(), false).unwrap_err();
        assert!(err.to_string().contains("--force"), "{err}");
        pki.create_ca(&CaOptions::default(), true).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(pki.ca_key_path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            let mode = fs::metadata(pki.ca_cert_path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o644);
        }
        assert_eq!(pki.issued().unwrap().len(), 2);
        // No temporary files are left behind.
        let leftovers: Vec<_> = fs::read_dir(&d)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn index_round_trip_and_errors_name_the_line() {
        let d = tempdir("index");
        let pki = PkiDir::new(&d);
        let ca = pki.create_ca(&CaOptions::default(), false).unwrap();
        let signer = pki.load_ca().unwrap();
        let s = pki
            .issue_server(&signer, "server", &ServerOptions::default())
            .unwrap();
        let issued = pki.issued().unwrap();
        assert_eq!(issued[0].serial, ca.serial);
        assert_eq!(issued[1].serial, s.serial);
        assert_eq!(issued[1].name, "server");
        fs::write(d.join(ISSUED), "ABC notadate x\n").unwrap();
        let err = pki.issued().unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn missing_ca_says_how_to_make_one() {
        let d = tempdir("missing");
        let err = PkiDir::new(&d).load_ca().unwrap_err();
        assert!(err.to_string().contains("tern pki ca --dir"), "{err}");
        fs::remove_dir_all(&d).unwrap();
    }
}
