//! `[[providers]]` of the config file as the store's system provider records (organization 0),
//! which the engine starts and follows: the file is the source of truth for these records.
//!
//! A record made from the file has `settings.fromConfig = true` and the entry's `name` as its
//! display name. At each start every entry is created or updated, and records from an entry
//! no longer in the file are deactivated (kept: their messages refer to them).

use std::collections::HashMap;

use anyhow::Context;
use serde_json::{Map, Value, json};

use sairex_config::{
    BindMode, Concatenation, DataCoding, Gsm7Packing, InDoubt, OrgRef, ProviderConfig as FileEntry,
    ProviderConnection, ProviderKind as FileKind,
};
use sairex_store::model::{Id, ProviderConfig, ProviderKind};
use sairex_store::{PageRequest, Store};

/// The settings key that marks a record as made from the file.
pub const FROM_CONFIG: &str = "fromConfig";

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The organization ids of the file's references, by id or by name; names not found are
/// returned apart.
pub fn resolve_orgs(refs: &[OrgRef], by_name: &HashMap<String, Id>) -> (Vec<Id>, Vec<String>) {
    let mut ids = Vec::new();
    let mut unknown = Vec::new();
    for r in refs {
        match r {
            OrgRef::Id(id) => ids.push(*id),
            OrgRef::Name(name) => match by_name.get(name) {
                Some(&id) => ids.push(id),
                None => unknown.push(name.clone()),
            },
        }
    }
    (ids, unknown)
}

/// Every organization by name (the first of a name wins).
pub fn organizations_by_name(store: &Store) -> anyhow::Result<HashMap<String, Id>> {
    let mut names = HashMap::new();
    for org in store.all_organizations().context("listing organizations")? {
        names.entry(org.name).or_insert(org.id);
    }
    Ok(names)
}

/// The store record (settings and credentials) for one file entry.
pub fn record_for(entry: &FileEntry, organizations: &[Id]) -> ProviderConfig {
    let kind = match entry.kind {
        FileKind::Smpp => ProviderKind::Smpp,
        FileKind::Twilio => ProviderKind::Twilio,
        FileKind::Vonage => ProviderKind::Vonage,
        FileKind::Veevo => ProviderKind::Veevo,
    };
    let (mut settings, credentials) = match &entry.connection {
        ProviderConnection::Smpp(smpp) => {
            let mut settings = json!({
                "binds": smpp.binds,
                "bindMode": match smpp.bind_mode {
                    BindMode::Transceiver => "transceiver",
                    BindMode::TransmitterReceiver => "transmitterReceiver",
                    BindMode::Transmitter => "transmitter",
                    BindMode::Receiver => "receiver",
                },
                "window": smpp.window,
                "responseTimeoutMs": ms(smpp.response_timeout),
                "enquireLinkIntervalMs": ms(smpp.enquire_link_interval),
                "reconnectMinMs": ms(smpp.reconnect_min),
                "reconnectMaxMs": ms(smpp.reconnect_max),
                "destTon": smpp.dest_ton,
                "destNpi": smpp.dest_npi,
                "dataCoding": match smpp.data_coding {
                    DataCoding::Auto | DataCoding::Gsm7 => "auto",
                    DataCoding::Ucs2 => "ucs2",
                    DataCoding::Latin1 => "latin1",
                },
                "gsm7Packing": match smpp.gsm7_packing {
                    Gsm7Packing::Unpacked => "unpacked",
                    Gsm7Packing::Packed => "packed",
                },
                "concatenation": match smpp.concatenation {
                    Concatenation::Udh8 => "udh8",
                    Concatenation::Udh16 => "udh16",
                    Concatenation::Sar => "sar",
                    Concatenation::Payload => "payload",
                },
                "registeredDelivery": smpp.registered_delivery,
                "inDoubt": match smpp.in_doubt {
                    InDoubt::Resubmit => "resubmit",
                    InDoubt::Fail => "fail",
                },
            });
            if let Some(map) = settings.as_object_mut() {
                if let Some(ton) = smpp.source_ton {
                    map.insert("sourceTon".into(), json!(ton));
                }
                if let Some(npi) = smpp.source_npi {
                    map.insert("sourceNpi".into(), json!(npi));
                }
                if let Some(tls) = &smpp.tls {
                    let mut t = Map::new();
                    t.insert("enabled".into(), json!(true));
                    t.insert("caFile".into(), json!(tls.ca_file));
                    if let Some(f) = &tls.client_cert_file {
                        t.insert("clientCertFile".into(), json!(f));
                    }
                    if let Some(f) = &tls.client_key_file {
                        t.insert("clientKeyFile".into(), json!(f));
                    }
                    if let Some(n) = &tls.server_name {
                        t.insert("serverName".into(), json!(n));
                    }
                    map.insert("tls".into(), Value::Object(t));
                }
            }
            let credentials = json!({
                "host": smpp.host,
                "port": smpp.port,
                "systemId": smpp.system_id,
                "password": smpp.password.expose(),
                "systemType": smpp.system_type,
            });
            (settings, credentials)
        }
        ProviderConnection::Http(http) => {
            let mut settings = Map::new();
            if let Some(base) = &http.base_url {
                settings.insert("baseUrl".into(), json!(base));
            }
            let credentials: Map<String, Value> = http
                .credentials
                .iter()
                .map(|(k, v)| (k.clone(), json!(v.expose())))
                .collect();
            (Value::Object(settings), Value::Object(credentials))
        }
    };
    if let Some(map) = settings.as_object_mut() {
        map.insert(FROM_CONFIG.into(), json!(true));
        if !organizations.is_empty() {
            map.insert("organizations".into(), json!(organizations));
        }
    }
    ProviderConfig {
        organization_id: 0,
        provider_kind: kind,
        display_name: entry.name.clone(),
        settings,
        credentials,
        priority: i32::try_from(entry.priority).unwrap_or(i32::MAX),
        is_active: entry.active,
        tps: entry.tps.map(std::num::NonZeroU32::get),
        cost_per_segment: entry.cost_per_segment,
        ..ProviderConfig::default()
    }
}

/// The fields the file decides; the rest (health, timestamps, id) belong to the store.
fn copy_from_file(from: &ProviderConfig, to: &mut ProviderConfig) {
    to.provider_kind = from.provider_kind;
    to.settings.clone_from(&from.settings);
    to.credentials.clone_from(&from.credentials);
    to.priority = from.priority;
    to.is_active = from.is_active;
    to.tps = from.tps;
    to.cost_per_segment = from.cost_per_segment;
}

fn from_config(record: &ProviderConfig) -> bool {
    record
        .settings
        .get(FROM_CONFIG)
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// What the sync did, for the start-up log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Records created.
    pub created: usize,
    /// Records updated.
    pub updated: usize,
    /// Records deactivated (their entry left the file).
    pub deactivated: usize,
}

/// Brings the system provider records in line with the file (module docs).
///
/// # Errors
/// Store errors (a record with credentials needs the master key).
pub async fn sync(
    store: &Store,
    entries: &[FileEntry],
    by_name: &HashMap<String, Id>,
) -> anyhow::Result<SyncReport> {
    let existing = store
        .list_providers(
            0,
            PageRequest {
                offset: 0,
                limit: sairex_store::MAX_PAGE,
            },
        )
        .context("listing system providers")?
        .items;
    let mut report = SyncReport::default();
    for entry in entries {
        let (orgs, unknown) = resolve_orgs(&entry.organizations, by_name);
        for name in unknown {
            tracing::warn!(provider = %entry.name, organization = %name, "no organization of that name; not served");
        }
        if !entry.organizations.is_empty() && orgs.is_empty() {
            // Serving "nobody known yet" must not become "everybody".
            tracing::warn!(provider = %entry.name, "none of its organizations exists; deactivated");
        }
        let mut wanted = record_for(entry, &orgs);
        if !entry.organizations.is_empty() && orgs.is_empty() {
            wanted.is_active = false;
        }
        match existing
            .iter()
            .find(|r| from_config(r) && r.display_name == entry.name)
        {
            Some(current) => {
                let mut updated = current.clone();
                copy_from_file(&wanted, &mut updated);
                if updated != *current {
                    store
                        .update_provider(0, current.id, move |r| {
                            copy_from_file(&wanted, r);
                            Ok(())
                        })
                        .await
                        .with_context(|| format!("updating provider {}", entry.name))?;
                    report.updated += 1;
                }
            }
            None => {
                store
                    .create_provider(wanted)
                    .await
                    .with_context(|| format!("creating provider {}", entry.name))?;
                report.created += 1;
            }
        }
    }
    for stale in existing
        .iter()
        .filter(|r| from_config(r) && r.is_active)
        .filter(|r| !entries.iter().any(|e| e.name == r.display_name))
    {
        store
            .update_provider(0, stale.id, |r| {
                r.is_active = false;
                Ok(())
            })
            .await
            .with_context(|| format!("deactivating provider {}", stale.display_name))?;
        report.deactivated += 1;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sairex_store::{MasterKey, StoreOptions};

    fn entries(priority: u32) -> Vec<FileEntry> {
        let text = format!(
            r#"
[admin]
token = "0123456789abcdef0123"
[[providers]]
name = "carrier"
kind = "smpp"
priority = {priority}
[providers.smpp]
host = "127.0.0.1"
port = 2775
system_id = "sairex"
password = "secret"
"#
        );
        sairex_config::parse(&text, &HashMap::new())
            .expect("valid config")
            .providers
    }

    #[tokio::test]
    async fn the_file_creates_updates_only_on_change_and_deactivates_what_it_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            StoreOptions::new(dir.path()).with_master_key(MasterKey::from_bytes([3; 32])),
        )
        .unwrap();
        let none = HashMap::new();
        let created = sync(&store, &entries(1), &none).await.unwrap();
        assert_eq!(created.created, 1);
        assert_eq!(
            sync(&store, &entries(1), &none).await.unwrap(),
            SyncReport::default()
        );
        let changed = sync(&store, &entries(4), &none).await.unwrap();
        assert_eq!((changed.created, changed.updated), (0, 1));
        let records = store.all_providers().unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].priority, 4);
        assert_eq!(records[0].credentials["password"], "secret");
        assert_eq!(sync(&store, &[], &none).await.unwrap().deactivated, 1);
        assert!(!store.all_providers().unwrap()[0].is_active);
    }
}
