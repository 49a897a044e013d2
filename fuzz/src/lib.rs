//! The checks behind tern's fuzz targets.
//!
//! Each `fuzz_targets/<name>.rs` is one line that calls `<module>::run(data)` here, so the same
//! code runs under libFuzzer (nightly, `cargo fuzz run <name>`) and, for recorded inputs, in the
//! plain `cargo test` of `regressions/` on stable. A failed check is a panic with a message that
//! names the function and the property that broke.
//!
//! Must not use `unsafe`, read files, the clock or the environment: a run depends only on its
//! input bytes.
#![forbid(unsafe_code)]

pub mod acl;
pub mod alias;
pub mod codec;
pub mod conf;
pub mod passwd;
pub mod routing;
pub mod topic;

/// Splits `data` (lossy UTF-8) at NUL characters: the text formats take several strings
/// (a file and its includes, a file and the queries to run against it) from one input, and a
/// seed written by hand stays readable. NUL itself is therefore never inside a part; the
/// targets that care about NUL (topic, decode) do not use this.
pub fn nul_parts(data: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(data)
        .split('\0')
        .map(str::to_owned)
        .collect()
}
