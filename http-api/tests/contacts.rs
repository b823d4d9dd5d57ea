//! Contacts, CSV import, groups and templates over real HTTP on loopback with a real store.

mod common;

use common::{Api, Reply};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn csv(api: &Api, key: &str, query: &str, body: impl Into<reqwest::Body>) -> Reply {
    let response = api
        .client
        .post(format!("{}/api/sms/contacts/import{query}", api.base))
        .bearer_auth(key)
        .header("content-type", "text/csv")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let json: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    Reply {
        status,
        headers,
        json,
    }
}

async fn export(api: &Api, key: &str) -> String {
    let response = api
        .client
        .get(format!("{}/api/sms/contacts/export", api.base))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    response.text().await.unwrap()
}

#[tokio::test]
async fn contacts_crud_duplicates_search_and_opt_out() {
    let api = Api::start().await;
    let (org, key) = api.org("school").await;
    let created = api
        .post(
            "/api/sms/contacts",
            &key,
            json!({ "phoneNumber": "0300-1234567", "displayName": "Ali Khan", "email": "ali@example.com", "metadata": { "class": "5B" } }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.json);
    let id = created.data()["id"].as_u64().unwrap();
    assert_eq!(created.data()["phoneNumber"], "+923001234567");
    assert_eq!(created.data()["countryCode"], "PK");
    assert_eq!(created.data()["isOptedOut"], false);

    // The same number written another way is the same contact: 409 with its id.
    let dup = api
        .post(
            "/api/sms/contacts",
            &key,
            json!({ "phone": "+92 300 1234567" }),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert_eq!(dup.json["error"]["existingId"], id);

    let bad = api
        .post("/api/sms/contacts", &key, json!({ "phone": "12" }))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.code(), "INVALID_PHONE");

    let sara = api
        .post(
            "/api/sms/contacts",
            &key,
            json!({ "phone": "+923009876543", "name": "Sara" }),
        )
        .await;
    let sara_id = sara.data()["id"].as_u64().unwrap();

    let found = api.get("/api/sms/contacts?search=ali", &key).await;
    assert_eq!(found.data()["total"], 1);
    assert_eq!(found.data()["items"][0]["id"], id);
    let found = api.get("/api/sms/contacts?search=9876", &key).await;
    assert_eq!(found.data()["items"][0]["id"], sara_id);

    // Opt-out keeps its timestamp; opt-in adds its own and keeps the opt-out's.
    let out = api
        .post(
            &format!("/api/sms/contacts/{sara_id}/opt-out"),
            &key,
            json!({}),
        )
        .await;
    assert_eq!(out.data()["isOptedOut"], true);
    let opted_out_at = out.data()["optedOutAt"].as_str().unwrap().to_owned();
    let opted = api.get("/api/sms/contacts?optedOut=true", &key).await;
    assert_eq!(opted.data()["total"], 1);
    assert_eq!(opted.data()["items"][0]["id"], sara_id);
    let reachable = api.get("/api/sms/contacts?optedOut=false", &key).await;
    assert_eq!(reachable.data()["total"], 1);
    let back = api
        .post(
            &format!("/api/sms/contacts/{sara_id}/opt-in"),
            &key,
            json!({}),
        )
        .await;
    assert_eq!(back.data()["isOptedOut"], false);
    assert_eq!(back.data()["optedOutAt"], opted_out_at.as_str());
    assert!(back.data()["optedInAt"].is_string());

    // Update, and a phone another contact has is 409 naming it.
    let updated = api
        .put(
            &format!("/api/sms/contacts/{id}"),
            &key,
            json!({ "displayName": "Ali K." }),
        )
        .await;
    assert_eq!(updated.data()["displayName"], "Ali K.");
    assert_eq!(updated.data()["metadata"]["class"], "5B");
    let clash = api
        .put(
            &format!("/api/sms/contacts/{id}"),
            &key,
            json!({ "phone": "03009876543" }),
        )
        .await;
    assert_eq!(clash.status, StatusCode::CONFLICT);
    assert_eq!(clash.json["error"]["existingId"], sara_id);

    // Another tenant sees nothing; a key without contacts scopes is refused.
    let (_, other) = api.org("other").await;
    assert_eq!(
        api.get(&format!("/api/sms/contacts/{id}"), &other)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.delete(&format!("/api/sms/contacts/{id}"), &other)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let (_, sender) = api.key(&key, &["sms:send"], json!({})).await;
    assert_eq!(
        api.get("/api/sms/contacts", &sender).await.status,
        StatusCode::FORBIDDEN
    );
    let (_, reader) = api.key(&key, &["contacts:read"], json!({})).await;
    assert_eq!(
        api.get("/api/sms/contacts", &reader).await.status,
        StatusCode::OK
    );
    assert_eq!(
        api.post(
            "/api/sms/contacts",
            &reader,
            json!({ "phone": "+923001111111" })
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        api.store.contact(org, id).unwrap().display_name.as_deref(),
        Some("Ali K.")
    );
}

#[tokio::test]
async fn erasure_leaves_no_trace_of_the_number() {
    let api = Api::start().await;
    let (org, key) = api.org("school").await;
    let c = api
        .post(
            "/api/sms/contacts",
            &key,
            json!({ "phone": "+923001234567", "name": "Ali" }),
        )
        .await;
    let id = c.data()["id"].as_u64().unwrap();
    let group = api
        .post("/api/sms/groups", &key, json!({ "name": "Class 5" }))
        .await;
    let gid = group.data()["id"].as_u64().unwrap();
    api.post(
        &format!("/api/sms/groups/{gid}/members"),
        &key,
        json!({ "contactIds": [id] }),
    )
    .await;
    for body in ["Fee due", "Reminder"] {
        let sent = api
            .post(
                "/api/sms/send",
                &key,
                json!({ "to": "03001234567", "body": body }),
            )
            .await;
        assert_eq!(sent.status, StatusCode::ACCEPTED, "{:?}", sent.json);
    }
    let erased = api.delete(&format!("/api/sms/contacts/{id}"), &key).await;
    assert_eq!(erased.status, StatusCode::OK, "{:?}", erased.json);
    assert_eq!(erased.data()["messagesAnonymised"], 2);
    assert_eq!(
        api.get(&format!("/api/sms/contacts/{id}"), &key)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let group = api.get(&format!("/api/sms/groups/{gid}"), &key).await;
    assert_eq!(group.data()["memberCount"], 0);
    let messages = api.get("/api/sms/messages", &key).await;
    let text = messages.json.to_string();
    assert!(!text.contains("3001234567"), "{text}");
    let _ = org;
    // Every key and value of the store, raw: the number appears nowhere, in any form.
    drop(api.store.flush().await);
    for needle in ["+923001234567", "923001234567", "3001234567"] {
        assert!(
            !api.store.contains_bytes(needle.as_bytes()).unwrap(),
            "{needle} is still in the store"
        );
    }
    // The audit itself finds what is there.
    assert!(api.store.contains_bytes(b"Reminder").unwrap());
}

#[tokio::test]
async fn import_handles_bom_quotes_semicolons_crlf_and_reports_rows() {
    let api = Api::start().await;
    let (org, key) = api.org("school").await;
    let file = "\u{feff}mobile_num;student_name;fee_amount\r\n\
                03001234567;\"Khan; Ali\";5000\r\n\
                not-a-phone;Bad;1\r\n\
                \r\n\
                +923009876543;\"Sara \"\"S\"\"\";7500\r\n\
                03001234567;Ali Again;5100\r\n";
    let mapping =
        r#"{"phone":"mobile_num","name":"student_name","custom":{"amount":"fee_amount"}}"#;
    let q = format!("?mapping={}", urlencode(mapping));

    let preview = csv(&api, &key, &format!("{q}&preview=true"), file).await;
    assert_eq!(preview.status, StatusCode::OK, "{:?}", preview.json);
    let p = preview.data();
    assert_eq!(
        p["columns"],
        json!(["mobile_num", "student_name", "fee_amount"])
    );
    assert_eq!(p["delimiter"], ";");
    assert_eq!(p["rows"].as_array().unwrap().len(), 4);
    assert_eq!(p["rows"][0]["phoneNumber"], "+923001234567");
    assert_eq!(p["rows"][0]["displayName"], "Khan; Ali");
    assert_eq!(p["rows"][0]["metadata"]["amount"], "5000");
    assert_eq!(p["rows"][1]["valid"], false);
    assert_eq!(p["rows"][1]["row"], 3, "{p}");
    assert_eq!(p["rows"][3]["row"], 5, "{p}");
    assert_eq!(p["rows"][2]["displayName"], "Sara \"S\"");
    // Nothing was written.
    assert_eq!(api.get("/api/sms/contacts", &key).await.data()["total"], 0);

    let group = api
        .post("/api/sms/groups", &key, json!({ "name": "Fees" }))
        .await;
    let gid = group.data()["id"].as_u64().unwrap();
    let report = csv(&api, &key, &format!("{q}&groupId={gid}"), file).await;
    assert_eq!(report.status, StatusCode::OK, "{:?}", report.json);
    let r = report.data();
    assert_eq!(r["created"], 2);
    assert_eq!(r["updated"], 1);
    assert_eq!(r["skipped"], 1);
    assert_eq!(r["rows"], 4);
    assert_eq!(r["errors"][0]["row"], 3);
    assert!(r["errors"][0]["reason"].as_str().unwrap().contains("phone"));
    let ali = api
        .store
        .contact_by_phone(org, "+923001234567")
        .unwrap()
        .unwrap();
    assert_eq!(ali.display_name.as_deref(), Some("Ali Again"));
    assert_eq!(ali.metadata, Some(json!({ "amount": "5100" })));
    let g = api.get(&format!("/api/sms/groups/{gid}"), &key).await;
    assert_eq!(g.data()["memberCount"], 2);

    // Re-importing updates, never duplicates; the group count stays exact.
    let again = csv(&api, &key, &format!("{q}&groupId={gid}"), file).await;
    assert_eq!(again.data()["created"], 0);
    assert_eq!(again.data()["updated"], 3);
    let g = api.get(&format!("/api/sms/groups/{gid}"), &key).await;
    assert_eq!(g.data()["memberCount"], 2);

    // A mapping naming a missing column, and a file without a phone column, are 400s.
    let bad = csv(
        &api,
        &key,
        &format!("?mapping={}", urlencode(r#"{"phone":"nope"}"#)),
        file,
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let bad = csv(&api, &key, "", "a,b\n1,2\n").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("phone")
    );
}

#[tokio::test]
async fn import_by_multipart_and_export_round_trips() {
    let api = Api::start().await;
    let (_, key) = api.org("school").await;
    let file = "phone,name,email,house\n03001234567,Ali,ali@example.com,Red\n03009876543,\"Sara, S\",,Blue\n";
    let form = reqwest::multipart::Form::new()
        .text("mapping", r#"{"custom":{"house":"house"}}"#)
        .part(
            "file",
            reqwest::multipart::Part::bytes(file.as_bytes().to_vec()).file_name("c.csv"),
        );
    let response = api
        .client
        .post(format!("{}/api/sms/contacts/import", api.base))
        .bearer_auth(&key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let report: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(report["data"]["created"], 2, "{report}");
    let sara = api.get("/api/sms/contacts?search=sara", &key).await;
    let sara_id = sara.data()["items"][0]["id"].as_u64().unwrap();
    api.post(
        &format!("/api/sms/contacts/{sara_id}/opt-out"),
        &key,
        json!({}),
    )
    .await;

    let exported = export(&api, &key).await;
    assert!(exported.starts_with("id,phoneNumber,countryCode,displayName,email,isOptedOut"));
    assert_eq!(exported.lines().count(), 3);

    // Into another organization: the same contacts, opt-out and metadata included.
    let (_, other) = api.org("other").await;
    let report = csv(&api, &other, "", exported.clone()).await;
    assert_eq!(report.data()["created"], 2, "{:?}", report.json);
    let again = export(&api, &other).await;
    let strip = |csv: &str| -> Vec<Vec<String>> {
        csv.lines()
            .skip(1)
            .map(|l| {
                let mut f: Vec<String> = l.split(',').map(str::to_owned).collect();
                f.remove(0); // id
                f.retain(|v| v.parse::<jiff::Timestamp>().is_err()); // times
                f
            })
            .collect()
    };
    assert_eq!(strip(&exported), strip(&again));
    assert!(again.contains("\"Sara, S\""));
    assert!(again.contains("true"));
}

#[tokio::test]
async fn groups_members_by_ids_and_phones() {
    let api = Api::start().await;
    let (_, key) = api.org("school").await;
    let mut ids = Vec::new();
    for phone in ["+923001111111", "+923002222222", "+923003333333"] {
        let c = api
            .post("/api/sms/contacts", &key, json!({ "phone": phone }))
            .await;
        ids.push(c.data()["id"].as_u64().unwrap());
    }
    let g = api
        .post(
            "/api/sms/groups",
            &key,
            json!({ "name": "Class 5", "color": "#3B82F6" }),
        )
        .await;
    assert_eq!(g.status, StatusCode::CREATED);
    let gid = g.data()["id"].as_u64().unwrap();
    let dup = api
        .post("/api/sms/groups", &key, json!({ "name": "Class 5" }))
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert_eq!(dup.json["error"]["existingId"], gid);

    let added = api
        .post(
            &format!("/api/sms/groups/{gid}/members"),
            &key,
            json!({ "contactIds": [ids[0], ids[0], 999_999], "phones": ["03002222222", "+923009999999"] }),
        )
        .await;
    assert_eq!(added.status, StatusCode::OK, "{:?}", added.json);
    assert_eq!(added.data()["group"]["memberCount"], 2);
    assert_eq!(added.data()["unknownIds"], json!([999_999]));
    assert_eq!(added.data()["unknownPhones"], json!(["+923009999999"]));
    let again = api
        .post(
            &format!("/api/sms/groups/{gid}/members"),
            &key,
            json!({ "contactIds": [ids[0], ids[2]] }),
        )
        .await;
    assert_eq!(again.data()["group"]["memberCount"], 3);
    let members = api
        .get(&format!("/api/sms/groups/{gid}/members"), &key)
        .await;
    assert_eq!(members.data()["total"], 3);
    let removed = api
        .raw(
            reqwest::Method::DELETE,
            &format!("/api/sms/groups/{gid}/members"),
            Some(&key),
            Some(
                json!({ "phones": ["+923001111111"] })
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await;
    assert_eq!(removed.data()["group"]["memberCount"], 2);
    let of = api
        .get(&format!("/api/sms/contacts/{}/groups", ids[1]), &key)
        .await;
    assert_eq!(of.data()["items"][0]["id"], gid);
    let renamed = api
        .put(
            &format!("/api/sms/groups/{gid}"),
            &key,
            json!({ "name": "Class 6" }),
        )
        .await;
    assert_eq!(renamed.data()["name"], "Class 6");
    assert_eq!(renamed.data()["memberCount"], 2);
    let bad = api
        .put(
            &format!("/api/sms/groups/{gid}"),
            &key,
            json!({ "color": "blue" }),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let (_, other) = api.org("other").await;
    assert_eq!(
        api.get(&format!("/api/sms/groups/{gid}/members"), &other)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.delete(&format!("/api/sms/groups/{gid}"), &key)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(api.get("/api/sms/contacts", &key).await.data()["total"], 3);
}

#[tokio::test]
async fn templates_variables_defaults_and_preview() {
    let api = Api::start().await;
    let (_, key) = api.org("school").await;
    let t = api
        .post(
            "/api/sms/templates",
            &key,
            json!({ "name": "fee", "body": "Dear {{name}}, pay PKR {{amount}} to {{school|our school}}.",
                    "category": "promotional", "language": "en", "dltTemplateId": "1107161234567890",
                    "dltEntityId": "1101234567", "isApproved": true }),
        )
        .await;
    assert_eq!(t.status, StatusCode::CREATED, "{:?}", t.json);
    let id = t.data()["id"].as_u64().unwrap();
    assert_eq!(t.data()["variables"], json!(["name", "amount", "school"]));
    assert_eq!(t.data()["category"], "PROMOTIONAL");
    assert_eq!(t.data()["dltTemplateId"], "1107161234567890");
    assert_eq!(t.data()["isApproved"], true);

    let preview = api
        .post(
            &format!("/api/sms/templates/{id}/preview"),
            &key,
            json!({ "variables": { "name": "Ali", "amount": 5000 } }),
        )
        .await;
    assert_eq!(preview.status, StatusCode::OK, "{:?}", preview.json);
    assert_eq!(
        preview.data()["text"],
        "Dear Ali, pay PKR 5000 to our school."
    );
    assert_eq!(preview.data()["encoding"], "GSM-7");
    assert_eq!(preview.data()["segments"], 1);
    let missing = api
        .post(
            &format!("/api/sms/templates/{id}/preview"),
            &key,
            json!({ "variables": { "name": "Ali" } }),
        )
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(missing.code(), "MISSING_VARIABLE");
    assert!(
        missing.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("{{amount}}")
    );

    let urdu = api
        .put(
            &format!("/api/sms/templates/{id}"),
            &key,
            json!({ "body": "محترم {{name}}، فیس ادا کریں", "language": "ur" }),
        )
        .await;
    assert_eq!(urdu.status, StatusCode::OK, "{:?}", urdu.json);
    assert_eq!(urdu.data()["variables"], json!(["name"]));
    assert_eq!(urdu.data()["encoding"], "UCS-2");
    let bad = api
        .put(
            &format!("/api/sms/templates/{id}"),
            &key,
            json!({ "category": "spam" }),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let dup = api
        .post(
            "/api/sms/templates",
            &key,
            json!({ "name": "fee", "body": "x" }),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    let empty = api
        .post(
            "/api/sms/templates",
            &key,
            json!({ "name": "blank", "body": " " }),
        )
        .await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert_eq!(api.get("/api/sms/templates", &key).await.data()["total"], 1);
    let (_, other) = api.org("other").await;
    assert_eq!(
        api.get(&format!("/api/sms/templates/{id}"), &other)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.delete(&format!("/api/sms/templates/{id}"), &key)
            .await
            .status,
        StatusCode::OK
    );
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
