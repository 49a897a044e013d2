//! Logging set-up for every subcommand: `tracing`, level from the command line, the
//! configuration file (`log_type`, `log_dest`, `log_timestamp`, `log_timestamp_format`) or
//! `RUST_LOG`.

use std::path::PathBuf;

use chrono::format::{Item, StrftimeItems};
use tern_conf::conf::{Config, LogDest, LogType};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::writer::{BoxMakeWriter, MakeWriterExt};

/// Timestamps in a strftime format (`log_timestamp_format`), local time as in Mosquitto.
struct Strftime(Vec<Item<'static>>);

impl FormatTime for Strftime {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        write!(
            w,
            "{}",
            chrono::Local::now().format_with_items(self.0.iter())
        )
    }
}

/// The parsed `log_timestamp_format`, or a warning naming its FILE:LINE when it holds a
/// specifier tern cannot print.
fn timestamp_format(config: &Config) -> Result<Option<Strftime>, String> {
    let Some(format) = &config.log_timestamp_format else {
        return Ok(None);
    };
    match StrftimeItems::new(format).parse_to_owned() {
        Ok(items) => Ok(Some(Strftime(items))),
        Err(_) => {
            let at = config.log_timestamp_format_at.as_ref().map_or_else(
                || "log_timestamp_format".to_owned(),
                |l| format!("{l}: log_timestamp_format"),
            );
            Err(format!(
                "{at}: '{format}' holds a strftime specifier tern does not know, so log lines use the default timestamp; use the usual ones such as %Y-%m-%dT%H:%M:%S"
            ))
        }
    }
}

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
    let format = timestamp_format(config).unwrap_or_else(|w| {
        warnings.push(w);
        None
    });
    let timestamps = if config.log_timestamp {
        Timestamps::Default(format)
    } else {
        Timestamps::None
    };
    if config.log_dest.is_empty() {
        // log_dest none
        init_with("off", &[], timestamps);
    } else {
        init_with(level, &dests, timestamps);
    }
    warnings
}

/// What starts each log line.
enum Timestamps {
    None,
    /// tracing's own (RFC 3339, UTC), or `log_timestamp_format`.
    Default(Option<Strftime>),
}

fn init_with(default: &str, dests: &[Dest], timestamps: Timestamps) {
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
    let _ = match timestamps {
        Timestamps::Default(None) => builder.try_init(),
        Timestamps::Default(Some(format)) => builder.with_timer(format).try_init(),
        Timestamps::None => builder.without_time().try_init(),
    };
}
