//! `tern device`: tools for the microcontrollers that talk to the broker.
//!
//! Each subcommand is a module with its own `Args` struct and `run`; this file only
//! dispatches. `sketch` writes an Arduino project for ESP8266 / ESP32. It does no
//! protocol work: certificates are read through tern-pki, topics checked with tern-codec.

use clap::{Args, Subcommand};

mod sketch;
mod template;

/// `tern device ...`
#[derive(Debug, Args)]
pub struct DeviceArgs {
    #[command(subcommand)]
    command: DeviceCommand,
}

/// The `tern device` subcommands.
#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Write an Arduino project (ESP8266 or ESP32, PubSubClient 2.8) that speaks MQTT over
    /// TLS to the broker, checking it one deliberate way (the CA, by default).
    Sketch(sketch::SketchArgs),
}

/// Runs one `tern device` command; the result is the process exit code.
pub fn run(args: DeviceArgs) -> anyhow::Result<i32> {
    match args.command {
        DeviceCommand::Sketch(a) => sketch::run(a),
    }
}
