//! The `tern` binary. Maps arguments to library calls and prints; no protocol or broker logic.
use clap::Parser;

mod passwd;

#[derive(Debug, Parser)]
#[command(name = "tern", version, about = "Encrypted MQTT for IoT in one tool")]
enum Cli {
    /// Print the version.
    Version,
    /// Manage a Mosquitto-compatible password file (like mosquitto_passwd).
    Passwd(passwd::PasswdArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse() {
        Cli::Version => println!("tern {}", env!("CARGO_PKG_VERSION")),
        Cli::Passwd(args) => std::process::exit(passwd::run(args)?),
    }
    Ok(())
}
