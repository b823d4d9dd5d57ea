//! Records written by an older build must still read. The "old" message here is the shape the
//! first release wrote before fields were added (no priority, no queue place, no metadata…);
//! it is written byte for byte as that build did: format byte 1, then MessagePack with names.

use sairex_store::model::{CampaignStatus, Direction, MessageStatus, Priority, QueuePlace};
use sairex_store::{Store, StoreError, StoreOptions};
use serde::Serialize;

#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
struct MessageV1Early {
    id: u64,
    organization_id: u64,
    direction: &'static str,
    from_number: &'static str,
    to_number: &'static str,
    body: &'static str,
    status: &'static str,
    created_at: u64,
}

/// `[MESSAGE = 0x20][org u64 BE][id u64 BE]`, as documented in keys.rs.
fn message_key(org: u64, id: u64) -> Vec<u8> {
    let mut key = vec![0x20];
    key.extend_from_slice(&org.to_be_bytes());
    key.extend_from_slice(&id.to_be_bytes());
    key
}

fn write_raw(dir: &std::path::Path, key: Vec<u8>, value: Vec<u8>) {
    let raw = sairex_store::raw::RawStore::open(dir).unwrap();
    raw.insert(key, value).unwrap();
}

#[test]
fn a_message_written_before_later_fields_existed_still_reads() {
    let dir = tempfile::tempdir().unwrap();
    let old = MessageV1Early {
        id: 42,
        organization_id: 7,
        direction: "INBOUND",
        from_number: "+923001234567",
        to_number: "8001",
        body: "STOP",
        status: "RECEIVED",
        created_at: 1_700_000_000_000,
    };
    let mut value = vec![1u8];
    rmp_serde::encode::write_named(&mut value, &old).unwrap();
    write_raw(dir.path(), message_key(7, 42), value);

    let store = Store::open(StoreOptions::new(dir.path())).unwrap();
    let m = store.message(7, 42).unwrap();
    assert_eq!(
        (m.id, m.direction, m.status),
        (42, Direction::Inbound, MessageStatus::Received)
    );
    assert_eq!(
        (m.from_number.as_str(), m.body.as_str()),
        ("+923001234567", "STOP")
    );
    assert_eq!(
        m.priority,
        Priority::TRANSACTIONAL,
        "fields added later take their defaults"
    );
    assert_eq!(m.queue, QueuePlace::Done);
    assert_eq!(m.metadata, None);
    assert_eq!(m.partial, None, "a message sent in one go");
    assert!(matches!(
        store.message(8, 42),
        Err(StoreError::NotFound { .. })
    ));
}

#[test]
fn a_record_from_a_newer_format_is_refused_not_guessed() {
    let dir = tempfile::tempdir().unwrap();
    write_raw(
        dir.path(),
        message_key(7, 1),
        vec![sairex_store::FORMAT_VERSION + 1, 0x80],
    );
    let store = Store::open(StoreOptions::new(dir.path())).unwrap();
    let err = store.message(7, 1).unwrap_err();
    assert!(matches!(err, StoreError::Format(_)), "{err}");
}

#[test]
fn a_store_stamped_by_a_newer_build_does_not_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut meta = vec![0x01];
    meta.extend_from_slice(b"format");
    write_raw(dir.path(), meta, vec![sairex_store::FORMAT_VERSION + 1]);
    let err = Store::open(StoreOptions::new(dir.path())).unwrap_err();
    assert!(matches!(err, StoreError::Format(_)), "{err}");
}

/// A campaign as builds before A/B variants wrote it (no `variants` field).
#[derive(Serialize)]
struct CampaignBeforeVariants {
    id: u64,
    organization_id: u64,
    name: &'static str,
    message_body: Option<&'static str>,
    status: &'static str,
    created_at: u64,
}

#[tokio::test]
async fn a_campaign_stored_before_variants_reads_and_moves_on_without_them() {
    let dir = tempfile::tempdir().unwrap();
    let old = CampaignBeforeVariants {
        id: 5,
        organization_id: 7,
        name: "Fees",
        message_body: Some("Fee due"),
        status: "IN_PROGRESS",
        created_at: 1_700_000_000_000,
    };
    let mut value = vec![1u8];
    rmp_serde::encode::write_named(&mut value, &old).unwrap();
    // `[CAMPAIGN = 0x1A][org][id]`, as documented in keys.rs.
    let mut key = vec![0x1A];
    key.extend_from_slice(&7u64.to_be_bytes());
    key.extend_from_slice(&5u64.to_be_bytes());
    write_raw(dir.path(), key, value);

    let store = Store::open(StoreOptions::new(dir.path())).unwrap();
    let c = store.campaign(7, 5).unwrap();
    assert!(c.variants.is_empty());
    assert_eq!(c.message_body.as_deref(), Some("Fee due"));
    // Validation of the newer fields accepts it: the runner can still move it.
    let (moved, changed) = store
        .transition_campaign(7, 5, vec![CampaignStatus::InProgress], |c| {
            c.status = CampaignStatus::Paused;
            Ok(())
        })
        .await
        .unwrap();
    assert!(changed);
    assert_eq!(moved.status, CampaignStatus::Paused);
}
