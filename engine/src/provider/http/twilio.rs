//! Twilio Programmable Messaging.
//!
//! - Send: `POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json`, HTTP basic auth
//!   (AccountSid, AuthToken), form-encoded `To`, `From` and/or `MessagingServiceSid`, `Body`,
//!   `StatusCallback` (when a receipt is wanted and the gateway has a public URL),
//!   `ValidityPeriod`. The answer (201) is the Message resource: `sid`, `status`,
//!   `num_segments`, `price`, `error_code`, `error_message`. Twilio splits long text itself and
//!   reports one `sid` per message, which its status callbacks carry.
//! - Errors are `{code, message, more_info, status}`: HTTP 429 (and Twilio's queue-full codes)
//!   throttled, 5xx temporary, 401/403/404 FAILED (account problem), other 4xx a rejection;
//!   Twilio's `code` is kept as the message's error code.
//! - Health: `GET {base}/2010-04-01/Accounts/{AccountSid}/Balance.json` (`balance`,
//!   `currency`).

use serde::Deserialize;

use super::{Answer, Secret, classify_http_status, form, refused};
use crate::classify::SubmitOutcome;
use crate::provider::{Outbound, SendOutcome};

/// Twilio's public API.
pub const DEFAULT_BASE_URL: &str = "https://api.twilio.com";

/// Twilio error codes that mean "slow down" whatever the HTTP status.
const THROTTLE_CODES: &[i64] = &[20429, 21611, 30001, 14107];

/// A Twilio account.
#[derive(Debug, Clone)]
pub struct TwilioApi {
    /// `AC…`.
    pub account_sid: String,
    /// The auth token (also the key of its callback signatures).
    pub auth_token: Secret,
    /// A Messaging Service to send through (`MG…`), optional.
    pub messaging_service_sid: Option<String>,
    /// Sender when the message has none.
    pub from: Option<String>,
    /// `ValidityPeriod` in seconds (1..=36000 per Twilio), optional.
    pub validity_period: Option<u32>,
}

impl TwilioApi {
    /// The send request for one message.
    pub fn send_request(
        &self,
        client: &reqwest::Client,
        base: &str,
        m: &Outbound,
        callback: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let url = format!(
            "{base}/2010-04-01/Accounts/{}/Messages.json",
            self.account_sid
        );
        let from = Some(m.from.as_str())
            .filter(|f| !f.is_empty())
            .or(self.from.as_deref());
        let validity = self.validity_period.map(|v| v.to_string());
        let mut pairs: Vec<(&str, &str)> = vec![("To", &m.to)];
        if let Some(from) = from {
            pairs.push(("From", from));
        }
        if let Some(service) = &self.messaging_service_sid {
            pairs.push(("MessagingServiceSid", service));
        }
        pairs.push(("Body", &m.body));
        if m.receipt
            && let Some(callback) = callback
        {
            pairs.push(("StatusCallback", callback));
        }
        if let Some(v) = &validity {
            pairs.push(("ValidityPeriod", v));
        }
        client
            .post(url)
            .basic_auth(&self.account_sid, Some(self.auth_token.expose()))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .body(form(&pairs))
    }

    /// The balance request (health check).
    pub fn balance_request(&self, client: &reqwest::Client, base: &str) -> reqwest::RequestBuilder {
        client
            .get(format!(
                "{base}/2010-04-01/Accounts/{}/Balance.json",
                self.account_sid
            ))
            .basic_auth(&self.account_sid, Some(self.auth_token.expose()))
            .header(reqwest::header::ACCEPT, "application/json")
    }
}

/// The Message resource (the fields used).
#[derive(Debug, Deserialize)]
struct MessageResource {
    sid: Option<String>,
    status: Option<String>,
    num_segments: Option<serde_json::Value>,
    price: Option<serde_json::Value>,
    error_code: Option<serde_json::Value>,
    error_message: Option<String>,
}

/// Twilio's error body.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    code: Option<i64>,
    message: Option<String>,
}

/// What Twilio's answer to a send means.
pub fn outcome(status: u16, body: &[u8]) -> Answer {
    if (200..300).contains(&status) {
        return match serde_json::from_slice::<MessageResource>(body) {
            Ok(m) => {
                tracing::debug!(
                    sid = ?m.sid, status = ?m.status, segments = ?m.num_segments,
                    price = ?m.price, "Twilio accepted a message"
                );
                // A message refused at once comes back 201 with status "failed".
                if m.status.as_deref() == Some("failed") {
                    let code = m
                        .error_code
                        .as_ref()
                        .and_then(super::text)
                        .unwrap_or_else(|| "failed".into());
                    tracing::info!(code = %code, message = ?m.error_message, "Twilio failed a message on send");
                    return Answer::of(refused(SubmitOutcome::Rejected, code));
                }
                Answer::of(SendOutcome::Accepted {
                    provider_msg_ids: m.sid.into_iter().collect(),
                })
            }
            // 2xx without a readable body: it was taken, but we cannot follow it.
            Err(_) => Answer::of(SendOutcome::Accepted {
                provider_msg_ids: Vec::new(),
            }),
        };
    }
    let error = serde_json::from_slice::<ErrorBody>(body).ok();
    let code = error.as_ref().and_then(|e| e.code);
    let mut treatment = classify_http_status(status);
    if code.is_some_and(|c| THROTTLE_CODES.contains(&c)) {
        treatment = SubmitOutcome::Throttled;
    }
    if let Some(message) = error.as_ref().and_then(|e| e.message.as_deref()) {
        tracing::info!(status, code = ?code, message, "Twilio refused a message");
    }
    let code = code.map_or_else(|| format!("HTTP_{status}"), |c| c.to_string());
    Answer::of(refused(treatment, code))
}

/// The balance of a Balance.json answer.
pub fn parse_balance(body: &[u8]) -> Option<f64> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    super::number(value.get("balance")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_map_to_outcomes() {
        let ok = br#"{"sid":"SM123","status":"queued","num_segments":"1","price":null,"error_code":null}"#;
        assert_eq!(
            outcome(201, ok).outcome,
            SendOutcome::Accepted {
                provider_msg_ids: vec!["SM123".into()]
            }
        );
        let bad = br#"{"code":21211,"message":"The 'To' number is not a valid phone number.","more_info":"https://www.twilio.com/docs/errors/21211","status":400}"#;
        match outcome(400, bad).outcome {
            SendOutcome::Refused {
                outcome,
                error_code,
                ..
            } => {
                assert_eq!(outcome, SubmitOutcome::Rejected);
                assert_eq!(error_code.as_deref(), Some("21211"));
            }
            other => panic!("{other:?}"),
        }
        for (status, body, expected) in [
            (
                429,
                &br#"{"code":20429,"message":"Too Many Requests"}"#[..],
                SubmitOutcome::Throttled,
            ),
            (
                500,
                &br#"{"code":20500,"message":"Internal Server Error"}"#[..],
                SubmitOutcome::Temporary,
            ),
            (503, &b"<html>"[..], SubmitOutcome::Temporary),
            (
                401,
                &br#"{"code":20003,"message":"Authenticate"}"#[..],
                SubmitOutcome::Failed,
            ),
        ] {
            match outcome(status, body).outcome {
                SendOutcome::Refused { outcome, .. } => assert_eq!(outcome, expected, "{status}"),
                other => panic!("{status}: {other:?}"),
            }
        }
        assert_eq!(
            parse_balance(br#"{"currency":"USD","balance":"12.50","account_sid":"AC1"}"#),
            Some(12.5)
        );
    }
}
