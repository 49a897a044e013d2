//! tern-client: an async MQTT 3.1.1 / 5.0 client built on the sans-IO
//! [`tern_proto::ClientConn`], with tokio and rustls (ring provider).
//!
//! Owns: sockets, TLS (CA files, client certificates, libmosquitto-style host name checks,
//! certificate and key pinning), reconnecting with exponential backoff and full jitter,
//! resubscribing, and turning failures into plain words that say what to do next. It must
//! not contain protocol logic (that is tern-proto's) nor use unbounded channels.
//!
//! ```no_run
//! use tern_client::{Client, ClientOptions, Event, Message, QoS, SubscriptionOptions};
//!
//! # async fn demo() -> Result<(), tern_client::ClientError> {
//! let mut client = Client::connect(ClientOptions::new("localhost", 1883).client_id("demo")).await?;
//! client
//!     .subscribe(&[("sensors/#", SubscriptionOptions::qos(QoS::AtLeastOnce))], Default::default())
//!     .await?;
//! client.publish(Message::new("sensors/t1", "21.5").with_qos(QoS::AtLeastOnce)).await?;
//! if let Some(Event::Message(m)) = client.next_event().await {
//!     println!("{} {}", m.topic, String::from_utf8_lossy(&m.payload));
//! }
//! client.disconnect().await?;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod client;
mod error;
pub mod tls;
pub mod x509;

pub use client::{
    Backoff, Client, ClientHandle, ClientOptions, Clock, ConnectInfo, Event, PublishHandle,
    sleep_until,
};
pub use error::{CertError, ClientError};
pub use tls::{Pin, TlsOptions, TlsVersion};

pub use tern_codec::{
    PacketId, ProtocolVersion, QoS, ReasonCode, RetainHandling, SubscriptionOptions,
};
pub use tern_proto::client::ServerLimits;
pub use tern_proto::{Message, OwnedProperties};
