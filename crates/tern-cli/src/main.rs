//! The `tern` binary. Maps arguments to library calls and prints; no protocol or broker logic.
use clap::Parser;

mod broker;
mod daemon;
mod logging;
mod passwd;

#[derive(Debug, Parser)]
#[command(name = "tern", version, about = "Encrypted MQTT for IoT in one tool")]
enum Cli {
    /// Run the MQTT broker (accepts mosquitto's command line).
    Broker(broker::BrokerArgs),
    /// Print the version.
    Version,
    /// Manage a Mosquitto-compatible password file (like mosquitto_passwd).
    Passwd(passwd::PasswdArgs),
}

fn main() -> std::process::ExitCode {
    let code = match Cli::parse() {
        Cli::Broker(a) => broker::run(a),
        Cli::Passwd(a) => passwd::run(a),
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
