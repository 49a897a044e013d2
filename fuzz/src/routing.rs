//! tern-broker-core routing: `SubscriptionTree::{subscribe, unsubscribe, matches,
//! pick_shared}` and `Retained::{set, remove, matching}`, the matchers the broker actually
//! routes with, compared with tern-codec's `topic::matches` (checked in turn by the `topic`
//! target against an independent reference).
//!
//! Input: lossy UTF-8 split at `\n`, at most 48 parts of at most 64 levels each (deeper ones
//! are refused by the broker): every part is both a filter (session i subscribes to part i,
//! `$share/group/filter` as a shared subscription) and a topic name; invalid ones are
//! skipped in each role.
//!
//! Properties: for every valid name, the sessions the tree delivers to (plain hits, and every
//! member of each shared group hit) are exactly the filters `matches` accepts, each once, and
//! the number of group hits is the number of distinct matching shared filters; the same after
//! unsubscribing every other filter; for every valid filter, the retained lookup returns
//! exactly the retained topics `matches` accepts, before and after removing every other one.

use std::collections::BTreeSet;
use std::sync::Arc;

use tern_broker_core::message::Message;
use tern_broker_core::retained::Retained;
use tern_broker_core::trie::{Hit, Sub, SubscriptionTree};
use tern_codec::topic::{matches, split_shared, validate_filter, validate_name};
use tern_codec::{QoS, SubscriptionOptions};
use tern_proto::Timestamp;

/// Target `routing`.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let parts: Vec<&str> = text
        .split('\n')
        .filter(|p| p.bytes().filter(|&b| b == b'/').count() < 64)
        .take(48)
        .collect();
    check(&parts);
}

fn sub(session: usize) -> Sub {
    Sub {
        session,
        options: SubscriptionOptions::qos(QoS::AtLeastOnce),
        id: None,
    }
}

fn inner(f: &str) -> &str {
    split_shared(f).map_or(f, |(_, i)| i)
}

fn check(parts: &[&str]) {
    let filters: Vec<(usize, &str)> = parts
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, f)| validate_filter(f).is_ok())
        .collect();
    let names: BTreeSet<&str> = parts
        .iter()
        .copied()
        .filter(|n| validate_name(n).is_ok())
        .collect();

    let mut t = SubscriptionTree::default();
    for &(i, f) in &filters {
        assert!(
            !t.subscribe(f, sub(i)),
            "subscribe({f:?}) replaced something"
        );
    }
    assert_eq!(t.len(), filters.len(), "tree size");
    check_tree(&mut t, &filters, &names);
    let (gone, kept): (Vec<_>, Vec<_>) = filters.iter().partition(|(i, _)| i % 2 == 0);
    for &(i, f) in &gone {
        assert!(t.unsubscribe(f, i), "unsubscribe({f:?})");
    }
    assert_eq!(t.len(), kept.len(), "tree size after unsubscribing");
    check_tree(&mut t, &kept, &names);
    for &(i, f) in &kept {
        assert!(t.unsubscribe(f, i), "unsubscribe({f:?})");
    }
    assert!(
        t.is_empty(),
        "tree not empty after unsubscribing everything"
    );

    let mut r = Retained::default();
    for n in &names {
        r.set(Arc::new(Message::simple(n, b"p", QoS::AtMostOnce, true)));
    }
    assert_eq!(r.len(), names.len(), "retained count");
    check_retained(&mut r, &filters, &names);
    let removed: Vec<&str> = names.iter().copied().step_by(2).collect();
    for n in &removed {
        assert!(r.remove(n).is_some(), "retained remove({n:?})");
    }
    let left: BTreeSet<&str> = names
        .iter()
        .copied()
        .filter(|n| !removed.contains(n))
        .collect();
    check_retained(&mut r, &filters, &left);
}

fn check_tree(t: &mut SubscriptionTree, filters: &[(usize, &str)], names: &BTreeSet<&str>) {
    let n = t.shared_len();
    for &topic in names {
        let mut want: Vec<usize> = filters
            .iter()
            .filter(|(_, f)| matches(inner(f), topic))
            .map(|(i, _)| *i)
            .collect();
        want.sort_unstable();
        let want_groups = filters
            .iter()
            .filter(|(_, f)| split_shared(f).is_some() && matches(inner(f), topic))
            .map(|(_, f)| *f)
            .collect::<BTreeSet<&str>>()
            .len();
        let mut hits = Vec::new();
        t.matches(topic, &mut hits);
        let mut got = Vec::new();
        let mut groups = 0;
        for h in hits {
            match h {
                Hit::Sub(s) => got.push(s.session),
                Hit::Group(g) => {
                    groups += 1;
                    // Round robin: `shared_len` picks visit every member of the group.
                    let members: BTreeSet<usize> = (0..n)
                        .filter_map(|_| t.pick_shared(g, |_| true).map(|s| s.session))
                        .collect();
                    got.extend(members);
                }
            }
        }
        got.sort_unstable();
        assert_eq!(
            got, want,
            "sessions for topic {topic:?}, filters {filters:?}"
        );
        assert_eq!(groups, want_groups, "shared groups for topic {topic:?}");
    }
}

fn check_retained(r: &mut Retained, filters: &[(usize, &str)], stored: &BTreeSet<&str>) {
    for &(_, f) in filters {
        let f = inner(f);
        let mut out = Vec::new();
        r.matching(f, Timestamp(0), &mut out);
        let mut got: Vec<String> = out.iter().map(|m| m.topic.to_string()).collect();
        got.sort();
        let want: Vec<String> = stored
            .iter()
            .filter(|n| matches(f, n))
            .map(|n| n.to_string())
            .collect();
        assert_eq!(got, want, "retained lookup of {f:?}");
    }
}
