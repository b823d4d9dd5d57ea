//! `sairex loadtest http` against a fake API on loopback: what it sends, what it counts, and
//! that the open loop measures a stall the closed loop hides.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use sairex_loadtest::load::LoadError;
use sairex_loadtest::load::http::{HttpConfig, run};
use sairex_loadtest::load::schedule::{Pacing, Stop};
use support::fake_api::{FakeApi, FakeConfig};

fn config(api: &FakeApi) -> HttpConfig {
    HttpConfig {
        concurrency: 8,
        drain_timeout: Duration::from_secs(10),
        ..HttpConfig::new(api.url(), "sk_live_test")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_sends_the_mix_and_follows_every_message_to_delivered() {
    let api = FakeApi::start(FakeConfig::default()).await;
    let report = run(HttpConfig {
        stop: Stop::Count(500),
        mix: "otp:10,transactional:30,bulk:60".parse().unwrap(),
        segments: "1,2,3".parse().unwrap(),
        e2e: true,
        ..config(&api)
    })
    .await
    .unwrap();

    assert_eq!(report.requests, 500);
    assert_eq!(report.accepted, 500);
    assert_eq!(report.failed, 0);
    assert_eq!(report.messages_accepted, 500);
    assert!(report.errors.is_empty());
    assert_eq!(report.accept_latency_us.count, 500);
    assert!(report.accept_latency_us.p50 > 0);
    assert!(report.requests_per_second > 0.0);
    let e2e = report.e2e.as_ref().unwrap();
    assert_eq!((e2e.accepted, e2e.delivered, e2e.missing), (500, 500, 0));
    assert_eq!(e2e.latency_us.count, 500);
    // The fake delivers 2 ms after the 202.
    assert!(e2e.latency_us.p50 >= 1_500, "{:?}", e2e.latency_us);

    let received = api.received();
    assert_eq!(received.len(), 500);
    let numbers: HashSet<&str> = received.iter().filter_map(|r| r["to"].as_str()).collect();
    assert_eq!(numbers.len(), 500, "every destination is different");
    let count = |p: &str| received.iter().filter(|r| r["priority"] == p).count();
    assert_eq!(
        (count("otp"), count("transactional"), count("bulk")),
        (50, 150, 300)
    );
    let len = |n: usize| {
        received
            .iter()
            .filter(|r| r["body"].as_str().map(str::len) == Some(n))
            .count()
    };
    assert_eq!(len(160) + len(306) + len(459), 500);
    assert!(len(160).abs_diff(167) <= 1 && len(306).abs_diff(167) <= 1);

    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["mode"], "http");
    assert_eq!(json["acceptLatencyUs"]["count"], 500);
    assert_eq!(json["e2e"]["delivered"], 500);
    assert!(
        !json.to_string().contains("sk_live_test"),
        "the key never reaches a report"
    );
    assert!(report.human().contains("accept->DELIVERED"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_keeps_the_rate_and_counts_errors_by_code() {
    let api = FakeApi::start(FakeConfig {
        reject_every: 5,
        ..FakeConfig::default()
    })
    .await;
    let report = run(HttpConfig {
        pacing: Pacing::open(1_000.0).unwrap(),
        stop: Stop::After(Duration::from_millis(400)),
        ..config(&api)
    })
    .await
    .unwrap();
    // Due at 0, 1, ..., 399 ms.
    assert_eq!(report.requests, 400);
    assert_eq!(report.errors.get("429 RATE_LIMITED"), 80);
    assert_eq!(report.failed, 80);
    assert_eq!(report.accepted, 320);
    assert_eq!(report.accept_latency_us.count, 320);
    // The last request is due at 399 ms: the run cannot be shorter, and the rate follows.
    assert!(report.seconds >= 0.399, "{}", report.seconds);
    assert!(
        report.requests_per_second <= 1_003.0,
        "{}",
        report.requests_per_second
    );
    assert_eq!(report.settings.rate, Some(1_000.0));
    assert!(report.human().contains("error 429 RATE_LIMITED: 80"));
}

/// One request stalls for 200 ms on a single connection. The closed loop waits politely and
/// records one slow sample; the open loop keeps its schedule, so every request due during the
/// stall is late, and the percentiles show it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_loop_measures_a_stall_the_closed_loop_hides() {
    let stall = FakeConfig {
        stall_request: 20,
        stall: Duration::from_millis(200),
        ..FakeConfig::default()
    };
    let closed_api = FakeApi::start(stall.clone()).await;
    let closed = run(HttpConfig {
        concurrency: 1,
        stop: Stop::Count(200),
        ..config(&closed_api)
    })
    .await
    .unwrap();
    let open_api = FakeApi::start(stall).await;
    let open = run(HttpConfig {
        concurrency: 1,
        pacing: Pacing::open(500.0).unwrap(),
        stop: Stop::Count(200),
        ..config(&open_api)
    })
    .await
    .unwrap();

    assert_eq!(closed.accepted, 200);
    assert_eq!(open.accepted, 200);
    assert!(closed.accept_latency_us.max >= 200_000);
    assert!(open.accept_latency_us.max >= 200_000);
    // Closed loop: one slow sample in 200, below the 99th percentile.
    assert!(
        closed.accept_latency_us.p90 < 20_000,
        "{:?}",
        closed.accept_latency_us
    );
    // Open loop at 2 ms intervals: ~100 requests fell due during the stall and waited.
    assert!(
        open.accept_latency_us.p50 >= 20_000,
        "{:?}",
        open.accept_latency_us
    );
    assert!(open.generator.late_starts >= 50, "{:?}", open.generator);
    assert!(open.human().contains("started late"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_requests_count_messages_and_unfinished_ones_are_missing() {
    let api = FakeApi::start(FakeConfig {
        fail_every: 7,
        lose_every: 10,
        ..FakeConfig::default()
    })
    .await;
    let report = run(HttpConfig {
        stop: Stop::Count(20),
        bulk_size: Some(10),
        e2e: true,
        drain_timeout: Duration::from_millis(500),
        ..config(&api)
    })
    .await
    .unwrap();
    assert_eq!(report.requests, 20);
    assert_eq!(report.messages_accepted, 200);
    let e2e = report.e2e.unwrap();
    // Ids 1..=200: multiples of 10 are lost, other multiples of 7 fail.
    let lost = 20;
    let failed = (1..=200u64).filter(|i| i % 7 == 0 && i % 10 != 0).count() as u64;
    assert_eq!(e2e.accepted, 200);
    assert_eq!(e2e.missing, lost);
    assert_eq!(e2e.other_final.get("FAILED"), failed);
    assert_eq!(e2e.delivered, 200 - lost - failed);
    let received = api.received();
    let numbers: HashSet<&str> = received
        .iter()
        .flat_map(|r| r["recipients"].as_array().into_iter().flatten())
        .filter_map(|r| r["to"].as_str())
        .collect();
    assert_eq!(numbers.len(), 200);
}

#[tokio::test]
async fn a_wrong_key_is_counted_and_a_dead_target_is_an_error() {
    let api = FakeApi::start(FakeConfig::default()).await;
    let report = run(HttpConfig {
        stop: Stop::Count(10),
        ..HttpConfig::new(api.url(), "sk_live_wrong")
    })
    .await
    .unwrap();
    assert_eq!(report.errors.get("401 UNAUTHORIZED"), 10);
    assert_eq!(report.accepted, 0);

    let e2e = run(HttpConfig {
        e2e: true,
        ..HttpConfig::new(api.url(), "sk_live_wrong")
    })
    .await
    .unwrap_err();
    assert!(matches!(e2e, LoadError::Events { .. }), "{e2e}");
    assert!(e2e.to_string().contains("401"));

    // A port nothing listens on: bound, then closed.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let err = run(HttpConfig::new(dead, "k")).await.unwrap_err();
    assert!(matches!(err, LoadError::Connect { .. }), "{err}");
}

/// The server drops events for a slow reader and says so (`lagged`): the drain does not wait
/// for them until its timeout, and the report accounts for every message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_event_stream_is_reported_and_does_not_hold_the_drain() {
    let api = FakeApi::start(FakeConfig {
        delivery_delay: Duration::ZERO,
        event_capacity: 8,
        record: false,
        ..FakeConfig::default()
    })
    .await;
    let started = tokio::time::Instant::now();
    let report = run(HttpConfig {
        stop: Stop::Count(10),
        bulk_size: Some(2_000),
        e2e: true,
        drain_timeout: Duration::from_secs(30),
        ..config(&api)
    })
    .await
    .unwrap();
    let e2e = report.e2e.unwrap();
    assert_eq!(e2e.accepted, 20_000);
    assert_eq!(e2e.delivered + e2e.missing, 20_000);
    if e2e.missing > 0 {
        assert!(e2e.lagged_events >= e2e.missing, "{e2e:?}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}
