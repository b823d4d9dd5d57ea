//! The API over real HTTP on loopback, with a real store and an engine double: the send path
//! and every error it answers, reads, tenancy, scopes, rate limits, admin JSON, the event
//! stream and the OpenAPI route test.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{ADMIN_TOKEN, Api, settings};
use reqwest::{Method, StatusCode};
use sairex_http_api::{ApiSettings, route_table};
use sairex_store::model::{Contact, Direction, Message, MessageStatus};
use sairex_store::{MessageFilter, PageRequest};
use serde_json::json;

#[tokio::test]
async fn send_is_durable_announced_and_has_a_status() {
    let api = Api::start().await;
    let (org, key) = api.org("school").await;
    let reply = api
        .post(
            "/api/sms/send",
            &key,
            json!({ "to": "0300-1234567", "body": "Fee\u{7} due\u{0} Friday", "metadata": { "studentId": 42 } }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.json);
    assert_eq!(reply.json["success"], true);
    let data = reply.data();
    assert_eq!(data["status"], "QUEUED");
    assert_eq!(data["to"], "+923001234567");
    assert_eq!(data["segments"], 1);
    assert_eq!(data["encoding"], "GSM-7");
    assert_eq!(data["estimatedCost"], "0.50");
    assert!(data["queuedAt"].as_str().unwrap().ends_with('Z'));
    let id = data["messageId"].as_u64().unwrap();

    // Durable in the store, control characters gone, tagged with the key.
    let stored = api.store.message(org, id).unwrap();
    assert_eq!(stored.body, "Fee due Friday");
    assert_eq!(stored.status, MessageStatus::Queued);
    assert_eq!(stored.metadata, Some(json!({ "studentId": 42 })));
    assert!(stored.api_key_id.is_some());

    // Announced: its QUEUED event is in the outbox with it (for webhooks and the event
    // stream), and the engine was nudged.
    let events = api.store.outbox_after(org, 0, 10).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, "QUEUED");
    assert_eq!(events[0].message.id, id);
    assert_eq!(events[0].message.status, MessageStatus::Queued);
    assert!(api.engine.nudges.load(Ordering::SeqCst) >= 1);

    // Rate-limit headers on an authenticated answer.
    assert!(reply.header("x-ratelimit-limit").is_some());
    assert!(reply.header("x-ratelimit-remaining").is_some());
    assert!(reply.header("x-ratelimit-reset").is_some());

    let status = api.get(&format!("/api/sms/status/{id}"), &key).await;
    assert_eq!(status.status, StatusCode::OK, "{:?}", status.json);
    assert_eq!(status.data()["messageId"], id);
    assert_eq!(status.data()["status"], "QUEUED");
    assert_eq!(status.data()["timeline"][0]["event"], "QUEUED");
    assert_eq!(status.data()["cost"]["amount"], "0.50");
}

#[tokio::test]
async fn send_errors_are_json_with_their_codes() {
    let api = Api::start().await;
    let (_, key) = api.org("school").await;
    let send = |body: serde_json::Value| api.post("/api/sms/send", &key, body);

    let r = send(json!({ "to": "12", "body": "x" })).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "INVALID_PHONE")
    );
    let r = send(json!({ "body": "x" })).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "INVALID_PHONE")
    );
    let r = send(json!({ "to": "+923001234567", "body": " \u{1}\u{2} " })).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "EMPTY_BODY")
    );
    let r = send(json!({ "to": "+923001234567" })).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "EMPTY_BODY")
    );
    let r = send(json!({ "to": "+923001234567", "body": "a".repeat(1601) })).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "BODY_TOO_LONG")
    );
    let r = send(json!({ "to": "+923001234567", "body": "x", "priority": "urgent" })).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "VALIDATION_ERROR")
    );
    let r = send(json!({ "to": "+923001234567", "body": "x", "scheduledAt": "tomorrow" })).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "INVALID_SCHEDULE")
    );
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("scheduledAt")
    );

    // Unknown fields are refused, by name.
    let r = send(json!({ "to": "+923001234567", "body": "x", "colour": "blue" })).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "UNKNOWN_FIELD"),
        "{:?}",
        r.json
    );
    assert_eq!(r.json["error"]["field"], "colour");

    // Malformed JSON names the problem.
    let r = api
        .raw(
            Method::POST,
            "/api/sms/send",
            Some(&key),
            Some(b"{\"to\": ".to_vec()),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "MALFORMED_JSON")
    );
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 1")
    );
    let r = api
        .raw(
            Method::POST,
            "/api/sms/send",
            Some(&key),
            Some(br#"{"to": 5, "body": "x"}"#.to_vec()),
        )
        .await;
    // A type error is not malformed JSON: it names the field.
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "INVALID_TYPE")
    );
    assert_eq!(r.json["error"]["field"], "to");
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid type")
    );

    // 401 without a key, with an unknown one, with a malformed header.
    let r = api
        .raw(Method::POST, "/api/sms/send", None, Some(b"{}".to_vec()))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "UNAUTHORIZED")
    );
    let r = api
        .post("/api/sms/send", "sk_live_nonsense", json!({}))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json["success"], false);

    // Unknown routes and methods answer JSON too.
    let r = api.get("/api/sms/nowhere", &key).await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "NOT_FOUND"));
    let r = api.delete("/api/sms/send", &key).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED")
    );
}

#[tokio::test]
async fn oversized_body_is_413() {
    let api = Api::start_with(ApiSettings {
        body_limit: 1024,
        ..settings()
    })
    .await;
    let (_, key) = api.org("school").await;
    let r = api
        .post(
            "/api/sms/send",
            &key,
            json!({ "to": "+923001234567", "body": "a".repeat(1500) }),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE")
    );
}

#[tokio::test]
async fn idempotency_key_in_the_body_replays_the_first_answer() {
    let api = Api::start().await;
    let (org, key) = api.org("school").await;
    let body = json!({ "to": "+923001234567", "body": "once", "idempotencyKey": "fee-123" });
    let first = api.post("/api/sms/send", &key, body.clone()).await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    let second = api.post("/api/sms/send", &key, body).await;
    assert_eq!(second.status, StatusCode::ACCEPTED, "{:?}", second.json);
    assert_eq!(second.json, first.json);
    assert_eq!(second.header("idempotent-replayed"), Some("true"));
    let all = api
        .store
        .list_messages(org, &MessageFilter::default(), PageRequest::default())
        .unwrap();
    assert_eq!(all.total, 1);
}

#[tokio::test]
async fn credit_opt_out_and_queue_depth_refusals() {
    let api = Api::start_with(ApiSettings {
        max_queue_depth: 2,
        ..settings()
    })
    .await;
    // 402: credit below one segment's cost.
    let r = api
        .post(
            "/api/admin/organizations",
            ADMIN_TOKEN,
            json!({ "name": "poor", "creditBalance": "0.40" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let poor_key = r.data()["apiKey"]["key"].as_str().unwrap().to_owned();
    let r = api
        .post(
            "/api/sms/send",
            &poor_key,
            json!({ "to": "+923001234567", "body": "x" }),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::PAYMENT_REQUIRED, "INSUFFICIENT_CREDIT")
    );

    // 422: the contact opted out.
    let (org, key) = api.org("school").await;
    let contact = api
        .store
        .create_contact(Contact {
            organization_id: org,
            phone_number: "+923001112233".into(),
            ..Contact::default()
        })
        .await
        .unwrap();
    api.store.opt_out_contact(org, contact.id).await.unwrap();
    let r = api
        .post(
            "/api/sms/send",
            &key,
            json!({ "to": "03001112233", "body": "x" }),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "OPTED_OUT")
    );

    // 503 with Retry-After once two messages wait (the engine double never takes them). The
    // depth is an estimate that may fall short by the requests in flight during a recount
    // (one here), never over: so 2 or 3 are accepted, then 503.
    let mut accepted = 0;
    let mut refused = None;
    for _ in 0..6 {
        let r = api
            .post(
                "/api/sms/send",
                &key,
                json!({ "to": "+923001234567", "body": "x" }),
            )
            .await;
        match r.status {
            StatusCode::ACCEPTED => accepted += 1,
            _ => {
                refused = Some(r);
                break;
            }
        }
    }
    let r = refused.expect("never refused");
    assert!((2..=3).contains(&accepted), "{accepted} accepted");
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "QUEUE_FULL")
    );
    assert_eq!(r.header("retry-after"), Some("5"));
}

#[tokio::test]
async fn tenants_never_see_each_other() {
    let api = Api::start().await;
    let (_, a) = api.org("a").await;
    let (_, b) = api.org("b").await;
    let sent = api
        .post(
            "/api/sms/send",
            &a,
            json!({ "to": "+923001234567", "body": "a's" }),
        )
        .await;
    let id = sent.data()["messageId"].as_u64().unwrap();
    let r = api.get(&format!("/api/sms/status/{id}"), &b).await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "NOT_FOUND"));
    let r = api.get("/api/sms/messages", &b).await;
    assert_eq!(r.data()["total"], 0);
    assert_eq!(r.data()["items"], json!([]));
    let r = api.get("/api/sms/messages", &a).await;
    assert_eq!(r.data()["total"], 1);

    let provider = api
        .post(
            "/api/sms/providers",
            &a,
            json!({ "providerName": "smpp", "displayName": "a's bind",
                    "credentials": { "host": "127.0.0.1", "port": 2775, "systemId": "a", "password": "pw" } }),
        )
        .await;
    let pid = provider.data()["id"].as_u64().unwrap();
    assert_eq!(
        api.get(&format!("/api/sms/providers/{pid}"), &b)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.delete(&format!("/api/sms/providers/{pid}"), &b)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(api.get("/api/sms/providers", &b).await.data()["total"], 0);
    let r = api.get("/api/sms/status/not-a-number", &a).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn scopes_are_enforced() {
    let api = Api::start().await;
    let (_, admin) = api.org("school").await;
    let (_, reader) = api.key(&admin, &["sms:read"], json!({})).await;
    let (_, sender) = api.key(&admin, &["sms:send"], json!({})).await;
    let r = api
        .post(
            "/api/sms/send",
            &reader,
            json!({ "to": "+923001234567", "body": "x" }),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "FORBIDDEN"));
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sms:send")
    );
    let r = api
        .post(
            "/api/sms/send",
            &sender,
            json!({ "to": "+923001234567", "body": "x" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let id = r.data()["messageId"].as_u64().unwrap();
    // A sending key may follow its own messages, not list everything.
    assert_eq!(
        api.get(&format!("/api/sms/status/{id}"), &sender)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        api.get("/api/sms/messages", &sender).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        api.get("/api/sms/messages", &reader).await.status,
        StatusCode::OK
    );
    for path in [
        "/api/sms/api-keys",
        "/api/sms/providers",
        "/api/sms/webhooks",
        "/api/sms/analytics",
    ] {
        assert_eq!(
            api.get(path, &reader).await.status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
        assert_eq!(api.get(path, &admin).await.status, StatusCode::OK, "{path}");
    }
    let r = api
        .post(
            "/api/sms/api-keys",
            &admin,
            json!({ "name": "x", "scopes": ["root"] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Organization keys are not superadmin tokens, and a wrong token is refused.
    assert_eq!(
        api.get("/api/admin/organizations", &admin).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api.get("/api/admin/organizations", "wrong").await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = api.get("/api/admin/organizations", ADMIN_TOKEN).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.data()["total"], 1);
}

#[tokio::test]
async fn rate_limits_answer_429_with_headers() {
    let api = Api::start().await;
    let (_, admin) = api.org("school").await;
    let (_, key) = api
        .key(
            &admin,
            &["sms:read"],
            json!({ "rateLimitPerMin": 3, "rateLimitPerDay": 1000 }),
        )
        .await;
    // A minute boundary may reset the window once; within 8 requests the limit is met.
    let mut previous = None;
    let mut limited = None;
    for _ in 0..8 {
        let r = api.get("/api/sms/messages", &key).await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(r);
            break;
        }
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("x-ratelimit-limit"), Some("3"));
        previous = Some(r);
    }
    let limited = limited.expect("never rate limited");
    assert_eq!(limited.code(), "RATE_LIMITED");
    assert_eq!(limited.header("x-ratelimit-remaining"), Some("0"));
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(previous.unwrap().header("x-ratelimit-remaining"), Some("0"));
    // Another key of the organization is not limited by this one.
    assert_eq!(
        api.get("/api/sms/messages", &admin).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn organization_rate_limit_spans_keys() {
    let api = Api::start_with(ApiSettings {
        org_per_minute: Some(4),
        ..settings()
    })
    .await;
    let (_, admin) = api.org("school").await;
    let (_, other) = api.key(&admin, &["sms:read"], json!({})).await;
    // The key creation counted once; a window reset at most once within the loop.
    let mut limited = false;
    for i in 0..10 {
        let key = if i % 2 == 0 { &admin } else { &other };
        let r = api.get("/api/sms/messages", key).await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            assert!(
                r.json["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("organization")
            );
            limited = true;
            break;
        }
    }
    assert!(limited);
}

#[tokio::test]
async fn revoked_expired_and_rotated_keys() {
    let api = Api::start().await;
    let (_, admin) = api.org("school").await;
    let (id, key) = api.key(&admin, &["sms:read"], json!({})).await;
    assert_eq!(
        api.get("/api/sms/messages", &key).await.status,
        StatusCode::OK
    );
    let r = api.delete(&format!("/api/sms/api-keys/{id}"), &admin).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.data()["isActive"], false);
    // The cache forgot it at once.
    assert_eq!(
        api.get("/api/sms/messages", &key).await.status,
        StatusCode::UNAUTHORIZED
    );

    let (_, expired) = api
        .key(
            &admin,
            &["sms:read"],
            json!({ "expiresAt": "2020-01-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(
        api.get("/api/sms/messages", &expired).await.status,
        StatusCode::UNAUTHORIZED
    );

    let (id, old) = api.key(&admin, &["sms:read"], json!({})).await;
    assert_eq!(
        api.get("/api/sms/messages", &old).await.status,
        StatusCode::OK
    );
    let r = api
        .post(&format!("/api/sms/api-keys/{id}/rotate"), &admin, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    let new = r.data()["key"].as_str().unwrap().to_owned();
    assert_eq!(r.data()["scopes"], json!(["sms:read"]));
    assert_eq!(
        api.get("/api/sms/messages", &old).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api.get("/api/sms/messages", &new).await.status,
        StatusCode::OK
    );

    // Scope changes apply at once too.
    let nid = r.data()["id"].as_u64().unwrap();
    let r = api
        .put(
            &format!("/api/sms/api-keys/{nid}"),
            &admin,
            json!({ "scopes": ["sms:send"] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    assert_eq!(
        api.get("/api/sms/messages", &new).await.status,
        StatusCode::FORBIDDEN
    );

    // Lists show prefixes, never keys or hashes.
    let r = api.get("/api/sms/api-keys", &admin).await;
    let text = r.json.to_string();
    assert!(!text.contains(&new) && !text.contains(&old) && !text.contains("keyHash"));
    for k in r.data()["items"].as_array().unwrap() {
        assert!(k["keyPrefix"].as_str().unwrap().starts_with("sk_live_"));
        assert!(k.get("key").is_none());
    }
    // lastUsedAt is recorded (written behind the request, so looked for a little while).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let r = api.get("/api/sms/api-keys", &admin).await;
        let used = r.data()["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["id"] == nid && k["lastUsedAt"].is_string());
        if used {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "lastUsedAt never set"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn bulk_send_reports_invalid_recipients_and_accepts_the_rest() {
    let api = Api::start().await;
    let (org, key) = api.org("school").await;
    let r = api
        .post(
            "/api/sms/send-bulk",
            &key,
            json!({
                "body": "Dear {{name}}, PKR {{amount}} is due",
                "recipients": [
                    { "to": "+923001234567", "variables": { "name": "Ali", "amount": 5000 } },
                    { "to": "bogus", "variables": { "name": "X", "amount": 1 } },
                    { "to": "03009876543", "variables": { "name": "Sara", "amount": "7500" } },
                    { "to": "03009876544", "variables": { "name": "Missing" } }
                ]
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.json);
    let data = r.data();
    assert_eq!(data["accepted"], 2);
    assert_eq!(data["rejected"], 2);
    assert_eq!(data["errors"][0]["index"], 1);
    assert_eq!(data["errors"][0]["code"], "INVALID_PHONE");
    assert_eq!(data["errors"][1]["index"], 3);
    assert!(
        data["errors"][1]["reason"]
            .as_str()
            .unwrap()
            .contains("amount")
    );
    let campaign = data["campaignId"].as_u64().unwrap();
    let ids: Vec<u64> = data["messageIds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let first = api.store.message(org, ids[0]).unwrap();
    assert_eq!(first.body, "Dear Ali, PKR 5000 is due");
    assert_eq!(first.campaign_id, Some(campaign));
    assert_eq!(
        api.store.message(org, ids[1]).unwrap().to_number,
        "+923009876543"
    );
    let listed = api
        .get(&format!("/api/sms/messages?campaignId={campaign}"), &key)
        .await;
    assert_eq!(listed.data()["total"], 2);

    let r = api
        .post(
            "/api/sms/send-bulk",
            &key,
            json!({ "body": "x", "recipients": [{ "to": "1" }] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn preview_counts_without_sending() {
    let api = Api::start().await;
    let (org, key) = api.org("school").await;
    let r = api
        .post("/api/sms/preview", &key, json!({ "body": "Salam سلام" }))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    assert_eq!(r.data()["encoding"], "UCS-2");
    assert_eq!(r.data()["segments"], 1);
    assert_eq!(r.data()["ucs2Characters"], json!(["س", "ل", "ا", "م"]));
    let r = api
        .post("/api/sms/preview", &key, json!({ "body": "a".repeat(161) }))
        .await;
    assert_eq!(
        (r.data()["encoding"].as_str(), r.data()["segments"].as_u64()),
        (Some("GSM-7"), Some(2))
    );
    assert_eq!(r.data()["estimatedCost"], "1.00");
    let all = api
        .store
        .list_messages(org, &MessageFilter::default(), PageRequest::default())
        .unwrap();
    assert_eq!(all.total, 0);
}

#[tokio::test]
async fn message_list_filters_and_pages() {
    let api = Api::start().await;
    let (_, key) = api.org("school").await;
    for i in 0..5 {
        let r = api
            .post(
                "/api/sms/send",
                &key,
                json!({ "to": format!("+92300123456{i}"), "body": "x" }),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
    }
    let r = api.get("/api/sms/messages?limit=2&page=2", &key).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.data()["total"], 5);
    assert_eq!(r.data()["items"].as_array().unwrap().len(), 2);
    // Newest first: page 2 holds the 3rd and 2nd sent.
    assert_eq!(r.data()["items"][0]["to"], "+923001234562");
    let r = api.get("/api/sms/messages?phone=03001234563", &key).await;
    assert_eq!(r.data()["total"], 1);
    let r = api
        .get("/api/sms/messages?status=queued&direction=OUTBOUND", &key)
        .await;
    assert_eq!(r.data()["total"], 5);
    let r = api.get("/api/sms/messages?status=DELIVERED", &key).await;
    assert_eq!(r.data()["total"], 0);
    let r = api
        .get("/api/sms/messages?from=2000-01-01&to=2000-01-02", &key)
        .await;
    assert_eq!(r.data()["total"], 0);
    for bad in [
        "limit=1001",
        "limit=0",
        "page=0",
        "status=LOST",
        "from=yesterday",
        "limit=abc",
    ] {
        let r = api.get(&format!("/api/sms/messages?{bad}"), &key).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
}

#[tokio::test]
async fn inbox_groups_conversations_and_threads() {
    let api = Api::start().await;
    let (org, key) = api.org("school").await;
    let inbound = |from: &str, body: &str| Message {
        organization_id: org,
        direction: Direction::Inbound,
        from_number: from.into(),
        to_number: "8080".into(),
        body: body.into(),
        ..Message::default()
    };
    api.store
        .enqueue(inbound("+923001111111", "hello"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let r = api
        .post(
            "/api/sms/send",
            &key,
            json!({ "to": "+923001111111", "body": "hi back" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    tokio::time::sleep(Duration::from_millis(5)).await;
    api.store
        .enqueue(inbound("+923001111111", "thanks"))
        .await
        .unwrap();
    api.store
        .enqueue(inbound("+923002222222", "who is this"))
        .await
        .unwrap();

    let r = api.get("/api/sms/inbox", &key).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    let conversations = r.data()["items"].as_array().unwrap();
    assert_eq!(conversations.len(), 2);
    assert_eq!(conversations[0]["phone"], "+923002222222");
    assert_eq!(conversations[0]["unreadCount"], 1);
    assert_eq!(conversations[1]["phone"], "+923001111111");
    assert_eq!(
        conversations[1]["unreadCount"], 1,
        "only the message after the reply"
    );
    assert_eq!(conversations[1]["messageCount"], 3);
    assert_eq!(conversations[1]["lastMessage"]["body"], "thanks");

    let r = api.get("/api/sms/inbox?phone=03001111111", &key).await;
    let bodies: Vec<&str> = r.data()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["thanks", "hi back", "hello"]);
}

#[tokio::test]
async fn provider_settings_the_engine_cannot_use_are_refused_with_the_key() {
    let api = Api::start().await;
    let (_, key) = api.org("school").await;
    let creds =
        json!({ "host": "127.0.0.1", "port": 2775, "systemId": "sairex", "password": "s3cret" });
    for (settings, named) in [
        (json!({ "window": 0 }), "settings.window"),
        (json!({ "binds": 500 }), "settings.binds"),
        (json!({ "bindMode": "sideways" }), "sideways"),
        (json!({ "windw": 5 }), "windw"),
        (
            json!({ "tls": { "enabled": true, "caFile": "/etc/shadow" } }),
            "caFile",
        ),
    ] {
        let r = api
            .post(
                "/api/sms/providers",
                &key,
                json!({ "providerName": "smpp", "credentials": creds, "settings": settings }),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{settings}: {:?}",
            r.json
        );
        let message = r.json["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(named), "{settings}: {message}");
        assert!(!r.json.to_string().contains("s3cret"));
    }
    assert_eq!(api.engine.provider_changes.load(Ordering::SeqCst), 0);
}

/// The HTTP kinds are read by the engine's own parser too: a typo in a settings key or a
/// missing credential is a 400 naming it, not a provider the engine silently never starts.
#[tokio::test]
async fn http_provider_settings_the_engine_cannot_use_are_refused_with_the_key() {
    let api = Api::start().await;
    let (_, key) = api.org("school").await;
    let twilio = json!({ "accountSid": "AC123", "authToken": "t0psecret" });
    for (body, named) in [
        (
            json!({ "providerName": "twilio", "credentials": twilio, "settings": { "fromm": "+15005550006" } }),
            "fromm",
        ),
        (
            json!({ "providerName": "twilio", "credentials": { "accountSid": "AC123" } }),
            "credentials.authToken",
        ),
        (
            json!({ "providerName": "twilio", "credentials": twilio, "settings": { "validityPeriod": 0 } }),
            "settings.validityPeriod",
        ),
        (
            json!({ "providerName": "vonage", "credentials": { "apiKey": "k" } }),
            "apiSecret",
        ),
        (
            json!({ "providerName": "veevo", "credentials": {} }),
            "credentials.hash",
        ),
    ] {
        let r = api.post("/api/sms/providers", &key, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {:?}", r.json);
        assert_eq!(r.json["error"]["code"], "VALIDATION_ERROR", "{body}");
        let message = r.json["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(named), "{body}: {message}");
        assert!(!r.json.to_string().contains("t0psecret"));
    }
    assert_eq!(api.engine.provider_changes.load(Ordering::SeqCst), 0);
    let r = api
        .post(
            "/api/sms/providers",
            &key,
            json!({ "providerName": "twilio", "displayName": "Twilio", "credentials": twilio, "settings": { "from": "+15005550006" } }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
}

#[tokio::test]
async fn providers_crud_masks_credentials_and_tells_the_engine() {
    let api = Api::start().await;
    let (org, key) = api.org("school").await;
    let r = api
        .post(
            "/api/sms/providers",
            &key,
            json!({ "providerName": "smpp", "displayName": "Jazz primary", "priority": 1,
                    "credentials": { "host": "127.0.0.1", "port": 2775, "systemId": "sairex", "password": "s3cret" },
                    "settings": { "binds": 2, "window": 10, "tps": 100 }, "costPerSegment": "0.25" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    assert!(!r.json.to_string().contains("s3cret"));
    assert_eq!(r.data()["credentials"]["password"], "********");
    assert_eq!(r.data()["tps"], 100);
    let id = r.data()["id"].as_u64().unwrap();
    assert_eq!(api.engine.provider_changes.load(Ordering::SeqCst), 1);

    let r = api.get(&format!("/api/sms/providers/{id}"), &key).await;
    assert!(!r.json.to_string().contains("s3cret"));
    // Sending back what was read keeps the password; a new host is applied.
    let mut creds = r.data()["credentials"].clone();
    creds["host"] = json!("10.0.0.5");
    let r = api
        .put(
            &format!("/api/sms/providers/{id}"),
            &key,
            json!({ "credentials": creds, "isActive": false }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    let stored = api.store.provider(org, id).unwrap();
    assert_eq!(stored.credentials["password"], "s3cret");
    assert_eq!(stored.credentials["host"], "10.0.0.5");
    assert!(!stored.is_active);
    assert_eq!(api.engine.provider_changes.load(Ordering::SeqCst), 2);

    // The organization's cost is the provider's now (0.25 per segment).
    api.put(
        &format!("/api/sms/providers/{id}"),
        &key,
        json!({ "isActive": true }),
    )
    .await;
    let r = api
        .post(
            "/api/sms/send",
            &key,
            json!({ "to": "+923001234567", "body": "x", "provider": "Jazz primary" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.json);
    assert_eq!(r.data()["estimatedCost"], "0.25");
    let m = api
        .store
        .message(org, r.data()["messageId"].as_u64().unwrap())
        .unwrap();
    assert_eq!(m.provider_id, Some(id));
    let r = api
        .post(
            "/api/sms/send",
            &key,
            json!({ "to": "+923001234567", "body": "x", "provider": "nope" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let r = api
        .post(
            &format!("/api/sms/providers/{id}/test"),
            &key,
            json!({ "to": "03001234567" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.json);
    let m = api
        .store
        .message(org, r.data()["messageId"].as_u64().unwrap())
        .unwrap();
    assert_eq!(m.provider_id, Some(id));

    let r = api
        .post(
            "/api/sms/providers",
            &key,
            json!({ "providerName": "pigeon", "displayName": "x" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = api
        .post(
            "/api/sms/providers",
            &key,
            json!({ "providerName": "smpp", "displayName": "x", "credentials": { "host": "h" } }),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("credentials.")
    );

    assert_eq!(
        api.delete(&format!("/api/sms/providers/{id}"), &key)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        api.get(&format!("/api/sms/providers/{id}"), &key)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(api.engine.provider_changes.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn webhooks_crud_with_secret_shown_once() {
    let api = Api::start().await;
    let (org, key) = api.org("school").await;
    let r = api
        .post("/api/sms/webhooks", &key, json!({ "url": "http://127.0.0.1:9/hook", "events": ["message.delivered", "message.inbound"] }))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    let secret = r.data()["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_") && secret.len() > 40);
    let id = r.data()["id"].as_u64().unwrap();
    assert_eq!(api.store.webhook(org, id).unwrap().secret, secret);

    let r = api.get(&format!("/api/sms/webhooks/{id}"), &key).await;
    assert!(!r.json.to_string().contains(&secret));
    let r = api.get("/api/sms/webhooks", &key).await;
    assert!(!r.json.to_string().contains(&secret));
    assert_eq!(r.data()["total"], 1);

    let r = api
        .post(
            "/api/sms/webhooks",
            &key,
            json!({ "url": "http://127.0.0.1:9/", "events": ["message.exploded"] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = api
        .post("/api/sms/webhooks", &key, json!({ "url": "ftp://x" }))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let r = api
        .put(
            &format!("/api/sms/webhooks/{id}"),
            &key,
            json!({ "rotateSecret": true, "events": ["message.failed"] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    let rotated = r.data()["secret"].as_str().unwrap();
    assert_ne!(rotated, secret);
    assert_eq!(r.data()["events"], json!(["message.failed"]));

    let r = api
        .post(&format!("/api/sms/webhooks/{id}/test"), &key, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    assert_eq!(r.data()["success"], true);

    api.store
        .record_webhook_delivery(sairex_store::model::WebhookDelivery {
            organization_id: org,
            webhook_id: id,
            event_type: "message.delivered".into(),
            payload: json!({ "messageId": 1 }),
            http_status: Some(500),
            attempt: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    let r = api
        .get(&format!("/api/sms/webhooks/{id}/deliveries"), &key)
        .await;
    assert_eq!(r.data()["total"], 1);
    assert_eq!(r.data()["items"][0]["httpStatus"], 500);

    let (_, other) = api.org("other").await;
    assert_eq!(
        api.get(&format!("/api/sms/webhooks/{id}/deliveries"), &other)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.post(&format!("/api/sms/webhooks/{id}/test"), &other, json!({}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.delete(&format!("/api/sms/webhooks/{id}"), &key)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        api.get(&format!("/api/sms/webhooks/{id}"), &key)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn private_webhook_and_callback_targets_are_refused() {
    let api = Api::start_with(ApiSettings {
        allow_private_webhook_targets: false,
        ..settings()
    })
    .await;
    let (_, key) = api.org("school").await;
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://169.254.169.254/latest",
        "http://localhost/x",
        "http://[::1]/x",
    ] {
        let r = api
            .post("/api/sms/webhooks", &key, json!({ "url": url }))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{url}");
        assert!(
            r.json["error"]["message"].as_str().unwrap().contains("url"),
            "{url}"
        );
    }
    let r = api
        .post(
            "/api/sms/send",
            &key,
            json!({ "to": "+923001234567", "body": "x", "callbackUrl": "http://10.1.2.3/cb" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("callbackUrl")
    );
}

/// Reads the event stream until `done` holds for the text so far (and a whole event is in).
async fn read_events(response: &mut reqwest::Response, done: impl Fn(&str) -> bool) -> String {
    let mut text = String::new();
    while !done(&text) || !text.ends_with("\n\n") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), response.chunk())
            .await
            .unwrap_or_else(|_| panic!("no event within 5 s; so far: {text}"))
            .unwrap()
            .expect("stream ended");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    text
}

/// Reads the event stream until `n` event ids came; returns them (parsed as they arrive, so a
/// long stream costs linear time).
async fn read_ids(response: &mut reqwest::Response, n: usize) -> Vec<u64> {
    let mut ids = Vec::with_capacity(n);
    let mut partial = String::new();
    while ids.len() < n {
        let chunk = tokio::time::timeout(Duration::from_secs(5), response.chunk())
            .await
            .unwrap_or_else(|_| panic!("no event within 5 s after {} ids", ids.len()))
            .unwrap()
            .expect("stream ended");
        partial.push_str(&String::from_utf8_lossy(&chunk));
        let complete = partial.rfind('\n').map_or(0, |i| i + 1);
        ids.extend(event_ids(&partial[..complete]));
        partial.drain(..complete);
    }
    ids
}

/// Opens the event stream, resuming after `last` when given.
async fn open_events(api: &Api, key: &str, last: Option<u64>) -> reqwest::Response {
    let mut req = api
        .client
        .get(format!("{}/api/sms/events", api.base))
        .bearer_auth(key);
    if let Some(last) = last {
        req = req.header("Last-Event-ID", last.to_string());
    }
    req.send().await.unwrap()
}

/// The `id:` of each event in a stream's text, in order.
fn event_ids(text: &str) -> Vec<u64> {
    text.lines()
        .filter_map(|l| l.strip_prefix("id:"))
        .map(|id| id.trim().parse().unwrap())
        .collect()
}

async fn move_to(api: &Api, org: u64, id: u64, status: MessageStatus) {
    api.store
        .update_message(
            org,
            id,
            sairex_store::MessageUpdate::new(status.as_str()),
            move |m| {
                m.status = status;
                m.provider_id = Some(3);
                Ok(())
            },
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn event_stream_carries_the_organizations_status_changes_only() {
    let api = Api::start().await;
    let (org, key) = api.org("school").await;
    let (other_org, _) = api.org("other school").await;
    let mut response = api
        .client
        .get(format!("{}/api/sms/events", api.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    // Another tenant's change first, then ours: real store changes, read from the outbox.
    let theirs = api
        .store
        .enqueue(Message {
            organization_id: other_org,
            to_number: "+923005555555".into(),
            body: "theirs".into(),
            ..Message::default()
        })
        .await
        .unwrap();
    let ours = api
        .store
        .enqueue(Message {
            organization_id: org,
            to_number: "+923001234567".into(),
            body: "ours".into(),
            ..Message::default()
        })
        .await
        .unwrap();
    let ours = ours.message().id;
    move_to(&api, org, ours, MessageStatus::Delivered).await;
    let inbound = api
        .store
        .enqueue(Message {
            organization_id: org,
            direction: Direction::Inbound,
            from_number: "+923001111111".into(),
            to_number: "8080".into(),
            body: "STOP".into(),
            ..Message::default()
        })
        .await
        .unwrap();
    let text = read_events(&mut response, |t| t.contains("event: message.inbound")).await;
    assert!(text.contains("event: message.status"), "{text}");
    assert!(text.contains(&format!("\"messageId\":{ours}")), "{text}");
    assert!(text.contains("\"status\":\"QUEUED\""), "{text}");
    assert!(text.contains("\"status\":\"DELIVERED\""), "{text}");
    assert!(text.contains("\"providerId\":3"), "{text}");
    let theirs = theirs.message().id;
    assert!(!text.contains(&format!("\"messageId\":{theirs}")), "{text}");
    assert!(text.contains(&format!("\"messageId\":{}", inbound.message().id)));
    assert!(text.contains("\"from\":\"+923001111111\""), "{text}");
    assert!(text.contains("\"body\":\"STOP\""), "{text}");
    // Every event has an id, increasing.
    let ids = event_ids(&text);
    assert_eq!(ids.len(), 3, "{text}");
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
}

/// A client that drops and comes back with `Last-Event-ID` gets what it missed, in order,
/// exactly once; one whose position was trimmed is told so.
#[tokio::test]
async fn event_stream_resumes_after_last_event_id_without_gaps_or_repeats() {
    let api = Api::start().await;
    let (org, key) = api.org("school").await;
    let connect = async |last: Option<u64>| open_events(&api, &key, last).await;
    let mut first = connect(None).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let m = api
            .store
            .enqueue(Message {
                organization_id: org,
                to_number: format!("+92300123450{n}"),
                body: "hi".into(),
                ..Message::default()
            })
            .await
            .unwrap();
        ids.push(m.message().id);
    }
    let text = read_events(&mut first, |t| event_ids(t).len() >= 2).await;
    let seen = event_ids(&text);
    let resume_from = seen[1];
    drop(first);
    // Missed while away: the rest of the queued events, and two deliveries.
    move_to(&api, org, ids[0], MessageStatus::Delivered).await;
    move_to(&api, org, ids[4], MessageStatus::Delivered).await;
    let all: Vec<u64> = api
        .store
        .outbox_after(org, 0, 100)
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(all.len(), 7);
    let expected: Vec<u64> = all.iter().copied().filter(|s| *s > resume_from).collect();
    let mut again = connect(Some(resume_from)).await;
    let text = read_events(&mut again, |t| event_ids(t).len() >= expected.len()).await;
    assert_eq!(event_ids(&text), expected, "{text}");
    assert!(text.contains("\"status\":\"DELIVERED\""), "{text}");
    drop(again);

    // Everything trimmed (the client was away past the retention): one `lagged`, then the end.
    api.store
        .trim_outbox(sairex_store::now_ms() + 1_000, 1)
        .await
        .unwrap();
    let mut late = connect(Some(resume_from)).await;
    let mut text = String::new();
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(5), late.chunk())
        .await
        .expect("the stream ends")
        .unwrap()
    {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("event: lagged"), "{text}");
    assert!(event_ids(&text).is_empty(), "{text}");
}

#[tokio::test]
async fn openapi_documents_every_route_and_every_route_is_served() {
    let api = Api::start().await;
    let response = api
        .client
        .get(format!("{}/openapi.json", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let spec: serde_json::Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(spec["openapi"], "3.1.0");
    let table = route_table();
    assert!(table.len() >= 30);
    for route in &table {
        let op = &spec["paths"][route.path][route.method.to_ascii_lowercase()];
        assert!(
            op.is_object(),
            "{} {} missing from the spec",
            route.method,
            route.path
        );
        assert!(
            op["responses"][route.status.to_string()].is_object(),
            "{} {}",
            route.method,
            route.path
        );
        // Served: the router answers it (auth refusal at most), not with its fallbacks.
        let path = route
            .path
            .replace(['{', '}'], "")
            .replace("messageId", "1")
            .replace("providerId", "1")
            .replace("keyId", "1")
            .replace("webhookId", "1");
        let method = Method::from_bytes(route.method.as_bytes()).unwrap();
        let r = api
            .client
            .request(method, format!("{}{}", api.base, path))
            .send()
            .await
            .unwrap();
        assert_ne!(
            r.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{} {}",
            route.method,
            route.path
        );
        if r.status() == StatusCode::NOT_FOUND {
            let body: serde_json::Value =
                serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
            assert_ne!(
                body["error"]["message"], "no such route",
                "{} {}",
                route.method, route.path
            );
        }
    }
    // And nothing in the spec that the table does not hold.
    let documented: usize = spec["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_object().unwrap().len())
        .sum();
    assert_eq!(documented, table.len());
}

#[tokio::test]
async fn health_and_readiness() {
    let api = Api::start().await;
    let r = api.raw(Method::GET, "/healthz", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = api.raw(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    api.engine.running.store(false, Ordering::SeqCst);
    let r = api.raw(Method::GET, "/readyz", None, None).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "NOT_READY")
    );
}

#[tokio::test]
async fn analytics_summarises_the_period() {
    let api = Api::start().await;
    let (org, key) = api.org("school").await;
    let mut ids = Vec::new();
    for i in 0..4 {
        let r = api
            .post(
                "/api/sms/send",
                &key,
                json!({ "to": format!("+92300123456{i}"), "body": "x" }),
            )
            .await;
        ids.push(r.data()["messageId"].as_u64().unwrap());
    }
    for (i, id) in ids.iter().enumerate() {
        let status = if i < 3 {
            MessageStatus::Delivered
        } else {
            MessageStatus::Failed
        };
        api.store
            .update_message(
                org,
                *id,
                sairex_store::MessageUpdate::new(status.as_str()),
                move |m| {
                    m.status = status;
                    m.queue = sairex_store::model::QueuePlace::Done;
                    Ok(())
                },
            )
            .await
            .unwrap();
    }
    let r = api.get("/api/sms/analytics?period=last_7_days", &key).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    let summary = &r.data()["summary"];
    assert_eq!(summary["totalSent"], 4);
    assert_eq!(summary["totalDelivered"], 3);
    assert_eq!(summary["totalFailed"], 1);
    assert_eq!(summary["deliveryRate"], 75.0);
    assert_eq!(summary["totalCost"], "2.00");
    assert_eq!(r.data()["dailyBreakdown"][0]["sent"], 4);
    assert_eq!(
        api.get("/api/sms/analytics?period=forever", &key)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
}

/// DLT (issue 7, blueprint §6.4): with DLT enabled, a transactional send bound to a template
/// needs the template approved and registered; other organizations are not affected.
#[tokio::test]
async fn dlt_requires_an_approved_registered_template_for_transactional_sends() {
    let api = Api::start().await;
    let reply = api
        .post(
            "/api/admin/organizations",
            ADMIN_TOKEN,
            json!({ "name": "india school", "defaultCountry": "PK", "dltEnabled": true }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.json);
    assert_eq!(reply.data()["dltEnabled"], true);
    let key = reply.data()["apiKey"]["key"].as_str().unwrap().to_owned();
    let (_, other) = api.org("no dlt").await;

    let template = |key: &str| {
        let key = key.to_owned();
        let api = &api;
        async move {
            let r = api
                .post(
                    "/api/sms/templates",
                    &key,
                    json!({ "name": "fee", "body": "Fee of {{amount}} due", "category": "TRANSACTIONAL" }),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
            r.data()["id"].as_u64().unwrap()
        }
    };
    let send = |key: String, id: u64| {
        let api = &api;
        async move {
            api.post(
                "/api/sms/send",
                &key,
                json!({ "to": "+923001234567", "templateId": id, "variables": { "amount": "500" } }),
            )
            .await
        }
    };

    let id = template(&key).await;
    let r = send(key.clone(), id).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.json);
    assert_eq!(r.json["error"]["code"], "DLT_TEMPLATE_NOT_APPROVED");

    // Approved but not registered: still refused. Approved and registered: accepted.
    let r = api
        .put(
            &format!("/api/sms/templates/{id}"),
            &key,
            json!({ "isApproved": true }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    assert_eq!(
        send(key.clone(), id).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let r = api
        .put(
            &format!("/api/sms/templates/{id}"),
            &key,
            json!({ "dltTemplateId": "1107161234567890123" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    let r = send(key.clone(), id).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.json);

    // An organization without DLT sends from an unapproved template.
    let id = template(&other).await;
    assert_eq!(send(other.clone(), id).await.status, StatusCode::ACCEPTED);
}

/// `PATCH /api/admin/organizations/{id}` (superadmin): the fields given change, `null` clears
/// the nullable ones, bad input is a 400 envelope, and the API's cached organization sees the
/// change on the very next request (its cache would otherwise keep the old facts for 2 s).
#[tokio::test]
async fn the_superadmin_changes_an_organization_and_the_next_request_sees_it() {
    let api = Api::start().await;
    let (org, key) = api.org("school").await;
    let path = format!("/api/admin/organizations/{org}");
    let t = api
        .post(
            "/api/sms/templates",
            &key,
            json!({ "name": "fee", "body": "Fee due", "category": "TRANSACTIONAL" }),
        )
        .await;
    let tid = t.data()["id"].as_u64().unwrap();
    let send = |body: serde_json::Value| api.post("/api/sms/send", &key, body);
    let from_template = json!({ "to": "+923001234567", "templateId": tid });
    // Warms the cache with DLT off.
    assert_eq!(
        send(from_template.clone()).await.status,
        StatusCode::ACCEPTED
    );

    let r = api
        .patch(
            &path,
            ADMIN_TOKEN,
            json!({ "dltEnabled": true, "name": "Karachi school", "retentionDays": 30,
                    "currency": "pkr",
                    "quietHours": { "start": "21:00", "end": "08:00", "timeZone": "Asia/Karachi" } }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    let d = r.data();
    assert_eq!(d["dltEnabled"], true);
    assert_eq!(d["name"], "Karachi school");
    assert_eq!(d["retentionDays"], 30);
    assert_eq!(d["currency"], "PKR");
    assert_eq!(
        d["quietHours"],
        json!({ "start": "21:00", "end": "08:00", "timeZone": "Asia/Karachi" })
    );
    assert_eq!(d["defaultCountry"], "PK", "absent fields stay");
    let stored = api.store.organization(org).unwrap();
    assert!(stored.dlt_enabled);
    assert_eq!(stored.retention_days, Some(30));
    let quiet = stored.quiet_hours.unwrap();
    assert_eq!((quiet.start_minute, quiet.end_minute), (21 * 60, 8 * 60));
    // At once, not after the cache's 2 s.
    let refused = send(from_template.clone()).await;
    assert_eq!(
        refused.code(),
        "DLT_TEMPLATE_NOT_APPROVED",
        "{:?}",
        refused.json
    );
    assert_eq!(
        api.get(&path, ADMIN_TOKEN).await.data()["name"],
        "Karachi school"
    );

    // null clears; disabling and credit take effect on the next request too.
    let r = api
        .patch(
            &path,
            ADMIN_TOKEN,
            json!({ "quietHours": null, "retentionDays": null, "dltEnabled": false,
                    "creditBalance": "0.10" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    assert_eq!(r.data()["quietHours"], serde_json::Value::Null);
    assert_eq!(r.data()["retentionDays"], serde_json::Value::Null);
    assert_eq!(r.data()["creditBalance"], "0.10");
    assert_eq!(
        send(from_template.clone()).await.code(),
        "INSUFFICIENT_CREDIT"
    );
    api.patch(
        &path,
        ADMIN_TOKEN,
        json!({ "creditBalance": null, "isActive": false }),
    )
    .await;
    let disabled = send(from_template.clone()).await;
    assert_eq!(
        (disabled.status, disabled.code()),
        (StatusCode::FORBIDDEN, "ORGANIZATION_DISABLED")
    );
    api.patch(&path, ADMIN_TOKEN, json!({ "isActive": true }))
        .await;
    assert_eq!(send(from_template).await.status, StatusCode::ACCEPTED);

    // Bad input: 400 envelopes naming the field; nothing changes.
    let before = api.store.organization(org).unwrap();
    for (body, field) in [
        (json!({ "name": "  " }), "name"),
        (json!({ "defaultCountry": "XX" }), "defaultCountry"),
        (json!({ "currency": "rupees" }), "currency"),
        (json!({ "creditBalance": "lots" }), "creditBalance"),
        (json!({ "retentionDays": 0 }), "retentionDays"),
        (json!({ "retentionDays": 40_000 }), "retentionDays"),
        (
            json!({ "quietHours": { "start": "25:00", "end": "08:00" } }),
            "quietHours.start",
        ),
        (
            json!({ "quietHours": { "start": "21:00" } }),
            "quietHours.end",
        ),
        (
            json!({ "quietHours": { "start": "21:00", "end": "08:00", "timeZone": "Mars/Olympus" } }),
            "quietHours.timeZone",
        ),
        (json!({ "dltEnabled": "yes" }), "expected a boolean"),
    ] {
        let r = api.patch(&path, ADMIN_TOKEN, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {:?}", r.json);
        assert_eq!(r.json["success"], false);
        let message = r.json["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{body}: {message}");
    }
    let r = api
        .raw(
            Method::PATCH,
            &path,
            Some(ADMIN_TOKEN),
            Some(b"{not json".to_vec()),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "MALFORMED_JSON")
    );
    assert_eq!(api.store.organization(org).unwrap(), before);

    // Unknown organizations are 404; only the superadmin token may change one.
    for missing in [
        "/api/admin/organizations/999999",
        "/api/admin/organizations/x",
    ] {
        let r = api
            .patch(missing, ADMIN_TOKEN, json!({ "name": "x" }))
            .await;
        assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "NOT_FOUND"));
    }
    let r = api.patch(&path, &key, json!({ "dltEnabled": false })).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "an organization's own admin key"
    );
    let r = api
        .raw(Method::PATCH, &path, None, Some(b"{}".to_vec()))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(api.store.organization(org).unwrap(), before);
}

/// Issue 14's shape: a client drops for 10 s in the middle of a 10,000-message bulk send and
/// resumes with `Last-Event-ID`: it sees every message's event exactly once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_stream_client_away_for_ten_seconds_of_a_bulk_send_misses_nothing() {
    let api = Api::start().await;
    let (org, key) = api.org("school").await;
    let connect = async |last: Option<u64>| open_events(&api, &key, last).await;
    let bulk = async |from: usize| {
        let recipients: Vec<serde_json::Value> = (from..from + 1_000)
            .map(|n| json!({ "to": format!("+9230{n:08}") }))
            .collect();
        let r = api
            .post(
                "/api/sms/send-bulk",
                &key,
                json!({ "body": "Fee due Friday", "recipients": recipients }),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.json);
        assert_eq!(r.data()["accepted"], 1_000);
    };
    let mut stream = connect(None).await;
    bulk(0).await;
    bulk(1_000).await;
    // Read part of it, then drop the connection for 10 s while the send goes on.
    let mut ids = read_ids(&mut stream, 1_500).await;
    let last = *ids.last().unwrap();
    drop(stream);
    let away = tokio::time::Instant::now();
    for batch in 2..10 {
        bulk(batch * 1_000).await;
    }
    tokio::time::sleep_until(away + Duration::from_secs(10)).await;
    let mut stream = connect(Some(last)).await;
    ids.extend(read_ids(&mut stream, 10_000 - ids.len()).await);
    assert_eq!(ids.len(), 10_000, "every event once");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in order, no repeat");
    let all: Vec<u64> = api
        .store
        .outbox_after(org, 0, 20_000)
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(ids, all, "exactly the outbox's events");
}
