//! Tenants' entities: CRUD, unique indexes (per organization, never across), tenant isolation
//! of every read, update, delete and list, exact group member counts, and pagination totals.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use sairex_store::model::{
    ApiKey, Campaign, CampaignStatus, CampaignVariant, Contact, Group, HealthStatus, Message,
    MessageStatus, Organization, ProviderConfig, Template, Webhook, WebhookDelivery,
};
use sairex_store::{
    CampaignStats, ContactFilter, MasterKey, PageRequest, ProviderHealth, Store, StoreError,
    StoreOptions, SyncPolicy, api_key_hash,
};
use serde_json::json;

const A: u64 = 1;
const B: u64 = 2;

fn open(dir: &std::path::Path) -> Store {
    let mut options = StoreOptions::new(dir).with_master_key(MasterKey::from_bytes([9; 32]));
    options.sync = SyncPolicy::None;
    Store::open(options).unwrap()
}

fn all() -> PageRequest {
    PageRequest {
        offset: 0,
        limit: 1000,
    }
}

fn page(offset: u64, limit: u32) -> PageRequest {
    PageRequest { offset, limit }
}

fn contact(org: u64, phone: &str, name: &str) -> Contact {
    Contact {
        organization_id: org,
        phone_number: phone.into(),
        display_name: Some(name.into()),
        ..Contact::default()
    }
}

fn group(org: u64, name: &str) -> Group {
    Group {
        organization_id: org,
        name: name.into(),
        ..Group::default()
    }
}

fn template(org: u64, name: &str) -> Template {
    Template {
        organization_id: org,
        name: name.into(),
        body: "Dear {{name}}, fee of {{amount}} due".into(),
        ..Template::default()
    }
}

fn is_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::NotFound { .. }))
}

fn conflict_id<T: std::fmt::Debug>(result: Result<T, StoreError>) -> u64 {
    match result {
        Err(StoreError::Conflict { existing_id, .. }) => existing_id,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[tokio::test]
async fn organizations_are_created_read_listed_and_updated() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let err = store
        .create_organization(Organization {
            name: "  ".into(),
            ..Organization::default()
        })
        .await;
    assert!(matches!(
        err,
        Err(StoreError::Invalid { field: "name", .. })
    ));
    let school = store
        .create_organization(Organization {
            name: " City School ".into(),
            ..Organization::default()
        })
        .await
        .unwrap();
    assert_ne!(school.id, 0);
    assert_eq!(school.name, "City School");
    assert!(school.is_active);
    let other = store
        .create_organization(Organization {
            name: "Other".into(),
            ..Organization::default()
        })
        .await
        .unwrap();
    assert_eq!(store.organization(school.id).unwrap(), school);
    let listed = store.list_organizations(all()).unwrap();
    assert_eq!(listed.total, 2);
    assert_eq!(listed.items[0].id, other.id, "newest first");
    let updated = store
        .update_organization(school.id, |o| {
            o.retention_days = Some(90);
            o.id = 999;
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!((updated.id, updated.retention_days), (school.id, Some(90)));
    assert!(is_not_found(store.organization(12345)));
}

#[tokio::test]
async fn api_keys_are_stored_as_hashes_and_scoped() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let raw = "sk_live_a1B2c3D4e5F6g7H8i9J0";
    let key = store
        .create_api_key(
            ApiKey {
                organization_id: A,
                name: "Production".into(),
                scopes: vec!["sms:send".into()],
                ..ApiKey::default()
            },
            raw,
        )
        .await
        .unwrap();
    assert_eq!(key.key_hash, api_key_hash(raw));
    assert_eq!(key.key_prefix, "sk_live_a1B2");
    assert!(key.is_active);
    assert_eq!(
        store.api_key_by_hash(&api_key_hash(raw)).unwrap(),
        Some(key.clone())
    );
    assert_eq!(
        store
            .api_key_by_hash(&api_key_hash("sk_live_other"))
            .unwrap(),
        None
    );

    // The same key twice: a conflict within the organization, unusable in another, and the
    // other tenant learns no id.
    let same = ApiKey {
        organization_id: A,
        name: "Copy".into(),
        ..ApiKey::default()
    };
    assert_eq!(
        conflict_id(store.create_api_key(same.clone(), raw).await),
        key.id
    );
    let err = store
        .create_api_key(
            ApiKey {
                organization_id: B,
                ..same.clone()
            },
            raw,
        )
        .await;
    assert!(
        matches!(err, Err(StoreError::Invalid { field: "key", .. })),
        "{err:?}"
    );
    assert!(matches!(
        store.create_api_key(same.clone(), "short").await,
        Err(StoreError::Invalid { field: "key", .. })
    ));

    // Isolation.
    assert!(is_not_found(store.api_key(B, key.id)));
    assert!(is_not_found(
        store.update_api_key(B, key.id, |_| Ok(())).await
    ));
    assert!(is_not_found(store.revoke_api_key(B, key.id).await));
    assert!(is_not_found(store.delete_api_key(B, key.id).await));
    assert_eq!(store.list_api_keys(B, all()).unwrap().total, 0);
    assert_eq!(
        store.list_api_keys(A, all()).unwrap().items,
        vec![key.clone()]
    );

    // The hash and prefix cannot be changed by an update.
    let renamed = store
        .update_api_key(A, key.id, |k| {
            k.name = "Renamed".into();
            k.key_hash = [0; 32];
            k.key_prefix = "x".into();
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(
        (renamed.key_hash, renamed.key_prefix.as_str()),
        (key.key_hash, "sk_live_a1B2")
    );
    assert_eq!(
        store.api_key_by_hash(&key.key_hash).unwrap().unwrap().name,
        "Renamed"
    );

    let revoked = store.revoke_api_key(A, key.id).await.unwrap();
    assert!(!revoked.is_active);
    assert!(
        !store
            .api_key_by_hash(&key.key_hash)
            .unwrap()
            .unwrap()
            .is_active
    );

    // Last use: written at most once a minute, without waiting.
    assert!(store.touch_last_used(&revoked));
    assert!(!store.touch_last_used(&revoked));
    store.flush().await.unwrap();
    assert!(store.api_key(A, key.id).unwrap().last_used_at.is_some());

    store.delete_api_key(A, key.id).await.unwrap();
    assert_eq!(store.api_key_by_hash(&key.key_hash).unwrap(), None);
    assert!(is_not_found(store.api_key(A, key.id)));
    // The key can be created again once deleted.
    store.create_api_key(same, raw).await.unwrap();
}

#[tokio::test]
async fn providers_are_scoped_ordered_and_keep_their_health() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let provider = |org: u64, name: &str, priority: i32, active: bool| ProviderConfig {
        organization_id: org,
        display_name: name.into(),
        priority,
        is_active: active,
        credentials: json!({"password": name}),
        ..ProviderConfig::default()
    };
    let backup = store
        .create_provider(provider(A, "backup", 5, true))
        .await
        .unwrap();
    let primary = store
        .create_provider(provider(A, "primary", 1, true))
        .await
        .unwrap();
    let off = store
        .create_provider(provider(A, "off", 0, false))
        .await
        .unwrap();
    let system = store
        .create_provider(provider(0, "system", 5, true))
        .await
        .unwrap();
    let theirs = store
        .create_provider(provider(B, "theirs", 0, true))
        .await
        .unwrap();

    let order: Vec<u64> = store
        .active_providers(A)
        .unwrap()
        .iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(order, vec![primary.id, backup.id, system.id]);
    let listed = store.list_providers(A, page(0, 2)).unwrap();
    assert_eq!(listed.total, 3);
    assert_eq!(
        listed.items.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![off.id, primary.id]
    );
    assert_eq!(
        store.list_providers(0, all()).unwrap().items,
        vec![system.clone()]
    );

    for id in [primary.id, system.id] {
        assert!(is_not_found(store.provider(B, id)));
        assert!(is_not_found(store.update_provider(B, id, |_| Ok(())).await));
        assert!(is_not_found(store.delete_provider(B, id).await));
    }
    assert!(is_not_found(store.provider(A, theirs.id)));

    let health = ProviderHealth {
        status: HealthStatus::Degraded,
        failure_count: 3,
        checked_at: 42,
    };
    let checked = store
        .record_provider_health(A, primary.id, health)
        .await
        .unwrap();
    assert_eq!(checked.health_status, HealthStatus::Degraded);
    assert_eq!(checked.credentials, json!({"password": "primary"}));
    let updated = store
        .update_provider(A, primary.id, |p| {
            p.tps = Some(50);
            p.health_status = HealthStatus::Healthy;
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(updated.tps, Some(50));
    assert_eq!(
        (
            updated.health_status,
            updated.failure_count,
            updated.last_health_check
        ),
        (HealthStatus::Degraded, 3, Some(42)),
        "health changes only through record_provider_health"
    );
    store.delete_provider(A, backup.id).await.unwrap();
    assert!(is_not_found(store.provider(A, backup.id)));
    assert!(matches!(
        store
            .create_provider(ProviderConfig {
                credentials: json!("not an object"),
                ..provider(A, "bad", 0, true)
            })
            .await,
        Err(StoreError::Invalid {
            field: "credentials",
            ..
        })
    ));
}

#[tokio::test]
async fn contact_phones_are_unique_per_organization() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let ali = store
        .create_contact(contact(A, "+923001234567", "Ali"))
        .await
        .unwrap();
    assert_eq!(
        conflict_id(
            store
                .create_contact(contact(A, "+923001234567", "Again"))
                .await
        ),
        ali.id
    );
    // The same phone in another organization is another contact.
    let theirs = store
        .create_contact(contact(B, "+923001234567", "Ali B"))
        .await
        .unwrap();
    assert_ne!(theirs.id, ali.id);
    assert_eq!(
        store
            .contact_by_phone(A, "+923001234567")
            .unwrap()
            .unwrap()
            .id,
        ali.id
    );
    assert_eq!(
        store
            .contact_by_phone(B, "+923001234567")
            .unwrap()
            .unwrap()
            .id,
        theirs.id
    );

    // Changing the phone to a taken one is a conflict; to a free one moves the index.
    let sara = store
        .create_contact(contact(A, "+923007654321", "Sara"))
        .await
        .unwrap();
    let taken = store
        .update_contact(A, sara.id, |c| {
            c.phone_number = "+923001234567".into();
            Ok(())
        })
        .await;
    assert_eq!(conflict_id(taken), ali.id);
    store
        .update_contact(A, sara.id, |c| {
            c.phone_number = "+923009999999".into();
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(store.contact_by_phone(A, "+923007654321").unwrap(), None);
    store
        .create_contact(contact(A, "+923007654321", "New"))
        .await
        .unwrap();
    assert!(matches!(
        store.create_contact(contact(A, "", "Nobody")).await,
        Err(StoreError::Invalid {
            field: "phoneNumber",
            ..
        })
    ));

    // Deleting frees the phone.
    store.delete_contact(A, ali.id).await.unwrap();
    assert_eq!(store.contact_by_phone(A, "+923001234567").unwrap(), None);
    store
        .create_contact(contact(A, "+923001234567", "Ali again"))
        .await
        .unwrap();
}

#[tokio::test]
async fn upsert_by_phone_creates_then_merges_and_never_opts_in() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let row = Contact {
        metadata: Some(json!({"grade": 5})),
        ..contact(A, "+923001111111", "Hina")
    };
    let created = store.upsert_contact_by_phone(row).await.unwrap();
    assert!(created.is_created());
    let id = created.contact().id;
    store.opt_out_contact(A, id).await.unwrap();
    let updated = store
        .upsert_contact_by_phone(Contact {
            email: Some("hina@example.com".into()),
            display_name: None,
            metadata: Some(json!({"section": "B"})),
            ..contact(A, "+923001111111", "")
        })
        .await
        .unwrap();
    assert!(!updated.is_created());
    let c = updated.contact();
    assert_eq!(c.id, id);
    assert_eq!(c.display_name.as_deref(), Some("Hina"));
    assert_eq!(c.email.as_deref(), Some("hina@example.com"));
    assert_eq!(c.metadata, Some(json!({"grade": 5, "section": "B"})));
    assert!(c.is_opted_out, "an import never opts a contact back in");
    // Another organization's upsert of the same phone creates its own.
    assert!(
        store
            .upsert_contact_by_phone(contact(B, "+923001111111", "Other"))
            .await
            .unwrap()
            .is_created()
    );
}

#[tokio::test]
async fn opt_out_and_in_keep_their_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let c = store
        .create_contact(contact(A, "+1555", "X"))
        .await
        .unwrap();
    let out = store.opt_out_contact(A, c.id).await.unwrap();
    let first = out.opted_out_at.unwrap();
    assert!(out.is_opted_out);
    let again = store.opt_out_contact(A, c.id).await.unwrap();
    assert_eq!(
        again.opted_out_at,
        Some(first),
        "a repeated STOP keeps the first time"
    );
    // A plain update cannot opt in.
    let edited = store
        .update_contact(A, c.id, |c| {
            c.is_opted_out = false;
            c.opted_out_at = None;
            Ok(())
        })
        .await
        .unwrap();
    assert!(edited.is_opted_out && edited.opted_out_at == Some(first));
    let back = store.opt_in_contact(A, c.id).await.unwrap();
    assert!(!back.is_opted_out);
    assert_eq!(back.opted_out_at, Some(first));
    assert!(back.opted_in_at.is_some());
    assert!(is_not_found(store.opt_out_contact(B, c.id).await));

    // By phone: a STOP from an unknown number is kept as an opted-out contact.
    let stranger = store.set_phone_opt_out(A, "+1777", true).await.unwrap();
    assert!(stranger.is_opted_out && stranger.opted_out_at.is_some());
    let same = store.set_phone_opt_out(A, "+1777", false).await.unwrap();
    assert_eq!(same.id, stranger.id);
    assert!(!same.is_opted_out);
}

#[tokio::test]
async fn contacts_search_filter_and_paginate_with_totals() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut ids = Vec::new();
    for i in 0..25 {
        let name = if i % 5 == 0 {
            format!("Ahmed {i}")
        } else {
            format!("Bilal {i}")
        };
        let c = store
            .create_contact(contact(A, &format!("+92300{i:07}"), &name))
            .await
            .unwrap();
        if i % 2 == 0 {
            store.opt_out_contact(A, c.id).await.unwrap();
        }
        ids.push(c.id);
    }
    store
        .create_contact(contact(B, "+923000000001", "Ahmed B"))
        .await
        .unwrap();

    let first = store
        .list_contacts(A, &ContactFilter::default(), page(0, 10))
        .unwrap();
    assert_eq!((first.total, first.items.len()), (25, 10));
    assert_eq!(first.items[0].id, ids[24], "newest first");
    let last = store
        .list_contacts(A, &ContactFilter::default(), page(20, 10))
        .unwrap();
    assert_eq!((last.total, last.items.len()), (25, 5));
    let beyond = store
        .list_contacts(A, &ContactFilter::default(), page(30, 10))
        .unwrap();
    assert_eq!((beyond.total, beyond.items.len()), (25, 0));
    let mut seen: Vec<u64> = Vec::new();
    for offset in (0..25).step_by(7) {
        seen.extend(
            store
                .list_contacts(A, &ContactFilter::default(), page(offset, 7))
                .unwrap()
                .items
                .iter()
                .map(|c| c.id),
        );
    }
    seen.reverse();
    assert_eq!(seen, ids, "pages are stable and cover everything once");

    let ahmed = ContactFilter {
        search: Some("ahmed".into()),
        ..ContactFilter::default()
    };
    let found = store.list_contacts(A, &ahmed, page(0, 2)).unwrap();
    assert_eq!((found.total, found.items.len()), (5, 2));
    let by_phone = ContactFilter {
        search: Some("0000012".into()),
        ..ContactFilter::default()
    };
    assert_eq!(store.list_contacts(A, &by_phone, all()).unwrap().total, 1);
    let opted_out = ContactFilter {
        opted_out: Some(true),
        ..ContactFilter::default()
    };
    assert_eq!(store.list_contacts(A, &opted_out, all()).unwrap().total, 13);
    let reachable_ahmeds = ContactFilter {
        opted_out: Some(false),
        ..ahmed.clone()
    };
    assert_eq!(
        store
            .list_contacts(A, &reachable_ahmeds, all())
            .unwrap()
            .total,
        2
    );
    assert_eq!(store.list_contacts(B, &ahmed, all()).unwrap().total, 1);
}

#[tokio::test]
async fn another_organization_cannot_touch_contacts_groups_templates_or_campaigns() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let c = store.create_contact(contact(A, "+1", "a")).await.unwrap();
    let g = store.create_group(group(A, "Parents")).await.unwrap();
    let t = store.create_template(template(A, "Fee")).await.unwrap();
    let camp = store
        .create_campaign(Campaign {
            organization_id: A,
            name: "Fees".into(),
            ..Campaign::default()
        })
        .await
        .unwrap();

    assert!(is_not_found(store.contact(B, c.id)));
    assert!(is_not_found(
        store.update_contact(B, c.id, |_| Ok(())).await
    ));
    assert!(is_not_found(store.delete_contact(B, c.id).await));
    assert!(is_not_found(store.contact_groups(B, c.id)));
    assert_eq!(store.contact_by_phone(B, "+1").unwrap(), None);
    assert!(is_not_found(store.group(B, g.id)));
    assert!(is_not_found(store.update_group(B, g.id, |_| Ok(())).await));
    assert!(is_not_found(store.delete_group(B, g.id).await));
    assert!(is_not_found(store.group_members(B, g.id, all())));
    assert!(is_not_found(
        store.add_group_members(B, g.id, vec![c.id]).await
    ));
    assert!(is_not_found(
        store.remove_group_members(B, g.id, vec![c.id]).await
    ));
    assert!(is_not_found(store.template(B, t.id)));
    assert!(is_not_found(
        store.update_template(B, t.id, |_| Ok(())).await
    ));
    assert!(is_not_found(store.delete_template(B, t.id).await));
    assert!(is_not_found(store.campaign(B, camp.id)));
    assert!(is_not_found(
        store.update_campaign(B, camp.id, |_| Ok(())).await
    ));
    assert!(is_not_found(
        store
            .add_campaign_stats(B, camp.id, CampaignStats::default())
            .await
    ));
    assert!(is_not_found(store.delete_campaign(B, camp.id).await));

    assert_eq!(
        store
            .list_contacts(B, &ContactFilter::default(), all())
            .unwrap()
            .total,
        0
    );
    assert_eq!(store.list_groups(B, all()).unwrap().total, 0);
    assert_eq!(store.list_templates(B, all()).unwrap().total, 0);
    assert_eq!(store.list_campaigns(B, None, all()).unwrap().total, 0);

    // Another organization's contact cannot join a group, and B's campaign cannot use A's
    // template or group.
    let theirs = store.create_group(group(B, "Parents")).await.unwrap();
    let change = store
        .add_group_members(B, theirs.id, vec![c.id])
        .await
        .unwrap();
    assert_eq!(change.unknown, vec![c.id]);
    assert_eq!(change.group.member_count, 0);
    for campaign in [
        Campaign {
            template_id: Some(t.id),
            ..Campaign::default()
        },
        Campaign {
            group_id: Some(g.id),
            ..Campaign::default()
        },
    ] {
        let result = store
            .create_campaign(Campaign {
                organization_id: B,
                name: "Steal".into(),
                ..campaign
            })
            .await;
        assert!(is_not_found(result));
    }
    // Records are untouched by all of that.
    assert_eq!(store.contact(A, c.id).unwrap(), c);
    assert_eq!(store.group(A, g.id).unwrap(), g);
}

#[tokio::test]
async fn group_and_template_names_are_unique_per_organization() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let g = store.create_group(group(A, "Grade 5")).await.unwrap();
    assert_eq!(
        conflict_id(store.create_group(group(A, " Grade 5 ")).await),
        g.id
    );
    store.create_group(group(B, "Grade 5")).await.unwrap();
    let g6 = store.create_group(group(A, "Grade 6")).await.unwrap();
    assert_eq!(
        conflict_id(
            store
                .update_group(A, g6.id, |g| {
                    g.name = "Grade 5".into();
                    Ok(())
                })
                .await
        ),
        g.id
    );
    store
        .update_group(A, g.id, |g| {
            g.name = "Grade 5 (2025)".into();
            Ok(())
        })
        .await
        .unwrap();
    store.create_group(group(A, "Grade 5")).await.unwrap();
    store.delete_group(A, g6.id).await.unwrap();
    store.create_group(group(A, "Grade 6")).await.unwrap();
    assert_eq!(store.list_groups(A, all()).unwrap().total, 3);

    let t = store
        .create_template(template(A, "Fee reminder"))
        .await
        .unwrap();
    assert_eq!(t.variables, vec!["name", "amount"]);
    assert_eq!(t.language, "en");
    assert_eq!(
        conflict_id(store.create_template(template(A, "Fee reminder")).await),
        t.id
    );
    store
        .create_template(template(B, "Fee reminder"))
        .await
        .unwrap();
    let t2 = store.create_template(template(A, "Other")).await.unwrap();
    assert_eq!(
        conflict_id(
            store
                .update_template(A, t2.id, |t| {
                    t.name = "Fee reminder".into();
                    Ok(())
                })
                .await
        ),
        t.id
    );
    let rewritten = store
        .update_template(A, t.id, |t| {
            t.body = "Hello {{student}}".into();
            t.variables = vec!["ignored".into()];
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(rewritten.variables, vec!["student"]);
    store.delete_template(A, t.id).await.unwrap();
    store
        .create_template(template(A, "Fee reminder"))
        .await
        .unwrap();
    assert_eq!(store.list_templates(A, page(0, 1)).unwrap().total, 2);
}

#[tokio::test]
async fn member_counts_stay_exact() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let g = store.create_group(group(A, "Parents")).await.unwrap();
    let mut contacts = Vec::new();
    for i in 0..5 {
        contacts.push(
            store
                .create_contact(contact(A, &format!("+1{i}"), "p"))
                .await
                .unwrap()
                .id,
        );
    }
    let [c0, c1, c2, c3, c4] = contacts[..] else {
        unreachable!()
    };

    let change = store
        .add_group_members(A, g.id, vec![c0, c1, c1, 9999])
        .await
        .unwrap();
    assert_eq!(change.changed, vec![c0, c1]);
    assert_eq!(change.unknown, vec![9999]);
    assert_eq!(change.group.member_count, 2);
    let change = store
        .add_group_members(A, g.id, vec![c1, c2])
        .await
        .unwrap();
    assert_eq!((change.changed, change.unchanged), (vec![c2], vec![c1]));
    assert_eq!(change.group.member_count, 3);

    let change = store
        .remove_group_members(A, g.id, vec![c2, c2, c3, 9999])
        .await
        .unwrap();
    assert_eq!(change.changed, vec![c2]);
    assert_eq!(change.unchanged, vec![c3]);
    assert_eq!(change.unknown, vec![9999]);
    assert_eq!(change.group.member_count, 2);
    assert_eq!(store.group(A, g.id).unwrap().member_count, 2);

    // Nothing changed: nothing written, the count stands.
    let change = store.remove_group_members(A, g.id, vec![c4]).await.unwrap();
    assert_eq!(change.group.member_count, 2);

    // Updates cannot set the count.
    let updated = store
        .update_group(A, g.id, |g| {
            g.member_count = 100;
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(updated.member_count, 2);

    // Deleting a member contact fixes every group it was in.
    let other = store.create_group(group(A, "Teachers")).await.unwrap();
    store
        .add_group_members(A, other.id, vec![c0, c3])
        .await
        .unwrap();
    assert_eq!(store.contact_groups(A, c0).unwrap().len(), 2);
    store.delete_contact(A, c0).await.unwrap();
    assert_eq!(store.group(A, g.id).unwrap().member_count, 1);
    assert_eq!(store.group(A, other.id).unwrap().member_count, 1);
    let members = store.group_members(A, g.id, all()).unwrap();
    assert_eq!(
        members.items.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![c1]
    );

    // Deleting a group removes its memberships; the contacts stay.
    store.delete_group(A, other.id).await.unwrap();
    assert!(store.contact_groups(A, c3).unwrap().is_empty());
    assert!(store.contact(A, c3).is_ok());
}

#[tokio::test]
async fn group_members_paginate_with_the_exact_total() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let g = store.create_group(group(A, "All")).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(
            store
                .create_contact(contact(A, &format!("+2{i}"), "m"))
                .await
                .unwrap()
                .id,
        );
    }
    store.add_group_members(A, g.id, ids.clone()).await.unwrap();
    let p = store.group_members(A, g.id, page(10, 5)).unwrap();
    assert_eq!((p.total, p.items.len()), (12, 2));
    let first = store.group_members(A, g.id, page(0, 3)).unwrap();
    assert_eq!(first.items[0].id, ids[11]);
}

#[tokio::test]
async fn campaigns_list_by_status_and_count_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let t = store.create_template(template(A, "T")).await.unwrap();
    let g = store.create_group(group(A, "G")).await.unwrap();
    let camp = store
        .create_campaign(Campaign {
            organization_id: A,
            name: "Term fees".into(),
            template_id: Some(t.id),
            group_id: Some(g.id),
            created_by: "admin@example.com".into(),
            ..Campaign::default()
        })
        .await
        .unwrap();
    store
        .create_campaign(Campaign {
            organization_id: A,
            name: "Draft".into(),
            ..Campaign::default()
        })
        .await
        .unwrap();
    store
        .update_campaign(A, camp.id, |c| {
            c.status = CampaignStatus::InProgress;
            Ok(())
        })
        .await
        .unwrap();
    let running = store
        .list_campaigns(A, Some(CampaignStatus::InProgress), all())
        .unwrap();
    assert_eq!(running.total, 1);
    assert_eq!(running.items[0].id, camp.id);
    assert_eq!(
        store
            .list_campaigns(A, Some(CampaignStatus::Draft), all())
            .unwrap()
            .total,
        1
    );
    assert_eq!(store.list_campaigns(A, None, all()).unwrap().total, 2);

    let mut tasks = Vec::new();
    for _ in 0..50 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .add_campaign_stats(
                    A,
                    camp.id,
                    CampaignStats {
                        sent: 2,
                        delivered: 1,
                        failed: 1,
                        rejected: 0,
                    },
                )
                .await
                .unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let counted = store.campaign(A, camp.id).unwrap();
    assert_eq!(
        (
            counted.sent_count,
            counted.delivered_count,
            counted.failed_count,
            counted.rejected_count
        ),
        (100, 50, 50, 0)
    );
    let edited = store
        .update_campaign(A, camp.id, |c| {
            c.sent_count = 0;
            c.status = CampaignStatus::Completed;
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(
        (edited.sent_count, edited.status),
        (100, CampaignStatus::Completed)
    );
    store.delete_campaign(A, camp.id).await.unwrap();
    assert!(is_not_found(store.campaign(A, camp.id)));
}

#[tokio::test]
async fn webhooks_and_their_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let hook = |org: u64, active: bool| Webhook {
        organization_id: org,
        url: "https://example.com/hook".into(),
        secret: "s3cret".into(),
        events: vec!["message.delivered".into()],
        is_active: active,
        ..Webhook::default()
    };
    let w = store.create_webhook(hook(A, true)).await.unwrap();
    let off = store.create_webhook(hook(A, false)).await.unwrap();
    let theirs = store.create_webhook(hook(B, true)).await.unwrap();
    assert!(matches!(
        store
            .create_webhook(Webhook {
                url: "ftp://x".into(),
                ..hook(A, true)
            })
            .await,
        Err(StoreError::Invalid { field: "url", .. })
    ));
    assert_eq!(
        store
            .active_webhooks(A)
            .unwrap()
            .iter()
            .map(|w| w.id)
            .collect::<Vec<_>>(),
        vec![w.id]
    );
    assert_eq!(store.list_webhooks(A, all()).unwrap().total, 2);
    assert_eq!(store.webhook(A, w.id).unwrap().secret, "s3cret");

    let delivery = |org: u64, webhook: u64, success: bool| WebhookDelivery {
        organization_id: org,
        webhook_id: webhook,
        event_type: "message.delivered".into(),
        payload: json!({"id": 1}),
        http_status: Some(if success { 200 } else { 500 }),
        response_body: Some("x".repeat(5000)),
        attempt: 1,
        success,
        ..WebhookDelivery::default()
    };
    let mut ids = Vec::new();
    for success in [false, false, true, false] {
        ids.push(
            store
                .record_webhook_delivery(delivery(A, w.id, success))
                .await
                .unwrap()
                .id,
        );
    }
    let after = store.webhook(A, w.id).unwrap();
    assert_eq!(after.consecutive_fails, 1);
    assert!(after.last_triggered_at.is_some());
    assert_eq!(
        after.secret, "s3cret",
        "the delivery kept the sealed secret"
    );
    let log = store.webhook_deliveries(A, w.id, page(0, 3)).unwrap();
    assert_eq!(log.total, 4);
    assert_eq!(
        log.items.iter().map(|d| d.id).collect::<Vec<_>>(),
        vec![ids[3], ids[2], ids[1]]
    );
    assert_eq!(log.items[0].response_body.as_ref().unwrap().len(), 1024);

    // A stream of successes appends to the log without rewriting the webhook each time: its
    // `lastTriggeredAt` is kept to the second (one key per delivery, the entry; ids are
    // reserved in blocks, so the counter rarely rides along; the record only when the second
    // turns over during the burst).
    store
        .record_webhook_delivery(delivery(A, w.id, true))
        .await
        .unwrap();
    let triggered = store.webhook(A, w.id).unwrap().last_triggered_at.unwrap();
    let before = store.keys_written();
    for _ in 0..10 {
        store
            .record_webhook_delivery(delivery(A, w.id, true))
            .await
            .unwrap();
    }
    let written = store.keys_written() - before;
    let now = store.webhook(A, w.id).unwrap();
    if now.last_triggered_at == Some(triggered) {
        assert!(
            written <= 11,
            "{written} keys for ten successes, webhook unchanged"
        );
    } else {
        assert!(written <= 12, "{written} keys for ten successes");
    }
    assert_eq!(now.consecutive_fails, 0);
    // A failure always moves the streak, at once.
    store
        .record_webhook_delivery(delivery(A, w.id, false))
        .await
        .unwrap();
    assert_eq!(store.webhook(A, w.id).unwrap().consecutive_fails, 1);
    assert_eq!(store.webhook(A, w.id).unwrap().secret, "s3cret");

    // Isolation.
    assert!(is_not_found(store.webhook(B, w.id)));
    assert!(is_not_found(
        store.update_webhook(B, w.id, |_| Ok(())).await
    ));
    assert!(is_not_found(store.delete_webhook(B, w.id).await));
    assert!(is_not_found(store.webhook_deliveries(B, w.id, all())));
    assert!(is_not_found(
        store.record_webhook_delivery(delivery(B, w.id, true)).await
    ));
    assert!(is_not_found(
        store
            .record_webhook_delivery(delivery(A, theirs.id, true))
            .await
    ));
    assert_eq!(
        store
            .active_webhooks(B)
            .unwrap()
            .iter()
            .map(|w| w.id)
            .collect::<Vec<_>>(),
        vec![theirs.id]
    );

    let updated = store
        .update_webhook(A, w.id, |w| {
            w.secret = "rotated".into();
            w.consecutive_fails = 0;
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(
        (updated.secret.as_str(), updated.consecutive_fails),
        ("rotated", 1)
    );
    store.delete_webhook(A, w.id).await.unwrap();
    assert!(is_not_found(store.webhook_deliveries(A, w.id, all())));
    store.delete_webhook(A, off.id).await.unwrap();
    assert_eq!(store.list_webhooks(A, all()).unwrap().total, 0);
}

#[tokio::test]
async fn records_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (c, g) = {
        let store = open(dir.path());
        let c = store.create_contact(contact(A, "+1", "a")).await.unwrap();
        let g = store.create_group(group(A, "G")).await.unwrap();
        let g = store
            .add_group_members(A, g.id, vec![c.id])
            .await
            .unwrap()
            .group;
        store.flush().await.unwrap();
        (c, g)
    };
    let store = open(dir.path());
    assert_eq!(store.contact(A, c.id).unwrap(), c);
    assert_eq!(store.group(A, g.id).unwrap(), g);
    assert_eq!(
        conflict_id(store.create_contact(contact(A, "+1", "b")).await),
        c.id
    );
}

#[derive(Debug, Clone)]
enum Op {
    Add(usize, Vec<usize>),
    Remove(usize, Vec<usize>),
    DeleteContact(usize),
    DeleteGroup(usize),
}

/// Contacts 0..6 are organization A's; 6 and 7 are B's, so they must never join A's groups.
const CONTACTS: usize = 8;
const GROUPS: usize = 3;

fn op() -> impl Strategy<Value = Op> {
    let ids = prop::collection::vec(0..CONTACTS, 0..6);
    prop_oneof![
        4 => (0..GROUPS, ids.clone()).prop_map(|(g, c)| Op::Add(g, c)),
        3 => (0..GROUPS, ids).prop_map(|(g, c)| Op::Remove(g, c)),
        1 => (0..CONTACTS).prop_map(Op::DeleteContact),
        1 => (0..GROUPS).prop_map(Op::DeleteGroup),
    ]
}

/// Applies random membership operations to the store and to a model, comparing every group's
/// count and members, and every contact's groups, after each one.
async fn membership_matches_model(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut contacts = Vec::new();
    for i in 0..CONTACTS {
        let org = if i < 6 { A } else { B };
        contacts.push(
            store
                .create_contact(contact(org, &format!("+3{i}"), "c"))
                .await
                .unwrap()
                .id,
        );
    }
    let mut groups = Vec::new();
    for i in 0..GROUPS {
        groups.push(
            store
                .create_group(group(A, &format!("g{i}")))
                .await
                .unwrap()
                .id,
        );
    }
    let mut live_contacts: BTreeSet<usize> = (0..6).collect();
    let mut model: BTreeMap<usize, BTreeSet<usize>> =
        (0..GROUPS).map(|g| (g, BTreeSet::new())).collect();

    for op in ops {
        match op {
            Op::Add(g, cs) | Op::Remove(g, cs) if !model.contains_key(&g) => {
                let ids = cs.iter().map(|&c| contacts[c]).collect();
                assert!(is_not_found(
                    store.add_group_members(A, groups[g], ids).await
                ));
            }
            Op::Add(g, cs) => {
                let ids = cs.iter().map(|&c| contacts[c]).collect();
                let change = store.add_group_members(A, groups[g], ids).await.unwrap();
                let members = model.get_mut(&g).unwrap();
                let mut expect_changed = Vec::new();
                for c in cs {
                    if live_contacts.contains(&c) && members.insert(c) {
                        expect_changed.push(contacts[c]);
                    }
                }
                assert_eq!(change.changed, expect_changed);
                assert_eq!(change.group.member_count, members.len() as u64);
            }
            Op::Remove(g, cs) => {
                let ids = cs.iter().map(|&c| contacts[c]).collect();
                let change = store.remove_group_members(A, groups[g], ids).await.unwrap();
                let members = model.get_mut(&g).unwrap();
                let mut expect_changed = Vec::new();
                for c in cs {
                    if members.remove(&c) {
                        expect_changed.push(contacts[c]);
                    }
                }
                assert_eq!(change.changed, expect_changed);
                assert_eq!(change.group.member_count, members.len() as u64);
            }
            Op::DeleteContact(c) => {
                let deleted = store.delete_contact(A, contacts[c]).await;
                if live_contacts.remove(&c) {
                    deleted.unwrap();
                    for members in model.values_mut() {
                        members.remove(&c);
                    }
                } else {
                    assert!(is_not_found(deleted));
                }
            }
            Op::DeleteGroup(g) => {
                let deleted = store.delete_group(A, groups[g]).await;
                if model.remove(&g).is_some() {
                    deleted.unwrap();
                } else {
                    assert!(is_not_found(deleted));
                }
            }
        }
        for (&g, members) in &model {
            let stored = store.group(A, groups[g]).unwrap();
            assert_eq!(stored.member_count, members.len() as u64);
            let listed = store.group_members(A, groups[g], all()).unwrap();
            let mut listed: Vec<u64> = listed.items.iter().map(|c| c.id).collect();
            listed.sort_unstable();
            let expected: Vec<u64> = members.iter().map(|&c| contacts[c]).collect();
            assert_eq!(listed, expected);
        }
        for &c in &live_contacts {
            let mut in_groups: Vec<u64> = store
                .contact_groups(A, contacts[c])
                .unwrap()
                .iter()
                .map(|g| g.id)
                .collect();
            in_groups.sort_unstable();
            let expected: Vec<u64> = model
                .iter()
                .filter(|(_, m)| m.contains(&c))
                .map(|(&g, _)| groups[g])
                .collect();
            assert_eq!(in_groups, expected);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn member_counts_match_a_model(ops in prop::collection::vec(op(), 1..30)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(membership_matches_model(ops));
    }
}

#[tokio::test]
async fn erasing_a_contact_anonymises_its_messages_and_deletes_it() {
    use sairex_store::model::{Contact, Message};
    let dir = tempfile::tempdir().unwrap();
    let store = sairex_store::Store::open(sairex_store::StoreOptions::new(dir.path())).unwrap();
    let contact = store
        .create_contact(Contact {
            organization_id: 1,
            phone_number: "+923001234567".into(),
            ..Contact::default()
        })
        .await
        .unwrap();
    let group = store
        .create_group(sairex_store::model::Group {
            organization_id: 1,
            name: "Parents".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    store
        .add_group_members(1, group.id, vec![contact.id])
        .await
        .unwrap();
    let message = store
        .enqueue(Message {
            organization_id: 1,
            to_number: contact.phone_number.clone(),
            body: "Fee due".into(),
            ..Message::default()
        })
        .await
        .unwrap()
        .message()
        .id;

    let erased = store.erase_contact(1, contact.id, false).await.unwrap();
    assert_eq!(erased.messages_anonymised, 1);
    assert!(store.contact(1, contact.id).is_err());
    assert!(
        store
            .contact_by_phone(1, "+923001234567")
            .unwrap()
            .is_none()
    );
    assert_eq!(store.group(1, group.id).unwrap().member_count, 0);
    let m = store.message(1, message).unwrap();
    assert!(m.to_number.starts_with("erased:"));
    assert_eq!(
        m.body, "Fee due",
        "the body is kept unless asked to clear it"
    );
    assert!(
        store.erase_contact(2, contact.id, true).await.is_err(),
        "another tenant cannot erase it"
    );
}

#[tokio::test]
async fn contacts_export_lazily_as_csv_rows_of_one_tenant() {
    use sairex_store::model::Contact;
    let dir = tempfile::tempdir().unwrap();
    let store = sairex_store::Store::open(sairex_store::StoreOptions::new(dir.path())).unwrap();
    for (org, phone) in [(1, "+1"), (2, "+2"), (1, "+3")] {
        store
            .create_contact(Contact {
                organization_id: org,
                phone_number: phone.into(),
                display_name: Some("A, B".into()),
                ..Contact::default()
            })
            .await
            .unwrap();
    }
    let rows: Vec<Vec<String>> = store
        .export_contacts(1)
        .map(|c| c.unwrap().to_csv_row())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].len(), sairex_store::CONTACT_CSV_HEADER.len());
    assert_eq!((rows[0][1].as_str(), rows[1][1].as_str()), ("+1", "+3"));
    assert_eq!(rows[0][3], "A, B");
}

/// The whole-store walks used by jobs go past one page (1,000) and include the system's
/// providers (organization 0).
#[tokio::test]
async fn every_organization_and_every_provider_past_one_page() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut ids = BTreeSet::new();
    for i in 0..1_005 {
        let org = store
            .create_organization(Organization {
                name: format!("org {i}"),
                ..Organization::default()
            })
            .await
            .unwrap();
        ids.insert(org.id);
    }
    let listed: BTreeSet<u64> = store
        .all_organizations()
        .unwrap()
        .into_iter()
        .map(|o| o.id)
        .collect();
    assert_eq!(listed, ids);

    let last = *ids.iter().next_back().unwrap();
    let mut wanted = BTreeSet::new();
    for org in [0, *ids.iter().next().unwrap(), last] {
        let p = store
            .create_provider(ProviderConfig {
                organization_id: org,
                display_name: format!("provider of {org}"),
                credentials: json!({"password": "x"}),
                ..ProviderConfig::default()
            })
            .await
            .unwrap();
        wanted.insert((org, p.id));
    }
    let found: BTreeSet<(u64, u64)> = store
        .all_providers()
        .unwrap()
        .into_iter()
        .map(|p| (p.organization_id, p.id))
        .collect();
    assert_eq!(found, wanted);
}

fn variant(name: &str, percent: u8, body: Option<&str>, template: Option<u64>) -> CampaignVariant {
    CampaignVariant {
        name: name.into(),
        percent,
        message_body: body.map(str::to_owned),
        template_id: template,
    }
}

/// A/B variants: the store refuses shares that do not sum to 100, empty or doubled sources,
/// another tenant's template, and variants beside a campaign-wide body; it names unnamed
/// variants; and it counts each variant's messages by status from their own index, exact as
/// statuses move, adding up to the campaign's counts.
#[tokio::test]
async fn campaign_variants_are_validated_and_counted_per_variant() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let t = store.create_template(template(A, "T")).await.unwrap();
    let theirs = store.create_template(template(B, "T")).await.unwrap();
    let with = |variants: Vec<CampaignVariant>| Campaign {
        organization_id: A,
        name: "AB".into(),
        variants,
        ..Campaign::default()
    };
    let refused = [
        vec![
            variant("A", 50, Some("x"), None),
            variant("B", 40, Some("y"), None),
        ],
        vec![variant("A", 100, Some("x"), None)],
        vec![
            variant("A", 0, Some("x"), None),
            variant("B", 100, Some("y"), None),
        ],
        vec![
            variant("A", 50, Some("  "), None),
            variant("B", 50, Some("y"), None),
        ],
        vec![
            variant("A", 50, None, None),
            variant("B", 50, Some("y"), None),
        ],
        vec![
            variant("A", 50, Some("x"), Some(t.id)),
            variant("B", 50, Some("y"), None),
        ],
        vec![
            variant("A", 50, Some("x"), None),
            variant("a", 50, Some("y"), None),
        ],
        (0..11).map(|_| variant("", 9, Some("x"), None)).collect(),
    ];
    for variants in refused {
        let result = store.create_campaign(with(variants.clone())).await;
        assert!(
            matches!(
                result,
                Err(StoreError::Invalid {
                    field: "variants",
                    ..
                })
            ),
            "{variants:?}: {result:?}"
        );
    }
    let beside_body = Campaign {
        message_body: Some("hello".into()),
        ..with(vec![
            variant("A", 50, Some("x"), None),
            variant("B", 50, Some("y"), None),
        ])
    };
    assert!(matches!(
        store.create_campaign(beside_body).await,
        Err(StoreError::Invalid {
            field: "variants",
            ..
        })
    ));
    assert!(is_not_found(
        store
            .create_campaign(with(vec![
                variant("A", 50, Some("x"), None),
                variant("B", 50, None, Some(theirs.id)),
            ]))
            .await
    ));

    let camp = store
        .create_campaign(with(vec![
            variant("", 30, Some("Hi {{name}}"), None),
            variant("", 70, None, Some(t.id)),
        ]))
        .await
        .unwrap();
    let names: Vec<&str> = camp.variants.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["A", "B"]);

    // Variant 0: 3 messages, variant 1: 5; then statuses move.
    let mut ids = Vec::new();
    for i in 0..8u8 {
        let m = store
            .enqueue(Message {
                organization_id: A,
                to_number: format!("+92300000000{i}"),
                body: "x".into(),
                campaign_id: Some(camp.id),
                campaign_variant: Some(u8::from(i >= 3)),
                ..Message::default()
            })
            .await
            .unwrap()
            .message()
            .clone();
        ids.push(m.id);
    }
    let counts = store.campaign_variant_counts(A, camp.id, 2).unwrap();
    assert_eq!((counts[0].queued, counts[1].queued), (3, 5));
    for (i, status) in [
        (0, MessageStatus::Delivered),
        (1, MessageStatus::Failed),
        (3, MessageStatus::Delivered),
        (4, MessageStatus::Delivered),
        (5, MessageStatus::Rejected),
        (6, MessageStatus::Expired),
    ] {
        store.finalize(A, ids[i], status, None, None).await.unwrap();
    }
    let counts = store.campaign_variant_counts(A, camp.id, 2).unwrap();
    let a = counts[0];
    let b = counts[1];
    assert_eq!(
        (a.total, a.queued, a.delivered, a.failed, a.rejected),
        (3, 1, 1, 1, 0)
    );
    assert_eq!(
        (b.total, b.queued, b.delivered, b.rejected, b.expired),
        (5, 1, 2, 1, 1)
    );
    assert_eq!((a.handed_over(), b.handed_over()), (2, 3));
    assert_eq!(b.failed_or_expired(), 1);
    assert!((b.delivery_rate() - 2.0 / 3.0).abs() < 1e-9);
    let whole = store.campaign_counts(A, camp.id).unwrap();
    assert_eq!(whole.total, a.total + b.total);
    assert_eq!(whole.delivered, a.delivered + b.delivered);
    assert_eq!(whole.handed_over(), a.handed_over() + b.handed_over());
    // Another tenant counts nothing of it.
    assert_eq!(
        store.campaign_variant_counts(B, camp.id, 2).unwrap()[0].total,
        0
    );
    let report = store.check_consistency().unwrap();
    assert!(report.is_consistent(), "{report}");
}

/// Regression (campaign e2e under load): counts read while receipts move messages from
/// SUBMITTED to DELIVERED met some messages in both status ranges: `sent` was 10,007 of 10,000.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_counts_taken_while_statuses_change_count_every_message_once() {
    const N: u64 = 600;
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let camp = store
        .create_campaign(Campaign {
            organization_id: A,
            name: "Live".into(),
            message_body: Some("hi".into()),
            ..Campaign::default()
        })
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..N {
        let m = store
            .enqueue(Message {
                organization_id: A,
                to_number: format!("+9230{i:08}"),
                body: "x".into(),
                campaign_id: Some(camp.id),
                ..Message::default()
            })
            .await
            .unwrap();
        ids.push(m.message().id);
    }
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for id in ids {
                store
                    .finalize(A, id, MessageStatus::Delivered, None, None)
                    .await
                    .unwrap();
            }
        })
    };
    let mut scans = 0;
    while !writer.is_finished() {
        let counts = store.campaign_counts(A, camp.id).unwrap();
        assert_eq!(counts.total, N, "scan {scans}: {counts:?}");
        assert_eq!(
            counts.queued + counts.delivered,
            N,
            "scan {scans}: {counts:?}"
        );
        scans += 1;
        tokio::task::yield_now().await;
    }
    writer.await.unwrap();
    assert!(scans > 10, "the scans overlapped the writes: {scans}");
    assert_eq!(store.campaign_counts(A, camp.id).unwrap().delivered, N);
}
