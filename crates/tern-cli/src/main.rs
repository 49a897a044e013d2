//! The `tern` binary. Maps arguments to library calls and prints; no protocol or broker logic.
use clap::Parser;

mod bench;
mod broker;
mod daemon;
mod doctor;
mod logging;
mod passwd;
mod paths;
mod pki;

#[derive(Debug, Parser)]
#[command(name = "tern", version, about = "Encrypted MQTT for IoT in one tool")]
enum Cli {
    /// Run the MQTT broker (accepts mosquitto's command line).
    Broker(broker::BrokerArgs),
    /// Make, inspect and revoke TLS certificates (replaces the openssl commands).
    Pki(pki::PkiArgs),
    /// Diagnose a broker's TLS port as a device would see it.
    Doctor(doctor::DoctorArgs),
    /// Manage a Mosquitto-compatible password file (like mosquitto_passwd).
    Passwd(passwd::PasswdArgs),
    /// Generate MQTT load against a broker on this machine and measure it.
    Bench(bench::BenchArgs),
    /// Print the version.
    Version,
}

fn main() -> std::process::ExitCode {
    let code = match Cli::parse() {
        Cli::Broker(a) => broker::run(a),
        Cli::Pki(a) => pki::run(a).map(|()| 0),
        Cli::Doctor(a) => doctor::run(a),
        Cli::Passwd(a) => passwd::run(a),
        Cli::Bench(a) => bench::run(a),
        Cli::Version => {
            println!("tern {}", env!("CARGO_PKG_VERSION"));
            Ok(0)
        }
    };
    match code {
        Ok(c) => std::process::ExitCode::from(u8::try_from(c).unwrap_or(1)),
        Err(e) => {
            eprintln!("tern: error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
