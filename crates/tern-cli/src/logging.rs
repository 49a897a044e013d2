//! Logging set-up for every subcommand: `tracing` to stderr, level from the command line or
//! `RUST_LOG`.

/// Installs the subscriber once. `default` is a level filter such as "info".
pub fn init(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        // rustls logs every odd client (an IP address sent as SNI, ...) at warn: one
        // line per connection would flood the log, and tern logs each failed handshake
        // once itself.
        tracing_subscriber::EnvFilter::new(format!("{default},rustls=error"))
    });
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
