//! tern-conf: `AclFile::parse`, `AclFile::check` and `AclFile::check_subscribe`.
//!
//! Input: lossy UTF-8 split at NUL. Part 0 is the ACL file. The remaining parts are read in
//! groups of four, `user`, `client id`, `topic name`, `topic filter`; a user part that is
//! exactly `-` means "anonymous" (no user name).
//!
//! Properties: no panic; `check` refuses invalid topic names; `check_subscribe` is sound with
//! respect to `check`: when it answers `Allowed`, every topic the filter matches is readable,
//! and when it answers `Denied`, none is. The topics tried are the fuzzed one and topics made
//! from the filter and from every rule of the file by filling in its wildcards.

use tern_codec::topic;
use tern_conf::acl::{Access, AclFile, SubscribeDecision};

/// A query, as read from the input.
#[derive(Debug)]
struct Query<'a> {
    user: Option<&'a str>,
    client: &'a str,
    topic: &'a str,
    filter: &'a str,
}

/// Target `acl`.
pub fn run(data: &[u8]) {
    let parts = crate::nul_parts(data);
    let Some((text, rest)) = parts.split_first() else {
        return;
    };
    let acl = match AclFile::parse("/etc/tern/acl", text) {
        Ok(acl) => acl,
        Err(e) => {
            let _ = e.to_string();
            assert!(e.line >= 1 && e.line <= text.lines().count(), "{e}");
            return;
        }
    };
    for w in &acl.warnings {
        assert!(w.starts_with("/etc/tern/acl:"), "{w}");
    }
    let mut queries: Vec<Query<'_>> = rest
        .chunks(4)
        .take(4)
        .map(|q| {
            let get = |i: usize| q.get(i).map_or("", String::as_str);
            Query {
                user: match q.first().map(String::as_str) {
                    None | Some("-") => None,
                    Some(u) => Some(u),
                },
                client: get(1),
                topic: get(2),
                filter: get(3),
            }
        })
        .collect();
    if queries.is_empty() {
        // No queries given: ask as anonymous and as the first user of the file.
        let first_user = acl.users.keys().min().map(String::as_str);
        for user in [None, first_user] {
            queries.push(Query {
                user,
                client: "c",
                topic: "a/b",
                filter: "#",
            });
        }
    }
    // Candidate filters: each query's, and every rule's filter (a rule is also a filter a
    // client might subscribe to).
    let rule_filters: Vec<&str> = acl
        .anonymous
        .iter()
        .chain(acl.users.values().flatten())
        .chain(acl.patterns.iter())
        .map(|r| r.filter.as_str())
        .take(8)
        .collect();
    for q in &queries {
        for access in [Access::Read, Access::Write] {
            let allowed = acl.check(q.user, q.client, q.topic, access);
            if topic::validate_name(q.topic).is_err() {
                assert!(!allowed, "invalid topic name {:?} allowed", q.topic);
            }
        }
        let mut filters: Vec<&str> = vec![q.filter];
        filters.extend(rule_filters.iter().copied());
        for filter in filters {
            check_subscribe_sound(&acl, q, filter, &rule_filters);
        }
    }
}

/// `check_subscribe(filter)` against `check` on topics the filter matches.
fn check_subscribe_sound(acl: &AclFile, q: &Query<'_>, filter: &str, rules: &[&str]) {
    let decision = acl.check_subscribe(q.user, q.client, filter);
    if topic::validate_filter(filter).is_err() {
        assert_eq!(
            decision,
            SubscribeDecision::Denied,
            "invalid filter {filter:?}"
        );
        return;
    }
    if decision == SubscribeDecision::Narrowed {
        return;
    }
    let inner = topic::split_shared(filter).map_or(filter, |(_, f)| f);
    let mut topics: Vec<String> = vec![q.topic.to_owned()];
    // A word fills one level, so it cannot hold '/', '+' or '#'.
    let words = [q.client, "x", "$x"];
    for word in words.into_iter().filter(|w| !w.contains(['/', '+', '#'])) {
        topics.extend(instances(inner, word));
        for r in rules {
            topics.extend(instances(r, word));
            topics.extend(instances(&substitute(r, q.user, q.client), word));
        }
    }
    topics.retain(|t| topic::validate_name(t).is_ok() && topic::matches(inner, t));
    topics.sort_unstable();
    topics.dedup();
    for t in topics.iter().take(64) {
        let readable = acl.check(q.user, q.client, t, Access::Read);
        match decision {
            SubscribeDecision::Allowed => assert!(
                readable,
                "check_subscribe({filter:?}) is Allowed but check({t:?}, Read) refuses; \
                 user {:?} client {:?}\nacl: {acl:?}",
                q.user, q.client
            ),
            SubscribeDecision::Denied => assert!(
                !readable,
                "check_subscribe({filter:?}) is Denied but check({t:?}, Read) allows; \
                 user {:?} client {:?}\nacl: {acl:?}",
                q.user, q.client
            ),
            _ => {}
        }
    }
}

/// Topic names made from `filter` by replacing each `+` level with `word` and a final `#`
/// with nothing (the parent), `word`, or `word/word`. `%u`/`%c` are kept as text.
fn instances<'a>(filter: &'a str, word: &'a str) -> Vec<String> {
    let levels: Vec<&str> = filter.split('/').collect();
    let fill = |l: &'a str| if l == "+" { word } else { l };
    let Some((last, init)) = levels.split_last() else {
        return Vec::new();
    };
    let head: Vec<&str> = init.iter().map(|l| fill(l)).collect();
    if *last == "#" {
        let mut out = Vec::new();
        if !head.is_empty() {
            out.push(head.join("/"));
        }
        for tail in [word.to_owned(), format!("{word}/{word}")] {
            let mut v = head.clone();
            v.push(&tail);
            out.push(v.join("/"));
        }
        out
    } else {
        let mut v = head;
        v.push(fill(last));
        vec![v.join("/")]
    }
}

/// `%u` and `%c` levels replaced as a pattern would be (no user name: left as is).
fn substitute(filter: &str, user: Option<&str>, client: &str) -> String {
    filter
        .split('/')
        .map(|l| match l {
            "%u" => user.unwrap_or(l),
            "%c" => client,
            other => other,
        })
        .collect::<Vec<_>>()
        .join("/")
}
