//! Veevo Tech (VT CPaaS, Pakistan).
//!
//! What their integration guide and the integrations seen in the wild agree on: `POST
//! {base}/v3/sendsms` with the account's API hash (`hash`; newer accounts call it `apikey`),
//! `receivernum` (the recipient, international), `sendernum` (the sender ID, `Default` for the
//! account's default) and `textmessage`, as JSON or form fields; the answer is JSON
//! `{"STATUS": "SUCCESSFUL" | "ERROR", "MESSAGE_ID", "ERROR_FILTER", "ERROR_CODE",
//! "ERROR_DESCRIPTION", "CHARGED_BALANCE", …}`.
//!
//! Their public guide does not fix every detail (the key's parameter name changed between
//! versions, the encoding, whether `+` is kept, a balance endpoint), so the path, the encoding
//! and every parameter name are settings ([`VeevoApi`], `docs/providers.md`); the defaults are
//! the values above. A health check runs only when a balance path is configured.
//!
//! Errors are read from `ERROR_FILTER`: problems of the message (invalid or missing number,
//! unsupported country, text missing or too long, sender ID not approved or not routable,
//! traffic type not allowed) are rejections; the account's (authentication, disabled account,
//! balance, IP allow-list) and `TECHNICAL_ISSUE` temporary; rate limits throttled. Unknown
//! filters are temporary.

use serde::Deserialize;

use super::{Answer, Secret, classify_http_status, form, refused};
use crate::classify::SubmitOutcome;
use crate::provider::{AcceptedParts, Outbound, SendOutcome};

/// Veevo Tech's API.
pub const DEFAULT_BASE_URL: &str = "https://api.veevotech.com";

/// `ERROR_FILTER` values and their treatment.
pub const ERROR_TABLE: &[(&str, SubmitOutcome)] = {
    use SubmitOutcome::{Rejected, Temporary, Throttled};
    &[
        ("INVALID_NUMBER", Rejected),
        ("RECEIVER_NUMBER_MISSING", Rejected),
        ("UNSUPPORTED_COUNTRY", Rejected),
        ("CONTENT_TOO_LONG", Rejected),
        ("SMS_TEXT_MISSING", Rejected),
        ("SENDER_ID_MISSING", Rejected),
        ("SENDER_ID_NOT FOUND", Rejected),
        ("SENDER_ID_NOT_FOUND", Rejected),
        ("SENDER_ID_DISABLED", Rejected),
        ("SENDERID_ROUTING_FAILED", Rejected),
        ("CARRIER_ROUTING", Rejected),
        ("TRAFFIC_NOT_ALLOWED", Rejected),
        ("AUTHENTICATION_FAILED", Temporary),
        ("AUTH_FAILED", Temporary),
        ("INVALID_API_KEY", Temporary),
        ("ACCOUNT_DISABLED", Temporary),
        ("ACCOUNT_BLOCKED", Temporary),
        ("ACCOUNT_UNVERIFIED", Temporary),
        ("INSUFFICIENT_BALANCE", Temporary),
        ("LOW_BALANCE", Temporary),
        ("IP_NOT_ALLOWED", Temporary),
        ("TECHNICAL_ISSUE", Temporary),
        ("RATE_LIMIT_EXCEEDED", Throttled),
    ]
};

/// How the send request carries its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VeevoFormat {
    /// A JSON object body.
    #[default]
    Json,
    /// A form-encoded body.
    Form,
    /// Query parameters of a GET (the oldest integrations).
    Query,
}

/// A Veevo Tech account and the shape of its API.
#[derive(Debug, Clone)]
pub struct VeevoApi {
    /// The API hash (key).
    pub hash: Secret,
    /// Sender ID when the message has none (`Default`: the account's).
    pub from: String,
    /// Path of the send endpoint.
    pub send_path: String,
    /// Encoding of the send request.
    pub format: VeevoFormat,
    /// Name of the key parameter.
    pub key_param: String,
    /// Name of the recipient parameter.
    pub to_param: String,
    /// Name of the sender parameter.
    pub from_param: String,
    /// Name of the text parameter.
    pub text_param: String,
    /// Whether the recipient keeps its `+`.
    pub to_plus: bool,
    /// Path of a balance endpoint (GET, key as a query parameter), if the account has one.
    pub balance_path: Option<String>,
    /// The balance's field in that endpoint's JSON answer.
    pub balance_field: String,
}

impl VeevoApi {
    /// The documented defaults with `hash`.
    pub fn new(hash: Secret) -> Self {
        Self {
            hash,
            from: "Default".into(),
            send_path: "/v3/sendsms".into(),
            format: VeevoFormat::Json,
            key_param: "hash".into(),
            to_param: "receivernum".into(),
            from_param: "sendernum".into(),
            text_param: "textmessage".into(),
            to_plus: true,
            balance_path: None,
            balance_field: "BALANCE".into(),
        }
    }

    /// The send request for one message.
    pub fn send_request(
        &self,
        client: &reqwest::Client,
        base: &str,
        m: &Outbound,
    ) -> reqwest::RequestBuilder {
        let from = if m.from.is_empty() {
            self.from.as_str()
        } else {
            m.from.as_str()
        };
        let to = if self.to_plus {
            m.to.clone()
        } else {
            m.to.trim_start_matches('+').to_owned()
        };
        let pairs: [(&str, &str); 4] = [
            (&self.key_param, self.hash.expose()),
            (&self.to_param, &to),
            (&self.from_param, from),
            (&self.text_param, &m.body),
        ];
        let url = format!("{base}{}", self.send_path);
        let builder = match self.format {
            VeevoFormat::Json => {
                let object: serde_json::Map<String, serde_json::Value> = pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
                    .collect();
                client
                    .post(url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(serde_json::Value::Object(object).to_string())
            }
            VeevoFormat::Form => client
                .post(url)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(form(&pairs)),
            VeevoFormat::Query => client.get(format!("{url}?{}", form(&pairs))),
        };
        builder.header(reqwest::header::ACCEPT, "application/json")
    }

    /// The balance request, when a balance path is configured.
    pub fn balance_request(
        &self,
        client: &reqwest::Client,
        base: &str,
    ) -> Option<reqwest::RequestBuilder> {
        let path = self.balance_path.as_ref()?;
        Some(
            client
                .get(format!(
                    "{base}{path}?{}",
                    form(&[(&self.key_param, self.hash.expose())])
                ))
                .header(reqwest::header::ACCEPT, "application/json"),
        )
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
struct SendResponse {
    status: Option<String>,
    message_id: Option<serde_json::Value>,
    error_filter: Option<String>,
    error_code: Option<serde_json::Value>,
    error_description: Option<String>,
}

/// The treatment of an `ERROR_FILTER` (unknown ones are temporary).
pub fn classify_error(filter: &str) -> SubmitOutcome {
    ERROR_TABLE
        .iter()
        .find(|(f, _)| f.eq_ignore_ascii_case(filter.trim()))
        .map_or(SubmitOutcome::Temporary, |(_, o)| *o)
}

/// What Veevo's answer to a send means.
pub fn outcome(status: u16, body: &[u8]) -> Answer {
    let parsed = serde_json::from_slice::<SendResponse>(body).ok();
    let successful = parsed
        .as_ref()
        .and_then(|r| r.status.as_deref())
        .is_some_and(|s| s.eq_ignore_ascii_case("SUCCESSFUL"));
    if (200..300).contains(&status) && successful {
        let id = parsed
            .as_ref()
            .and_then(|r| r.message_id.as_ref())
            .and_then(super::text);
        return Answer::of(SendOutcome::Accepted {
            provider_msg_ids: id.into_iter().collect(),
        });
    }
    let filter = parsed.as_ref().and_then(|r| r.error_filter.clone());
    if let Some(r) = &parsed {
        tracing::info!(status, filter = ?r.error_filter, code = ?r.error_code, description = ?r.error_description, "Veevo Tech refused a message");
    }
    match (filter, (200..300).contains(&status)) {
        (Some(filter), _) => {
            let outcome = classify_error(&filter);
            Answer {
                pause: (outcome == SubmitOutcome::Throttled).then_some(super::THROTTLE_PAUSE),
                outcome: refused(outcome, filter),
            }
        }
        // 2xx that is neither a success nor an error we can read: it may have been sent.
        (None, true) => Answer::of(SendOutcome::InDoubt {
            accepted: AcceptedParts::none(),
        }),
        (None, false) => Answer::of(refused(
            classify_http_status(status),
            format!("HTTP_{status}"),
        )),
    }
}

/// The balance in a balance answer: the field `field`, in any case.
pub fn parse_balance(body: &[u8], field: &str) -> Option<f64> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let object = value.as_object()?;
    object
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(field))
        .and_then(|(_, v)| super::number(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_map_to_outcomes() {
        let ok = br#"{"STATUS":"SUCCESSFUL","MESSAGE_ID":"1234567","COUNTRY_ISO":"PK","NETWORK_NAME":"JAZZ","CHARGED_BALANCE":"1"}"#;
        assert_eq!(
            outcome(200, ok).outcome,
            SendOutcome::Accepted {
                provider_msg_ids: vec!["1234567".into()]
            }
        );
        for (filter, expected) in [
            ("INVALID_NUMBER", SubmitOutcome::Rejected),
            ("INSUFFICIENT_BALANCE", SubmitOutcome::Temporary),
            ("RATE_LIMIT_EXCEEDED", SubmitOutcome::Throttled),
            ("SOMETHING_NEW", SubmitOutcome::Temporary),
        ] {
            let body = format!(
                r#"{{"STATUS":"ERROR","ERROR_FILTER":"{filter}","ERROR_CODE":"E1","ERROR_DESCRIPTION":"x"}}"#
            );
            match outcome(200, body.as_bytes()).outcome {
                SendOutcome::Refused {
                    outcome,
                    error_code,
                    ..
                } => {
                    assert_eq!(outcome, expected, "{filter}");
                    assert_eq!(error_code.as_deref(), Some(filter));
                }
                other => panic!("{filter}: {other:?}"),
            }
        }
        match outcome(502, b"bad gateway").outcome {
            SendOutcome::Refused { outcome, .. } => assert_eq!(outcome, SubmitOutcome::Temporary),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse_balance(br#"{"BALANCE":"250.5"}"#, "balance"),
            Some(250.5)
        );
    }
}
