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
