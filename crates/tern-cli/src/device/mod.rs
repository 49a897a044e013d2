//! `tern device`: tools for boards that talk to the broker. `run` simulates the tutorial's
//! ESP8266 (or a fleet of them). Argument mapping only; the board's logic is in `sim`.

use clap::{Args, Subcommand};

mod link;
pub mod run;
mod sim;

/// `tern device ...`
#[derive(Debug, Args)]
pub struct DeviceArgs {
    #[command(subcommand)]
    pub command: DeviceCommand,
}

#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Simulate the tutorial's ESP8266 board (or a fleet of them with --count): TLS, a
    /// relay and LED driven from the command topic, retained state, status and telemetry.
    ///
    /// Commands on the topic (default test001): ON, OFF, TOGGLE, {"relay":true|false},
    /// {"led":true|false}. Published: devices/<id>/state (retained JSON), devices/<id>/status
    /// ("online" retained; will "offline" retained), devices/<id>/telemetry. Stopping with
    /// --duration, Ctrl-C or SIGTERM publishes "offline" and disconnects cleanly; kill -9
    /// simulates a board losing power (the broker then publishes the will).
    Run(run::RunArgs),
}

/// Runs one `tern device` command; returns the exit status.
pub fn run(args: DeviceArgs) -> anyhow::Result<i32> {
    match args.command {
        DeviceCommand::Run(a) => run::run(a),
    }
}
