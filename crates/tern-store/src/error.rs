//! Errors opening, reading and writing the store. Each message names the file and says what
//! to do next.

use std::path::PathBuf;

/// What went wrong with the persistence file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error(
        "{path}: this is a Mosquitto persistence file; tern keeps its own format and never writes Mosquitto's. Set `persistence_file tern.db` (or another new name) in the configuration, or move the file aside"
    )]
    MosquittoFile { path: PathBuf },
    #[error(
        "{path}: not a tern store ({detail}). Set `persistence_file` to a new file name, or move this file aside if it is not needed"
    )]
    NotAStore { path: PathBuf, detail: String },
    #[error(
        "{path}: written by a newer tern (store schema {found}; this tern reads up to {supported}). Run the newer tern, or move the file aside to start with an empty store"
    )]
    TooNew {
        path: PathBuf,
        found: u64,
        supported: u64,
    },
    #[error(
        "{path}: the persistence file is damaged and cannot be repaired ({detail}). tern does not start on it, so that nothing is lost silently. Move it aside (`mv {path} {path}.damaged`) to start with an empty store, and keep the copy for inspection"
    )]
    Damaged { path: PathBuf, detail: String },
    #[error(
        "{path}: the persistence file is in use by another process (another tern broker?). Stop it, or set `persistence_location` / `persistence_file` to another file"
    )]
    InUse { path: PathBuf },
    #[error(
        "{path}: cannot open the persistence file: {source}. Check that `persistence_location` exists and that the broker's user may write there"
    )]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: persistence store error: {detail}. Check free disk space and the file's permissions; restarting the broker lets the store repair itself"
    )]
    Db { path: PathBuf, detail: String },
    #[error(
        "the persistence store stopped after an earlier error ({0}); acknowledgements are withheld. Fix the cause (disk full?) and restart the broker"
    )]
    Failed(String),
}
