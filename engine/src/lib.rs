//! The Sairex SMS engine: the ractor supervision tree that moves messages from the store to
//! carriers over SMPP and HTTP, and brings receipts and inbound messages back
//! (see `docs/architecture.md`).
//!
//! The actor tree itself is being built (issue 4). What is here: the SMPP client session actor,
//! the SMPP provider actor over it, and the pure building blocks, each tested on its own with
//! time passed in.
//!
//! # Layout
//! - [`session`]: [`session::SessionActor`], one SMPP bind (connect, bind, window, keepalive,
//!   reconnect, drain), with its config and I/O tasks.
//! - [`session::keepalive`]: when to send enquire_link, when its absence is fatal.
//! - [`session::sequence`]: sequence numbers with the spec's wrap.
//! - [`session::window`]: outstanding requests per bind, matched by sequence, with deadlines.
//! - [`dispatch`]: [`dispatch::Dispatcher`], which leases messages by credit, fairly across
//!   organizations, routes and fails them over, retries, applies receipts and stores inbound
//!   messages; its module docs state the at-least-once contract on shutdown.
//! - [`http_client`]: the TLS set-up (rustls, ring, Mozilla roots) of outbound HTTP clients.
//! - [`gateway`]: [`gateway::Engine`], providers and dispatcher started and stopped together.
//! - [`provider`]: the credit-based interface between the dispatcher and providers.
//! - [`provider::smpp`]: [`provider::smpp::SmppProvider`], one SMPP account: N sessions, a TPS
//!   bucket with throttle back-off, splitting, per-message aggregation, supervision, drain.
//! - [`provider::http`]: the HTTP providers (Twilio, Vonage, Veevo Tech), their settings and
//!   callback signatures.
//! - [`dispatch::callbacks`]: where the API hands HTTP providers' receipts and inbound messages.
//! - [`provider::token_bucket`]: TPS limits.
//! - [`backoff`]: jittered exponential reconnect back-off.
//! - [`retry`]: the blueprint's retry schedule.
//! - [`classify`]: what a submit status or a receipt state means for the message.
//! - [`metrics`]: metric names and recording functions (no exporter here).
//! - [`campaigns`]: [`campaigns::CampaignRunner`], campaigns expanded into messages in chunks
//!   from a stored cursor, pause/resume/restart-safe, quiet hours, DLT re-checked per chunk,
//!   A/B variants, exact stats.
//! - [`compliance`]: rules the API and the runner share (DLT).
//! - [`webhooks`]: [`webhooks::WebhookDispatcher`], signed outbound webhooks and `callbackUrl`
//!   deliveries with retries, a delivery log, auto-disable and SSRF checks.
#![warn(missing_docs)]

pub mod backoff;
pub mod campaigns;
pub mod classify;
pub mod compliance;
pub mod dispatch;
pub mod gateway;
pub mod http_client;
pub mod metrics;
pub mod retry;
pub mod webhooks;

pub mod session;

pub mod provider;
