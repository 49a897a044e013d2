//! tern-codec: MQTT 3.1.1 and 5.0 control packets as borrowed views.
//!
//! `no_std`, no allocation, no I/O, no clock. Decoding borrows from the caller's buffer;
//! encoding writes into a caller-owned `&mut [u8]`. "Need more bytes" is `Ok(None)`,
//! never an error. Nothing here panics on input.
#![no_std]

pub mod topic;
