//! Requests say exactly what they mean, over real HTTP (issue 15): unknown fields and type
//! errors named, unfilled placeholders refused on every path, `scheduledAt` bounded, and
//! `Idempotency-Key` replays.

mod common;

use std::time::{Duration, SystemTime};

use common::Api;
use reqwest::{Method, StatusCode};
use sairex_store::{MessageFilter, PageRequest};
use serde_json::{Value, json};

fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339(at).to_string()
}

async fn message_count(api: &Api, org: u64) -> u64 {
    api.store
        .list_messages(org, &MessageFilter::default(), PageRequest::default())
        .unwrap()
        .total
}

#[tokio::test]
async fn unknown_fields_are_refused_naming_the_closest_known_one() {
    let api = Api::start().await;
    let (org, key) = api.org("school").await;
    // The example: a typo silently sent with "from": "".
    let r = api
        .post(
            "/api/sms/send",
            &key,
            json!({ "to": "+923001234567", "body": "x", "sender": "ACME" }),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "UNKNOWN_FIELD"),
        "{:?}",
        r.json
    );
    assert_eq!(r.json["error"]["field"], "sender");
    assert_eq!(
        r.json["error"]["message"],
        "sender: unknown field (did you mean `from`?)"
    );
    assert_eq!(r.json["error"]["docs"], "/docs/errors#unknown_field");
    // A case typo, and one nested in a recipient of a bulk send.
    let r = api
        .post(
            "/api/sms/send",
            &key,
            json!({ "to": "+923001234567", "body": "x", "scheduledat": "2030-01-01T00:00:00Z" }),
        )
        .await;
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `scheduledAt`"),
        "{:?}",
        r.json
    );
    let r = api
        .post(
            "/api/sms/send-bulk",
            &key,
            json!({ "body": "x", "recipients": [{ "to": "+923001234567" }, { "to": "+923001234568", "variabels": {} }] }),
        )
        .await;
    assert_eq!(r.code(), "UNKNOWN_FIELD", "{:?}", r.json);
    assert_eq!(r.json["error"]["field"], "recipients[1].variabels");
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `variables`")
    );
    // Admin and campaign bodies too.
    let r = api
        .post(
            "/api/sms/webhooks",
            &key,
            json!({ "url": "http://127.0.0.1:9/h", "event": ["message.sent"] }),
        )
        .await;
    assert_eq!(r.code(), "UNKNOWN_FIELD", "{:?}", r.json);
    let r = api
        .post(
            "/api/sms/campaigns",
            &key,
            json!({ "name": "c", "body": "x", "groupID": 1 }),
        )
        .await;
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `groupId`"),
        "{:?}",
        r.json
    );
    assert_eq!(message_count(&api, org).await, 0);
}

#[tokio::test]
async fn type_errors_name_the_field_and_the_expected_type() {
    let api = Api::start().await;
    let (_, key) = api.org("school").await;
    let r = api
        .post("/api/sms/send", &key, json!({ "to": 123, "body": "x" }))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "INVALID_TYPE"),
        "{:?}",
        r.json
    );
    assert_eq!(r.json["error"]["field"], "to");
    let message = r.json["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("to: "), "{message}");
    assert!(message.contains("expected a string"), "{message}");
    let r = api
        .post(
            "/api/sms/send-bulk",
            &key,
            json!({ "body": "x", "recipients": [{ "to": "+923001234567", "variables": [1] }] }),
        )
        .await;
    assert_eq!(r.code(), "INVALID_TYPE");
    assert_eq!(r.json["error"]["field"], "recipients[0].variables");
    // Text that is not JSON at all is still MALFORMED_JSON.
    let r = api
        .raw(
            Method::POST,
            "/api/sms/send",
            Some(&key),
            Some(b"{\"to\": ".to_vec()),
        )
        .await;
    assert_eq!(r.code(), "MALFORMED_JSON");
}

#[tokio::test]
async fn unfilled_placeholders_are_refused_on_every_path() {
    let api = Api::start().await;
    let (org, key) = api.org("school").await;
    // send without variables (the issue: it delivered "Hi {{name}}").
    let r = api
        .post(
            "/api/sms/send",
            &key,
            json!({ "to": "+923001234567", "body": "Hi {{name}}" }),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "MISSING_VARIABLE"),
        "{:?}",
        r.json
    );
    assert_eq!(r.json["error"]["field"], "variables.name");
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("{{name}}")
    );
    // A default fills it.
    let r = api
        .post(
            "/api/sms/send",
            &key,
            json!({ "to": "+923001234567", "body": "Hi {{name|parent}}" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.json);
    let id = r.data()["messageId"].as_u64().unwrap();
    assert_eq!(api.store.message(org, id).unwrap().body, "Hi parent");
    // preview says the same.
    let r = api
        .post("/api/sms/preview", &key, json!({ "body": "Hi {{name}}" }))
        .await;
    assert_eq!(r.code(), "MISSING_VARIABLE");

    // send-bulk: per recipient; one without variables is refused, not sent literally.
    let r = api
        .post(
            "/api/sms/send-bulk",
            &key,
            json!({ "body": "Hi {{name}}", "recipients": [
                { "to": "+923001234567", "variables": { "name": "Ali" } },
                { "to": "+923001234568" }
            ] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.json);
    assert_eq!(r.data()["accepted"], 1);
    assert_eq!(r.data()["errors"][0]["index"], 1);
    assert_eq!(r.data()["errors"][0]["code"], "MISSING_VARIABLE");
    let r = api
        .post(
            "/api/sms/send-bulk",
            &key,
            json!({ "body": "Hi {{name}}", "recipients": [{ "to": "+923001234568" }] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("{{name}}")
    );

    // A template send without its variable.
    let t = api
        .post(
            "/api/sms/templates",
            &key,
            json!({ "name": "fee", "body": "Fee {{amount}} due" }),
        )
        .await;
    let template = t.data()["id"].as_u64().unwrap();
    let r = api
        .post(
            "/api/sms/send",
            &key,
            json!({ "to": "+923001234567", "templateId": template }),
        )
        .await;
    assert_eq!(r.code(), "MISSING_VARIABLE", "{:?}", r.json);
    let r = api
        .post(
            &format!("/api/sms/templates/{template}/preview"),
            &key,
            json!({}),
        )
        .await;
    assert_eq!(r.code(), "MISSING_VARIABLE", "{:?}", r.json);

    // A campaign is refused before it starts, naming the placeholder and how many lack it.
    let c = api
        .post(
            "/api/sms/campaigns",
            &key,
            json!({ "name": "fees", "templateId": template, "recipients": [
                { "to": "+923001234567", "variables": { "amount": 5 } },
                { "to": "+923001234568" },
                { "to": "+923001234569" }
            ] }),
        )
        .await;
    assert_eq!(c.status, StatusCode::CREATED, "{:?}", c.json);
    let campaign = c.data()["id"].as_u64().unwrap();
    let before = message_count(&api, org).await;
    let r = api
        .post(
            &format!("/api/sms/campaigns/{campaign}/start"),
            &key,
            json!({}),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "MISSING_VARIABLE"),
        "{:?}",
        r.json
    );
    let message = r.json["error"]["message"].as_str().unwrap();
    assert!(message.contains("2 of 3 recipients"), "{message}");
    assert!(message.contains("{{amount}}"), "{message}");
    let status = api
        .get(&format!("/api/sms/campaigns/{campaign}"), &key)
        .await;
    assert_eq!(status.data()["status"], "DRAFT");
    assert_eq!(message_count(&api, org).await, before);
    // Created with start=true: refused the same way.
    let r = api
        .post(
            "/api/sms/campaigns",
            &key,
            json!({ "name": "now", "body": "Dear {{name}}", "start": true,
                    "recipients": [{ "to": "+923001234567" }] }),
        )
        .await;
    assert_eq!(r.code(), "MISSING_VARIABLE", "{:?}", r.json);
}

#[tokio::test]
async fn scheduled_at_in_the_past_or_too_far_ahead_is_refused() {
    let api = Api::start().await;
    let (org, key) = api.org("school").await;
    let send = |at: String| {
        let api = &api;
        let key = key.clone();
        async move {
            api.post(
                "/api/sms/send",
                &key,
                json!({ "to": "+923001234567", "body": "x", "scheduledAt": at }),
            )
            .await
        }
    };
    let r = send("2020-01-01T00:00:00Z".to_owned()).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "INVALID_SCHEDULE"),
        "{:?}",
        r.json
    );
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("in the past")
    );
    let r = send(rfc3339(
        SystemTime::now() + Duration::from_secs(2 * 365 * 24 * 3600),
    ))
    .await;
    assert_eq!(r.code(), "INVALID_SCHEDULE", "{:?}", r.json);
    // A minute of clock skew is tolerated; tomorrow is fine.
    let r = send(rfc3339(SystemTime::now() - Duration::from_secs(60))).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.json);
    let r = send(rfc3339(SystemTime::now() + Duration::from_secs(24 * 3600))).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.json);
    // Bulk and campaigns apply the same bounds.
    let r = api
        .post(
            "/api/sms/send-bulk",
            &key,
            json!({ "body": "x", "scheduledAt": "2020-01-01T00:00:00Z",
                    "recipients": [{ "to": "+923001234567" }] }),
        )
        .await;
    assert_eq!(r.code(), "INVALID_SCHEDULE");
    let r = api
        .post(
            "/api/sms/campaigns",
            &key,
            json!({ "name": "c", "body": "x", "scheduledAt": "2020-01-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(r.code(), "INVALID_SCHEDULE");
    assert_eq!(message_count(&api, org).await, 2);
}

async fn keyed(api: &Api, path: &str, token: &str, idem: &str, body: Value) -> common::Reply {
    let response = api
        .client
        .post(format!("{}{path}", api.base))
        .bearer_auth(token)
        .header("Idempotency-Key", idem)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let json = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    common::Reply {
        status,
        headers,
        json,
    }
}

#[tokio::test]
async fn idempotency_key_header_replays_the_original_answer() {
    let api = Api::start().await;
    let (org, key) = api.org("school").await;
    let body = json!({ "to": "+923001234567", "body": "Fee due", "priority": "otp" });
    let first = keyed(&api, "/api/sms/send", &key, "k-1", body.clone()).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{:?}", first.json);
    assert_eq!(first.header("idempotent-replayed"), None);
    // The same request, fields in another order: the first answer again, no new message.
    let again = keyed(
        &api,
        "/api/sms/send",
        &key,
        "k-1",
        json!({ "priority": "otp", "body": "Fee due", "to": "+923001234567" }),
    )
    .await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(again.json, first.json);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(message_count(&api, org).await, 1);
    // The same key with another request.
    let other = keyed(
        &api,
        "/api/sms/send",
        &key,
        "k-1",
        json!({ "to": "+923001234567", "body": "Another" }),
    )
    .await;
    assert_eq!(
        (other.status, other.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "IDEMPOTENCY_KEY_REUSED"),
        "{:?}",
        other.json
    );
    // The header and the body field are one key space.
    let field = api
        .post(
            "/api/sms/send",
            &key,
            json!({ "to": "+923001234567", "body": "Fee due", "priority": "otp", "idempotencyKey": "k-1" }),
        )
        .await;
    assert_eq!(field.code(), "IDEMPOTENCY_KEY_REUSED", "{:?}", field.json);
    let both = keyed(
        &api,
        "/api/sms/send",
        &key,
        "k-2",
        json!({ "to": "+923001234567", "body": "x", "idempotencyKey": "k-3" }),
    )
    .await;
    assert_eq!(both.code(), "IDEMPOTENCY_KEY_MISMATCH");
    // Another organization's key space is its own.
    let (org2, key2) = api.org("other").await;
    let theirs = keyed(&api, "/api/sms/send", &key2, "k-1", body).await;
    assert_eq!(theirs.status, StatusCode::ACCEPTED);
    assert_eq!(theirs.header("idempotent-replayed"), None);
    assert_eq!(message_count(&api, org2).await, 1);
    assert_eq!(message_count(&api, org).await, 1);
    // Durable: the response is in the store.
    let stored = api.store.idempotent_response(org, "k-1").unwrap().unwrap();
    assert_eq!(stored.status, 202);
    // A refused request is not stored: its retry runs again.
    let bad = keyed(
        &api,
        "/api/sms/send",
        &key,
        "k-4",
        json!({ "to": "bogus", "body": "x" }),
    )
    .await;
    assert_eq!(bad.code(), "INVALID_PHONE");
    let fixed = keyed(
        &api,
        "/api/sms/send",
        &key,
        "k-4",
        json!({ "to": "+923001234567", "body": "x" }),
    )
    .await;
    assert_eq!(fixed.status, StatusCode::ACCEPTED, "{:?}", fixed.json);
}

#[tokio::test]
async fn idempotency_key_covers_bulk_sends_and_campaign_creation() {
    let api = Api::start().await;
    let (org, key) = api.org("school").await;
    let bulk = json!({ "body": "Hi", "recipients": [{ "to": "+923001234567" }, { "to": "+923001234568" }] });
    let first = keyed(&api, "/api/sms/send-bulk", &key, "b-1", bulk.clone()).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{:?}", first.json);
    let again = keyed(&api, "/api/sms/send-bulk", &key, "b-1", bulk).await;
    assert_eq!(again.json, first.json);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(message_count(&api, org).await, 2);
    // The body field works for bulk too.
    let with_field =
        json!({ "body": "Hi", "idempotencyKey": "b-2", "recipients": [{ "to": "+923001234567" }] });
    let a = api
        .post("/api/sms/send-bulk", &key, with_field.clone())
        .await;
    let b = api.post("/api/sms/send-bulk", &key, with_field).await;
    assert_eq!(a.json, b.json);
    assert_eq!(message_count(&api, org).await, 3);

    let campaign = json!({ "name": "Term", "body": "Hello" });
    let c1 = keyed(&api, "/api/sms/campaigns", &key, "c-1", campaign.clone()).await;
    assert_eq!(c1.status, StatusCode::CREATED, "{:?}", c1.json);
    let c2 = keyed(&api, "/api/sms/campaigns", &key, "c-1", campaign).await;
    assert_eq!(c2.status, StatusCode::CREATED);
    assert_eq!(c2.json["data"]["id"], c1.json["data"]["id"]);
    assert_eq!(c2.header("idempotent-replayed"), Some("true"));
    let listed = api.get("/api/sms/campaigns", &key).await;
    // Two bulk jobs and one campaign.
    assert_eq!(listed.data()["total"], 3, "{:?}", listed.json);
    // A key of one route reused on another is another request.
    let cross = keyed(
        &api,
        "/api/sms/campaigns",
        &key,
        "b-1",
        json!({ "name": "x", "body": "y" }),
    )
    .await;
    assert_eq!(cross.code(), "IDEMPOTENCY_KEY_REUSED");
}

/// docs/webhooks.md promises `"*"` (all events) and `[]` (none: a webhook kept for its secret).
#[tokio::test]
async fn webhook_events_accept_what_the_docs_promise() {
    let api = Api::start().await;
    let (_, key) = api.org("school").await;
    let all = api
        .post(
            "/api/sms/webhooks",
            &key,
            json!({ "url": "http://127.0.0.1:9/all", "events": ["*"] }),
        )
        .await;
    assert_eq!(all.status, StatusCode::CREATED, "{:?}", all.json);
    assert_eq!(all.data()["events"], json!(["*"]));
    let none = api
        .post(
            "/api/sms/webhooks",
            &key,
            json!({ "url": "http://127.0.0.1:9/none", "events": [] }),
        )
        .await;
    assert_eq!(none.status, StatusCode::CREATED, "{:?}", none.json);
    assert_eq!(none.data()["events"], json!([]));
    let id = none.data()["id"].as_u64().unwrap();
    let changed = api
        .put(
            &format!("/api/sms/webhooks/{id}"),
            &key,
            json!({ "events": ["*"] }),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{:?}", changed.json);
    let bad = api
        .post(
            "/api/sms/webhooks",
            &key,
            json!({ "url": "http://127.0.0.1:9/x", "events": ["message.*"] }),
        )
        .await;
    assert_eq!(bad.code(), "VALIDATION_ERROR");
}

/// Where an SMSC is (host, port) is not a secret; how to log in to it is.
#[tokio::test]
async fn provider_host_and_port_are_shown_and_secrets_masked() {
    let api = Api::start().await;
    let (_, key) = api.org("school").await;
    let r = api
        .post(
            "/api/sms/providers",
            &key,
            json!({ "providerName": "smpp", "displayName": "Jazz",
                    "credentials": { "host": "smsc.example.net", "port": 2775,
                                     "systemId": "sairex", "password": "s3cret",
                                     "tls": { "clientKeyPem": "-----BEGIN-----" } } }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    let id = r.data()["id"].as_u64().unwrap();
    for r in [r, api.get(&format!("/api/sms/providers/{id}"), &key).await] {
        let creds = &r.data()["credentials"];
        assert_eq!(creds["host"], "smsc.example.net", "{creds}");
        assert_eq!(creds["port"], 2775, "{creds}");
        assert_eq!(creds["password"], "********");
        assert_eq!(creds["tls"], "********");
        assert!(!r.json.to_string().contains("s3cret"));
        assert!(!r.json.to_string().contains("BEGIN"));
    }
    let list = api.get("/api/sms/providers", &key).await;
    assert!(
        list.json.to_string().contains("smsc.example.net"),
        "{:?}",
        list.json
    );
    assert!(!list.json.to_string().contains("s3cret"));
}

/// Digits as phones type them in Pakistan and the Gulf (Urdu's Extended Arabic-Indic ۰-۹,
/// Arabic-Indic ٠-٩) and as East Asian keyboards do (full width ０-９, ＋) read like ASCII on
/// every path that takes a phone.
#[tokio::test]
async fn phones_in_any_digit_script_are_read_like_ascii() {
    let api = Api::start().await;
    let (org, key) = api.org("school").await;
    let urdu = "۰۳۰۰۱۲۳۴۵۶۷"; // 03001234567
    let arabic = "٠٣٠٠ ٩٨٧٦٥٤٣"; // 0300 9876543
    let wide = "＋９２３００５５５５５５５"; // +923005555555
    let mixed = "+۹۲ 300-٧٧٧٧٧٧٧"; // +92 300-7777777

    for (raw, e164) in [
        (urdu, "+923001234567"),
        (arabic, "+923009876543"),
        (wide, "+923005555555"),
        (mixed, "+923007777777"),
    ] {
        let r = api
            .post("/api/sms/send", &key, json!({ "to": raw, "body": "x" }))
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{raw}: {:?}", r.json);
        let id = r.data()["messageId"].as_u64().unwrap();
        assert_eq!(api.store.message(org, id).unwrap().to_number, e164, "{raw}");
    }

    let bulk = api
        .post(
            "/api/sms/send-bulk",
            &key,
            json!({ "body": "x", "recipients": [{ "to": urdu }, { "to": wide }] }),
        )
        .await;
    assert_eq!(bulk.status, StatusCode::ACCEPTED, "{:?}", bulk.json);
    assert_eq!(bulk.data()["accepted"], 2, "{:?}", bulk.json);

    let contact = api
        .post(
            "/api/sms/contacts",
            &key,
            json!({ "phoneNumber": arabic, "displayName": "Sara" }),
        )
        .await;
    assert_eq!(contact.status, StatusCode::CREATED, "{:?}", contact.json);
    assert_eq!(contact.data()["phoneNumber"], "+923009876543");
    let cid = contact.data()["id"].as_u64().unwrap();

    // Group members and opt-outs name the same contact whatever script the phone is in.
    let group = api
        .post("/api/sms/groups", &key, json!({ "name": "Class 5" }))
        .await;
    let gid = group.data()["id"].as_u64().unwrap();
    let added = api
        .post(
            &format!("/api/sms/groups/{gid}/members"),
            &key,
            json!({ "phones": ["＋９２３００９８７６５４３"] }),
        )
        .await;
    assert_eq!(added.status, StatusCode::OK, "{:?}", added.json);
    assert_eq!(added.data()["unknownPhones"], json!([]), "{:?}", added.json);
    let out = api
        .post(&format!("/api/sms/contacts/{cid}/opt-out"), &key, json!({}))
        .await;
    assert_eq!(out.status, StatusCode::OK, "{:?}", out.json);
    let refused = api
        .post(
            "/api/sms/send",
            &key,
            json!({ "to": "۰۳۰۰۹۸۷۶۵۴۳", "body": "x" }),
        )
        .await;
    assert_eq!(refused.code(), "OPTED_OUT", "{:?}", refused.json);

    // A CSV import in Urdu digits updates the contact rather than making another.
    let import = api
        .client
        .post(format!("{}/api/sms/contacts/import", api.base))
        .bearer_auth(&key)
        .header("content-type", "text/csv")
        .body("phone,name\n۰۳۰۰۹۸۷۶۵۴۳,Sara K\n")
        .send()
        .await
        .unwrap();
    let report: Value = serde_json::from_slice(&import.bytes().await.unwrap()).unwrap();
    assert_eq!(report["data"]["updated"], 1, "{report}");
    assert_eq!(report["data"]["created"], 0, "{report}");

    // Still a 400 for what is not a phone number in any script.
    let bad = api
        .post("/api/sms/send", &key, json!({ "to": "۰۳", "body": "x" }))
        .await;
    assert_eq!(bad.code(), "INVALID_PHONE");
}

/// Organizations have an IANA time zone, defaulting from the country, checked, settable.
#[tokio::test]
async fn organizations_have_a_time_zone_from_their_country() {
    let api = Api::start().await;
    let pk = api
        .post(
            "/api/admin/organizations",
            common::ADMIN_TOKEN,
            json!({ "name": "Lahore school", "defaultCountry": "PK" }),
        )
        .await;
    assert_eq!(pk.status, StatusCode::CREATED, "{:?}", pk.json);
    assert_eq!(pk.data()["timezone"], "Asia/Karachi");
    let id = pk.data()["id"].as_u64().unwrap();

    let us = api
        .post(
            "/api/admin/organizations",
            common::ADMIN_TOKEN,
            json!({ "name": "Chicago", "defaultCountry": "US", "timezone": "America/Chicago" }),
        )
        .await;
    assert_eq!(us.status, StatusCode::CREATED, "{:?}", us.json);
    assert_eq!(us.data()["timezone"], "America/Chicago");

    let bad = api
        .post(
            "/api/admin/organizations",
            common::ADMIN_TOKEN,
            json!({ "name": "Nowhere", "timezone": "Mars/Olympus" }),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{:?}", bad.json);
    assert!(bad.json.to_string().contains("timezone"), "{:?}", bad.json);

    let path = format!("/api/admin/organizations/{id}");
    let changed = api
        .patch(
            &path,
            common::ADMIN_TOKEN,
            json!({ "timezone": "Asia/Dubai" }),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{:?}", changed.json);
    assert_eq!(changed.data()["timezone"], "Asia/Dubai");
    let reset = api
        .patch(&path, common::ADMIN_TOKEN, json!({ "timezone": null }))
        .await;
    assert_eq!(reset.data()["timezone"], "Asia/Karachi", "{:?}", reset.json);
}

/// "Today" for a Pakistani organization starts at midnight in Karachi, and its days are
/// Karachi's dates.
#[tokio::test]
async fn analytics_days_begin_at_the_organizations_midnight() {
    let api = Api::start().await;
    let (_, key) = api.org("school").await;
    let sent = api
        .post(
            "/api/sms/send",
            &key,
            json!({ "to": "+923001234567", "body": "x" }),
        )
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{:?}", sent.json);

    let karachi = jiff::tz::TimeZone::get("Asia/Karachi").unwrap();
    let now = jiff::Timestamp::now().to_zoned(karachi.clone());
    let midnight = now.date().to_zoned(karachi).unwrap();
    let r = api.get("/api/sms/analytics?period=today", &key).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    assert_eq!(r.data()["timezone"], "Asia/Karachi");
    assert_eq!(
        r.data()["from"],
        midnight.strftime("%Y-%m-%dT00:00:00.000+05:00").to_string(),
        "{:?}",
        r.json
    );
    assert_eq!(r.data()["summary"]["totalSent"], 1);
    assert_eq!(
        r.data()["dailyBreakdown"][0]["date"],
        now.strftime("%Y-%m-%d").to_string()
    );
}

/// CSV exports print times as ISO 8601 with the organization's offset, not epoch milliseconds.
#[tokio::test]
async fn csv_exports_print_iso_8601_times_with_the_offset() {
    let api = Api::start().await;
    let (_, key) = api.org("school").await;
    let c = api
        .post(
            "/api/sms/contacts",
            &key,
            json!({ "phoneNumber": "03001234567" }),
        )
        .await;
    let id = c.data()["id"].as_u64().unwrap();
    api.post(&format!("/api/sms/contacts/{id}/opt-out"), &key, json!({}))
        .await;
    let csv = api
        .client
        .get(format!("{}/api/sms/contacts/export", api.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let row: Vec<&str> = lines.next().unwrap().split(',').collect();
    for column in ["optedOutAt", "createdAt"] {
        let at = row[header.iter().position(|h| *h == column).unwrap()];
        let parsed: jiff::Timestamp = at.parse().unwrap_or_else(|e| panic!("{column} {at}: {e}"));
        assert!(at.ends_with("+05:00"), "{column}: {at}");
        let age = jiff::Timestamp::now().duration_since(parsed);
        assert!(age.as_secs() < 60, "{column}: {at}");
    }
}

/// Every list answers `{items, nextCursor, limit, total}`.
#[tokio::test]
async fn every_list_has_one_shape() {
    let api = Api::start().await;
    let (org, key) = api.org("school").await;
    let c = api
        .post(
            "/api/sms/contacts",
            &key,
            json!({ "phoneNumber": "03001234567" }),
        )
        .await;
    let cid = c.data()["id"].as_u64().unwrap();
    let g = api
        .post("/api/sms/groups", &key, json!({ "name": "Class 5" }))
        .await;
    let gid = g.data()["id"].as_u64().unwrap();
    let w = api
        .post(
            "/api/sms/webhooks",
            &key,
            json!({ "url": "http://127.0.0.1:9/hook", "events": ["*"] }),
        )
        .await;
    let wid = w.data()["id"].as_u64().unwrap();
    let paths = [
        "/api/sms/messages".to_owned(),
        "/api/sms/inbox".to_owned(),
        "/api/sms/contacts".to_owned(),
        format!("/api/sms/contacts/{cid}/groups"),
        "/api/sms/groups".to_owned(),
        format!("/api/sms/groups/{gid}/members"),
        "/api/sms/templates".to_owned(),
        "/api/sms/campaigns".to_owned(),
        "/api/sms/api-keys".to_owned(),
        "/api/sms/providers".to_owned(),
        "/api/sms/smpp-accounts".to_owned(),
        "/api/sms/webhooks".to_owned(),
        format!("/api/sms/webhooks/{wid}/deliveries"),
    ];
    let check = |path: &str, r: &common::Reply| {
        assert_eq!(r.status, StatusCode::OK, "{path}: {:?}", r.json);
        let d = r.data();
        assert!(d["items"].is_array(), "{path}: {d}");
        assert!(d.get("nextCursor").is_some(), "{path}: {d}");
        assert!(d["limit"].is_u64() && d["total"].is_u64(), "{path}: {d}");
        assert_eq!(d.as_object().unwrap().len(), 4, "{path}: {d}");
    };
    for path in &paths {
        check(path, &api.get(path, &key).await);
        let big = api.get(&format!("{path}?limit=1000"), &key).await;
        check(path, &big);
        let over = api.get(&format!("{path}?limit=1001"), &key).await;
        assert_eq!(over.status, StatusCode::BAD_REQUEST, "{path}");
    }
    let orgs = api
        .get("/api/admin/organizations", common::ADMIN_TOKEN)
        .await;
    check("/api/admin/organizations", &orgs);
    let users = format!("/api/admin/organizations/{org}/users");
    check(&users, &api.get(&users, common::ADMIN_TOKEN).await);

    // The OpenAPI document describes the shape and the cursor on every list.
    let doc = api.get("/openapi.json", &key).await.json;
    assert!(doc["components"]["schemas"]["List"].is_object());
    let users = &doc["paths"]["/api/admin/organizations/{organizationId}/users"]["get"];
    assert!(
        users["parameters"].to_string().contains("\"cursor\""),
        "{users}"
    );
    assert!(
        users.to_string().contains("#/components/schemas/List"),
        "{users}"
    );
    for path in paths.iter().map(|p| {
        p.replace(&format!("/{cid}/"), "/{contactId}/")
            .replace(&format!("/{gid}/"), "/{groupId}/")
            .replace(&format!("/{wid}/"), "/{webhookId}/")
    }) {
        let params = doc["paths"][&path]["get"]["parameters"].to_string();
        assert!(params.contains("\"limit\""), "{path}");
        if path != "/api/sms/inbox" && !path.ends_with("/groups") || path == "/api/sms/groups" {
            assert!(params.contains("\"cursor\""), "{path}: {params}");
        }
    }
}

/// A cursor names the last item seen: messages and contacts created between two pages neither
/// shift the next page nor repeat an item.
#[tokio::test]
async fn cursors_are_stable_under_inserts() {
    let api = Api::start().await;
    let (_, key) = api.org("school").await;
    let send = |n: u32| {
        let api = &api;
        let key = key.clone();
        async move {
            let r = api
                .post(
                    "/api/sms/send",
                    &key,
                    json!({ "to": format!("+9230012345{n:02}"), "body": "x" }),
                )
                .await;
            assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.json);
            r.data()["messageId"].as_u64().unwrap()
        }
    };
    let mut sent = Vec::new();
    for n in 0..5 {
        sent.push(send(n).await);
    }
    let first = api.get("/api/sms/messages?limit=2", &key).await;
    let ids = |r: &common::Reply| -> Vec<u64> {
        r.data()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["messageId"].as_u64().or(m["id"].as_u64()).unwrap())
            .collect()
    };
    assert_eq!(ids(&first), [sent[4], sent[3]]);
    assert_eq!(first.data()["total"], 5);
    let cursor = first.data()["nextCursor"].as_str().unwrap().to_owned();
    // Three new messages arrive before the next page is read.
    for n in 5..8 {
        send(n).await;
    }
    let second = api
        .get(&format!("/api/sms/messages?limit=2&cursor={cursor}"), &key)
        .await;
    assert_eq!(second.status, StatusCode::OK, "{:?}", second.json);
    assert_eq!(ids(&second), [sent[2], sent[1]]);
    let cursor = second.data()["nextCursor"].as_str().unwrap().to_owned();
    let last = api
        .get(&format!("/api/sms/messages?limit=2&cursor={cursor}"), &key)
        .await;
    assert_eq!(ids(&last), [sent[0]]);
    assert_eq!(last.data()["nextCursor"], Value::Null);

    // Contacts, with one deleted before the cursor and more created.
    let mut contacts = Vec::new();
    for n in 0..4 {
        let c = api
            .post(
                "/api/sms/contacts",
                &key,
                json!({ "phoneNumber": format!("+9230098765{n:02}") }),
            )
            .await;
        contacts.push(c.data()["id"].as_u64().unwrap());
    }
    let page = api.get("/api/sms/contacts?limit=2", &key).await;
    assert_eq!(ids(&page), [contacts[3], contacts[2]]);
    let cursor = page.data()["nextCursor"].as_str().unwrap().to_owned();
    api.delete(&format!("/api/sms/contacts/{}", contacts[3]), &key)
        .await;
    api.post(
        "/api/sms/contacts",
        &key,
        json!({ "phoneNumber": "+923009876599" }),
    )
    .await;
    let next = api
        .get(&format!("/api/sms/contacts?limit=2&cursor={cursor}"), &key)
        .await;
    assert_eq!(ids(&next), [contacts[1], contacts[0]]);

    // A forged cursor, or a cursor with page=, is a 400 naming it.
    let bad = api.get("/api/sms/contacts?cursor=bm9wZQ", &key).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.json.to_string().contains("cursor"), "{:?}", bad.json);
    let both = api
        .get(&format!("/api/sms/contacts?cursor={cursor}&page=2"), &key)
        .await;
    assert_eq!(both.status, StatusCode::BAD_REQUEST);
    // The deprecated page parameter still works, in the same shape.
    let paged = api.get("/api/sms/messages?limit=3&page=2", &key).await;
    assert_eq!(paged.data()["items"].as_array().unwrap().len(), 3);
}

/// `GET /api/admin/status` (superadmin only): ready messages per organization and priority,
/// the store's size, and `ok: false` naming an active provider the engine does not run.
#[tokio::test]
async fn admin_status_reports_queues_providers_and_the_store() {
    let api = Api::start().await;
    let (org, key) = api.org("school").await;
    let refused = api.get("/api/admin/status", &key).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let r = api.get("/api/admin/status", common::ADMIN_TOKEN).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    assert_eq!(r.data()["ok"], true, "{:?}", r.json);
    assert!(r.data()["store"]["sizeBytes"].as_u64().unwrap() > 0);

    for (priority, n) in [("otp", 1), ("bulk", 3)] {
        for _ in 0..n {
            let sent = api
                .post(
                    "/api/sms/send",
                    &key,
                    json!({ "to": "+923001234567", "body": "x", "priority": priority }),
                )
                .await;
            assert_eq!(sent.status, StatusCode::ACCEPTED, "{:?}", sent.json);
        }
    }
    let p = api
        .post(
            "/api/sms/providers",
            &key,
            json!({ "providerName": "smpp", "displayName": "Jazz",
                    "credentials": { "host": "127.0.0.1", "port": 2775, "systemId": "s", "password": "p" } }),
        )
        .await;
    assert_eq!(p.status, StatusCode::CREATED, "{:?}", p.json);

    let r = api.get("/api/admin/status", common::ADMIN_TOKEN).await;
    let d = r.data();
    assert_eq!(
        d["queues"],
        json!([
            { "organizationId": org, "organization": "school", "priority": 1, "priorityName": "otp", "ready": 1 },
            { "organizationId": org, "organization": "school", "priority": 10, "priorityName": "bulk", "ready": 3 },
        ]),
        "{d}"
    );
    // The test engine runs no provider: an active one that is not running is down.
    assert_eq!(d["ok"], false, "{d}");
    assert_eq!(d["providers"][0]["state"], "down");
    assert_eq!(d["providers"][0]["running"], false);
    assert!(d["problems"][0].as_str().unwrap().contains("Jazz"), "{d}");
}
