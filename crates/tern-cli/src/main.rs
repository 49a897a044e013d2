//! The `tern` binary. Maps arguments to library calls and prints; no protocol or broker logic.
use clap::Parser;

mod doctor;
mod paths;
mod pki;

#[derive(Debug, Parser)]
#[command(name = "tern", version, about = "Encrypted MQTT for IoT in one tool")]
enum Cli {
    /// Print the version.
    Version,
    /// Make, inspect and revoke TLS certificates (replaces the openssl commands).
    Pki(pki::PkiArgs),
    /// Diagnose a broker's TLS port as a device would see it.
    Doctor(doctor::DoctorArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse() {
        Cli::Version => println!("tern {}", env!("CARGO_PKG_VERSION")),
        Cli::Pki(args) => pki::run(args)?,
        Cli::Doctor(args) => std::process::exit(doctor::run(args)?),
    }
    Ok(())
}
