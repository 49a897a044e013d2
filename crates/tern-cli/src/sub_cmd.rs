//! `tern sub`: mosquitto_sub's flags and behaviour. Subscribes to every `-t`, unsubscribes
//! from every `-U`, prints messages (plain, `-v` or `-F`, byte for byte like mosquitto_sub),
//! and stops after `-C` messages, `-W` seconds (exit 27, as mosquitto_sub), once subscribed
//! (`-E`), or at the first live message with `--retained-only`. Reconnects when the broker
//! goes away.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tern_client::{
    Backoff, Client, Event, Message, QoS, ReasonCode, RetainHandling, SubscriptionOptions,
};

use crate::conn_args::{ConnArgs, exit_code, parse_qos, report};
use crate::sub_format::{Now, OutputConfig, print_message};

/// mosquitto_sub's exit status when `-W` expires (MOSQ_ERR_TIMEOUT).
pub const EXIT_TIMEOUT: i32 = 27;

/// Subscribe to MQTT topics and print messages (mosquitto_sub compatible).
#[derive(Debug, Clone, Args)]
#[command(disable_help_flag = true)]
pub struct SubArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Topic filter to subscribe to (repeatable).
    #[arg(short = 't', long = "topic")]
    pub topics: Vec<String>,
    /// Do not print messages whose topic matches this filter (repeatable).
    #[arg(short = 'T', long = "filter-out")]
    pub filter_out: Vec<String>,
    /// Unsubscribe from this filter after connecting (repeatable).
    #[arg(short = 'U', long = "unsubscribe")]
    pub unsubscribe: Vec<String>,
    /// Quality of service for the subscriptions.
    #[arg(short = 'q', long = "qos", default_value_t = 0)]
    pub qos: u8,
    /// Print the topic before each payload.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
    /// Do not print a newline after each message.
    #[arg(short = 'N')]
    pub no_eol: bool,
    /// Exit after this many messages.
    #[arg(short = 'C', long = "count")]
    pub count: Option<u64>,
    /// Exit after this many seconds (exit status 27).
    #[arg(short = 'W', long = "timeout")]
    pub timeout: Option<u64>,
    /// Exit once the subscriptions are acknowledged.
    #[arg(short = 'E')]
    pub exit_after_sub: bool,
    /// Do not print stale (retained) messages.
    #[arg(short = 'R', long = "no-retain")]
    pub no_retain: bool,
    /// Output format (see mosquitto_sub's -F).
    #[arg(short = 'F', long = "format")]
    pub format: Option<String>,
    /// Print only retained messages; stop at the first live one.
    #[arg(long = "retained-only")]
    pub retained_only: bool,
    /// Clear every retained message printed (publish an empty retained message at QoS 1);
    /// messages skipped by -R or filtered out by -T are left alone.
    #[arg(long = "remove-retained")]
    pub remove_retained: bool,
    /// MQTT 5: keep the retain flag of live messages as published.
    #[arg(long = "retain-as-published")]
    pub retain_as_published: bool,
    /// MQTT 5: do not receive our own publications.
    #[arg(long = "nl", alias = "no-local")]
    pub no_local: bool,
    /// MQTT 5 retain handling: 0 send, 1 send if new, 2 do not send.
    #[arg(long = "retain-handling")]
    pub retain_handling: Option<u8>,
    /// Pretty-print JSON output (%j, %J).
    #[arg(long = "pretty")]
    pub pretty: bool,
    /// Print only this percentage of messages (0.1 to 100).
    #[arg(long = "random-filter")]
    pub random_filter: Option<f64>,
}

pub fn run(args: SubArgs) -> anyhow::Result<i32> {
    crate::pubsub_logging(args.conn.debug);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(run_async(args))
}

fn usage_error(quiet: bool, e: &dyn std::fmt::Display) -> anyhow::Result<i32> {
    report(quiet, "tern sub", e);
    eprintln!("Use 'tern sub --help' to see usage.");
    Ok(1)
}

async fn run_async(args: SubArgs) -> anyhow::Result<i32> {
    let quiet = args.conn.quiet;
    let mut resolved = match args.conn.resolve("sub") {
        Ok(r) => r,
        Err(e) => return usage_error(quiet, &e),
    };
    let mut topics = args.topics.clone();
    if let Some(t) = resolved.url_topic.take() {
        topics.push(t);
    }
    if topics.is_empty() {
        return usage_error(
            quiet,
            &"a topic filter is needed: add -t FILTER (e.g. -t '#')",
        );
    }
    for t in topics
        .iter()
        .chain(&args.filter_out)
        .chain(&args.unsubscribe)
    {
        if let Err(e) = tern_codec::topic::validate_filter(t) {
            return usage_error(quiet, &format!("invalid topic filter '{t}': {e}"));
        }
    }
    let qos = match parse_qos(args.qos, "-q") {
        Ok(q) => q,
        Err(e) => return usage_error(quiet, &e),
    };
    if let Some(c) = args.count
        && c == 0
    {
        return usage_error(quiet, &"-C needs a count of 1 or more");
    }
    let v5 = resolved.version.is_v5();
    if !v5 && (args.retain_as_published || args.no_local || args.retain_handling.is_some()) {
        return usage_error(
            quiet,
            &"--retain-as-published, --nl and --retain-handling need MQTT 5: add -V 5",
        );
    }
    let retain_handling = match args.retain_handling {
        None | Some(0) => RetainHandling::SendAtSubscribe,
        Some(1) => RetainHandling::SendIfNew,
        Some(2) => RetainHandling::DoNotSend,
        Some(n) => return usage_error(quiet, &format!("--retain-handling {n}: use 0, 1 or 2")),
    };
    let random_filter = match args.random_filter {
        Some(p) if !(0.1..=100.0).contains(&p) => {
            return usage_error(quiet, &"--random-filter takes a percentage from 0.1 to 100");
        }
        Some(p) => Some(p),
        None => None,
    };
    let out_cfg = OutputConfig {
        verbose: args.verbose,
        eol: !args.no_eol,
        format: args.format.clone(),
        pretty: args.pretty,
    };
    let version = resolved.version;
    let mut options = resolved.options;
    options.reconnect = Some(Backoff {
        initial: Duration::from_secs(1),
        max: Duration::from_secs(30),
        max_attempts: None,
    });
    let mut client = match Client::connect(options).await {
        Ok(c) => c,
        Err(e) => {
            report(quiet, "tern sub", &e);
            return Ok(exit_code(&e, version));
        }
    };
    let deadline = args
        .timeout
        .map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
    let sub_opts = SubscriptionOptions {
        qos,
        no_local: args.no_local,
        retain_as_published: args.retain_as_published,
        retain_handling,
    };
    let filters: Vec<(&str, SubscriptionOptions)> =
        topics.iter().map(|t| (t.as_str(), sub_opts)).collect();
    // Subscribe, then unsubscribe (-U), while still printing what arrives meanwhile.
    let handle = client.handle();
    let sub_props = resolved.props.subscribe.clone();
    let unsub_props = resolved.props.unsubscribe.clone();
    let unsub: Vec<String> = args.unsubscribe.clone();
    let setup = async move {
        let codes = handle.subscribe(&filters, sub_props).await?;
        if !unsub.is_empty() {
            let refs: Vec<&str> = unsub.iter().map(String::as_str).collect();
            handle.unsubscribe(&refs, unsub_props).await?;
        }
        Ok::<_, tern_client::ClientError>(codes)
    };
    tokio::pin!(setup);
    let mut setup_done = false;
    let mut printed: u64 = 0;
    // --remove-retained publications still waiting for their PUBACK.
    let mut clearing: Vec<tern_client::PublishHandle> = Vec::new();
    let mut stdout = std::io::stdout();
    let mut buf = Vec::new();
    let code = loop {
        tokio::select! {
            r = &mut setup, if !setup_done => {
                setup_done = true;
                match r {
                    Ok(codes) => {
                        for (t, c) in topics.iter().zip(&codes) {
                            if !c.is_success() && !quiet {
                                eprintln!("tern sub: the broker refused the subscription to '{t}': {}", c.description());
                            }
                        }
                        if codes.iter().all(|c| !c.is_success()) {
                            if !quiet {
                                eprintln!("tern sub: every subscription was refused: check the broker's ACL for this user");
                            }
                            break 1;
                        }
                        if args.exit_after_sub {
                            break 0;
                        }
                    }
                    Err(e) => {
                        report(quiet, "tern sub", &e);
                        break exit_code(&e, version);
                    }
                }
            }
            ev = client.next_event() => match ev {
                Some(Event::Message(m)) => {
                    if args.retained_only && !m.retain {
                        break 0;
                    }
                    if args.no_retain && m.retain {
                        continue;
                    }
                    if args
                        .filter_out
                        .iter()
                        .any(|f| tern_codec::topic::matches(f, &m.topic))
                    {
                        continue;
                    }
                    // Like mosquitto_sub 2.0: a message skipped by -R or filtered out by -T
                    // is not cleared, and the clearing message goes at QoS 1.
                    if args.remove_retained && m.retain {
                        let clear = Message::new(m.topic.clone(), Vec::new())
                            .with_qos(QoS::AtLeastOnce)
                            .with_retain(true);
                        // Acknowledgements are awaited before disconnecting, not here.
                        if let Ok(h) = client.start_publish(clear).await {
                            clearing.push(h);
                        }
                    }
                    if let Some(p) = random_filter {
                        let r: f64 = rand::random::<f64>() * 100.0;
                        if r >= p {
                            continue;
                        }
                    }
                    buf.clear();
                    print_message(&out_cfg, &m, &Now::read(), &mut buf);
                    if stdout.write_all(&buf).and_then(|()| stdout.flush()).is_err() {
                        // stdout closed (e.g. `| head`): stop quietly, like a C tool on EPIPE.
                        break 0;
                    }
                    printed += 1;
                    if args.count.is_some_and(|c| printed >= c) {
                        break 0;
                    }
                }
                Some(Event::ConnectionLost(e)) => {
                    if !quiet {
                        eprintln!("tern sub: {e}; reconnecting");
                    }
                }
                Some(Event::Reconnected(_)) => {}
                Some(_) => {}
                None => {
                    break 1;
                }
            },
            _ = sleep_until(deadline) => {
                if !quiet {
                    eprintln!("Timed out");
                }
                break EXIT_TIMEOUT;
            }
            _ = tokio::signal::ctrl_c() => {
                break 0;
            }
        }
    };
    // Like mosquitto_sub, wait for the clearing messages to be acknowledged before
    // disconnecting, so that a retained message printed as cleared is cleared.
    let acked = tokio::time::timeout(Duration::from_secs(5), async {
        for h in clearing {
            h.wait().await?;
        }
        Ok::<(), tern_client::ClientError>(())
    })
    .await;
    let code = match acked {
        Ok(Ok(())) => code,
        Ok(Err(e)) => {
            report(
                quiet,
                "tern sub",
                &format!("a retained message may not have been cleared: {e}; run again to check"),
            );
            if code == 0 { 1 } else { code }
        }
        Err(_) => {
            report(
                quiet,
                "tern sub",
                &"the broker did not acknowledge every clearing message within 5 s: run again to check what is still retained",
            );
            if code == 0 { 1 } else { code }
        }
    };
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        client.disconnect_with(ReasonCode::Success, resolved.props.disconnect.clone()),
    )
    .await;
    Ok(code)
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
