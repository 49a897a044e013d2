//! `tern device`: tools for the boards that talk to the broker. `run` simulates the
//! tutorial's ESP8266 (or a fleet of them); `sketch` writes an Arduino project for ESP8266 /
//! ESP32. This file only dispatches: the board's logic is in `sim`, certificates are read
//! through tern-pki, topics checked with tern-codec.

use clap::{Args, Subcommand};

mod link;
pub mod run;
mod sim;
mod sketch;
mod template;

/// `tern device ...`
#[derive(Debug, Args)]
pub struct DeviceArgs {
    #[command(subcommand)]
    pub command: DeviceCommand,
}

/// The `tern device` subcommands (parsed once at start-up, so their size does not matter).
#[allow(clippy::large_enum_variant)]
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
    /// Write an Arduino project (ESP8266 or ESP32, PubSubClient 2.8) that speaks MQTT over
    /// TLS to the broker, checking it one deliberate way (the CA, by default).
    Sketch(sketch::SketchArgs),
}

/// Runs one `tern device` command; the result is the process exit code.
pub fn run(args: DeviceArgs) -> anyhow::Result<i32> {
    match args.command {
        DeviceCommand::Run(a) => run::run(a),
        DeviceCommand::Sketch(a) => sketch::run(a),
    }
}
