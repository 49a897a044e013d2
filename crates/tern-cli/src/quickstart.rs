//! `tern quickstart`: the zero-configuration secure start. On first run it makes a CA and a
//! server certificate in tern's data directory and writes a mosquitto.conf that listens on
//! loopback 1883 (plain) and 8883 (TLS), with persistence (`tern.db`) in the same directory;
//! then it runs the broker with that file and prints the CA path, the fingerprints and
//! commands to connect. Later runs reuse the files.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use tern_pki::{CaOptions, Fingerprints, PkiDir, ServerOptions};

/// Start a broker with TLS in one command (creates a CA and certificates on first run).
#[derive(Debug, Args)]
pub struct QuickstartArgs {
    /// Where to keep the CA, certificates and configuration (default: tern's data directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Plain MQTT port.
    #[arg(long, default_value_t = 1883)]
    pub port: u16,
    /// MQTT over TLS port.
    #[arg(long, default_value_t = 8883)]
    pub tls_port: u16,
    /// Log everything.
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

pub fn run(args: QuickstartArgs) -> anyhow::Result<i32> {
    let dir = args.dir.unwrap_or_else(crate::paths::data_dir);
    let pki = PkiDir::new(dir.join("pki"));
    let now = time::OffsetDateTime::now_utc();
    let mut made = Vec::new();
    if !pki.ca_cert_path().exists() {
        pki.create_ca(
            &CaOptions {
                now,
                ..CaOptions::default()
            },
            false,
        )
        .context("creating the CA")?;
        made.push(pki.ca_cert_path());
    }
    if !pki.cert_path("server").exists() {
        let ca = pki.load_ca().context("loading the CA")?;
        pki.issue_server(
            &ca,
            "server",
            &ServerOptions {
                now,
                ..ServerOptions::default()
            },
        )
        .context("issuing the server certificate")?;
        made.push(pki.cert_path("server"));
    }
    let conf_path = dir.join("quickstart.conf");
    let conf = format!(
        "# Written by `tern quickstart`. A mosquitto.conf: edit it, or run it with\n\
         # `tern broker -c {conf}` or `mosquitto -c {conf}`.\n\
         allow_anonymous true\n\
         \n\
         # Sessions, queued QoS 1/2 messages and retained messages survive restarts.\n\
         persistence true\n\
         persistence_location {data}/\n\
         \n\
         # Plain MQTT, loopback only.\n\
         listener {port} 127.0.0.1\n\
         \n\
         # MQTT over TLS, loopback only.\n\
         listener {tls} 127.0.0.1\n\
         cafile {ca}\n\
         certfile {cert}\n\
         keyfile {key}\n",
        conf = dir.join("quickstart.conf").display(),
        data = dir.display(),
        port = args.port,
        tls = args.tls_port,
        ca = pki.ca_cert_path().display(),
        cert = pki.cert_path("server").display(),
        key = pki.key_path("server").display(),
    );
    crate::write_file(&conf_path, &conf)?;

    let server_pem = std::fs::read(pki.cert_path("server")).context("reading server.crt")?;
    let chain = tern_pki::load_certs(&server_pem)?;
    let leaf = chain.first().context("server.crt holds no certificate")?;
    let fp = Fingerprints::of(leaf)?;
    let ca = pki.ca_cert_path();
    let mut b = String::new();
    use std::fmt::Write;
    if made.is_empty() {
        let _ = writeln!(
            b,
            "tern: using the CA and server certificate in {}",
            pki.path().display()
        );
    } else {
        for m in &made {
            let _ = writeln!(b, "tern: created {}", m.display());
        }
    }
    let _ = writeln!(b, "tern: configuration {}", conf_path.display());
    let _ = writeln!(
        b,
        "tern: CA certificate (copy it to your clients): {}",
        ca.display()
    );
    let _ = writeln!(
        b,
        "tern: server certificate {}",
        fp.format(
            tern_pki::FingerprintKind::Sha1,
            tern_pki::FingerprintFormat::Openssl
        )
    );
    let _ = writeln!(
        b,
        "tern: server certificate {}",
        fp.format(
            tern_pki::FingerprintKind::Sha256,
            tern_pki::FingerprintFormat::Openssl
        )
    );
    let _ = writeln!(
        b,
        "tern: public key pin (survives renewal) pin-sha256=\"{}\"",
        fp.spki_pin_base64()
    );
    let _ = writeln!(b, "tern: try it in another terminal:");
    let _ = writeln!(
        b,
        "  tern sub -h localhost -p {} --cafile {} -t 'test/#' -v",
        args.tls_port,
        ca.display()
    );
    let _ = writeln!(
        b,
        "  tern pub -h localhost -p {} --cafile {} -t test/hello -m 'Hello MQTT'",
        args.tls_port,
        ca.display()
    );
    let _ = writeln!(
        b,
        "  mosquitto_sub -h localhost -p {} --cafile {} -t 'test/#' -v",
        args.tls_port,
        ca.display()
    );
    let _ = write!(
        b,
        "  mosquitto_pub -h localhost -p {} -t test/plain -m 'no TLS, loopback only'",
        args.port
    );
    let broker = crate::broker::BrokerArgs {
        config: Some(conf_path),
        port: Vec::new(),
        verbose: args.verbose,
        daemon: false,
        quiet: false,
    };
    crate::broker::serve(broker, Some(b))
}
