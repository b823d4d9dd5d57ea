//! `sairex loadtest fake-provider`: a fake Twilio, Vonage or Veevo Tech API
//! ([`sairex_loadtest::fakes`]) for a gateway under load to send to. It answers sends, calls
//! back with signed receipts, and can inject latency and errors. Point a provider's `baseUrl` at
//! the printed address. Runs until Ctrl-C or SIGTERM, then prints its counters as JSON.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use sairex_loadtest::fakes::{
    FakeConfig, FakeKind, FakeReceipt, FakeServer, TwilioAccount, VeevoAccount, VonageAccount,
};

/// Which API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// Twilio Programmable Messaging.
    Twilio,
    /// The Vonage SMS API.
    Vonage,
    /// Veevo Tech.
    Veevo,
}

/// What receipts say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Receipts {
    /// Delivered.
    Delivered,
    /// Failed.
    Failed,
    /// None sent.
    None,
}

/// Options of `sairex loadtest fake-provider`.
#[derive(Debug, Args)]
pub struct FakeArgs {
    /// Which provider to play.
    #[arg(long, value_enum)]
    kind: Kind,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Twilio AccountSid, Vonage api_key (unused for Veevo).
    #[arg(long, default_value = "AC00000000000000000000000000000000")]
    account: String,
    /// Twilio auth token, Vonage api_secret, Veevo hash.
    #[arg(long, env = "SAIREX_FAKE_SECRET", default_value = "secret")]
    secret: String,
    /// Vonage signature secret / Veevo callback secret (empty: callbacks unsigned).
    #[arg(long, env = "SAIREX_FAKE_SIGNATURE_SECRET", default_value = "")]
    signature_secret: String,
    /// Vonage signature method.
    #[arg(long, default_value = "md5hash")]
    signature_method: String,
    /// Latency added to every answer.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    latency: Duration,
    /// Fraction (0–1) of sends answered with --error-status.
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// HTTP status of injected errors (429 is the provider's throttling answer).
    #[arg(long, default_value_t = 500)]
    error_status: u16,
    /// From a send's answer to its receipt.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "50ms")]
    receipt_delay: Duration,
    /// What receipts say.
    #[arg(long, value_enum, default_value = "delivered")]
    receipts: Receipts,
    /// Receipt URL for messages that carry none (Veevo's portal setting).
    #[arg(long)]
    callback_url: Option<String>,
}

/// Runs the fake until a signal.
pub async fn run(args: FakeArgs) -> anyhow::Result<()> {
    if !(0.0..=1.0).contains(&args.error_rate) {
        return Err(sairex_loadtest::load::LoadError::invalid(
            "--error-rate",
            "must be between 0 and 1",
        )
        .into());
    }
    let kind = match args.kind {
        Kind::Twilio => FakeKind::Twilio(TwilioAccount {
            account_sid: args.account.clone(),
            auth_token: args.secret.clone(),
        }),
        Kind::Vonage => FakeKind::Vonage(VonageAccount {
            api_key: args.account.clone(),
            api_secret: args.secret.clone(),
            signature_secret: args.signature_secret.clone(),
            signature_method: args.signature_method.clone(),
        }),
        Kind::Veevo => FakeKind::Veevo(VeevoAccount {
            hash: args.secret.clone(),
            callback_secret: args.signature_secret.clone(),
        }),
    };
    let config = FakeConfig {
        latency: args.latency,
        error_rate: args.error_rate,
        error_status: args.error_status,
        receipt_delay: args.receipt_delay,
        receipt: match args.receipts {
            Receipts::Delivered => FakeReceipt::Delivered,
            Receipts::Failed => FakeReceipt::Failed,
            Receipts::None => FakeReceipt::None,
        },
        callback_url: args.callback_url,
        ..FakeConfig::new(kind)
    };
    // Listening for signals before the address is printed: a script may stop it at once.
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("listening for SIGTERM")?;
    let server = FakeServer::start(config, args.listen)
        .await
        .context("starting the fake provider")?;
    eprintln!(
        "fake {:?} provider listening on {} (set the provider's baseUrl to it)",
        args.kind,
        server.base_url()
    );
    #[cfg(unix)]
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    let stats = server.stats();
    server.shutdown().await;
    println!(
        "{}",
        serde_json::json!({
            "accepted": stats.accepted, "refused": stats.refused,
            "callbacksOk": stats.callbacks_ok, "callbacksFailed": stats.callbacks_failed,
        })
    );
    Ok(())
}
