//! `tern broker`: Mosquitto's command line (`-c FILE`, `-p PORT`..., `-v`, `-d`), start-up
//! lines, signals. Configuration parsing lives in tern-conf, serving in tern-broker.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tern_broker::{ListenerSettings, ListenerSpec, Protocol, Server, ServerSettings};

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

/// The implicit listener of a broker started without listeners: loopback only, anonymous
/// allowed there (mosquitto 2's "local only mode").
fn local_only(ports: &[u16]) -> Vec<ListenerSpec> {
    let ports = if ports.is_empty() {
        vec![1883]
    } else {
        ports.to_vec()
    };
    let mut out = Vec::new();
    for port in ports {
        for ip in [
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ] {
            out.push(ListenerSpec {
                addr: SocketAddr::new(ip, port),
                settings: ListenerSettings {
                    allow_anonymous: true,
                    ..ListenerSettings::default()
                },
            });
        }
    }
    out
}

pub fn run(args: BrokerArgs) -> anyhow::Result<i32> {
    crate::logging::init(if args.quiet {
        "off"
    } else if args.verbose {
        "debug"
    } else {
        "info"
    });
    if args.daemon {
        return crate::daemon::detach();
    }
    if args.config.is_some() {
        anyhow::bail!("configuration files are not supported yet in this build");
    }
    let mut settings = ServerSettings {
        listeners: local_only(&args.port),
        ..ServerSettings::default()
    };
    // ::1 may be missing (IPv6 disabled): keep going with what binds.
    settings
        .listeners
        .retain(|l| l.addr.is_ipv4() || ipv6_available());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async move {
        let server = Server::bind(settings).await?;
        for l in server.listeners() {
            println!(
                "tern: listening on {} ({}{}), anonymous access {}",
                l.addr,
                match l.protocol {
                    Protocol::Mqtt => "mqtt",
                    Protocol::WebSockets => "websockets",
                },
                if l.tls { "+tls" } else { "" },
                if l.allow_anonymous {
                    "allowed (loopback only)"
                } else {
                    "refused"
                },
            );
        }
        println!("tern: no configuration file given: local-only mode, loopback connections only.");
        server.run(shutdown_signal(), Duration::from_secs(5)).await;
        anyhow::Ok(())
    })?;
    Ok(0)
}

fn ipv6_available() -> bool {
    std::net::TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_ok()
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        match (term, int) {
            (Ok(mut t), Ok(mut i)) => {
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
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
