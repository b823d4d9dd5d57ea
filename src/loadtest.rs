//! `sairex loadtest http|smpp|smpp-server|store`: load tests of a running gateway's REST API
//! (`http`, the generator of `sairex-loadtest`), of the engine and SMSC simulator in-process
//! (`smpp`), of a running gateway's SMPP server as a customer (`smpp-server`), and of the store
//! alone (`store`). Each prints a report for people, or JSON with `--json`.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use sairex_loadtest::load::LoadError;
use sairex_loadtest::load::http::{self, HttpConfig};
use sairex_loadtest::load::mix::{Mix, Numbers, Segments};
use sairex_loadtest::load::schedule::{Pacing, Stop};
use sairex_store::{StoreOptions, SyncPolicy};
use serde::Serialize;

mod fake;
mod smpp;
mod smpp_server;
mod soak;
mod store;

/// Exit code for a bad setting (BSD `EX_USAGE`), as `main` uses.
const EXIT_USAGE: u8 = 64;

/// `sairex loadtest`.
#[derive(Debug, Args)]
pub struct LoadtestArgs {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// POST messages to a running gateway's REST API (open or closed loop) and report
    /// throughput, errors by status, and accept (and with --e2e, accept → DELIVERED) latency
    /// percentiles.
    Http(HttpArgs),
    /// Engine + SMSC simulator in this process over loopback, without HTTP: queued → DELIVERED
    /// throughput and latency.
    Smpp(smpp::SmppArgs),
    /// A customer's load on a running gateway's SMPP server: N binds with a window of
    /// outstanding submit_sm; accepted submits per second and submit → resp latency, and with
    /// --receipts the end-to-end rate (submit → SMSC → receipt back).
    SmppServer(smpp_server::SmppServerArgs),
    /// The store alone: enqueue, lease, ack and finalize N messages with C callers; ops/s and
    /// latency per phase.
    Store(store::StoreArgs),
    /// A fake Twilio, Vonage or Veevo Tech API for a gateway to send to: signed receipts,
    /// injected latency and errors; prints its counters as JSON on Ctrl-C or SIGTERM.
    FakeProvider(fake::FakeArgs),
    /// Engine + two SMSC simulators in-process, fed at a fixed rate for --duration while
    /// faults come and go (simulator restarts, throttling, slow receipts, a failing and a
    /// missing primary); then checks that nothing was lost or sent twice without cause and
    /// that memory stayed flat. Exits 1 when a check fails.
    Soak(soak::SoakArgs),
}

/// Options of `sairex loadtest http`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("pace").required(true).args(["rate", "max"])))]
#[command(group(ArgGroup::new("stop").required(true).args(["duration", "count"])))]
pub struct HttpArgs {
    /// The gateway's base URL, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    target: String,

    /// An API key with the sms:send scope (and sms:read for --e2e). Better passed in the
    /// environment than on the command line, where other users can see it.
    #[arg(long, env = "SAIREX_API_KEY", hide_env_values = true)]
    key: String,

    /// Open loop: this many requests per second, whatever the answers take; latency counts
    /// from each request's intended start (no coordinated omission).
    #[arg(long)]
    rate: Option<f64>,

    /// Closed loop: each connection sends its next request as soon as it has an answer.
    #[arg(long)]
    max: bool,

    /// Send for this long (e.g. 30s, 2m).
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,

    /// Send this many requests.
    #[arg(long)]
    count: Option<u64>,

    /// Connections (keep-alive), one request in flight on each.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,

    /// Priorities by weight: otp, transactional, bulk (e.g. otp:10,transactional:30,bulk:60).
    #[arg(long, default_value = "transactional")]
    mix: Mix,

    /// Body lengths in GSM-7 segments, 1 to 10, optionally weighted (1,2,3 or 1:80,2:20):
    /// 160 characters for 1, 153 per segment above.
    #[arg(long, default_value = "1")]
    segments: Segments,

    /// Destination numbers start with this; the request's index fills --to-digits digits.
    #[arg(long, default_value = "+92300")]
    to_prefix: String,

    /// Digits after --to-prefix (numbers repeat after 10^digits requests).
    #[arg(long, default_value_t = 7)]
    to_digits: u32,

    /// Use POST /api/sms/send-bulk with this many recipients per request (--rate and --count
    /// then count requests; the report also gives messages).
    #[arg(long)]
    bulk_size: Option<usize>,

    /// Also measure accept → DELIVERED from the event stream (GET /api/sms/events).
    #[arg(long)]
    e2e: bool,

    /// With --e2e: how long to wait for the last final statuses after the last request.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    drain_timeout: Duration,

    /// A request without an answer after this long counts as a timeout.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    timeout: Duration,

    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

impl HttpArgs {
    fn config(self) -> Result<HttpConfig, LoadError> {
        let pacing = match self.rate {
            Some(rate) => Pacing::open(rate)?,
            None => Pacing::Closed,
        };
        let stop = match (self.count, self.duration) {
            (Some(n), _) => Stop::Count(n),
            (None, Some(d)) => Stop::After(d),
            // clap requires one of them.
            (None, None) => return Err(LoadError::invalid("--count", "or --duration is needed")),
        };
        Ok(HttpConfig {
            target: self.target,
            key: self.key,
            pacing,
            stop,
            concurrency: self.concurrency,
            mix: self.mix,
            segments: self.segments,
            numbers: Numbers::new(&self.to_prefix, self.to_digits)?,
            bulk_size: self.bulk_size,
            e2e: self.e2e,
            drain_timeout: self.drain_timeout,
            request_timeout: self.timeout,
            progress: std::io::stderr().is_terminal(),
        })
    }
}

/// The store's durability, as `[store] sync` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Sync {
    /// Group commit: each write waits for a shared flush (the default policy).
    Batch,
    /// No flush wait (a crash loses the last half second): for diagnosis only.
    None,
}

/// Store options shared by the `smpp` and `store` modes.
#[derive(Debug, Args)]
struct StoreFlags {
    /// Durability of writes.
    #[arg(long, value_enum, default_value = "batch")]
    sync: Sync,

    /// Store directory (must not hold a store already); a temporary directory, removed at
    /// the end, when not given.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

/// An open store and the temporary directory it lives in, if any (removed on drop).
struct OpenStore {
    store: sairex_store::Store,
    _dir: Option<tempfile::TempDir>,
}

impl StoreFlags {
    fn open(&self) -> anyhow::Result<OpenStore> {
        let (path, dir) = match &self.data_dir {
            Some(path) => {
                let used = std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_some());
                if used {
                    anyhow::bail!(
                        "--data-dir {}: not empty; a load test needs a fresh store",
                        path.display()
                    );
                }
                (path.clone(), None)
            }
            None => {
                let dir = tempfile::Builder::new()
                    .prefix("sairex-loadtest-")
                    .tempdir()
                    .context("a temporary directory for the store")?;
                (dir.path().to_path_buf(), Some(dir))
            }
        };
        let mut options = StoreOptions::new(&path);
        if self.sync == Sync::None {
            options.sync = SyncPolicy::None;
        }
        let store = sairex_store::Store::open(options)
            .with_context(|| format!("opening the store in {}", path.display()))?;
        Ok(OpenStore { store, _dir: dir })
    }

    fn name(&self) -> &'static str {
        match self.sync {
            Sync::Batch => "batch",
            Sync::None => "none",
        }
    }
}

/// Prints `report` as JSON or as text.
fn print_report<R: Serialize>(report: &R, json: bool, human: impl FnOnce(&R) -> String) {
    if json {
        match serde_json::to_string_pretty(report) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("error: the report: {e}"),
        }
    } else {
        print!("{}", human(report));
    }
}

/// Runs `sairex loadtest`: 0 when the run completed (whatever it measured), 64 for a bad
/// setting, 1 when it could not run.
pub async fn run(args: LoadtestArgs) -> ExitCode {
    let result = match args.mode {
        Mode::Http(args) => run_http(args).await,
        Mode::Smpp(args) => smpp::run(args).await,
        Mode::SmppServer(args) => smpp_server::run(args).await,
        Mode::Store(args) => store::run(args).await,
        Mode::FakeProvider(args) => fake::run(args).await,
        Mode::Soak(args) => soak::run(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            let bad_setting = error.chain().any(|e| {
                matches!(
                    e.downcast_ref::<LoadError>(),
                    Some(LoadError::Invalid { .. })
                )
            });
            if bad_setting {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

async fn run_http(args: HttpArgs) -> anyhow::Result<()> {
    let json = args.json;
    let report = http::run(args.config()?).await?;
    print_report(&report, json, |r| r.human());
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        mode: Mode,
    }

    fn parse(args: &[&str]) -> Result<Mode, clap::Error> {
        Cli::try_parse_from(std::iter::once("loadtest").chain(args.iter().copied())).map(|c| c.mode)
    }

    #[test]
    fn http_flags_become_a_config() {
        let mode = parse(&[
            "http",
            "--target",
            "http://127.0.0.1:1",
            "--key",
            "k",
            "--rate",
            "500",
            "--duration",
            "2s",
            "--mix",
            "otp:1,bulk:3",
            "--segments",
            "1,2,3",
            "--bulk-size",
            "100",
            "--e2e",
        ])
        .unwrap();
        let Mode::Http(args) = mode else {
            panic!("not http: {mode:?}")
        };
        let config = args.config().unwrap();
        assert_eq!(config.pacing, Pacing::Open { rate: 500.0 });
        assert_eq!(config.stop, Stop::After(Duration::from_secs(2)));
        assert_eq!(config.mix.to_string(), "otp:1,bulk:3");
        assert_eq!(config.segments.to_string(), "1:1,2:1,3:1");
        assert_eq!(config.bulk_size, Some(100));
        assert!(config.e2e);
        assert_eq!(config.concurrency, 64);
    }

    #[test]
    fn http_needs_a_pace_and_a_stop_and_checks_values() {
        let base = ["http", "--target", "http://127.0.0.1:1", "--key", "k"];
        let with = |extra: &[&str]| {
            let mut args = base.to_vec();
            args.extend_from_slice(extra);
            parse(&args)
        };
        assert!(with(&["--count", "1"]).is_err(), "no --rate or --max");
        assert!(with(&["--max"]).is_err(), "no --count or --duration");
        assert!(with(&["--max", "--rate", "1", "--count", "1"]).is_err());
        let e = with(&["--max", "--count", "1", "--mix", "sms:1"]).unwrap_err();
        assert!(e.to_string().contains("unknown priority"), "{e}");
        let e = with(&["--max", "--count", "1", "--segments", "12"]).unwrap_err();
        assert!(e.to_string().contains("1 to 10"), "{e}");
        let Ok(Mode::Http(args)) = with(&["--rate", "0", "--count", "1"]) else {
            panic!("--rate 0 parses; the config refuses it")
        };
        assert!(matches!(
            args.config(),
            Err(LoadError::Invalid { flag: "--rate", .. })
        ));
    }
}
