//! tern-proto: the sans-IO parts of an MQTT connection that the broker, the client and a
//! device share. `no_std` + `alloc`: no socket, no clock, no RNG. Time is always an argument
//! ([`Timestamp`], milliseconds since the Unix epoch, so that persisted deadlines survive a
//! restart).
#![no_std]
extern crate alloc;

pub mod alias;
pub mod client;
pub mod keepalive;
pub mod owned;
pub mod pid;
pub mod time;

pub use alias::{InboundAliases, OutboundAliases};
pub use client::{ClientConn, ClientOptions};
pub use keepalive::KeepAlive;
pub use owned::{Message, OwnedProperties};
pub use pid::PacketIds;
pub use time::Timestamp;
