//! tern-conf: `Config::parse_str` over mosquitto.conf text with an `include_dir`.
//!
//! Input: lossy UTF-8 split at NUL. The first part is the main file
//! `/etc/tern/tern.conf`; each further part (at most 8) is `/etc/tern/conf.d/NN.conf`, read
//! when the main file says `include_dir /etc/tern/conf.d`. `/etc/tern/empty.d` exists and is
//! empty.
//!
//! Properties: no panic; parsing is deterministic; every error and warning names one of the
//! files that were read, and its line (when it has one) exists in that file; messages format.

use std::path::{Path, PathBuf};

use tern_conf::conf::{Config, MemLoader};

/// The main file's path.
pub const MAIN: &str = "/etc/tern/tern.conf";
/// The directory that holds the included parts.
pub const INCLUDE_DIR: &str = "/etc/tern/conf.d";

/// Target `conf`.
pub fn run(data: &[u8]) {
    let parts = crate::nul_parts(data);
    let (main, includes) = parts
        .split_first()
        .map_or(("", &[][..]), |(m, r)| (m.as_str(), r));
    let mut loader = MemLoader::new().dir("/etc/tern/empty.d");
    let mut files: Vec<(PathBuf, &str)> = vec![(PathBuf::from(MAIN), main)];
    for (i, text) in includes.iter().take(8).enumerate() {
        let path = PathBuf::from(format!("{INCLUDE_DIR}/{i:02}.conf"));
        loader = loader.file(path.clone(), text.clone());
        files.push((path, text.as_str()));
    }
    let lines_in = |path: &Path| -> Option<usize> {
        files
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, t)| t.lines().count())
    };
    let first = Config::parse_str(Path::new(MAIN), main, &loader);
    match &first {
        Ok(config) => {
            for w in &config.warnings {
                let _ = w.to_string();
                let Some(n) = lines_in(&w.location.path) else {
                    panic!("warning names a file that was not read: {w}");
                };
                assert!(
                    (1..=n).contains(&w.location.line),
                    "warning on line {} of a {n}-line file: {w}",
                    w.location.line
                );
            }
            for l in &config.listeners {
                let _ = config.security_for(l);
                let _ = l.security.allow_anonymous;
            }
            let _ = format!("{config:?}");
        }
        Err(e) => {
            let msg = e.to_string();
            let Some(n) = lines_in(&e.path) else {
                panic!("error names a file that was not read: {msg}");
            };
            if let Some(line) = e.line {
                assert!(
                    (1..=n).contains(&line),
                    "error on line {line} of a {n}-line file: {msg}"
                );
            }
        }
    }
    // Same input, same answer (no hidden state, no randomness). Only for accepted files: an
    // error ends parsing early, and the did-you-mean search makes errors the costly case.
    if let Ok(config) = &first {
        let second = Config::parse_str(Path::new(MAIN), main, &loader);
        assert_eq!(
            Ok(format!("{config:?}")),
            second.map(|c| format!("{c:?}")).map_err(|e| e.to_string()),
            "parse_str is not deterministic"
        );
    }
}
