//! `sairex`: the Sairex SMS binary. Subcommands wire the library crates together; this is the
//! only place with `anyhow`, signal handling and tracing initialisation.
//!
//! # Layout
//! - `main.rs`: the command line ([`Cli`], [`Command`]), tracing set-up, exit codes.
//! - `smsc_sim.rs`: `sairex smsc-sim`, the SMSC simulator of `sairex-loadtest`.
//! - `check_config.rs`: `sairex check-config`, the configuration check.
//! - `user.rs`: `sairex user add`, a web console user from the command line.
//! - `serve/`: `sairex serve`, the gateway: store, engine, webhooks, HTTP API, demo mode.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sairex_loadtest::sim::SimError;
use tracing_subscriber::EnvFilter;

mod admin;
mod check_config;
mod loadtest;
mod serve;
mod smsc_sim;
mod user;

// sled allocates per inserted key; glibc malloc was ~15% of the store writer's time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code for a bad setting (BSD `EX_USAGE`), as opposed to a failure while running.
const EXIT_USAGE: u8 = 64;

/// Sairex SMS: a multi-tenant SMS gateway. Logs go to stderr; set RUST_LOG (e.g.
/// `RUST_LOG=debug`, `RUST_LOG=sairex=trace`) to change what is logged (default: info).
#[derive(Debug, Parser)]
#[command(name = "sairex", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
// Parsed once at start: the size of the largest arguments does not matter.
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Run the gateway: the store, the engine (SMPP binds, routing, receipts), webhooks and
    /// the HTTP API. `--demo` runs a self-contained demo with no config: an SMSC simulator in
    /// the process and an organization "demo" whose admin key is printed with a curl line.
    Serve(serve::ServeArgs),
    /// Run an SMSC simulator: an SMPP 3.4 server that acknowledges submits, sends delivery
    /// receipts, and can inject latency, errors and throttling. Prints its address and
    /// credentials on stderr at start, a JSON summary line on stdout every --summary-interval,
    /// and a final JSON summary line on stdout after Ctrl-C / SIGTERM.
    SmscSim(smsc_sim::SmscSimArgs),
    /// Check a configuration file: prints "FILE: OK" and a summary, or every problem (unknown
    /// key, wrong type, bad value, missing secret, ...) as FILE:LINE: KEY: PROBLEM on stderr
    /// and exits with 64. Reads SAIREX_ADMIN_TOKEN and SAIREX_MASTER_KEY like `serve`.
    CheckConfig(check_config::CheckConfigArgs),
    /// Load tests: `http` against a running gateway's REST API, `smpp` (engine + SMSC simulator
    /// in-process), `store` (the store alone). A report on stdout, JSON with --json.
    Loadtest(loadtest::LoadtestArgs),
    /// A running gateway's state: each provider's binds (bound/reconnecting, window in use,
    /// last error, reconnects), ready messages per organization and priority, the store's
    /// size. Exits 0 when all is up, 2 when something is down, 1 when the gateway could not be
    /// asked. `--json` for scripts. Finds the gateway like `admin`.
    Status(admin::StatusArgs),
    /// Manage a running gateway with its superadmin token: organizations, API keys, providers
    /// (with bind state), webhooks. URL from --url, SAIREX_URL or --config (server.listen);
    /// token from --token, SAIREX_ADMIN_TOKEN or --config ([admin] token).
    Admin(admin::AdminArgs),
    /// Web console users: `user add --data-dir DIR --org NAME --email E --role admin` reads
    /// the password from stdin.
    User(user::UserArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::SmscSim(args) => smsc_sim::run(args).await,
        Command::CheckConfig(args) => return check_config::run(&args),
        Command::Loadtest(args) => return loadtest::run(args).await,
        Command::Status(args) => return admin::status(args).await,
        Command::Admin(args) => admin::admin(args).await,
        Command::User(args) => user::run(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            let bad_setting = error.chain().any(|e| {
                matches!(
                    e.downcast_ref::<SimError>(),
                    Some(SimError::InvalidConfig { .. })
                ) || e.downcast_ref::<serve::BadConfig>().is_some()
            });
            if bad_setting {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // No colour codes when stderr is not a terminal (journald, files, pipes).
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}
