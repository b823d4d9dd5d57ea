//! Event names and the JSON each delivery carries.
//!
//! ```json
//! {"id": "evt_…", "event": "message.delivered", "createdAt": "2026-02-15T10:30:05.120Z",
//!  "data": {"messageId": 98765, "status": "DELIVERED", "direction": "OUTBOUND",
//!           "to": "+923001234567", "from": "SAIREX", "segments": 1, "encoding": "GSM-7",
//!           "providerId": 3, "providerMsgId": "5f2a…", "errorCode": null, …,
//!           "metadata": {"studentId": 42}}}
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sairex_store::model::{Direction, Id, Message, MessageStatus, Micros, Millis};
use serde_json::{Value, json};

/// A message was accepted (QUEUED).
pub const MESSAGE_QUEUED: &str = "message.queued";
/// A provider accepted it or confirmed it left for the network (SUBMITTED, SENT).
pub const MESSAGE_SENT: &str = "message.sent";
/// The handset received it (DELIVERED).
pub const MESSAGE_DELIVERED: &str = "message.delivered";
/// It will not be delivered (FAILED, REJECTED, EXPIRED).
pub const MESSAGE_FAILED: &str = "message.failed";
/// An inbound message was stored.
pub const MESSAGE_INBOUND: &str = "message.inbound";
/// A test delivery (`POST /api/sms/webhooks/:id/test`); sent whatever the webhook subscribes to.
pub const WEBHOOK_TEST: &str = "webhook.test";
/// In a webhook's `events`, subscribes to every event.
pub const ALL_EVENTS: &str = "*";

/// The events a webhook can subscribe to.
pub const EVENTS: [&str; 5] = [
    MESSAGE_QUEUED,
    MESSAGE_SENT,
    MESSAGE_DELIVERED,
    MESSAGE_FAILED,
    MESSAGE_INBOUND,
];

/// The event a status change is announced as; `None` for RECEIVED (inbound messages are
/// announced by their own engine event, as [`MESSAGE_INBOUND`]).
pub const fn event_name(status: MessageStatus) -> Option<&'static str> {
    match status {
        MessageStatus::Queued => Some(MESSAGE_QUEUED),
        MessageStatus::Submitted | MessageStatus::Sent => Some(MESSAGE_SENT),
        MessageStatus::Delivered => Some(MESSAGE_DELIVERED),
        MessageStatus::Failed | MessageStatus::Rejected | MessageStatus::Expired => {
            Some(MESSAGE_FAILED)
        }
        MessageStatus::Received => None,
    }
}

/// Whether a webhook with these `events` receives `event`.
pub fn subscribes(events: &[String], event: &str) -> bool {
    events
        .iter()
        .any(|e| e.trim() == event || e.trim() == ALL_EVENTS)
}

/// A fresh id: `prefix` + `_` + 24 random hex digits (96 bits).
pub fn new_id(prefix: &str) -> String {
    let bytes: [u8; 12] = rand::random();
    let mut id = String::with_capacity(prefix.len() + 25);
    id.push_str(prefix);
    id.push('_');
    for b in bytes {
        id.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        id.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    id
}

/// RFC 3339 UTC with milliseconds, as the rest of the API writes times.
pub fn iso8601(ms: Millis) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(ms);
    humantime::format_rfc3339_millis(at).to_string()
}

/// Milliseconds since the Unix epoch, now.
pub fn now_millis() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Micro-units as a decimal string with at least two decimals (`500000` → `"0.50"`).
fn money(micros: Micros) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let abs = micros.unsigned_abs();
    let mut frac = format!("{:06}", abs % 1_000_000);
    while frac.len() > 2 && frac.ends_with('0') {
        frac.pop();
    }
    format!("{sign}{}.{frac}", abs / 1_000_000)
}

fn direction(d: Direction) -> &'static str {
    match d {
        Direction::Outbound => "OUTBOUND",
        Direction::Inbound => "INBOUND",
    }
}

/// What a status change or inbound event says.
#[derive(Debug, Clone)]
pub struct StatusEvent<'a> {
    /// The event name.
    pub event: &'static str,
    /// The status the event announces (the message may have moved on since).
    pub status: MessageStatus,
    /// The provider the event names, else the message's.
    pub provider_id: Option<Id>,
    /// The error code the event names, else the message's.
    pub error_code: Option<&'a str>,
}

/// The payload of a message event. `status`, `providerId` and `errorCode` are the event's (a
/// message read a moment later may already be further on); the rest is the stored message.
/// The body is included for inbound messages only: status events identify the message, and
/// leaving the text out keeps it out of receivers' logs.
pub fn message_payload(
    event_id: &str,
    created_at: Millis,
    event: &StatusEvent<'_>,
    m: &Message,
) -> Value {
    let mut data = json!({
        "messageId": m.id,
        "status": event.status.as_str(),
        "direction": direction(m.direction),
        "to": m.to_number,
        "from": m.from_number,
        "segments": m.segments,
        "encoding": m.encoding,
        "providerId": event.provider_id.or(m.provider_id),
        "providerMsgId": m.provider_msg_id,
        "errorCode": event.error_code.or(m.error_code.as_deref()),
        "statusMessage": m.status_message,
        "campaignId": m.campaign_id,
        "contactId": m.contact_id,
        "queuedAt": iso8601(m.queued_at),
        "submittedAt": m.submitted_at.map(iso8601),
        "deliveredAt": m.delivered_at.map(iso8601),
        "metadata": m.metadata,
    });
    if let Value::Object(map) = &mut data {
        if let Some(total) = m.total_cost {
            map.insert(
                "cost".into(),
                json!({"amount": money(total), "currency": m.cost_currency}),
            );
        }
        if m.direction == Direction::Inbound {
            map.insert("body".into(), Value::String(m.body.clone()));
            map.insert("receivedAt".into(), Value::String(iso8601(m.created_at)));
        }
    }
    envelope(event_id, event.event, created_at, data)
}

/// The payload of a test delivery.
pub fn test_payload(event_id: &str, created_at: Millis, org: Id, webhook: Id) -> Value {
    envelope(
        event_id,
        WEBHOOK_TEST,
        created_at,
        json!({
            "webhookId": webhook,
            "organizationId": org,
            "message": "This is a test delivery from Sairex SMS.",
        }),
    )
}

fn envelope(event_id: &str, event: &str, created_at: Millis, data: Value) -> Value {
    json!({
        "id": event_id,
        "event": event,
        "createdAt": iso8601(created_at),
        "data": data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_but_received_has_an_event() {
        for status in MessageStatus::ALL {
            let name = event_name(status);
            assert_eq!(
                name.is_none(),
                status == MessageStatus::Received,
                "{status:?}"
            );
            if let Some(name) = name {
                assert!(EVENTS.contains(&name));
            }
        }
        assert_eq!(event_name(MessageStatus::Expired), Some(MESSAGE_FAILED));
        assert_eq!(event_name(MessageStatus::Submitted), Some(MESSAGE_SENT));
    }

    #[test]
    fn subscriptions_match_names_and_the_wildcard() {
        let hooks = vec!["message.delivered".to_owned()];
        assert!(subscribes(&hooks, MESSAGE_DELIVERED));
        assert!(!subscribes(&hooks, MESSAGE_SENT));
        assert!(subscribes(&["*".to_owned()], MESSAGE_INBOUND));
        assert!(!subscribes(&[], MESSAGE_INBOUND));
    }

    #[test]
    fn money_and_times_are_formatted_like_the_api() {
        assert_eq!(money(500_000), "0.50");
        assert_eq!(money(1_234_567), "1.234567");
        assert_eq!(money(-20_000_000), "-20.00");
        assert_eq!(iso8601(1_771_151_400_123), "2026-02-15T10:30:00.123Z");
    }

    #[test]
    fn ids_are_unique_and_prefixed() {
        let a = new_id("evt");
        assert!(a.starts_with("evt_") && a.len() == 28);
        assert_ne!(a, new_id("evt"));
    }

    #[test]
    fn inbound_payloads_carry_the_body_and_status_payloads_do_not() {
        let mut m = Message {
            id: 7,
            to_number: "+923001234567".into(),
            body: "secret-ish text".into(),
            metadata: Some(json!({"studentId": 42})),
            ..Message::default()
        };
        let ev = StatusEvent {
            event: MESSAGE_SENT,
            status: MessageStatus::Submitted,
            provider_id: Some(3),
            error_code: None,
        };
        let p = message_payload("evt_1", 0, &ev, &m);
        assert_eq!(p["event"], "message.sent");
        assert_eq!(p["data"]["status"], "SUBMITTED");
        assert_eq!(p["data"]["providerId"], 3);
        assert_eq!(p["data"]["metadata"]["studentId"], 42);
        assert!(p["data"].get("body").is_none());
        m.direction = Direction::Inbound;
        let ev = StatusEvent {
            event: MESSAGE_INBOUND,
            status: MessageStatus::Received,
            provider_id: None,
            error_code: None,
        };
        let p = message_payload("evt_2", 0, &ev, &m);
        assert_eq!(p["data"]["body"], "secret-ish text");
        assert_eq!(p["data"]["direction"], "INBOUND");
    }
}
