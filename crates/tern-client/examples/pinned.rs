//! Connect over TLS to a broker whose certificate is pinned by its SHA-1 fingerprint, the
//! way an ESP8266 (`setFingerprint`) checks it: no CA, no host name, no dates.
//!
//! ```sh
//! FP=$(openssl x509 -noout -fingerprint -sha1 -in server.crt | cut -d= -f2)
//! cargo run -p tern-client --example pinned -- 127.0.0.1 8883 "$FP"
//! ```
use tern_client::{Client, ClientOptions, Pin, TlsOptions};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let host = args.next().unwrap_or_else(|| "127.0.0.1".into());
    let port = args.next().and_then(|p| p.parse().ok()).unwrap_or(8883);
    let fingerprint = args.next().ok_or("give the SHA-1 or SHA-256 fingerprint")?;
    let tls = TlsOptions {
        pins: vec![Pin::from_fingerprint(&fingerprint)?],
        ..Default::default()
    };
    match Client::connect(ClientOptions::new(host, port).tls(tls)).await {
        Ok(client) => {
            println!("connected as {}", client.info().client_id);
            client.disconnect().await?;
        }
        // Errors say what to do next, e.g. which fingerprint the broker really has.
        Err(e) => eprintln!("{e}"),
    }
    Ok(())
}
