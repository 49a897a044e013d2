//! The `tern` binary. Maps arguments to library calls and prints; no protocol or broker logic.
use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "tern", version, about = "Encrypted MQTT for IoT in one tool")]
enum Cli {
    /// Print the version.
    Version,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse() {
        Cli::Version => println!("tern {}", env!("CARGO_PKG_VERSION")),
    }
    Ok(())
}
