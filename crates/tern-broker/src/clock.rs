//! The one place the broker reads the clock. Timestamps are wall-clock milliseconds (so that
//! persisted expiry survives restarts) advanced by a monotonic clock (so that keep-alive does
//! not jump when the system time is changed).

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tern_proto::Timestamp;

static START: OnceLock<(Instant, u64)> = OnceLock::new();

/// Now, as a [`Timestamp`].
pub fn now() -> Timestamp {
    let (start, wall) = *START.get_or_init(|| {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        (Instant::now(), wall)
    });
    Timestamp(wall + start.elapsed().as_millis() as u64)
}

/// The `tokio` instant corresponding to a [`Timestamp`] (for sleeping until a deadline).
pub fn instant_at(t: Timestamp) -> tokio::time::Instant {
    let n = now();
    let base = tokio::time::Instant::now();
    if t.0 <= n.0 {
        base
    } else {
        base + std::time::Duration::from_millis(t.0 - n.0)
    }
}
