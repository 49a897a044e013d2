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

pub mod acl;
pub mod conf;
pub mod passwd;

/// Edit distance (Levenshtein, in chars) between `a` and `b`, for "did you mean" hints.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The candidate closest to `word`, if it is close enough to be a likely typo: at most 2
/// edits, or a third of the word's length for long words.
fn suggest(word: &str, candidates: &[&'static str]) -> Option<&'static str> {
    if word.len() > 64 {
        return None;
    }
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    #[test]
    fn did_you_mean() {
        assert_eq!(super::edit_distance("kitten", "sitting"), 3);
        assert_eq!(super::edit_distance("", "abc"), 3);
        assert_eq!(
            super::suggest("max_conections", &["max_connections", "max_qos"]),
            Some("max_connections")
        );
        assert_eq!(super::suggest("zzz", &["topic", "user"]), None);
    }
}
