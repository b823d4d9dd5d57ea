//! Queue semantics: priority and enqueue order, leases, acks, retries, finals, due promotion,
//! idempotency per organization, and recovery of leases after a reopen.

use sairex_store::model::{Direction, Message, MessageStatus, Priority, QueuePlace};
use sairex_store::{
    Enqueued, MessageFilter, PageRequest, PartsAccepted, RecoveryPolicy, Store, StoreError,
    StoreOptions, Submitted, Transition, now_ms,
};

fn message(org: u64, to: &str, priority: Priority) -> Message {
    Message {
        organization_id: org,
        to_number: to.into(),
        from_number: "Sairex".into(),
        body: "hello".into(),
        priority,
        ..Message::default()
    }
}

fn open(dir: &std::path::Path) -> Store {
    Store::open(StoreOptions::new(dir)).unwrap()
}

#[tokio::test]
async fn leases_follow_priority_then_enqueue_order_per_organization() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let bulk = store
        .enqueue(message(1, "+1", Priority::BULK))
        .await
        .unwrap();
    let tx1 = store
        .enqueue(message(1, "+2", Priority::TRANSACTIONAL))
        .await
        .unwrap();
    let other_org = store
        .enqueue(message(2, "+3", Priority::OTP))
        .await
        .unwrap();
    let otp = store
        .enqueue(message(1, "+4", Priority::OTP))
        .await
        .unwrap();
    let tx2 = store
        .enqueue(message(1, "+5", Priority::TRANSACTIONAL))
        .await
        .unwrap();

    assert_eq!(store.ready_orgs().unwrap(), vec![1, 2]);
    let leased: Vec<u64> = store
        .lease(1, 3)
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(
        leased,
        vec![otp.message().id, tx1.message().id, tx2.message().id]
    );
    assert_eq!(store.ready_count(1).unwrap(), 1);
    assert_eq!(store.in_flight(1).unwrap().len(), 3);
    let rest: Vec<u64> = store
        .lease(1, 10)
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(rest, vec![bulk.message().id]);
    assert!(store.lease(1, 10).await.unwrap().is_empty());
    assert_eq!(
        store.lease(2, 10).await.unwrap()[0].id,
        other_org.message().id
    );
}

#[tokio::test]
async fn ack_retry_and_final_move_the_message_and_record_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = store
        .enqueue(message(7, "+923001234567", Priority::OTP))
        .await
        .unwrap()
        .message()
        .id;
    store.lease(7, 1).await.unwrap();

    let due = now_ms() + 30_000;
    let retried = store
        .retry_at(7, id, due, "ESME_RTHROTTLED".into())
        .await
        .unwrap();
    assert_eq!(
        (retried.status, retried.retry_count, retried.queue),
        (MessageStatus::Queued, 1, QueuePlace::Due { at: due })
    );
    assert_eq!(store.next_due().unwrap(), Some(due));
    assert!(
        store.lease(7, 1).await.unwrap().is_empty(),
        "a retry waits for its time"
    );
    assert_eq!(store.promote_due(due, 100).await.unwrap(), vec![7]);
    assert_eq!(store.lease(7, 1).await.unwrap()[0].id, id);

    let acked = store
        .ack_submitted(
            7,
            id,
            Submitted {
                provider_id: 3,
                provider_msg_ids: vec!["5A01".into(), "5A02".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (acked.status, acked.queue),
        (MessageStatus::Submitted, QueuePlace::Done)
    );
    assert_eq!(
        store.message_by_provider_id(3, "5A02").unwrap().unwrap().id,
        id
    );
    assert!(store.message_by_provider_id(4, "5A02").unwrap().is_none());

    // Acknowledged again (a late duplicate answer): not in flight any more, nothing written.
    let events_before = store.events(7, id).unwrap().len();
    let again = store
        .ack_submitted(7, id, Submitted::default())
        .await
        .unwrap();
    assert!(matches!(again, Transition::Stale(_)), "{again:?}");
    assert_eq!(store.events(7, id).unwrap().len(), events_before);

    let delivered = store
        .finalize(7, id, MessageStatus::Delivered, None, None)
        .await
        .unwrap();
    assert!(delivered.delivered_at.is_some());
    let events: Vec<(String, MessageStatus)> = store
        .events(7, id)
        .unwrap()
        .into_iter()
        .map(|e| (e.event_type, e.status))
        .collect();
    assert_eq!(
        events,
        vec![
            ("QUEUED".into(), MessageStatus::Queued),
            ("RETRY".into(), MessageStatus::Queued),
            ("READY".into(), MessageStatus::Queued),
            ("SUBMITTED".into(), MessageStatus::Submitted),
            ("DELIVERED".into(), MessageStatus::Delivered),
        ]
    );
}

#[tokio::test]
async fn idempotency_keys_are_unique_per_organization_not_globally() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let keyed = |org| Message {
        idempotency_key: Some("fee-2026-11".into()),
        ..message(org, "+1", Priority::BULK)
    };
    let first = store.enqueue(keyed(1)).await.unwrap();
    let again = store.enqueue(keyed(1)).await.unwrap();
    let other = store.enqueue(keyed(2)).await.unwrap();
    assert!(matches!(first, Enqueued::Created(_)));
    assert_eq!(again, Enqueued::Duplicate(first.message().clone()));
    assert!(
        matches!(other, Enqueued::Created(_)),
        "another tenant's key must not collide"
    );
    assert_eq!(store.ready_count(1).unwrap(), 1);
}

#[tokio::test]
async fn reads_and_lists_never_cross_organizations() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mine = store
        .enqueue(message(1, "+1", Priority::BULK))
        .await
        .unwrap()
        .message()
        .id;
    for _ in 0..3 {
        store
            .enqueue(message(2, "+1", Priority::BULK))
            .await
            .unwrap();
    }
    assert!(matches!(
        store.message(2, mine),
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.events(2, mine),
        Err(StoreError::NotFound { .. })
    ));
    let page = store
        .list_messages(1, &MessageFilter::default(), PageRequest::default())
        .unwrap();
    assert_eq!((page.total, page.items.len()), (1, 1));
    let to = MessageFilter {
        to_number: Some("+1".into()),
        ..Default::default()
    };
    assert_eq!(
        store
            .list_messages(2, &to, PageRequest::default())
            .unwrap()
            .total,
        3
    );
    let inbound = MessageFilter {
        direction: Some(Direction::Inbound),
        ..Default::default()
    };
    assert_eq!(
        store
            .list_messages(2, &inbound, PageRequest::default())
            .unwrap()
            .total,
        0
    );
}

#[tokio::test]
async fn pages_are_newest_first_and_stable() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(
            store
                .enqueue(message(1, &format!("+{i}"), Priority::BULK))
                .await
                .unwrap()
                .message()
                .id,
        );
    }
    ids.reverse();
    let queued = MessageFilter {
        status: Some(MessageStatus::Queued),
        ..Default::default()
    };
    let page = |offset| {
        store
            .list_messages(1, &queued, PageRequest { offset, limit: 3 })
            .unwrap()
    };
    let got: Vec<u64> = [0, 3, 6]
        .iter()
        .flat_map(|&o| page(o).items)
        .map(|m| m.id)
        .collect();
    assert_eq!(got, ids);
    assert_eq!(page(3).total, 7);
}

#[test]
fn in_flight_messages_are_requeued_or_failed_on_reopen() {
    for policy in [RecoveryPolicy::Requeue, RecoveryPolicy::Fail] {
        let dir = tempfile::tempdir().unwrap();
        let id = {
            let store = open(dir.path());
            let id = store
                .enqueue_blocking(message(1, "+1", Priority::OTP))
                .unwrap()
                .message()
                .id;
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            rt.block_on(store.lease(1, 1)).unwrap();
            id
        };
        let store = Store::open(StoreOptions {
            recovery: policy,
            ..StoreOptions::new(dir.path())
        })
        .unwrap();
        let m = store.message(1, id).unwrap();
        let last = store.events(1, id).unwrap().pop().unwrap();
        match policy {
            RecoveryPolicy::Requeue => {
                assert_eq!(store.recovery().requeued, vec![(1, id)]);
                assert_eq!(last.event_type, "RESUBMITTED_AFTER_RESTART");
                assert!(matches!(m.queue, QueuePlace::Ready { .. }));
                assert_eq!(store.ready_count(1).unwrap(), 1);
            }
            RecoveryPolicy::Fail => {
                assert_eq!(store.recovery().failed, vec![(1, id)]);
                assert_eq!(m.status, MessageStatus::Failed);
                assert_eq!(store.ready_count(1).unwrap(), 0);
            }
        }
        assert!(store.in_flight(1).unwrap().is_empty());
    }
}

#[tokio::test]
async fn scheduled_messages_wait_in_the_due_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let at = now_ms() + 60_000;
    let m = store
        .enqueue(Message {
            scheduled_at: Some(at),
            ..message(1, "+1", Priority::BULK)
        })
        .await
        .unwrap();
    assert_eq!(m.message().queue, QueuePlace::Due { at });
    assert!(store.lease(1, 1).await.unwrap().is_empty());
    assert!(store.promote_due(at - 1, 10).await.unwrap().is_empty());
    assert_eq!(store.promote_due(at, 10).await.unwrap(), vec![1]);
    assert_eq!(store.lease(1, 1).await.unwrap().len(), 1);
}

#[test]
fn a_second_open_of_the_same_store_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let _store = open(dir.path());
    let err = Store::open(StoreOptions::new(dir.path())).unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
}

#[tokio::test]
async fn retention_purges_old_final_messages_with_their_events_but_never_queued_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let old = |to: &str| Message {
        created_at: 1_000,
        ..message(1, to, Priority::BULK)
    };
    let done = store.enqueue(old("+1")).await.unwrap().message().id;
    store
        .finalize(1, done, MessageStatus::Failed, None, None)
        .await
        .unwrap();
    let queued = store.enqueue(old("+2")).await.unwrap().message().id;
    let recent = store
        .enqueue(message(1, "+3", Priority::BULK))
        .await
        .unwrap()
        .message()
        .id;
    store
        .finalize(1, recent, MessageStatus::Delivered, None, None)
        .await
        .unwrap();
    let other_org = store
        .enqueue(Message {
            created_at: 1_000,
            ..message(2, "+1", Priority::BULK)
        })
        .await
        .unwrap()
        .message()
        .id;
    store
        .finalize(2, other_org, MessageStatus::Failed, None, None)
        .await
        .unwrap();

    assert_eq!(store.purge_messages_before(1, 2_000).await.unwrap(), 1);
    assert!(matches!(
        store.message(1, done),
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.events(1, done),
        Err(StoreError::NotFound { .. })
    ));
    let failed = MessageFilter {
        status: Some(MessageStatus::Failed),
        ..Default::default()
    };
    assert_eq!(
        store
            .list_messages(1, &failed, PageRequest::default())
            .unwrap()
            .total,
        0
    );
    assert!(
        store.message(1, queued).is_ok(),
        "an accepted, unsent message is never purged"
    );
    assert!(store.message(1, recent).is_ok());
    assert!(
        store.message(2, other_org).is_ok(),
        "retention is per organization"
    );
}

#[tokio::test]
async fn erasure_replaces_the_number_with_a_stable_salted_hash() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let a = store
        .enqueue(message(1, "+923001234567", Priority::BULK))
        .await
        .unwrap()
        .message()
        .id;
    let b = store
        .enqueue(message(1, "+923001234567", Priority::BULK))
        .await
        .unwrap()
        .message()
        .id;
    let inbound = store
        .enqueue(Message {
            direction: Direction::Inbound,
            from_number: "+923001234567".into(),
            ..message(1, "8001", Priority::BULK)
        })
        .await
        .unwrap()
        .message()
        .id;
    let kept = store
        .enqueue(message(2, "+923001234567", Priority::BULK))
        .await
        .unwrap()
        .message()
        .id;

    assert_eq!(
        store
            .anonymise_messages(1, "+923001234567", true)
            .await
            .unwrap(),
        3
    );
    let (ma, mb, mi) = (
        store.message(1, a).unwrap(),
        store.message(1, b).unwrap(),
        store.message(1, inbound).unwrap(),
    );
    assert!(ma.to_number.starts_with("erased:") && !ma.to_number.contains("923001234567"));
    assert_eq!(
        ma.to_number, mb.to_number,
        "the same number maps to the same stand-in"
    );
    assert_eq!(mi.from_number, ma.to_number);
    assert_eq!(mi.to_number, "8001");
    assert!(ma.body.is_empty());
    let by_number = MessageFilter {
        to_number: Some("+923001234567".into()),
        ..Default::default()
    };
    assert_eq!(
        store
            .list_messages(1, &by_number, PageRequest::default())
            .unwrap()
            .total,
        0
    );
    assert_eq!(
        store.message(2, kept).unwrap().to_number,
        "+923001234567",
        "other tenants untouched"
    );
    assert_eq!(
        store.ready_count(1).unwrap(),
        2,
        "erasure does not drop queued messages"
    );
}

#[tokio::test]
async fn retention_uses_each_organizations_days_or_the_default() {
    use sairex_store::model::Organization;
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let short = store
        .create_organization(Organization {
            name: "short".into(),
            retention_days: Some(1),
            ..Default::default()
        })
        .await
        .unwrap();
    let default = store
        .create_organization(Organization {
            name: "default".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let now = 400 * sairex_store::days_ms(1);
    let at = |days_ago: u32| now - sairex_store::days_ms(days_ago);
    let mut ids = Vec::new();
    for (org, days_ago) in [(short.id, 2), (default.id, 2), (default.id, 366)] {
        let m = store
            .enqueue(Message {
                created_at: at(days_ago),
                ..message(org, "+1", Priority::BULK)
            })
            .await
            .unwrap();
        store
            .finalize(org, m.message().id, MessageStatus::Delivered, None, None)
            .await
            .unwrap();
        ids.push((org, m.message().id));
    }
    assert_eq!(
        store
            .apply_retention(now, sairex_store::DEFAULT_RETENTION_DAYS)
            .await
            .unwrap(),
        2
    );
    assert!(
        store.message(ids[0].0, ids[0].1).is_err(),
        "1-day retention purges a 2-day-old message"
    );
    assert!(
        store.message(ids[1].0, ids[1].1).is_ok(),
        "365-day default keeps it"
    );
    assert!(store.message(ids[2].0, ids[2].1).is_err());
}

fn parts(provider_id: u64, parts: &[(u32, &str)]) -> PartsAccepted {
    PartsAccepted {
        provider_id,
        total: 3,
        reference: 42,
        layout: "smpp/udh8/auto/unpacked".into(),
        parts: parts.iter().map(|&(i, id)| (i, id.to_owned())).collect(),
        detail: Some("part 1 of 3 accepted".into()),
    }
}

/// A multipart message accepted in pieces: each piece's ids find the message under the
/// provider that gave them (receipts come from there), also once the rest is accepted
/// through another provider, and a piece that does not continue the record is refused.
#[tokio::test]
async fn parts_accepted_in_pieces_are_recorded_and_indexed_under_their_provider() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = store
        .enqueue(message(1, "+1", Priority::TRANSACTIONAL))
        .await
        .unwrap()
        .message()
        .id;
    store.lease(1, 1).await.unwrap();

    let m = store
        .record_accepted_parts(1, id, parts(5, &[(0, "a1")]))
        .await
        .unwrap();
    assert_eq!(m.status, MessageStatus::Queued);
    assert!(
        matches!(m.queue, QueuePlace::InFlight { .. }),
        "still leased"
    );
    let partial = m.partial.clone().unwrap();
    assert_eq!((partial.total, partial.reference), (3, 42));
    assert_eq!(partial.missing(), vec![1, 2]);
    assert_eq!(
        store.message_by_provider_id(5, "a1").unwrap().unwrap().id,
        id
    );
    assert_eq!(store.message_by_provider_id(6, "a1").unwrap(), None);

    let mut other_reference = parts(5, &[(1, "a2")]);
    other_reference.reference = 43;
    let out_of_range = parts(5, &[(3, "a4")]);
    for bad in [other_reference, out_of_range] {
        assert!(matches!(
            store.record_accepted_parts(1, id, bad).await,
            Err(StoreError::Invalid { .. })
        ));
    }

    // Requeued and leased again: the rest goes through provider 6, whose answer repeats
    // part 1's id in its place.
    store
        .requeue(1, id, "THROTTLED", "parts 2 and 3 throttled".into())
        .await
        .unwrap();
    store.lease(1, 1).await.unwrap();
    let m = store
        .record_accepted_parts(1, id, parts(6, &[(0, "x"), (1, "b2")]))
        .await
        .unwrap();
    let partial = m.partial.clone().unwrap();
    assert_eq!(
        partial
            .part(0)
            .map(|p| (p.provider_id, p.provider_msg_id.as_str())),
        Some((5, "a1")),
        "an accepted part keeps its first id"
    );
    assert_eq!((partial.provider_id, partial.missing()), (6, vec![2]));
    let submitted = Submitted {
        provider_id: 6,
        provider_msg_ids: vec!["a1".into(), "b2".into(), "b3".into()],
        ..Submitted::default()
    };
    let m = store.ack_submitted(1, id, submitted).await.unwrap();
    assert_eq!(m.status, MessageStatus::Submitted);
    assert_eq!(
        store.message_by_provider_id(5, "a1").unwrap().unwrap().id,
        id
    );
    assert_eq!(
        store.message_by_provider_id(6, "a1").unwrap(),
        None,
        "part 1 is provider 5's: not indexed under 6"
    );
    for pid in ["b2", "b3"] {
        assert_eq!(
            store.message_by_provider_id(6, pid).unwrap().unwrap().id,
            id
        );
    }
    let types: Vec<String> = store
        .events(1, id)
        .unwrap()
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(
        types,
        [
            "QUEUED",
            "PARTS_ACCEPTED",
            "THROTTLED",
            "PARTS_ACCEPTED",
            "SUBMITTED"
        ]
    );
    let report = store.check_consistency().unwrap();
    assert!(report.is_consistent(), "{report}");

    // Not in flight any more.
    assert!(matches!(
        store
            .record_accepted_parts(1, id, parts(6, &[(2, "b3")]))
            .await,
        Ok(Transition::Stale(_))
    ));
}

/// The store scans the ready queue from a floor below which everything was leased (an LSM keeps
/// tombstones of leased entries at the front). A message that sorts below the floor, an OTP
/// enqueued after bulk messages were leased, or a retry whose time has already passed, must
/// lower it and be served.
#[tokio::test]
async fn work_that_sorts_before_what_was_already_taken_is_still_served() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for i in 0..5 {
        store
            .enqueue(message(1, &format!("+10{i}"), Priority::BULK))
            .await
            .unwrap();
    }
    assert_eq!(store.lease(1, 3).await.unwrap().len(), 3);
    let otp = store
        .enqueue(message(1, "+200", Priority::OTP))
        .await
        .unwrap();
    let next = store.lease(1, 1).await.unwrap();
    assert_eq!(next[0].id, otp.message().id, "the OTP goes first");
    assert_eq!(store.lease(1, 10).await.unwrap().len(), 2);
    assert!(store.lease(1, 10).await.unwrap().is_empty());
    assert_eq!(store.ready_orgs().unwrap(), Vec::<u64>::new());

    // A promotion raises the due floor to now; a retry due earlier than that must lower it.
    let now = now_ms();
    assert!(store.promote_due(now, 100).await.unwrap().is_empty());
    store
        .retry_at(1, otp.message().id, now - 60_000, "retry".into())
        .await
        .unwrap();
    assert_eq!(store.next_due().unwrap(), Some(now - 60_000));
    assert_eq!(store.promote_due(now, 100).await.unwrap(), vec![1]);
    assert_eq!(store.ready_count(1).unwrap(), 1);
    assert_eq!(store.ready_orgs().unwrap(), vec![1]);

    // And after a reopen the floors are found again.
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.ready_orgs().unwrap(), vec![1]);
    assert_eq!(store.lease(1, 10).await.unwrap()[0].id, otp.message().id);
}

/// How many keys each step of a message's life writes (docs/BENCHMARKS.md, "Store"): every key
/// is a journal entry and a memtable insert, so this is what the store's speed follows. A change
/// that adds a key to the hot path has to change this test, and the figures in the docs.
#[tokio::test]
async fn keys_written_per_step_of_a_messages_life() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    // Steady state first: the format stamp and the first id are written once.
    store
        .enqueue(message(1, "+923000000000", Priority::TRANSACTIONAL))
        .await
        .unwrap();
    let mut before = store.keys_written();
    let mut step = |name: &str| {
        let now = store.keys_written();
        let keys = now - before;
        before = now;
        (name.to_owned(), keys)
    };
    let id = store
        .enqueue(message(1, "+923000000001", Priority::TRANSACTIONAL))
        .await
        .unwrap()
        .message()
        .id;
    let enqueue = step("enqueue");
    store.lease(1, 2).await.unwrap();
    let lease = step("lease of 2");
    let submitted = Submitted {
        provider_id: 7,
        provider_msg_ids: vec!["abc".into()],
        ..Submitted::default()
    };
    store.ack_submitted(1, id, submitted).await.unwrap();
    let ack = step("ack");
    store
        .finalize(1, id, MessageStatus::Delivered, None, None)
        .await
        .unwrap();
    let fin = step("final");
    // enqueue: record, QUEUED event, direction, status and phone indexes, ready entry, outbox
    // entry (the id counter is written once per block of ids, not here). lease: per message
    // the record, the ready entry out, the in-flight entry in. ack: record, event, in-flight
    // entry out, status index moved, provider id, outbox entry. final: record, event, status
    // index moved, outbox entry.
    assert_eq!(
        [enqueue, lease, ack, fin],
        [
            ("enqueue".to_owned(), 7),
            ("lease of 2".to_owned(), 6),
            ("ack".to_owned(), 7),
            ("final".to_owned(), 5),
        ]
    );

    // Asking for a receipt (the engine's default) adds the receipt-due index entry: written
    // with the acceptance, removed by the final status.
    let id = store
        .enqueue(message(1, "+923000000002", Priority::TRANSACTIONAL))
        .await
        .unwrap()
        .message()
        .id;
    store.lease(1, 1).await.unwrap();
    let _ = step("enqueue and lease");
    let submitted = Submitted {
        provider_id: 7,
        provider_msg_ids: vec!["abd".into()],
        receipt_due_at: Some(now_ms() + 3_600_000),
        ..Submitted::default()
    };
    store.ack_submitted(1, id, submitted).await.unwrap();
    let ack = step("ack");
    store
        .finalize(1, id, MessageStatus::Delivered, None, None)
        .await
        .unwrap();
    let fin = step("final");
    assert_eq!([ack, fin], [("ack".to_owned(), 8), ("final".to_owned(), 6)]);
}

/// A promotion asked for no messages must not move the due floor past the messages that are due
/// (an earlier version raised it to "now" whenever fewer than `max` were taken, which 0 of 0 is).
#[tokio::test]
async fn a_promotion_of_nothing_leaves_due_messages_due() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let now = now_ms();
    let id = store
        .enqueue(message(1, "+300", Priority::BULK))
        .await
        .unwrap()
        .message()
        .id;
    store.lease(1, 1).await.unwrap();
    store
        .retry_at(1, id, now - 1_000, "retry".into())
        .await
        .unwrap();
    assert!(store.promote_due(now, 0).await.unwrap().is_empty());
    assert_eq!(store.next_due().unwrap(), Some(now - 1_000));
    assert_eq!(store.promote_due(now, 10).await.unwrap(), vec![1]);
}

/// The receipt state machine (blueprint §8.1) is the store's: a part's receipt records the
/// part on the message (not in its events), the last part delivers it, and repeats are
/// duplicates, never errors.
#[tokio::test]
async fn receipts_move_the_state_machine_and_repeats_are_duplicates() {
    use sairex_store::ReceiptUpdate;
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = store
        .enqueue(message(1, "+923001234567", Priority::TRANSACTIONAL))
        .await
        .unwrap()
        .message()
        .id;
    let receipt = |status, part, parts| ReceiptUpdate {
        status,
        part,
        parts,
        detail: "receipt from sim".into(),
        error_code: None,
        at: 1_000,
    };
    // Still queued: an intermediate receipt of a part does not make it SENT.
    let early = store
        .apply_receipt(1, id, receipt(MessageStatus::Sent, 0, 3))
        .await
        .unwrap();
    assert!(matches!(early, Transition::Stale(_)), "{early:?}");
    store.lease(1, 1).await.unwrap();
    store
        .ack_submitted(
            1,
            id,
            Submitted {
                provider_id: 7,
                provider_msg_ids: vec!["a".into(), "b".into(), "c".into()],
                ..Submitted::default()
            },
        )
        .await
        .unwrap();
    let sent = store
        .apply_receipt(1, id, receipt(MessageStatus::Sent, 0, 3))
        .await
        .unwrap();
    assert!(sent.is_applied());
    assert_eq!(sent.status, MessageStatus::Sent);
    let again = store
        .apply_receipt(1, id, receipt(MessageStatus::Sent, 1, 3))
        .await
        .unwrap();
    assert!(matches!(again, Transition::Duplicate(_)), "{again:?}");
    // Parts 2 and 0 delivered: recorded on the message, still SENT.
    for part in [2, 0] {
        let t = store
            .apply_receipt(1, id, receipt(MessageStatus::Delivered, part, 3))
            .await
            .unwrap();
        assert!(t.is_applied());
        assert_eq!(t.status, MessageStatus::Sent);
    }
    assert_eq!(store.message(1, id).unwrap().delivered_parts, vec![0, 2]);
    let repeat = store
        .apply_receipt(1, id, receipt(MessageStatus::Delivered, 2, 3))
        .await
        .unwrap();
    assert!(matches!(repeat, Transition::Duplicate(_)), "{repeat:?}");
    // The last part delivers the message, once.
    let done = store
        .apply_receipt(1, id, receipt(MessageStatus::Delivered, 1, 3))
        .await
        .unwrap();
    assert!(done.is_applied());
    assert_eq!(done.status, MessageStatus::Delivered);
    assert_eq!(done.delivered_at, Some(1_000));
    assert_eq!(done.delivered_parts, vec![0, 1, 2]);
    let late = store
        .apply_receipt(1, id, receipt(MessageStatus::Failed, 1, 3))
        .await
        .unwrap();
    assert!(matches!(late, Transition::Duplicate(_)), "{late:?}");
    let events: Vec<String> = store
        .events(1, id)
        .unwrap()
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(
        events,
        [
            "QUEUED",
            "SUBMITTED",
            "SENT",
            "PART_DELIVERED",
            "PART_DELIVERED",
            "DELIVERED"
        ]
    );
    // Finalizing a final message is not an error either.
    let twice = store
        .finalize(1, id, MessageStatus::Failed, None, None)
        .await
        .unwrap();
    assert!(matches!(twice, Transition::Stale(_)), "{twice:?}");
}
