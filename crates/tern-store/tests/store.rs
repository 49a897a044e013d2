//! The database store against the core's reference `MemStore`: random operation sequences
//! applied in random batches read back identically (also after reopening); damaged files are
//! refused or reported; a version 0 store is migrated; a newer one is refused.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;
use tern_broker_core::session::{OutState, SubIds};
use tern_broker_core::{
    ItemState, MemStore, Message, MsgRef, QueueLoader, Restored, SessionRecord, StoreOp, StoredItem,
};
use tern_codec::{PacketId, ProtocolVersion, QoS, RetainHandling, SubscriptionOptions};
use tern_proto::Timestamp;
use tern_store::{Store, StoreError, StoreOptions};

fn msg(topic: &str, payload: &[u8], expires: Option<u64>) -> MsgRef {
    let mut m = Message::simple(topic, payload, QoS::AtLeastOnce, false);
    m.expires_at = expires.map(Timestamp);
    m.content_type = (payload.len() % 2 == 1).then(|| Box::from("text/plain"));
    Arc::new(m)
}

fn session(cid: &str, expiry: u32, subs: usize) -> SessionRecord {
    SessionRecord {
        client_id: Arc::from(cid),
        username: subs.is_multiple_of(2).then(|| Arc::from("user")),
        version: if subs.is_multiple_of(2) {
            ProtocolVersion::V5
        } else {
            ProtocolVersion::V311
        },
        expiry,
        disconnected_at: expiry
            .is_multiple_of(3)
            .then_some(Timestamp(1_000 + u64::from(expiry))),
        subscriptions: (0..subs)
            .map(|i| {
                (
                    Box::from(format!("f/{i}/#").as_str()),
                    SubscriptionOptions {
                        qos: QoS::AtLeastOnce,
                        no_local: i % 2 == 1,
                        retain_as_published: false,
                        retain_handling: RetainHandling::SendIfNew,
                    },
                    (i % 3 == 0).then_some(i as u32 + 1),
                )
            })
            .collect(),
        will: (subs == 1).then(|| (msg("will", b"gone", None), 5, Some(Timestamp(9)))),
        last_pid: (expiry % 65_535) as u16,
        // Every other session has QoS 2 messages awaiting PUBREL (record layout 2).
        inbound_qos2: if subs.is_multiple_of(2) {
            vec![1, 7, 65_535]
        } else {
            Vec::new()
        },
    }
}

fn item(payload: &[u8], inflight: Option<u16>) -> StoredItem {
    StoredItem {
        msg: msg("q/t", payload, None),
        qos: QoS::AtLeastOnce,
        retain: false,
        sub_ids: match payload.len() % 3 {
            0 => SubIds::None,
            1 => SubIds::One(4),
            _ => SubIds::Many(Arc::from([1u32, 9])),
        },
        state: match inflight {
            None => ItemState::Queued,
            Some(p) => ItemState::Inflight(PacketId::new(p).unwrap(), OutState::AwaitPuback),
        },
    }
}

const CLIENTS: [&str; 3] = ["a", "b", "client/c"];
const TOPICS: [&str; 3] = ["t/1", "t/2", "sensor/x"];

fn op_strategy() -> impl Strategy<Value = StoreOp> {
    let cid = prop::sample::select(&CLIENTS[..]).prop_map(Arc::<str>::from);
    prop_oneof![
        (
            prop::sample::select(&TOPICS[..]),
            prop::collection::vec(any::<u8>(), 1..20)
        )
            .prop_map(|(t, p)| StoreOp::RetainedPut(msg(t, &p, None))),
        prop::sample::select(&TOPICS[..]).prop_map(|t| StoreOp::RetainedDel(Arc::from(t))),
        (prop::sample::select(&CLIENTS[..]), 1u32..10_000, 0usize..4)
            .prop_map(|(c, e, s)| StoreOp::SessionPut(session(c, e, s))),
        cid.clone().prop_map(StoreOp::SessionDel),
        (
            cid.clone(),
            1u64..8,
            prop::collection::vec(any::<u8>(), 0..40),
            prop::option::of(1u16..100)
        )
            .prop_map(|(client_id, seq, p, f)| StoreOp::ItemPut {
                client_id,
                seq,
                item: item(&p, f),
            }),
        (cid, 1u64..8).prop_map(|(client_id, seq)| StoreOp::ItemDel { client_id, seq }),
    ]
}

fn assert_same(a: &Restored, b: &Restored) {
    assert_eq!(a.retained, b.retained, "retained");
    assert_eq!(a.sessions, b.sessions, "sessions");
    assert_eq!(a.items, b.items, "items");
}

fn run_against_memstore(ops: &[StoreOp], cuts: &[usize], sync: bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tern.db");
    let mem = MemStore::default();
    let store = Store::open(StoreOptions {
        sync,
        ..StoreOptions::new(&path)
    })
    .unwrap();
    let mut start = 0;
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (ops.len() + 1)).collect();
    bounds.push(ops.len());
    bounds.sort_unstable();
    for end in bounds {
        let batch = &ops[start..end];
        start = end;
        mem.apply(batch);
        let mut v = batch.to_vec();
        store.submit(&mut v);
    }
    // The loader sees everything submitted, committed or not.
    for c in CLIENTS {
        assert_eq!(
            QueueLoader::load(&store, c),
            QueueLoader::load(&mem, c),
            "loader for {c}"
        );
    }
    store.flush().unwrap();
    assert_same(&store.load().unwrap(), &mem.restored());
    store.close().unwrap();
    drop(store);
    let again = Store::open(StoreOptions::new(&path)).unwrap();
    assert_same(&again.load().unwrap(), &mem.restored());
    assert!(again.report().is_clean());
    assert_same_summary(
        &again.load_summary(Timestamp(0)).unwrap(),
        &mem.restored_summary(Timestamp(0)),
    );
}

/// What a broker reads at start-up: everything but the messages, which are only counted.
fn assert_same_summary(a: &Restored, b: &Restored) {
    assert_same(a, b);
    assert!(a.items.is_empty(), "messages stay in the store");
    assert_eq!(a.queues, b.queues, "per-session message counts");
    assert_eq!(a.expired, b.expired, "expired messages");
}

#[test]
fn start_up_summary_counts_messages_and_lists_the_expired_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tern.db");
    let store = Store::open(StoreOptions::new(&path)).unwrap();
    let mem = MemStore::default();
    let expiring = |payload: &[u8], at: u64, inflight: Option<u16>| StoredItem {
        msg: msg("q/t", payload, Some(at)),
        ..item(payload, inflight)
    };
    let mut ops = vec![
        StoreOp::SessionPut(session("a", 3600, 1)),
        StoreOp::SessionPut(session("b", 3600, 2)),
    ];
    for seq in 1..=5u64 {
        // a: seq 2 and 4 expire at 100; b: only in-flight ones, which are kept expired or not.
        let a = if seq % 2 == 0 {
            expiring(b"soon", 100, None)
        } else {
            item(b"later", None)
        };
        ops.push(StoreOp::ItemPut {
            client_id: "a".into(),
            seq,
            item: a,
        });
        ops.push(StoreOp::ItemPut {
            client_id: "b".into(),
            seq: seq * 10,
            item: expiring(b"inflight", 100, Some(seq as u16)),
        });
    }
    // Messages of a session that is not stored.
    ops.push(StoreOp::ItemPut {
        client_id: "gone".into(),
        seq: 7,
        item: item(b"orphan", None),
    });
    mem.apply(&ops);
    store.submit(&mut ops);
    store.close().unwrap();
    drop(store);
    let again = Store::open(StoreOptions::new(&path)).unwrap();
    let before = again.load_summary(Timestamp(99)).unwrap();
    assert_same_summary(&before, &mem.restored_summary(Timestamp(99)));
    assert!(before.expired.is_empty());
    let r = again.load_summary(Timestamp(100)).unwrap();
    assert_same_summary(&r, &mem.restored_summary(Timestamp(100)));
    let expired: Vec<(&str, u64)> = r.expired.iter().map(|(c, s)| (&**c, *s)).collect();
    assert_eq!(expired, [("a", 2), ("a", 4)]);
    let counts: Vec<(&str, usize, u64)> = r
        .queues
        .iter()
        .map(|q| (&*q.client_id, q.count, q.last_seq))
        .collect();
    assert_eq!(counts, [("a", 3, 5), ("b", 5, 50), ("gone", 1, 7)]);
    let cost = |p: &[u8]| msg("q/t", p, None).cost();
    assert_eq!(r.queues[0].bytes, 3 * cost(b"later"));
    assert_eq!(again.report().items, 11, "every stored message is counted");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn ops_applied_in_batches_equal_memstore(
        ops in prop::collection::vec(op_strategy(), 0..60),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
        sync in any::<bool>(),
    ) {
        run_against_memstore(&ops, &cuts, sync);
    }
}

#[test]
fn session_del_removes_only_that_sessions_messages() {
    let ops = vec![
        StoreOp::SessionPut(session("a", 60, 1)),
        StoreOp::SessionPut(session("ab", 60, 1)),
        StoreOp::ItemPut {
            client_id: "a".into(),
            seq: 1,
            item: item(b"1", None),
        },
        StoreOp::ItemPut {
            client_id: "ab".into(),
            seq: 1,
            item: item(b"2", None),
        },
        StoreOp::ItemPut {
            client_id: "a".into(),
            seq: u64::MAX,
            item: item(b"3", None),
        },
        StoreOp::SessionDel("a".into()),
    ];
    run_against_memstore(&ops, &[], true);
}

/// A store with a few sessions and messages, closed cleanly.
fn populated(path: &Path) -> Restored {
    let store = Store::open(StoreOptions::new(path)).unwrap();
    let mut ops = vec![StoreOp::RetainedPut(msg("r/1", b"kept", None))];
    for c in CLIENTS {
        ops.push(StoreOp::SessionPut(session(c, 3600, 2)));
        for seq in 1..=200 {
            ops.push(StoreOp::ItemPut {
                client_id: c.into(),
                seq,
                item: item(
                    format!("{c} message {seq} {}", "x".repeat(100)).as_bytes(),
                    None,
                ),
            });
        }
    }
    store.submit(&mut ops);
    store.close().unwrap();
    let r = store.load().unwrap();
    assert_eq!(r.items.len(), 600);
    r
}

fn expect_refused(path: &Path) -> String {
    match Store::open(StoreOptions::new(path)) {
        Err(e @ StoreError::Damaged { .. }) => e.to_string(),
        Err(e) => panic!("expected Damaged, got {e:?}"),
        Ok(s) => panic!(
            "a damaged store opened: {:?}",
            s.load().map(|r| r.items.len())
        ),
    }
}

#[test]
fn truncated_store_is_refused_with_how_to_move_it_aside() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tern.db");
    populated(&path);
    let bytes = std::fs::read(&path).unwrap();
    for keep in [bytes.len() / 2, 4096, 5] {
        let copy = dir.path().join(format!("cut{keep}.db"));
        std::fs::write(&copy, &bytes[..keep]).unwrap();
        let msg = expect_refused(&copy);
        assert!(msg.contains("damaged"), "{msg}");
        assert!(msg.contains("mv "), "says how to move it aside: {msg}");
        // Refusing did not change the file.
        assert_eq!(std::fs::read(&copy).unwrap(), &bytes[..keep]);
    }
}

#[test]
fn scribbled_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tern.db");
    populated(&path);
    let bytes = std::fs::read(&path).unwrap();
    // Overwrite every page after the header with garbage, one page at a time: each copy is
    // either refused or, when the page was unused, opens with everything intact.
    let mut refused = 0;
    let mut intact = 0;
    let page = 4096;
    for p in 1..bytes.len() / page {
        let mut b = bytes.clone();
        for (i, x) in b[p * page..(p + 1) * page].iter_mut().enumerate() {
            *x = (i as u8).wrapping_mul(31).wrapping_add(7);
        }
        let copy = dir.path().join("scribbled.db");
        std::fs::write(&copy, &b).unwrap();
        match Store::open(StoreOptions::new(&copy)) {
            Err(StoreError::Damaged { .. }) => refused += 1,
            Err(e) => panic!("page {p}: unexpected error {e}"),
            Ok(s) => {
                let r = s.load().unwrap();
                assert_eq!(r.items.len(), 600, "page {p}: opened but lost messages");
                assert!(s.report().is_clean());
                intact += 1;
                s.close().unwrap();
            }
        }
        std::fs::remove_file(&copy).unwrap();
    }
    assert!(refused > 0, "some page mattered ({intact} did not)");
}

#[test]
fn records_that_do_not_decode_are_set_aside_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tern.db");
    populated(&path);
    {
        // Damage records inside the database (as a buggy writer would): the pages' checksums
        // are right, the records are not.
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut s = txn
                .open_table(redb::TableDefinition::<&str, &[u8]>::new("sessions"))
                .unwrap();
            s.insert("b", &[1u8, 0, 9][..]).unwrap();
            let mut i = txn
                .open_table(redb::TableDefinition::<(&str, u64), &[u8]>::new("items"))
                .unwrap();
            i.insert(("a", 7), &[1u8, 0xFF][..]).unwrap();
        }
        txn.commit().unwrap();
    }
    let store = Store::open(StoreOptions::new(&path)).unwrap();
    let r = store.load().unwrap();
    let report = store.report();
    assert_eq!(report.sessions_lost.len(), 1);
    assert_eq!(report.sessions_lost[0].0, "b");
    assert_eq!(report.items_lost.get("a"), Some(&1));
    assert_eq!(
        report.items_lost.get("b"),
        Some(&200),
        "b's messages set aside with it"
    );
    assert_eq!(r.sessions.len(), 2);
    assert_eq!(r.items.len(), 399);
    let lines = report.damage_lines(&path).join("\n");
    assert!(lines.contains("session \"b\" lost"), "{lines}");
    assert!(
        lines.contains("session \"a\": 1 queued message(s) lost"),
        "{lines}"
    );
    // Nothing was deleted: the records moved to the damaged table.
    assert_eq!(store.counts().unwrap()["damaged"], 202);
    store.close().unwrap();
    drop(store);
    let again = Store::open(StoreOptions::new(&path)).unwrap();
    again.load().unwrap();
    assert!(
        again.report().is_clean(),
        "reported once, not at every start"
    );
}

#[test]
fn mosquitto_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mosquitto.db");
    let mut b = vec![0x00, 0xB5, 0x00];
    b.extend_from_slice(b"mosquitto db");
    b.extend_from_slice(&[0, 0, 0, 6, 0, 0, 0, 0]);
    std::fs::write(&path, &b).unwrap();
    let e = Store::open(StoreOptions::new(&path)).unwrap_err();
    assert!(matches!(e, StoreError::MosquittoFile { .. }), "{e}");
    assert!(e.to_string().contains("persistence_file"), "{e}");
    assert_eq!(std::fs::read(&path).unwrap(), b, "left untouched");

    let other = dir.path().join("notes.txt");
    std::fs::write(&other, "hello").unwrap();
    let e = Store::open(StoreOptions::new(&other)).unwrap_err();
    assert!(matches!(e, StoreError::NotAStore { .. }), "{e}");
}

#[test]
fn other_redb_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    let db = redb::Database::create(&path).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(redb::TableDefinition::<u64, u64>::new("stuff"))
        .unwrap()
        .insert(1, 2)
        .unwrap();
    txn.commit().unwrap();
    drop(db);
    let e = Store::open(StoreOptions::new(&path)).unwrap_err();
    assert!(matches!(e, StoreError::NotAStore { .. }), "{e}");
}

#[test]
fn store_in_use_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tern.db");
    let _a = Store::open(StoreOptions::new(&path)).unwrap();
    let e = Store::open(StoreOptions::new(&path)).unwrap_err();
    assert!(matches!(e, StoreError::InUse { .. }), "{e}");
}

#[test]
fn version_0_store_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tern.db");
    let mut s = session("old", 600, 2);
    // Version 0 kept neither the last packet id, nor subscription identifiers, nor QoS 2
    // ids awaiting PUBREL.
    s.last_pid = 0;
    s.inbound_qos2.clear();
    for sub in &mut s.subscriptions {
        sub.2 = None;
    }
    let mut it = item(b"queued", None);
    it.sub_ids = SubIds::None;
    let old = Restored {
        retained: vec![msg("r/old", b"retained", Some(99))],
        sessions: vec![s.clone()],
        items: vec![("old".into(), 3, it.clone()), ("old".into(), 4, it.clone())],
        ..Restored::default()
    };
    tern_store::write_v0_fixture(&path, &old).unwrap();
    let store = Store::open(StoreOptions::new(&path)).unwrap();
    let r = store.load().unwrap();
    assert_eq!(store.report().migrated_from, Some(0));
    assert_same(&r, &old);
    store.close().unwrap();
    drop(store);
    // Migrated once: a second open reads version 1.
    let again = Store::open(StoreOptions::new(&path)).unwrap();
    assert_same(&again.load().unwrap(), &old);
    assert_eq!(again.report().migrated_from, None);
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tern.db");
    populated(&path);
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(redb::TableDefinition::<&str, u64>::new("meta"))
            .unwrap()
            .insert("schema", 7)
            .unwrap();
        txn.commit().unwrap();
    }
    let e = Store::open(StoreOptions::new(&path)).unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::TooNew {
                found: 7,
                supported: 1,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn lazy_mode_commits_without_being_asked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tern.db");
    let store = Store::open(StoreOptions {
        sync: false,
        autosave_interval: 0,
        ..StoreOptions::new(&path)
    })
    .unwrap();
    let t = store
        .submit(&mut vec![StoreOp::RetainedPut(msg("a", b"b", None))])
        .unwrap();
    assert!(!t.must_wait, "acks are not held without persistence_sync");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(std::time::Duration::from_secs(5), store.wait(t.seq))
            .await
            .unwrap()
            .unwrap();
    });
    store.close().unwrap();
    drop(store);
    let again = Store::open(StoreOptions::new(&path)).unwrap();
    assert_eq!(again.load().unwrap().retained.len(), 1, "saved at close");
}
