//! The engine end to end: messages enqueued in a real store go out over real SMPP binds to the
//! simulator and come back DELIVERED by its receipts; shutdown under load loses nothing.

use std::collections::HashSet;
use std::time::Duration;

use sairex_engine::dispatch::DispatcherConfig;
use sairex_engine::gateway::{Engine, EngineConfig};
use sairex_engine::provider::smpp::SmppProviderConfig;
use sairex_loadtest::sim::{SimConfig, SimHandle, SimServer, SimStats};
use sairex_store::model::{
    Direction, Message, MessageStatus, Organization, Priority, ProviderConfig, QueuePlace,
};
use sairex_store::{MessageFilter, PageRequest, Store, StoreOptions};
use tokio::time::{Instant, sleep};

mod common;

const WAIT: Duration = Duration::from_secs(20);

async fn setup(store: &Store, sim: &SimHandle, binds: u32) -> (u64, EngineConfig) {
    let org = store
        .create_organization(Organization {
            name: "school".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let record = store
        .create_provider(ProviderConfig {
            organization_id: org.id,
            display_name: "sim".into(),
            ..ProviderConfig::default()
        })
        .await
        .unwrap();
    let addr = sim.addr();
    let session = common::sim_session(addr);
    let smpp = SmppProviderConfig {
        binds,
        ..SmppProviderConfig::new(record.id, session)
    };
    let config = EngineConfig {
        dispatcher: DispatcherConfig::default(),
        smpp: vec![(record, smpp)],
        provider_drain: Duration::from_secs(2),
        providers_from_store: false,
    };
    (org.id, config)
}

/// The simulator (receipts 20 ms after each submit), a fresh store and a running engine with
/// `binds` binds to it. The temporary directory must outlive the store.
async fn start_with_receipts(binds: u32) -> (SimHandle, tempfile::TempDir, Store, u64, Engine) {
    let sim = SimServer::start(SimConfig {
        receipt_delay: Duration::from_millis(20),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreOptions::new(dir.path())).unwrap();
    let (org, config) = setup(&store, &sim, binds).await;
    let engine = Engine::start(store.clone(), config).await.unwrap();
    (sim, dir, store, org, engine)
}

fn message(org: u64, i: usize, body: &str) -> Message {
    Message {
        organization_id: org,
        from_number: "Sairex".into(),
        to_number: format!("+9230012{i:05}"),
        body: body.into(),
        priority: if i.is_multiple_of(10) {
            Priority::OTP
        } else {
            Priority::BULK
        },
        ..Message::default()
    }
}

async fn wait_for(
    store: &Store,
    org: u64,
    ids: &[u64],
    done: impl Fn(&Message) -> bool,
) -> Vec<Message> {
    let deadline = Instant::now() + WAIT;
    loop {
        let all: Vec<Message> = ids
            .iter()
            .map(|id| store.message(org, *id).unwrap())
            .collect();
        if all.iter().all(&done) {
            return all;
        }
        assert!(
            Instant::now() < deadline,
            "not done in time: {:?}",
            all.iter().map(|m| (m.id, m.status)).collect::<Vec<_>>()
        );
        sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_messages_reach_delivered_through_real_binds() {
    let (sim, _dir, store, org, engine) = start_with_receipts(2).await;

    let long = "Dear parent, the fee for November is due on Friday. ".repeat(4);
    let mut ids = Vec::new();
    for i in 0..40 {
        let body = if i == 7 {
            long.as_str()
        } else {
            "Fee due Friday"
        };
        ids.push(
            store
                .enqueue(message(org, i, body))
                .await
                .unwrap()
                .message()
                .id,
        );
    }
    engine.handle().nudge();
    let done = wait_for(&store, org, &ids, |m| m.status == MessageStatus::Delivered).await;

    let multipart = &done[7];
    assert_eq!(
        multipart.provider_msg_ids.len(),
        2,
        "a 200-character text goes as two parts"
    );
    let received = sim.received();
    assert_eq!(
        received.len(),
        41,
        "40 messages, one of them in two parts, each sent once"
    );
    let sim_ids: HashSet<String> = received
        .iter()
        .filter_map(|r| r.message_id.clone())
        .collect();
    for m in &done {
        assert!(
            m.provider_msg_ids.iter().all(|id| sim_ids.contains(id)),
            "{m:?}"
        );
        let events: Vec<String> = store
            .events(org, m.id)
            .unwrap()
            .into_iter()
            .map(|e| e.event_type)
            .collect();
        assert_eq!(events.first().map(String::as_str), Some("QUEUED"));
        assert!(events.iter().any(|e| e == "SUBMITTED"), "{events:?}");
    }
    assert!(store.check_consistency().unwrap().is_consistent());

    let report = engine.shutdown().await;
    assert_eq!(report.unanswered, 0);
    assert!(
        sim.stats().binds.unbinds_received >= 2,
        "each bind unbinds at shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_under_load_loses_nothing_and_recovery_requeues_the_rest() {
    let sim = SimServer::start(SimConfig {
        response_latency: Duration::from_millis(200),
        receipts: sairex_loadtest::sim::ReceiptPolicy::Off,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<u64>;
    let org;
    {
        let store = Store::open(StoreOptions::new(dir.path())).unwrap();
        let (o, mut config) = setup(&store, &sim, 1).await;
        org = o;
        config.dispatcher.shutdown_grace = Duration::from_millis(50);
        let engine = Engine::start(store.clone(), config).await.unwrap();
        let mut v = Vec::new();
        for i in 0..300 {
            v.push(
                store
                    .enqueue(message(org, i, "Exam on Monday"))
                    .await
                    .unwrap()
                    .message()
                    .id,
            );
        }
        ids = v;
        engine.handle().nudge();
        // Let some be accepted, then stop while the responses to later ones are still 200 ms
        // away. (Waiting for the first submit alone raced the enqueue loop: once enqueues got
        // faster than the simulator's 200 ms, nothing was accepted yet at the shutdown.)
        let deadline = Instant::now() + WAIT;
        while !ids.iter().any(|id| {
            store
                .message(org, *id)
                .is_ok_and(|m| m.status == MessageStatus::Submitted)
        }) {
            assert!(Instant::now() < deadline, "nothing was accepted");
            sleep(Duration::from_millis(5)).await;
        }
        engine.shutdown().await;
        store.flush().await.unwrap();
    }
    let store = Store::open(StoreOptions::new(dir.path())).unwrap();
    let mut submitted = 0;
    for id in &ids {
        let m = store.message(org, *id).unwrap();
        match m.status {
            MessageStatus::Submitted => submitted += 1,
            MessageStatus::Queued => assert!(
                matches!(m.queue, QueuePlace::Ready { .. } | QueuePlace::Due { .. }),
                "{m:?}"
            ),
            other => panic!("message {id} ended {other:?}"),
        }
    }
    assert!(submitted > 0, "some were accepted before the shutdown");
    assert!(
        store.in_flight(org).unwrap().is_empty(),
        "recovery re-queued whatever was in flight"
    );
    assert!(store.check_consistency().unwrap().is_consistent());
    let accepted_by_sim: usize = sim
        .received()
        .iter()
        .filter(|r| r.message_id.is_some())
        .count();
    assert!(
        accepted_by_sim >= submitted,
        "every SUBMITTED message was received by the carrier"
    );
}

fn inbound(store: &Store, org: u64) -> Vec<Message> {
    let filter = MessageFilter {
        direction: Some(Direction::Inbound),
        ..MessageFilter::default()
    };
    store
        .list_messages(org, &filter, PageRequest::default())
        .unwrap()
        .items
}

/// Polls the simulator closely until `check` holds, returning the stats that satisfied it.
async fn sim_until(sim: &SimHandle, what: &str, check: impl Fn(&SimStats) -> bool) -> SimStats {
    let deadline = Instant::now() + WAIT;
    loop {
        let stats = sim.stats();
        if check(&stats) {
            return stats;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {stats:?}"
        );
        sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_and_inbound_are_acknowledged_only_once_stored() {
    let (sim, _dir, store, org, engine) = start_with_receipts(1).await;

    let id = store
        .enqueue(message(org, 1, "Fee due Friday"))
        .await
        .unwrap()
        .message()
        .id;
    engine.handle().nudge();
    sim_until(&sim, "the receipt's ack", |s| s.receipts.acked == 1).await;
    // The receipt was answered ESME_ROK: its status change is already in the store.
    assert_eq!(
        store.message(org, id).unwrap().status,
        MessageStatus::Delivered
    );

    sim.send_mo("923001234567", "Sairex", "hello school")
        .await
        .unwrap();
    sim_until(&sim, "the MO's ack", |s| s.mo.acked == 1).await;
    let stored = inbound(&store, org);
    assert_eq!(stored.len(), 1, "acknowledged before it was stored");
    assert_eq!(stored[0].body, "hello school");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbound_message_the_store_refuses_is_nacked_and_redelivered() {
    let sim = SimServer::start(SimConfig {
        delivery_retry_interval: Duration::from_millis(50),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreOptions::new(dir.path())).unwrap();
    let (org, mut config) = setup(&store, &sim, 1).await;
    // A shared provider whose routing table names organization 0: the store refuses to write
    // the message (organizationId must be set), which stands in for a store failure.
    config.smpp[0].0.organization_id = 0;
    config
        .dispatcher
        .inbound_routes
        .insert("Sairex".to_owned(), 0);
    let engine = Engine::start(store.clone(), config).await.unwrap();

    sim_until(&sim, "the bind", |s| s.binds.bound >= 1).await;
    sim.send_mo("923001234567", "Sairex", "hello school")
        .await
        .unwrap();
    let stats = sim_until(&sim, "nacks and a retry", |s| {
        s.mo.nacked >= 2 && s.mo.retried >= 1
    })
    .await;
    assert_eq!(stats.mo.acked, 0, "{stats:?}");
    assert!(inbound(&store, org).is_empty());
    assert!(engine.handle().counters().store_errors >= 2);
    engine.shutdown().await;
}

/// Regression, end to end: an SMSC that throttles at 2 submits a second takes some parts of a
/// 3-part message and throttles the rest. Those used to go again with the whole message under
/// a new reference, so the handset got the accepted parts twice and could not join the rest.
/// Now the simulator must receive every part of each message exactly once, all under one
/// reference and part count, the parts joining back into the text; and each message must
/// become DELIVERED from the receipts of parts accepted on different attempts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_multipart_message_reaches_the_handset_once_and_joinable() {
    let sim = SimServer::start(SimConfig {
        throttle_tps: Some(2),
        receipt_delay: Duration::from_millis(20),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreOptions::new(dir.path())).unwrap();
    let (org, config) = setup(&store, &sim, 1).await;
    let engine = Engine::start(store.clone(), config).await.unwrap();
    // 392 GSM characters: three parts of at most 153.
    let body = "Fee reminder: ".repeat(28);
    let mut ids = Vec::new();
    for i in 0..2 {
        let m = store.enqueue(message(org, i, &body)).await.unwrap();
        ids.push(m.message().id);
    }
    engine.handle().nudge();
    let done = wait_for(&store, org, &ids, |m| m.status == MessageStatus::Delivered).await;

    let received = sim.received();
    let throttled = received
        .iter()
        .filter(|r| r.status == sairex_pdu::CommandStatus::ESME_RTHROTTLED)
        .count();
    assert!(throttled > 0, "the SMSC throttled some parts");
    let mut references = HashSet::new();
    for m in &done {
        let to = m.to_number.trim_start_matches('+').as_bytes();
        // What the handset gets: the accepted submits to its number.
        let mut parts: Vec<(u8, u8, u8, &[u8])> = received
            .iter()
            .filter(|r| {
                r.message_id.is_some()
                    && r.destination_addrs.first().map(|a| a.as_ref()) == Some(to)
            })
            .map(|r| {
                let sm = &r.short_message;
                assert_eq!(&sm[..3], &[5, 0, 3], "8-bit reference UDH");
                (sm[5], sm[3], sm[4], &sm[6..])
            })
            .collect();
        parts.sort_unstable();
        let seqs: Vec<u8> = parts.iter().map(|p| p.0).collect();
        assert_eq!(
            seqs,
            vec![1, 2, 3],
            "every part exactly once to {}",
            m.to_number
        );
        let keys: HashSet<(u8, u8)> = parts.iter().map(|p| (p.1, p.2)).collect();
        assert_eq!(keys.len(), 1, "one reference and count: {keys:?}");
        assert!(keys.iter().all(|&(_, total)| total == 3));
        references.extend(keys.iter().map(|&(reference, _)| reference));
        let joined: Vec<u8> = parts.iter().flat_map(|p| p.3.iter().copied()).collect();
        assert_eq!(joined, body.as_bytes(), "the parts join back into the text");
        assert_eq!(m.provider_msg_ids.len(), 3);
        assert_eq!(m.retry_count, 0, "throttling is not a retry");
    }
    assert_eq!(references.len(), 2, "each message its own reference");
    let split = done.iter().any(|m| {
        store
            .events(org, m.id)
            .unwrap()
            .iter()
            .any(|e| e.event_type == "PARTS_ACCEPTED")
    });
    assert!(split, "a message was accepted in pieces");
    // A part's receipt may overtake the record of its acceptance; it is held, then applied.
    let c = engine.handle().counters();
    assert_eq!(
        (c.receipts_early_matched, c.receipts_dropped),
        (c.receipts_held, 0),
        "every receipt found its message"
    );
    assert!(store.check_consistency().unwrap().is_consistent());
    engine.shutdown().await;
}
