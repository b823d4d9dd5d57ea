//! `sms_api_requests_total` and `sms_rate_limit_hits_total` reach the Prometheus exposition
//! served by `metrics_router` (its own test binary: it installs the global recorder).

mod common;

use common::Api;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn request_and_rate_limit_counters_are_exposed() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).unwrap();

    let api = Api::start().await;
    let (_, admin) = api.org("school").await;
    let (_, key) = api
        .key(
            &admin,
            &["sms:read"],
            json!({ "rateLimitPerMin": 1, "rateLimitPerDay": 100 }),
        )
        .await;
    let mut limited = false;
    for _ in 0..4 {
        if api.get("/api/sms/messages", &key).await.status == StatusCode::TOO_MANY_REQUESTS {
            limited = true;
        }
    }
    assert!(limited);

    let router = sairex_http_api::metrics_router(handle);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let text = sairex_engine::http_client::builder()
        .unwrap()
        .build()
        .unwrap()
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(
            r#"sms_api_requests_total{method="GET",route="/api/sms/messages",status="200"}"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"sms_api_requests_total{method="GET",route="/api/sms/messages",status="429"}"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"sms_rate_limit_hits_total{scope="API key"}"#),
        "{text}"
    );
}

/// On the API listener (no `metrics_listen`), `/metrics` answers the superadmin token only.
#[tokio::test]
async fn metrics_on_the_api_listener_need_the_superadmin_token() {
    // Not installed globally: the other test of this binary owns the global recorder.
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let router = sairex_http_api::protected_metrics_router(
        recorder.handle(),
        Some(sairex_http_api::Secret::new(common::ADMIN_TOKEN)),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let client = sairex_engine::http_client::builder()
        .unwrap()
        .build()
        .unwrap();
    let url = format!("http://{addr}/metrics");
    let anonymous = client.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value =
        serde_json::from_slice(&anonymous.bytes().await.unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "UNAUTHORIZED");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("metrics_listen")
    );
    let wrong = client
        .get(&url)
        .bearer_auth("sk_live_x")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let admin = client
        .get(&url)
        .bearer_auth(common::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), StatusCode::OK);
    assert!(
        admin.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    // Without a configured token nobody gets them.
    let closed = sairex_http_api::protected_metrics_router(recorder.handle(), None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, closed).await.unwrap() });
    let r = client
        .get(format!("http://{addr}/metrics"))
        .bearer_auth("")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}
