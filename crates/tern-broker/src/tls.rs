//! TLS listeners (rustls, ring provider): building a `ServerConfig` from mosquitto.conf's
//! TLS options, reloading it when the files change (SIGHUP or on disk) while keeping the old
//! one when the new files are bad, explaining failed handshakes in plain words, and the
//! certificate identity for `use_identity_as_username` / `use_subject_as_username`.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    AlertDescription, CertificateError, Error as RustlsError, PeerIncompatible, RootCertStore,
    ServerConfig, SupportedCipherSuite,
};

/// The smallest TLS version a listener accepts (`tls_version`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MinVersion {
    /// TLS 1.2 and 1.3 (the default).
    #[default]
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

/// A listener's TLS options (mosquitto.conf names).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsOptions {
    pub cafile: Option<PathBuf>,
    pub capath: Option<PathBuf>,
    pub certfile: PathBuf,
    pub keyfile: PathBuf,
    pub crlfile: Option<PathBuf>,
    pub require_certificate: bool,
    pub use_identity_as_username: bool,
    pub use_subject_as_username: bool,
    pub min_version: MinVersion,
    /// `ciphers` (TLS 1.2 suites, OpenSSL names, `:`-separated).
    pub ciphers: Option<String>,
    /// `ciphers_tls1.3`.
    pub ciphers_tls13: Option<String>,
    /// `tls_max_fragment_size` (tern): largest plaintext per TLS record the broker sends,
    /// so devices with small receive buffers (ESP8266 BearSSL) can be served.
    pub max_fragment_size: Option<usize>,
}

/// Why TLS settings cannot be used. Each message names the file and says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("cannot read the {what} {path}: {source} (the broker runs as user '{user}'). {fix}")]
    Read {
        what: &'static str,
        path: String,
        user: String,
        source: io::Error,
        /// What to do, in a sentence (made by `read_error`).
        fix: String,
    },
    #[error("{path}: {detail}")]
    Content { path: String, detail: String },
    #[error("unknown cipher '{name}' in {option}; the ciphers tern offers are: {available}")]
    UnknownCipher {
        option: &'static str,
        name: String,
        available: String,
    },
    #[error(
        "require_certificate true needs cafile or capath: the CA that signs client certificates (make one with `tern pki ca`)"
    )]
    RequireCertWithoutCa,
    #[error("the TLS settings cannot be used: {0}")]
    Rustls(#[from] RustlsError),
}

/// OpenSSL names of the suites rustls offers, with the suite.
fn suites() -> Vec<(&'static str, &'static str, SupportedCipherSuite)> {
    use rustls::crypto::ring::cipher_suite::*;
    vec![
        ("TLS_AES_256_GCM_SHA384", "tls13", TLS13_AES_256_GCM_SHA384),
        ("TLS_AES_128_GCM_SHA256", "tls13", TLS13_AES_128_GCM_SHA256),
        (
            "TLS_CHACHA20_POLY1305_SHA256",
            "tls13",
            TLS13_CHACHA20_POLY1305_SHA256,
        ),
        (
            "ECDHE-ECDSA-AES256-GCM-SHA384",
            "tls12",
            TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        ),
        (
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            "tls12",
            TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        ),
        (
            "ECDHE-ECDSA-CHACHA20-POLY1305",
            "tls12",
            TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        ),
        (
            "ECDHE-RSA-AES256-GCM-SHA384",
            "tls12",
            TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        ),
        (
            "ECDHE-RSA-AES128-GCM-SHA256",
            "tls12",
            TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        ),
        (
            "ECDHE-RSA-CHACHA20-POLY1305",
            "tls12",
            TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ),
    ]
}

/// Picks suites from an OpenSSL-style list. Keywords (`DEFAULT`, `HIGH`, `ALL`, ...) select
/// every suite of the version; `!X`, `-X`, `+X` exclusions are honoured for known names.
fn select(
    list: Option<&str>,
    version: &str,
    option: &'static str,
) -> Result<Vec<SupportedCipherSuite>, TlsError> {
    let all: Vec<_> = suites().into_iter().filter(|s| s.1 == version).collect();
    let Some(list) = list else {
        return Ok(all.iter().map(|s| s.2).collect());
    };
    let mut chosen: Vec<SupportedCipherSuite> = Vec::new();
    let mut excluded: Vec<&str> = Vec::new();
    let available = || all.iter().map(|s| s.0).collect::<Vec<_>>().join(", ");
    for item in list
        .split([':', ',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        if let Some(x) = item.strip_prefix(['!', '-']) {
            excluded.push(x);
            continue;
        }
        let name = item.trim_start_matches('+');
        let upper = name.to_ascii_uppercase();
        if [
            "DEFAULT",
            "HIGH",
            "ALL",
            "MEDIUM",
            "SECURE",
            "ECDHE",
            "EECDH",
            "AESGCM",
            "CHACHA20",
            "COMPLEMENTOFDEFAULT",
        ]
        .contains(&upper.as_str())
        {
            for s in &all {
                if !chosen.contains(&s.2) {
                    chosen.push(s.2);
                }
            }
            continue;
        }
        match all.iter().find(|s| s.0.eq_ignore_ascii_case(name)) {
            Some(s) => {
                if !chosen.contains(&s.2) {
                    chosen.push(s.2);
                }
            }
            None => {
                return Err(TlsError::UnknownCipher {
                    option,
                    name: name.to_owned(),
                    available: available(),
                });
            }
        }
    }
    chosen.retain(|c| {
        !all.iter()
            .any(|s| s.2 == *c && excluded.iter().any(|x| x.eq_ignore_ascii_case(s.0)))
    });
    if chosen.is_empty() {
        return Err(TlsError::UnknownCipher {
            option,
            name: list.to_owned(),
            available: available(),
        });
    }
    Ok(chosen)
}

/// The user the process runs as (for file permission messages): the name of its effective
/// user id, which is what file access is checked against (`$USER` may still name the user
/// who started it, e.g. under `setpriv` or `sudo -u`).
pub fn process_user() -> String {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(str::to_owned))
        });
    let Some(uid) = uid else {
        return std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "unknown".to_owned());
    };
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines()
                .find(|l| l.split(':').nth(2) == Some(uid.as_str()))
                .and_then(|l| l.split(':').next().map(str::to_owned))
        })
        .unwrap_or(uid)
}

/// A date for log lines, UTC.
fn date(t: rustls::pki_types::UnixTime) -> String {
    let secs = i64::try_from(t.as_secs()).unwrap_or(i64::MAX);
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(d) => format!(
            "{}-{:02}-{:02} {:02}:{:02} UTC",
            d.year(),
            u8::from(d.month()),
            d.day(),
            d.hour(),
            d.minute()
        ),
        Err(_) => format!("{secs} (Unix time)"),
    }
}

/// A file the broker may not read, with the fix: when a directory on the way cannot be
/// entered (`tern pki` makes its directory 0700), that directory is named, since changing the
/// file alone would not help.
fn read_error(what: &'static str, path: &Path, source: io::Error) -> TlsError {
    let user = process_user();
    let p = path.display();
    let fix = match (source.kind(), blocking_dir(path)) {
        (io::ErrorKind::PermissionDenied, Some(dir)) => {
            let d = dir.display();
            format!(
                "The directory {d} cannot be entered by that user (`tern pki` makes its directory readable by its owner only). Give that user the directory, e.g. `chown -R {user} {d}`, or run tern as the directory's owner"
            )
        }
        (io::ErrorKind::PermissionDenied, None) => format!(
            "Make the file readable by that user, e.g. `chown {user} {p}` and `chmod 600 {p}`, or run tern as the file's owner"
        ),
        _ => format!("Check that {p} is a readable file and that user '{user}' may read it"),
    };
    TlsError::Read {
        what,
        path: p.to_string(),
        user,
        source,
        fix,
    }
}

/// The nearest directory above `path` that this process cannot look into, if any.
fn blocking_dir(path: &Path) -> Option<PathBuf> {
    let mut outer: Option<&Path> = None;
    let ancestors: Vec<&Path> = path
        .ancestors()
        .filter(|a| !a.as_os_str().is_empty())
        .collect();
    for a in ancestors.into_iter().rev() {
        match std::fs::metadata(a) {
            Ok(_) => outer = Some(a),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                return outer.map(Path::to_path_buf);
            }
            Err(_) => return None,
        }
    }
    None
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    let option = match what {
        "key file" => "keyfile",
        "certificate file" => "certfile",
        "CA file" => "cafile",
        "CRL file" => "crlfile",
        _ => "the option",
    };
    let missing = || TlsError::Content {
        path: path.display().to_string(),
        detail: format!(
            "the {what} does not exist (No such file or directory); fix the {option} path, or make the files with `tern pki ca` and `tern pki server`"
        ),
    };
    let denied = |source: io::Error| read_error(what, path, source);
    // `metadata` tells a missing file from one behind a directory the broker may not enter
    // (`tern pki` makes its directory 0700): `exists()` says "false" for both.
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => {
            return Err(TlsError::Content {
                path: path.display().to_string(),
                detail: format!(
                    "the {what} path is a directory (Is a directory); point {option} at the PEM file itself"
                ),
            });
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(missing()),
        Err(e) => return Err(denied(e)),
    }
    std::fs::read(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => missing(),
        _ => denied(e),
    })
}

fn content(path: &Path, detail: impl ToString) -> TlsError {
    TlsError::Content {
        path: path.display().to_string(),
        detail: detail.to_string(),
    }
}

/// The files of a `capath` directory, by name (symlinks followed: `openssl rehash` makes
/// `xxxxxxxx.N` links to the certificates).
fn capath_files(dir: &Path) -> Result<Vec<PathBuf>, TlsError> {
    let entries =
        std::fs::read_dir(dir).map_err(|source| read_error("capath directory", dir, source))?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    Ok(found)
}

/// The CAs that sign client certificates (`cafile`, then every certificate in `capath`), and
/// a warning naming the `capath` files that hold no certificate. Mosquitto (OpenSSL) reads
/// only the hash-named links `openssl rehash` makes; tern reads every file and skips keys,
/// CRLs and notes, so a directory prepared for Mosquitto works unchanged.
fn load_roots(o: &TlsOptions) -> Result<(Option<RootCertStore>, Option<String>), TlsError> {
    let mut roots = RootCertStore::empty();
    let mut any = false;
    let mut warning = None;
    let add = |roots: &mut RootCertStore, f: &Path, certs: Vec<CertificateDer<'static>>| {
        for c in certs {
            roots
                .add(c)
                .map_err(|e| content(f, format!("not a usable CA certificate: {e}")))?;
        }
        Ok::<(), TlsError>(())
    };
    if let Some(f) = &o.cafile {
        let pem = read("CA file", f)?;
        let certs = tern_pki::load_certs(&pem).map_err(|e| content(f, e))?;
        add(&mut roots, f, certs)?;
        any = true;
    }
    if let Some(dir) = &o.capath {
        let mut skipped = Vec::new();
        let mut found = 0usize;
        for f in capath_files(dir)? {
            let pem = read("CA file", &f)?;
            match tern_pki::load_certs(&pem) {
                Ok(certs) if !certs.is_empty() => {
                    add(&mut roots, &f, certs)?;
                    found += 1;
                }
                _ => skipped.push(f.file_name().map_or_else(
                    || f.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                )),
            }
        }
        if found == 0 {
            return Err(content(
                dir,
                "the capath directory holds no certificate; put the CA certificate that signs the client certificates there (e.g. ca.crt from `tern pki ca`), or use cafile",
            ));
        }
        if !skipped.is_empty() {
            warning = Some(format!(
                "capath {}: skipped {} that hold no certificate ({}); only the certificates in it are trusted",
                dir.display(),
                if skipped.len() == 1 {
                    "1 file".to_owned()
                } else {
                    format!("{} files", skipped.len())
                },
                skipped.join(", ")
            ));
        }
        any = true;
    }
    Ok((any.then_some(roots), warning))
}

fn load_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let bytes = read("CRL file", path)?;
    let pem: Vec<_> = CertificateRevocationListDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| content(path, format!("not a PEM CRL: {e:?}")))?;
    if pem.is_empty() {
        // DER, as `openssl ca -gencrl -outform DER` writes.
        return Ok(vec![CertificateRevocationListDer::from(bytes)]);
    }
    Ok(pem)
}

/// The loaded certificate chain and key, for start-up warnings.
#[derive(Debug)]
pub struct Loaded {
    pub config: ServerConfig,
    pub warnings: Vec<String>,
    /// The `capath` files that hold no certificate, in a sentence (kept apart so that a
    /// reload repeats it only when the set of files changes).
    pub capath_warning: Option<String>,
    /// `ciphers` offers no TLS 1.2 suite the certificate's key can sign for, in a sentence
    /// without the option's FILE:LINE (the caller knows it).
    pub ciphers_warning: Option<String>,
}

/// Builds a rustls `ServerConfig` from the options, reading every file. Keys are read first
/// so that a key the broker cannot read stops start-up before anything else happens.
pub fn build(o: &TlsOptions) -> Result<Loaded, TlsError> {
    let key_pem = read("key file", &o.keyfile)?;
    let key: PrivateKeyDer<'static> =
        tern_pki::load_private_key(&key_pem).map_err(|e| content(&o.keyfile, e))?;
    let cert_pem = read("certificate file", &o.certfile)?;
    let chain: Vec<CertificateDer<'static>> =
        tern_pki::load_certs(&cert_pem).map_err(|e| content(&o.certfile, e))?;
    let label = o.certfile.file_name().map_or_else(
        || o.certfile.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    if let Some(leaf) = chain.first()
        && matches!(tern_pki::key_matches(leaf, &key), Ok(false))
    {
        // Mosquitto refuses these files too ("key values mismatch"): every handshake would
        // fail, so stop here (and on reload, keep the files in service).
        return Err(content(
            &o.keyfile,
            format!(
                "this key does not belong to the certificate in {}; give the key that was made with it, or issue a new pair with `tern pki server`",
                o.certfile.display()
            ),
        ));
    }
    let warnings =
        tern_pki::server_cert_warnings(&label, &chain, Some(&key), time::OffsetDateTime::now_utc());

    let mut suites = select(o.ciphers_tls13.as_deref(), "tls13", "ciphers_tls1.3")?;
    let tls12 = if o.min_version == MinVersion::Tls12 {
        select(o.ciphers.as_deref(), "tls12", "ciphers")?
    } else {
        Vec::new()
    };
    suites.extend(tls12.iter().copied());
    let provider = Arc::new(CryptoProvider {
        cipher_suites: suites,
        ..rustls::crypto::ring::default_provider()
    });
    let versions: &[&rustls::SupportedProtocolVersion] = match o.min_version {
        MinVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        MinVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let builder =
        ServerConfig::builder_with_provider(provider.clone()).with_protocol_versions(versions)?;
    let (roots, capath_warning) = load_roots(o)?;
    let builder = match roots {
        Some(roots) => {
            let mut v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            if let Some(crl) = &o.crlfile {
                v = v.with_crls(load_crls(crl)?);
            }
            if !o.require_certificate {
                v = v.allow_unauthenticated();
            }
            let verifier = v.build().map_err(|e| match (&e, &o.crlfile) {
                (rustls::server::VerifierBuilderError::InvalidCrl(_), Some(crl)) => content(
                    crl,
                    "this is not a certificate revocation list tern can read (PEM or DER). Make a new one with `tern pki revoke NAME` (or `openssl ca -gencrl`)",
                ),
                _ => TlsError::Content {
                    path: "cafile".into(),
                    detail: e.to_string(),
                },
            })?;
            builder.with_client_cert_verifier(verifier)
        }
        None if o.require_certificate => return Err(TlsError::RequireCertWithoutCa),
        None => builder.with_no_client_auth(),
    };
    // Not `with_single_cert`: it parses the certificate with webpki, which refuses X.509 v1
    // (what the tutorial's openssl commands make). tern serves such a certificate anyway —
    // pinning clients accept it — and the start-up warnings say how to reissue it.
    let signing_key = provider_key(&key)
        .map_err(|e| content(&o.keyfile, format!("the key cannot be used for TLS: {e}")))?;
    let ciphers_warning = unusable_tls12_ciphers(o, &tls12, signing_key.algorithm());
    let certified = Arc::new(rustls::sign::CertifiedKey::new(chain, signing_key));
    let mut config = builder.with_cert_resolver(Arc::new(SingleCert(certified)));
    config.max_fragment_size = o.max_fragment_size;
    // Session resumption saves constrained devices seconds per reconnect.
    config.session_storage = rustls::server::ServerSessionMemoryCache::new(4096);
    if let Ok(t) = rustls::crypto::ring::Ticketer::new() {
        config.ticketer = t;
    }
    Ok(Loaded {
        config,
        warnings,
        capath_warning,
        ciphers_warning,
    })
}

/// A sentence when `ciphers` names TLS 1.2 suites, none of which the certificate's key can
/// sign for (ECDHE-RSA suites only with an ECDSA certificate, or the reverse): every TLS 1.2
/// client would then fail the handshake with "no cipher suite in common".
fn unusable_tls12_ciphers(
    o: &TlsOptions,
    tls12: &[SupportedCipherSuite],
    key: rustls::SignatureAlgorithm,
) -> Option<String> {
    o.ciphers.as_ref()?;
    if tls12.is_empty() || tls12.iter().any(|s| s.usable_for_signature_algorithm(key)) {
        return None;
    }
    let (kind, family, example) = match key {
        rustls::SignatureAlgorithm::RSA => ("RSA", "ECDHE-RSA", "ECDHE-RSA-AES128-GCM-SHA256"),
        rustls::SignatureAlgorithm::ED25519 => {
            ("Ed25519", "ECDHE-ECDSA", "ECDHE-ECDSA-AES128-GCM-SHA256")
        }
        _ => ("ECDSA", "ECDHE-ECDSA", "ECDHE-ECDSA-AES128-GCM-SHA256"),
    };
    Some(format!(
        "ciphers offers no TLS 1.2 suite for the {kind} key of the certificate {}, so no TLS 1.2 client can connect; add {family} suites to ciphers (e.g. {example}), remove the ciphers line, or serve a certificate whose key type matches the suites",
        o.certfile.display()
    ))
}

fn provider_key(
    key: &PrivateKeyDer<'static>,
) -> Result<Arc<dyn rustls::sign::SigningKey>, RustlsError> {
    rustls::crypto::ring::default_provider()
        .key_provider
        .load_private_key(key.clone_key())
}

/// Always the same certificate chain and key.
#[derive(Debug)]
struct SingleCert(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for SingleCert {
    fn resolve(
        &self,
        _: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// One file a listener uses, with the option that names it and its modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    option: &'static str,
    /// The path the log names: the file, or the `capath` directory for its files.
    shown: PathBuf,
    path: PathBuf,
    modified: Option<SystemTime>,
}

/// Modification times of the files a listener uses (for reload on change): the files, and
/// for `capath` the directory itself (entries added, removed or renamed) and each file in it.
fn stamp(o: &TlsOptions) -> Vec<Stamp> {
    let at = |option: &'static str, shown: &Path, path: &Path| Stamp {
        option,
        shown: shown.to_path_buf(),
        path: path.to_path_buf(),
        modified: std::fs::metadata(path).and_then(|m| m.modified()).ok(),
    };
    let mut out: Vec<Stamp> = [
        ("certfile", Some(&o.certfile)),
        ("keyfile", Some(&o.keyfile)),
        ("cafile", o.cafile.as_ref()),
        ("crlfile", o.crlfile.as_ref()),
    ]
    .into_iter()
    .filter_map(|(option, p)| p.map(|p| at(option, p, p)))
    .collect();
    if let Some(dir) = &o.capath {
        out.push(at("capath", dir, dir));
        out.extend(
            capath_files(dir)
                .unwrap_or_default()
                .iter()
                .map(|p| at("capath", dir, p)),
        );
    }
    out
}

/// The options and files (`crlfile /etc/tern/ca.crl`) whose entries differ between two
/// stamps: changed, added or removed files. Each option is named once.
fn changed(old: &[Stamp], new: &[Stamp]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let differs = |a: &Stamp, other: &[Stamp]| !other.iter().any(|b| b == a);
    for s in new
        .iter()
        .filter(|s| differs(s, old))
        .chain(old.iter().filter(|s| differs(s, new)))
    {
        let named = format!("{} {}", s.option, s.shown.display());
        if !out.contains(&named) {
            out.push(named);
        }
    }
    out
}

/// What a reload did, for the log.
#[derive(Debug)]
pub struct Reloaded {
    /// The options and files that changed on disk since the last load
    /// (`crlfile /etc/tern/ca.crl`); every file when none did (a SIGHUP re-reads them all).
    pub files: Vec<String>,
    /// True when `files` lists every file because none had changed.
    pub unchanged: bool,
    pub warnings: Vec<String>,
}

/// A listener's TLS acceptor whose configuration can be swapped while it serves.
#[derive(Debug)]
pub struct TlsAcceptor {
    pub options: TlsOptions,
    /// The listener, for log lines (`8883`, `127.0.0.1:8883`).
    pub name: String,
    current: Mutex<Arc<ServerConfig>>,
    files: Mutex<Vec<Stamp>>,
    /// The last `capath` warning logged, so that a reload does not repeat it.
    capath_warned: Mutex<Option<String>>,
}

/// Start-up warnings of a TLS listener.
#[derive(Debug, Default)]
pub struct StartWarnings {
    pub warnings: Vec<String>,
    /// See [`Loaded::ciphers_warning`].
    pub ciphers: Option<String>,
}

impl TlsAcceptor {
    /// Loads the files; returns the acceptor and its start-up warnings.
    pub fn new(
        options: TlsOptions,
        name: String,
    ) -> Result<(TlsAcceptor, StartWarnings), TlsError> {
        let loaded = build(&options)?;
        let files = stamp(&options);
        let mut warnings = loaded.warnings;
        warnings.extend(loaded.capath_warning.clone());
        Ok((
            TlsAcceptor {
                options,
                name,
                current: Mutex::new(Arc::new(loaded.config)),
                files: Mutex::new(files),
                capath_warned: Mutex::new(loaded.capath_warning),
            },
            StartWarnings {
                warnings,
                ciphers: loaded.ciphers_warning,
            },
        ))
    }

    /// The configuration new handshakes use.
    pub fn config(&self) -> Arc<ServerConfig> {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Re-reads the files. On error the old configuration stays in service and the error is
    /// returned for the log. Existing connections are not touched. The `capath` warning is
    /// returned only when its set of skipped files differs from the last one warned about.
    pub fn reload(&self) -> Result<Reloaded, TlsError> {
        let new = stamp(&self.options);
        let old = std::mem::replace(
            &mut *self.files.lock().unwrap_or_else(|e| e.into_inner()),
            new.clone(),
        );
        let mut files = changed(&old, &new);
        let unchanged = files.is_empty();
        if unchanged {
            for s in &new {
                let named = format!("{} {}", s.option, s.shown.display());
                if !files.contains(&named) {
                    files.push(named);
                }
            }
        }
        let loaded = build(&self.options)?;
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(loaded.config);
        let mut warnings = loaded.warnings;
        warnings.extend(loaded.ciphers_warning);
        let mut warned = self.capath_warned.lock().unwrap_or_else(|e| e.into_inner());
        if loaded.capath_warning != *warned {
            warnings.extend(loaded.capath_warning.clone());
            *warned = loaded.capath_warning;
        }
        Ok(Reloaded {
            files,
            unchanged,
            warnings,
        })
    }

    /// True when a file changed on disk since the last (re)load.
    pub fn changed_on_disk(&self) -> bool {
        *self.files.lock().unwrap_or_else(|e| e.into_inner()) != stamp(&self.options)
    }
}

/// A failed handshake in plain words (for one info log line).
pub fn explain(e: &io::Error) -> String {
    let Some(err) = e.get_ref().and_then(|i| i.downcast_ref::<RustlsError>()) else {
        return match e.kind() {
            io::ErrorKind::UnexpectedEof => "the client closed the connection during the handshake (it may not trust the broker's certificate; check its CA file)".to_owned(),
            io::ErrorKind::TimedOut => "the handshake did not finish within the connect timeout".to_owned(),
            _ => format!("connection error during the handshake: {e}"),
        };
    };
    match err {
        RustlsError::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => "the client certificate is not signed by a CA this listener trusts (unknown CA; cafile/capath): issue it with the broker's CA (`tern pki client <device name>`) or add the CA that signed it to cafile".to_owned(),
            CertificateError::ExpiredContext { time, not_after } => format!(
                "the client certificate expired on {} (the broker's clock says {}); issue a new one with `tern pki client <device name>`",
                date(*not_after),
                date(*time)
            ),
            CertificateError::Expired => "the client certificate has expired; issue a new one with `tern pki client <device name>`".to_owned(),
            CertificateError::NotValidYetContext { time, not_before } => format!(
                "the client certificate is not valid until {} (the broker's clock says {}); check the clocks of the broker and of the machine that issued it",
                date(*not_before),
                date(*time)
            ),
            CertificateError::NotValidYet => "the client certificate is not valid yet; check the clocks of the broker and of the machine that issued it".to_owned(),
            CertificateError::Revoked => "the client certificate is revoked (crlfile)".to_owned(),
            CertificateError::BadSignature => "the client certificate's signature is invalid".to_owned(),
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => "the client certificate is not for client authentication (its extended key usage does not allow it); reissue it with `tern pki client <device name>`".to_owned(),
            CertificateError::BadEncoding => "the client certificate is malformed (not valid DER); reissue it with `tern pki client <device name>`".to_owned(),
            CertificateError::UnhandledCriticalExtension => "the client certificate has a critical extension the broker does not understand; reissue it with `tern pki client <device name>`".to_owned(),
            CertificateError::UnknownRevocationStatus => "the crlfile has no revocation list from the CA that signed the client certificate; add that CA's CRL to crlfile (`tern pki revoke` writes one)".to_owned(),
            CertificateError::ExpiredRevocationList | CertificateError::ExpiredRevocationListContext { .. } => "the revocation list in crlfile is out of date, so client certificates cannot be checked; regenerate it (`tern pki revoke` writes a fresh one)".to_owned(),
            CertificateError::UnsupportedSignatureAlgorithmContext { .. } | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => "the client certificate is signed with an algorithm the broker does not accept (e.g. SHA-1); reissue it with `tern pki client <device name>`".to_owned(),
            other => format!("the client certificate was refused ({}); check it with `tern pki inspect`", words(other)),
        },
        RustlsError::NoCertificatesPresented => "the client sent no certificate, but require_certificate is true".to_owned(),
        RustlsError::PeerIncompatible(p) => match p {
            PeerIncompatible::NoCipherSuitesInCommon => "no cipher suite in common with the client (check ciphers / ciphers_tls1.3; ESP8266 needs ECDHE with AES-GCM or ChaCha20 over TLS 1.2)".to_owned(),
            PeerIncompatible::Tls12NotOffered | PeerIncompatible::Tls12NotOfferedOrEnabled | PeerIncompatible::SupportedVersionsExtensionRequired => "protocol version mismatch: the client offers only TLS versions this listener does not accept (tls_version)".to_owned(),
            PeerIncompatible::NoSignatureSchemesInCommon => "the client accepts none of the signature algorithms the broker's key can make; serve an ECDSA P-256 or RSA-2048 certificate (`tern pki server`) or update the client's TLS library".to_owned(),
            PeerIncompatible::NoKxGroupsInCommon | PeerIncompatible::NoEcPointFormatsInCommon | PeerIncompatible::UncompressedEcPointsRequired => "the client offers no key exchange the broker supports (tern offers ECDHE with X25519, P-256 and P-384); update the client's TLS library".to_owned(),
            PeerIncompatible::ExtendedMasterSecretExtensionRequired => "the client's TLS 1.2 does not support the extended master secret the broker requires; update the client's TLS library or use TLS 1.3".to_owned(),
            other => format!("the client's TLS is incompatible with this listener ({}); check the client's TLS version and cipher settings", words(other)),
        },
        RustlsError::AlertReceived(a) => match a {
            AlertDescription::UnknownCA => "the client does not trust the broker's certificate (unknown CA): give the client the CA that signed it (ca.crt)".to_owned(),
            AlertDescription::BadCertificate | AlertDescription::CertificateUnknown => "the client refused the broker's certificate (wrong host name, no subjectAltName or not trusted); check it with tern doctor".to_owned(),
            AlertDescription::CertificateExpired => "the client says the broker's certificate has expired (or the client's clock is wrong)".to_owned(),
            AlertDescription::ProtocolVersion => "protocol version mismatch: the client and this listener share no TLS version".to_owned(),
            AlertDescription::HandshakeFailure => "the client ended the handshake (no cipher suite or version in common?)".to_owned(),
            AlertDescription::InternalError => "the client ended the handshake with an internal error; mosquitto_pub/sub and other libmosquitto clients do this when the broker's certificate does not name the host they connected to (check its subjectAltName with tern doctor)".to_owned(),
            AlertDescription::DecryptError => "the client could not verify the handshake signature: the broker's key does not match its certificate".to_owned(),
            AlertDescription::UnsupportedCertificate => "the client refused the broker's certificate as unsuitable (key type or key usage); reissue it with `tern pki server`".to_owned(),
            AlertDescription::CertificateRevoked => "the client says the broker's certificate is revoked; issue a new one with `tern pki server`".to_owned(),
            AlertDescription::AccessDenied => "the client refused the connection after checking the broker's certificate (access denied)".to_owned(),
            other => format!("the client ended the handshake with the TLS alert '{}'", words(other)),
        },
        RustlsError::InvalidMessage(m) => format!("the client sent something that is not TLS ({m:?}); is it speaking plain MQTT to a TLS port?"),
        RustlsError::PeerMisbehaved(m) => format!("the client broke the TLS protocol ({}); update the client's TLS library", words(m)),
        other => format!("the TLS library refused the handshake: {other}"),
    }
}

/// A Rust enum variant's name in lower-case words, without its fields
/// (`NoKxGroupsInCommon { .. }` -> "no kx groups in common"): the detail of an error tern has
/// no sentence for, still readable in a log line.
fn words(value: &impl std::fmt::Debug) -> String {
    let debug = format!("{value:?}");
    let name = debug
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap_or_default();
    let mut out = String::new();
    for (i, ch) in name.chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            out.push(' ');
        }
        out.push(ch.to_ascii_lowercase());
    }
    if out.is_empty() { debug } else { out }
}

/// The user name a certificate gives: its CN (`use_identity_as_username`) or its whole
/// subject in RFC 2253 form (`use_subject_as_username`, as Mosquitto prints it).
pub fn identity(cert: &CertificateDer<'_>, whole_subject: bool) -> Option<String> {
    use x509_parser::prelude::*;
    let (_, x) = X509Certificate::from_der(cert.as_ref()).ok()?;
    let subject = x.subject();
    if !whole_subject {
        return subject
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned);
    }
    let mut parts = Vec::new();
    for rdn in subject.iter().collect::<Vec<_>>().into_iter().rev() {
        for attr in rdn.iter() {
            let oid = attr.attr_type();
            let id = oid.to_id_string();
            let name = match id.as_str() {
                "2.5.4.3" => "CN",
                "2.5.4.11" => "OU",
                "2.5.4.10" => "O",
                "2.5.4.7" => "L",
                "2.5.4.8" => "ST",
                "2.5.4.6" => "C",
                "1.2.840.113549.1.9.1" => "emailAddress",
                other => other,
            };
            let value = attr
                .as_str()
                .unwrap_or("")
                .replace('\\', "\\\\")
                .replace(',', "\\,")
                .replace('+', "\\+");
            parts.push(format!("{name}={value}"));
        }
    }
    Some(parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn explained(e: RustlsError) -> String {
        explain(&io::Error::new(io::ErrorKind::InvalidData, e))
    }

    #[test]
    fn fallback_explanations_are_plain_words() {
        assert_eq!(
            explained(RustlsError::InvalidCertificate(
                CertificateError::InvalidPurpose
            )),
            "the client certificate is not for client authentication (its extended key usage does not allow it); reissue it with `tern pki client <device name>`"
        );
        assert_eq!(
            explained(RustlsError::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure
            )),
            "the client certificate was refused (application verification failure); check it with `tern pki inspect`"
        );
        assert_eq!(
            explained(RustlsError::PeerIncompatible(
                PeerIncompatible::NullCompressionRequired
            )),
            "the client's TLS is incompatible with this listener (null compression required); check the client's TLS version and cipher settings"
        );
        assert_eq!(
            explained(RustlsError::AlertReceived(AlertDescription::DecodeError)),
            "the client ended the handshake with the TLS alert 'decode error'"
        );
        assert_eq!(
            explained(RustlsError::PeerMisbehaved(
                rustls::PeerMisbehaved::TooManyEmptyFragments
            )),
            "the client broke the TLS protocol (too many empty fragments); update the client's TLS library"
        );
        assert_eq!(
            explained(RustlsError::General("boom".into())),
            "the TLS library refused the handshake: unexpected error: boom"
        );
    }

    #[test]
    fn cipher_names_map_and_unknown_lists_available() {
        assert_eq!(
            select(
                Some("ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305"),
                "tls12",
                "ciphers"
            )
            .unwrap()
            .len(),
            2
        );
        assert_eq!(
            select(
                Some("DEFAULT:!ECDHE-RSA-AES256-GCM-SHA384"),
                "tls12",
                "ciphers"
            )
            .unwrap()
            .len(),
            5
        );
        let e = select(Some("AES128-SHA"), "tls12", "ciphers")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("unknown cipher 'AES128-SHA' in ciphers; the ciphers tern offers are: ECDHE-ECDSA-AES256-GCM-SHA384"), "{e}");
        assert_eq!(select(None, "tls13", "ciphers_tls1.3").unwrap().len(), 3);
    }
}
