//! The dispatcher's metrics, over the [`metrics`] facade (no-ops without a recorder).
//!
//! | name | type | labels | what |
//! |---|---|---|---|
//! | [`DELIVERIES`] | counter | `result` = `success`, `failure`, `refused` | each attempt (`refused`: the SSRF rules stopped it) |
//! | [`DURATION`] | histogram | | each attempt's round trip, seconds |
//! | [`DISABLED`] | counter | | webhooks deactivated after failing in a row |
//! | [`PENDING_RETRIES`] | gauge | | events pending (retrying, or behind a retry of their message) |

use metrics::{counter, gauge, histogram};
use tokio::time::Duration;

/// Delivery attempts by result (counter).
pub const DELIVERIES: &str = "sms_webhook_deliveries_total";
/// Attempt round trip, seconds (histogram).
pub const DURATION: &str = "sms_webhook_delivery_duration_seconds";
/// Webhooks auto-disabled (counter).
pub const DISABLED: &str = "sms_webhook_disabled_total";
/// Retries waiting (gauge).
pub const PENDING_RETRIES: &str = "sms_webhook_retries_pending";

pub(crate) fn attempt(result: &'static str, latency: Duration) {
    counter!(DELIVERIES, "result" => result).increment(1);
    histogram!(DURATION).record(latency.as_secs_f64());
}

pub(crate) fn disabled() {
    counter!(DISABLED).increment(1);
}

pub(crate) fn pending(n: usize) {
    gauge!(PENDING_RETRIES).set(n as f64);
}
