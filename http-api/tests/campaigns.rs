//! Campaigns over real HTTP on loopback with a real store and the engine's campaign runner
//! (the engine's dispatcher replaced by draining the queue in the test): lifecycle, pause and
//! resume and a runner restart that neither skip nor duplicate a recipient, opt-outs,
//! duplicates, missing variables, exact stats, quiet hours, CSV audiences, send-bulk, DLT at
//! start and again in the runner, A/B variants with stats per variant.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{ADMIN_TOKEN, Api, Reply};
use reqwest::StatusCode;
use sairex_engine::campaigns::{CampaignRunner, CampaignRunnerHandle, CampaignSink, RunnerConfig};
use sairex_store::model::{CampaignStatus, Id, Message, MessageStatus};
use sairex_store::{MessageFilter, PageRequest, Store};
use serde_json::{Value, json};
use tokio::time::Instant;

#[derive(Default)]
struct Sink {
    nudges: AtomicU64,
}

impl CampaignSink for Sink {
    fn nudge(&self) {
        self.nudges.fetch_add(1, Ordering::SeqCst);
    }
}

/// The campaign's QUEUED events in the outbox: what webhooks and the event stream announce.
fn queued_events(store: &Store, org: Id, campaign: Id) -> usize {
    store
        .outbox_after(org, 0, 100_000)
        .unwrap()
        .iter()
        .filter(|e| e.event_type == "QUEUED" && e.message.campaign_id == Some(campaign))
        .count()
}

/// A `scheduledAt` far ahead but within the year the API accepts.
fn in_300_days() -> String {
    humantime::format_rfc3339(std::time::SystemTime::now() + Duration::from_secs(300 * 24 * 3600))
        .to_string()
}

fn runner(store: &Store, sink: &Arc<Sink>) -> CampaignRunnerHandle {
    CampaignRunner::start(
        store.clone(),
        sink.clone(),
        RunnerConfig {
            poll_interval: Duration::from_millis(20),
            chunk: 25,
            queue_ahead: 60,
            stats_every: Duration::from_millis(50),
        },
    )
}

/// Every message of the campaign (all pages).
fn messages(store: &Store, org: Id, campaign: Id) -> Vec<Message> {
    let filter = MessageFilter {
        campaign_id: Some(campaign),
        ..MessageFilter::default()
    };
    let mut out = Vec::new();
    loop {
        let page = store
            .list_messages(
                org,
                &filter,
                PageRequest {
                    offset: out.len() as u64,
                    limit: 1000,
                },
            )
            .unwrap();
        let n = page.items.len();
        out.extend(page.items);
        if n == 0 || out.len() as u64 >= page.total {
            return out;
        }
    }
}

/// What the dispatcher and receipts would do: every queued message of the campaign ends
/// DELIVERED.
async fn deliver_all(store: &Store, org: Id, campaign: Id) -> usize {
    let mut n = 0;
    for m in messages(store, org, campaign) {
        if m.status == MessageStatus::Queued {
            store
                .finalize(org, m.id, MessageStatus::Delivered, None, None)
                .await
                .unwrap();
            n += 1;
        }
    }
    n
}

/// What the dispatcher and receipts would do, with every outcome: each queued message of the
/// campaign ends FAILED, REJECTED or DELIVERED by its id.
async fn settle_mixed(store: &Store, org: Id, campaign: Id) {
    for m in messages(store, org, campaign) {
        if m.status == MessageStatus::Queued {
            let status = match m.id % 5 {
                0 => MessageStatus::Failed,
                1 => MessageStatus::Rejected,
                _ => MessageStatus::Delivered,
            };
            store.finalize(org, m.id, status, None, None).await.unwrap();
        }
    }
}

async fn campaign(api: &Api, key: &str, id: Id) -> Value {
    api.get(&format!("/api/sms/campaigns/{id}"), key)
        .await
        .data()
        .clone()
}

async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn import(api: &Api, key: &str, query: &str, csv: String) -> Reply {
    let response = api
        .client
        .post(format!("{}{query}", api.base))
        .bearer_auth(key)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let json = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    Reply {
        status,
        headers,
        json,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_campaign_pauses_restarts_and_resumes_without_skips_or_duplicates() {
    let api = Api::start().await;
    let (org, key) = api.org("school").await;
    let group = api
        .post("/api/sms/groups", &key, json!({ "name": "All" }))
        .await;
    let gid = group.data()["id"].as_u64().unwrap();
    let mut csv = String::from("phone,name\n");
    for i in 0..300 {
        csv.push_str(&format!("+92300{i:07},Student {i}\n"));
    }
    let report = import(
        &api,
        &key,
        &format!("/api/sms/contacts/import?groupId={gid}"),
        csv,
    )
    .await;
    assert_eq!(report.data()["created"], 300, "{:?}", report.json);
    let mut opted_out = HashSet::new();
    for i in (0..300).step_by(30) {
        let phone = format!("+92300{i:07}");
        let c = api.store.contact_by_phone(org, &phone).unwrap().unwrap();
        api.post(
            &format!("/api/sms/contacts/{}/opt-out", c.id),
            &key,
            json!({}),
        )
        .await;
        opted_out.insert(phone);
    }
    let t = api
        .post(
            "/api/sms/templates",
            &key,
            json!({ "name": "fee", "body": "Dear {{name}}, fee due" }),
        )
        .await;
    let tid = t.data()["id"].as_u64().unwrap();
    let created = api
        .post(
            "/api/sms/campaigns",
            &key,
            json!({ "name": "Fees", "templateId": tid, "groupId": gid, "from": "SCHOOL" }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.json);
    let cid = created.data()["id"].as_u64().unwrap();
    assert_eq!(created.data()["status"], "DRAFT");
    assert_eq!(created.data()["totalRecipients"], 300);

    let sink = Arc::new(Sink::default());
    let first = runner(&api.store, &sink);
    let started = api
        .post(&format!("/api/sms/campaigns/{cid}/start"), &key, json!({}))
        .await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{:?}", started.json);
    assert_eq!(started.data()["status"], "IN_PROGRESS");

    // Nothing drains the queue yet: the runner stops at its queue-ahead bound.
    wait_for("the first chunks", async || {
        messages(&api.store, org, cid).len() >= 60
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let ahead = messages(&api.store, org, cid).len();
    assert!((60..=85).contains(&ahead), "{ahead} messages queued ahead");

    let paused = api
        .post(&format!("/api/sms/campaigns/{cid}/pause"), &key, json!({}))
        .await;
    assert_eq!(paused.data()["status"], "PAUSED");
    deliver_all(&api.store, org, cid).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let at_pause = messages(&api.store, org, cid).len();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        messages(&api.store, org, cid).len(),
        at_pause,
        "expanded while paused"
    );

    // A restart of the runner: the new one goes on from the stored cursor.
    first.shutdown().await;
    let second = runner(&api.store, &sink);
    let resumed = api
        .post(&format!("/api/sms/campaigns/{cid}/resume"), &key, json!({}))
        .await;
    assert_eq!(
        resumed.data()["status"],
        "IN_PROGRESS",
        "{:?}",
        resumed.json
    );
    wait_for("completion", async || {
        deliver_all(&api.store, org, cid).await;
        campaign(&api, &key, cid).await["status"] == "COMPLETED"
    })
    .await;
    deliver_all(&api.store, org, cid).await;

    let all = messages(&api.store, org, cid);
    let phones: HashSet<&str> = all.iter().map(|m| m.to_number.as_str()).collect();
    assert_eq!(all.len(), 290, "every reachable member once");
    assert_eq!(phones.len(), 290, "no duplicate");
    assert!(phones.iter().all(|p| !opted_out.contains(*p)));
    assert!(
        all.iter()
            .all(|m| m.priority.0 == 10 && m.from_number == "SCHOOL")
    );
    let m = all.iter().find(|m| m.to_number == "+923000000007").unwrap();
    assert_eq!(m.body, "Dear Student 7, fee due");
    assert_eq!(queued_events(&api.store, org, cid), 290);
    assert!(sink.nudges.load(Ordering::SeqCst) > 0);

    let stats = api
        .get(&format!("/api/sms/campaigns/{cid}/stats"), &key)
        .await;
    let s = stats.data();
    assert_eq!(s["totalRecipients"], 300, "{s}");
    assert_eq!(s["delivered"], 290);
    assert_eq!(s["sent"], 290);
    assert_eq!(s["failed"], 0);
    assert_eq!(s["skippedOptedOut"], 10);
    assert_eq!(s["expanded"], true);
    assert_eq!(s["progress"], 1.0);
    // The record's counters catch up with the index.
    wait_for("synced counters", async || {
        campaign(&api, &key, cid).await["deliveredCount"] == 290
    })
    .await;
    assert_eq!(campaign(&api, &key, cid).await["sentCount"], 290);
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_recipients_dedup_defaults_and_a_lost_cursor_never_resends() {
    let api = Api::start().await;
    let (org, key) = api.org("school").await;
    let created = api
        .post(
            "/api/sms/campaigns",
            &key,
            json!({ "name": "Codes", "messageBody": "Hi {{name}}, code {{code|none}}",
                    "recipients": [
                        { "to": "03001234567", "variables": { "name": "Ali", "code": "X1" } },
                        { "to": "+923001234567", "variables": { "name": "Ali again" } },
                        { "to": "03009876543", "variables": { "code": "Y2" } },
                        { "to": "03005555555", "variables": { "name": "Sara" } },
                        { "to": "nope" }
                    ] }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.json);
    let d = created.data();
    assert_eq!(d["recipientsAdded"], 3);
    assert_eq!(d["duplicates"], 1);
    assert_eq!(d["recipientErrors"][0]["index"], 4);
    assert_eq!(d["totalRecipients"], 3);
    let cid = d["id"].as_u64().unwrap();

    let sink = Arc::new(Sink::default());
    let run = runner(&api.store, &sink);
    // send-bulk with a saved campaign starts it, but not while a recipient lacks {{name}}.
    let bulk = api
        .post("/api/sms/send-bulk", &key, json!({ "campaignId": cid }))
        .await;
    assert_eq!(bulk.code(), "MISSING_VARIABLE", "{:?}", bulk.json);
    assert!(
        bulk.json["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("1 of 3 recipients")
    );
    // Started anyway (as if the variable went missing after the start): the runner skips
    // that recipient and counts it.
    api.store
        .update_campaign(org, cid, |c| {
            c.status = CampaignStatus::InProgress;
            Ok(())
        })
        .await
        .unwrap();
    run.wake();
    wait_for("completion", async || {
        campaign(&api, &key, cid).await["status"] == "COMPLETED"
    })
    .await;
    let all = messages(&api.store, org, cid);
    let mut bodies: Vec<&str> = all.iter().map(|m| m.body.as_str()).collect();
    bodies.sort_unstable();
    assert_eq!(bodies, vec!["Hi Ali, code X1", "Hi Sara, code none"]);
    let stats = api
        .get(&format!("/api/sms/campaigns/{cid}/stats"), &key)
        .await;
    assert_eq!(stats.data()["skippedInvalid"], 1, "{:?}", stats.json);
    assert_eq!(stats.data()["queued"], 2);

    // A crash after the enqueue but before the cursor was stored: the runner reads the same
    // recipients again, and the store recognises every message it already has.
    api.store
        .update_campaign(org, cid, |c| {
            c.status = CampaignStatus::InProgress;
            c.extra = Some(json!({}));
            Ok(())
        })
        .await
        .unwrap();
    wait_for("completion again", async || {
        campaign(&api, &key, cid).await["status"] == "COMPLETED"
    })
    .await;
    assert_eq!(messages(&api.store, org, cid).len(), 2);
    assert_eq!(queued_events(&api.store, org, cid), 2, "announced once");
    run.shutdown().await;
}

#[tokio::test]
async fn campaign_errors_states_and_tenancy() {
    let api = Api::start().await;
    let (_, key) = api.org("school").await;
    let empty = api
        .post(
            "/api/sms/campaigns",
            &key,
            json!({ "name": "Empty", "body": "Hi" }),
        )
        .await;
    let eid = empty.data()["id"].as_u64().unwrap();
    let start = api
        .post(&format!("/api/sms/campaigns/{eid}/start"), &key, json!({}))
        .await;
    assert_eq!(start.status, StatusCode::BAD_REQUEST);
    assert!(
        start.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("audience")
    );
    let nobody = api
        .post(
            "/api/sms/campaigns",
            &key,
            json!({ "name": "No body", "recipients": [{ "to": "03001234567" }] }),
        )
        .await;
    let nid = nobody.data()["id"].as_u64().unwrap();
    let start = api
        .post(&format!("/api/sms/campaigns/{nid}/start"), &key, json!({}))
        .await;
    assert_eq!(start.status, StatusCode::BAD_REQUEST);
    let pause = api
        .post(&format!("/api/sms/campaigns/{nid}/pause"), &key, json!({}))
        .await;
    assert_eq!(pause.status, StatusCode::CONFLICT);
    assert_eq!(pause.code(), "INVALID_STATE");
    let missing = api
        .post(
            "/api/sms/campaigns",
            &key,
            json!({ "name": "x", "groupId": 999_999 }),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let unnamed = api
        .post("/api/sms/campaigns", &key, json!({ "body": "x" }))
        .await;
    assert_eq!(unnamed.status, StatusCode::BAD_REQUEST);
    let when = api
        .post(
            "/api/sms/campaigns",
            &key,
            json!({ "name": "x", "scheduledAt": "tomorrow" }),
        )
        .await;
    assert_eq!(when.status, StatusCode::BAD_REQUEST);

    // Scheduled for later: SCHEDULED, changeable, and cancellable; not startable twice.
    let later = api
        .post(
            "/api/sms/campaigns",
            &key,
            json!({ "name": "Later", "body": "Hello", "scheduledAt": in_300_days(),
                    "recipients": [{ "to": "03001234567" }], "start": true }),
        )
        .await;
    assert_eq!(later.status, StatusCode::CREATED, "{:?}", later.json);
    assert_eq!(later.data()["status"], "SCHEDULED");
    let lid = later.data()["id"].as_u64().unwrap();
    let again = api
        .post(&format!("/api/sms/campaigns/{lid}/start"), &key, json!({}))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let renamed = api
        .put(
            &format!("/api/sms/campaigns/{lid}"),
            &key,
            json!({ "name": "Later still" }),
        )
        .await;
    assert_eq!(renamed.data()["name"], "Later still");
    let (_, other) = api.org("other").await;
    for path in ["", "/stats"] {
        assert_eq!(
            api.get(&format!("/api/sms/campaigns/{lid}{path}"), &other)
                .await
                .status,
            StatusCode::NOT_FOUND
        );
    }
    assert_eq!(
        api.post(
            &format!("/api/sms/campaigns/{lid}/cancel"),
            &other,
            json!({})
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    let (_, reader) = api.key(&key, &["contacts:read"], json!({})).await;
    assert_eq!(
        api.post(
            &format!("/api/sms/campaigns/{lid}/cancel"),
            &reader,
            json!({})
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    let cancelled = api
        .post(&format!("/api/sms/campaigns/{lid}/cancel"), &key, json!({}))
        .await;
    assert_eq!(cancelled.data()["status"], "CANCELLED");
    let edit = api
        .put(
            &format!("/api/sms/campaigns/{lid}"),
            &key,
            json!({ "name": "x" }),
        )
        .await;
    assert_eq!(edit.status, StatusCode::CONFLICT);
    let listed = api.get("/api/sms/campaigns?status=cancelled", &key).await;
    assert_eq!(listed.data()["total"], 1);
    let bad = api.get("/api/sms/campaigns?status=nope", &key).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        api.delete(&format!("/api/sms/campaigns/{lid}"), &key)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        api.store.campaign_recipient_count(lid).unwrap(),
        0,
        "the audience went with it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploaded_csv_audience_with_preview_and_quiet_hours_for_promotions() {
    let api = Api::start().await;
    let (org, key) = api.org("school").await;
    let t = api
        .post(
            "/api/sms/templates",
            &key,
            json!({ "name": "sale", "body": "Dear {{name}}, pay PKR {{amount}}", "category": "PROMOTIONAL" }),
        )
        .await;
    let tid = t.data()["id"].as_u64().unwrap();
    let c = api
        .post(
            "/api/sms/campaigns",
            &key,
            json!({ "name": "Sale", "templateId": tid }),
        )
        .await;
    let cid = c.data()["id"].as_u64().unwrap();
    let csv = "mobile_num;student_name;fee_amount\n03001234567;Ali;5000\n03009876543;Sara;7500\n03001234567;Ali;5000\nbad;X;1\n";
    let mapping =
        r#"{"phone":"mobile_num","name":"student_name","custom":{"amount":"fee_amount"}}"#;
    let q = |extra: &str| {
        format!(
            "/api/sms/campaigns/{cid}/recipients?mapping={}{extra}",
            mapping
                .replace('"', "%22")
                .replace('{', "%7B")
                .replace('}', "%7D")
                .replace(':', "%3A")
                .replace(',', "%2C")
        )
    };
    let preview = import(&api, &key, &q("&preview=true"), csv.to_owned()).await;
    assert_eq!(preview.status, StatusCode::OK, "{:?}", preview.json);
    assert_eq!(preview.data()["rows"][1]["metadata"]["amount"], "7500");
    assert_eq!(api.store.campaign_recipient_count(cid).unwrap(), 0);
    let up = import(&api, &key, &q(""), csv.to_owned()).await;
    assert_eq!(up.status, StatusCode::OK, "{:?}", up.json);
    assert_eq!(up.data()["created"], 2);
    assert_eq!(up.data()["duplicates"], 1);
    assert_eq!(up.data()["skipped"], 1);

    // Quiet hours around now (UTC), set by the superadmin route: the promotional campaign
    // waits.
    let now_min = (sairex_store::now_ms() / 60_000) % 1440;
    let clock = |m: u64| format!("{:02}:{:02}", m / 60, m % 60);
    let quiet = api
        .patch(
            &format!("/api/admin/organizations/{org}"),
            ADMIN_TOKEN,
            json!({ "quietHours": { "start": clock((now_min + 1440 - 60) % 1440),
                                    "end": clock((now_min + 60) % 1440), "timeZone": "UTC" } }),
        )
        .await;
    assert_eq!(quiet.status, StatusCode::OK, "{:?}", quiet.json);
    let sink = Arc::new(Sink::default());
    let run = runner(&api.store, &sink);
    let started = api
        .post(&format!("/api/sms/campaigns/{cid}/start"), &key, json!({}))
        .await;
    assert_eq!(started.status, StatusCode::ACCEPTED);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        messages(&api.store, org, cid).is_empty(),
        "sent in quiet hours"
    );
    assert_eq!(campaign(&api, &key, cid).await["status"], "IN_PROGRESS");
    let cleared = api
        .patch(
            &format!("/api/admin/organizations/{org}"),
            ADMIN_TOKEN,
            json!({ "quietHours": null }),
        )
        .await;
    assert_eq!(cleared.data()["quietHours"], Value::Null);
    wait_for("completion", async || {
        campaign(&api, &key, cid).await["status"] == "COMPLETED"
    })
    .await;
    let mut bodies: Vec<String> = messages(&api.store, org, cid)
        .into_iter()
        .map(|m| m.body)
        .collect();
    bodies.sort();
    assert_eq!(
        bodies,
        vec!["Dear Ali, pay PKR 5000", "Dear Sara, pay PKR 7500"]
    );
    run.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_whose_template_was_deleted_is_paused_not_retried_forever() {
    let api = Api::start().await;
    let (org, key) = api.org("school").await;
    let t = api
        .post(
            "/api/sms/templates",
            &key,
            json!({ "name": "t", "body": "Hi" }),
        )
        .await;
    let tid = t.data()["id"].as_u64().unwrap();
    let c = api
        .post(
            "/api/sms/campaigns",
            &key,
            json!({ "name": "c", "templateId": tid, "recipients": [{ "to": "03001234567" }] }),
        )
        .await;
    let cid = c.data()["id"].as_u64().unwrap();
    // Started while the template exists (no runner yet), deleted before the runner gets to it.
    let started = api
        .post(&format!("/api/sms/campaigns/{cid}/start"), &key, json!({}))
        .await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{:?}", started.json);
    api.delete(&format!("/api/sms/templates/{tid}"), &key).await;
    let sink = Arc::new(Sink::default());
    let run = runner(&api.store, &sink);
    wait_for("the pause", async || {
        campaign(&api, &key, cid).await["status"] == "PAUSED"
    })
    .await;
    let c = campaign(&api, &key, cid).await;
    assert_eq!(c["haltReason"]["code"], "TEMPLATE_NOT_FOUND", "{c}");
    assert!(messages(&api.store, org, cid).is_empty());
    // Resuming cannot help while the template is gone: refused up front, still paused.
    let resumed = api
        .post(&format!("/api/sms/campaigns/{cid}/resume"), &key, json!({}))
        .await;
    assert_eq!(resumed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(resumed.code(), "TEMPLATE_NOT_FOUND");
    assert_eq!(campaign(&api, &key, cid).await["status"], "PAUSED");
    run.shutdown().await;
}

/// Creates an organization with DLT enabled; returns its id and admin key.
async fn dlt_org(api: &Api, name: &str) -> (Id, String) {
    let reply = api
        .post(
            "/api/admin/organizations",
            ADMIN_TOKEN,
            json!({ "name": name, "defaultCountry": "PK", "dltEnabled": true }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.json);
    (
        reply.data()["id"].as_u64().unwrap(),
        reply.data()["apiKey"]["key"].as_str().unwrap().to_owned(),
    )
}

async fn template_id(api: &Api, key: &str, body: Value) -> Id {
    let t = api.post("/api/sms/templates", key, body).await;
    assert_eq!(t.status, StatusCode::CREATED, "{:?}", t.json);
    t.data()["id"].as_u64().unwrap()
}

/// DLT for campaigns (blueprint §6.4): under DLT a campaign bound to a TRANSACTIONAL template
/// needs it approved and registered, refused up front by every way of starting it (422, as
/// `/send`), and checked again by the runner, which pauses the campaign with the reason when
/// the template or the organization's setting changed after it was started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlt_is_checked_when_a_campaign_starts_and_again_when_the_runner_expands_it() {
    let api = Api::start().await;
    let (org, key) = dlt_org(&api, "india school").await;
    let tid = template_id(
        &api,
        &key,
        json!({ "name": "fee", "body": "Fee due, {{name|parent}}", "category": "TRANSACTIONAL" }),
    )
    .await;
    let audience = json!([{ "to": "03001234567" }, { "to": "03009876543" }]);
    let c = api
        .post(
            "/api/sms/campaigns",
            &key,
            json!({ "name": "Fees", "templateId": tid, "recipients": audience }),
        )
        .await;
    let cid = c.data()["id"].as_u64().unwrap();

    // Every way of starting it is refused, and nothing moves.
    let start = api
        .post(&format!("/api/sms/campaigns/{cid}/start"), &key, json!({}))
        .await;
    assert_eq!(
        start.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        start.json
    );
    assert_eq!(start.code(), "DLT_TEMPLATE_NOT_APPROVED");
    let bulk = api
        .post("/api/sms/send-bulk", &key, json!({ "campaignId": cid }))
        .await;
    assert_eq!(
        bulk.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        bulk.json
    );
    assert_eq!(bulk.code(), "DLT_TEMPLATE_NOT_APPROVED");
    let before = api.get("/api/sms/campaigns", &key).await.data()["total"].clone();
    let now = api
        .post(
            "/api/sms/campaigns",
            &key,
            json!({ "name": "Now", "templateId": tid, "recipients": audience, "start": true }),
        )
        .await;
    assert_eq!(now.code(), "DLT_TEMPLATE_NOT_APPROVED", "{:?}", now.json);
    assert_eq!(
        api.get("/api/sms/campaigns", &key).await.data()["total"],
        before,
        "a refused send-now leaves no draft"
    );
    // An A/B variant's template is held to the same rule, and named.
    let ab = api
        .post(
            "/api/sms/campaigns",
            &key,
            json!({ "name": "AB", "recipients": audience, "start": true, "variants": [
                { "percent": 50, "messageBody": "plain" },
                { "percent": 50, "templateId": tid } ] }),
        )
        .await;
    assert_eq!(ab.code(), "DLT_TEMPLATE_NOT_APPROVED", "{:?}", ab.json);
    assert!(
        ab.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("variants[1].templateId")
    );
    assert_eq!(campaign(&api, &key, cid).await["status"], "DRAFT");
    // A raw body is not bound to a template, and a promotional template is not transactional.
    let promo = template_id(
        &api,
        &key,
        json!({ "name": "sale", "body": "Sale!", "category": "PROMOTIONAL" }),
    )
    .await;
    for content in [
        json!({ "messageBody": "Fee due" }),
        json!({ "templateId": promo }),
    ] {
        let mut body = json!({ "name": "free", "recipients": audience, "start": true });
        for (k, v) in content.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = api.post("/api/sms/campaigns", &key, body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
        let id = r.data()["id"].as_u64().unwrap();
        api.post(&format!("/api/sms/campaigns/{id}/cancel"), &key, json!({}))
            .await;
    }

    // Approved and registered: it starts. Un-approved before the runner reaches it: the runner
    // pauses it with the reason and sends nothing.
    let ready = json!({ "isApproved": true, "dltTemplateId": "1107161234567890123" });
    api.put(&format!("/api/sms/templates/{tid}"), &key, ready.clone())
        .await;
    let start = api
        .post(&format!("/api/sms/campaigns/{cid}/start"), &key, json!({}))
        .await;
    assert_eq!(start.status, StatusCode::ACCEPTED, "{:?}", start.json);
    api.put(
        &format!("/api/sms/templates/{tid}"),
        &key,
        json!({ "isApproved": false }),
    )
    .await;
    let sink = Arc::new(Sink::default());
    let run = runner(&api.store, &sink);
    wait_for("the DLT pause", async || {
        campaign(&api, &key, cid).await["status"] == "PAUSED"
    })
    .await;
    let paused = campaign(&api, &key, cid).await;
    assert_eq!(
        paused["haltReason"]["code"], "DLT_TEMPLATE_NOT_APPROVED",
        "{paused}"
    );
    assert!(
        paused["haltReason"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("template {tid}"))
    );
    assert!(messages(&api.store, org, cid).is_empty());
    let resume = api
        .post(&format!("/api/sms/campaigns/{cid}/resume"), &key, json!({}))
        .await;
    assert_eq!(resume.code(), "DLT_TEMPLATE_NOT_APPROVED");
    assert_eq!(campaign(&api, &key, cid).await["status"], "PAUSED");
    // Fixed: it resumes, the reason goes, and every recipient is sent.
    api.put(&format!("/api/sms/templates/{tid}"), &key, ready.clone())
        .await;
    let resume = api
        .post(&format!("/api/sms/campaigns/{cid}/resume"), &key, json!({}))
        .await;
    assert_eq!(resume.status, StatusCode::OK, "{:?}", resume.json);
    assert_eq!(resume.data()["haltReason"], Value::Null);
    wait_for("completion", async || {
        campaign(&api, &key, cid).await["status"] == "COMPLETED"
    })
    .await;
    assert_eq!(messages(&api.store, org, cid).len(), 2);

    // The organization's setting, changed after a start, is seen by the runner too.
    let (org2, key2) = api.org("turned on later").await;
    let t2 = template_id(
        &api,
        &key2,
        json!({ "name": "fee", "body": "Fee due", "category": "TRANSACTIONAL" }),
    )
    .await;
    let c2 = api
        .post(
            "/api/sms/campaigns",
            &key2,
            json!({ "name": "Fees", "templateId": t2, "recipients": audience,
                    "scheduledAt": in_300_days(), "start": true }),
        )
        .await;
    assert_eq!(c2.data()["status"], "SCHEDULED", "{:?}", c2.json);
    let c2 = c2.data()["id"].as_u64().unwrap();
    let on = api
        .patch(
            &format!("/api/admin/organizations/{org2}"),
            ADMIN_TOKEN,
            json!({ "dltEnabled": true }),
        )
        .await;
    assert_eq!(on.data()["dltEnabled"], true, "{:?}", on.json);
    // Brought forward by a change of a scheduled campaign: refused while it could not send.
    let sooner = api
        .put(
            &format!("/api/sms/campaigns/{c2}"),
            &key2,
            json!({ "scheduledAt": humantime::format_rfc3339(
                std::time::SystemTime::now() + std::time::Duration::from_secs(60)
            ).to_string() }),
        )
        .await;
    assert_eq!(
        sooner.code(),
        "DLT_TEMPLATE_NOT_APPROVED",
        "{:?}",
        sooner.json
    );
    // Due now anyway (as if its time came): the runner pauses it.
    api.store
        .update_campaign(org2, c2, |c| {
            c.scheduled_at = Some(0);
            Ok(())
        })
        .await
        .unwrap();
    wait_for("the pause after the setting changed", async || {
        campaign(&api, &key2, c2).await["status"] == "PAUSED"
    })
    .await;
    assert_eq!(
        campaign(&api, &key2, c2).await["haltReason"]["code"],
        "DLT_TEMPLATE_NOT_APPROVED"
    );
    assert!(messages(&api.store, org2, c2).is_empty());
    // Another organization sees none of it.
    assert_eq!(
        api.get(&format!("/api/sms/campaigns/{c2}"), &key)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    run.shutdown().await;
}

/// A/B variants: input checked (400 envelopes), each recipient given one variant by a function
/// of the campaign and the recipient only (so pause, runner restart and a lost cursor change
/// nobody's variant), and stats kept per variant, exact as statuses move, adding up to the
/// campaign's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ab_variants_split_the_audience_for_good_with_stats_per_variant() {
    let api = Api::start().await;
    let (org, key) = api.org("school").await;
    let (_, other) = api.org("other").await;
    let tid = template_id(
        &api,
        &key,
        json!({ "name": "b", "body": "B: Hello {{name}}" }),
    )
    .await;
    let theirs = template_id(&api, &other, json!({ "name": "x", "body": "x" })).await;
    let recipients: Vec<Value> = (0..200)
        .map(|i| json!({ "to": format!("+92302{i:07}"), "variables": { "name": format!("S{i}") } }))
        .collect();
    let base = |variants: Value| json!({ "name": "AB", "recipients": recipients.clone(), "variants": variants });

    // Bad input: 400 envelopes naming the problem; nothing is created.
    let bad = [
        (
            json!([{ "percent": 50, "body": "a" }, { "percent": 40, "body": "b" }]),
            "sum to 100",
        ),
        (
            json!([{ "percent": 0, "body": "a" }, { "percent": 100, "body": "b" }]),
            "percent",
        ),
        (
            json!([{ "percent": 150, "body": "a" }, { "percent": 50, "body": "b" }]),
            "percent",
        ),
        (
            json!([{ "body": "a" }, { "percent": 100, "body": "b" }]),
            "percent",
        ),
        (
            json!([{ "percent": 50, "body": "" }, { "percent": 50, "body": "b" }]),
            "variants",
        ),
        (
            json!([{ "percent": 50 }, { "percent": 50, "body": "b" }]),
            "exactly one",
        ),
        (
            json!([{ "percent": 50, "body": "a", "templateId": tid }, { "percent": 50, "body": "b" }]),
            "exactly one",
        ),
        (json!([{ "percent": 100, "body": "a" }]), "2 to 10"),
        (
            json!(
                (0..11)
                    .map(|_| json!({ "percent": 9, "body": "a" }))
                    .collect::<Vec<_>>()
            ),
            "2 to 10",
        ),
        (
            json!([{ "name": "X", "percent": 50, "body": "a" }, { "name": "x", "percent": 50, "body": "b" }]),
            "differ",
        ),
    ];
    for (variants, says) in bad {
        let r = api
            .post("/api/sms/campaigns", &key, base(variants.clone()))
            .await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{variants}: {:?}",
            r.json
        );
        assert_eq!(r.json["success"], false);
        let message = r.json["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{variants}: {message}");
    }
    let both = api
        .post(
            "/api/sms/campaigns",
            &key,
            json!({ "name": "AB", "messageBody": "x", "variants": [
                { "percent": 50, "body": "a" }, { "percent": 50, "body": "b" }] }),
        )
        .await;
    assert_eq!(both.status, StatusCode::BAD_REQUEST, "{:?}", both.json);
    let stolen = api
        .post(
            "/api/sms/campaigns",
            &key,
            base(json!([{ "percent": 50, "body": "a" }, { "percent": 50, "templateId": theirs }])),
        )
        .await;
    assert_eq!(
        stolen.status,
        StatusCode::NOT_FOUND,
        "another tenant's template"
    );
    assert_eq!(api.get("/api/sms/campaigns", &key).await.data()["total"], 0);

    let created = api
        .post(
            "/api/sms/campaigns",
            &key,
            base(json!([{ "percent": 30, "body": "A: Hi {{name}}" },
                        { "percent": 70, "templateId": tid }])),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.json);
    let cid = created.data()["id"].as_u64().unwrap();
    let v = &created.data()["variants"];
    assert_eq!(
        (v[0]["name"].as_str(), v[1]["name"].as_str()),
        (Some("A"), Some("B"))
    );
    assert_eq!(
        (v[0]["percent"].as_u64(), v[1]["templateId"].as_u64()),
        (Some(30), Some(tid))
    );
    // A change of the variants replaces them; a body instead removes them; and back.
    let edited = api
        .put(
            &format!("/api/sms/campaigns/{cid}"),
            &key,
            json!({ "messageBody": "plain" }),
        )
        .await;
    assert_eq!(edited.data()["variants"], json!([]), "{:?}", edited.json);
    let edited = api
        .put(
            &format!("/api/sms/campaigns/{cid}"),
            &key,
            json!({ "variants": [{ "name": "short", "percent": 30, "body": "A: Hi {{name}}" },
                                 { "name": "long", "percent": 70, "templateId": tid }] }),
        )
        .await;
    assert_eq!(
        edited.data()["messageBody"],
        Value::Null,
        "{:?}",
        edited.json
    );
    assert_eq!(edited.data()["variants"][1]["name"], "long");

    // Sent with a pause, a runner restart and a lost cursor on the way.
    let sink = Arc::new(Sink::default());
    let first = runner(&api.store, &sink);
    let started = api
        .post(&format!("/api/sms/campaigns/{cid}/start"), &key, json!({}))
        .await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{:?}", started.json);
    wait_for("the first chunks", async || {
        messages(&api.store, org, cid).len() >= 60
    })
    .await;
    api.post(&format!("/api/sms/campaigns/{cid}/pause"), &key, json!({}))
        .await;
    first.shutdown().await;
    let second = runner(&api.store, &sink);
    api.post(&format!("/api/sms/campaigns/{cid}/resume"), &key, json!({}))
        .await;
    wait_for("completion", async || {
        settle_mixed(&api.store, org, cid).await;
        campaign(&api, &key, cid).await["status"] == "COMPLETED"
    })
    .await;
    settle_mixed(&api.store, org, cid).await;
    // A crash that lost the cursor: the recipients are read again, their messages already
    // exist (same keys), and nobody's variant or message changes.
    api.store
        .update_campaign(org, cid, |c| {
            c.status = CampaignStatus::InProgress;
            c.extra = Some(json!({}));
            Ok(())
        })
        .await
        .unwrap();
    wait_for("completion again", async || {
        campaign(&api, &key, cid).await["status"] == "COMPLETED"
    })
    .await;
    second.shutdown().await;

    let all = messages(&api.store, org, cid);
    assert_eq!(all.len(), 200);
    let phones: HashSet<&str> = all.iter().map(|m| m.to_number.as_str()).collect();
    assert_eq!(phones.len(), 200, "nobody twice");
    let mut per = [0u64; 2];
    for m in &all {
        let key = m.idempotency_key.as_deref().unwrap();
        let expected = sairex_engine::campaigns::variant_for(key, &[30, 70]);
        assert_eq!(m.campaign_variant, Some(expected as u8), "{key}");
        let prefix = ["A: Hi S", "B: Hello S"][expected];
        assert!(m.body.starts_with(prefix), "{}: {}", m.body, prefix);
        per[expected] += 1;
    }
    assert!(
        (35..=85).contains(&per[0]),
        "{per:?} for a 30/70 split of 200"
    );

    // Each variant's stats are its messages' statuses, counted independently here.
    let stats = api
        .get(&format!("/api/sms/campaigns/{cid}/stats"), &key)
        .await;
    let s = stats.data();
    for (i, name) in ["short", "long"].into_iter().enumerate() {
        let mine: Vec<&Message> = all
            .iter()
            .filter(|m| m.campaign_variant == Some(i as u8))
            .collect();
        let count = |st: MessageStatus| mine.iter().filter(|m| m.status == st).count() as u64;
        let (delivered, failed, rejected) = (
            count(MessageStatus::Delivered),
            count(MessageStatus::Failed),
            count(MessageStatus::Rejected),
        );
        let v = &s["variants"][i];
        assert_eq!(v["name"], name, "{s}");
        assert_eq!(v["messages"], per[i]);
        assert_eq!(v["sent"], delivered + failed, "sent = handed to a provider");
        assert_eq!(
            (
                v["delivered"].as_u64(),
                v["failed"].as_u64(),
                v["rejected"].as_u64()
            ),
            (Some(delivered), Some(failed), Some(rejected)),
            "{v}"
        );
        assert!(
            delivered > 0 && failed > 0 && rejected > 0,
            "{v}: every outcome occurs"
        );
        let rate = delivered as f64 / (delivered + failed) as f64;
        assert!((v["deliveryRate"].as_f64().unwrap() - rate).abs() < 1e-9);
    }
    for field in [
        "messages",
        "sent",
        "delivered",
        "failed",
        "rejected",
        "queued",
    ] {
        let sum =
            s["variants"][0][field].as_u64().unwrap() + s["variants"][1][field].as_u64().unwrap();
        let whole = if field == "messages" {
            s["messages"]["total"].as_u64().unwrap()
        } else {
            s[field].as_u64().unwrap()
        };
        assert_eq!(sum, whole, "{field}: {s}");
    }
    let others = api
        .get(&format!("/api/sms/campaigns/{cid}/stats"), &other)
        .await;
    assert_eq!(others.status, StatusCode::NOT_FOUND);
}

/// Pause stops what the runner queued ahead too (held out of the queue, back on resume), and
/// cancel fails it: before, up to the queue-ahead bound of messages still went out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_holds_and_cancel_fails_the_messages_queued_ahead() {
    let api = Api::start().await;
    let (org, key) = api.org("school").await;
    let group = api
        .post("/api/sms/groups", &key, json!({ "name": "All" }))
        .await;
    let gid = group.data()["id"].as_u64().unwrap();
    let mut csv = String::from("phone,name\n");
    for i in 0..200 {
        csv.push_str(&format!("+92300{i:07},Student {i}\n"));
    }
    import(
        &api,
        &key,
        &format!("/api/sms/contacts/import?groupId={gid}"),
        csv,
    )
    .await;
    let sink = Arc::new(Sink::default());
    let handle = runner(&api.store, &sink);
    let start = async |name: &str| {
        let created = api
            .post(
                "/api/sms/campaigns",
                &key,
                json!({ "name": name, "body": "Hello", "groupId": gid, "start": true }),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.json);
        let cid = created.data()["id"].as_u64().unwrap();
        // More recipients than the runner queues ahead (60): it stays IN_PROGRESS.
        wait_for("the queue-ahead filled", async || {
            messages(&api.store, org, cid).len() >= 60
        })
        .await;
        cid
    };

    let cid = start("Paused").await;
    let paused = api
        .post(&format!("/api/sms/campaigns/{cid}/pause"), &key, json!({}))
        .await;
    assert_eq!(paused.data()["status"], "PAUSED");
    // A chunk the runner was writing at that moment is held by the runner right after it.
    wait_for("every message held", async || {
        messages(&api.store, org, cid)
            .iter()
            .all(|m| matches!(m.queue, sairex_store::model::QueuePlace::Due { .. }))
    })
    .await;
    assert!(
        api.store
            .lease(org, 1000)
            .await
            .unwrap()
            .iter()
            .all(|m| m.campaign_id != Some(cid)),
        "a paused campaign's queued messages are not handed out"
    );
    assert!(
        messages(&api.store, org, cid)
            .iter()
            .all(|m| m.status == MessageStatus::Queued)
    );
    let held = messages(&api.store, org, cid).len();
    api.post(&format!("/api/sms/campaigns/{cid}/resume"), &key, json!({}))
        .await;
    let leased = api.store.lease(org, 1000).await.unwrap();
    assert!(leased.len() >= held, "all back in the queue on resume");
    for m in leased {
        api.store
            .finalize(org, m.id, MessageStatus::Delivered, None, None)
            .await
            .unwrap();
    }
    let events = api
        .store
        .events(org, cid_first_message(&api, org, cid))
        .unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        kinds,
        ["QUEUED", "CAMPAIGN_PAUSED", "CAMPAIGN_RESUMED", "DELIVERED"]
    );

    // Deleted while paused: its held messages could never be resumed, so they fail.
    let cid = start("Deleted").await;
    api.post(&format!("/api/sms/campaigns/{cid}/pause"), &key, json!({}))
        .await;
    let deleted = api
        .client
        .delete(format!("{}/api/sms/campaigns/{cid}", api.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::OK);
    let all = messages(&api.store, org, cid);
    assert!(all.len() >= 60, "the messages stay");
    assert!(all.iter().all(|m| m.status == MessageStatus::Failed
        && m.error_code.as_deref() == Some("CAMPAIGN_CANCELLED")));

    let cid = start("Cancelled").await;
    let cancelled = api
        .post(&format!("/api/sms/campaigns/{cid}/cancel"), &key, json!({}))
        .await;
    assert_eq!(cancelled.data()["status"], "CANCELLED");
    // Likewise a chunk being written at the cancel is failed by the runner right after it.
    wait_for("every message failed", async || {
        messages(&api.store, org, cid)
            .iter()
            .all(|m| m.status == MessageStatus::Failed)
    })
    .await;
    assert!(
        api.store
            .lease(org, 1000)
            .await
            .unwrap()
            .iter()
            .all(|m| m.campaign_id != Some(cid))
    );
    let all = messages(&api.store, org, cid);
    assert!(all.len() >= 60);
    assert!(all.iter().all(|m| m.status == MessageStatus::Failed
        && m.error_code.as_deref() == Some("CAMPAIGN_CANCELLED")));
    handle.shutdown().await;
}

fn cid_first_message(api: &Api, org: Id, cid: Id) -> Id {
    messages(&api.store, org, cid)
        .iter()
        .map(|m| m.id)
        .min()
        .unwrap()
}
