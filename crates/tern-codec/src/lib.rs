//! tern-codec: MQTT 3.1.1 and 5.0 control packets as borrowed views.
//!
//! `no_std`, no allocation, no I/O, no clock. Decoding borrows from the caller's buffer;
//! encoding writes into a caller-owned `&mut [u8]`. "Need more bytes" is `Ok(None)`,
//! never an error. Nothing here panics on input.
//!
//! ```
//! use tern_codec::{decode, Packet, ProtocolVersion, Publish};
//! let mut buf = [0u8; 64];
//! let n = Packet::Publish(Publish::new("a/b", b"hi")).encode(ProtocolVersion::V311, &mut buf).unwrap();
//! let (packet, used) = decode(&buf[..n], ProtocolVersion::V311, 1024).unwrap().unwrap();
//! assert_eq!(used, n);
//! assert!(matches!(packet, Packet::Publish(p) if p.topic == "a/b" && p.payload == b"hi"));
//! ```
#![no_std]

pub mod error;
pub mod packet;
pub mod properties;
pub mod reason;
pub mod topic;
pub mod types;
pub mod wire;

pub use error::{DecodeError, EncodeError};
pub use packet::{
    Ack, Auth, Connack, Connect, Disconnect, Frame, Packet, PacketType, Publish, Suback, Subscribe,
    SubscribeFilters, Unsuback, Unsubscribe, UnsubscribeFilters, Will, decode, decode_body, frame,
};
pub use properties::{Properties, SubscriptionIds, UserProperties};
pub use reason::ReasonCode;
pub use types::{PacketId, ProtocolVersion, QoS, RetainHandling, SubscriptionOptions};
