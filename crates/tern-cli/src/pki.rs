//! `tern pki`: argument parsing and printing for the certificate commands. All the work is
//! done by tern-pki; this module maps arguments, names files in errors, and tells the user
//! what was written and what to run next.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use tern_pki::{
    CaOptions, CertSummary, ClientOptions, FingerprintFormat, FingerprintKind, Fingerprints,
    KeyType, PkiDir, ServerOptions,
};
use time::OffsetDateTime;

use crate::paths;

/// `tern pki ...`
#[derive(Debug, Args)]
pub struct PkiArgs {
    #[command(subcommand)]
    command: PkiCommand,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum KeyArg {
    /// ECDSA P-256: small and fast for the broker (default).
    #[value(name = "ecdsa-p256")]
    EcdsaP256,
    /// RSA 2048: best for ESP8266 (BearSSL is much faster with RSA).
    #[value(name = "rsa-2048")]
    Rsa2048,
    /// RSA 4096: slow on microcontrollers.
    #[value(name = "rsa-4096")]
    Rsa4096,
}

impl From<KeyArg> for KeyType {
    fn from(k: KeyArg) -> Self {
        match k {
            KeyArg::EcdsaP256 => KeyType::EcdsaP256,
            KeyArg::Rsa2048 => KeyType::Rsa2048,
            KeyArg::Rsa4096 => KeyType::Rsa4096,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    /// As OpenSSL prints it: `sha1 Fingerprint=61:5B:...`.
    Openssl,
    /// Lower-case hex.
    Hex,
    /// A C array for Arduino sketches.
    Arduino,
}

#[derive(Debug, Args)]
struct DirArg {
    /// PKI directory [default: $TERN_DATA_DIR/pki, else $XDG_DATA_HOME/tern/pki, else ~/.local/share/tern/pki]
    #[arg(long)]
    dir: Option<PathBuf>,
}

impl DirArg {
    /// The directory, made absolute so the paths printed for mosquitto.conf work from
    /// anywhere.
    fn pki(&self) -> PkiDir {
        let dir = self
            .dir
            .clone()
            .unwrap_or_else(|| paths::data_dir().join("pki"));
        PkiDir::new(std::path::absolute(&dir).unwrap_or(dir))
    }
}

#[derive(Debug, Args)]
struct ExternalCa {
    /// Sign with this CA certificate instead of DIR/ca.crt (e.g. the tutorial's ca.crt).
    #[arg(long, requires = "ca_key", value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// The CA's private key (PKCS#8, PKCS#1 "RSA PRIVATE KEY" or SEC1 "EC PRIVATE KEY").
    #[arg(long, requires = "ca_cert", value_name = "FILE")]
    ca_key: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum PkiCommand {
    /// Make a CA: ca.key and ca.crt (what `openssl genrsa` + `openssl req -x509` made).
    Ca {
        #[command(flatten)]
        dir: DirArg,
        /// Common name of the CA.
        #[arg(long, default_value = "tern CA")]
        cn: String,
        /// Lifetime in days.
        #[arg(long, default_value_t = 3650)]
        days: u32,
        /// Key type.
        #[arg(long, value_enum, default_value = "ecdsa-p256")]
        key: KeyArg,
        /// Replace an existing CA (every certificate it issued stops verifying).
        #[arg(long)]
        force: bool,
    },
    /// Issue the broker's certificate: server.key and server.crt, signed by the CA.
    ///
    /// Without --host or --ip the certificate is for localhost, 127.0.0.1, ::1 and this
    /// machine's host name. Use --key rsa-2048 for ESP8266 devices.
    Server {
        #[command(flatten)]
        dir: DirArg,
        /// DNS name clients connect to (repeatable); the first is also the CN.
        #[arg(long = "host", value_name = "NAME")]
        hosts: Vec<String>,
        /// IP address clients connect to (repeatable).
        #[arg(long = "ip", value_name = "ADDR")]
        ips: Vec<IpAddr>,
        /// Lifetime in days.
        #[arg(long, default_value_t = 825)]
        days: u32,
        /// Key type (rsa-2048 for ESP8266).
        #[arg(long, value_enum, default_value = "ecdsa-p256")]
        key: KeyArg,
        #[command(flatten)]
        ca: ExternalCa,
        /// File name stem: writes NAME.crt and NAME.key.
        #[arg(long, default_value = "server")]
        name: String,
    },
    /// Issue a client certificate NAME.crt / NAME.key (CN = NAME) for mutual TLS.
    Client {
        /// Client name: the certificate's CN (Mosquitto's user name with
        /// use_identity_as_username) and the file name stem.
        name: String,
        #[command(flatten)]
        dir: DirArg,
        /// Lifetime in days.
        #[arg(long, default_value_t = 825)]
        days: u32,
        /// Key type (rsa-2048 for ESP8266).
        #[arg(long, value_enum, default_value = "ecdsa-p256")]
        key: KeyArg,
        /// Also write NAME.p12 (PKCS#12: certificate, key and CA).
        #[arg(long)]
        p12: bool,
        /// Password for NAME.p12 (a random one is made and printed when omitted).
        #[arg(long, requires = "p12", env = "TERN_P12_PASSWORD")]
        p12_password: Option<String>,
        #[command(flatten)]
        ca: ExternalCa,
    },
    /// Print a certificate's fingerprint (default: SHA-1 as `openssl x509 -fingerprint -sha1`).
    Fingerprint {
        /// Certificate file (PEM; the first certificate is used).
        file: PathBuf,
        /// SHA-1 of the certificate (ESP8266 setFingerprint).
        #[arg(long, group = "digest")]
        sha1: bool,
        /// SHA-256 of the certificate (ESP32).
        #[arg(long, group = "digest")]
        sha256: bool,
        /// SHA-256 of the public key (pin that survives renewal with the same key).
        #[arg(long, group = "digest")]
        spki: bool,
        /// Output format.
        #[arg(long, value_enum, default_value = "openssl")]
        format: FormatArg,
    },
    /// Explain a certificate (and optionally check its key) with warnings in plain words.
    Inspect {
        /// Certificate file (PEM, may hold a chain).
        file: PathBuf,
        /// Private key to check against the certificate.
        #[arg(long, value_name = "KEY")]
        key: Option<PathBuf>,
    },
    /// Revoke a certificate by name or serial and rewrite ca.crl.
    Revoke {
        /// Name given at issue (e.g. sensor-1) or serial number in hex.
        name_or_serial: String,
        #[command(flatten)]
        dir: DirArg,
    },
    /// Re-sign ca.crl (run before its nextUpdate, or Mosquitto refuses every client).
    Crl {
        #[command(flatten)]
        dir: DirArg,
        /// Days until nextUpdate.
        #[arg(long, default_value_t = tern_pki::CRL_DAYS)]
        days: u32,
    },
    /// Print a C header for device sketches: CA PEM, fingerprints, SPKI pin.
    Header {
        #[command(flatten)]
        dir: DirArg,
        /// Server certificate [default: DIR/server.crt].
        #[arg(long, value_name = "FILE")]
        server_cert: Option<PathBuf>,
        /// CA certificate [default: DIR/ca.crt].
        #[arg(long, value_name = "FILE")]
        ca_cert: Option<PathBuf>,
    },
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn load_signer(pki: &PkiDir, ca: &ExternalCa) -> Result<(tern_pki::CaSigner, PathBuf)> {
    match (&ca.ca_cert, &ca.ca_key) {
        (Some(c), Some(k)) => {
            let signer = tern_pki::CaSigner::from_pem(&read(c)?, &read(k)?).with_context(|| {
                format!(
                    "cannot sign with --ca-cert {} --ca-key {}",
                    c.display(),
                    k.display()
                )
            })?;
            Ok((signer, c.clone()))
        }
        _ => Ok((pki.load_ca()?, pki.ca_cert_path())),
    }
}

fn day(t: OffsetDateTime) -> String {
    t.date().to_string()
}

/// Runs one `tern pki` command.
pub fn run(args: PkiArgs) -> Result<()> {
    match args.command {
        PkiCommand::Ca {
            dir,
            cn,
            days,
            key,
            force,
        } => {
            let pki = dir.pki();
            let opts = CaOptions {
                common_name: cn,
                days,
                key_type: key.into(),
                ..CaOptions::default()
            };
            let made = pki.create_ca(&opts, force)?;
            println!(
                "wrote {} (CA private key, mode 0600: keep it secret, ideally off the broker)",
                pki.ca_key_path().display()
            );
            println!(
                "wrote {} (CN={}, {}, serial {}, valid until {})",
                pki.ca_cert_path().display(),
                made.common_name,
                KeyType::from(key),
                made.serial,
                day(made.not_after)
            );
            println!("copy ca.crt to every client (mosquitto_sub --cafile, the device sketch)");
            println!(
                "next: tern pki server --dir {} --host YOUR.BROKER.HOST",
                pki.path().display()
            );
        }
        PkiCommand::Server {
            dir,
            hosts,
            ips,
            days,
            key,
            ca,
            name,
        } => {
            let pki = dir.pki();
            let (signer, ca_path) = load_signer(&pki, &ca)?;
            let opts = ServerOptions {
                hosts,
                ips,
                days,
                key_type: key.into(),
                ..ServerOptions::default()
            };
            let made = pki.issue_server(&signer, &name, &opts)?;
            let summary = CertSummary::of(&made.cert_der)?;
            let (crt, keyp) = (pki.cert_path(&name), pki.key_path(&name));
            println!("wrote {} (private key, mode 0600)", keyp.display());
            println!(
                "wrote {} (CN={}, {}, valid until {})",
                crt.display(),
                made.common_name,
                KeyType::from(key),
                day(made.not_after)
            );
            println!("  names: {}", summary.sans.join(", "));
            println!("  signed by {}", signer.subject());
            println!(
                "  {}",
                summary
                    .fingerprints
                    .format(FingerprintKind::Sha1, FingerprintFormat::Openssl)
            );
            println!();
            println!("mosquitto.conf:");
            println!("  listener 8883");
            println!("  cafile {}", ca_path.display());
            println!("  certfile {}", crt.display());
            println!("  keyfile {}", keyp.display());
            println!(
                "  (Debian's mosquitto runs as user mosquitto: copy the three files to /etc/mosquitto/certs/ and `chown mosquitto {}` there)",
                keyp.file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
            );
            let host = summary
                .dns_names
                .first()
                .cloned()
                .or_else(|| summary.ip_addresses.first().map(IpAddr::to_string))
                .unwrap_or_else(|| "localhost".to_owned());
            println!();
            println!(
                "test: mosquitto_sub -h {host} -p 8883 --cafile {} -t test",
                ca_path.display()
            );
            println!(
                "      tern doctor {host}:8883 --cafile {}",
                ca_path.display()
            );
            println!(
                "device header: tern pki header --dir {}",
                pki.path().display()
            );
        }
        PkiCommand::Client {
            name,
            dir,
            days,
            key,
            p12,
            p12_password,
            ca,
        } => {
            let pki = dir.pki();
            let (signer, ca_path) = load_signer(&pki, &ca)?;
            let opts = ClientOptions {
                days,
                key_type: key.into(),
                ..ClientOptions::default()
            };
            let generated;
            let password = if p12 {
                match p12_password {
                    Some(p) => Some(p),
                    None => {
                        generated = random_password()?;
                        Some(generated)
                    }
                }
            } else {
                None
            };
            let made = pki.issue_client(&signer, &name, &opts, password.as_deref())?;
            let (crt, keyp) = (pki.cert_path(&name), pki.key_path(&name));
            println!("wrote {} (private key, mode 0600)", keyp.display());
            println!(
                "wrote {} (CN={}, clientAuth, {}, serial {}, valid until {})",
                crt.display(),
                made.common_name,
                KeyType::from(key),
                made.serial,
                day(made.not_after)
            );
            if let Some(pw) = &password {
                println!(
                    "wrote {} (PKCS#12, mode 0600), password: {pw}",
                    pki.p12_path(&name).display()
                );
            }
            println!();
            println!("broker (mosquitto.conf, in the TLS listener):");
            println!("  require_certificate true");
            println!("  use_identity_as_username true   # the MQTT user name becomes \"{name}\"");
            println!(
                "test: mosquitto_pub -h HOST -p 8883 --cafile {} --cert {} --key {} -t test -m hello",
                ca_path.display(),
                crt.display(),
                keyp.display()
            );
            println!(
                "revoke later with: tern pki revoke {name} --dir {}",
                pki.path().display()
            );
        }
        PkiCommand::Fingerprint {
            file,
            sha1: _,
            sha256,
            spki,
            format,
        } => {
            let certs = tern_pki::load_certs(&read(&file)?)
                .with_context(|| format!("cannot read a certificate from {}", file.display()))?;
            let Some(leaf) = certs.first() else {
                bail!("{} holds no certificate", file.display());
            };
            let fp = Fingerprints::of(leaf)?;
            let kind = if sha256 {
                FingerprintKind::Sha256
            } else if spki {
                FingerprintKind::Spki
            } else {
                FingerprintKind::Sha1
            };
            let format = match format {
                FormatArg::Openssl => FingerprintFormat::Openssl,
                FormatArg::Hex => FingerprintFormat::Hex,
                FormatArg::Arduino => FingerprintFormat::Arduino,
            };
            println!("{}", fp.format(kind, format));
        }
        PkiCommand::Inspect { file, key } => {
            let cert = read(&file)?;
            let key_bytes = key.as_deref().map(read).transpose()?;
            let report = tern_pki::inspect(&cert, key_bytes.as_deref(), OffsetDateTime::now_utc())
                .with_context(|| match &key {
                    Some(k) => {
                        format!("cannot inspect {} with key {}", file.display(), k.display())
                    }
                    None => format!("cannot inspect {}", file.display()),
                })?;
            print!("{report}");
        }
        PkiCommand::Revoke {
            name_or_serial,
            dir,
        } => {
            let pki = dir.pki();
            let r = tern_pki::revoke(&pki, &name_or_serial, OffsetDateTime::now_utc())?;
            for e in &r.newly_revoked {
                println!("revoked {} (serial {})", e.name, e.serial);
            }
            for e in &r.already_revoked {
                println!("already revoked: {} (serial {})", e.name, e.serial);
            }
            print_crl(&r.crl);
        }
        PkiCommand::Crl { dir, days } => {
            let pki = dir.pki();
            let info = tern_pki::write_crl(&pki, OffsetDateTime::now_utc(), days)?;
            print_crl(&info);
        }
        PkiCommand::Header {
            dir,
            server_cert,
            ca_cert,
        } => {
            let pki = dir.pki();
            let ca = ca_cert.unwrap_or_else(|| pki.ca_cert_path());
            let srv = server_cert.unwrap_or_else(|| pki.cert_path("server"));
            let header = tern_pki::device_header(&read(&ca)?, &read(&srv)?).with_context(|| {
                format!(
                    "cannot make a header from {} and {}",
                    ca.display(),
                    srv.display()
                )
            })?;
            print!("{header}");
        }
    }
    Ok(())
}

fn print_crl(info: &tern_pki::CrlInfo) {
    println!(
        "wrote {} (CRL number {}, {} revoked, next update {})",
        info.path.display(),
        info.number,
        info.entries,
        day(info.next_update)
    );
    println!(
        "mosquitto.conf (TLS listener): crlfile {}",
        info.path.display()
    );
    println!(
        "then reload the broker (kill -HUP); re-sign before {} with: tern pki crl --dir {}",
        day(info.next_update),
        info.path
            .parent()
            .map_or_else(|| ".".into(), |p| p.display().to_string())
    );
}

fn random_password() -> Result<String> {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 16];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("the system random generator failed; pass --p12-password"))?;
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect())
}
