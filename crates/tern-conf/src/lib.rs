//! Pure parsers for the files a Mosquitto-compatible broker reads: `mosquitto.conf` (with
//! `include_dir`), the password file and the ACL file, turned into typed values. Every error
//! carries the file path and line and says what to do next.
//!
//! This crate owns file *formats* and their semantics (defaults, deprecations, ACL
//! evaluation); it must not open sockets, read the clock or draw random numbers, and reads
//! files only through [`conf::Loader`] so tests pass strings. It never panics on input.
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod passwd;
