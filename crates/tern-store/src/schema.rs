//! The database file: opening it (refusing what is not a tern store), the schema version and
//! the migration from older layouts, reading everything back at start-up (setting aside what
//! does not decode), and applying a batch of [`StoreOp`]s inside a write transaction.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};
use tern_broker_core::{Restored, StoreOp, StoredItem};
use tern_proto::Timestamp;

use crate::StoreError;
use crate::record::{self, RecordError};
use crate::store::LoadReport;

/// The schema this tern writes. 0: the prototype layout (see [`record::v0`]); 1: every record
/// starts with its layout byte, sessions keep their last packet id, items their subscription
/// identifiers and in-flight state.
pub const SCHEMA_VERSION: u64 = 1;

pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
pub(crate) const RETAINED: TableDefinition<&str, &[u8]> = TableDefinition::new("retained");
pub(crate) const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
pub(crate) const ITEMS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("items");
/// Records that did not decode: (table, key as text, raw value), under a counter.
pub(crate) const DAMAGED: TableDefinition<u64, (&str, &str, &[u8])> =
    TableDefinition::new("damaged");

const SCHEMA_KEY: &str = "schema";

/// redb's file signature (the first bytes of every redb file).
const REDB_MAGIC: &[u8] = b"redb\x1A\x0A\xA9\x0D\x0A";

fn db_err(path: &Path, e: impl Into<redb::Error>) -> StoreError {
    let e: redb::Error = e.into();
    match e {
        redb::Error::DatabaseAlreadyOpen => StoreError::InUse {
            path: path.to_owned(),
        },
        redb::Error::Corrupted(detail) => StoreError::Damaged {
            path: path.to_owned(),
            detail,
        },
        redb::Error::Io(source)
            if matches!(
                source.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData
            ) =>
        {
            StoreError::Damaged {
                path: path.to_owned(),
                detail: source.to_string(),
            }
        }
        redb::Error::Io(source) => StoreError::Io {
            path: path.to_owned(),
            source,
        },
        redb::Error::UpgradeRequired(v) => StoreError::NotAStore {
            path: path.to_owned(),
            detail: format!("an older redb file format ({v})"),
        },
        other => StoreError::Db {
            path: path.to_owned(),
            detail: other.to_string(),
        },
    }
}

/// Looks at the first bytes: an empty or missing file is fine, a redb file is fine, a
/// Mosquitto file or anything else is refused before redb touches it.
fn check_signature(path: &Path) -> Result<(), StoreError> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(StoreError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    let mut head = [0u8; 32];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(source) => {
                return Err(StoreError::Io {
                    path: path.to_owned(),
                    source,
                });
            }
        }
    }
    let head = &head[..n];
    if head.is_empty() || head.starts_with(REDB_MAGIC) {
        return Ok(());
    }
    if head.windows(12).any(|w| w == b"mosquitto db") {
        return Err(StoreError::MosquittoFile {
            path: path.to_owned(),
        });
    }
    if n < REDB_MAGIC.len() && REDB_MAGIC.starts_with(head) {
        return Err(StoreError::Damaged {
            path: path.to_owned(),
            detail: format!("only {n} bytes long"),
        });
    }
    Err(StoreError::NotAStore {
        path: path.to_owned(),
        detail: "the file does not start with a redb signature".to_owned(),
    })
}

/// Opens (or creates) the database, verifying every page, and brings its schema to
/// [`SCHEMA_VERSION`]. Returns the database and what the migration had to set aside.
pub(crate) fn open(path: &Path, report: &mut LoadReport) -> Result<Database, StoreError> {
    check_signature(path)?;
    // redb may panic on a file altered outside redb unless the integrity check runs first; the
    // check is on, and a panic is still caught so that it becomes a clear refusal.
    // With 1-phase commits (redb's default: one fsync per commit, checksums decide), an open
    // finds the newest commit incomplete only after a power loss or an OS crash during that
    // commit (whose acknowledgements were therefore never sent), or when the file was damaged
    // since. redb then falls back to the commit before it; the callback makes that visible.
    let fell_back = Arc::new(AtomicBool::new(false));
    let flag = fell_back.clone();
    let opened = std::panic::catch_unwind(move || {
        Database::builder()
            .set_check_integrity_on_open(true)
            .set_cache_size(64 * 1024 * 1024)
            .set_repair_callback(move |s| {
                // redb reports 0.3 once it found the newest commit's checksums wrong.
                if (s.progress() - 0.3).abs() < 1e-9 {
                    flag.store(true, Ordering::Relaxed);
                }
            })
            .create(path)
    });
    let db = match opened {
        Ok(r) => r.map_err(|e| db_err(path, e))?,
        Err(_) => {
            return Err(StoreError::Damaged {
                path: path.to_owned(),
                detail: "redb failed while reading it".to_owned(),
            });
        }
    };
    report.fell_back = fell_back.load(Ordering::Relaxed);
    let version = read_version(path, &db)?;
    match version {
        None => init(path, &db)?,
        Some(SCHEMA_VERSION) => {}
        Some(0) => migrate_v0(path, &db, report)?,
        Some(found) => {
            return Err(StoreError::TooNew {
                path: path.to_owned(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
    }
    Ok(db)
}

/// The stored schema version; `None` for a new, empty database.
fn read_version(path: &Path, db: &Database) -> Result<Option<u64>, StoreError> {
    let txn = db.begin_read().map_err(|e| db_err(path, e))?;
    let tables: Vec<String> = txn
        .list_tables()
        .map_err(|e| db_err(path, e))?
        .map(|t| redb::TableHandle::name(&t).to_owned())
        .collect();
    if tables.is_empty() {
        return Ok(None);
    }
    let meta = match txn.open_table(META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_))
        | Err(redb::TableError::TableTypeMismatch { .. }) => {
            return Err(StoreError::NotAStore {
                path: path.to_owned(),
                detail: format!("a redb database with tables {tables:?}"),
            });
        }
        Err(e) => return Err(db_err(path, e)),
    };
    match meta.get(SCHEMA_KEY).map_err(|e| db_err(path, e))? {
        Some(v) => Ok(Some(v.value())),
        None => Err(StoreError::NotAStore {
            path: path.to_owned(),
            detail: "its meta table has no schema version".to_owned(),
        }),
    }
}

fn init(path: &Path, db: &Database) -> Result<(), StoreError> {
    let txn = db.begin_write().map_err(|e| db_err(path, e))?;
    {
        let mut meta = txn.open_table(META).map_err(|e| db_err(path, e))?;
        meta.insert(SCHEMA_KEY, SCHEMA_VERSION)
            .map_err(|e| db_err(path, e))?;
        txn.open_table(RETAINED).map_err(|e| db_err(path, e))?;
        txn.open_table(SESSIONS).map_err(|e| db_err(path, e))?;
        txn.open_table(ITEMS).map_err(|e| db_err(path, e))?;
        txn.open_table(DAMAGED).map_err(|e| db_err(path, e))?;
    }
    txn.commit().map_err(|e| db_err(path, e))
}

/// Records that failed to decode, collected while reading.
#[derive(Default)]
struct SetAside {
    retained: Vec<(String, Vec<u8>, RecordError)>,
    sessions: Vec<(String, Vec<u8>, RecordError)>,
    items: Vec<((String, u64), Vec<u8>, RecordError)>,
}

impl SetAside {
    fn is_empty(&self) -> bool {
        self.retained.is_empty() && self.sessions.is_empty() && self.items.is_empty()
    }
}

/// Moves records that did not decode into `damaged` (in the same transaction `txn`), and
/// records what was set aside in `report`.
fn set_aside(
    path: &Path,
    txn: &WriteTransaction,
    bad: SetAside,
    report: &mut LoadReport,
) -> Result<(), StoreError> {
    let e = |x: redb::Error| db_err(path, x);
    let mut damaged = txn.open_table(DAMAGED).map_err(|x| e(x.into()))?;
    let mut next = damaged
        .last()
        .map_err(|x| e(x.into()))?
        .map_or(0, |(k, _)| k.value() + 1);
    {
        let mut retained = txn.open_table(RETAINED).map_err(|x| e(x.into()))?;
        for (topic, raw, why) in bad.retained {
            damaged
                .insert(next, ("retained", topic.as_str(), raw.as_slice()))
                .map_err(|x| e(x.into()))?;
            next += 1;
            retained.remove(topic.as_str()).map_err(|x| e(x.into()))?;
            report.retained_lost.push((topic, why.to_string()));
        }
    }
    {
        let mut sessions = txn.open_table(SESSIONS).map_err(|x| e(x.into()))?;
        for (cid, raw, why) in bad.sessions {
            damaged
                .insert(next, ("sessions", cid.as_str(), raw.as_slice()))
                .map_err(|x| e(x.into()))?;
            next += 1;
            sessions.remove(cid.as_str()).map_err(|x| e(x.into()))?;
            report.sessions_lost.push((cid, why.to_string()));
        }
    }
    let mut items = txn.open_table(ITEMS).map_err(|x| e(x.into()))?;
    for ((cid, seq), raw, why) in bad.items {
        let key = format!("{cid}\u{0}{seq}");
        damaged
            .insert(next, ("items", key.as_str(), raw.as_slice()))
            .map_err(|x| e(x.into()))?;
        next += 1;
        items.remove((cid.as_str(), seq)).map_err(|x| e(x.into()))?;
        *report.items_lost.entry(cid).or_default() += 1;
        report.item_errors.push(why.to_string());
    }
    Ok(())
}

/// Which decoder to use.
#[derive(Clone, Copy)]
enum Layout {
    V0,
    V1,
}

/// Reads every record with `layout`, collecting what decodes and what does not. The messages
/// of a session whose record did not decode are set aside with it (the core would otherwise
/// delete them as orphans).
fn read_all<
    T: ReadableTable<&'static str, &'static [u8]>,
    I: ReadableTable<(&'static str, u64), &'static [u8]>,
>(
    path: &Path,
    retained: &T,
    sessions: &T,
    items: &I,
    layout: Layout,
    summarize: Option<Timestamp>,
) -> Result<(Restored, SetAside), StoreError> {
    let e = |x: redb::StorageError| db_err(path, x);
    let mut out = Restored::default();
    let mut bad = SetAside::default();
    for entry in retained.iter().map_err(e)? {
        let (k, v) = entry.map_err(e)?;
        let r = match layout {
            Layout::V0 => record::v0::decode_retained(v.value()),
            Layout::V1 => record::decode_retained(v.value()),
        };
        match r {
            Ok(m) if *m.topic == *k.value() => out.retained.push(m),
            Ok(_) => bad.retained.push((
                k.value().to_owned(),
                v.value().to_vec(),
                RecordError::BadUtf8("topic (differs from its key)"),
            )),
            Err(why) => bad
                .retained
                .push((k.value().to_owned(), v.value().to_vec(), why)),
        }
    }
    let mut bad_sessions = BTreeSet::new();
    for entry in sessions.iter().map_err(e)? {
        let (k, v) = entry.map_err(e)?;
        let r = match layout {
            Layout::V0 => record::v0::decode_session(k.value(), v.value()),
            Layout::V1 => record::decode_session(k.value(), v.value()),
        };
        match r {
            Ok(s) => out.sessions.push(s),
            Err(why) => {
                bad_sessions.insert(k.value().to_owned());
                bad.sessions
                    .push((k.value().to_owned(), v.value().to_vec(), why));
            }
        }
    }
    let mut last: Option<Arc<str>> = None;
    for entry in items.iter().map_err(e)? {
        let (k, v) = entry.map_err(e)?;
        let (cid, seq) = k.value();
        if bad_sessions.contains(cid) {
            bad.items.push((
                (cid.to_owned(), seq),
                v.value().to_vec(),
                RecordError::BadValue {
                    field: "session record (damaged)",
                    value: seq,
                },
            ));
            continue;
        }
        let r: Result<StoredItem, RecordError> = match layout {
            Layout::V0 => record::v0::decode_item(v.value()),
            Layout::V1 => record::decode_item(v.value()),
        };
        match r {
            Ok(item) => {
                let id = match &last {
                    Some(l) if **l == *cid => l.clone(),
                    _ => {
                        let a: Arc<str> = Arc::from(cid);
                        last = Some(a.clone());
                        a
                    }
                };
                match summarize {
                    // Checked whole, then only counted: memory stays flat however much the
                    // store holds.
                    Some(now) => out.add_summarized(&id, seq, &item, now),
                    None => out.items.push((id, seq, item)),
                }
            }
            Err(why) => bad
                .items
                .push(((cid.to_owned(), seq), v.value().to_vec(), why)),
        }
    }
    Ok((out, bad))
}

/// Reads everything for start-up; records that do not decode are moved to `damaged` and
/// listed in `report`.
pub(crate) fn load(
    path: &Path,
    db: &Database,
    report: &mut LoadReport,
    summarize: Option<Timestamp>,
) -> Result<Restored, StoreError> {
    let e = |x: redb::Error| db_err(path, x);
    let (restored, bad) = {
        let txn = db.begin_read().map_err(|x| e(x.into()))?;
        let retained = txn.open_table(RETAINED).map_err(|x| e(x.into()))?;
        let sessions = txn.open_table(SESSIONS).map_err(|x| e(x.into()))?;
        let items = txn.open_table(ITEMS).map_err(|x| e(x.into()))?;
        read_all(path, &retained, &sessions, &items, Layout::V1, summarize)?
    };
    if !bad.is_empty() {
        let txn = db.begin_write().map_err(|x| e(x.into()))?;
        set_aside(path, &txn, bad, report)?;
        txn.commit().map_err(|x| e(x.into()))?;
    }
    report.retained = restored.retained.len();
    report.sessions = restored.sessions.len();
    report.items = restored.items.len()
        + restored.expired.len()
        + restored.queues.iter().map(|q| q.count).sum::<usize>();
    Ok(restored)
}

/// Rewrites a version 0 store in the version 1 layout, in one transaction: either the whole
/// store is migrated or nothing changes.
fn migrate_v0(path: &Path, db: &Database, report: &mut LoadReport) -> Result<(), StoreError> {
    let e = |x: redb::Error| db_err(path, x);
    let txn = db.begin_write().map_err(|x| e(x.into()))?;
    let (restored, bad) = {
        let retained = txn.open_table(RETAINED).map_err(|x| e(x.into()))?;
        let sessions = txn.open_table(SESSIONS).map_err(|x| e(x.into()))?;
        let items = txn.open_table(ITEMS).map_err(|x| e(x.into()))?;
        read_all(path, &retained, &sessions, &items, Layout::V0, None)?
    };
    set_aside(path, &txn, bad, report)?;
    {
        let mut retained = txn.open_table(RETAINED).map_err(|x| e(x.into()))?;
        for m in &restored.retained {
            retained
                .insert(&*m.topic, record::encode_retained(m).as_slice())
                .map_err(|x| e(x.into()))?;
        }
        let mut sessions = txn.open_table(SESSIONS).map_err(|x| e(x.into()))?;
        for s in &restored.sessions {
            sessions
                .insert(&*s.client_id, record::encode_session(s).as_slice())
                .map_err(|x| e(x.into()))?;
        }
        let mut items = txn.open_table(ITEMS).map_err(|x| e(x.into()))?;
        for (cid, seq, it) in &restored.items {
            items
                .insert((&**cid, *seq), record::encode_item(it).as_slice())
                .map_err(|x| e(x.into()))?;
        }
        let mut meta = txn.open_table(META).map_err(|x| e(x.into()))?;
        meta.insert(SCHEMA_KEY, SCHEMA_VERSION)
            .map_err(|x| e(x.into()))?;
    }
    txn.commit().map_err(|x| e(x.into()))?;
    report.migrated_from = Some(0);
    Ok(())
}

/// Applies operations in order inside `txn` (the writer thread's group commit).
pub(crate) fn apply(txn: &WriteTransaction, ops: &[StoreOp]) -> Result<(), redb::Error> {
    let mut retained = txn.open_table(RETAINED)?;
    let mut sessions = txn.open_table(SESSIONS)?;
    let mut items = txn.open_table(ITEMS)?;
    for op in ops {
        match op {
            StoreOp::RetainedPut(m) => {
                retained.insert(&*m.topic, record::encode_retained(m).as_slice())?;
            }
            StoreOp::RetainedDel(t) => {
                retained.remove(&**t)?;
            }
            StoreOp::SessionPut(s) => {
                sessions.insert(&*s.client_id, record::encode_session(s).as_slice())?;
            }
            StoreOp::SessionDel(c) => {
                sessions.remove(&**c)?;
                let c: &str = c;
                items.retain_in((c, 0u64)..=(c, u64::MAX), |_, _| false)?;
            }
            StoreOp::ItemPut {
                client_id,
                seq,
                item,
            } => {
                items.insert((&**client_id, *seq), record::encode_item(item).as_slice())?;
            }
            StoreOp::ItemDel { client_id, seq } => {
                items.remove((&**client_id, *seq))?;
            }
        }
    }
    Ok(())
}

/// The stored messages of one session, in sequence order. A record that does not decode is
/// skipped and counted in `skipped` (the start-up check has already set aside any that were
/// damaged on disk, so this only happens if the file changed under the broker).
pub(crate) fn session_items(
    db: &Database,
    client_id: &str,
    skipped: &mut usize,
) -> Result<Vec<(u64, StoredItem)>, redb::Error> {
    let txn = db.begin_read()?;
    let items = txn.open_table(ITEMS)?;
    let mut out = Vec::new();
    for entry in items.range((client_id, 0u64)..=(client_id, u64::MAX))? {
        let (k, v) = entry?;
        match record::decode_item(v.value()) {
            Ok(it) => out.push((k.value().1, it)),
            Err(_) => *skipped += 1,
        }
    }
    Ok(out)
}

/// Counts of what each table holds (tests, diagnostics).
pub(crate) fn counts(db: &Database) -> Result<BTreeMap<&'static str, u64>, redb::Error> {
    let txn = db.begin_read()?;
    let mut m = BTreeMap::new();
    m.insert("retained", txn.open_table(RETAINED)?.len()?);
    m.insert("sessions", txn.open_table(SESSIONS)?.len()?);
    m.insert("items", txn.open_table(ITEMS)?.len()?);
    m.insert("damaged", txn.open_table(DAMAGED)?.len()?);
    Ok(m)
}

/// Writes a version 0 store (the tests' fixture for the migration).
#[doc(hidden)]
pub fn write_v0_fixture(path: &Path, r: &Restored) -> Result<(), redb::Error> {
    let db = Database::create(path)?;
    let txn = db.begin_write()?;
    {
        let mut meta = txn.open_table(META)?;
        meta.insert(SCHEMA_KEY, 0)?;
        let mut retained = txn.open_table(RETAINED)?;
        for m in &r.retained {
            retained.insert(&*m.topic, record::v0::encode_retained(m).as_slice())?;
        }
        let mut sessions = txn.open_table(SESSIONS)?;
        for s in &r.sessions {
            sessions.insert(&*s.client_id, record::v0::encode_session(s).as_slice())?;
        }
        let mut items = txn.open_table(ITEMS)?;
        for (c, seq, it) in &r.items {
            items.insert((&**c, *seq), record::v0::encode_item(it).as_slice())?;
        }
    }
    txn.commit()?;
    Ok(())
}
