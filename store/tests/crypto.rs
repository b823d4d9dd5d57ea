//! Secrets at rest: provider credentials and webhook secrets never reach the disk in clear, a
//! wrong or missing master key is refused on open, and the right key reads them back.

use std::path::Path;

use sairex_store::model::{ApiKey, ProviderConfig, ProviderKind, Webhook};
use sairex_store::{MasterKey, Store, StoreError, StoreOptions, SyncPolicy};
use serde_json::json;

const PASSWORD: &str = "hunter2-PLAINTEXT-smpp-password";
const WEBHOOK_SECRET: &str = "whsec-PLAINTEXT-signing-secret";
const VISIBLE: &str = "VisibleProviderLabel";
const RAW_API_KEY: &str = "sk_live_Z9y8X7w6V5u4T3s2R1q0PLAINTEXT";

fn key(byte: u8) -> MasterKey {
    MasterKey::from_bytes([byte; 32])
}

fn options(dir: &Path, key: Option<MasterKey>) -> StoreOptions {
    let mut options = StoreOptions::new(dir);
    options.sync = SyncPolicy::Always;
    options.master_key = key;
    options
}

fn provider(org: u64) -> ProviderConfig {
    ProviderConfig {
        organization_id: org,
        provider_kind: ProviderKind::Smpp,
        display_name: VISIBLE.into(),
        settings: json!({"window": 10}),
        credentials: json!({"host": "smsc.example", "systemId": "sairex", "password": PASSWORD}),
        ..ProviderConfig::default()
    }
}

fn webhook(org: u64) -> Webhook {
    Webhook {
        organization_id: org,
        url: "https://hooks.example/sms".into(),
        secret: WEBHOOK_SECRET.into(),
        events: vec!["message.delivered".into()],
        ..Webhook::default()
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every byte of every file under `dir`.
fn files(dir: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(std::fs::read(&path).unwrap());
        }
    }
    out
}

async fn store_with_secrets(dir: &Path) -> (u64, u64) {
    let store = Store::open(options(dir, Some(key(1)))).unwrap();
    let p = store.create_provider(provider(1)).await.unwrap();
    let w = store.create_webhook(webhook(1)).await.unwrap();
    store.flush().await.unwrap();
    (p.id, w.id)
}

#[tokio::test]
async fn secrets_are_never_on_disk_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(options(dir.path(), Some(key(1)))).unwrap();
    let p = store.create_provider(provider(1)).await.unwrap();
    let w = store.create_webhook(webhook(1)).await.unwrap();
    let api_key = store
        .create_api_key(
            ApiKey {
                organization_id: 1,
                name: "prod".into(),
                ..ApiKey::default()
            },
            RAW_API_KEY,
        )
        .await
        .unwrap();
    assert_eq!(api_key.key_prefix, &RAW_API_KEY[..12]);
    // Updating seals the new value too.
    store
        .update_provider(1, p.id, |p| {
            p.credentials["password"] = json!(format!("{PASSWORD}-2"));
            Ok(())
        })
        .await
        .unwrap();
    store.flush().await.unwrap();
    drop(store);

    let on_disk = files(dir.path());
    assert!(
        on_disk.iter().any(|f| contains(f, VISIBLE.as_bytes())),
        "the scan must see plain fields, or it proves nothing"
    );
    for file in &on_disk {
        assert!(!contains(file, PASSWORD.as_bytes()));
        assert!(!contains(file, WEBHOOK_SECRET.as_bytes()));
        assert!(
            !contains(file, RAW_API_KEY.as_bytes()),
            "only the key's hash is stored"
        );
    }

    // And no value of the store holds them either (fjall compresses table blocks, so the file
    // scan above cannot see inside them).
    let raw = sairex_store::raw::RawStore::open(dir.path()).unwrap();
    let mut seen_visible = false;
    for (_, value) in raw.entries().unwrap() {
        seen_visible |= contains(&value, VISIBLE.as_bytes());
        assert!(!contains(&value, PASSWORD.as_bytes()));
        assert!(!contains(&value, WEBHOOK_SECRET.as_bytes()));
        assert!(!contains(&value, RAW_API_KEY.as_bytes()));
    }
    assert!(seen_visible);
    drop(raw);

    let store = Store::open(options(dir.path(), Some(key(1)))).unwrap();
    assert_eq!(
        store.provider(1, p.id).unwrap().credentials["password"],
        json!(format!("{PASSWORD}-2"))
    );
    assert_eq!(store.webhook(1, w.id).unwrap().secret, WEBHOOK_SECRET);
}

#[tokio::test]
async fn the_right_key_reads_secrets_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (p, w) = store_with_secrets(dir.path()).await;
    let store = Store::open(options(dir.path(), Some(key(1)))).unwrap();
    let provider = store.provider(1, p).unwrap();
    assert_eq!(provider.credentials["password"], json!(PASSWORD));
    assert_eq!(provider.settings, json!({"window": 10}));
    assert_eq!(store.webhook(1, w).unwrap().secret, WEBHOOK_SECRET);
    assert_eq!(
        store.list_webhooks(1, Default::default()).unwrap().items[0].secret,
        WEBHOOK_SECRET
    );
    assert_eq!(
        store.active_providers(1).unwrap()[0].credentials["password"],
        json!(PASSWORD)
    );
}

#[tokio::test]
async fn a_wrong_key_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    store_with_secrets(dir.path()).await;
    let err = Store::open(options(dir.path(), Some(key(2)))).unwrap_err();
    assert!(matches!(err, StoreError::WrongMasterKey), "{err:?}");
    // Refusing changed nothing: the right key still opens it.
    let store = Store::open(options(dir.path(), Some(key(1)))).unwrap();
    assert_eq!(
        store.list_providers(1, Default::default()).unwrap().total,
        1
    );
}

#[tokio::test]
async fn a_store_with_secrets_needs_its_key() {
    let dir = tempfile::tempdir().unwrap();
    store_with_secrets(dir.path()).await;
    let err = Store::open(options(dir.path(), None)).unwrap_err();
    assert!(matches!(err, StoreError::MasterKeyRequired), "{err:?}");
}

#[tokio::test]
async fn a_store_without_secrets_opens_without_a_key_but_cannot_write_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(options(dir.path(), None)).unwrap();
    // A provider without credentials has nothing to seal.
    let bare = store
        .create_provider(ProviderConfig {
            credentials: serde_json::Value::Null,
            ..provider(1)
        })
        .await
        .unwrap();
    let err = store.create_provider(provider(1)).await.unwrap_err();
    assert!(matches!(err, StoreError::MasterKeyRequired), "{err:?}");
    let err = store.create_webhook(webhook(1)).await.unwrap_err();
    assert!(matches!(err, StoreError::MasterKeyRequired), "{err:?}");
    let err = store
        .update_provider(1, bare.id, |p| {
            p.credentials = json!({"password": PASSWORD});
            Ok(())
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::MasterKeyRequired), "{err:?}");
    // Nothing of the refused writes landed.
    assert_eq!(
        store.list_providers(1, Default::default()).unwrap().total,
        1
    );
    assert!(store.provider(1, bare.id).unwrap().credentials.is_null());
    drop(store);
    Store::open(options(dir.path(), None)).unwrap();
}

#[tokio::test]
async fn deleting_the_last_secret_lets_the_store_open_without_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let (p, w) = store_with_secrets(dir.path()).await;
    let store = Store::open(options(dir.path(), Some(key(1)))).unwrap();
    store.delete_provider(1, p).await.unwrap();
    store.delete_webhook(1, w).await.unwrap();
    drop(store);
    Store::open(options(dir.path(), None)).unwrap();
}

#[tokio::test]
async fn a_key_once_given_is_the_store_key() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(options(dir.path(), Some(key(1)))).unwrap());
    // No secrets yet: no key is needed, but another key is still not this store's.
    drop(Store::open(options(dir.path(), None)).unwrap());
    let err = Store::open(options(dir.path(), Some(key(3)))).unwrap_err();
    assert!(matches!(err, StoreError::WrongMasterKey), "{err:?}");
}

#[test]
fn master_keys_parse_from_hex_and_base64() {
    let hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    let from_hex = MasterKey::from_hex(hex).unwrap();
    assert_eq!(from_hex.to_hex(), hex);
    assert_eq!(MasterKey::from_hex(&hex.to_uppercase()).unwrap(), from_hex);
    let b64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    assert_eq!(MasterKey::from_base64(b64).unwrap(), from_hex);
    assert_eq!(
        MasterKey::from_base64(b64.trim_end_matches('=')).unwrap(),
        from_hex
    );
    assert_eq!(MasterKey::parse(hex).unwrap(), from_hex);
    assert_eq!(format!(" {b64}\n").parse::<MasterKey>().unwrap(), from_hex);

    for bad in [
        "",
        "abcd",
        &hex[..62],
        &format!("{}zz", &hex[..62]),
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd",
        "not base64 at all!",
        &"0".repeat(64),
    ] {
        let err = MasterKey::parse(bad).unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidMasterKey(_)),
            "{bad}: {err:?}"
        );
        if bad.len() > 4 {
            assert!(!err.to_string().contains(bad), "the error echoes the key");
        }
    }
    let generated = MasterKey::generate();
    assert_ne!(generated, MasterKey::generate());
    assert_eq!(MasterKey::from_hex(&generated.to_hex()).unwrap(), generated);
}

#[test]
fn debug_output_never_shows_keys_or_secrets() {
    let key = MasterKey::from_hex(&"ab".repeat(32)).unwrap();
    assert_eq!(format!("{key:?}"), "MasterKey(***)");
    let options = StoreOptions::new("/tmp/x").with_master_key(key);
    assert!(!format!("{options:?}").contains("abab"));
    let p = format!("{:?}", provider(1));
    assert!(
        p.contains(VISIBLE) && p.contains("***") && !p.contains(PASSWORD),
        "{p}"
    );
    let w = format!("{:#?}", webhook(1));
    assert!(w.contains("***") && !w.contains(WEBHOOK_SECRET), "{w}");
}
