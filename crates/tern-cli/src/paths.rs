//! Where tern keeps its files when the user does not say: one function, read from the
//! environment, so every subcommand agrees.

use std::path::PathBuf;

/// tern's data directory: `$TERN_DATA_DIR`, else `$XDG_DATA_HOME/tern`, else
/// `$HOME/.local/share/tern`, else `./tern-data`. Empty variables count as unset.
pub fn data_dir() -> PathBuf {
    data_dir_from(|k| std::env::var_os(k))
}

fn data_dir_from(get: impl Fn(&str) -> Option<std::ffi::OsString>) -> PathBuf {
    let var = |k: &str| get(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(d) = var("TERN_DATA_DIR") {
        return d;
    }
    if let Some(d) = var("XDG_DATA_HOME") {
        return d.join("tern");
    }
    if let Some(h) = var("HOME") {
        return h.join(".local").join("share").join("tern");
    }
    PathBuf::from("./tern-data")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::ffi::OsString;

    fn with(vars: &[(&str, &str)]) -> PathBuf {
        let map: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
            .collect();
        data_dir_from(|k| map.get(k).cloned())
    }

    #[test]
    fn precedence() {
        assert_eq!(
            with(&[
                ("TERN_DATA_DIR", "/t"),
                ("XDG_DATA_HOME", "/x"),
                ("HOME", "/h")
            ]),
            PathBuf::from("/t")
        );
        assert_eq!(
            with(&[("XDG_DATA_HOME", "/x"), ("HOME", "/h")]),
            PathBuf::from("/x/tern")
        );
        assert_eq!(
            with(&[("HOME", "/h")]),
            PathBuf::from("/h/.local/share/tern")
        );
        assert_eq!(with(&[("TERN_DATA_DIR", "")]), PathBuf::from("./tern-data"));
    }
}
