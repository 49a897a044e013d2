//! The `tern` binary. Maps arguments to library calls and prints; no protocol or broker logic.
use clap::Parser;

mod conn_args;
mod pub_cmd;
mod sub_cmd;
mod sub_format;

#[derive(Debug, Parser)]
#[command(name = "tern", version, about = "Encrypted MQTT for IoT in one tool")]
enum Cli {
    /// Print the version.
    Version,
    /// Publish a message (mosquitto_pub compatible flags).
    Pub(pub_cmd::PubArgs),
    /// Subscribe and print messages (mosquitto_sub compatible flags).
    Sub(sub_cmd::SubArgs),
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

fn main() -> anyhow::Result<()> {
    match Cli::parse() {
        Cli::Version => println!("tern {}", env!("CARGO_PKG_VERSION")),
        Cli::Pub(a) => std::process::exit(pub_cmd::run(a)?),
        Cli::Sub(a) => std::process::exit(sub_cmd::run(a)?),
    }
    Ok(())
}
