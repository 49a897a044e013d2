//! Inputs the fuzz targets found, replayed through the same checks on stable with
//! `cargo test --manifest-path fuzz/Cargo.toml`. Each test names the target, the function at
//! fault and what went wrong.
