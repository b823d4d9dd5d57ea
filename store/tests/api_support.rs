//! The reads the HTTP API needs: a bounded ready count and the per-direction message walk.

use std::ops::ControlFlow;

use sairex_store::model::{Direction, Message, Millis};
use sairex_store::{Store, StoreOptions};

fn message(org: u64, direction: Direction, to: &str, created_at: Millis) -> Message {
    Message {
        organization_id: org,
        direction,
        to_number: to.into(),
        from_number: "+923009999999".into(),
        body: "x".into(),
        created_at,
        ..Message::default()
    }
}

#[tokio::test]
async fn ready_depth_counts_every_organization_up_to_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreOptions::new(dir.path())).unwrap();
    assert_eq!(store.ready_depth(10).unwrap(), 0);
    for org in [1, 2] {
        for i in 0..3 {
            store
                .enqueue(message(org, Direction::Outbound, "+923001234567", 1000 + i))
                .await
                .unwrap();
        }
    }
    // Inbound messages and scheduled ones are not ready.
    store
        .enqueue(message(1, Direction::Inbound, "8080", 5))
        .await
        .unwrap();
    store
        .enqueue(Message {
            scheduled_at: Some(u64::MAX / 2),
            ..message(1, Direction::Outbound, "+923001234567", 7)
        })
        .await
        .unwrap();
    assert_eq!(store.ready_depth(100).unwrap(), 6);
    assert_eq!(store.ready_depth(4).unwrap(), 4);
    let leased = store.lease(1, 2).await.unwrap();
    assert_eq!(leased.len(), 2);
    assert_eq!(store.ready_depth(100).unwrap(), 4);
}

#[tokio::test]
async fn scan_messages_walks_one_direction_of_one_period_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreOptions::new(dir.path())).unwrap();
    for t in [100, 200, 300, 400] {
        store
            .enqueue(message(1, Direction::Outbound, &format!("+92300000{t}"), t))
            .await
            .unwrap();
    }
    store
        .enqueue(message(1, Direction::Inbound, "8080", 250))
        .await
        .unwrap();
    store
        .enqueue(message(2, Direction::Outbound, "+923000000250", 250))
        .await
        .unwrap();

    let mut seen = Vec::new();
    let visited = store
        .scan_messages(1, Direction::Outbound, 200, 400, |m| {
            seen.push(m.created_at);
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(seen, [300, 200]);
    assert_eq!(visited, 2);

    let mut seen = Vec::new();
    store
        .scan_messages(1, Direction::Outbound, 0, Millis::MAX, |m| {
            seen.push(m.created_at);
            if seen.len() == 3 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
    assert_eq!(seen, [400, 300, 200]);

    let mut inbound = 0;
    store
        .scan_messages(1, Direction::Inbound, 0, Millis::MAX, |_| {
            inbound += 1;
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(inbound, 1);
}
