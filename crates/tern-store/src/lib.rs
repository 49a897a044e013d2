//! tern-store: the durable store behind `persistence true`. Sessions (with their
//! subscriptions and delayed wills), the QoS 1/2 messages queued or in flight for each
//! session, and retained messages are kept in one embedded database file so that they survive
//! a restart, a crash (SIGKILL) and, with `persistence_sync true`, a power loss.
//!
//! It owns the file and its layout; it does not decide anything. The broker core describes
//! every change as a [`StoreOp`]; this crate applies them, in order, and reads them back
//! ([`Store::load`] at start-up, [`QueueLoader`] when an offline session reconnects). It
//! behaves exactly like the core's reference [`tern_broker_core::MemStore`] (a property test
//! checks this).
//!
//! ## Why redb
//! [redb](https://www.redb.org) is a pure-Rust, single-file, copy-on-write B-tree with ACID
//! transactions, checksummed pages and a documented crash model (a commit is either entirely
//! there after a crash or entirely absent). It builds with no C toolchain and no background
//! threads of its own. fjall (an LSM tree) writes faster under heavy random-write load, but
//! keeps a directory of segment files and a journal, compacts in the background, and its
//! recovery semantics are harder to state; tern's write pattern (append a message, delete it
//! soon after, small records) is well served by a B-tree with group commit, and one file is
//! what a Mosquitto user expects (`persistence_file`).
//!
//! ## Layout (schema version [`SCHEMA_VERSION`])
//! | table | key | value |
//! |---|---|---|
//! | `meta` | `"schema"` | schema version (`u64`) |
//! | `retained` | topic | [`record::encode_retained`] |
//! | `sessions` | client id | [`record::encode_session`] |
//! | `items` | (client id, sequence number) | [`record::encode_item`] |
//! | `damaged` | counter | records set aside because they did not decode |
//!
//! ## Commit path
//! [`Store::submit`] only queues a batch (it is called while the broker lock is held, so
//! batches arrive in the order the core made them). A dedicated writer thread takes every batch
//! queued since its last commit and applies them in one write transaction (group commit):
//! with `persistence_sync true` the commit is durable (fsync) and connections hold their
//! PUBACK / PUBREC until [`Store::wait`] says their batch is committed ([`holds_output`]
//! says which operations hold a batch's output); with
//! `persistence_sync false` the writer commits without fsync every 100 ms and makes the store
//! durable every `autosave_interval` seconds (or every `autosave_interval` changes with
//! `autosave_on_changes`), at shutdown, and on [`Store::flush`].
//!
//! ## Damage
//! The file is verified when it is opened (redb's checksums over every page). A file redb
//! cannot repair is refused with [`StoreError::Damaged`], which says how to move it aside;
//! nothing is dropped silently. Records that fail to decode are moved to the `damaged` table
//! and reported ([`LoadReport`]), with the client ids of the sessions they belonged to; the
//! messages of a session whose record is damaged are set aside with it.

mod error;
pub mod record;
mod schema;
mod store;

pub use error::StoreError;
pub use schema::SCHEMA_VERSION;
#[doc(hidden)]
pub use schema::write_v0_fixture;
pub use store::{Committed, LoadReport, Store, StoreOptions, Ticket, holds_output};

pub use tern_broker_core::{QueueLoader, Restored, StoreOp};
