//! The HTTP side of `serve`: the API router over the running engine, the metrics route, the
//! graceful server, and the demo organization.

use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use futures::FutureExt;
use futures::future::BoxFuture;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;

use sairex_config::Config;
use sairex_engine::dispatch::{DispatcherHandle, EngineEvent};
use sairex_engine::gateway::EngineControl;
use sairex_engine::webhooks::WebhookHandle;
use sairex_http_api::{ApiSettings, EngineLink, WebhookTestResult};
use sairex_store::Store;
use sairex_store::model::{ApiKey, Id, Organization};

/// The API's view of the engine.
struct EngineAdapter {
    control: EngineControl,
    dispatcher: DispatcherHandle,
    webhooks: WebhookHandle,
    reload: Arc<Notify>,
    /// The engine's metrics, for the providers' sent counts.
    metrics: PrometheusHandle,
}

impl EngineAdapter {
    fn new(control: EngineControl, webhooks: WebhookHandle, metrics: PrometheusHandle) -> Self {
        let reload = Arc::new(Notify::new());
        // Reloads run one at a time in the background; a burst of provider changes while one
        // runs coalesces into one more.
        tokio::spawn({
            let control = control.clone();
            let reload = Arc::clone(&reload);
            async move {
                loop {
                    reload.notified().await;
                    if !control.is_running() {
                        return;
                    }
                    match control.reload_providers().await {
                        Ok(report) => tracing::info!(?report, "providers reloaded"),
                        Err(e) => tracing::error!(error = %e, "provider reload failed"),
                    }
                }
            }
        });
        Self {
            dispatcher: control.dispatcher(),
            control,
            webhooks,
            reload,
            metrics,
        }
    }
}

/// Messages each provider accepted, from the engine's `sms_messages_total` counter (the
/// series with `status="SENT"` and `direction="outbound"`), read from the Prometheus text the
/// exporter renders: the engine publishes nothing else per provider that counts sends.
fn sent_totals(rendered: &str) -> std::collections::HashMap<Id, u64> {
    let mut totals = std::collections::HashMap::new();
    for line in rendered.lines() {
        let Some(rest) = line.strip_prefix("sms_messages_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once('}') else {
            continue;
        };
        let label = |name: &str| {
            labels.split(',').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                (k.trim() == name).then(|| v.trim().trim_matches('"'))
            })
        };
        if label("status") != Some("SENT") || label("direction") != Some("outbound") {
            continue;
        }
        let (Some(provider), Ok(count)) = (
            label("provider").and_then(|p| p.parse::<Id>().ok()),
            value.trim().parse::<f64>(),
        ) else {
            continue;
        };
        // Counters render as whole numbers; the cast only drops a fraction never present.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let count = count.max(0.0) as u64;
        *totals.entry(provider).or_insert(0) += count;
    }
    totals
}

impl EngineLink for EngineAdapter {
    fn nudge(&self) {
        self.dispatcher.nudge();
    }

    fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.dispatcher.subscribe()
    }

    fn providers_changed(&self) {
        self.reload.notify_one();
    }

    fn is_running(&self) -> bool {
        self.control.is_running()
    }

    fn send_test_webhook(
        &self,
        org: Id,
        webhook_id: Id,
    ) -> BoxFuture<'static, Result<WebhookTestResult, String>> {
        let webhooks = self.webhooks.clone();
        async move {
            webhooks.invalidate(org);
            let outcome = webhooks
                .send_test(org, webhook_id)
                .await
                .map_err(|e| e.to_string())?;
            Ok(WebhookTestResult {
                success: outcome.success,
                http_status: outcome.http_status,
                latency_ms: u32::try_from(outcome.latency.as_millis()).ok(),
                error: outcome.error,
            })
        }
        .boxed()
    }

    fn callbacks(&self) -> Option<sairex_engine::dispatch::callbacks::CallbackSink> {
        self.control.is_running().then(|| self.control.callbacks())
    }

    fn runtime(&self) -> BoxFuture<'static, Vec<sairex_http_api::ProviderRuntime>> {
        let control = self.control.clone();
        let metrics = self.metrics.clone();
        async move {
            let sent = sent_totals(&metrics.render());
            let mut out = Vec::new();
            for provider_id in control.running_providers().await {
                let mut runtime = sairex_http_api::ProviderRuntime {
                    provider_id,
                    binds: Vec::new(),
                    sent_total: Some(sent.get(&provider_id).copied().unwrap_or(0)),
                };
                if let Some(actor) = control.provider_actor(provider_id).await {
                    // A provider busy for over a second is reported without its binds.
                    let asked = actor
                        .call(
                            sairex_engine::provider::smpp::SmppProviderMsg::Stats,
                            Some(std::time::Duration::from_secs(1)),
                        )
                        .await;
                    if let Ok(ractor::rpc::CallResult::Success(stats)) = asked {
                        runtime.binds = stats
                            .binds
                            .into_iter()
                            .map(|b| sairex_http_api::BindRuntime {
                                bound: b.bound,
                                connected: b.connected,
                                window_in_use: b.window_in_use,
                                window: b.window,
                                reconnects: b.reconnects,
                                last_error: b.last_error,
                            })
                            .collect();
                    }
                }
                out.push(runtime);
            }
            out
        }
        .boxed()
    }
}

/// The whole API (`/metrics` too when there is no separate metrics listener), and the
/// handle of its state for the SMPP server.
pub fn router(
    store: Store,
    control: EngineControl,
    webhooks: WebhookHandle,
    config: &Config,
    admin_token: String,
    metrics: PrometheusHandle,
) -> (Router, sairex_http_api::ApiHandle) {
    let admin_token = sairex_http_api::Secret::new(admin_token);
    let settings = ApiSettings {
        admin_token: Some(admin_token.clone()),
        body_limit: usize::try_from(config.server.body_limit).unwrap_or(usize::MAX),
        max_queue_depth: config.limits.max_queue_depth,
        allow_private_webhook_targets: config.webhooks.allow_private_targets,
        org_per_minute: config.limits.org_per_minute.map(std::num::NonZeroU32::get),
        org_per_day: config.limits.org_per_day.map(std::num::NonZeroU32::get),
        public_base_url: config.server.public_base_url.clone(),
        ..ApiSettings::default()
    };
    let engine: Arc<dyn EngineLink> =
        Arc::new(EngineAdapter::new(control, webhooks, metrics.clone()));
    let (api, handle) = sairex_http_api::build(store, engine, settings);
    let api = if config.server.metrics_listen.is_none() {
        // On the public port: only for the superadmin.
        api.merge(sairex_http_api::protected_metrics_router(
            metrics,
            Some(admin_token),
        ))
    } else {
        api
    };
    (api, handle)
}

/// `/metrics` alone, for the metrics listener.
pub fn metrics_only(metrics: PrometheusHandle) -> Router {
    sairex_http_api::metrics_router(metrics)
}

/// Serves until `shutdown`, then finishes the requests in flight.
pub async fn serve(listener: TcpListener, router: Router, shutdown: CancellationToken) {
    // With the peer address: provider callbacks may be limited to the provider's addresses.
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let result = axum::serve(listener, service)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "HTTP server failed");
    }
}

/// The name of the demo organization's admin key.
const DEMO_KEY_NAME: &str = "demo admin";

/// The demo organization's admin key.
#[derive(Debug)]
pub enum DemoKey {
    /// Created now: the key itself, to print once.
    New(String),
    /// Created by an earlier run: its prefix.
    Existing(String),
}

/// The organization named `name` (created when missing) and its admin key: the one an
/// earlier run created while it is active, else a new one.
pub async fn demo_organization(store: &Store, name: &str) -> anyhow::Result<(Id, DemoKey)> {
    let existing = store
        .all_organizations()
        .context("listing organizations")?
        .into_iter()
        .find(|o| o.name == name);
    let org = match existing {
        Some(org) => org,
        None => store
            .create_organization(Organization {
                name: name.to_owned(),
                default_country: "PK".into(),
                is_active: true,
                ..Organization::default()
            })
            .await
            .context("creating the organization")?,
    };
    // A restart keeps the key printed the first time (only its hash is stored, so the prefix
    // is what can be shown again).
    let keys = store
        .list_api_keys(
            org.id,
            sairex_store::PageRequest {
                offset: 0,
                limit: 100,
            },
        )
        .context("listing the demo's keys")?;
    if let Some(existing) = keys
        .items
        .iter()
        .find(|k| k.name == DEMO_KEY_NAME && k.is_active)
    {
        return Ok((org.id, DemoKey::Existing(existing.key_prefix.clone())));
    }
    let raw = sairex_http_api::generate_api_key();
    let key = ApiKey {
        organization_id: org.id,
        name: DEMO_KEY_NAME.into(),
        scopes: [
            "sms:send",
            "sms:read",
            "contacts:read",
            "contacts:write",
            "campaigns:write",
            "admin",
        ]
        .map(String::from)
        .to_vec(),
        rate_limit_per_min: 600_000,
        rate_limit_per_day: 100_000_000,
        is_active: true,
        ..ApiKey::default()
    };
    store
        .create_api_key(key, &raw)
        .await
        .context("creating the admin key")?;
    Ok((org.id, DemoKey::New(raw)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sent_totals_sum_each_providers_outbound_sent_series_only() {
        let text = "# TYPE sms_messages_total counter\n\
            sms_messages_total{status=\"SENT\",direction=\"outbound\",provider=\"3\"} 40\n\
            sms_messages_total{direction=\"outbound\",provider=\"3\",status=\"SENT\"} 2\n\
            sms_messages_total{status=\"DELIVERED\",direction=\"outbound\",provider=\"3\"} 39\n\
            sms_messages_total{status=\"SENT\",direction=\"outbound\",provider=\"none\"} 5\n\
            sms_messages_total{status=\"SENT\",direction=\"outbound\",provider=\"7\"} 11\n\
            sms_messages_total_other{status=\"SENT\",direction=\"outbound\",provider=\"7\"} 99\n";
        let totals = sent_totals(text);
        assert_eq!(totals.get(&3), Some(&42));
        assert_eq!(totals.get(&7), Some(&11));
        assert_eq!(totals.len(), 2);
    }
}
