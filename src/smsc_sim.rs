//! `sairex smsc-sim`: runs the SMSC simulator of `sairex-loadtest` until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use sairex_loadtest::sim::{
    IdFormat, ReceiptMix, ReceiptPolicy, SimConfig, SimServer, SimStats, TlsConfig,
    parse_command_status,
};
use sairex_pdu::CommandStatus;

/// Options of `sairex smsc-sim`. Every default works as-is on a fresh machine.
#[derive(Debug, Args)]
pub struct SmscSimArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:2775")]
    listen: SocketAddr,

    /// system_id ESMEs must bind with (at most 15 characters).
    #[arg(long, default_value = "sairex")]
    system_id: String,

    /// Password ESMEs must bind with (at most 8 characters).
    #[arg(long, default_value = "secret")]
    password: String,

    /// system_id the simulator names itself with in bind responses.
    #[arg(long, default_value = "sairex-sim")]
    smsc_system_id: String,

    /// Status for a bind with an unknown system_id: ESME_RINVSYSID, or ESME_RBINDFAIL to not
    /// reveal which credential was wrong (any status name or number is accepted).
    #[arg(long, default_value = "ESME_RINVSYSID", value_parser = parse_command_status)]
    bad_system_id_status: CommandStatus,

    /// Delay before answering each submit_sm / data_sm / submit_multi (e.g. 20ms, 1s). Requests
    /// are outstanding meanwhile, which is what --window measures.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    latency: Duration,

    /// Share of submits answered with --error-status instead of ESME_ROK: a fraction (0.05) or
    /// a percentage (5%).
    #[arg(long, default_value = "0", value_parser = parse_rate)]
    error_rate: f64,

    /// Status injected by --error-rate: a name (ESME_RSYSERR, RMSGQFUL) or a number (0x14).
    #[arg(long, default_value = "ESME_RSYSERR", value_parser = parse_command_status)]
    error_status: CommandStatus,

    /// Submits per second accepted over all binds (token bucket, one second of burst); submits
    /// over it get ESME_RTHROTTLED. 0 turns throttling off.
    #[arg(long, default_value_t = 0)]
    throttle_tps: u32,

    /// Window each bind should respect: requests received while more than this many of the
    /// bind's requests are unanswered are counted as window violations (and still served).
    /// 0 turns counting off.
    #[arg(long, default_value_t = 0)]
    window: u32,

    /// Which submits get a delivery receipt: `requested` (registered_delivery asks for one),
    /// `always`, or `off`.
    #[arg(long, default_value = "requested")]
    receipts: ReceiptPolicy,

    /// Send no delivery receipts at all (same as --receipts off).
    #[arg(long, conflicts_with = "receipts")]
    no_receipts: bool,

    /// Delay between a submit's response and its delivery receipt (e.g. 500ms, 2s).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    receipt_delay: Duration,

    /// Weights of the receipts' final states, e.g. delivrd=90,undeliv=5,expired=3,rejectd=2
    /// (states left out weigh 0).
    #[arg(long, default_value = "delivrd=1")]
    receipt_mix: ReceiptMix,

    /// How long to wait for the deliver_sm_resp of a receipt or MO before sending it again.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    delivery_resp_timeout: Duration,

    /// Delay before a receipt or MO that was not acknowledged is sent again, or before trying
    /// again when no receiver is bound.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    delivery_retry_interval: Duration,

    /// Sends of one receipt or MO before it is given up (counted as unacked).
    #[arg(long, default_value_t = 3)]
    delivery_attempts: u32,

    /// How long a receipt or MO is kept while no receiver or transceiver is bound.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    delivery_hold: Duration,

    /// Message id format: `hex` (0000002a) or `decimal` (42).
    #[arg(long, default_value = "hex")]
    id_format: IdFormat,

    /// First message id; later ones count up. Start past a previous run's ids to keep ids
    /// unique across restarts.
    #[arg(long, default_value_t = 1)]
    first_message_id: u64,

    /// Serve TLS with this PEM certificate chain (needs --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// Serve TLS with this PEM private key (needs --tls-cert).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// Most connections served at once; further connections are closed on accept.
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,

    /// Largest PDU accepted, in octets; a longer command_length closes the connection.
    #[arg(long, default_value_t = sairex_pdu::DEFAULT_MAX_COMMAND_LENGTH)]
    max_command_length: u32,

    /// Print the JSON summary on stdout this often (e.g. 10s); 0s prints it only at exit.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    summary_interval: Duration,

    /// Seed for the error-rate and receipt-mix dice, for reproducible runs.
    #[arg(long)]
    seed: Option<u64>,
}

impl SmscSimArgs {
    fn into_config(self) -> SimConfig {
        let receipts = if self.no_receipts {
            ReceiptPolicy::Off
        } else {
            self.receipts
        };
        let tls = match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsConfig::PemFiles { cert, key }),
            _ => None,
        };
        SimConfig {
            listen: self.listen,
            system_id: self.system_id,
            password: self.password,
            smsc_system_id: self.smsc_system_id,
            bad_system_id_status: self.bad_system_id_status,
            tls,
            response_latency: self.latency,
            error_rate: self.error_rate,
            error_status: self.error_status,
            throttle_tps: (self.throttle_tps > 0).then_some(self.throttle_tps),
            window: (self.window > 0).then_some(self.window),
            receipts,
            receipt_delay: self.receipt_delay,
            receipt_mix: self.receipt_mix,
            delivery_resp_timeout: self.delivery_resp_timeout,
            delivery_retry_interval: self.delivery_retry_interval,
            delivery_max_attempts: self.delivery_attempts,
            delivery_hold: self.delivery_hold,
            id_format: self.id_format,
            first_message_id: self.first_message_id,
            max_command_length: self.max_command_length,
            max_connections: self.max_connections,
            seed: self.seed,
            ..SimConfig::default()
        }
    }
}

/// `0.05` or `5%`, between 0 and 1.
fn parse_rate(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let rate = match t.strip_suffix('%') {
        Some(pct) => pct.trim().parse::<f64>().map(|p| p / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| format!("`{s}` is not a fraction (0.05) or a percentage (5%)"))?;
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!("`{s}` is not between 0 and 100%"))
    }
}

/// Runs the simulator until Ctrl-C or SIGTERM, then stops gracefully and prints the summary.
pub async fn run(args: SmscSimArgs) -> anyhow::Result<()> {
    let summary_interval = args.summary_interval;
    let config = args.into_config();
    let (system_id, password, tls) = (
        config.system_id.clone(),
        config.password.clone(),
        config.tls.is_some(),
    );
    let sim = SimServer::start(config)
        .await
        .context("starting the SMSC simulator")?;
    eprintln!(
        "SMSC simulator listening on {} ({}); bind with system_id={system_id} password={password}",
        sim.addr(),
        if tls { "TLS" } else { "plain TCP" },
    );

    let mut ticker = (!summary_interval.is_zero()).then(|| {
        tokio::time::interval_at(
            tokio::time::Instant::now() + summary_interval,
            summary_interval,
        )
    });
    let signal = shutdown_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            received = &mut signal => {
                let name = received.context("listening for shutdown signals")?;
                tracing::info!(signal = name, "stopping the SMSC simulator");
                break;
            }
            _ = async { ticker.as_mut()?.tick().await; Some(()) }, if ticker.is_some() => {
                print_summary(&sim.stats())?;
            }
        }
    }
    let stats = sim.shutdown().await;
    print_summary(&stats)
}

fn print_summary(stats: &SimStats) -> anyhow::Result<()> {
    let line = serde_json::to_string(stats).context("serializing the summary")?;
    println!("{line}");
    Ok(())
}

/// Resolves on the first Ctrl-C (SIGINT) or SIGTERM, with the signal's name.
async fn shutdown_signal() -> std::io::Result<&'static str> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.map(|()| "SIGINT"),
            _ = term.recv() => Ok("SIGTERM"),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.map(|()| "Ctrl-C")
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Harness {
        #[command(flatten)]
        args: SmscSimArgs,
    }

    fn parse(args: &[&str]) -> SimConfig {
        let argv = std::iter::once("smsc-sim").chain(args.iter().copied());
        Harness::try_parse_from(argv).unwrap().args.into_config()
    }

    #[test]
    fn defaults_match_the_library_defaults() {
        let cli = parse(&[]);
        let lib = SimConfig::default();
        assert_eq!(cli.listen, "127.0.0.1:2775".parse().unwrap());
        assert_eq!(
            (&cli.system_id, &cli.password, &cli.smsc_system_id),
            (&lib.system_id, &lib.password, &lib.smsc_system_id)
        );
        assert_eq!(cli.bad_system_id_status, lib.bad_system_id_status);
        assert_eq!(cli.response_latency, lib.response_latency);
        assert!(cli.error_rate == lib.error_rate);
        assert_eq!(cli.error_status, lib.error_status);
        assert_eq!(
            (cli.throttle_tps, cli.window),
            (lib.throttle_tps, lib.window)
        );
        assert_eq!(cli.receipts, lib.receipts);
        assert_eq!(cli.receipt_delay, lib.receipt_delay);
        assert_eq!(cli.receipt_mix, lib.receipt_mix);
        assert_eq!(cli.delivery_resp_timeout, lib.delivery_resp_timeout);
        assert_eq!(cli.delivery_retry_interval, lib.delivery_retry_interval);
        assert_eq!(cli.delivery_max_attempts, lib.delivery_max_attempts);
        assert_eq!(cli.delivery_hold, lib.delivery_hold);
        assert_eq!(cli.id_format, lib.id_format);
        assert_eq!(cli.first_message_id, lib.first_message_id);
        assert_eq!(cli.max_command_length, lib.max_command_length);
        assert_eq!(cli.max_connections, lib.max_connections);
        assert!(cli.tls.is_none() && cli.seed.is_none());
        assert!(cli.validate().is_ok());
    }

    #[test]
    fn options_reach_the_config() {
        let cfg = parse(&[
            "--latency",
            "250ms",
            "--error-rate",
            "5%",
            "--error-status",
            "RMSGQFUL",
            "--throttle-tps",
            "100",
            "--window",
            "10",
            "--no-receipts",
            "--receipt-mix",
            "delivrd=9,undeliv=1",
            "--id-format",
            "decimal",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
        ]);
        assert_eq!(cfg.response_latency, Duration::from_millis(250));
        assert!((cfg.error_rate - 0.05).abs() < 1e-9);
        assert_eq!(cfg.error_status, CommandStatus::ESME_RMSGQFUL);
        assert_eq!((cfg.throttle_tps, cfg.window), (Some(100), Some(10)));
        assert_eq!(cfg.receipts, ReceiptPolicy::Off);
        assert_eq!(cfg.receipt_mix.undeliverable, 1);
        assert_eq!(cfg.id_format, IdFormat::Decimal);
        assert!(matches!(cfg.tls, Some(TlsConfig::PemFiles { .. })));
    }

    #[test]
    fn bad_values_are_refused_by_the_parser() {
        let argv = |extra: &[&'static str]| {
            let mut v = vec!["smsc-sim"];
            v.extend_from_slice(extra);
            v
        };
        assert!(Harness::try_parse_from(argv(&["--error-rate", "150%"])).is_err());
        assert!(Harness::try_parse_from(argv(&["--receipts", "sometimes"])).is_err());
        assert!(Harness::try_parse_from(argv(&["--tls-cert", "c.pem"])).is_err());
        assert!(Harness::try_parse_from(argv(&["--no-receipts", "--receipts", "always"])).is_err());
    }
}
