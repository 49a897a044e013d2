//! The store handle: submission of operation batches, the writer thread that group-commits
//! them, waiting for a batch to be durable, flushing and closing, and the [`QueueLoader`]
//! the core uses when an offline session reconnects.
//!
//! Batches are numbered in submission order (a [`Ticket`]); the writer publishes the number of
//! the last batch it committed ([`Committed`]) through a `tokio::sync::watch` channel (for
//! connections) and a `Condvar` (for the blocking [`Store::flush`] and the loader). The writer
//! never takes the broker lock, so a caller holding it may wait for the writer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redb::{Database, Durability};
use tern_broker_core::{QueueLoader, Restored, StoreOp, StoredItem};
use tokio::sync::watch;
use tracing::{error, warn};

use crate::StoreError;
use crate::schema;

/// How often the writer commits without fsync when `persistence_sync` is false.
const LAZY_COMMIT_EVERY: Duration = Duration::from_millis(100);
/// Operations waiting for the writer beyond which connections wait for it even when
/// `persistence_sync` is false (back-pressure instead of unbounded memory).
pub const MAX_BACKLOG: usize = 200_000;
/// How long the queue loader waits for the writer before reading what is committed.
const LOADER_WAIT: Duration = Duration::from_secs(10);

/// Where the store lives and when it commits (mosquitto.conf `persistence_*`, `autosave_*`).
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// `persistence_location` / `persistence_file`.
    pub path: PathBuf,
    /// tern's `persistence_sync`: true = every batch is fsynced before its acknowledgements
    /// are sent; false = Mosquitto-like periodic saves.
    pub sync: bool,
    /// `autosave_interval` (seconds, or changes with `autosave_on_changes`); 0 = only at
    /// shutdown. Used when `sync` is false.
    pub autosave_interval: u32,
    /// `autosave_on_changes`.
    pub autosave_on_changes: bool,
}

impl StoreOptions {
    /// Durable commits for every batch, at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            sync: true,
            autosave_interval: 1800,
            autosave_on_changes: false,
        }
    }
}

/// A submitted batch: wait for `seq` when `must_wait` (its acknowledgements depend on it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket {
    pub seq: u64,
    pub must_wait: bool,
}

/// The writer's progress, as published to waiters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Committed {
    /// Every batch up to this number is committed (durably when `persistence_sync`).
    pub seq: u64,
    /// The writer stopped after an error; nothing more will be committed.
    pub failed: bool,
}

/// What start-up found in the store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    pub retained: usize,
    pub sessions: usize,
    pub items: usize,
    /// Set when the store was migrated from an older schema.
    pub migrated_from: Option<u64>,
    /// The newest commit in the file was incomplete and redb used the one before it.
    pub fell_back: bool,
    /// Retained messages set aside (topic, why).
    pub retained_lost: Vec<(String, String)>,
    /// Sessions set aside (client id, why); their messages are set aside with them.
    pub sessions_lost: Vec<(String, String)>,
    /// Messages set aside, per client id.
    pub items_lost: BTreeMap<String, usize>,
    /// Why (one line per message set aside).
    pub item_errors: Vec<String>,
}

impl LoadReport {
    /// True when nothing had to be set aside.
    pub fn is_clean(&self) -> bool {
        self.retained_lost.is_empty() && self.sessions_lost.is_empty() && self.items_lost.is_empty()
    }

    /// Lines describing what was set aside (empty when clean), for the start-up log.
    pub fn damage_lines(&self, path: &Path) -> Vec<String> {
        let mut v = Vec::new();
        if self.fell_back {
            v.push(format!(
                "{}: the newest commit in the file was incomplete and the one before it was used. This is expected after a power loss or system crash (that commit's acknowledgements were never sent); otherwise the file was damaged and its last changes are lost",
                path.display()
            ));
        }
        if self.is_clean() {
            return v;
        }
        v.push(format!(
            "{}: {} retained message(s), {} session(s) and {} queued message(s) did not decode and were set aside in its `damaged` table (not deleted); the rest was restored",
            path.display(),
            self.retained_lost.len(),
            self.sessions_lost.len(),
            self.items_lost.values().sum::<usize>()
        ));
        for (t, why) in &self.retained_lost {
            v.push(format!("retained message on {t:?} lost: {why}"));
        }
        for (c, why) in &self.sessions_lost {
            v.push(format!(
                "session {c:?} lost ({why}); the client will start a new session"
            ));
        }
        for (c, n) in &self.items_lost {
            v.push(format!("session {c:?}: {n} queued message(s) lost"));
        }
        v
    }
}

#[derive(Debug, Default)]
struct Queue {
    ops: Vec<StoreOp>,
    /// Number of the last batch submitted.
    submitted: u64,
    /// Number of the last batch committed (visible to readers).
    committed: u64,
    /// Number of the last batch committed durably.
    durable: u64,
    /// A reader wants everything up to this batch visible.
    want_visible: u64,
    /// A flush wants everything up to this batch durable.
    want_durable: u64,
    /// Operations committed without fsync since the last durable commit.
    changes: usize,
    closing: bool,
    failed: Option<String>,
}

#[derive(Debug)]
struct Inner {
    db: Database,
    path: PathBuf,
    opts: StoreOptions,
    queue: Mutex<Queue>,
    /// Wakes the writer.
    work: Condvar,
    /// Wakes blocking waiters (flush, loader).
    done: Condvar,
    committed: watch::Sender<Committed>,
    report: Mutex<LoadReport>,
}

impl Inner {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The open store. Cheap to share (`Arc` inside); [`Store::close`] flushes and stops the
/// writer.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
    writer: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl Store {
    /// Opens or creates the store at `opts.path`, verifies it, migrates an older schema, and
    /// starts the writer thread.
    pub fn open(opts: StoreOptions) -> Result<Store, StoreError> {
        let mut report = LoadReport::default();
        let db = schema::open(&opts.path, &mut report)?;
        let (tx, _) = watch::channel(Committed::default());
        let inner = Arc::new(Inner {
            db,
            path: opts.path.clone(),
            opts,
            queue: Mutex::new(Queue::default()),
            work: Condvar::new(),
            done: Condvar::new(),
            committed: tx,
            report: Mutex::new(report),
        });
        let w = inner.clone();
        let handle = std::thread::Builder::new()
            .name("tern-store".to_owned())
            .spawn(move || writer(&w))
            .map_err(|source| StoreError::Io {
                path: inner.path.clone(),
                source,
            })?;
        Ok(Store {
            inner,
            writer: Arc::new(Mutex::new(Some(handle))),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Reads everything back for [`tern_broker_core::Broker::restore`]. Records that do not
    /// decode are moved to the `damaged` table and described in [`Store::report`].
    pub fn load(&self) -> Result<Restored, StoreError> {
        self.load_with(None)
    }

    /// Like [`Store::load`], but sessions' messages are checked and summed up
    /// ([`Restored::queues`]) rather than read into memory, and queued messages expired at
    /// `now` are listed for deletion: what a broker that reads them back through this
    /// store's [`QueueLoader`] needs. Memory stays flat however many messages are stored.
    pub fn load_summary(&self, now: tern_proto::Timestamp) -> Result<Restored, StoreError> {
        self.load_with(Some(now))
    }

    fn load_with(&self, summarize: Option<tern_proto::Timestamp>) -> Result<Restored, StoreError> {
        let mut report = self.report();
        let r = schema::load(&self.inner.path, &self.inner.db, &mut report, summarize)?;
        *self.inner.report.lock().unwrap_or_else(|e| e.into_inner()) = report;
        Ok(r)
    }

    /// What opening and loading found (counts, migration, what was set aside).
    pub fn report(&self) -> LoadReport {
        self.inner
            .report
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Queues a batch for the writer. Call it while holding the lock under which the core
    /// produced `ops`, so that batches keep the core's order. Never blocks on I/O.
    pub fn submit(&self, ops: &mut Vec<StoreOp>) -> Option<Ticket> {
        if ops.is_empty() {
            return None;
        }
        let sync = ops.iter().any(holds_output);
        let mut q = self.inner.queue();
        if q.failed.is_some() {
            // Nothing more can be committed; waiters are told so.
            ops.clear();
            return Some(Ticket {
                seq: q.submitted + 1,
                must_wait: true,
            });
        }
        if q.ops.is_empty() {
            std::mem::swap(&mut q.ops, ops);
        } else {
            q.ops.append(ops);
        }
        q.submitted += 1;
        let must_wait = (self.inner.opts.sync && sync) || q.ops.len() > MAX_BACKLOG;
        let seq = q.submitted;
        drop(q);
        if self.inner.opts.sync || must_wait {
            self.inner.work.notify_one();
        }
        Some(Ticket { seq, must_wait })
    }

    /// Resolves once batch `seq` is committed (durably with `persistence_sync`).
    pub async fn wait(&self, seq: u64) -> Result<(), StoreError> {
        let mut rx = self.inner.committed.subscribe();
        let c = match rx.wait_for(|c| c.seq >= seq || c.failed).await {
            Ok(c) => *c,
            Err(_) => return Err(StoreError::Failed("the store was closed".to_owned())),
        };
        if c.seq >= seq {
            Ok(())
        } else {
            Err(StoreError::Failed(self.failure()))
        }
    }

    /// The writer's progress.
    pub fn committed(&self) -> Committed {
        *self.inner.committed.borrow()
    }

    fn failure(&self) -> String {
        self.inner
            .queue()
            .failed
            .clone()
            .unwrap_or_else(|| "unknown".to_owned())
    }

    /// Blocks until everything submitted so far is committed durably.
    pub fn flush(&self) -> Result<(), StoreError> {
        let mut q = self.inner.queue();
        let target = q.submitted;
        q.want_durable = q.want_durable.max(target);
        self.inner.work.notify_one();
        while q.durable < target && q.failed.is_none() {
            q = self.inner.done.wait(q).unwrap_or_else(|e| e.into_inner());
        }
        match &q.failed {
            Some(f) if q.durable < target => Err(StoreError::Failed(f.clone())),
            _ => Ok(()),
        }
    }

    /// Blocks until everything submitted so far is visible to readers (not necessarily
    /// durable), or `limit` passes. Returns false on timeout or failure.
    fn make_visible(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut q = self.inner.queue();
        let target = q.submitted;
        q.want_visible = q.want_visible.max(target);
        self.inner.work.notify_one();
        while q.committed < target && q.failed.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            q = self
                .inner
                .done
                .wait_timeout(q, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        q.committed >= target
    }

    /// Flushes, stops the writer and waits for it. Other clones of this handle stay valid
    /// for reading; submissions after this are not committed.
    pub fn close(&self) -> Result<(), StoreError> {
        let flushed = self.flush();
        self.inner.queue().closing = true;
        self.inner.work.notify_one();
        let handle = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
        flushed
    }

    /// Row counts per table (tests and diagnostics).
    pub fn counts(&self) -> Result<BTreeMap<&'static str, u64>, StoreError> {
        schema::counts(&self.inner.db).map_err(|e| StoreError::Db {
            path: self.inner.path.clone(),
            detail: e.to_string(),
        })
    }
}

impl QueueLoader for Store {
    fn load(&self, client_id: &str) -> Vec<(u64, StoredItem)> {
        // The core calls this under the broker lock: every batch it produced before is
        // already submitted; make sure the writer has applied them before reading.
        if !self.make_visible(LOADER_WAIT) {
            error!(
                client_id,
                "the persistence store did not apply pending changes in time; this session's stored messages are read as last committed"
            );
        }
        let mut skipped = 0;
        match schema::session_items(&self.inner.db, client_id, &mut skipped) {
            Ok(v) => {
                if skipped > 0 {
                    warn!(
                        client_id,
                        skipped, "stored messages of this session did not decode and are skipped"
                    );
                }
                v
            }
            Err(e) => {
                error!(client_id, error = %e, "cannot read this session's stored messages");
                Vec::new()
            }
        }
    }
}

/// True when the output of the batch that produced `op` must wait for it to be durable:
/// [`StoreOp::needs_sync`], except a QoS 1 message moving to in-flight. Losing that step in a
/// crash only means the message is sent again after the restart (QoS 1 allows duplicates;
/// the message itself was durable before its publisher got the PUBACK). QoS 2 in-flight
/// state is held: a lost one would turn into a second, non-duplicate delivery.
pub fn holds_output(op: &StoreOp) -> bool {
    match op {
        StoreOp::ItemPut { item, .. } => !matches!(
            item.state,
            tern_broker_core::ItemState::Inflight(
                _,
                tern_broker_core::session::OutState::AwaitPuback
            )
        ),
        op => op.needs_sync(),
    }
}

/// The writer thread: takes every batch queued since the last commit and commits them in
/// one transaction.
fn writer(inner: &Inner) {
    let opts = &inner.opts;
    let mut last_durable = Instant::now();
    let mut last_commit = Instant::now();
    loop {
        let mut q = inner.queue();
        // Decide when to commit, and how.
        let durable: bool = loop {
            let pending = !q.ops.is_empty();
            let autosave_due = !opts.sync
                && opts.autosave_interval > 0
                && (q.changes > 0 || pending)
                && if opts.autosave_on_changes {
                    q.changes + q.ops.len() >= opts.autosave_interval as usize
                } else {
                    last_durable.elapsed() >= Duration::from_secs(u64::from(opts.autosave_interval))
                };
            let want_durable = q.want_durable > q.durable;
            if q.closing {
                break true;
            }
            if opts.sync && pending {
                break true;
            }
            if want_durable || autosave_due {
                break true;
            }
            if q.want_visible > q.committed
                || (pending
                    && (last_commit.elapsed() >= LAZY_COMMIT_EVERY || q.ops.len() > MAX_BACKLOG))
            {
                break false;
            }
            let wait = if opts.sync {
                Duration::from_secs(3600)
            } else if pending {
                LAZY_COMMIT_EVERY.saturating_sub(last_commit.elapsed())
            } else {
                Duration::from_secs(1)
            };
            q = inner
                .work
                .wait_timeout(q, wait.max(Duration::from_millis(1)))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        };
        let ops = std::mem::take(&mut q.ops);
        let seq = q.submitted;
        let closing = q.closing;
        let nothing_to_do = ops.is_empty() && (q.durable >= seq && q.changes == 0);
        drop(q);
        if nothing_to_do {
            if closing {
                return;
            }
            let mut q = inner.queue();
            q.committed = q.committed.max(seq);
            q.durable = q.durable.max(seq);
            drop(q);
            inner.done.notify_all();
            continue;
        }
        let result = commit(&inner.db, &ops, durable);
        last_commit = Instant::now();
        let mut q = inner.queue();
        match result {
            Ok(()) => {
                q.committed = seq;
                if durable {
                    q.durable = seq;
                    q.changes = 0;
                    last_durable = Instant::now();
                } else {
                    q.changes += ops.len();
                }
                drop(q);
                inner
                    .committed
                    .send_replace(Committed { seq, failed: false });
                inner.done.notify_all();
            }
            Err(e) => {
                error!(
                    path = %inner.path.display(),
                    "persistence store write failed: {e}. QoS 1/2 acknowledgements are withheld from now on; fix the cause (disk full? permissions?) and restart the broker"
                );
                q.failed = Some(e.to_string());
                q.ops.clear();
                let seq = q.committed;
                drop(q);
                inner
                    .committed
                    .send_replace(Committed { seq, failed: true });
                inner.done.notify_all();
                return;
            }
        }
        if closing && inner.queue().ops.is_empty() {
            return;
        }
    }
}

fn commit(db: &Database, ops: &[StoreOp], durable: bool) -> Result<(), redb::Error> {
    let mut txn = db.begin_write()?;
    txn.set_durability(if durable {
        Durability::Immediate
    } else {
        Durability::None
    })?;
    schema::apply(&txn, ops)?;
    txn.commit()?;
    Ok(())
}
