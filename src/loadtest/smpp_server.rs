//! `sairex loadtest smpp-server`: a customer's load on a running gateway's SMPP server. N binds
//! each keep up to `window` submit_sm outstanding (closed loop) until `count` are answered;
//! reports accepted submits per second and the submit_sm → submit_sm_resp latency, and with
//! `--receipts` (transceiver binds, registered_delivery 1) the end-to-end rate: customer's
//! submit → engine → downstream SMSC → receipt back to the customer.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use futures::{SinkExt, StreamExt};
use sairex_pdu::{Bind, Command, DeliverSmResp, Pdu, ShortMessage, SmppCodec, SubmitSm};
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::codec::Framed;

/// Options of `sairex loadtest smpp-server`.
#[derive(Debug, Args)]
pub struct SmppServerArgs {
    /// The SMPP server, e.g. 127.0.0.1:2775.
    #[arg(long)]
    target: SocketAddr,
    /// The account's system_id.
    #[arg(long)]
    system_id: String,
    /// The account's password (better in the environment).
    #[arg(long, env = "SAIREX_SMPP_PASSWORD", hide_env_values = true)]
    password: String,
    /// Binds in parallel.
    #[arg(long, default_value_t = 4)]
    binds: u32,
    /// Submits outstanding per bind.
    #[arg(long, default_value_t = 64)]
    window: u32,
    /// Submits in all.
    #[arg(long, default_value_t = 100_000)]
    count: u64,
    /// Ask for receipts and wait for them (end to end).
    #[arg(long)]
    receipts: bool,
    /// How long to wait for receipts after the last answer.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    receipt_wait: Duration,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Default, Serialize)]
struct BindResult {
    accepted: u64,
    refused: BTreeMap<String, u64>,
    /// Microseconds, one per answer.
    #[serde(skip)]
    latencies: Vec<u32>,
    receipts: u64,
    first_sent: Option<f64>,
    last_answer: Option<f64>,
    last_receipt: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Report {
    binds: u32,
    window: u32,
    submitted: u64,
    accepted: u64,
    refused: BTreeMap<String, u64>,
    accepted_per_sec: f64,
    latency_ms: Percentiles,
    receipts: u64,
    end_to_end_per_sec: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Percentiles {
    p50: f64,
    p90: f64,
    p99: f64,
    p999: f64,
    max: f64,
}

fn percentiles(mut micros: Vec<u32>) -> Percentiles {
    micros.sort_unstable();
    let at = |q: f64| {
        if micros.is_empty() {
            return 0.0;
        }
        let i = ((micros.len() as f64 - 1.0) * q).round() as usize;
        f64::from(micros[i.min(micros.len() - 1)]) / 1000.0
    };
    Percentiles {
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
        p999: at(0.999),
        max: at(1.0),
    }
}

async fn one_bind(
    args: &SmppServerArgs,
    index: u32,
    quota: u64,
    epoch: Instant,
) -> anyhow::Result<BindResult> {
    let stream = TcpStream::connect(args.target)
        .await
        .with_context(|| format!("connecting to {}", args.target))?;
    stream.set_nodelay(true)?;
    let mut framed = Framed::new(stream, SmppCodec::new());
    let body = Bind {
        system_id: args.system_id.as_str().try_into().context("system_id")?,
        password: args.password.as_str().try_into().context("password")?,
        interface_version: 0x34,
        ..Bind::default()
    };
    let pdu = if args.receipts {
        Pdu::BindTransceiver(body)
    } else {
        Pdu::BindTransmitter(body)
    };
    framed.send(Command::new(1, pdu)).await?;
    let resp = framed
        .next()
        .await
        .context("closed before bind_resp")??
        .map_err(|e| anyhow::anyhow!("bad bind_resp: {e}"))?;
    if !resp.command_status.is_ok() {
        bail!("bind refused: {}", resp.command_status);
    }
    let mut result = BindResult {
        latencies: Vec::with_capacity(usize::try_from(quota).unwrap_or(0)),
        ..BindResult::default()
    };
    let mut started: HashMap<u32, Instant> = HashMap::new();
    let (mut seq, mut sent, mut answered) = (1u32, 0u64, 0u64);
    let mut receipt_deadline = None;
    loop {
        while sent < quota && started.len() < args.window as usize {
            seq = seq.wrapping_add(1).max(2);
            let n = u64::from(index) * 10_000_000 + sent;
            let submit = SubmitSm {
                source_addr: "LOAD".try_into()?,
                dest_addr_ton: 1,
                dest_addr_npi: 1,
                destination_addr: format!("92300{:07}", n % 10_000_000).as_str().try_into()?,
                registered_delivery: u8::from(args.receipts),
                short_message: ShortMessage::new(format!("load {n}").into_bytes())?,
                ..SubmitSm::default()
            };
            framed.feed(Command::new(seq, submit)).await?;
            let now = Instant::now();
            result
                .first_sent
                .get_or_insert(now.duration_since(epoch).as_secs_f64());
            started.insert(seq, now);
            sent += 1;
        }
        framed.flush().await?;
        let done_answers = answered == quota;
        if done_answers && (!args.receipts || result.receipts >= result.accepted) {
            break;
        }
        if done_answers && receipt_deadline.is_none() {
            receipt_deadline = Some(Instant::now() + args.receipt_wait);
        }
        let next = match receipt_deadline {
            Some(deadline) => match tokio::time::timeout_at(deadline, framed.next()).await {
                Ok(n) => n,
                Err(_) => break,
            },
            None => framed.next().await,
        };
        let command = match next {
            Some(Ok(Ok(c))) => c,
            Some(Ok(Err(invalid))) => bail!("bad PDU from the server: {invalid}"),
            Some(Err(e)) => bail!("connection: {e}"),
            None => bail!("the server closed the connection"),
        };
        let now = Instant::now();
        match command.pdu {
            Pdu::SubmitSmResp(_) => {
                if let Some(at) = started.remove(&command.sequence_number) {
                    answered += 1;
                    let micros = now.duration_since(at).as_micros();
                    result
                        .latencies
                        .push(u32::try_from(micros).unwrap_or(u32::MAX));
                    result.last_answer = Some(now.duration_since(epoch).as_secs_f64());
                    if command.command_status.is_ok() {
                        result.accepted += 1;
                    } else {
                        *result
                            .refused
                            .entry(command.command_status.to_string())
                            .or_default() += 1;
                    }
                }
            }
            Pdu::DeliverSm(_) => {
                result.receipts += 1;
                result.last_receipt = Some(now.duration_since(epoch).as_secs_f64());
                framed
                    .feed(Command::new(
                        command.sequence_number,
                        Pdu::DeliverSmResp(DeliverSmResp::default()),
                    ))
                    .await?;
            }
            Pdu::EnquireLink => {
                framed
                    .feed(Command::new(command.sequence_number, Pdu::EnquireLinkResp))
                    .await?;
            }
            _ => {}
        }
    }
    let _ = framed
        .send(Command::new(seq.wrapping_add(1), Pdu::Unbind))
        .await;
    Ok(result)
}

/// Runs the load and prints the report.
///
/// # Errors
/// A bind refused, a connection lost.
pub async fn run(args: SmppServerArgs) -> anyhow::Result<()> {
    if args.binds == 0 || args.window == 0 || args.count == 0 {
        bail!("--binds, --window and --count must be at least 1");
    }
    let args = std::sync::Arc::new(args);
    let epoch = Instant::now();
    let per_bind = args.count / u64::from(args.binds);
    let mut tasks = Vec::new();
    for i in 0..args.binds {
        let quota = if i == 0 {
            per_bind + args.count % u64::from(args.binds)
        } else {
            per_bind
        };
        let args = std::sync::Arc::clone(&args);
        tasks.push(tokio::spawn(async move {
            one_bind(&args, i, quota, epoch).await
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.context("bind task")??);
    }
    let first = results
        .iter()
        .filter_map(|r| r.first_sent)
        .fold(f64::MAX, f64::min);
    let last_answer = results
        .iter()
        .filter_map(|r| r.last_answer)
        .fold(0.0, f64::max);
    let last_receipt = results
        .iter()
        .filter_map(|r| r.last_receipt)
        .fold(0.0, f64::max);
    let accepted: u64 = results.iter().map(|r| r.accepted).sum();
    let receipts: u64 = results.iter().map(|r| r.receipts).sum();
    let mut refused = BTreeMap::new();
    for r in &results {
        for (k, v) in &r.refused {
            *refused.entry(k.clone()).or_default() += v;
        }
    }
    let latencies: Vec<u32> = results.into_iter().flat_map(|r| r.latencies).collect();
    let report = Report {
        binds: args.binds,
        window: args.window,
        submitted: args.count,
        accepted,
        refused,
        accepted_per_sec: accepted as f64 / (last_answer - first).max(1e-9),
        latency_ms: percentiles(latencies),
        receipts,
        end_to_end_per_sec: args
            .receipts
            .then(|| receipts as f64 / (last_receipt - first).max(1e-9)),
    };
    super::print_report(&report, args.json, |r| {
        let mut text = format!(
            "SMPP server: {} binds, window {}: {} of {} accepted, {:.0} submit_sm/s\n  submit_sm → resp ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}\n",
            r.binds,
            r.window,
            r.accepted,
            r.submitted,
            r.accepted_per_sec,
            r.latency_ms.p50,
            r.latency_ms.p90,
            r.latency_ms.p99,
            r.latency_ms.p999,
            r.latency_ms.max
        );
        if !r.refused.is_empty() {
            text.push_str(&format!("  refused: {:?}\n", r.refused));
        }
        if let Some(e2e) = r.end_to_end_per_sec {
            text.push_str(&format!(
                "  receipts back: {} ({e2e:.0} msg/s end to end)\n",
                r.receipts
            ));
        }
        text
    });
    Ok(())
}
