//! Logging set-up for every subcommand: `tracing`, level from the command line, the
//! configuration file (`log_type`, `log_dest`, `log_timestamp`) or `RUST_LOG`.

use std::path::PathBuf;

use tern_conf::conf::{Config, LogDest, LogType};
use tracing_subscriber::fmt::writer::{BoxMakeWriter, MakeWriterExt};

/// Where log lines go.
#[derive(Debug, Clone)]
pub enum Dest {
    Stderr,
    Stdout,
    File(PathBuf),
}

/// Installs the subscriber for the broker from its configuration. `-v` (log everything)
/// and `-q` (nothing) win over the file, as in Mosquitto. Returns warnings to print.
pub fn init_broker(config: &Config, verbose: bool, quiet: bool) -> Vec<String> {
    let mut warnings = Vec::new();
    let level = if quiet || config.log_type.is_empty() {
        "off"
    } else if verbose
        || config.log_type.contains(&LogType::Debug)
        || config.log_type.contains(&LogType::Subscribe)
    {
        "debug"
    } else if config
        .log_type
        .iter()
        .any(|t| matches!(t, LogType::Information | LogType::Notice))
    {
        "info"
    } else if config.log_type.contains(&LogType::Warning) {
        "warn"
    } else {
        "error"
    };
    let mut dests = Vec::new();
    for d in &config.log_dest {
        match d {
            LogDest::Stderr => dests.push(Dest::Stderr),
            LogDest::Stdout => dests.push(Dest::Stdout),
            LogDest::File(p) => dests.push(Dest::File(p.clone())),
            other => warnings.push(format!(
                "log_dest {other:?} is not supported by tern; logging to stderr instead"
            )),
        }
    }
    if dests.is_empty() && !config.log_dest.is_empty() {
        dests.push(Dest::Stderr);
    }
    if config.log_dest.is_empty() {
        // log_dest none
        init_with("off", &[], config.log_timestamp);
    } else {
        init_with(level, &dests, config.log_timestamp);
    }
    warnings
}

fn init_with(default: &str, dests: &[Dest], timestamps: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        // rustls logs every odd client (an IP address sent as SNI, ...) at warn: one
        // line per connection would flood the log, and tern logs each failed handshake
        // once itself.
        tracing_subscriber::EnvFilter::new(format!("{default},rustls=error"))
    });
    let mut writer: Option<BoxMakeWriter> = None;
    let mut ansi = true;
    for d in dests {
        let w = match d {
            Dest::Stderr => {
                ansi &= std::io::IsTerminal::is_terminal(&std::io::stderr());
                BoxMakeWriter::new(std::io::stderr)
            }
            Dest::Stdout => {
                ansi &= std::io::IsTerminal::is_terminal(&std::io::stdout());
                BoxMakeWriter::new(std::io::stdout)
            }
            Dest::File(p) => {
                ansi = false;
                match std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                {
                    Ok(f) => BoxMakeWriter::new(std::sync::Mutex::new(f)),
                    Err(e) => {
                        eprintln!(
                            "tern: warning: cannot open log file {}: {e}; logging to stderr",
                            p.display()
                        );
                        BoxMakeWriter::new(std::io::stderr)
                    }
                }
            }
        };
        writer = Some(match writer {
            None => w,
            Some(prev) => BoxMakeWriter::new(prev.and(w)),
        });
    }
    let writer = writer.unwrap_or_else(|| BoxMakeWriter::new(std::io::sink));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer)
        .with_target(false);
    let _ = if timestamps {
        builder.try_init()
    } else {
        builder.without_time().try_init()
    };
}
