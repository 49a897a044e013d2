//! `tern pub`: mosquitto_pub's flags and behaviour. Publishes one message (`-m`, `-f`, `-s`,
//! `-n`), or one per stdin line (`-l`), optionally repeated, waits for every
//! acknowledgement, then disconnects. Exit status as mosquitto_pub: 0, the CONNACK code on
//! refusal, 1 on other errors.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use tern_client::{Client, ClientError, Message, PublishHandle};
use tokio::io::AsyncBufReadExt;

use crate::conn_args::{ConnArgs, exit_code, parse_qos, report};

/// Publish MQTT messages (mosquitto_pub compatible).
#[derive(Debug, Clone, Args)]
#[command(disable_help_flag = true)]
pub struct PubArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Topic to publish to.
    #[arg(short = 't', long = "topic")]
    pub topic: Option<String>,
    /// Message payload.
    #[arg(short = 'm', long = "message")]
    pub message: Option<String>,
    /// Send the contents of a file as the message.
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// Read the message from stdin, sending the whole input as one message.
    #[arg(short = 's', long = "stdin-file")]
    pub stdin_file: bool,
    /// Read messages from stdin, one message per line.
    #[arg(short = 'l', long = "stdin-line")]
    pub stdin_line: bool,
    /// Send a zero-length (null) message.
    #[arg(short = 'n', long = "null-message")]
    pub null_message: bool,
    /// Quality of service: 0, 1 or 2.
    #[arg(short = 'q', long = "qos", default_value_t = 0)]
    pub qos: u8,
    /// Retain the message.
    #[arg(short = 'r', long = "retain")]
    pub retain: bool,
    /// Publish the message this many times.
    #[arg(long = "repeat", default_value_t = 1)]
    pub repeat: u32,
    /// Seconds between repeats (fractions allowed).
    #[arg(long = "repeat-delay", default_value_t = 0.0)]
    pub repeat_delay: f64,
}

enum Source {
    Bytes(Vec<u8>),
    Lines,
}

/// Acknowledgements awaited at once with `-l` (older ones are waited for first).
const MAX_OUTSTANDING: usize = 1000;

pub fn run(args: PubArgs) -> anyhow::Result<i32> {
    crate::pubsub_logging(args.conn.debug);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(run_async(args))
}

async fn run_async(args: PubArgs) -> anyhow::Result<i32> {
    let quiet = args.conn.quiet;
    let resolved = match args.conn.resolve("pub") {
        Ok(r) => r,
        Err(e) => {
            report(quiet, "tern pub", &e);
            eprintln!("Use 'tern pub --help' to see usage.");
            return Ok(1);
        }
    };
    let source = match source(&args) {
        Ok(s) => s,
        Err(e) => {
            report(quiet, "tern pub", &e);
            eprintln!("Use 'tern pub --help' to see usage.");
            return Ok(1);
        }
    };
    let Some(topic) = args.topic.clone().or(resolved.url_topic.clone()) else {
        report(
            quiet,
            "tern pub",
            &"a topic is needed: add -t TOPIC (or a topic in the -L URL)",
        );
        return Ok(1);
    };
    if let Err(e) = tern_codec::topic::validate_name(&topic) {
        report(
            quiet,
            "tern pub",
            &format!(
                "invalid publish topic '{topic}': {e} (wildcards + and # are for subscribing)"
            ),
        );
        return Ok(1);
    }
    let qos = match parse_qos(args.qos, "-q") {
        Ok(q) => q,
        Err(e) => {
            report(quiet, "tern pub", &e);
            return Ok(1);
        }
    };
    if !(0.0..=86_400.0).contains(&args.repeat_delay) {
        report(
            quiet,
            "tern pub",
            &"--repeat-delay must be 0 to 86400 seconds",
        );
        return Ok(1);
    }
    let version = resolved.version;
    let publish_props = resolved.props.publish.clone();
    let client = match Client::connect(resolved.options).await {
        Ok(c) => c,
        Err(e) => {
            report(quiet, "tern pub", &e);
            return Ok(exit_code(&e, version));
        }
    };
    let make = |payload: Vec<u8>| {
        let mut m = Message::new(topic.clone(), payload)
            .with_qos(qos)
            .with_retain(args.retain);
        m.properties = publish_props.clone();
        m
    };
    let mut outstanding: VecDeque<PublishHandle> = VecDeque::new();
    let result: Result<(), ClientError> = async {
        match source {
            Source::Bytes(payload) => {
                for i in 0..args.repeat.max(1) {
                    if i > 0 && args.repeat_delay > 0.0 {
                        tokio::time::sleep(Duration::from_secs_f64(args.repeat_delay)).await;
                    }
                    outstanding.push_back(client.start_publish(make(payload.clone())).await?);
                    if outstanding.len() >= MAX_OUTSTANDING
                        && let Some(h) = outstanding.pop_front()
                    {
                        h.wait().await?;
                    }
                }
            }
            Source::Lines => {
                let mut stdin = tokio::io::BufReader::new(tokio::io::stdin());
                let mut line = Vec::new();
                loop {
                    line.clear();
                    let n = stdin.read_until(b'\n', &mut line).await?;
                    if n == 0 {
                        break;
                    }
                    if line.last() == Some(&b'\n') {
                        line.pop();
                    }
                    outstanding.push_back(client.start_publish(make(line.clone())).await?);
                    if outstanding.len() >= MAX_OUTSTANDING
                        && let Some(h) = outstanding.pop_front()
                    {
                        h.wait().await?;
                    }
                }
            }
        }
        for h in outstanding.drain(..) {
            h.wait().await?;
        }
        Ok(())
    }
    .await;
    let _ = client
        .disconnect_with(
            tern_client::ReasonCode::Success,
            resolved.props.disconnect.clone(),
        )
        .await;
    match result {
        Ok(()) => Ok(0),
        Err(e) => {
            report(quiet, "tern pub", &e);
            Ok(exit_code(&e, version))
        }
    }
}

fn source(args: &PubArgs) -> anyhow::Result<Source> {
    let given = [
        args.message.is_some(),
        args.file.is_some(),
        args.stdin_file,
        args.stdin_line,
        args.null_message,
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if given == 0 {
        bail!("a message is needed: give exactly one of -m MSG, -f FILE, -s, -l or -n");
    }
    if given > 1 {
        bail!("only one of -m, -f, -s, -l and -n may be given");
    }
    Ok(if let Some(m) = &args.message {
        Source::Bytes(m.clone().into_bytes())
    } else if let Some(f) = &args.file {
        Source::Bytes(
            std::fs::read(f)
                .with_context(|| format!("cannot read the message file {}", f.display()))?,
        )
    } else if args.stdin_file {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut v)
            .context("cannot read the message from stdin")?;
        Source::Bytes(v)
    } else if args.stdin_line {
        Source::Lines
    } else {
        Source::Bytes(Vec::new())
    })
}
