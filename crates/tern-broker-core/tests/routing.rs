//! The matchers the broker routes with — the subscription tree (`SubscriptionTree::matches`,
//! shared groups included) and the retained store (`Retained::matching`) — agree with a
//! brute-force `tern_codec::topic::matches` over every filter (section 4.7: `+`, `#`,
//! [MQTT-4.7.1-2] `a/#` matches `a`, [MQTT-4.7.2-1] no wildcard at the first level matches a
//! `$` topic, empty levels, `$share/group/filter` [MQTT-4.8.2-1]) (issue #5).
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use std::collections::BTreeSet;
use std::sync::Arc;

use proptest::prelude::*;
use tern_broker_core::message::Message;
use tern_broker_core::retained::Retained;
use tern_broker_core::trie::{Hit, Sub, SubscriptionTree};
use tern_codec::topic::{matches, split_shared, validate_filter, validate_name};
use tern_codec::{QoS, SubscriptionOptions};
use tern_proto::Timestamp;

fn sub(session: usize) -> Sub {
    Sub {
        session,
        options: SubscriptionOptions::qos(QoS::AtLeastOnce),
        id: None,
    }
}

/// The inner filter of a `$share/group/filter`, or the filter itself.
fn inner(f: &str) -> &str {
    split_shared(f).map_or(f, |(_, i)| i)
}

/// Sessions the tree delivers `topic` to: plain hits, and every member of each group hit
/// (round robin over `shared_len` picks visits them all). Also the number of group hits.
fn tree_sessions(t: &mut SubscriptionTree, topic: &str) -> (Vec<usize>, usize) {
    let mut hits = Vec::new();
    t.matches(topic, &mut hits);
    let n = t.shared_len();
    let mut got = Vec::new();
    let mut groups = 0;
    for h in hits {
        match h {
            Hit::Sub(s) => got.push(s.session),
            Hit::Group(g) => {
                groups += 1;
                let members: BTreeSet<usize> = (0..n)
                    .filter_map(|_| t.pick_shared(g, |_| true).map(|s| s.session))
                    .collect();
                got.extend(members);
            }
        }
    }
    got.sort_unstable();
    (got, groups)
}

/// Checks the tree against brute force for `filters` (session i subscribes to filters[i];
/// invalid filters are skipped) and `topics` (invalid names skipped).
fn check_tree(t: &mut SubscriptionTree, filters: &[(usize, &str)], topics: &[&str]) {
    for &topic in topics {
        if validate_name(topic).is_err() {
            continue;
        }
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
        let (got, groups) = tree_sessions(t, topic);
        assert_eq!(got, want, "topic {topic:?}, filters {filters:?}");
        assert_eq!(
            groups, want_groups,
            "groups for {topic:?}, filters {filters:?}"
        );
    }
}

/// Subscribes every valid filter, compares, unsubscribes every other one, compares again,
/// then the retained store: every valid topic retained, each valid filter's lookup against
/// brute force, before and after removing every other topic.
fn check(filters: &[String], topics: &[String]) {
    let valid: Vec<(usize, &str)> = filters
        .iter()
        .map(String::as_str)
        .enumerate()
        .filter(|(_, f)| validate_filter(f).is_ok())
        .collect();
    let names: Vec<&str> = topics.iter().chain(filters).map(String::as_str).collect();
    let mut t = SubscriptionTree::default();
    for &(i, f) in &valid {
        assert!(!t.subscribe(f, sub(i)), "{f:?} replaced nothing");
    }
    assert_eq!(t.len(), valid.len());
    check_tree(&mut t, &valid, &names);
    let (gone, kept): (Vec<_>, Vec<_>) = valid.iter().partition(|(i, _)| i % 2 == 0);
    for &(i, f) in &gone {
        assert!(t.unsubscribe(f, i), "unsubscribe {f:?}");
    }
    assert_eq!(t.len(), kept.len());
    check_tree(&mut t, &kept, &names);

    let valid_names: BTreeSet<&str> = names
        .iter()
        .copied()
        .filter(|n| validate_name(n).is_ok())
        .collect();
    let mut r = Retained::default();
    for n in &valid_names {
        r.set(Arc::new(Message::simple(n, b"p", QoS::AtMostOnce, true)));
    }
    assert_eq!(r.len(), valid_names.len());
    check_retained(&mut r, &valid, &valid_names);
    let removed: Vec<&str> = valid_names.iter().copied().step_by(2).collect();
    for n in &removed {
        assert!(r.remove(n).is_some(), "remove {n:?}");
    }
    let left: BTreeSet<&str> = valid_names
        .iter()
        .copied()
        .filter(|n| !removed.contains(n))
        .collect();
    check_retained(&mut r, &valid, &left);
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

/// A topic or filter from a few levels, some of them wildcards, `$` names or empty, maybe
/// behind `$share/g/` or `$share/h/`.
fn candidate() -> impl Strategy<Value = String> {
    let level = prop::sample::select(vec!["a", "b", "c", "", "+", "#", "$SYS", "$", "$share"]);
    let prefix = prop::sample::select(vec!["", "", "", "$share/g/", "$share/h/", "$share//"]);
    (prefix, prop::collection::vec(level, 1..5))
        .prop_map(|(p, levels)| format!("{p}{}", levels.join("/")))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn trie_and_retained_agree_with_topic_matches(
        filters in prop::collection::vec(candidate(), 0..12),
        topics in prop::collection::vec(candidate(), 0..12),
    ) {
        check(&filters, &topics);
    }
}

/// Hand-picked cases the generator might take long to reach.
#[test]
fn trie_and_retained_agree_on_spec_examples() {
    let filters: Vec<String> = [
        "#",
        "+",
        "+/+",
        "/+",
        "a/#",
        "a/+/#",
        "+/b",
        "$SYS/#",
        "$SYS",
        "+/#",
        "a//b",
        "a/+/",
        "$share/g/a/#",
        "$share/g/+/b",
        "$share/h/a/#",
        "$share/g/#",
        "$share/g/$SYS/#",
    ]
    .map(String::from)
    .to_vec();
    let topics: Vec<String> = [
        "a", "a/b", "a/b/c", "/", "/a", "a/", "a//b", "$SYS", "$SYS/x", "$", "b", "x/b",
    ]
    .map(String::from)
    .to_vec();
    check(&filters, &topics);
}
