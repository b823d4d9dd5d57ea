//! The durable outbox: an entry in the batch of every status change and inbound message, read
//! in order up to what is durable; consumers' cursors, pending entries and delivery logs moved
//! in one batch; trimming behind the slowest active consumer; erasure reaching the snapshots.

use sairex_store::model::{Direction, Message, MessageStatus, Priority, Webhook, WebhookDelivery};
use sairex_store::{
    CALLBACKS, OutboxProgress, PendingDelivery, Store, StoreError, StoreOptions, Submitted, now_ms,
};

fn message(org: u64, to: &str) -> Message {
    Message {
        organization_id: org,
        to_number: to.into(),
        from_number: "Sairex".into(),
        body: "Fee due Friday".into(),
        priority: Priority::TRANSACTIONAL,
        ..Message::default()
    }
}

fn open(dir: &std::path::Path) -> Store {
    Store::open(StoreOptions::new(dir)).unwrap()
}

fn statuses(store: &Store, org: u64) -> Vec<(String, MessageStatus)> {
    store
        .outbox_after(org, 0, 100)
        .unwrap()
        .into_iter()
        .map(|e| (e.event_type, e.message.status))
        .collect()
}

#[tokio::test]
async fn every_status_change_writes_one_entry_in_order_and_nothing_else_does() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = store
        .enqueue(message(1, "+923001234567"))
        .await
        .unwrap()
        .message()
        .id;
    store.enqueue(message(2, "+923001234568")).await.unwrap();
    // A lease moves the queue place, not the status: no event.
    let leased = store.lease(1, 10).await.unwrap();
    assert_eq!(leased.len(), 1);
    assert_eq!(
        statuses(&store, 1),
        vec![("QUEUED".into(), MessageStatus::Queued)]
    );
    store
        .ack_submitted(
            1,
            id,
            Submitted {
                provider_id: 7,
                provider_msg_ids: vec!["abc".into()],
                ..Submitted::default()
            },
        )
        .await
        .unwrap();
    store
        .finalize(1, id, MessageStatus::Delivered, None, None)
        .await
        .unwrap();
    let entries = store.outbox_after(1, 0, 100).unwrap();
    assert_eq!(
        entries.iter().map(|e| e.message.status).collect::<Vec<_>>(),
        vec![
            MessageStatus::Queued,
            MessageStatus::Submitted,
            MessageStatus::Delivered
        ]
    );
    assert!(entries.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(
        entries
            .iter()
            .all(|e| e.organization_id == 1 && e.message.id == id)
    );
    // The snapshot is the message as that change left it.
    assert_eq!(entries[1].message.provider_msg_id.as_deref(), Some("abc"));
    // Reading after a position returns what follows it; another organization's are apart.
    let after = store.outbox_after(1, entries[0].seq, 100).unwrap();
    assert_eq!(after.len(), 2);
    assert_eq!(
        statuses(&store, 2),
        vec![("QUEUED".into(), MessageStatus::Queued)]
    );
    assert_eq!(store.outbox_org_head(1), Some(entries[2].seq));
    assert!(store.outbox_head() >= entries[2].seq);
}

#[tokio::test]
async fn an_inbound_message_is_announced_and_entries_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let seqs: Vec<u64> = {
        let store = open(dir.path());
        let mut inbound = message(3, "+15550001");
        inbound.direction = Direction::Inbound;
        inbound.from_number = "+923001234567".into();
        store.enqueue(inbound).await.unwrap();
        let entries = store.outbox_after(3, 0, 10).unwrap();
        assert_eq!(entries.len(), 1);
        assert!(entries[0].is_inbound());
        assert_eq!(entries[0].event_type, "RECEIVED");
        entries.iter().map(|e| e.seq).collect()
    };
    let store = open(dir.path());
    let again: Vec<u64> = store
        .outbox_after(3, 0, 10)
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(again, seqs);
    // Readable at once after a reopen: the head covers what is on disk.
    assert!(store.outbox_head() >= seqs[0]);
    // And new entries continue after the old ones.
    store.enqueue(message(3, "+15550002")).await.unwrap();
    let all = store.outbox_after(3, 0, 10).unwrap();
    assert_eq!(all.len(), 2);
    assert!(all[1].seq > seqs[0]);
}

#[tokio::test]
async fn the_watch_has_moved_when_the_caller_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut watch = store.outbox_watch();
    let before = *watch.borrow_and_update();
    store.enqueue(message(1, "+1")).await.unwrap();
    // The caller was answered after the fsync, and readers were told before that.
    assert!(watch.has_changed().unwrap());
    let head = *watch.borrow_and_update();
    assert!(head > before);
    assert_eq!(
        store.outbox_after(1, 0, 10).unwrap().last().unwrap().seq,
        head
    );
}

async fn webhook(store: &Store, org: u64) -> Webhook {
    store
        .create_webhook(Webhook {
            organization_id: org,
            url: "https://example.invalid/hook".into(),
            events: vec!["*".into()],
            ..Webhook::default()
        })
        .await
        .unwrap()
}

fn attempt(success: bool) -> WebhookDelivery {
    WebhookDelivery {
        event_type: "message.sent".into(),
        http_status: Some(if success { 200 } else { 503 }),
        attempt: 1,
        success,
        ..WebhookDelivery::default()
    }
}

#[tokio::test]
async fn progress_moves_cursor_pending_and_log_together() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let hook = webhook(&store, 1).await;
    assert_eq!(store.outbox_cursor(1, hook.id).unwrap(), None);
    let fails = store
        .record_outbox_progress(OutboxProgress {
            organization_id: 1,
            consumer: hook.id,
            cursor: Some(40),
            deliveries: vec![attempt(true), attempt(false), attempt(false)],
            pending: vec![
                PendingDelivery {
                    seq: 12,
                    message_id: 5,
                    attempts: 1,
                    due_at: Some(1_000),
                },
                PendingDelivery {
                    seq: 30,
                    message_id: 5,
                    attempts: 0,
                    due_at: None,
                },
            ],
            settled: vec![],
        })
        .await
        .unwrap();
    assert_eq!(fails, 2);
    assert_eq!(store.webhook(1, hook.id).unwrap().consecutive_fails, 2);
    assert_eq!(store.outbox_cursor(1, hook.id).unwrap(), Some(40));
    assert_eq!(
        store
            .outbox_pending(1, hook.id)
            .unwrap()
            .iter()
            .map(|p| p.seq)
            .collect::<Vec<_>>(),
        vec![12, 30]
    );
    let log = store
        .webhook_deliveries(1, hook.id, sairex_store::PageRequest::default())
        .unwrap();
    assert_eq!(log.total, 3);
    // A success resets the streak; settled entries go.
    let fails = store
        .record_outbox_progress(OutboxProgress {
            organization_id: 1,
            consumer: hook.id,
            cursor: None,
            deliveries: vec![attempt(true)],
            pending: vec![],
            settled: vec![12],
        })
        .await
        .unwrap();
    assert_eq!(fails, 0);
    assert_eq!(store.outbox_pending(1, hook.id).unwrap().len(), 1);
    // Tenancy: another organization's webhook cannot be moved.
    let err = store
        .record_outbox_progress(OutboxProgress {
            organization_id: 2,
            consumer: hook.id,
            cursor: Some(50),
            ..OutboxProgress::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }));
    assert_eq!(store.outbox_cursor(2, hook.id).unwrap(), None);
    // Deleting the webhook forgets its place.
    store.delete_webhook(1, hook.id).await.unwrap();
    assert_eq!(store.outbox_cursor(1, hook.id).unwrap(), None);
    assert!(store.outbox_pending(1, hook.id).unwrap().is_empty());
}

#[tokio::test]
async fn trimming_waits_for_the_slowest_active_consumer_and_the_age() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let hook = webhook(&store, 1).await;
    for n in 0..5 {
        store
            .enqueue(message(1, &format!("+1555000{n}")))
            .await
            .unwrap();
    }
    let seqs: Vec<u64> = store
        .outbox_after(1, 0, 10)
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    let progress = |consumer, cursor| OutboxProgress {
        organization_id: 1,
        consumer,
        cursor: Some(cursor),
        ..OutboxProgress::default()
    };
    store
        .record_outbox_progress(progress(CALLBACKS, seqs[4]))
        .await
        .unwrap();
    store
        .record_outbox_progress(progress(hook.id, seqs[1]))
        .await
        .unwrap();
    let later = now_ms() + 60_000;
    // Young entries stay whatever the cursors.
    assert_eq!(store.trim_outbox(later, 3_600_000).await.unwrap(), 0);
    // Old ones go up to the webhook's cursor, not past it.
    assert_eq!(store.trim_outbox(later, 1).await.unwrap(), 2);
    assert_eq!(store.outbox_oldest(1).unwrap(), Some(seqs[2]));
    // A pending entry holds its place even behind the cursor.
    store
        .record_outbox_progress(OutboxProgress {
            organization_id: 1,
            consumer: hook.id,
            cursor: Some(seqs[4]),
            pending: vec![PendingDelivery {
                seq: seqs[3],
                message_id: 1,
                attempts: 1,
                due_at: Some(0),
            }],
            ..OutboxProgress::default()
        })
        .await
        .unwrap();
    assert_eq!(store.trim_outbox(later, 1).await.unwrap(), 1);
    assert_eq!(store.outbox_oldest(1).unwrap(), Some(seqs[3]));
    // An inactive webhook holds nothing back.
    store
        .update_webhook(1, hook.id, |w| {
            w.is_active = false;
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(store.trim_outbox(later, 1).await.unwrap(), 2);
    assert_eq!(store.outbox_oldest(1).unwrap(), None);
}

#[tokio::test]
async fn erasure_reaches_the_outbox_copies() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.enqueue(message(1, "+923001234567")).await.unwrap();
    store.enqueue(message(1, "+923009999999")).await.unwrap();
    store
        .anonymise_messages(1, "+923001234567", true)
        .await
        .unwrap();
    let entries = store.outbox_after(1, 0, 10).unwrap();
    assert!(entries[0].message.to_number.starts_with("erased:"));
    assert!(entries[0].message.body.is_empty());
    assert_eq!(entries[0].message.status, MessageStatus::Queued);
    assert_eq!(entries[1].message.to_number, "+923009999999");
    assert_eq!(entries[1].message.body, "Fee due Friday");
}
