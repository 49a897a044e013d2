//! The `tern` binary. Maps arguments to library calls and prints; no protocol or broker logic.
//!
//! Doc comments on arguments are the `--help` text, written for a terminal, not rustdoc.
#![allow(
    rustdoc::broken_intra_doc_links,
    rustdoc::invalid_html_tags,
    rustdoc::bare_urls
)]
use clap::Parser;

mod bench;
mod broker;
mod conn_args;
mod daemon;
mod device;
mod doctor;
mod logging;
mod passwd;
mod paths;
mod pki;
mod pub_cmd;
mod quickstart;
mod sub_cmd;
mod sub_format;

#[derive(Debug, Parser)]
#[command(name = "tern", version, about = "Encrypted MQTT for IoT in one tool")]
enum Cli {
    /// Start a broker with TLS in one command: makes a CA and certificates on first run.
    Quickstart(quickstart::QuickstartArgs),
    /// Run the MQTT broker (accepts mosquitto's command line).
    Broker(broker::BrokerArgs),
    /// Make, inspect and revoke TLS certificates (replaces the openssl commands).
    Pki(pki::PkiArgs),
    /// Diagnose a broker's TLS port as a device would see it.
    Doctor(doctor::DoctorArgs),
    /// Manage a Mosquitto-compatible password file (like mosquitto_passwd).
    Passwd(passwd::PasswdArgs),
    /// Publish a message (mosquitto_pub compatible flags).
    Pub(pub_cmd::PubArgs),
    /// Subscribe and print messages (mosquitto_sub compatible flags).
    Sub(sub_cmd::SubArgs),
    /// Generate MQTT load against a broker on this machine and measure it.
    Bench(bench::BenchArgs),
    /// Device tools: simulate the tutorial's ESP8266 (or a fleet), or write an Arduino sketch.
    Device(device::DeviceArgs),
    /// Print the version.
    Version,
}

/// `-d` for pub/sub: debug logs to stderr.
fn pubsub_logging(debug: bool) {
    if debug {
        let _ = tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter("tern_client=debug,tern_proto=debug")
            .try_init();
    }
}

/// Writes a file atomically (temporary file, then rename), creating its directory.
pub fn write_file(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use anyhow::Context;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn main() -> std::process::ExitCode {
    let code = match Cli::parse() {
        Cli::Quickstart(a) => quickstart::run(a),
        Cli::Broker(a) => broker::run(a),
        Cli::Pki(a) => pki::run(a).map(|()| 0),
        Cli::Doctor(a) => doctor::run(a),
        Cli::Passwd(a) => passwd::run(a),
        Cli::Pub(a) => pub_cmd::run(a),
        Cli::Sub(a) => sub_cmd::run(a),
        Cli::Bench(a) => bench::run(a),
        Cli::Device(a) => device::run(a),
        Cli::Version => {
            println!("tern {}", env!("CARGO_PKG_VERSION"));
            Ok(0)
        }
    };
    match code {
        Ok(c) => std::process::ExitCode::from(u8::try_from(c).unwrap_or(1)),
        Err(e) => {
            eprintln!("Error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
