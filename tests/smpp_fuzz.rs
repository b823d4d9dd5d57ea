//! A malicious SMSC against the engine's SMPP sessions: the other binds must keep delivering.
//!
//! The gateway is the ESME, so the fuzzing peer is a fake SMSC: a TCP server in this test that
//! answers the bind, then answers submits with nonsense and sends random and malformed frames
//! (garbage bytes, impossible lengths, unknown commands, truncated bodies, bad receipts,
//! responses to sequence numbers never used, unbinds), closing the connection now and then so
//! the session reconnects. It is the only provider of organization "victim". Organization
//! "bystander" has the SMSC simulator, on the same engine. While the fake SMSC does its worst,
//! every bystander message must reach DELIVERED, nothing may panic, and the victim's messages
//! must stay in the store (final or still queued).
//!
//! The peer's dice are seeded: a seed that once broke something goes into [`SEEDS`], so it is
//! replayed on every run as a regression test.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sairex_engine::backoff::ExponentialBackoff;
use sairex_engine::dispatch::DispatcherConfig;
use sairex_engine::gateway::{Engine, EngineConfig};
use sairex_engine::provider::smpp::SmppProviderConfig;
use sairex_engine::session::SessionConfig;
use sairex_loadtest::sim::{SimConfig, SimServer};
use sairex_store::model::{Id, Message, MessageStatus, Organization, ProviderConfig};
use sairex_store::{Store, StoreOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Seeds of the malicious peer, one per connection in turn (then random ones). Add a seed here
/// when a run finds a problem, with a note on what it broke.
const SEEDS: &[u64] = &[1, 2, 3, 0xdead_beef];
/// How long the fake SMSC misbehaves.
const FUZZ_FOR: Duration = Duration::from_secs(6);
/// Bystander messages sent during that time.
const BYSTANDER_MESSAGES: u64 = 200;

static PANICS: AtomicUsize = AtomicUsize::new(0);

/// A 16-octet header and a body.
fn frame(length: u32, command_id: u32, status: u32, seq: u32, body: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(16 + body.len());
    f.extend_from_slice(&length.to_be_bytes());
    f.extend_from_slice(&command_id.to_be_bytes());
    f.extend_from_slice(&status.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(body);
    f
}

fn pdu(command_id: u32, status: u32, seq: u32, body: &[u8]) -> Vec<u8> {
    let len = u32::try_from(16 + body.len()).unwrap_or(u32::MAX);
    frame(len, command_id, status, seq, body)
}

/// A deliver_sm receipt with `text` as its short message (often malformed on purpose).
fn receipt(seq: u32, text: &[u8], esm_class: u8) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(b"\0"); // service_type
    body.extend_from_slice(&[1, 1]);
    body.extend_from_slice(b"923001234567\0");
    body.extend_from_slice(&[5, 0]);
    body.extend_from_slice(b"Sairex\0");
    body.extend_from_slice(&[esm_class, 0, 0]);
    body.extend_from_slice(b"\0\0"); // schedule, validity
    body.extend_from_slice(&[0, 0, 0, 0]);
    body.push(u8::try_from(text.len().min(255)).unwrap_or(255));
    body.extend_from_slice(&text[..text.len().min(255)]);
    pdu(0x0000_0005, 0, seq, &body)
}

/// One malicious frame (or a few bytes of one), given the sequence numbers the ESME used.
fn evil(rng: &mut StdRng, their_seqs: &[u32]) -> Vec<u8> {
    let seq = if their_seqs.is_empty() || rng.random_bool(0.3) {
        rng.random()
    } else {
        their_seqs[rng.random_range(0..their_seqs.len())]
    };
    match rng.random_range(0..14) {
        // Pure noise.
        0 => (0..rng.random_range(1..64)).map(|_| rng.random()).collect(),
        // Impossible command_length: below the header, or huge.
        1 => frame(rng.random_range(0..16), 0x8000_0004, 0, seq, &[]),
        2 => frame(rng.random_range(1 << 20..u32::MAX), 0x8000_0004, 0, seq, &[0; 8]),
        // An unknown command id with a random body.
        3 => {
            let body: Vec<u8> = (0..rng.random_range(0..40)).map(|_| rng.random()).collect();
            pdu(rng.random(), rng.random(), seq, &body)
        }
        // submit_sm_resp: no NUL, a huge id, an error status with a body, an empty id.
        4 => pdu(0x8000_0004, 0, seq, b"no-terminator"),
        5 => pdu(0x8000_0004, 0, seq, &[b'9'; 200]),
        6 => pdu(0x8000_0004, rng.random(), seq, b"x\0"),
        7 => pdu(0x8000_0004, 0, seq, b"\0"),
        // Receipts: random text, an Appendix B text with nonsense values, no text at all.
        8 => {
            let text: Vec<u8> = (0..rng.random_range(0..200)).map(|_| rng.random()).collect();
            receipt(rng.random(), &text, 0x04)
        }
        9 => receipt(
            rng.random(),
            b"id:\xff\xfe sub:abc dlvrd:-1 submit date:99999999999 done date:x stat:WHATEVER err:\0",
            0x04,
        ),
        10 => {
            // A truncated deliver_sm: the length says more than the body has.
            let mut r = receipt(rng.random(), b"id:1 stat:DELIVRD", 0x04);
            let cut = rng.random_range(17..r.len());
            r.truncate(cut);
            r[..4].copy_from_slice(&u32::try_from(cut).unwrap_or(0).to_be_bytes());
            r
        }
        // Responses nobody asked for, generic_nack, enquire_link, an unbind.
        11 => pdu(0x8000_0015, 0, rng.random(), &[]),
        12 => pdu(0x8000_0000, rng.random(), seq, &[]),
        _ => {
            if rng.random_bool(0.5) {
                pdu(0x0000_0015, 0, rng.random(), &[])
            } else {
                pdu(0x0000_0006, 0, rng.random(), &[])
            }
        }
    }
}

/// Reads the ESME's frames, reporting the sequence numbers of its requests; answers
/// enquire_link sometimes (or not).
async fn read_esme(mut read: tokio::net::tcp::OwnedReadHalf, seqs: mpsc::UnboundedSender<u32>) {
    let mut header = [0u8; 16];
    loop {
        if read.read_exact(&mut header).await.is_err() {
            return;
        }
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let seq = u32::from_be_bytes([header[12], header[13], header[14], header[15]]);
        let mut body = vec![0u8; len.saturating_sub(16).min(1 << 16)];
        if read.read_exact(&mut body).await.is_err() {
            return;
        }
        if seqs.send(seq).is_err() {
            return;
        }
    }
}

/// One connection of the fake SMSC.
async fn evil_connection(mut tcp: TcpStream, seed: u64, frames: Arc<AtomicU64>) {
    let mut rng = StdRng::seed_from_u64(seed);
    // The bind: answered properly, so the session goes on to the bound state.
    let mut header = [0u8; 16];
    if tcp.read_exact(&mut header).await.is_err() {
        return;
    }
    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let command_id = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    let seq = u32::from_be_bytes([header[12], header[13], header[14], header[15]]);
    let mut body = vec![0u8; len.saturating_sub(16).min(1024)];
    if tcp.read_exact(&mut body).await.is_err() {
        return;
    }
    if tcp
        .write_all(&pdu(command_id | 0x8000_0000, 0, seq, b"evil\0"))
        .await
        .is_err()
    {
        return;
    }
    let (read, mut write) = tcp.into_split();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let reader = tokio::spawn(read_esme(read, tx));
    let mut their = Vec::new();
    let lifetime = rng.random_range(20..400);
    for _ in 0..lifetime {
        while let Ok(s) = rx.try_recv() {
            their.push(s);
        }
        let bytes = evil(&mut rng, &their);
        // Split writes: the reader must cope with frames arriving in pieces.
        let cut = rng.random_range(0..=bytes.len());
        if write.write_all(&bytes[..cut]).await.is_err() {
            break;
        }
        if rng.random_bool(0.2) {
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..20))).await;
        }
        if write.write_all(&bytes[cut..]).await.is_err() {
            break;
        }
        frames.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..5))).await;
    }
    reader.abort();
}

/// The fake SMSC: each connection gets the next seed.
async fn evil_smsc(
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    connections: Arc<AtomicU64>,
    frames: Arc<AtomicU64>,
) {
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let Ok(Ok((tcp, _))) =
            tokio::time::timeout(Duration::from_millis(100), listener.accept()).await
        else {
            continue;
        };
        let seed = SEEDS.get(n).copied().unwrap_or_else(rand::random);
        n += 1;
        connections.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(evil_connection(tcp, seed, Arc::clone(&frames)));
    }
}

fn session(addr: std::net::SocketAddr) -> SessionConfig {
    SessionConfig {
        system_id: "sairex".try_into().unwrap(),
        password: "secret".try_into().unwrap(),
        response_timeout: Duration::from_millis(500),
        reconnect: ExponentialBackoff::try_new(
            Duration::from_millis(20),
            Duration::from_millis(200),
        )
        .unwrap(),
        ..SessionConfig::new(addr.ip().to_string(), addr.port())
    }
}

async fn org_with_provider(store: &Store, name: &str) -> (Id, ProviderConfig) {
    let org = store
        .create_organization(Organization {
            name: name.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    let record = store
        .create_provider(ProviderConfig {
            organization_id: org,
            display_name: format!("{name}-smsc"),
            ..ProviderConfig::default()
        })
        .await
        .unwrap();
    (org, record)
}

async fn send(store: &Store, org: Id, i: u64) -> Id {
    store
        .enqueue(Message {
            organization_id: org,
            from_number: "Sairex".into(),
            to_number: format!("+92300{i:07}"),
            body: format!("fuzz {i}"),
            segments: 1,
            encoding: "GSM-7".into(),
            ..Message::default()
        })
        .await
        .unwrap()
        .message()
        .id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malicious_smsc_does_not_take_down_the_other_binds() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default_hook(info);
    }));

    let sim = SimServer::start(SimConfig {
        receipt_delay: Duration::from_millis(10),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let evil_addr = listener.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let connections = Arc::new(AtomicU64::new(0));
    let frames = Arc::new(AtomicU64::new(0));
    let fake = tokio::spawn(evil_smsc(
        listener,
        Arc::clone(&stop),
        Arc::clone(&connections),
        Arc::clone(&frames),
    ));

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreOptions::new(dir.path())).unwrap();
    let (victim, victim_provider) = org_with_provider(&store, "victim").await;
    let (bystander, bystander_provider) = org_with_provider(&store, "bystander").await;
    let engine = Engine::start(
        store.clone(),
        EngineConfig {
            dispatcher: DispatcherConfig::default(),
            smpp: vec![
                (
                    victim_provider.clone(),
                    SmppProviderConfig {
                        binds: 2,
                        ..SmppProviderConfig::new(victim_provider.id, session(evil_addr))
                    },
                ),
                (
                    bystander_provider.clone(),
                    SmppProviderConfig {
                        binds: 2,
                        ..SmppProviderConfig::new(bystander_provider.id, session(sim.addr()))
                    },
                ),
            ],
            provider_drain: Duration::from_secs(1),
            providers_from_store: false,
        },
    )
    .await
    .unwrap();
    let handle = engine.handle();

    // Both organizations send while the fake SMSC misbehaves.
    let start = Instant::now();
    let mut bystander_ids = Vec::new();
    let mut victim_ids = Vec::new();
    let pause = FUZZ_FOR / u32::try_from(BYSTANDER_MESSAGES).unwrap();
    for i in 0..BYSTANDER_MESSAGES {
        bystander_ids.push(send(&store, bystander, i).await);
        victim_ids.push(send(&store, victim, i).await);
        handle.nudge();
        tokio::time::sleep_until(start + pause * u32::try_from(i + 1).unwrap()).await;
    }

    // Every bystander message is delivered, while the fake SMSC is still at it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pending: Vec<Id> = bystander_ids
            .iter()
            .copied()
            .filter(|&id| store.message(bystander, id).unwrap().status != MessageStatus::Delivered)
            .collect();
        if pending.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} bystander messages not DELIVERED, e.g. {:?}",
            pending.len(),
            &pending[..pending.len().min(5)]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let _ = fake.await;

    // The victim's messages are still there, each final or queued.
    let mut victim_statuses = std::collections::BTreeMap::new();
    for &id in &victim_ids {
        let m = store
            .message(victim, id)
            .expect("a victim message vanished");
        *victim_statuses.entry(m.status.as_str()).or_insert(0u32) += 1;
    }
    let counters = handle.counters();
    eprintln!(
        "smpp fuzz: {} connections, {} malicious frames; victim messages {victim_statuses:?}; \
         engine: submitted {}, in doubt {}, receipts unreadable {}",
        connections.load(Ordering::Relaxed),
        frames.load(Ordering::Relaxed),
        counters.submitted,
        counters.in_doubt,
        counters.receipts_unreadable,
    );
    assert!(
        connections.load(Ordering::Relaxed) >= 2,
        "the fake SMSC should have seen reconnects"
    );
    assert!(frames.load(Ordering::Relaxed) > 100);
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "something panicked");
    assert_eq!(
        sim.stats().binds.bound,
        2,
        "the bystander's binds stayed up"
    );
    let _ = engine.shutdown().await;
    sim.shutdown().await;
}
