//! The examples run, not only compile: each one's body against the test broker (mosquitto
//! by default, `TERN_TEST_BROKER` otherwise), checking what it prints.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

#[allow(dead_code)]
#[path = "../examples/pubsub.rs"]
mod pubsub;

use std::time::Duration;

use common::Broker;

#[tokio::test]
async fn pubsub_example_prints_its_subscription_and_the_message_back() {
    let b = Broker::start();
    let mut out = Vec::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        pubsub::run("127.0.0.1".into(), b.port, &mut out),
    )
    .await
    .unwrap_or_else(|_| {
        panic!(
            "examples/pubsub did not finish within 10 s; it printed:\n{}",
            String::from_utf8_lossy(&out)
        )
    })
    .unwrap_or_else(|e| panic!("examples/pubsub failed: {e}; broker log:\n{}", b.log()));
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "connected, session present: false\ngranted: [GrantedQos1]\ntern/example/hello hi\n"
    );
}
