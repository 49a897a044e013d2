//! `tern broker`: Mosquitto's command line (`-c FILE`, `-p PORT`..., `-v`, `-d`), start-up
//! lines, signals. Configuration parsing lives in tern-conf, serving in tern-broker.

use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tern_broker::{Protocol, Server, settings};
use tern_conf::conf::{Config, FsLoader};

/// Run the MQTT broker (accepts mosquitto's command line).
#[derive(Debug, Args)]
pub struct BrokerArgs {
    /// Configuration file in mosquitto.conf format.
    #[arg(short = 'c', long = "config-file")]
    pub config: Option<PathBuf>,
    /// Listen on this port (loopback only, as mosquitto 2 does); may be given up to 10 times.
    /// Ignored when the configuration file defines listeners.
    #[arg(short = 'p', long = "port")]
    pub port: Vec<u16>,
    /// Log everything (log_type all).
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
    /// Run in the background.
    #[arg(short = 'd', long = "daemon")]
    pub daemon: bool,
    /// Log nothing.
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

pub fn run(args: BrokerArgs) -> anyhow::Result<i32> {
    if args.daemon {
        // Everything start-up reads (the file and its includes, TLS keys and certificates,
        // password and ACL files) is checked before detaching: the detached process has no
        // terminal to report a mistake on.
        let config = load_config(&args)?;
        let built = settings::build(&config, &args.port).map_err(|e| anyhow::anyhow!("{e}"))?;
        for w in &built.warnings {
            eprintln!("tern: warning: {w}");
        }
        if let Some(path) = &config.pid_file {
            // The detached broker writes it; find out now whether it can.
            std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(path)
                .map_err(|e| pid_file_error(path, &e))?;
        }
        return crate::daemon::detach(&args);
    }
    serve(args, None)
}

/// The configuration file (`-c`), or an empty one (local-only mode).
fn load_config(args: &BrokerArgs) -> anyhow::Result<Config> {
    match &args.config {
        Some(path) => Config::load(path, &FsLoader).map_err(|e| anyhow::anyhow!("{e}")),
        None => Config::parse_str(
            std::path::Path::new("(no configuration file)"),
            "",
            &FsLoader,
        )
        .map_err(|e| anyhow::anyhow!("{e}")),
    }
}

/// Runs the broker from a configuration file (or none: local-only mode). `banner` is printed
/// after the listener lines (the quick start's instructions).
pub fn serve(args: BrokerArgs, banner: Option<String>) -> anyhow::Result<i32> {
    let config = load_config(&args)?;
    for w in crate::logging::init_broker(&config, args.verbose, args.quiet) {
        eprintln!("tern: warning: {w}");
    }
    let built = settings::build(&config, &args.port).map_err(|e| anyhow::anyhow!("{e}"))?;
    for w in &built.warnings {
        eprintln!("tern: warning: {w}");
    }
    // `pid_file`: written before anything listens and removed at a clean exit, as Mosquitto
    // does (in the foreground too).
    let _pid_file = config.pid_file.as_deref().map(PidFile::write).transpose()?;
    let mut settings = built.settings;
    // ::1 may be missing (IPv6 disabled) in local-only mode: keep going with what binds.
    if config.listeners.is_empty() {
        settings
            .listeners
            .retain(|l| l.addr.is_ipv4() || ipv6_available());
    }
    let local_only = config.listeners.is_empty();
    // `threads` (tern option; TERN_THREADS overrides it for experiments).
    let threads = std::env::var("TERN_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(usize::from(config.threads));
    let rt = match threads {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        0 => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
    }
    .context("starting the runtime")?;
    rt.block_on(async move {
        let server = Server::bind(settings).await?;
        // Signal handlers are installed before the listening lines are printed: whoever
        // waits for those lines may signal at once, and an unhandled SIGHUP or SIGTERM would
        // kill the process instead of reloading or shutting down cleanly.
        #[cfg(unix)]
        let signals = {
            use tokio::signal::unix::{SignalKind, signal};
            (
                signal(SignalKind::hangup()).ok(),
                signal(SignalKind::user_defined1()).ok(),
                signal(SignalKind::terminate()).ok(),
                signal(SignalKind::interrupt()).ok(),
            )
        };
        #[cfg(unix)]
        let (hup, usr1, term, int) = signals;
        for l in server.listeners() {
            println!(
                "tern: listening on {} ({}{}), anonymous access {}",
                l.addr,
                match l.protocol {
                    Protocol::Mqtt => "mqtt",
                    Protocol::WebSockets => "websockets",
                },
                if l.tls { "+tls" } else { "" },
                match (l.allow_anonymous, l.addr.ip().is_loopback()) {
                    (true, true) => "allowed (loopback only)",
                    (true, false) => "allowed",
                    (false, _) => "refused",
                },
            );
        }
        if local_only {
            println!("tern: no listener configured: local-only mode, loopback connections only.");
        }
        if let Some(b) = &banner {
            println!("{b}");
        }
        #[cfg(unix)]
        {
            let path = args.config.clone();
            let handle = server.reload_handle();
            let ports = args.port.clone();
            tokio::spawn(async move {
                let Some(mut hup) = hup else {
                    return;
                };
                while hup.recv().await.is_some() {
                    let Some(path) = &path else {
                        tracing::info!(
                            "SIGHUP ignored: the broker was started without a configuration file"
                        );
                        continue;
                    };
                    tracing::info!(config = %path.display(), "SIGHUP: reloading the configuration");
                    let built = Config::load(path, &FsLoader)
                        .map_err(|e| e.to_string())
                        .and_then(|c| {
                            settings::build_for_reload(&c, &ports).map_err(|e| e.to_string())
                        });
                    match built {
                        Ok(mut b) => {
                            for w in &b.warnings {
                                tracing::warn!("{w}");
                            }
                            // As at start-up: without IPv6, local-only mode has no ::1
                            // listener, which must not read as one added to the file.
                            if local_only {
                                b.settings
                                    .listeners
                                    .retain(|l| l.addr.is_ipv4() || ipv6_available());
                            }
                            handle.reload(b.settings);
                        }
                        Err(e) => {
                            tracing::warn!("configuration not reloaded, the running one stays: {e}")
                        }
                    }
                }
            });
        }
        #[cfg(unix)]
        if let Some(store) = server.shared().store().cloned() {
            // SIGUSR1 writes the persistence store now, as in Mosquitto.
            tokio::spawn(async move {
                let Some(mut usr1) = usr1 else {
                    return;
                };
                while usr1.recv().await.is_some() {
                    let s = store.clone();
                    match tokio::task::spawn_blocking(move || s.flush()).await {
                        Ok(Ok(())) => tracing::info!("SIGUSR1: persistence store saved"),
                        Ok(Err(e)) => tracing::error!("SIGUSR1: {e}"),
                        Err(_) => {}
                    }
                }
            });
        }
        #[cfg(unix)]
        let stop = shutdown_signal(term, int);
        #[cfg(not(unix))]
        let stop = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        server.run(stop, Duration::from_secs(5)).await;
        anyhow::Ok(())
    })?;
    Ok(0)
}

fn pid_file_error(path: &std::path::Path, e: &std::io::Error) -> anyhow::Error {
    anyhow::anyhow!(
        "cannot write pid_file {}: {e}; create its directory, make it writable for this user, or remove the pid_file line",
        path.display()
    )
}

/// The `pid_file` this process wrote; removed when dropped if it still holds our pid.
struct PidFile(PathBuf);

impl PidFile {
    fn write(path: &std::path::Path) -> anyhow::Result<PidFile> {
        std::fs::write(path, format!("{}\n", std::process::id()))
            .map_err(|e| pid_file_error(path, &e))?;
        Ok(PidFile(path.to_owned()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let ours = std::fs::read_to_string(&self.0)
            .is_ok_and(|s| s.trim() == std::process::id().to_string());
        if ours {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

fn ipv6_available() -> bool {
    std::net::TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_ok()
}

/// Resolves on SIGINT or SIGTERM (handlers installed by the caller).
#[cfg(unix)]
async fn shutdown_signal(
    term: Option<tokio::signal::unix::Signal>,
    int: Option<tokio::signal::unix::Signal>,
) {
    match (term, int) {
        (Some(mut t), Some(mut i)) => {
            tokio::select! {
                _ = t.recv() => {}
                _ = i.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
