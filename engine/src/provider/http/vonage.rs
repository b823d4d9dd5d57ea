//! The Vonage SMS API.
//!
//! - Send: `POST {base}/sms/json`, form-encoded `api_key` and `api_secret` (or, with only a
//!   signature secret, `timestamp` and `sig`: [`super::signature::vonage_signature`]),
//!   `from`, `to` (digits, no `+`), `text`, `type=unicode` when the text is not GSM-7,
//!   `status-report-req=1` and `callback` when a receipt is wanted, `client-ref` (the message
//!   id). The answer is `{"message-count", "messages": [{"status", "message-id", "error-text",
//!   "message-price", "remaining-balance", …}]}`, one entry per part: each part has its own id,
//!   and its own receipt.
//! - Status codes ([`STATUS_TABLE`]): 0 accepted; 1 throttled; the message's own problems
//!   (missing or invalid parameters, invalid message, barred number, too long, invalid sender,
//!   non-whitelisted destination, deactivated number) rejected; the account's (credentials,
//!   barred account, no balance, signature, callback URL) and Vonage's internal errors
//!   temporary, so another provider may send it. Unknown codes are temporary.
//! - Health: `GET {base}/account/get-balance` (`value`).

use serde::Deserialize;

use super::signature::{VonageSignatureMethod, vonage_signature};
use super::{Answer, Secret, classify_http_status, form, refused};
use crate::classify::SubmitOutcome;
use crate::provider::{AcceptedParts, Outbound, SendOutcome};

/// Vonage's public API.
pub const DEFAULT_BASE_URL: &str = "https://rest.nexmo.com";

/// Vonage SMS API status codes and their treatment.
pub const STATUS_TABLE: &[(u32, &str, SubmitOutcome)] = {
    use SubmitOutcome::{Accepted, Rejected, Temporary, Throttled};
    &[
        (0, "Success", Accepted),
        (1, "Throttled", Throttled),
        (2, "Missing Parameters", Rejected),
        (3, "Invalid Parameters", Rejected),
        (4, "Invalid Credentials", Temporary),
        (5, "Internal Error", Temporary),
        (6, "Invalid Message", Rejected),
        (7, "Number Barred", Rejected),
        (8, "Partner Account Barred", Temporary),
        (9, "Partner Quota Violation", Temporary),
        (10, "Too Many Existing Binds", Throttled),
        (11, "Account Not Enabled For HTTP", Temporary),
        (12, "Message Too Long", Rejected),
        (14, "Invalid Signature", Temporary),
        (15, "Invalid Sender Address", Rejected),
        (22, "Invalid Network Code", Rejected),
        (23, "Invalid Callback URL", Temporary),
        (29, "Non-Whitelisted Destination", Rejected),
        (32, "Signature And API Secret Disallowed", Temporary),
        (33, "Number De-activated", Rejected),
    ]
};

/// The treatment of a Vonage status code (unknown codes are temporary).
pub fn classify_status(code: u32) -> SubmitOutcome {
    STATUS_TABLE
        .iter()
        .find(|(c, _, _)| *c == code)
        .map_or(SubmitOutcome::Temporary, |(_, _, o)| *o)
}

/// A Vonage account.
#[derive(Debug, Clone)]
pub struct VonageApi {
    /// `api_key`.
    pub api_key: String,
    /// `api_secret` (may be empty when requests are signed).
    pub api_secret: Secret,
    /// The signature secret: signs requests when there is no `api_secret`, and checks the
    /// signatures of callbacks.
    pub signature_secret: Secret,
    /// The account's signature method.
    pub signature_method: VonageSignatureMethod,
    /// Sender when the message has none.
    pub from: Option<String>,
}

impl VonageApi {
    /// Authentication parameters: the secret, or a timestamp and a signature over `params`.
    fn authenticate(&self, params: &mut Vec<(String, String)>) {
        params.push(("api_key".into(), self.api_key.clone()));
        if self.api_secret.is_empty() && !self.signature_secret.is_empty() {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            params.push(("timestamp".into(), now.to_string()));
            let sig = vonage_signature(
                self.signature_method,
                self.signature_secret.expose(),
                params,
            );
            params.push(("sig".into(), sig));
        } else {
            params.push(("api_secret".into(), self.api_secret.expose().to_owned()));
        }
    }

    /// The send request for one message.
    pub fn send_request(
        &self,
        client: &reqwest::Client,
        base: &str,
        m: &Outbound,
        callback: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let from = Some(m.from.as_str())
            .filter(|f| !f.is_empty())
            .or(self.from.as_deref())
            .unwrap_or_default();
        let mut params: Vec<(String, String)> = vec![
            ("from".into(), from.trim_start_matches('+').to_owned()),
            ("to".into(), m.to.trim_start_matches('+').to_owned()),
            ("text".into(), m.body.clone()),
            ("client-ref".into(), m.message_id.to_string()),
        ];
        if !sairex_pdu::text::gsm7::can_encode(&m.body) {
            params.push(("type".into(), "unicode".into()));
        }
        if m.receipt {
            params.push(("status-report-req".into(), "1".into()));
            if let Some(callback) = callback {
                params.push(("callback".into(), callback.to_owned()));
            }
        }
        self.authenticate(&mut params);
        let pairs: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        client
            .post(format!("{base}/sms/json"))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .body(form(&pairs))
    }

    /// The balance request (health check).
    pub fn balance_request(&self, client: &reqwest::Client, base: &str) -> reqwest::RequestBuilder {
        let mut params = Vec::new();
        self.authenticate(&mut params);
        let pairs: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        client
            .get(format!("{base}/account/get-balance?{}", form(&pairs)))
            .header(reqwest::header::ACCEPT, "application/json")
    }
}

#[derive(Debug, Deserialize)]
struct SendResponse {
    #[serde(default)]
    messages: Vec<Part>,
}

#[derive(Debug, Deserialize)]
struct Part {
    status: Option<serde_json::Value>,
    #[serde(rename = "message-id")]
    message_id: Option<String>,
    #[serde(rename = "error-text")]
    error_text: Option<String>,
    #[serde(rename = "message-price")]
    message_price: Option<serde_json::Value>,
    #[serde(rename = "remaining-balance")]
    remaining_balance: Option<serde_json::Value>,
}

/// What Vonage's answer to a send means.
pub fn outcome(status: u16, body: &[u8]) -> Answer {
    if !(200..300).contains(&status) {
        return Answer::of(refused(
            classify_http_status(status),
            format!("HTTP_{status}"),
        ));
    }
    let Ok(response) = serde_json::from_slice::<SendResponse>(body) else {
        // A 2xx we cannot read: Vonage may have taken it.
        return Answer::of(SendOutcome::InDoubt {
            accepted: AcceptedParts::none(),
        });
    };
    if response.messages.is_empty() {
        return Answer::of(SendOutcome::InDoubt {
            accepted: AcceptedParts::none(),
        });
    }
    // By position: Vonage answers one entry per part it split the text into.
    let mut accepted = Vec::with_capacity(response.messages.len());
    let mut refusal = None;
    for part in response.messages {
        let code = part
            .status
            .as_ref()
            .and_then(super::text)
            .and_then(|s| s.trim().parse::<u32>().ok());
        let id = match code {
            Some(0) => {
                tracing::debug!(id = ?part.message_id, price = ?part.message_price, balance = ?part.remaining_balance, "Vonage accepted a part");
                part.message_id
            }
            Some(code) => {
                if refusal.is_none() {
                    tracing::info!(code, error = ?part.error_text, "Vonage refused a message");
                    refusal = Some(code);
                }
                None
            }
            None => {
                refusal.get_or_insert(u32::MAX);
                None
            }
        };
        accepted.push(id);
    }
    match refusal {
        None => Answer::of(SendOutcome::Accepted {
            provider_msg_ids: accepted.into_iter().flatten().collect(),
        }),
        Some(code) => {
            let outcome = if code == u32::MAX {
                SubmitOutcome::Temporary
            } else {
                classify_status(code)
            };
            let mut answer = refused(outcome, code.to_string());
            if let SendOutcome::Refused { accepted: a, .. } = &mut answer {
                // No reference: Vonage splits on its side, so the rest cannot go alone.
                *a = AcceptedParts {
                    ids: accepted,
                    reference: None,
                };
            }
            Answer {
                pause: (outcome == SubmitOutcome::Throttled).then_some(super::THROTTLE_PAUSE),
                outcome: answer,
            }
        }
    }
}

/// The balance of a get-balance answer.
pub fn parse_balance(body: &[u8]) -> Option<f64> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    super::number(value.get("value")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_and_statuses() {
        let two = br#"{"message-count":"2","messages":[
            {"to":"923001234567","message-id":"0A01","status":"0","remaining-balance":"3.1","message-price":"0.03","network":"41001"},
            {"to":"923001234567","message-id":"0A02","status":"0","remaining-balance":"3.0","message-price":"0.03","network":"41001"}]}"#;
        assert_eq!(
            outcome(200, two).outcome,
            SendOutcome::Accepted {
                provider_msg_ids: vec!["0A01".into(), "0A02".into()]
            }
        );
        for (code, expected) in [
            ("1", SubmitOutcome::Throttled),
            ("2", SubmitOutcome::Rejected),
            ("4", SubmitOutcome::Temporary),
            ("5", SubmitOutcome::Temporary),
            ("9", SubmitOutcome::Temporary),
            ("15", SubmitOutcome::Rejected),
            ("99", SubmitOutcome::Temporary),
        ] {
            let body = format!(
                r#"{{"message-count":"1","messages":[{{"status":"{code}","error-text":"x"}}]}}"#
            );
            let answer = outcome(200, body.as_bytes());
            match answer.outcome {
                SendOutcome::Refused {
                    outcome,
                    error_code,
                    ..
                } => {
                    assert_eq!(outcome, expected, "{code}");
                    assert_eq!(error_code.as_deref(), Some(code));
                }
                other => panic!("{code}: {other:?}"),
            }
            assert_eq!(answer.pause.is_some(), expected == SubmitOutcome::Throttled);
        }
        let partial = br#"{"message-count":"2","messages":[{"message-id":"0A01","status":"0"},{"status":"1","error-text":"Throughput Rate Exceeded"}]}"#;
        match outcome(200, partial).outcome {
            SendOutcome::Refused { accepted, .. } => assert_eq!(
                accepted,
                AcceptedParts {
                    ids: vec![Some("0A01".to_owned()), None],
                    reference: None
                }
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse_balance(br#"{"value":10.28,"autoReload":false}"#),
            Some(10.28)
        );
    }
}
