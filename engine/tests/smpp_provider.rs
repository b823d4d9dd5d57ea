//! The SMPP provider against the in-process SMSC simulator on loopback. The test plays the
//! dispatcher: it sends only with credit and checks every message is answered exactly once.
//! Every wait is bounded; timings are short real durations, checked loosely.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use sairex_engine::classify::SubmitOutcome;
use sairex_engine::provider::smpp::{SmppProvider, SmppProviderConfig, SmppProviderHandle};
use sairex_engine::provider::{
    DeliverStatus, InDoubtPolicy, LinkError, Outbound, ProviderEvent, Resume, SendOutcome,
    SharedLink,
};
use sairex_engine::session::SessionConfig;
use sairex_loadtest::sim::{ReceiptPolicy, SimConfig, SimHandle, SimServer, SimStats};
use sairex_pdu::DeliverSm;
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};

/// Upper bound on any single wait.
const WAIT: Duration = Duration::from_secs(15);
const PROVIDER: u64 = 7;

mod common;
use common::ms;

fn session_config(addr: SocketAddr) -> SessionConfig {
    common::sim_session(addr)
}

fn provider_config(addr: SocketAddr, binds: u32) -> SmppProviderConfig {
    SmppProviderConfig {
        binds,
        ..SmppProviderConfig::new(PROVIDER, session_config(addr))
    }
}

async fn sim(config: SimConfig) -> SimHandle {
    SimServer::start(SimConfig {
        receipts: ReceiptPolicy::Off,
        ..config
    })
    .await
    .unwrap()
}

fn outbound(token: u64, body: &str, receipt: bool) -> Outbound {
    Outbound {
        token,
        organization_id: 1,
        message_id: token,
        from: "Sairex".into(),
        to: "+923001234567".into(),
        body: body.into(),
        receipt,
        resume: None,
    }
}

/// The dispatcher's side: credit, answers, deliveries.
struct Dispatcher {
    handle: Option<SmppProviderHandle>,
    link: SharedLink,
    events: mpsc::Receiver<ProviderEvent>,
    credit: u32,
    max_credit: u32,
    unavailable: u32,
    done: BTreeMap<u64, SendOutcome>,
    delivered: Vec<DeliverSm>,
}

impl Dispatcher {
    async fn start(config: SmppProviderConfig) -> Self {
        let (tx, events) = mpsc::channel(4096);
        let handle = SmppProvider::start(config, tx).await.unwrap();
        Self {
            link: handle.link(),
            handle: Some(handle),
            events,
            credit: 0,
            max_credit: 0,
            unavailable: 0,
            done: BTreeMap::new(),
            delivered: Vec::new(),
        }
    }

    fn handle(&self) -> &SmppProviderHandle {
        self.handle.as_ref().unwrap()
    }

    fn apply(&mut self, event: ProviderEvent) {
        match event {
            ProviderEvent::Credit { provider_id, n } => {
                assert_eq!(provider_id, PROVIDER);
                self.credit += n;
                self.max_credit = self.max_credit.max(self.credit);
            }
            ProviderEvent::Unavailable { .. } => {
                self.credit = 0;
                self.unavailable += 1;
            }
            ProviderEvent::Done { token, outcome, .. } => {
                let previous = self.done.insert(token, outcome);
                assert!(previous.is_none(), "token {token} answered twice");
            }
            ProviderEvent::Deliver { deliver, ack, .. } => {
                // This fake owner "stores" it at once.
                ack.complete(DeliverStatus::Done);
                self.delivered.push(*deliver);
            }
        }
    }

    /// Processes events until `check` holds.
    async fn until(&mut self, what: &str, check: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !check(self) {
            let event = timeout(deadline - Instant::now(), self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
                .expect("provider keeps its channel");
            self.apply(event);
        }
    }

    /// Processes whatever is queued now, without waiting.
    fn poll(&mut self) {
        while let Ok(event) = self.events.try_recv() {
            self.apply(event);
        }
    }

    async fn credit_at_least(&mut self, n: u32) {
        self.until(&format!("credit {n}"), |d| d.credit >= n).await;
    }

    /// Sends with credit (the test's contract with the provider).
    fn send(&mut self, message: Outbound) {
        assert!(self.credit > 0, "sending without credit");
        self.credit -= 1;
        self.link.send(message).unwrap();
    }

    async fn outcome(&mut self, token: u64) -> SendOutcome {
        self.until(&format!("the answer for {token}"), |d| {
            d.done.contains_key(&token)
        })
        .await;
        self.done[&token].clone()
    }

    async fn all_done(&mut self, tokens: impl IntoIterator<Item = u64>) {
        let tokens: BTreeSet<u64> = tokens.into_iter().collect();
        self.until("every answer", |d| {
            tokens.iter().all(|t| d.done.contains_key(t))
        })
        .await;
    }
}

async fn eventually(sim: &SimHandle, what: &str, check: impl Fn(&SimStats) -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check(&sim.stats()) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {:?}",
            sim.stats()
        );
        tokio::time::sleep(ms(10)).await;
    }
}

fn accepted_ids(outcome: &SendOutcome) -> &[String] {
    match outcome {
        SendOutcome::Accepted { provider_msg_ids } => provider_msg_ids,
        other => panic!("expected Accepted, got {other:?}"),
    }
}

#[tokio::test]
async fn two_binds_are_both_bound_and_both_used() {
    let sim = sim(SimConfig::default()).await;
    let mut d = Dispatcher::start(provider_config(sim.addr(), 2)).await;
    // Both windows (64 each) become credit.
    d.credit_at_least(128).await;
    assert_eq!(d.link.in_doubt_policy(), InDoubtPolicy::Resubmit);
    for token in 0..40 {
        d.send(outbound(token, "hello", false));
    }
    d.all_done(0..40).await;
    for token in 0..40 {
        assert_eq!(accepted_ids(&d.done[&token]).len(), 1);
    }
    let stats = sim.stats();
    assert_eq!(stats.binds.transceiver, 2);
    assert_eq!(stats.binds.bound, 2);
    let mut per_session: BTreeMap<u64, u32> = BTreeMap::new();
    for m in sim.received() {
        *per_session.entry(m.session_id).or_default() += 1;
    }
    assert_eq!(per_session.len(), 2, "submissions spread: {per_session:?}");
    assert!(per_session.values().all(|&n| n >= 10), "{per_session:?}");
    let ps = d.handle().stats().await.unwrap();
    assert_eq!((ps.live_sessions, ps.bound_sessions), (2, 2));
    assert_eq!(ps.open_messages, 0);
}

#[tokio::test]
async fn credit_never_exceeds_the_windows_of_all_binds_under_a_flood() {
    let sim = sim(SimConfig {
        window: Some(8),
        response_latency: ms(20),
        ..SimConfig::default()
    })
    .await;
    let mut config = provider_config(sim.addr(), 2);
    config.session.window = NonZeroU32::new(8).unwrap();
    let mut d = Dispatcher::start(config).await;
    let total = 300u64;
    let mut next = 0u64;
    let deadline = Instant::now() + WAIT;
    while d.done.len() < usize::try_from(total).unwrap() {
        assert!(Instant::now() < deadline, "flood did not finish");
        while d.credit > 0 && next < total {
            d.send(outbound(next, "flood", false));
            next += 1;
        }
        let event = timeout(WAIT, d.events.recv()).await.unwrap().unwrap();
        d.apply(event);
        assert!(d.max_credit <= 16, "credit {} above 2 × 8", d.max_credit);
    }
    assert!(
        d.done
            .values()
            .all(|o| matches!(o, SendOutcome::Accepted { .. }))
    );
    let stats = sim.stats();
    assert_eq!(stats.window_violations, 0, "{stats:?}");
    assert!(
        stats.max_outstanding >= 4,
        "the windows were used: {stats:?}"
    );
}

#[tokio::test]
async fn a_low_tps_spreads_messages_over_time() {
    let sim = sim(SimConfig::default()).await;
    let mut config = provider_config(sim.addr(), 1);
    config.tps = Some(10);
    let mut d = Dispatcher::start(config).await;
    d.credit_at_least(1).await;
    let start = Instant::now();
    let mut next = 0u64;
    while next < 12 {
        d.until("credit", |d| d.credit > 0).await;
        assert!(d.credit <= 2, "credit bounded by the bucket (burst 2)");
        d.send(outbound(next, "slow", false));
        next += 1;
    }
    d.all_done(0..12).await;
    let elapsed = start.elapsed();
    // A burst of 2, then 10 more at 10 per second: about a second.
    assert!(elapsed >= ms(800), "12 messages at 10 TPS took {elapsed:?}");
}

#[tokio::test]
async fn smsc_throttling_cuts_the_rate_and_everything_is_accepted_eventually() {
    let sim = sim(SimConfig {
        throttle_tps: Some(20),
        ..SimConfig::default()
    })
    .await;
    let mut config = provider_config(sim.addr(), 1);
    config.tps = Some(200);
    let mut d = Dispatcher::start(config).await;
    let total = 80u64;
    // Messages to send: the dispatcher re-queues throttled ones without counting a retry.
    let mut queue: Vec<u64> = (0..total).rev().collect();
    let mut accepted = BTreeSet::new();
    let mut attempt_token = 1_000u64;
    let mut attempts: BTreeMap<u64, u64> = BTreeMap::new();
    let mut min_rate = u32::MAX;
    let deadline = Instant::now() + Duration::from_secs(40);
    while accepted.len() < usize::try_from(total).unwrap() {
        assert!(Instant::now() < deadline, "not all accepted: {accepted:?}");
        while d.credit > 0
            && let Some(msg) = queue.pop()
        {
            attempt_token += 1;
            attempts.insert(attempt_token, msg);
            d.send(outbound(attempt_token, "throttled?", false));
        }
        let event = timeout(WAIT, d.events.recv()).await.unwrap().unwrap();
        if let ProviderEvent::Done { token, outcome, .. } = &event {
            let msg = attempts[token];
            match outcome {
                SendOutcome::Accepted { .. } => {
                    accepted.insert(msg);
                }
                SendOutcome::Refused {
                    outcome: SubmitOutcome::Throttled,
                    ..
                } => queue.push(msg),
                other => panic!("unexpected {other:?}"),
            }
        }
        d.apply(event);
        if let Some(rate) = d.handle().stats().await.unwrap().rate_tps {
            min_rate = min_rate.min(rate);
        }
    }
    let stats = d.handle().stats().await.unwrap();
    assert!(stats.throttle_events > 0, "{stats:?}");
    assert!(min_rate <= 50, "the rate was cut: lowest {min_rate}");
    assert!(
        sim.stats()
            .submits
            .responses
            .get("ESME_RTHROTTLED")
            .copied()
            >= Some(1),
        "{:?}",
        sim.stats()
    );
}

#[tokio::test]
async fn a_two_part_gsm_message_goes_as_two_submits_with_udh() {
    let sim = sim(SimConfig::default()).await;
    let mut d = Dispatcher::start(provider_config(sim.addr(), 2)).await;
    d.credit_at_least(1).await;
    let body = "a".repeat(200);
    d.send(outbound(1, &body, false));
    let outcome = d.outcome(1).await;
    let ids = accepted_ids(&outcome).to_vec();
    assert_eq!(ids.len(), 2);
    let received = sim.received();
    assert_eq!(received.len(), 2);
    let mut by_part: BTreeMap<u8, String> = BTreeMap::new();
    let mut reference = None;
    for m in &received {
        assert_eq!(m.esm_class & 0x40, 0x40, "UDHI set");
        assert_eq!(m.data_coding, 0, "GSM 7-bit");
        let sm = &m.short_message;
        // UDHL 5, IEI 0 (8-bit reference), IEDL 3, reference, total, sequence.
        assert_eq!(&sm[..3], &[5, 0, 3]);
        assert_eq!(*reference.get_or_insert(sm[3]), sm[3], "one reference");
        assert_eq!(sm[4], 2, "two parts");
        by_part.insert(sm[5], m.message_id.clone().unwrap());
    }
    assert_eq!(
        by_part.into_values().collect::<Vec<_>>(),
        ids,
        "ids in part order"
    );
}

/// A resend of a partly accepted message submits only the parts not accepted before, under
/// the first attempt's reference and part count, and answers with every id in part order. A
/// text that splits into another number of parts here is not sent at all.
#[tokio::test]
async fn a_resend_submits_only_the_missing_parts_with_the_same_reference() {
    let sim = sim(SimConfig::default()).await;
    let mut d = Dispatcher::start(provider_config(sim.addr(), 1)).await;
    d.credit_at_least(2).await;
    // 400 GSM characters: three parts of at most 153.
    let body = "b".repeat(400);
    let mut resend = outbound(1, &body, false);
    resend.resume = Some(Box::new(Resume {
        reference: 201,
        ids: vec![None, Some("earlier".into()), None],
    }));
    d.send(resend);
    let ids = accepted_ids(&d.outcome(1).await).to_vec();
    let received = sim.received();
    assert_eq!(received.len(), 2, "part 2 was accepted before");
    let mut by_part: BTreeMap<u8, String> = BTreeMap::new();
    for m in &received {
        let sm = &m.short_message;
        assert_eq!(&sm[..3], &[5, 0, 3], "8-bit reference UDH");
        assert_eq!(
            (sm[3], sm[4]),
            (201, 3),
            "the first attempt's reference and count"
        );
        by_part.insert(sm[5], m.message_id.clone().unwrap());
    }
    assert_eq!(by_part.keys().copied().collect::<Vec<_>>(), vec![1, 3]);
    assert_eq!(
        ids,
        vec![by_part[&1].clone(), "earlier".into(), by_part[&3].clone()]
    );

    let mut mismatch = outbound(2, &body, false);
    mismatch.resume = Some(Box::new(Resume {
        reference: 5,
        ids: vec![Some("x".into()), None],
    }));
    d.send(mismatch);
    match d.outcome(2).await {
        SendOutcome::NotSent { accepted, .. } => {
            assert_eq!(accepted.ids, vec![Some("x".to_owned()), None]);
        }
        other => panic!("expected NotSent, got {other:?}"),
    }
    assert_eq!(sim.received().len(), 2, "nothing more submitted");
}

#[tokio::test]
async fn ucs2_text_is_sent_with_data_coding_8() {
    let sim = sim(SimConfig::default()).await;
    let mut d = Dispatcher::start(provider_config(sim.addr(), 1)).await;
    d.credit_at_least(1).await;
    d.send(outbound(1, "سلام دنیا", false));
    assert_eq!(accepted_ids(&d.outcome(1).await).len(), 1);
    let received = sim.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].data_coding, 8);
    assert_eq!(received[0].esm_class & 0x40, 0, "one part, no UDH");
    assert_eq!(received[0].registered_delivery, 0, "no receipt asked");
}

#[tokio::test]
async fn a_receipt_from_the_smsc_arrives_as_deliver() {
    let sim = SimServer::start(SimConfig {
        receipts: ReceiptPolicy::Requested,
        receipt_delay: ms(50),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let mut d = Dispatcher::start(provider_config(sim.addr(), 1)).await;
    d.credit_at_least(1).await;
    d.send(outbound(1, "receipt please", true));
    let id = accepted_ids(&d.outcome(1).await)[0].clone();
    assert_eq!(sim.received()[0].registered_delivery, 1);
    d.until("the receipt", |d| !d.delivered.is_empty()).await;
    let receipt = &d.delivered[0];
    assert!(receipt.is_receipt());
    let text = String::from_utf8_lossy(receipt.short_message.as_bytes()).into_owned();
    assert!(text.contains(&format!("id:{id}")), "{text}");
    eventually(&sim, "the receipt acknowledged", |s| s.receipts.acked == 1).await;
}

#[tokio::test]
async fn a_simulator_restart_answers_what_was_in_flight_and_the_provider_recovers() {
    // The simulator's shutdown waits `unbind_timeout` for responses still due; keep it well
    // below the latency so the submits are cut off unanswered.
    let first = sim(SimConfig {
        response_latency: ms(3_000),
        unbind_timeout: ms(100),
        ..SimConfig::default()
    })
    .await;
    let addr = first.addr();
    let mut d = Dispatcher::start(provider_config(addr, 2)).await;
    d.credit_at_least(128).await;
    for token in 0..10 {
        d.send(outbound(token, "in flight", false));
    }
    eventually(&first, "10 submits received", |s| s.submits.received == 10).await;
    first.shutdown().await;
    d.all_done(0..10).await;
    for token in 0..10 {
        assert!(
            matches!(
                d.done[&token],
                SendOutcome::InDoubt { .. } | SendOutcome::NotSent { .. }
            ),
            "{token}: {:?}",
            d.done[&token]
        );
    }
    d.until("Unavailable", |d| d.unavailable >= 1).await;
    assert_eq!(d.credit, 0);
    let second = sim(SimConfig {
        listen: addr,
        ..SimConfig::default()
    })
    .await;
    d.credit_at_least(1).await;
    d.send(outbound(100, "again", false));
    assert_eq!(accepted_ids(&d.outcome(100).await).len(), 1);
    eventually(&second, "both binds back", |s| s.binds.bound == 2).await;
}

#[tokio::test]
async fn a_killed_session_is_restarted_and_its_messages_are_answered() {
    let sim = sim(SimConfig {
        response_latency: ms(1_000),
        ..SimConfig::default()
    })
    .await;
    let mut config = provider_config(sim.addr(), 2);
    config.in_doubt = InDoubtPolicy::Fail;
    let mut d = Dispatcher::start(config).await;
    assert_eq!(d.link.in_doubt_policy(), InDoubtPolicy::Fail);
    d.credit_at_least(128).await;
    for token in 0..10 {
        d.send(outbound(token, "in flight", false));
    }
    eventually(&sim, "10 submits received", |s| s.submits.received == 10).await;
    let sessions = d.handle().sessions().await.unwrap();
    assert_eq!(sessions.len(), 2);
    sessions[0].kill();
    d.all_done(0..10).await;
    let in_doubt = d
        .done
        .values()
        .filter(|o| matches!(o, SendOutcome::InDoubt { .. }))
        .count();
    let accepted = d
        .done
        .values()
        .filter(|o| matches!(o, SendOutcome::Accepted { .. }))
        .count();
    assert_eq!(in_doubt + accepted, 10, "{:?}", d.done);
    assert!(in_doubt >= 1, "the killed session's messages: {:?}", d.done);
    eventually(&sim, "the restarted session bound", |s| {
        s.binds.transceiver == 3
    })
    .await;
    let deadline = Instant::now() + WAIT;
    loop {
        let stats = d.handle().stats().await.unwrap();
        if stats.bound_sessions == 2 {
            assert_eq!(stats.session_restarts, 1);
            assert_eq!(stats.open_messages, 0);
            break;
        }
        assert!(Instant::now() < deadline, "not recovered: {stats:?}");
        tokio::time::sleep(ms(20)).await;
    }
    d.poll();
    d.credit_at_least(1).await;
    d.send(outbound(100, "after", false));
    assert_eq!(accepted_ids(&d.outcome(100).await).len(), 1);
}

#[tokio::test]
async fn drain_answers_everything_unbinds_and_refuses_new_messages() {
    let sim = sim(SimConfig {
        response_latency: ms(150),
        ..SimConfig::default()
    })
    .await;
    let mut d = Dispatcher::start(provider_config(sim.addr(), 2)).await;
    d.credit_at_least(128).await;
    for token in 0..20 {
        d.send(outbound(token, &"long ".repeat(50), false));
    }
    let handle = d.handle.take().unwrap();
    let drained = tokio::spawn(handle.drain(Duration::from_secs(10)));
    timeout(WAIT, drained).await.unwrap().unwrap().unwrap();
    d.poll();
    assert_eq!(d.done.len(), 20, "every message answered: {:?}", d.done);
    for outcome in d.done.values() {
        assert!(
            matches!(
                outcome,
                SendOutcome::Accepted { .. } | SendOutcome::NotSent { .. }
            ),
            "{outcome:?}"
        );
    }
    let err = d.link.send(outbound(99, "late", false)).unwrap_err();
    assert_eq!(err.0, LinkError::Closed(PROVIDER));
    eventually(&sim, "both unbinds", |s| s.binds.unbinds_received == 2).await;
}
