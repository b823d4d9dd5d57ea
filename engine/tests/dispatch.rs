//! The dispatcher against a temporary store and scripted fake providers: routing, failover,
//! the retry schedule (under paused time), throttling, rejection, fairness between
//! organizations, credit, receipts (early, duplicate, hex/decimal ids), inbound routing and
//! opt-out, expiry and shutdown.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sairex_engine::classify::classify_submit_status;
use sairex_engine::dispatch::{
    Counters, Dispatcher, DispatcherConfig, DispatcherHandle, DrainReport, EngineEvent,
    HealthRules, OrgLimits, ProviderEntry, RateLimits, TokioClock,
};
use sairex_engine::provider::{
    AcceptedParts, DeliverAck, DeliverStatus, InDoubtPolicy, LinkError, Outbound, ProviderEvent,
    ProviderLink, Resume, SendOutcome,
};
use sairex_pdu::receipt::{MessageState, Receipt};
use sairex_pdu::{CommandStatus, DeliverSm, ShortMessage, esm_class, text};
use sairex_store::model::Direction;
use sairex_store::model::{
    HealthStatus, Id, Message, MessageStatus, Priority, ProviderConfig, QueuePlace,
};
use sairex_store::{MessageFilter, PageRequest, Store, StoreOptions, Submitted, SyncPolicy};
use tempfile::TempDir;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Upper bound on any wait (tokio time: under paused time it passes instantly).
const WAIT: Duration = Duration::from_secs(20);

/// What a fake provider answers to the next message.
#[derive(Debug, Clone)]
enum Answer {
    /// Accepted with a generated id.
    Accept,
    /// Accepted with these ids.
    AcceptWith(Vec<&'static str>),
    /// Refused with this status (classified by the engine's table).
    Refuse(CommandStatus),
    /// No answer ever came.
    InDoubt,
    /// Not sent.
    NotSent,
    /// Keep it; the test answers by hand.
    Hold,
    /// Parts accepted with these ids by position (`None`: not accepted), the others refused
    /// with this status. A resend's earlier ids stay in their places.
    Partial(Vec<Option<&'static str>>, CommandStatus),
    /// Parts accepted with these ids by position, no answer for the others.
    PartialInDoubt(Vec<Option<&'static str>>),
}

/// The part layout of the fakes that send parts alone (an SMPP provider's, say).
const FAKE_LAYOUT: &str = "fake/udh8";

/// A resend's earlier ids with `fresh` ones in the positions still open: the fake's answer
/// includes the parts accepted before, as providers do.
fn merged(resume: Option<&Resume>, fresh: Vec<Option<&str>>) -> Vec<Option<String>> {
    let fresh: Vec<Option<String>> = fresh.into_iter().map(|i| i.map(str::to_owned)).collect();
    match resume {
        None => fresh,
        Some(r) => r
            .ids
            .iter()
            .zip(fresh.into_iter().chain(std::iter::repeat(None)))
            .map(|(before, now)| before.clone().or(now))
            .collect(),
    }
}

#[derive(Debug, Default)]
struct FakeState {
    /// Credit granted and not used yet.
    credit: u32,
    /// Sends beyond the credit granted.
    violations: u32,
    /// What was handed over, with when.
    sent: Vec<(Outbound, Instant)>,
    script: VecDeque<Answer>,
    next_id: u64,
    /// The provider's in-doubt policy is "fail, do not resend".
    fail_in_doubt: bool,
    /// The concatenation reference of each partial answer, in order.
    references: Vec<u16>,
    /// Configured to ask for no receipts (an SMPP provider with registered_delivery 0).
    no_receipts: bool,
}

/// A provider that answers per script, gives credit on demand and, with `refill`, one more
/// credit after each answer (a window of constant size).
#[derive(Debug)]
struct Fake {
    id: Id,
    tx: mpsc::Sender<ProviderEvent>,
    refill: bool,
    /// `None`: splits on its side and can only send whole (an HTTP API, say).
    layout: Option<&'static str>,
    state: Arc<Mutex<FakeState>>,
}

impl Fake {
    fn state(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().expect("fake state")
    }

    async fn grant(&self, n: u32) {
        self.state().credit += n;
        self.tx
            .send(ProviderEvent::Credit {
                provider_id: self.id,
                n,
            })
            .await
            .expect("dispatcher gone");
    }

    fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.state().script.extend(answers);
    }

    fn sent(&self) -> Vec<Outbound> {
        self.state().sent.iter().map(|(o, _)| o.clone()).collect()
    }

    fn sent_count(&self) -> usize {
        self.state().sent.len()
    }

    fn violations(&self) -> u32 {
        self.state().violations
    }
}

impl ProviderLink for Fake {
    fn provider_id(&self) -> Id {
        self.id
    }

    fn in_doubt_policy(&self) -> InDoubtPolicy {
        if self.state().fail_in_doubt {
            InDoubtPolicy::Fail
        } else {
            InDoubtPolicy::Resubmit
        }
    }

    fn part_layout(&self) -> Option<String> {
        self.layout.map(str::to_owned)
    }

    fn requests_receipts(&self) -> bool {
        !self.state().no_receipts
    }

    fn send(&self, message: Outbound) -> Result<(), (LinkError, Outbound)> {
        let resume = message.resume.as_deref();
        let (answer, generated, reference) = {
            let mut state = self.state();
            if state.credit == 0 {
                state.violations += 1;
            } else {
                state.credit -= 1;
            }
            state.sent.push((message.clone(), Instant::now()));
            state.next_id += 1;
            let answer = state.script.pop_front().unwrap_or(Answer::Accept);
            let fresh = 100 + u16::try_from(state.next_id).expect("few sends");
            let reference = resume.map_or(fresh, |r| r.reference);
            if matches!(answer, Answer::Partial(..) | Answer::PartialInDoubt(_)) {
                state.references.push(reference);
            }
            (answer, format!("{}-{}", self.id, state.next_id), reference)
        };
        let parts = |ids| AcceptedParts {
            ids: merged(resume, ids),
            reference: Some(reference),
        };
        let outcome = match answer {
            Answer::Accept => SendOutcome::Accepted {
                provider_msg_ids: match resume {
                    Some(r) => r
                        .ids
                        .iter()
                        .enumerate()
                        .map(|(i, before)| before.clone().unwrap_or(format!("{generated}.{i}")))
                        .collect(),
                    None => vec![generated],
                },
            },
            Answer::AcceptWith(ids) => {
                // A resend's ids fill the positions still open, after the earlier ones.
                let mut fresh = ids.into_iter();
                let all = match resume {
                    Some(r) => r
                        .ids
                        .iter()
                        .map(|before| before.clone().or_else(|| fresh.next().map(str::to_owned)))
                        .collect::<Option<Vec<String>>>()
                        .expect("an id for every missing part"),
                    None => fresh.map(str::to_owned).collect(),
                };
                SendOutcome::Accepted {
                    provider_msg_ids: all,
                }
            }
            Answer::Refuse(status) => SendOutcome::Refused {
                status,
                outcome: classify_submit_status(status),
                error_code: None,
                accepted: AcceptedParts::none(),
            },
            Answer::InDoubt => SendOutcome::InDoubt {
                accepted: AcceptedParts::none(),
            },
            Answer::NotSent => SendOutcome::NotSent {
                reason: "no bind up".into(),
                accepted: AcceptedParts::none(),
            },
            Answer::Partial(ids, status) => SendOutcome::Refused {
                status,
                outcome: classify_submit_status(status),
                error_code: None,
                accepted: parts(ids),
            },
            Answer::PartialInDoubt(ids) => SendOutcome::InDoubt {
                accepted: parts(ids),
            },
            Answer::Hold => return Ok(()),
        };
        let (tx, id, refill, state) = (
            self.tx.clone(),
            self.id,
            self.refill,
            Arc::clone(&self.state),
        );
        tokio::spawn(async move {
            let done = ProviderEvent::Done {
                provider_id: id,
                token: message.token,
                outcome,
            };
            if tx.send(done).await.is_err() {
                return;
            }
            if refill {
                state.lock().expect("fake state").credit += 1;
                let _ = tx
                    .send(ProviderEvent::Credit {
                        provider_id: id,
                        n: 1,
                    })
                    .await;
            }
        });
        Ok(())
    }
}

struct Harness {
    _dir: TempDir,
    store: Store,
    tx: mpsc::Sender<ProviderEvent>,
    handle: DispatcherHandle,
    events: broadcast::Receiver<EngineEvent>,
    fakes: Vec<Arc<Fake>>,
    join: Option<JoinHandle<DrainReport>>,
    /// Bound on waits: [`WAIT`], or an hour of virtual time under paused time.
    wait: Duration,
    /// Each fake's provider configuration, refill and layout, to start again after a restart.
    providers: Vec<(ProviderConfig, bool, Option<&'static str>)>,
}

/// A provider to set up: organization (0 = shared), priority, whether it refills credit.
struct Spec {
    org: Id,
    priority: i32,
    refill: bool,
    health: HealthStatus,
    layout: Option<&'static str>,
}

fn spec(org: Id, priority: i32) -> Spec {
    Spec {
        org,
        priority,
        refill: true,
        health: HealthStatus::Healthy,
        layout: Some(FAKE_LAYOUT),
    }
}

impl Harness {
    fn open_store(dir: &TempDir) -> Store {
        let mut options = StoreOptions::new(dir.path());
        options.sync = SyncPolicy::None;
        Store::open(options).expect("store")
    }

    async fn start(specs: Vec<Spec>, config: DispatcherConfig, paused: bool) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Self::open_store(&dir);
        let mut providers = Vec::new();
        for (i, s) in specs.into_iter().enumerate() {
            let config = store
                .create_provider(ProviderConfig {
                    organization_id: s.org,
                    display_name: format!("fake{}", i + 1),
                    priority: s.priority,
                    health_status: s.health,
                    ..ProviderConfig::default()
                })
                .await
                .expect("provider");
            providers.push((config, s.refill, s.layout));
        }
        Self::launch(dir, store, providers, config, paused)
    }

    /// Stops the dispatcher, closes the store and opens it again (its recovery runs), then
    /// starts a new dispatcher with new fakes for the same providers: nothing of the first
    /// run is left but what the store kept.
    async fn restart(mut self, config: DispatcherConfig, paused: bool) -> Self {
        self.stop().await;
        let Harness {
            _dir: dir,
            store,
            providers,
            ..
        } = self;
        drop(store);
        let store = Self::open_store(&dir);
        Self::launch(dir, store, providers, config, paused)
    }

    fn launch(
        dir: TempDir,
        store: Store,
        providers: Vec<(ProviderConfig, bool, Option<&'static str>)>,
        config: DispatcherConfig,
        paused: bool,
    ) -> Self {
        let (tx, rx) = mpsc::channel(10_000);
        let mut entries = Vec::new();
        let mut fakes = Vec::new();
        for (provider, refill, layout) in &providers {
            let fake = Arc::new(Fake {
                id: provider.id,
                tx: tx.clone(),
                refill: *refill,
                layout: *layout,
                state: Arc::default(),
            });
            entries.push(ProviderEntry {
                link: fake.clone(),
                config: provider.clone(),
            });
            fakes.push(fake);
        }
        let mut dispatcher = Dispatcher::new(store.clone(), entries, rx, config);
        if paused {
            dispatcher = dispatcher.with_clock(Arc::new(TokioClock::new()));
        }
        let handle = dispatcher.handle();
        let events = handle.subscribe();
        let join = tokio::spawn(dispatcher.run());
        Self {
            _dir: dir,
            store,
            tx,
            handle,
            events,
            fakes,
            join: Some(join),
            wait: if paused {
                Duration::from_secs(3_600)
            } else {
                WAIT
            },
            providers,
        }
    }

    async fn send(&self, org: Id, to: &str, priority: Priority) -> Id {
        self.enqueue(Message {
            organization_id: org,
            to_number: to.into(),
            from_number: "Sairex".into(),
            body: format!("hello {to}"),
            priority,
            ..Message::default()
        })
        .await
    }

    async fn enqueue(&self, message: Message) -> Id {
        let id = self
            .store
            .enqueue(message)
            .await
            .expect("enqueue")
            .message()
            .id;
        self.handle.nudge();
        id
    }

    fn message(&self, org: Id, id: Id) -> Message {
        self.store.message(org, id).expect("message")
    }

    fn event_types(&self, org: Id, id: Id) -> Vec<String> {
        self.store
            .events(org, id)
            .expect("events")
            .into_iter()
            .map(|e| e.event_type)
            .collect()
    }

    fn event_detail(&self, org: Id, id: Id, event_type: &str) -> String {
        self.store
            .events(org, id)
            .expect("events")
            .into_iter()
            .filter(|e| e.event_type == event_type)
            .filter_map(|e| e.detail)
            .collect::<Vec<_>>()
            .join(" | ")
    }

    /// Waits until the message has `status`.
    async fn wait_status(&self, org: Id, id: Id, status: MessageStatus) -> Message {
        let deadline = Instant::now() + self.wait;
        loop {
            let m = self.message(org, id);
            if m.status == status {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "message {id} is {:?}, expected {status:?}; events {:?}",
                m.status,
                self.event_types(org, id)
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until `check` holds for the counters.
    async fn wait_counters(&self, check: impl Fn(&Counters) -> bool) -> Counters {
        let deadline = Instant::now() + self.wait;
        loop {
            let c = self.handle.counters();
            if check(&c) {
                return c;
            }
            assert!(Instant::now() < deadline, "counters never matched: {c:?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn wait_sent(&self, fake: usize, n: usize) {
        let deadline = Instant::now() + self.wait;
        while self.fakes[fake].sent_count() < n {
            assert!(
                Instant::now() < deadline,
                "provider {fake} got {} messages, expected {n}",
                self.fakes[fake].sent_count()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn deliver(&self, fake: usize, deliver: DeliverSm) {
        self.tx
            .send(ProviderEvent::Deliver {
                provider_id: self.fakes[fake].id,
                deliver: Box::new(deliver),
                ack: DeliverAck::detached(),
            })
            .await
            .expect("dispatcher gone");
    }

    async fn receipt(&self, fake: usize, id: &str, state: MessageState) {
        self.deliver(fake, receipt_pdu(id, state)).await;
    }

    async fn stop(&mut self) -> DrainReport {
        self.handle.shutdown();
        let Some(join) = self.join.take() else {
            return DrainReport::default();
        };
        // Polled rather than `timeout`: under paused time a timeout would fire while the
        // dispatcher waits for the store's writer thread (tokio advances time when idle).
        let deadline = Instant::now() + self.wait;
        while !join.is_finished() {
            assert!(Instant::now() < deadline, "shutdown took too long");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        join.await.expect("dispatcher task")
    }

    fn assert_no_credit_violation(&self) {
        for (i, fake) in self.fakes.iter().enumerate() {
            assert_eq!(
                fake.violations(),
                0,
                "provider {i} got more than its credit"
            );
        }
    }
}

fn receipt_pdu(id: &str, state: MessageState) -> DeliverSm {
    let mut receipt = Receipt::new(id, state);
    receipt.err = Some(if state == MessageState::Delivered {
        "000".into()
    } else {
        "0x0B".into()
    });
    DeliverSm {
        esm_class: esm_class::DELIVERY_RECEIPT,
        short_message: ShortMessage::new(receipt.format()).expect("receipt text"),
        ..DeliverSm::default()
    }
}

fn mo(from: &str, to: &str, body: &[u8]) -> DeliverSm {
    DeliverSm {
        source_addr_ton: 1,
        source_addr: from.try_into().expect("from"),
        destination_addr: to.try_into().expect("to"),
        short_message: ShortMessage::new(body.to_vec()).expect("body"),
        ..DeliverSm::default()
    }
}

const ORG: Id = 1;
const TO: &str = "+923001234567";

#[tokio::test]
async fn happy_path_queued_submitted_delivered_by_receipt() {
    let mut h = Harness::start(vec![spec(ORG, 1)], DispatcherConfig::default(), false).await;
    h.fakes[0].script([Answer::AcceptWith(vec!["abc1"])]);
    h.fakes[0].grant(5).await;
    let id = h.send(ORG, TO, Priority::TRANSACTIONAL).await;
    let m = h.wait_status(ORG, id, MessageStatus::Submitted).await;
    assert_eq!(m.provider_id, Some(h.fakes[0].id));
    assert_eq!(m.provider_msg_ids, vec!["abc1".to_owned()]);
    let sent = h.fakes[0].sent();
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].message_id, sent[0].to.as_str()), (id, TO));
    assert!(sent[0].receipt);
    assert!(
        h.event_detail(ORG, id, "SUBMITTED")
            .contains("routed to provider")
    );

    h.receipt(0, "abc1", MessageState::Delivered).await;
    let m = h.wait_status(ORG, id, MessageStatus::Delivered).await;
    assert!(m.delivered_at.is_some());
    assert_eq!(m.queue, QueuePlace::Done);
    assert_eq!(
        h.event_types(ORG, id),
        vec!["QUEUED", "SUBMITTED", "DELIVERED"]
    );

    // The store shows DELIVERED a moment before its outbox entry is relayed: wait for it.
    let mut statuses = Vec::new();
    while statuses.last() != Some(&MessageStatus::Delivered) {
        match tokio::time::timeout(WAIT, h.events.recv()).await {
            Ok(Ok(EngineEvent::StatusChanged {
                message_id, status, ..
            })) => {
                assert_eq!(message_id, id);
                statuses.push(status);
            }
            Ok(Ok(_)) => {}
            other => panic!("no DELIVERED event: {other:?}, got {statuses:?}"),
        }
    }
    assert_eq!(
        statuses,
        vec![
            MessageStatus::Queued,
            MessageStatus::Submitted,
            MessageStatus::Delivered
        ]
    );
    h.assert_no_credit_violation();
    assert_eq!(h.stop().await.unanswered, 0);
}

#[tokio::test]
async fn a_temporary_refusal_fails_over_to_the_next_provider_by_priority() {
    // Listed out of order on purpose: priority decides, not position.
    let mut h = Harness::start(
        vec![spec(ORG, 2), spec(ORG, 1), spec(0, 3)],
        DispatcherConfig::default(),
        false,
    )
    .await;
    h.fakes[1].script([Answer::Refuse(CommandStatus::ESME_RSYSERR)]);
    for fake in &h.fakes {
        fake.grant(1).await;
    }
    let id = h.send(ORG, TO, Priority::OTP).await;
    let m = h.wait_status(ORG, id, MessageStatus::Submitted).await;
    assert_eq!(
        m.provider_id,
        Some(h.fakes[0].id),
        "the priority-2 provider"
    );
    assert_eq!(m.retry_count, 0, "a failover is not a retry");
    assert_eq!(h.fakes[1].sent_count(), 1);
    assert_eq!(h.fakes[0].sent_count(), 1);
    assert_eq!(h.fakes[2].sent_count(), 0);

    let error = h.event_detail(ORG, id, "PROVIDER_ERROR");
    assert!(
        error.contains(&format!("provider {}", h.fakes[1].id)),
        "{error}"
    );
    assert!(error.contains("ESME_RSYSERR"), "{error}");
    let submitted = h.event_detail(ORG, id, "SUBMITTED");
    assert!(
        submitted.contains(&format!("routed to provider {}", h.fakes[0].id))
            && submitted.contains("priority 2")
            && submitted.contains("failover after")
            && submitted.contains("ESME_RSYSERR"),
        "{submitted}"
    );
    assert_eq!(h.handle.counters().failovers, 1);
    h.assert_no_credit_violation();
    h.stop().await;
}

#[tokio::test]
async fn a_failover_waits_for_credit_on_the_next_provider() {
    let mut h = Harness::start(
        vec![spec(ORG, 1), spec(ORG, 2)],
        DispatcherConfig::default(),
        false,
    )
    .await;
    h.fakes[0].script([Answer::Refuse(CommandStatus::ESME_RSYSERR)]);
    h.fakes[0].grant(1).await;
    let id = h.send(ORG, TO, Priority::OTP).await;
    h.wait_counters(|c| c.provider_errors == 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let m = h.message(ORG, id);
    assert!(matches!(m.queue, QueuePlace::InFlight { .. }), "{m:?}");
    assert_eq!(
        h.fakes[0].sent_count(),
        1,
        "not sent to the refusing provider again"
    );

    h.fakes[1].grant(1).await;
    let m = h.wait_status(ORG, id, MessageStatus::Submitted).await;
    assert_eq!(m.provider_id, Some(h.fakes[1].id));
    assert_eq!(m.retry_count, 0);
    h.assert_no_credit_violation();
    h.stop().await;
}

#[tokio::test]
async fn a_not_sent_answer_goes_to_another_provider_without_a_retry() {
    let mut h = Harness::start(
        vec![spec(ORG, 1), spec(ORG, 2)],
        DispatcherConfig::default(),
        false,
    )
    .await;
    h.fakes[0].script([Answer::NotSent]);
    h.fakes[0].grant(1).await;
    h.fakes[1].grant(1).await;
    let id = h.send(ORG, TO, Priority::OTP).await;
    let m = h.wait_status(ORG, id, MessageStatus::Submitted).await;
    assert_eq!(m.provider_id, Some(h.fakes[1].id));
    assert_eq!(m.retry_count, 0);
    assert!(
        h.event_detail(ORG, id, "SUBMITTED")
            .contains("did not send")
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn retries_follow_30s_2min_8min_then_failed() {
    let mut h = Harness::start(vec![spec(ORG, 1)], DispatcherConfig::default(), true).await;
    h.fakes[0].script(vec![Answer::Refuse(CommandStatus::ESME_RSYSERR); 4]);
    h.fakes[0].grant(1).await;
    let start = Instant::now();
    let id = h.send(ORG, TO, Priority::TRANSACTIONAL).await;
    let m = h.wait_status(ORG, id, MessageStatus::Failed).await;
    assert!(
        start.elapsed() < Duration::from_secs(700),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(m.retry_count, 3);

    let times: Vec<Instant> = h.fakes[0].state().sent.iter().map(|(_, t)| *t).collect();
    assert_eq!(times.len(), 4, "first try and three retries");
    for (gap, expected) in times.windows(2).zip([30, 120, 480]) {
        let gap = gap[1] - gap[0];
        let expected = Duration::from_secs(expected);
        // Never before it is due. Paused time jumps from timer to timer while the test waits
        // for the store's writer (a real thread), so on a loaded machine a gap can stretch by
        // many timer ticks; under twice the delay still tells 30 s, 2 min and 8 min apart (each
        // step is 4×).
        assert!(
            gap >= expected && gap < expected * 2,
            "retry after {gap:?}, expected {expected:?}"
        );
    }
    let types = h.event_types(ORG, id);
    assert_eq!(
        types.iter().filter(|t| *t == "RETRY").count(),
        3,
        "{types:?}"
    );
    assert_eq!(types.iter().filter(|t| *t == "PROVIDER_ERROR").count(), 4);
    assert_eq!(types.last().map(String::as_str), Some("FAILED"));
    assert!(
        m.status_message
            .as_deref()
            .is_some_and(|s| s.contains("exhausted after 3 retries"))
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn in_doubt_is_resubmitted_through_the_retry_schedule_and_counted() {
    let mut h = Harness::start(vec![spec(ORG, 1)], DispatcherConfig::default(), true).await;
    h.fakes[0].script([Answer::InDoubt, Answer::Accept]);
    h.fakes[0].grant(1).await;
    let id = h.send(ORG, TO, Priority::TRANSACTIONAL).await;
    let m = h.wait_status(ORG, id, MessageStatus::Submitted).await;
    assert_eq!(m.retry_count, 1);
    assert_eq!(h.fakes[0].sent_count(), 2);
    let types = h.event_types(ORG, id);
    assert!(
        types.windows(2).any(|w| w == ["IN_DOUBT", "RETRY"]),
        "{types:?}"
    );
    assert_eq!(h.handle.counters().in_doubt, 1);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn in_doubt_on_a_provider_whose_policy_is_fail_is_failed_without_resending() {
    let mut h = Harness::start(vec![spec(ORG, 1)], DispatcherConfig::default(), true).await;
    h.fakes[0].state().fail_in_doubt = true;
    h.fakes[0].script([Answer::InDoubt]);
    h.fakes[0].grant(1).await;
    let id = h.send(ORG, TO, Priority::TRANSACTIONAL).await;
    let m = h.wait_status(ORG, id, MessageStatus::Failed).await;
    assert_eq!(m.retry_count, 0);
    assert_eq!(h.fakes[0].sent_count(), 1, "not resent");
    assert_eq!(m.error_code.as_deref(), Some("IN_DOUBT"));
    h.stop().await;
}

#[tokio::test]
async fn throttled_goes_back_to_the_queue_without_counting_a_retry() {
    let mut h = Harness::start(vec![spec(ORG, 1)], DispatcherConfig::default(), false).await;
    h.fakes[0].script([
        Answer::Refuse(CommandStatus::ESME_RTHROTTLED),
        Answer::Refuse(CommandStatus::ESME_RMSGQFUL),
        Answer::Accept,
    ]);
    h.fakes[0].grant(1).await;
    let id = h.send(ORG, TO, Priority::TRANSACTIONAL).await;
    let m = h.wait_status(ORG, id, MessageStatus::Submitted).await;
    assert_eq!(m.retry_count, 0);
    assert_eq!(m.next_retry_at, None);
    assert_eq!(h.fakes[0].sent_count(), 3);
    let types = h.event_types(ORG, id);
    assert_eq!(types.iter().filter(|t| *t == "THROTTLED").count(), 2);
    assert!(!types.iter().any(|t| t == "RETRY"), "{types:?}");
    assert_eq!(h.handle.counters().throttled, 2);
    h.stop().await;
}

#[tokio::test]
async fn a_rejected_message_is_rejected_with_its_code_and_not_failed_over() {
    let mut h = Harness::start(
        vec![spec(ORG, 1), spec(ORG, 2)],
        DispatcherConfig::default(),
        false,
    )
    .await;
    h.fakes[0].script([Answer::Refuse(CommandStatus::ESME_RINVDSTADR)]);
    h.fakes[0].grant(1).await;
    h.fakes[1].grant(1).await;
    let id = h.send(ORG, TO, Priority::TRANSACTIONAL).await;
    let m = h.wait_status(ORG, id, MessageStatus::Rejected).await;
    assert_eq!(m.error_code.as_deref(), Some("0xb"));
    assert!(
        m.status_message
            .as_deref()
            .is_some_and(|s| s.contains("ESME_RINVDSTADR"))
    );
    assert_eq!(h.fakes[1].sent_count(), 0);

    h.fakes[0].script([Answer::Refuse(CommandStatus::ESME_RX_P_APPN)]);
    let id = h.send(ORG, TO, Priority::TRANSACTIONAL).await;
    let m = h.wait_status(ORG, id, MessageStatus::Failed).await;
    assert_eq!(m.retry_count, 0, "a permanent failure is not retried");
    h.stop().await;
}

#[tokio::test]
async fn an_otp_of_one_organization_is_not_held_back_by_another_ones_bulk() {
    const BULK_ORG: Id = 1;
    const OTP_ORG: Id = 2;
    // Credit 10 and a batch of 64: leasing "as much as credit allows" for the first
    // organization would send ten bulk messages before the OTP.
    let mut h = Harness::start(vec![spec(0, 1)], DispatcherConfig::default(), false).await;
    for i in 0..1_000 {
        h.send(BULK_ORG, &format!("+9230000{i:05}"), Priority::BULK)
            .await;
    }
    let otp = h.send(OTP_ORG, TO, Priority::OTP).await;
    h.fakes[0].grant(10).await;
    h.wait_status(OTP_ORG, otp, MessageStatus::Submitted).await;
    let order = h.fakes[0].sent();
    let position = order
        .iter()
        .position(|o| o.message_id == otp)
        .expect("otp sent");
    assert!(
        position < 10,
        "the OTP went out as message {position}, after {position} bulk messages"
    );
    h.assert_no_credit_violation();
    h.stop().await;
}

#[tokio::test]
async fn only_what_credit_allows_is_leased_and_sent() {
    let spec = Spec {
        refill: false,
        ..spec(ORG, 1)
    };
    let mut h = Harness::start(vec![spec], DispatcherConfig::default(), false).await;
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(
            h.send(ORG, &format!("+92300000000{i}"), Priority::BULK)
                .await,
        );
    }
    h.fakes[0].grant(3).await;
    h.wait_sent(0, 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.fakes[0].sent_count(), 3);
    assert_eq!(h.store.ready_count(ORG).expect("ready"), 7);
    assert_eq!(h.store.in_flight(ORG).expect("in flight").len(), 0);

    h.fakes[0].grant(2).await;
    h.wait_sent(0, 5).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.fakes[0].sent_count(), 5);
    assert_eq!(h.store.ready_count(ORG).expect("ready"), 5);
    assert_eq!(h.handle.counters().requeued, 0, "no lease/requeue churn");
    h.assert_no_credit_violation();
    h.stop().await;
}

#[tokio::test]
async fn a_receipt_before_the_ack_is_held_and_applied_once_the_ack_is_recorded() {
    let mut h = Harness::start(vec![spec(ORG, 1)], DispatcherConfig::default(), false).await;
    h.fakes[0].script([Answer::Hold]);
    h.fakes[0].grant(1).await;
    let id = h.send(ORG, TO, Priority::TRANSACTIONAL).await;
    h.wait_sent(0, 1).await;
    let token = h.fakes[0].sent()[0].token;

    // Its deliver_sm is not answered yet: answering now would lose it in a crash.
    let (ack, mut answer) = DeliverAck::channel();
    h.tx.send(ProviderEvent::Deliver {
        provider_id: h.fakes[0].id,
        deliver: Box::new(receipt_pdu("77", MessageState::Delivered)),
        ack,
    })
    .await
    .expect("send");
    h.wait_counters(|c| c.receipts_held == 1).await;
    assert_eq!(h.message(ORG, id).status, MessageStatus::Queued);
    assert!(answer.try_recv().is_err(), "held back until applied");

    h.tx.send(ProviderEvent::Done {
        provider_id: h.fakes[0].id,
        token,
        outcome: SendOutcome::Accepted {
            provider_msg_ids: vec!["77".into()],
        },
    })
    .await
    .expect("send");
    h.wait_status(ORG, id, MessageStatus::Delivered).await;
    assert_eq!(
        h.event_types(ORG, id),
        vec!["QUEUED", "SUBMITTED", "DELIVERED"]
    );
    assert_eq!(h.handle.counters().receipts_early_matched, 1);
    // Answered right after the store write the test already sees.
    let status = tokio::time::timeout(WAIT, answer).await.expect("answered");
    assert_eq!(
        status.ok(),
        Some(DeliverStatus::Done),
        "answered once applied"
    );
    h.stop().await;
}

/// The SMSC's submit_sm_resp and the receipt right behind it reach the dispatcher in one run:
/// the receipt is found once the acceptance is recorded (not held as early), and SUBMITTED is
/// published before DELIVERED.
#[tokio::test]
async fn an_acceptance_and_its_receipt_in_one_run_apply_in_order_without_a_hold() {
    let mut h = Harness::start(vec![spec(ORG, 1)], DispatcherConfig::default(), false).await;
    h.fakes[0].script([Answer::Hold]);
    h.fakes[0].grant(1).await;
    let id = h.send(ORG, TO, Priority::TRANSACTIONAL).await;
    h.wait_sent(0, 1).await;
    let token = h.fakes[0].sent()[0].token;

    // Both queued before the dispatcher runs again (this test's runtime has one thread).
    let (ack, answer) = DeliverAck::channel();
    h.tx.send(ProviderEvent::Done {
        provider_id: h.fakes[0].id,
        token,
        outcome: SendOutcome::Accepted {
            provider_msg_ids: vec!["91".into()],
        },
    })
    .await
    .expect("send");
    h.tx.send(ProviderEvent::Deliver {
        provider_id: h.fakes[0].id,
        deliver: Box::new(receipt_pdu("91", MessageState::Delivered)),
        ack,
    })
    .await
    .expect("send");

    let mut statuses = Vec::new();
    while statuses.last() != Some(&MessageStatus::Delivered) {
        match tokio::time::timeout(WAIT, h.events.recv()).await {
            Ok(Ok(EngineEvent::StatusChanged {
                message_id, status, ..
            })) if message_id == id => statuses.push(status),
            Ok(Ok(_)) => {}
            other => panic!("no DELIVERED event: {other:?}, got {statuses:?}"),
        }
    }
    assert_eq!(
        statuses,
        vec![
            MessageStatus::Queued,
            MessageStatus::Submitted,
            MessageStatus::Delivered
        ]
    );
    assert_eq!(
        h.event_types(ORG, id),
        vec!["QUEUED", "SUBMITTED", "DELIVERED"]
    );
    let counters = h.handle.counters();
    assert_eq!(counters.receipts_held, 0, "{counters:?}");
    assert_eq!(counters.receipts_early_matched, 0, "{counters:?}");
    assert_eq!(counters.receipts, 1, "{counters:?}");
    let status = tokio::time::timeout(WAIT, answer).await.expect("answered");
    assert_eq!(status.ok(), Some(DeliverStatus::Done));
    h.stop().await;
}

/// Regression (crash test): an SMSC that hands out hex ids and repeats them in its receipts
/// issues `000000c5` and, later, `00000197`, two messages. A receipt for `00000197` that
/// overtook its submit_sm_resp was taken for `000000c5`'s (197 in decimal): counted a
/// duplicate of that delivered message, answered OK, and its own message never left SUBMITTED.
#[tokio::test]
async fn a_receipt_in_another_base_is_not_taken_for_a_different_message() {
    let mut h = Harness::start(vec![spec(ORG, 1)], DispatcherConfig::default(), false).await;
    h.fakes[0].script([Answer::AcceptWith(vec!["000000c5"]), Answer::Hold]);
    h.fakes[0].grant(2).await;
    let first = h.send(ORG, TO, Priority::TRANSACTIONAL).await;
    h.wait_status(ORG, first, MessageStatus::Submitted).await;
    h.receipt(0, "000000c5", MessageState::Delivered).await;
    h.wait_status(ORG, first, MessageStatus::Delivered).await;

    let second = h.send(ORG, TO, Priority::TRANSACTIONAL).await;
    h.wait_sent(0, 2).await;
    let token = h.fakes[0].sent()[1].token;
    let (ack, mut answer) = DeliverAck::channel();
    h.tx.send(ProviderEvent::Deliver {
        provider_id: h.fakes[0].id,
        deliver: Box::new(receipt_pdu("00000197", MessageState::Delivered)),
        ack,
    })
    .await
    .expect("send");
    h.wait_counters(|c| c.receipts_held == 1).await;
    assert!(
        answer.try_recv().is_err(),
        "held, not answered as a duplicate"
    );
    assert_eq!(h.handle.counters().receipts_duplicate, 0);

    h.tx.send(ProviderEvent::Done {
        provider_id: h.fakes[0].id,
        token,
        outcome: SendOutcome::Accepted {
            provider_msg_ids: vec!["00000197".into()],
        },
    })
    .await
    .expect("send");
    h.wait_status(ORG, second, MessageStatus::Delivered).await;
    let status = tokio::time::timeout(WAIT, answer).await.expect("answered");
    assert_eq!(status.ok(), Some(DeliverStatus::Done));
    h.stop().await;
}

/// SMSCs reuse ids (a restart resets the counter). A new message's receipt that overtakes its
/// submit_sm_resp used to find the old, delivered message with the same id and be answered as
/// its duplicate; the new message then never left SUBMITTED (the soak with restarting
/// simulators found it).
#[tokio::test]
async fn a_reused_id_receipt_before_the_ack_goes_to_the_new_message() {
    let mut h = Harness::start(vec![spec(ORG, 1)], DispatcherConfig::default(), false).await;
    h.fakes[0].script([Answer::AcceptWith(vec!["r1"]), Answer::Hold]);
    h.fakes[0].grant(2).await;
    let old = h.send(ORG, TO, Priority::TRANSACTIONAL).await;
    h.wait_status(ORG, old, MessageStatus::Submitted).await;
    h.receipt(0, "r1", MessageState::Delivered).await;
    h.wait_status(ORG, old, MessageStatus::Delivered).await;

    let new = h.send(ORG, TO, Priority::TRANSACTIONAL).await;
    h.wait_sent(0, 2).await;
    let token = h.fakes[0].sent()[1].token;
    let (ack, answer) = DeliverAck::channel();
    h.tx.send(ProviderEvent::Deliver {
        provider_id: h.fakes[0].id,
        deliver: Box::new(receipt_pdu("r1", MessageState::Undeliverable)),
        ack,
    })
    .await
    .expect("send");
    h.wait_counters(|c| c.receipts == 2).await;
    h.tx.send(ProviderEvent::Done {
        provider_id: h.fakes[0].id,
        token,
        outcome: SendOutcome::Accepted {
            provider_msg_ids: vec!["r1".into()],
        },
    })
    .await
    .expect("send");
    h.wait_status(ORG, new, MessageStatus::Failed).await;
    assert_eq!(h.message(ORG, old).status, MessageStatus::Delivered);
    let status = tokio::time::timeout(WAIT, answer).await.expect("answered");
    assert_eq!(status.ok(), Some(DeliverStatus::Done));
    assert_eq!(h.handle.counters().receipts_duplicate, 0);
    h.stop().await;
}

/// An SMSC that reports in another base than it hands out still gets its receipts matched,
/// duplicates included.
#[tokio::test]
async fn receipts_in_another_base_match_when_that_is_how_the_provider_reports() {
    let mut h = Harness::start(vec![spec(ORG, 1)], DispatcherConfig::default(), false).await;
    h.fakes[0].script([
        Answer::AcceptWith(vec!["000000c5"]),
        Answer::AcceptWith(vec!["000000ff"]),
    ]);
    h.fakes[0].grant(2).await;
    let first = h.send(ORG, TO, Priority::TRANSACTIONAL).await;
    let second = h.send(ORG, TO, Priority::TRANSACTIONAL).await;
    h.wait_status(ORG, second, MessageStatus::Submitted).await;
    h.receipt(0, "197", MessageState::Delivered).await;
    h.wait_status(ORG, first, MessageStatus::Delivered).await;
    h.receipt(0, "197", MessageState::Delivered).await;
    h.wait_counters(|c| c.receipts_duplicate == 1).await;
    h.receipt(0, "0000000255", MessageState::Undeliverable)
        .await;
    h.wait_status(ORG, second, MessageStatus::Failed).await;
    assert_eq!(h.handle.counters().receipts_held, 0);
    h.stop().await;
}

/// A receipt whose id is never recorded in time is answered "retry" after the hold, so the
/// SMSC keeps it; it stays held to be applied if the id comes later.
#[tokio::test]
async fn an_early_receipt_not_matched_within_the_hold_is_stored_then_answered_ok() {
    let config = DispatcherConfig {
        early_receipt_ack_hold: Duration::from_millis(100),
        ..DispatcherConfig::default()
    };
    let mut h = Harness::start(vec![spec(ORG, 1)], config, false).await;
    let (ack, answer) = DeliverAck::channel();
    h.tx.send(ProviderEvent::Deliver {
        provider_id: h.fakes[0].id,
        deliver: Box::new(receipt_pdu("nobody", MessageState::Delivered)),
        ack,
    })
    .await
    .expect("send");
    let status = tokio::time::timeout(Duration::from_secs(5), answer)
        .await
        .expect("answered within the housekeeping period after the hold");
    assert_eq!(status.ok(), Some(DeliverStatus::Done));
    let held = h.store.held_receipts().expect("held receipts");
    assert_eq!(held.len(), 1, "durable before it was answered");
    assert_eq!(
        (held[0].1.receipt_id.as_str(), held[0].1.provider_id),
        ("nobody", h.fakes[0].id)
    );
    assert_eq!(h.handle.counters().receipts_dropped, 0, "still held");
    h.stop().await;
}

/// The crash case the hold is for: a receipt overtakes its submit_sm_resp, is answered OK
/// once in the store, and the gateway stops before the submit_sm_resp comes. After the
/// restart the message goes again (recovery), is accepted under the same id, and the receipt
/// read back from the store applies to it.
#[tokio::test]
async fn an_early_receipt_held_in_the_store_survives_a_restart_and_is_applied_once_its_id_is_recorded()
 {
    let config = || DispatcherConfig {
        early_receipt_ack_hold: Duration::from_millis(50),
        shutdown_grace: Duration::from_millis(100),
        ..DispatcherConfig::default()
    };
    let h = Harness::start(vec![spec(ORG, 1)], config(), false).await;
    h.fakes[0].script([Answer::Hold]);
    h.fakes[0].grant(1).await;
    let id = h.send(ORG, TO, Priority::TRANSACTIONAL).await;
    h.wait_sent(0, 1).await;
    let (ack, answer) = DeliverAck::channel();
    h.tx.send(ProviderEvent::Deliver {
        provider_id: h.fakes[0].id,
        deliver: Box::new(receipt_pdu("77", MessageState::Delivered)),
        ack,
    })
    .await
    .expect("send");
    let status = tokio::time::timeout(WAIT, answer).await.expect("answered");
    assert_eq!(status.ok(), Some(DeliverStatus::Done));

    let mut h = h.restart(config(), false).await;
    assert_eq!(h.store.held_receipts().expect("held").len(), 1);
    assert_eq!(h.message(ORG, id).status, MessageStatus::Queued);
    h.fakes[0].script([Answer::AcceptWith(vec!["77"])]);
    h.fakes[0].grant(1).await;
    h.handle.nudge();
    let m = h.wait_status(ORG, id, MessageStatus::Delivered).await;
    assert!(m.delivered_at.is_some());
    let types = h.event_types(ORG, id);
    assert_eq!(
        types[types.len() - 2..],
        ["SUBMITTED".to_owned(), "DELIVERED".to_owned()],
        "{types:?}"
    );
    assert_eq!(h.handle.counters().receipts_early_matched, 1);
    let deadline = Instant::now() + WAIT;
    while !h.store.held_receipts().expect("held").is_empty() {
        assert!(
            Instant::now() < deadline,
            "the applied receipt is still held"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    h.stop().await;
}

/// A receipt held in the store whose message was recorded before a restart (the crash came
/// between the acceptance's write and the receipt's) is applied as soon as it is read back.
#[tokio::test]
async fn a_held_receipt_whose_id_was_recorded_before_the_restart_is_applied_at_start() {
    let config = || DispatcherConfig {
        early_receipt_ack_hold: Duration::from_millis(50),
        ..DispatcherConfig::default()
    };
    let mut h = Harness::start(vec![spec(ORG, 1)], config(), false).await;
    let provider = h.fakes[0].id;
    let (ack, answer) = DeliverAck::channel();
    h.tx.send(ProviderEvent::Deliver {
        provider_id: provider,
        deliver: Box::new(receipt_pdu("88", MessageState::Undeliverable)),
        ack,
    })
    .await
    .expect("send");
    let status = tokio::time::timeout(WAIT, answer).await.expect("answered");
    assert_eq!(status.ok(), Some(DeliverStatus::Done));
    h.stop().await;
    // What the stopped dispatcher had written of its acceptance, and no more.
    let id = h
        .store
        .enqueue(Message {
            organization_id: ORG,
            to_number: TO.into(),
            body: "hello".into(),
            ..Message::default()
        })
        .await
        .expect("enqueue")
        .message()
        .id;
    h.store.lease(ORG, 1).await.expect("lease");
    h.store
        .ack_submitted(
            ORG,
            id,
            Submitted {
                provider_id: provider,
                provider_msg_ids: vec!["88".into()],
                ..Submitted::default()
            },
        )
        .await
        .expect("ack");

    let mut h = h.restart(config(), false).await;
    let m = h.wait_status(ORG, id, MessageStatus::Failed).await;
    assert_eq!(m.error_code.as_deref(), Some("0x0B"));
    let deadline = Instant::now() + WAIT;
    while !h.store.held_receipts().expect("held").is_empty() {
        assert!(
            Instant::now() < deadline,
            "the applied receipt is still held"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(h.handle.counters().receipts_early_matched, 1);
    h.stop().await;
}

/// A held receipt whose message is already final at start (applied, then the crash came
/// before its hold was released) is a duplicate: released, and the message left alone.
#[tokio::test]
async fn a_held_receipt_already_applied_before_the_restart_is_released_as_a_duplicate() {
    let config = || DispatcherConfig {
        early_receipt_ack_hold: Duration::from_millis(50),
        ..DispatcherConfig::default()
    };
    let mut h = Harness::start(vec![spec(ORG, 1)], config(), false).await;
    let provider = h.fakes[0].id;
    let (ack, answer) = DeliverAck::channel();
    h.tx.send(ProviderEvent::Deliver {
        provider_id: provider,
        deliver: Box::new(receipt_pdu("99", MessageState::Undeliverable)),
        ack,
    })
    .await
    .expect("send");
    let status = tokio::time::timeout(WAIT, answer).await.expect("answered");
    assert_eq!(status.ok(), Some(DeliverStatus::Done));
    h.stop().await;
    let id = h
        .store
        .enqueue(Message {
            organization_id: ORG,
            to_number: TO.into(),
            body: "hello".into(),
            ..Message::default()
        })
        .await
        .expect("enqueue")
        .message()
        .id;
    h.store.lease(ORG, 1).await.expect("lease");
    h.store
        .ack_submitted(
            ORG,
            id,
            Submitted {
                provider_id: provider,
                provider_msg_ids: vec!["99".into()],
                ..Submitted::default()
            },
        )
        .await
        .expect("ack");
    h.store
        .finalize(ORG, id, MessageStatus::Delivered, None, None)
        .await
        .expect("final");

    let mut h = h.restart(config(), false).await;
    h.wait_counters(|c| c.receipts_duplicate == 1).await;
    let deadline = Instant::now() + WAIT;
    while !h.store.held_receipts().expect("held").is_empty() {
        assert!(Instant::now() < deadline, "the duplicate is still held");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(h.message(ORG, id).status, MessageStatus::Delivered);
    assert_eq!(h.handle.counters().receipts_early_matched, 0);
    h.stop().await;
}

/// A part of a concatenated inbound message is answered OK once it is in the store; a
/// restart before its sibling comes loses nothing, and the whole message is stored once.
#[tokio::test]
async fn an_inbound_part_held_across_a_restart_joins_its_sibling() {
    const SHORT_CODE_ORG: Id = 7;
    let config = || DispatcherConfig {
        inbound_routes: HashMap::from([("8080".to_owned(), SHORT_CODE_ORG)]),
        ..DispatcherConfig::default()
    };
    let part = |seq: u8, text: &[u8]| {
        let mut sm = text::concat_udh8(42, 3, seq).to_vec();
        sm.extend_from_slice(text);
        DeliverSm {
            esm_class: esm_class::UDHI,
            ..mo("923001234567", "8080", &sm)
        }
    };
    let deliver = |h: &Harness, d: DeliverSm| {
        let (ack, answer) = DeliverAck::channel();
        let tx = h.tx.clone();
        let provider_id = h.fakes[0].id;
        async move {
            tx.send(ProviderEvent::Deliver {
                provider_id,
                deliver: Box::new(d),
                ack,
            })
            .await
            .expect("send");
            tokio::time::timeout(WAIT, answer)
                .await
                .expect("answered")
                .ok()
        }
    };
    let inbound = |h: &Harness| {
        h.store
            .list_messages(
                SHORT_CODE_ORG,
                &MessageFilter {
                    direction: Some(Direction::Inbound),
                    ..MessageFilter::default()
                },
                PageRequest::default(),
            )
            .expect("list")
            .items
    };
    let h = Harness::start(vec![spec(0, 1)], config(), false).await;
    assert_eq!(deliver(&h, part(3, b"!")).await, Some(DeliverStatus::Done));
    assert_eq!(
        deliver(&h, part(1, b"hello ")).await,
        Some(DeliverStatus::Done)
    );
    assert_eq!(h.store.held_inbound_parts().expect("held").len(), 2);

    // Stopped before the last part: the parts are not given up as an incomplete message.
    let h = h.restart(config(), false).await;
    assert!(inbound(&h).is_empty(), "nothing stored incomplete");
    // The SMSC sends part 1 again (it did not hear our answer), then the last part.
    assert_eq!(
        deliver(&h, part(1, b"hello ")).await,
        Some(DeliverStatus::Done)
    );
    assert_eq!(
        deliver(&h, part(2, b"world")).await,
        Some(DeliverStatus::Done)
    );
    let stored = inbound(&h);
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(
        (stored[0].body.as_str(), stored[0].segments),
        ("hello world!", 3)
    );
    assert!(
        h.store.held_inbound_parts().expect("held").is_empty(),
        "released with the message"
    );
    let mut h = h.restart(config(), false).await;
    assert_eq!(inbound(&h).len(), 1, "not stored again after a restart");
    h.stop().await;
}

/// Parts read back after a restart keep their age: one whose siblings never come is given up
/// after the reassembly time, stored with a note, and its hold released.
#[tokio::test]
async fn held_parts_that_never_complete_are_given_up_by_age_after_a_restart() {
    const SHORT_CODE_ORG: Id = 7;
    let config = || DispatcherConfig {
        inbound_routes: HashMap::from([("8080".to_owned(), SHORT_CODE_ORG)]),
        inbound_parts_ttl: Duration::from_millis(500),
        ..DispatcherConfig::default()
    };
    let h = Harness::start(vec![spec(0, 1)], config(), false).await;
    let mut sm = text::concat_udh8(43, 2, 1).to_vec();
    sm.extend_from_slice(b"half a ");
    let (ack, answer) = DeliverAck::channel();
    h.tx.send(ProviderEvent::Deliver {
        provider_id: h.fakes[0].id,
        deliver: Box::new(DeliverSm {
            esm_class: esm_class::UDHI,
            ..mo("923001234567", "8080", &sm)
        }),
        ack,
    })
    .await
    .expect("send");
    let status = tokio::time::timeout(WAIT, answer).await.expect("answered");
    assert_eq!(status.ok(), Some(DeliverStatus::Done));

    let mut h = h.restart(config(), false).await;
    h.wait_counters(|c| c.inbound_incomplete == 1 && c.inbound == 1)
        .await;
    let stored = h
        .store
        .list_messages(
            SHORT_CODE_ORG,
            &MessageFilter {
                direction: Some(Direction::Inbound),
                ..MessageFilter::default()
            },
            PageRequest::default(),
        )
        .expect("list")
        .items;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].body, "half a ");
    assert!(
        stored[0]
            .status_message
            .as_deref()
            .is_some_and(|n| n.contains("parts [2] of 2 never arrived")),
        "{:?}",
        stored[0].status_message
    );
    assert!(h.store.held_inbound_parts().expect("held").is_empty());
    h.stop().await;
}

// ---- receipt timeout ---------------------------------------------------------------------

const HOUR: Duration = Duration::from_secs(3_600);

/// Advances paused time by `by` in one jump, then lets the dispatcher's next housekeeping run.
async fn jump(by: Duration) {
    tokio::time::advance(by).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
}

/// A message with no validity of its own waits 48 h plus the grace (1 h) for its receipt,
/// then is EXPIRED with a RECEIPT_TIMEOUT event; a receipt after that records the real outcome.
#[tokio::test(start_paused = true)]
async fn a_submitted_message_without_a_receipt_expires_after_48_hours_plus_the_grace() {
    let mut h = Harness::start(vec![spec(ORG, 1)], DispatcherConfig::default(), true).await;
    h.fakes[0].script([Answer::AcceptWith(vec!["late1"])]);
    h.fakes[0].grant(1).await;
    let id = h.send(ORG, TO, Priority::TRANSACTIONAL).await;
    let m = h.wait_status(ORG, id, MessageStatus::Submitted).await;
    let due = m.receipt_due_at.expect("a receipt is asked for: due");
    let submitted = m.submitted_at.expect("submitted");
    // Due 49 h after submission (the dispatcher's clock and the store's differ by the virtual
    // time the test has let pass, a few seconds at most).
    let ms = |d: Duration| u64::try_from(d.as_millis()).expect("ms");
    assert!(
        due + 10_000 >= submitted + ms(49 * HOUR) && due < submitted + ms(49 * HOUR) + 600_000,
        "due {due}, submitted {submitted}"
    );

    jump(48 * HOUR).await;
    assert_eq!(
        h.message(ORG, id).status,
        MessageStatus::Submitted,
        "not before the grace"
    );
    jump(HOUR + Duration::from_secs(600)).await;
    let m = h.wait_status(ORG, id, MessageStatus::Expired).await;
    assert_eq!(m.error_code.as_deref(), Some("RECEIPT_TIMEOUT"));
    assert_eq!(m.queue, QueuePlace::Done);
    let events = h.store.events(ORG, id).expect("events");
    let timeout = events.last().expect("an event");
    assert_eq!(
        (timeout.event_type.as_str(), timeout.status),
        ("RECEIPT_TIMEOUT", MessageStatus::Expired)
    );
    assert!(timeout.occurred_at >= due, "never before it is due");
    h.wait_counters(|c| c.receipt_timeouts == 1).await;

    // The carrier's receipt, late: the real outcome replaces the timeout's.
    h.receipt(0, "late1", MessageState::Delivered).await;
    let m = h.wait_status(ORG, id, MessageStatus::Delivered).await;
    assert_eq!(m.error_code, None);
    assert!(m.delivered_at.is_some());
    assert_eq!(
        h.event_types(ORG, id),
        vec!["QUEUED", "SUBMITTED", "RECEIPT_TIMEOUT", "DELIVERED"]
    );
    // Once final by a receipt, another one is a duplicate.
    h.receipt(0, "late1", MessageState::Undeliverable).await;
    h.wait_counters(|c| c.receipts == 2).await;
    assert_eq!(h.message(ORG, id).status, MessageStatus::Delivered);
    h.stop().await;
}

/// A message's own validity and the configured grace set the deadline; a late failure receipt
/// makes it FAILED with the carrier's code, and one that came in time is never expired.
#[tokio::test(start_paused = true)]
async fn the_receipt_timeout_follows_the_validity_and_grace_and_a_late_failure_is_recorded() {
    let config = DispatcherConfig {
        receipt_grace: Duration::from_secs(600),
        ..DispatcherConfig::default()
    };
    let mut h = Harness::start(vec![spec(ORG, 1)], config, true).await;
    h.fakes[0].script([
        Answer::AcceptWith(vec!["v1"]),
        Answer::AcceptWith(vec!["v2"]),
    ]);
    h.fakes[0].grant(2).await;
    let expires = sairex_store::now_ms() + 3_600_000;
    let mut ids = Vec::new();
    for _ in 0..2 {
        ids.push(
            h.enqueue(Message {
                organization_id: ORG,
                to_number: TO.into(),
                body: "valid for an hour".into(),
                expires_at: Some(expires),
                ..Message::default()
            })
            .await,
        );
    }
    for id in &ids {
        let m = h.wait_status(ORG, *id, MessageStatus::Submitted).await;
        assert_eq!(m.receipt_due_at, Some(expires + 600_000));
    }
    h.receipt(0, "v2", MessageState::Delivered).await;
    h.wait_status(ORG, ids[1], MessageStatus::Delivered).await;

    jump(HOUR + Duration::from_secs(1_200)).await;
    let m = h.wait_status(ORG, ids[0], MessageStatus::Expired).await;
    assert_eq!(m.error_code.as_deref(), Some("RECEIPT_TIMEOUT"));
    assert_eq!(h.message(ORG, ids[1]).status, MessageStatus::Delivered);

    // An intermediate receipt after the timeout changes nothing; a failure is recorded.
    h.receipt(0, "v1", MessageState::Enroute).await;
    h.receipt(0, "v1", MessageState::Undeliverable).await;
    let m = h.wait_status(ORG, ids[0], MessageStatus::Failed).await;
    assert_eq!(m.error_code.as_deref(), Some("0x0B"));
    assert_eq!(
        h.event_types(ORG, ids[0]),
        vec!["QUEUED", "SUBMITTED", "RECEIPT_TIMEOUT", "FAILED"]
    );
    h.wait_counters(|c| c.receipt_timeouts == 1).await;
    h.stop().await;
}

/// No receipt asked for (by the gateway's setting, or by a provider that never asks the SMSC):
/// nothing to wait for, so no receipt timeout.
#[tokio::test]
async fn a_message_sent_without_asking_for_a_receipt_never_times_out() {
    let mut h = Harness::start(vec![spec(ORG, 1)], DispatcherConfig::default(), false).await;
    h.fakes[0].state().no_receipts = true;
    h.fakes[0].grant(1).await;
    let id = h.send(ORG, TO, Priority::TRANSACTIONAL).await;
    let m = h.wait_status(ORG, id, MessageStatus::Submitted).await;
    assert_eq!(m.receipt_due_at, None);
    h.stop().await;

    let config = DispatcherConfig {
        request_receipts: false,
        ..DispatcherConfig::default()
    };
    let mut h = Harness::start(vec![spec(ORG, 1)], config, false).await;
    h.fakes[0].grant(1).await;
    let id = h.send(ORG, TO, Priority::TRANSACTIONAL).await;
    let m = h.wait_status(ORG, id, MessageStatus::Submitted).await;
    assert_eq!(m.receipt_due_at, None);
    h.stop().await;
}

/// Multipart: expired only when a part's receipt is missing. One message has every part
/// delivered (DELIVERED, never expired); the other has one part's receipt missing (EXPIRED),
/// and that part's late receipt then makes it DELIVERED.
#[tokio::test(start_paused = true)]
async fn a_message_of_several_parts_expires_only_when_a_parts_receipt_is_missing() {
    let mut h = Harness::start(vec![spec(ORG, 1)], DispatcherConfig::default(), true).await;
    h.fakes[0].script([
        Answer::AcceptWith(vec!["a1", "a2"]),
        Answer::AcceptWith(vec!["b1", "b2"]),
    ]);
    h.fakes[0].grant(2).await;
    let whole = h.send(ORG, TO, Priority::TRANSACTIONAL).await;
    let missing = h.send(ORG, TO, Priority::TRANSACTIONAL).await;
    h.wait_status(ORG, whole, MessageStatus::Submitted).await;
    h.wait_status(ORG, missing, MessageStatus::Submitted).await;
    let (a, b) = if h.message(ORG, whole).provider_msg_ids[0] == "a1" {
        ("a", "b")
    } else {
        ("b", "a")
    };
    h.receipt(0, &format!("{a}1"), MessageState::Delivered)
        .await;
    h.receipt(0, &format!("{a}2"), MessageState::Delivered)
        .await;
    h.receipt(0, &format!("{b}2"), MessageState::Delivered)
        .await;
    h.wait_status(ORG, whole, MessageStatus::Delivered).await;
    h.wait_counters(|c| c.receipts == 3).await;

    jump(50 * HOUR).await;
    let m = h.wait_status(ORG, missing, MessageStatus::Expired).await;
    assert_eq!(m.error_code.as_deref(), Some("RECEIPT_TIMEOUT"));
    assert!(
        h.event_detail(ORG, missing, "RECEIPT_TIMEOUT")
            .contains("for every part")
    );
    assert_eq!(h.message(ORG, whole).status, MessageStatus::Delivered);
    h.wait_counters(|c| c.receipt_timeouts == 1).await;

    h.receipt(0, &format!("{b}1"), MessageState::Delivered)
        .await;
    h.wait_status(ORG, missing, MessageStatus::Delivered).await;
    let types = h.event_types(ORG, missing);
    assert_eq!(
        types,
        vec![
            "QUEUED",
            "SUBMITTED",
            "PART_DELIVERED",
            "RECEIPT_TIMEOUT",
            "DELIVERED"
        ]
    );
    h.stop().await;
}

#[tokio::test]
async fn a_duplicate_receipt_changes_nothing() {
    let mut h = Harness::start(vec![spec(ORG, 1)], DispatcherConfig::default(), false).await;
    h.fakes[0].script([Answer::AcceptWith(vec!["d1"])]);
    h.fakes[0].grant(1).await;
    let id = h.send(ORG, TO, Priority::TRANSACTIONAL).await;
    h.wait_status(ORG, id, MessageStatus::Submitted).await;
    h.receipt(0, "d1", MessageState::Enroute).await;
    h.wait_status(ORG, id, MessageStatus::Sent).await;
    h.receipt(0, "d1", MessageState::Enroute).await;
    h.receipt(0, "d1", MessageState::Delivered).await;
    let delivered = h.wait_status(ORG, id, MessageStatus::Delivered).await;
    h.receipt(0, "d1", MessageState::Delivered).await;
    h.receipt(0, "d1", MessageState::Undeliverable).await;
    h.wait_counters(|c| c.receipts == 5).await;
    let after = h.message(ORG, id);
    assert_eq!(after.status, MessageStatus::Delivered);
    assert_eq!(after.event_count, delivered.event_count);
    assert_eq!(after.error_code, None);
    assert_eq!(
        h.event_types(ORG, id),
        vec!["QUEUED", "SUBMITTED", "SENT", "DELIVERED"]
    );
    // Those for the final message are held for the ack hold (an SMSC may reuse the id for a
    // new message whose submit_sm_resp is not recorded yet), then answered as duplicates.
    h.wait_counters(|c| c.receipts_duplicate == 3).await;
    h.stop().await;
}

#[tokio::test]
async fn receipt_ids_match_across_hex_and_decimal() {
    let mut h = Harness::start(vec![spec(ORG, 1)], DispatcherConfig::default(), false).await;
    // submit_sm_resp in padded hex, receipt in decimal; then the other way round.
    h.fakes[0].script([
        Answer::AcceptWith(vec!["000004D2"]),
        Answer::AcceptWith(vec!["3735928559"]),
    ]);
    h.fakes[0].grant(2).await;
    let a = h.send(ORG, TO, Priority::TRANSACTIONAL).await;
    h.wait_status(ORG, a, MessageStatus::Submitted).await;
    let b = h.send(ORG, TO, Priority::TRANSACTIONAL).await;
    h.wait_status(ORG, b, MessageStatus::Submitted).await;

    h.receipt(0, "1234", MessageState::Delivered).await;
    h.receipt(0, "deadbeef", MessageState::Undeliverable).await;
    h.wait_status(ORG, a, MessageStatus::Delivered).await;
    let b = h.wait_status(ORG, b, MessageStatus::Failed).await;
    assert_eq!(b.error_code.as_deref(), Some("0x0B"));
    assert_eq!(h.handle.counters().receipts_held, 0);
    h.stop().await;
}

#[tokio::test]
async fn a_message_of_several_parts_is_delivered_when_every_part_is() {
    let mut h = Harness::start(vec![spec(ORG, 1)], DispatcherConfig::default(), false).await;
    h.fakes[0].script([Answer::AcceptWith(vec!["p1", "p2"])]);
    h.fakes[0].grant(1).await;
    let id = h.send(ORG, TO, Priority::TRANSACTIONAL).await;
    h.wait_status(ORG, id, MessageStatus::Submitted).await;
    h.receipt(0, "p2", MessageState::Delivered).await;
    h.receipt(0, "p2", MessageState::Delivered).await;
    h.wait_counters(|c| c.receipts == 2).await;
    assert_eq!(h.message(ORG, id).status, MessageStatus::Submitted);
    h.receipt(0, "p1", MessageState::Delivered).await;
    h.wait_status(ORG, id, MessageStatus::Delivered).await;
    h.stop().await;
}

/// Receipts sent back to back reach the dispatcher as one run, applied concurrently: the parts
/// of one message must still be applied one after another (each reads what the previous one
/// wrote), and a duplicate in the same run must change nothing.
#[tokio::test]
async fn a_burst_of_receipts_for_parts_and_other_messages_is_applied_exactly_once() {
    let mut h = Harness::start(vec![spec(ORG, 1)], DispatcherConfig::default(), false).await;
    h.fakes[0].script([
        Answer::AcceptWith(vec!["q1", "q2", "q3"]),
        Answer::AcceptWith(vec!["r1"]),
    ]);
    h.fakes[0].grant(2).await;
    let long = h.send(ORG, TO, Priority::TRANSACTIONAL).await;
    h.wait_status(ORG, long, MessageStatus::Submitted).await;
    let short = h.send(ORG, TO, Priority::TRANSACTIONAL).await;
    h.wait_status(ORG, short, MessageStatus::Submitted).await;
    for id in ["q3", "r1", "q1", "q3", "r1", "q2"] {
        h.receipt(0, id, MessageState::Delivered).await;
    }
    h.wait_status(ORG, long, MessageStatus::Delivered).await;
    h.wait_status(ORG, short, MessageStatus::Delivered).await;
    h.wait_counters(|c| c.receipts == 6).await;
    assert_eq!(
        h.event_types(ORG, long),
        vec![
            "QUEUED",
            "SUBMITTED",
            "PART_DELIVERED",
            "PART_DELIVERED",
            "DELIVERED"
        ]
    );
    assert_eq!(
        h.event_types(ORG, short),
        vec!["QUEUED", "SUBMITTED", "DELIVERED"]
    );
    h.wait_counters(|c| c.receipts_duplicate == 2).await;
    h.stop().await;
}

#[tokio::test]
async fn inbound_is_routed_and_stop_start_opt_out_and_back_in() {
    const SHORT_CODE_ORG: Id = 7;
    const OWN_ORG: Id = 9;
    let config = DispatcherConfig {
        inbound_routes: HashMap::from([("8080".to_owned(), SHORT_CODE_ORG)]),
        ..DispatcherConfig::default()
    };
    let mut h = Harness::start(vec![spec(0, 1), spec(OWN_ORG, 1)], config, false).await;

    let mut inbound = Vec::new();
    async fn next_inbound(h: &mut Harness) -> (Id, Id) {
        loop {
            match tokio::time::timeout(WAIT, h.events.recv()).await {
                Ok(Ok(EngineEvent::Inbound { org, message_id })) => return (org, message_id),
                Ok(Ok(_)) => {}
                other => panic!("no inbound event: {other:?}"),
            }
        }
    }

    // On the shared provider, the short code decides the organization.
    h.deliver(0, mo("923001234567", "8080", b"Hello")).await;
    let (org, id) = next_inbound(&mut h).await;
    assert_eq!(org, SHORT_CODE_ORG);
    let m = h.message(org, id);
    assert_eq!(m.status, MessageStatus::Received);
    assert_eq!((m.from_number.as_str(), m.body.as_str()), (TO, "Hello"));
    assert_eq!(m.provider_id, Some(h.fakes[0].id));
    inbound.push(id);

    // On an organization's own provider, that organization.
    h.deliver(1, mo("923001234567", "1111", b"Hi")).await;
    assert_eq!(next_inbound(&mut h).await.0, OWN_ORG);

    // Unroutable: counted, not stored.
    h.deliver(0, mo("923001234567", "9999", b"lost")).await;
    h.wait_counters(|c| c.inbound_unroutable == 1).await;

    // Two UDH parts, out of order, become one message.
    let part = |seq: u8, text: &[u8]| {
        let mut sm = text::concat_udh8(42, 2, seq).to_vec();
        sm.extend_from_slice(text);
        DeliverSm {
            esm_class: esm_class::UDHI,
            ..mo("923001234567", "8080", &sm)
        }
    };
    h.deliver(0, part(2, b"world")).await;
    h.deliver(0, part(1, b"hello ")).await;
    let (org, id) = next_inbound(&mut h).await;
    let m = h.message(org, id);
    assert_eq!((m.body.as_str(), m.segments), ("hello world", 2));

    // STOP, in any case and with spaces, opts the sender out.
    h.deliver(0, mo("923001234567", "8080", b"  Stop ")).await;
    let (org, id) = next_inbound(&mut h).await;
    let contact = h
        .store
        .contact_by_phone(org, TO)
        .expect("lookup")
        .expect("contact created");
    assert!(contact.is_opted_out);
    assert_eq!(h.message(org, id).contact_id, Some(contact.id));

    // A message to them is rejected, not sent.
    h.fakes[0].grant(5).await;
    let out = h.send(SHORT_CODE_ORG, TO, Priority::TRANSACTIONAL).await;
    let m = h
        .wait_status(SHORT_CODE_ORG, out, MessageStatus::Rejected)
        .await;
    assert_eq!(m.error_code.as_deref(), Some("OPTED_OUT"));
    assert!(h.fakes[0].sent().iter().all(|o| o.message_id != out));

    // START opts them back in; sending works again.
    h.deliver(0, mo("923001234567", "8080", b"start")).await;
    next_inbound(&mut h).await;
    assert!(
        !h.store
            .contact_by_phone(SHORT_CODE_ORG, TO)
            .expect("lookup")
            .expect("contact")
            .is_opted_out
    );
    let out = h.send(SHORT_CODE_ORG, TO, Priority::TRANSACTIONAL).await;
    h.wait_status(SHORT_CODE_ORG, out, MessageStatus::Submitted)
        .await;

    // "please stop" is not a keyword.
    h.deliver(0, mo("923001234567", "8080", b"please stop"))
        .await;
    next_inbound(&mut h).await;
    let c = h.handle.counters();
    assert_eq!((c.opt_outs, c.opt_ins), (1, 1));
    h.stop().await;
}

#[tokio::test]
async fn a_message_to_an_opted_out_contact_is_rejected() {
    let mut h = Harness::start(vec![spec(ORG, 1)], DispatcherConfig::default(), false).await;
    h.store
        .set_phone_opt_out(ORG, TO, true)
        .await
        .expect("opt out");
    h.fakes[0].grant(5).await;
    let id = h.send(ORG, TO, Priority::OTP).await;
    let m = h.wait_status(ORG, id, MessageStatus::Rejected).await;
    assert!(
        m.status_message
            .as_deref()
            .is_some_and(|s| s.contains("opted out"))
    );
    assert_eq!(h.fakes[0].sent_count(), 0);
    let other = h.send(ORG, "+923009999999", Priority::OTP).await;
    h.wait_status(ORG, other, MessageStatus::Submitted).await;
    assert_eq!(h.handle.counters().rejected_opted_out, 1);
    h.stop().await;
}

#[tokio::test]
async fn an_expired_message_is_not_sent() {
    let mut h = Harness::start(vec![spec(ORG, 1)], DispatcherConfig::default(), false).await;
    h.fakes[0].grant(5).await;
    let id = h
        .enqueue(Message {
            organization_id: ORG,
            to_number: TO.into(),
            body: "too late".into(),
            expires_at: Some(sairex_store::now_ms().saturating_sub(1_000)),
            ..Message::default()
        })
        .await;
    h.wait_status(ORG, id, MessageStatus::Expired).await;
    assert_eq!(h.fakes[0].sent_count(), 0);
    h.stop().await;
}

/// The health monitor: failures make a provider DEGRADED, then DOWN (stored, and left out of
/// routing); the healthy one takes over.
#[tokio::test]
async fn a_failing_provider_is_degraded_then_down_and_skipped() {
    let config = DispatcherConfig {
        health: HealthRules {
            degraded_after: 1,
            down_after: 2,
            coalesce: 0,
            ..HealthRules::default()
        },
        ..DispatcherConfig::default()
    };
    let mut h = Harness::start(vec![spec(ORG, 1), spec(ORG, 2)], config, false).await;
    h.fakes[0].script([
        Answer::Refuse(CommandStatus::ESME_RSYSERR),
        Answer::Refuse(CommandStatus::ESME_RSYSERR),
        Answer::Refuse(CommandStatus::ESME_RSYSERR),
    ]);
    h.fakes[0].grant(10).await;
    h.fakes[1].grant(10).await;
    let failing = h.fakes[0].id;
    let mut expected = vec![
        HealthStatus::Healthy,
        HealthStatus::Degraded,
        HealthStatus::Down,
    ];
    for want in expected.drain(..) {
        let id = h.send(ORG, TO, Priority::OTP).await;
        let m = h.wait_status(ORG, id, MessageStatus::Submitted).await;
        assert_eq!(m.provider_id, Some(h.fakes[1].id), "failed over");
        let stored = h.store.provider(ORG, failing).unwrap().health_status;
        // The first failure leaves the stored status as it was (HEALTHY from the spec).
        assert_eq!(stored, want);
    }
    let down = h.store.provider(ORG, failing).unwrap();
    assert_eq!(down.failure_count, 3);
    assert!(down.last_health_check.is_some());
    assert_eq!(h.fakes[0].sent_count(), 3);
    let id = h.send(ORG, TO, Priority::OTP).await;
    h.wait_status(ORG, id, MessageStatus::Submitted).await;
    assert_eq!(h.fakes[0].sent_count(), 3, "a DOWN provider gets nothing");
    assert_eq!(
        h.store.provider(ORG, h.fakes[1].id).unwrap().health_status,
        HealthStatus::Healthy
    );
    h.stop().await;
}

/// `provider` of a send: the requested provider goes first even when another has a better
/// priority; once it refuses, the chain takes over.
#[tokio::test]
async fn a_requested_provider_is_used_first_then_the_chain() {
    let mut h = Harness::start(
        vec![spec(ORG, 1), spec(ORG, 2)],
        DispatcherConfig::default(),
        false,
    )
    .await;
    h.fakes[0].grant(5).await;
    h.fakes[1].grant(5).await;
    let wanted = h.fakes[1].id;
    let message = |to: &str| Message {
        organization_id: ORG,
        to_number: to.into(),
        from_number: "Sairex".into(),
        body: "hello".into(),
        provider_id: Some(wanted),
        ..Message::default()
    };
    let id = h.enqueue(message(TO)).await;
    let m = h.wait_status(ORG, id, MessageStatus::Submitted).await;
    assert_eq!(m.provider_id, Some(wanted));
    assert!(h.event_detail(ORG, id, "SUBMITTED").contains("(requested)"));

    h.fakes[1].script([Answer::Refuse(CommandStatus::ESME_RSYSERR)]);
    let id = h.enqueue(message("+923009999999")).await;
    let m = h.wait_status(ORG, id, MessageStatus::Submitted).await;
    assert_eq!(
        m.provider_id,
        Some(h.fakes[0].id),
        "failed over after the refusal"
    );
    h.stop().await;
}

#[tokio::test]
async fn a_down_provider_is_skipped() {
    let down = Spec {
        health: HealthStatus::Down,
        ..spec(ORG, 1)
    };
    let mut h = Harness::start(vec![down, spec(ORG, 2)], DispatcherConfig::default(), false).await;
    h.fakes[0].grant(5).await;
    h.fakes[1].grant(5).await;
    let id = h.send(ORG, TO, Priority::OTP).await;
    let m = h.wait_status(ORG, id, MessageStatus::Submitted).await;
    assert_eq!(m.provider_id, Some(h.fakes[1].id));
    assert_eq!(h.fakes[0].sent_count(), 0);
    h.stop().await;
}

#[tokio::test]
async fn shutdown_waits_for_answers_then_leaves_the_rest_in_flight() {
    let config = DispatcherConfig {
        shutdown_grace: Duration::from_millis(300),
        ..DispatcherConfig::default()
    };
    let mut h = Harness::start(vec![spec(ORG, 1)], config, false).await;
    h.fakes[0].script([Answer::Hold, Answer::Hold]);
    h.fakes[0].grant(2).await;
    let answered = h.send(ORG, TO, Priority::OTP).await;
    let unanswered = h.send(ORG, TO, Priority::OTP).await;
    h.wait_sent(0, 2).await;
    let sent = h.fakes[0].sent();
    let token = sent
        .iter()
        .find(|o| o.message_id == answered)
        .expect("sent")
        .token;

    h.handle.shutdown();
    // An answer arriving during the drain is still applied.
    h.tx.send(ProviderEvent::Done {
        provider_id: h.fakes[0].id,
        token,
        outcome: SendOutcome::Accepted {
            provider_msg_ids: vec!["x".into()],
        },
    })
    .await
    .expect("send");
    // A message enqueued now is not leased.
    let late = h.send(ORG, TO, Priority::OTP).await;
    let report = h.stop().await;
    assert_eq!(report.unanswered, 1);
    assert_eq!(h.message(ORG, answered).status, MessageStatus::Submitted);
    assert!(matches!(
        h.message(ORG, unanswered).queue,
        QueuePlace::InFlight { .. }
    ));
    assert!(matches!(
        h.message(ORG, late).queue,
        QueuePlace::Ready { .. }
    ));
    assert_eq!(h.fakes[0].sent_count(), 2);
}

// ---- rate limits -------------------------------------------------------------------------

/// Send times of every fake, sorted.
fn send_times(h: &Harness) -> Vec<Instant> {
    let mut times: Vec<Instant> = h
        .fakes
        .iter()
        .flat_map(|f| f.state().sent.iter().map(|(_, t)| *t).collect::<Vec<_>>())
        .collect();
    times.sort();
    times
}

#[tokio::test(start_paused = true)]
async fn the_global_tps_caps_sends_across_providers() {
    const ORG2: Id = 2;
    let config = DispatcherConfig {
        limits: RateLimits {
            global_tps: Some(10),
            ..RateLimits::default()
        },
        ..DispatcherConfig::default()
    };
    let mut h = Harness::start(vec![spec(ORG, 1), spec(ORG2, 1)], config, true).await;
    let mut ids = Vec::new();
    for i in 0..30 {
        ids.push((
            ORG,
            h.send(ORG, &format!("+92300100{i:04}"), Priority::BULK)
                .await,
        ));
        ids.push((
            ORG2,
            h.send(ORG2, &format!("+92300200{i:04}"), Priority::BULK)
                .await,
        ));
    }
    // Everything queued first: sending starts with the credit.
    let start = Instant::now();
    h.fakes[0].grant(1_000).await;
    h.fakes[1].grant(1_000).await;
    for (org, id) in &ids {
        h.wait_status(*org, *id, MessageStatus::Submitted).await;
    }
    let times = send_times(&h);
    assert_eq!(times.len(), 60, "each sent once");
    assert!(h.fakes[0].sent_count() == 30 && h.fakes[1].sent_count() == 30);
    // A bucket of 10 per second with a burst of 10: by time t, at most 10 + 10·t sends.
    for (k, t) in times.iter().enumerate() {
        let allowed = 10.0 + 10.0 * (*t - start).as_secs_f64();
        assert!(
            (k + 1) as f64 <= allowed + 1e-6,
            "send {} at {:?}: over the global limit",
            k + 1,
            *t - start
        );
    }
    // No second holds more than the burst plus a second's rate (the store's writes let paused
    // time run on, so how long it took overall says little).
    for w in times.windows(21) {
        assert!(
            w[20] - w[0] >= Duration::from_secs(1),
            "21 sends within {:?}",
            w[20] - w[0]
        );
    }
    assert!(times[59] - start >= Duration::from_secs(5));
    let c = h.handle.counters();
    assert_eq!((c.failed, c.retries, c.requeued), (0, 0, 0), "{c:?}");
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_organization_over_its_per_minute_limit_waits_while_another_sends() {
    const ORG2: Id = 2;
    let config = DispatcherConfig {
        limits: RateLimits {
            per_org: HashMap::from([(
                ORG,
                OrgLimits {
                    per_minute: Some(5),
                    per_day: None,
                },
            )]),
            ..RateLimits::default()
        },
        ..DispatcherConfig::default()
    };
    // One shared provider for both organizations.
    let mut h = Harness::start(vec![spec(0, 1)], config, true).await;
    h.fakes[0].grant(1_000).await;
    let mut limited = Vec::new();
    let mut free = Vec::new();
    for i in 0..20 {
        limited.push(
            h.send(ORG, &format!("+92300100{i:04}"), Priority::BULK)
                .await,
        );
        free.push(
            h.send(ORG2, &format!("+92300200{i:04}"), Priority::BULK)
                .await,
        );
    }
    for id in &free {
        h.wait_status(ORG2, *id, MessageStatus::Submitted).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let status = |h: &Harness, s: MessageStatus| {
        limited
            .iter()
            .filter(|id| h.message(ORG, **id).status == s)
            .count()
    };
    let sent = status(&h, MessageStatus::Submitted);
    // 5 per calendar minute. Paused time also jumps ahead while the test awaits the store's
    // writer thread (real time), so more than one minute may have passed on the dispatcher's
    // clock by now: only "some sent, the limit held the rest" is certain here; the per-window
    // bound is checked exactly below.
    assert!((5..20).contains(&sent), "{sent} sent");
    assert_eq!(
        status(&h, MessageStatus::Queued),
        20 - sent,
        "the rest wait"
    );

    // Minutes later every message went out, never more than 5 in one calendar minute.
    for id in &limited {
        h.wait_status(ORG, *id, MessageStatus::Submitted).await;
    }
    let times: Vec<Instant> = h.fakes[0]
        .state()
        .sent
        .iter()
        .filter(|(o, _)| o.organization_id == ORG)
        .map(|(_, t)| *t)
        .collect();
    assert_eq!(times.len(), 20);
    for w in times.windows(11) {
        assert!(
            w[10] - w[0] > Duration::from_secs(60),
            "11 sends within {:?}",
            w[10] - w[0]
        );
    }
    let c = h.handle.counters();
    assert_eq!((c.failed, c.retries), (0, 0), "{c:?}");
    h.stop().await;
}

/// The answer to a held send, given by hand.
async fn answer(h: &Harness, fake: usize, token: u64, outcome: SendOutcome) {
    h.tx.send(ProviderEvent::Done {
        provider_id: h.fakes[fake].id,
        token,
        outcome,
    })
    .await
    .expect("dispatcher gone");
}

fn accepted_parts(ids: &[Option<&str>], reference: u16) -> AcceptedParts {
    AcceptedParts {
        ids: ids.iter().map(|id| id.map(str::to_owned)).collect(),
        reference: Some(reference),
    }
}

/// Regression: a 3-part message whose first part was accepted and whose others were throttled
/// went back whole, so the handset got part 1 twice (under a new reference it could not join)
/// and part 1's receipt found no message. Now only parts 2 and 3 go again, with the first
/// attempt's reference, and every receipt counts towards DELIVERED.
#[tokio::test]
async fn a_throttled_partly_accepted_message_resends_only_its_missing_parts() {
    let mut h = Harness::start(vec![spec(ORG, 1)], DispatcherConfig::default(), false).await;
    h.fakes[0].script([
        Answer::Partial(vec![Some("a1"), None, None], CommandStatus::ESME_RTHROTTLED),
        Answer::Hold,
    ]);
    h.fakes[0].grant(1).await;
    let id = h.send(ORG, TO, Priority::TRANSACTIONAL).await;
    h.wait_sent(0, 2).await;
    let reference = h.fakes[0].state().references[0];
    let sent = h.fakes[0].sent();
    assert_eq!(sent[0].resume, None, "the first attempt sends everything");
    assert_eq!(
        sent[1].resume.as_deref(),
        Some(&Resume {
            reference,
            ids: vec![Some("a1".into()), None, None],
        }),
        "the resend skips part 1 and keeps the reference"
    );
    let m = h.message(ORG, id);
    assert_eq!(m.retry_count, 0, "a throttle is not a retry");
    let partial = m.partial.expect("parts recorded");
    assert_eq!((partial.total, partial.reference), (3, reference));
    let accepted = h.event_detail(ORG, id, "PARTS_ACCEPTED");
    assert!(
        accepted.contains("part 1 of 3 accepted")
            && accepted.contains("parts 2 and 3 throttled (ESME_RTHROTTLED"),
        "{accepted}"
    );
    let throttled = h.event_detail(ORG, id, "THROTTLED");
    assert!(
        throttled.contains("parts 2 and 3 resent alone"),
        "{throttled}"
    );

    // Part 1's receipt while the rest is on its way: the message is found, not held.
    h.receipt(0, "a1", MessageState::Delivered).await;
    h.wait_counters(|c| c.receipts == 1).await;
    assert_eq!(h.handle.counters().receipts_held, 0);
    assert_eq!(h.message(ORG, id).status, MessageStatus::Queued);

    let token = h.fakes[0].sent()[1].token;
    let all = vec!["a1".to_owned(), "a2".into(), "a3".into()];
    let outcome = SendOutcome::Accepted {
        provider_msg_ids: all.clone(),
    };
    answer(&h, 0, token, outcome).await;
    let m = h.wait_status(ORG, id, MessageStatus::Submitted).await;
    assert_eq!(m.provider_msg_ids, all);
    let submitted = h.event_detail(ORG, id, "SUBMITTED");
    assert!(
        submitted.contains(&format!(
            "only parts 2 and 3 of 3 sent, with reference {reference}"
        )),
        "{submitted}"
    );
    h.receipt(0, "a3", MessageState::Delivered).await;
    h.wait_counters(|c| c.receipts == 2).await;
    assert_eq!(h.message(ORG, id).status, MessageStatus::Submitted);
    h.receipt(0, "a2", MessageState::Delivered).await;
    h.wait_status(ORG, id, MessageStatus::Delivered).await;
    assert_eq!(
        h.event_types(ORG, id),
        vec![
            "QUEUED",
            "PARTS_ACCEPTED",
            "THROTTLED",
            "PART_DELIVERED",
            "SUBMITTED",
            "PART_DELIVERED",
            "DELIVERED"
        ]
    );
    let c = h.handle.counters();
    assert_eq!((c.receipts_held, c.receipts_duplicate), (0, 0));
    assert_eq!(h.fakes[0].sent_count(), 2);
    h.assert_no_credit_violation();
    h.stop().await;
}

/// A temporary refusal of parts 2 and 3 fails over as any temporary refusal does, but only to a
/// provider that can send them alone (not the HTTP-like one of higher priority), with the same
/// reference. Part 1's receipt, which came before the refusal was recorded, is applied then.
#[tokio::test]
async fn a_temporary_refusal_of_later_parts_fails_over_with_only_those_parts() {
    let http_like = Spec {
        layout: None,
        ..spec(ORG, 2)
    };
    let mut h = Harness::start(
        vec![spec(ORG, 1), http_like, spec(ORG, 3)],
        DispatcherConfig::default(),
        false,
    )
    .await;
    h.fakes[0].script([Answer::Hold]);
    h.fakes[2].script([Answer::AcceptWith(vec!["b2", "b3"])]);
    for fake in &h.fakes {
        fake.grant(1).await;
    }
    let id = h.send(ORG, TO, Priority::TRANSACTIONAL).await;
    h.wait_sent(0, 1).await;
    h.receipt(0, "a1", MessageState::Delivered).await;
    h.wait_counters(|c| c.receipts_held == 1).await;

    let token = h.fakes[0].sent()[0].token;
    let refused = SendOutcome::Refused {
        status: CommandStatus::ESME_RSYSERR,
        outcome: classify_submit_status(CommandStatus::ESME_RSYSERR),
        error_code: None,
        accepted: accepted_parts(&[Some("a1"), None, None], 77),
    };
    answer(&h, 0, token, refused).await;
    let m = h.wait_status(ORG, id, MessageStatus::Submitted).await;
    assert_eq!(
        h.fakes[1].sent_count(),
        0,
        "the HTTP-like provider is skipped"
    );
    assert_eq!(
        h.fakes[2].sent()[0].resume.as_deref(),
        Some(&Resume {
            reference: 77,
            ids: vec![Some("a1".into()), None, None],
        })
    );
    assert_eq!(m.provider_id, Some(h.fakes[2].id));
    assert_eq!(m.provider_msg_ids, vec!["a1", "b2", "b3"]);
    assert_eq!(m.retry_count, 0, "a failover is not a retry");
    assert_eq!(h.handle.counters().receipts_early_matched, 1);
    let found = h.store.message_by_provider_id(h.fakes[0].id, "a1");
    assert_eq!(found.expect("lookup").map(|m| m.id), Some(id));

    h.receipt(2, "b2", MessageState::Delivered).await;
    h.receipt(2, "b3", MessageState::Delivered).await;
    h.wait_status(ORG, id, MessageStatus::Delivered).await;
    assert_eq!(
        h.event_types(ORG, id),
        vec![
            "QUEUED",
            "PARTS_ACCEPTED",
            "PART_DELIVERED",
            "PROVIDER_ERROR",
            "SUBMITTED",
            "PART_DELIVERED",
            "DELIVERED"
        ]
    );
    let error = h.event_detail(ORG, id, "PROVIDER_ERROR");
    assert!(error.contains("parts 2 and 3 resent alone"), "{error}");
    assert_eq!(h.handle.counters().receipts_dropped, 0);
    h.stop().await;
}

/// In doubt with part 1 known accepted: the provider's policy resubmits the unknown part 2
/// alone (it may duplicate); part 1 is never sent again.
#[tokio::test(start_paused = true)]
async fn an_in_doubt_part_is_resubmitted_alone_and_the_accepted_one_never() {
    let mut h = Harness::start(vec![spec(ORG, 1)], DispatcherConfig::default(), true).await;
    h.fakes[0].script([
        Answer::PartialInDoubt(vec![Some("a1"), None]),
        Answer::AcceptWith(vec!["a2"]),
    ]);
    h.fakes[0].grant(1).await;
    let id = h.send(ORG, TO, Priority::TRANSACTIONAL).await;
    let m = h.wait_status(ORG, id, MessageStatus::Submitted).await;
    assert_eq!(m.retry_count, 1, "through the retry schedule");
    assert_eq!(m.provider_msg_ids, vec!["a1", "a2"]);
    let resent = h.fakes[0].sent()[1].resume.clone().expect("a resume");
    assert_eq!(resent.ids, vec![Some("a1".to_owned()), None]);
    assert_eq!(resent.reference, h.fakes[0].state().references[0]);
    let retry = h.event_detail(ORG, id, "RETRY");
    assert!(retry.contains("part 2 resent alone"), "{retry}");
    h.stop().await;
}

/// With the "fail" in-doubt policy the message fails, but its accepted part stays linked:
/// that part's receipt finds the message (a duplicate of a final status) rather than being
/// held as unknown.
#[tokio::test]
async fn an_in_doubt_partial_message_failed_by_policy_keeps_its_accepted_part_linked() {
    let mut h = Harness::start(vec![spec(ORG, 1)], DispatcherConfig::default(), false).await;
    h.fakes[0].state().fail_in_doubt = true;
    h.fakes[0].script([Answer::PartialInDoubt(vec![Some("a1"), None])]);
    h.fakes[0].grant(1).await;
    let id = h.send(ORG, TO, Priority::TRANSACTIONAL).await;
    h.wait_status(ORG, id, MessageStatus::Failed).await;
    assert_eq!(h.fakes[0].sent_count(), 1);
    h.receipt(0, "a1", MessageState::Delivered).await;
    let c = h.wait_counters(|c| c.receipts_duplicate == 1).await;
    assert_eq!((c.receipts, c.receipts_held), (1, 0));
    h.stop().await;
}

/// The provider that took the first parts is asked first for the rest and waited for; when it
/// has no credit for a whole failover wait, the rest goes to another provider that splits the
/// same way, never to one that can only send the whole text.
#[tokio::test(start_paused = true)]
async fn the_rest_waits_for_its_provider_then_goes_to_one_that_splits_the_same() {
    let first = Spec {
        refill: false,
        ..spec(ORG, 1)
    };
    let http_like = Spec {
        layout: None,
        ..spec(ORG, 2)
    };
    let config = DispatcherConfig::default();
    let wait = config.failover_wait;
    let mut h = Harness::start(vec![first, http_like, spec(ORG, 3)], config, true).await;
    h.fakes[0].script([Answer::Partial(
        vec![Some("a1"), None],
        CommandStatus::ESME_RTHROTTLED,
    )]);
    h.fakes[0].grant(1).await;
    h.fakes[1].grant(5).await;
    let id = h.send(ORG, TO, Priority::TRANSACTIONAL).await;
    h.wait_counters(|c| c.throttled == 1).await;
    let throttled_at = Instant::now();
    h.fakes[2].grant(1).await;
    let m = h.wait_status(ORG, id, MessageStatus::Submitted).await;
    assert!(
        throttled_at.elapsed() >= wait,
        "the first provider was waited for: {:?}",
        throttled_at.elapsed()
    );
    assert_eq!(m.provider_id, Some(h.fakes[2].id));
    assert_eq!(h.fakes[1].sent_count(), 0, "never the whole text again");
    assert_eq!(h.fakes[0].sent_count(), 1);
    let resume = h.fakes[2].sent()[0].resume.clone().expect("a resume");
    assert_eq!(resume.reference, h.fakes[0].state().references[0]);
    assert_eq!(m.provider_msg_ids.first().map(String::as_str), Some("a1"));
    let submitted = h.event_detail(ORG, id, "SUBMITTED");
    assert!(
        submitted.contains("had no credit for the rest"),
        "{submitted}"
    );
    h.assert_no_credit_violation();
    h.stop().await;
}
