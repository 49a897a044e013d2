//! The `conn` scenario: open many idle MQTT connections and hold them (connections per second
//! while opening, broker memory per connection), or, with `--tls-handshakes`, open and drop
//! connections for a while (full handshakes per second, session resumption off).

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::net::{self, Conn, Target};

/// Buffer sizes of an idle connection: it reads nothing but CONNACK.
const IDLE_BUF: usize = 256;

/// What to run.
#[derive(Clone, Debug)]
pub struct ConnSpec {
    /// Connections to open (idle mode).
    pub count: usize,
    /// Connections being opened at once.
    pub concurrency: usize,
    /// How long to hold the open connections (idle mode).
    pub hold: Duration,
    /// Open and drop connections for `duration` instead.
    pub handshakes: bool,
    pub duration: Duration,
}

/// What it measured.
#[derive(Debug, Default)]
pub struct ConnResult {
    pub requested: usize,
    pub connected: usize,
    pub failed: usize,
    /// Time to open them all (idle) or the churn time (handshakes).
    pub open_s: f64,
    pub first_error: Option<String>,
}

/// Idle mode. `after_open` runs once the connections are open and have settled, while they
/// are held (broker memory is read there); `on_end` before they are dropped.
pub async fn run_idle(
    spec: &ConnSpec,
    target: &Target,
    id_prefix: &str,
    after_open: impl FnOnce(),
    on_end: impl FnOnce(),
) -> ConnResult {
    let sem = Rc::new(Semaphore::new(spec.concurrency.max(1)));
    let t0 = Instant::now();
    let mut handles = Vec::with_capacity(spec.count);
    for i in 0..spec.count {
        let (sem, target) = (sem.clone(), target.clone());
        let id = format!("{id_prefix}-c{i}");
        handles.push(tokio::task::spawn_local(async move {
            let _permit = sem.acquire().await?;
            net::connect(&target, &id, IDLE_BUF, IDLE_BUF).await
        }));
    }
    let mut r = ConnResult {
        requested: spec.count,
        ..ConnResult::default()
    };
    let mut held: Vec<Conn> = Vec::with_capacity(spec.count);
    for h in handles {
        match h.await {
            Ok(Ok(c)) => held.push(c),
            Ok(Err(e)) => fail(&mut r, format!("{e:#}")),
            Err(e) => fail(&mut r, format!("connect task: {e}")),
        }
    }
    r.open_s = t0.elapsed().as_secs_f64();
    r.connected = held.len();
    // Let the broker finish its per-connection work before reading its memory.
    tokio::time::sleep(Duration::from_secs(1)).await;
    after_open();
    tokio::time::sleep(spec.hold).await;
    on_end();
    drop(held);
    r
}

/// Handshake mode: `concurrency` workers connect (TCP, TLS, CONNECT/CONNACK) and drop the
/// connection with a reset, over and over, until `duration` is up.
pub async fn run_handshakes(spec: &ConnSpec, target: &Target, id_prefix: &str) -> ConnResult {
    let mut target = target.clone();
    target.abortive_close = true;
    let ok = Rc::new(Cell::new(0usize));
    let failed = Rc::new(Cell::new(0usize));
    let first_error: Rc<Cell<Option<String>>> = Rc::new(Cell::new(None));
    let t0 = Instant::now();
    let end = t0 + spec.duration;
    let mut workers = Vec::new();
    for w in 0..spec.concurrency.max(1) {
        let (ok, failed, first_error, target) = (
            ok.clone(),
            failed.clone(),
            first_error.clone(),
            target.clone(),
        );
        let prefix = format!("{id_prefix}-h{w}");
        workers.push(tokio::task::spawn_local(async move {
            let mut k = 0u64;
            let mut id = String::with_capacity(prefix.len() + 24);
            while Instant::now() < end {
                id.clear();
                id.push_str(&prefix);
                id.push('-');
                id.push_str(&k.to_string());
                k += 1;
                match net::connect(&target, &id, IDLE_BUF, IDLE_BUF).await {
                    Ok(conn) => {
                        ok.set(ok.get() + 1);
                        drop(conn);
                    }
                    Err(e) => {
                        failed.set(failed.get() + 1);
                        let prev = first_error.take();
                        first_error.set(prev.or(Some(format!("{e:#}"))));
                        // A refusing broker is not hammered in a tight loop.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
    ConnResult {
        requested: ok.get() + failed.get(),
        connected: ok.get(),
        failed: failed.get(),
        open_s: t0.elapsed().as_secs_f64(),
        first_error: first_error.take(),
    }
}

fn fail(r: &mut ConnResult, e: String) {
    r.failed += 1;
    if r.first_error.is_none() {
        r.first_error = Some(e);
    }
}
