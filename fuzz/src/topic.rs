//! tern-codec `topic`: `validate_name`, `validate_filter`, `matches`, `split_shared`,
//! `has_wildcard`.
//!
//! Input: lossy UTF-8 split at `\n` (NUL stays inside the parts, since topics must refuse it):
//! part 0 is a filter, part 1 a name, the rest are words used to fill wildcards.
//!
//! Properties, for every string: no panic; a valid name has no wildcard, is a valid filter
//! unless it starts with `$share/`, and matches itself; a valid filter without wildcards is a
//! valid name; `#` matches every valid name not starting with `$` and no name starting with
//! `$`; `+` matches exactly the one-level names not starting with `$`; `matches` agrees with
//! an independent reference matcher; a name made from a filter by filling its wildcards is
//! matched by it (unless it starts with `$` and the filter with a wildcard); `split_shared` of
//! a valid shared filter gives a group without `/`, `+`, `#` and a valid inner filter.

use tern_codec::topic::{has_wildcard, matches, split_shared, validate_filter, validate_name};

/// Target `topic`.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let parts: Vec<&str> = text.split('\n').collect();
    let filter = parts.first().copied().unwrap_or("");
    let name = parts.get(1).copied().unwrap_or("");
    let words: Vec<&str> = parts.iter().skip(2).take(8).copied().collect();

    for s in &parts {
        check_one(s);
    }
    check_pair(filter, name);
    check_pair(name, filter);
    for w in &words {
        check_pair(filter, w);
    }
    // Fill the filter's wildcards with the words and check the result is matched.
    if validate_filter(filter).is_ok() {
        let inner = split_shared(filter).map_or(filter, |(_, f)| f);
        // A word fills one level, so it cannot hold '/', '+' or '#'.
        let level_words = words
            .iter()
            .copied()
            .filter(|w| !w.contains(['/', '+', '#']));
        for w in level_words.chain(["x", ""]) {
            for n in fill(inner, w) {
                if validate_name(&n).is_err() {
                    continue;
                }
                let dollar_blocked = n.starts_with('$') && inner.starts_with(['+', '#']);
                assert_eq!(
                    matches(inner, &n),
                    !dollar_blocked,
                    "filter {inner:?} and the name {n:?} made from it"
                );
            }
        }
    }
}

fn check_one(s: &str) {
    let name_ok = validate_name(s).is_ok();
    let filter_ok = validate_filter(s).is_ok();
    if name_ok {
        assert!(!has_wildcard(s), "valid name {s:?} has a wildcard");
        assert!(matches(s, s), "valid name {s:?} does not match itself");
        if !s.starts_with("$share/") {
            assert!(filter_ok, "valid name {s:?} is not a valid filter");
        }
        assert_eq!(
            matches("#", s),
            !s.starts_with('$'),
            "'#' and the name {s:?}"
        );
        assert_eq!(
            matches("+", s),
            !s.starts_with('$') && !s.contains('/'),
            "'+' and the name {s:?}"
        );
    }
    if filter_ok {
        if !has_wildcard(s) {
            assert!(
                name_ok,
                "valid filter {s:?} without wildcards is not a valid name"
            );
        }
        if let Some(rest) = s.strip_prefix("$share/") {
            let Some((group, inner)) = split_shared(s) else {
                panic!("valid shared filter {s:?} does not split");
            };
            assert!(rest.starts_with(group));
            assert!(
                !group.is_empty() && !group.contains(['/', '+', '#']),
                "{s:?}"
            );
            // Finding N1 (fixed): the inner filter of a shared subscription is a valid,
            // non-shared filter.
            assert!(
                validate_filter(inner).is_ok() && split_shared(inner).is_none(),
                "{s:?}: inner {inner:?}"
            );
        } else {
            assert!(split_shared(s).is_none());
        }
    }
}

fn check_pair(filter: &str, name: &str) {
    let got = matches(filter, name);
    if validate_filter(filter).is_ok()
        && split_shared(filter).is_none()
        && validate_name(name).is_ok()
    {
        assert_eq!(
            got,
            reference_matches(filter, name),
            "matches({filter:?}, {name:?})"
        );
        if !has_wildcard(filter) {
            assert_eq!(got, filter == name, "matches({filter:?}, {name:?})");
        }
    }
}

/// Section 4.7, written independently of tern: level by level, `+` takes one level, `#`
/// takes the rest including none (so `a/#` matches `a`), and a filter starting with a
/// wildcard does not match a name starting with `$`.
pub fn reference_matches(filter: &str, name: &str) -> bool {
    fn go(f: &[&str], n: &[&str]) -> bool {
        match (f.first(), n.first()) {
            (Some(&"#"), _) => f.len() == 1,
            (Some(&"+"), Some(_)) => go(&f[1..], &n[1..]),
            (Some(a), Some(b)) => a == b && go(&f[1..], &n[1..]),
            (None, None) => true,
            _ => false,
        }
    }
    if name.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let f: Vec<&str> = filter.split('/').collect();
    let n: Vec<&str> = name.split('/').collect();
    go(&f, &n)
}

/// Names made from `filter` by putting `word` in each `+` level, and for a final `#` the
/// parent, `word`, and `word/word`.
fn fill<'a>(filter: &'a str, word: &'a str) -> Vec<String> {
    let levels: Vec<&str> = filter.split('/').collect();
    let sub = |l: &'a str| if l == "+" { word } else { l };
    let Some((last, init)) = levels.split_last() else {
        return Vec::new();
    };
    let head: Vec<&str> = init.iter().map(|l| sub(l)).collect();
    if *last == "#" {
        let mut out = Vec::new();
        if !head.is_empty() {
            out.push(head.join("/"));
        }
        out.push([&head[..], &[word]].concat().join("/"));
        out.push([&head[..], &[word, word]].concat().join("/"));
        out
    } else {
        vec![[&head[..], &[sub(last)]].concat().join("/")]
    }
}
