//! Loopback ports for test brokers, shared by the tern-client and tern-cli integration tests.
//!
//! Asking the system for port 0 and releasing it races: the tests of one binary run in
//! parallel, the system hands the same port out again a moment later, and every client socket
//! takes its own port from the same ephemeral range. So a test could start its broker on a
//! port that another test's broker or a client connection had just taken, or talk to the
//! wrong broker. Here each port is handed out once per test process, from outside the
//! system's ephemeral range (so no client socket can hold it), and only if nothing answers
//! on it. The check connects rather than binds: a listener bound for a check lives on in any
//! child that another test thread forks at that moment (until the child's exec closes it), so
//! a broker could not bind the port yet and a client's connection to it would be reset.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// The system's ephemeral range (`ip_local_port_range`), Linux's default when unreadable.
fn ephemeral_range() -> (u32, u32) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|n| n.parse::<u32>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32768, 60999))
}

/// The widest run of ports outside the ephemeral range: [low, low + span).
fn test_range() -> (u32, u32) {
    let (lo, hi) = ephemeral_range();
    let below = (1024, lo.saturating_sub(1024));
    let above = (hi + 1, 65536u32.saturating_sub(hi + 1));
    if below.1 >= above.1 { below } else { above }
}

/// A loopback port that no other test of this process has been given.
pub fn free_port() -> u16 {
    free_ports(1)[0]
}

/// `n` distinct loopback ports, each with nothing listening on it when handed out and never
/// handed out twice in this process.
pub fn free_ports(n: usize) -> Vec<u16> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let (low, span) = test_range();
    assert!(span >= 1000, "too few ports outside the ephemeral range");
    // Test processes that run side by side start far apart.
    let start = std::process::id().wrapping_mul(7919) % span;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let k = NEXT.fetch_add(1, Ordering::SeqCst);
        assert!(
            k < span,
            "the tests used every port outside the ephemeral range"
        );
        let port = (low + (start + k) % span) as u16;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let refused = TcpStream::connect_timeout(&addr, Duration::from_millis(500))
            .is_err_and(|e| e.kind() == ErrorKind::ConnectionRefused);
        if refused {
            out.push(port);
        }
    }
    out
}
