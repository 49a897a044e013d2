//! Subscribe, publish one message at QoS 1 and print what comes back.
//!
//! ```sh
//! mosquitto -p 1883 &
//! cargo run -p tern-client --example pubsub -- localhost 1883
//! ```
//!
//! The body is [`run`], which writes to any `Write`: tests/examples.rs runs it against the
//! test broker and checks what it prints.
use std::io::Write;

use tern_client::{
    Backoff, Client, ClientOptions, Event, Message, ProtocolVersion, QoS, SubscriptionOptions,
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let host = args.next().unwrap_or_else(|| "localhost".into());
    let port = args.next().and_then(|p| p.parse().ok()).unwrap_or(1883);
    run(host, port, &mut std::io::stdout()).await
}

/// Connects to `host:port`, subscribes, publishes and prints to `out`.
pub async fn run(
    host: String,
    port: u16,
    out: &mut impl Write,
) -> Result<(), Box<dyn std::error::Error>> {
    let options = ClientOptions::new(host, port)
        .version(ProtocolVersion::V5)
        .client_id("tern-example")
        .keep_alive(30)
        .reconnect(Backoff::default());
    let mut client = Client::connect(options).await?;
    writeln!(
        out,
        "connected, session present: {}",
        client.info().session_present
    )?;
    let granted = client
        .subscribe(
            &[("tern/example/#", SubscriptionOptions::qos(QoS::AtLeastOnce))],
            Default::default(),
        )
        .await?;
    writeln!(out, "granted: {granted:?}")?;
    client
        .publish(Message::new("tern/example/hello", "hi").with_qos(QoS::AtLeastOnce))
        .await?;
    if let Some(Event::Message(m)) = client.next_event().await {
        writeln!(out, "{} {}", m.topic, String::from_utf8_lossy(&m.payload))?;
    }
    client.disconnect().await?;
    Ok(())
}
