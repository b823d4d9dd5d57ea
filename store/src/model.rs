//! The records the store keeps, with the blueprint's field names (§3.2) in Rust case.
//!
//! Times are milliseconds since the Unix epoch (UTC) in a [`Millis`]; money is in
//! millionths of the currency unit ([`Micros`]) so that costs add up exactly. Every record is
//! serialised with named fields and `#[serde(default)]` on fields added later, so a newer build
//! reads what an older one wrote (see `value.rs` for the format version).

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, UTC.
pub type Millis = u64;

/// An amount in millionths of the currency unit (`1.5 PKR` is `1_500_000`).
pub type Micros = i64;

/// Record ids: monotonic, never reused.
pub type Id = u64;

/// Which way a message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Direction {
    /// Application → phone (MT).
    Outbound,
    /// Phone → application (MO).
    Inbound,
}

impl Direction {
    pub(crate) const fn code(self) -> u8 {
        match self {
            Self::Outbound => 0,
            Self::Inbound => 1,
        }
    }
}

/// The message status lifecycle (blueprint §8.1), plus RECEIVED for inbound messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MessageStatus {
    /// Accepted and waiting in the queue (ready, scheduled, retrying or in flight).
    Queued,
    /// A provider accepted it (SMPP submit_sm_resp OK, HTTP 2xx).
    Submitted,
    /// The provider confirmed it left for the network (an intermediate receipt).
    Sent,
    /// The handset received it (final).
    Delivered,
    /// It could not be delivered, or retries ran out (final).
    Failed,
    /// Refused before or by the provider: opt-out, DLT block, invalid number (final).
    Rejected,
    /// Its validity ran out before delivery (final).
    Expired,
    /// An inbound message, stored (final).
    Received,
}

impl MessageStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [MessageStatus; 8] = [
        Self::Queued,
        Self::Submitted,
        Self::Sent,
        Self::Delivered,
        Self::Failed,
        Self::Rejected,
        Self::Expired,
        Self::Received,
    ];

    /// Whether no further status change is expected.
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            Self::Delivered | Self::Failed | Self::Rejected | Self::Expired | Self::Received
        )
    }

    /// The blueprint's spelling (`"QUEUED"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "QUEUED",
            Self::Submitted => "SUBMITTED",
            Self::Sent => "SENT",
            Self::Delivered => "DELIVERED",
            Self::Failed => "FAILED",
            Self::Rejected => "REJECTED",
            Self::Expired => "EXPIRED",
            Self::Received => "RECEIVED",
        }
    }

    pub(crate) const fn code(self) -> u8 {
        match self {
            Self::Queued => 0,
            Self::Submitted => 1,
            Self::Sent => 2,
            Self::Delivered => 3,
            Self::Failed => 4,
            Self::Rejected => 5,
            Self::Expired => 6,
            Self::Received => 7,
        }
    }
}

/// Queue priority (lower is served first): OTP 1, transactional 5, bulk 10.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Priority(pub u8);

impl Priority {
    /// One-time passwords: served before everything else.
    pub const OTP: Priority = Priority(1);
    /// Transactional messages (fee notices, receipts): the default.
    pub const TRANSACTIONAL: Priority = Priority(5);
    /// Bulk and campaign traffic: served last.
    pub const BULK: Priority = Priority(10);
}

impl Default for Priority {
    fn default() -> Self {
        Self::TRANSACTIONAL
    }
}

/// Where a message is in the queue. A message is in exactly one place; the store keeps the
/// queue keys and this field in step within one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "place", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum QueuePlace {
    /// Waiting to be leased, in (priority, sequence) order.
    Ready {
        /// Enqueue order within its priority.
        seq: u64,
    },
    /// Waiting for a time: a scheduled send or a retry.
    Due {
        /// When it becomes ready.
        at: Millis,
    },
    /// Leased by the engine, not yet acknowledged.
    InFlight {
        /// When it was leased.
        since: Millis,
    },
    /// Out of the queue: a final status, SUBMITTED awaiting its receipt, or inbound.
    Done,
}

/// An SMS, outbound or inbound (blueprint `SmsMessage`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Message {
    /// Its id.
    pub id: Id,
    /// The tenant.
    pub organization_id: Id,
    /// OUTBOUND or INBOUND.
    pub direction: Direction,
    /// Sender ID or number.
    pub from_number: String,
    /// Recipient, E.164.
    pub to_number: String,
    /// The contact the number belongs to, if known.
    pub contact_id: Option<Id>,
    /// The text.
    pub body: String,
    /// "GSM-7", "UCS-2" or "LATIN-1".
    pub encoding: String,
    /// Number of SMS parts.
    pub segments: u32,
    /// The campaign that produced it.
    pub campaign_id: Option<Id>,
    /// Which of the campaign's A/B variants it is (an index into `Campaign::variants`).
    pub campaign_variant: Option<u8>,
    /// The API key that sent it.
    pub api_key_id: Option<Id>,
    /// The client's deduplication key, unique within the organization.
    pub idempotency_key: Option<String>,
    /// The provider it was last sent through.
    pub provider_id: Option<Id>,
    /// The provider's id for it (the first part's, for multipart messages).
    pub provider_msg_id: Option<String>,
    /// The provider's id for every part, in order.
    pub provider_msg_ids: Vec<String>,
    /// Where it is in its lifecycle.
    pub status: MessageStatus,
    /// Human-readable error or info.
    pub status_message: Option<String>,
    /// Provider-specific error code.
    pub error_code: Option<String>,
    /// When the receipt said DELIVERED.
    pub delivered_at: Option<Millis>,
    /// Cost of one part.
    pub cost_per_segment: Option<Micros>,
    /// Cost of all parts.
    pub total_cost: Option<Micros>,
    /// ISO 4217 currency of the costs.
    pub cost_currency: String,
    /// Retries so far.
    pub retry_count: u32,
    /// Retries allowed before FAILED.
    pub max_retries: u32,
    /// When the next retry is due.
    pub next_retry_at: Option<Millis>,
    /// When it entered the queue.
    pub queued_at: Millis,
    /// When a provider accepted it.
    pub submitted_at: Option<Millis>,
    /// When it was created.
    pub created_at: Millis,
    /// When it last changed.
    pub updated_at: Millis,
    /// Queue priority.
    pub priority: Priority,
    /// After this time it is EXPIRED rather than sent.
    pub expires_at: Option<Millis>,
    /// Not before this time.
    pub scheduled_at: Option<Millis>,
    /// The client's own data, returned as given.
    pub metadata: Option<serde_json::Value>,
    /// Per-message status callback URL.
    pub callback_url: Option<String>,
    /// Where it is in the queue.
    pub queue: QueuePlace,
    /// Events in its audit trail so far (the next event's `seq`).
    pub event_count: u32,
    /// The parts accepted when a multipart message was not accepted whole, so that a resend
    /// sends only the rest (see [`PartialSend`]); `None` for a message sent in one go. Kept once
    /// the rest is accepted: it says which provider each early part went through.
    pub partial: Option<PartialSend>,
    /// Parts (from 0) of a multipart message whose receipt said delivered, while others have
    /// not yet: the message is DELIVERED once every part is.
    pub delivered_parts: Vec<u32>,
    /// When a SUBMITTED (or SENT) message whose receipt has not come becomes EXPIRED with a
    /// RECEIPT_TIMEOUT event: its validity end plus a grace, set when it is submitted asking
    /// for a receipt. Kept after that, so a late receipt can still record the real outcome.
    pub receipt_due_at: Option<Millis>,
}

/// A multipart message some of whose parts a provider accepted while others were throttled,
/// refused, unanswered or not sent. A resend sends only the missing parts, split the same way
/// and with the same concatenation reference and part count, so the handset can still join
/// them and never gets an accepted part twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct PartialSend {
    /// Parts in all, as the first accepting provider split the text.
    pub total: u32,
    /// The concatenation reference every part carries (UDH or `sar_msg_ref_num`).
    pub reference: u16,
    /// How that provider splits text (encoding, concatenation): only a provider that splits
    /// the same way produces the same missing parts.
    pub layout: String,
    /// The provider that accepted parts last: asked first for the rest.
    pub provider_id: Id,
    /// The parts accepted so far, by ascending index, each once.
    pub accepted: Vec<AcceptedPart>,
}

/// One part of a [`PartialSend`] that a provider accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct AcceptedPart {
    /// Its position in the message, from 0.
    pub index: u32,
    /// The provider that accepted it: its receipt comes from there.
    pub provider_id: Id,
    /// The id that provider gave it.
    pub provider_msg_id: String,
}

impl PartialSend {
    /// The accepted part at `index`, if it was.
    pub fn part(&self, index: u32) -> Option<&AcceptedPart> {
        self.accepted.iter().find(|p| p.index == index)
    }

    /// The parts not accepted yet, ascending.
    pub fn missing(&self) -> Vec<u32> {
        (0..self.total)
            .filter(|&i| self.part(i).is_none())
            .collect()
    }
}

impl Default for Message {
    fn default() -> Self {
        Self {
            id: 0,
            organization_id: 0,
            direction: Direction::Outbound,
            from_number: String::new(),
            to_number: String::new(),
            contact_id: None,
            body: String::new(),
            encoding: "GSM-7".to_owned(),
            segments: 1,
            campaign_id: None,
            campaign_variant: None,
            api_key_id: None,
            idempotency_key: None,
            provider_id: None,
            provider_msg_id: None,
            provider_msg_ids: Vec::new(),
            status: MessageStatus::Queued,
            status_message: None,
            error_code: None,
            delivered_at: None,
            cost_per_segment: None,
            total_cost: None,
            cost_currency: "PKR".to_owned(),
            retry_count: 0,
            max_retries: 3,
            next_retry_at: None,
            queued_at: 0,
            submitted_at: None,
            created_at: 0,
            updated_at: 0,
            priority: Priority::default(),
            expires_at: None,
            scheduled_at: None,
            metadata: None,
            callback_url: None,
            queue: QueuePlace::Done,
            event_count: 0,
            partial: None,
            delivered_parts: Vec::new(),
            receipt_due_at: None,
        }
    }
}

/// One entry of a message's audit trail (blueprint `SmsMessageEvent`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MessageEvent {
    /// Position in the message's trail, from 0.
    pub seq: u32,
    /// The message.
    pub message_id: Id,
    /// What happened: QUEUED, SUBMITTED, SENT, DELIVERED, FAILED, REJECTED, EXPIRED, RETRY,
    /// RESUBMITTED_AFTER_RESTART, IN_DOUBT, …
    pub event_type: String,
    /// The status after the event.
    pub status: MessageStatus,
    /// Human-readable detail.
    pub detail: Option<String>,
    /// Raw provider data.
    pub metadata: Option<serde_json::Value>,
    /// When.
    pub occurred_at: Millis,
}

impl Default for MessageEvent {
    fn default() -> Self {
        Self {
            seq: 0,
            message_id: 0,
            event_type: String::new(),
            status: MessageStatus::Queued,
            detail: None,
            metadata: None,
            occurred_at: 0,
        }
    }
}

/// Daily window in which promotional traffic waits (the organization's local time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct QuietHours {
    /// Start, minutes after local midnight.
    pub start_minute: u16,
    /// End, minutes after local midnight (may be before start: the window wraps midnight).
    pub end_minute: u16,
    /// IANA time zone name, e.g. "Asia/Karachi".
    pub time_zone: String,
}

/// A tenant (blueprint `Organization`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Organization {
    /// Its id.
    pub id: Id,
    /// Display name.
    pub name: String,
    /// ISO 3166-1 alpha-2 country for numbers written without a country code.
    pub default_country: String,
    /// IANA time zone of its days (analytics, CSV exports); empty for its country's default
    /// (records from before the field existed).
    pub time_zone: String,
    /// Prepaid credit, when the organization is billed that way.
    pub credit_balance: Option<Micros>,
    /// Currency of the credit.
    pub currency: Option<String>,
    /// Days messages are kept before the retention purge.
    pub retention_days: Option<u32>,
    /// When promotional traffic must wait.
    pub quiet_hours: Option<QuietHours>,
    /// Whether India's DLT rules apply (blueprint §6.4): a transactional send bound to a
    /// template needs an approved template with a DLT template id.
    pub dlt_enabled: bool,
    /// Whether it may use the API.
    pub is_active: bool,
    /// When it was created.
    pub created_at: Millis,
    /// When it last changed.
    pub updated_at: Millis,
}

/// An API key (blueprint `SmsApiKey`). Only the SHA-256 of the key is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ApiKey {
    /// Its id.
    pub id: Id,
    /// The tenant.
    pub organization_id: Id,
    /// Human-readable label.
    pub name: String,
    /// The first characters of the key, to tell keys apart ("sk_live_ab").
    pub key_prefix: String,
    /// SHA-256 of the whole key.
    pub key_hash: [u8; 32],
    /// Permissions ("sms:send", "sms:read", "admin", …).
    pub scopes: Vec<String>,
    /// Requests per minute allowed.
    pub rate_limit_per_min: u32,
    /// Requests per day allowed.
    pub rate_limit_per_day: u32,
    /// Whether it may be used.
    pub is_active: bool,
    /// When it was last used.
    pub last_used_at: Option<Millis>,
    /// After this it no longer works.
    pub expires_at: Option<Millis>,
    /// When it was created.
    pub created_at: Millis,
    /// When it last changed.
    pub updated_at: Millis,
}

/// What kind of provider a configuration is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// An SMPP bind to a carrier or GSM gateway.
    #[default]
    Smpp,
    /// Twilio Programmable Messaging.
    Twilio,
    /// Vonage SMS API.
    Vonage,
    /// Veevo Tech.
    Veevo,
}

/// Provider health (blueprint §4.3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HealthStatus {
    /// Not yet checked.
    #[default]
    Unknown,
    /// Sending normally.
    Healthy,
    /// Failing often.
    Degraded,
    /// Not used for sending.
    Down,
}

/// A provider configuration of an organization (blueprint `SmsProviderConfig`).
///
/// `credentials` is a JSON object (Twilio `{accountSid, authToken}`, SMPP `{host, port,
/// systemId, password, …}`); the store encrypts it at rest and it is never logged.
///
/// Its `Debug` masks `credentials`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProviderConfig {
    /// Its id.
    pub id: Id,
    /// The tenant; 0 for a system-level provider shared by organizations.
    pub organization_id: Id,
    /// smpp, twilio, vonage or veevo.
    pub provider_kind: ProviderKind,
    /// Label ("Jazz SMPP primary").
    pub display_name: String,
    /// Kind-specific settings that are not secret (window, TPS, bind mode, …).
    pub settings: serde_json::Value,
    /// Kind-specific secrets; encrypted at rest.
    pub credentials: serde_json::Value,
    /// Lower is tried first in failover.
    pub priority: i32,
    /// Whether it is used.
    pub is_active: bool,
    /// Whether it is the organization's default.
    pub is_default: bool,
    /// When health was last checked.
    pub last_health_check: Option<Millis>,
    /// Current health.
    pub health_status: HealthStatus,
    /// Recent failures.
    pub failure_count: u32,
    /// Messages per second it accepts.
    pub tps: Option<u32>,
    /// Cost of one part.
    pub cost_per_segment: Option<Micros>,
    /// Currency of the cost.
    pub cost_currency: Option<String>,
    /// Sender IDs registered with this provider.
    pub registered_sender_ids: Vec<String>,
    /// When it was created.
    pub created_at: Millis,
    /// When it last changed.
    pub updated_at: Millis,
}

/// A contact (blueprint `SmsContact`); the phone is unique within the organization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Contact {
    /// Its id.
    pub id: Id,
    /// The tenant.
    pub organization_id: Id,
    /// E.164.
    pub phone_number: String,
    /// ISO 3166-1 alpha-2.
    pub country_code: String,
    /// Name to show.
    pub display_name: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// Link to a student record of the platform.
    pub student_id: Option<Id>,
    /// Link to a user record of the platform.
    pub user_id: Option<Id>,
    /// Custom fields.
    pub metadata: Option<serde_json::Value>,
    /// Whether the contact has opted out.
    pub is_opted_out: bool,
    /// When they opted out.
    pub opted_out_at: Option<Millis>,
    /// When they last opted in.
    pub opted_in_at: Option<Millis>,
    /// When it was created.
    pub created_at: Millis,
    /// When it last changed.
    pub updated_at: Millis,
}

/// A contact group (blueprint `SmsGroup`); `member_count` is kept exact by the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Group {
    /// Its id.
    pub id: Id,
    /// The tenant.
    pub organization_id: Id,
    /// Name, unique within the organization.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// UI colour ("#3B82F6").
    pub color: Option<String>,
    /// Number of members.
    pub member_count: u64,
    /// When it was created.
    pub created_at: Millis,
    /// When it last changed.
    pub updated_at: Millis,
}

/// Template category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TemplateCategory {
    /// Transactional.
    #[default]
    Transactional,
    /// Promotional (subject to quiet hours).
    Promotional,
    /// One-time passwords.
    Otp,
}

/// A message template (blueprint `SmsTemplate`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Template {
    /// Its id.
    pub id: Id,
    /// The tenant.
    pub organization_id: Id,
    /// Name, unique within the organization.
    pub name: String,
    /// Text with `{{variable}}` placeholders.
    pub body: String,
    /// The placeholders found in the body.
    pub variables: Vec<String>,
    /// DLT registered template id.
    pub dlt_template_id: Option<String>,
    /// DLT entity id.
    pub dlt_entity_id: Option<String>,
    /// Whether it is approved for sending.
    pub is_approved: bool,
    /// TRANSACTIONAL, PROMOTIONAL or OTP.
    pub category: TemplateCategory,
    /// Language tag ("en", "ur").
    pub language: String,
    /// When it was created.
    pub created_at: Millis,
    /// When it last changed.
    pub updated_at: Millis,
}

/// Campaign state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CampaignStatus {
    /// Being prepared.
    #[default]
    Draft,
    /// Waiting for its time.
    Scheduled,
    /// Being sent.
    InProgress,
    /// All messages created.
    Completed,
    /// Stopped for good.
    Cancelled,
    /// Stopped for now.
    Paused,
}

/// A bulk send (blueprint `SmsCampaign`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Campaign {
    /// Its id.
    pub id: Id,
    /// The tenant.
    pub organization_id: Id,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// The template, if any.
    pub template_id: Option<Id>,
    /// The audience group, if any.
    pub group_id: Option<Id>,
    /// Raw body when not using a template.
    pub message_body: Option<String>,
    /// Null = send immediately.
    pub scheduled_at: Option<Millis>,
    /// When sending started.
    pub started_at: Option<Millis>,
    /// When sending finished.
    pub completed_at: Option<Millis>,
    /// Recipients in the audience.
    pub total_recipients: u64,
    /// Messages sent.
    pub sent_count: u64,
    /// Messages delivered.
    pub delivered_count: u64,
    /// Messages failed.
    pub failed_count: u64,
    /// Messages rejected.
    pub rejected_count: u64,
    /// Its state.
    pub status: CampaignStatus,
    /// Uploaded CSV name.
    pub csv_file_name: Option<String>,
    /// Rows in the uploaded CSV.
    pub csv_row_count: Option<u64>,
    /// Who created it.
    pub created_by: String,
    /// Campaign runner state and options the store does not interpret.
    pub extra: Option<serde_json::Value>,
    /// A/B variants: when not empty, every recipient gets exactly one of these bodies (or
    /// templates) instead of `template_id`/`message_body`, and the percentages sum to 100.
    /// Empty for campaigns stored before variants existed.
    pub variants: Vec<CampaignVariant>,
    /// When it was created.
    pub created_at: Millis,
    /// When it last changed.
    pub updated_at: Millis,
}

/// One arm of a campaign's A/B test: exactly one of `message_body` and `template_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct CampaignVariant {
    /// Label, unique within the campaign ("A", "B").
    pub name: String,
    /// Share of the audience, 1 to 100.
    pub percent: u8,
    /// Raw body with `{{variable}}` placeholders.
    pub message_body: Option<String>,
    /// Template of the campaign's organization.
    pub template_id: Option<Id>,
}

/// An outbound webhook (blueprint `SmsWebhook`); `secret` is encrypted at rest and masked by
/// `Debug`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Webhook {
    /// Its id.
    pub id: Id,
    /// The tenant.
    pub organization_id: Id,
    /// HTTPS endpoint.
    pub url: String,
    /// HMAC signing secret.
    pub secret: String,
    /// Event names it receives.
    pub events: Vec<String>,
    /// Whether it is used.
    pub is_active: bool,
    /// When it last fired.
    pub last_triggered_at: Option<Millis>,
    /// Failures in a row.
    pub consecutive_fails: u32,
    /// When it was created.
    pub created_at: Millis,
    /// When it last changed.
    pub updated_at: Millis,
}

/// One delivery attempt of a webhook (blueprint `SmsWebhookDelivery`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct WebhookDelivery {
    /// Its id.
    pub id: Id,
    /// The tenant.
    pub organization_id: Id,
    /// The webhook.
    pub webhook_id: Id,
    /// Event name.
    pub event_type: String,
    /// What was sent.
    pub payload: serde_json::Value,
    /// HTTP status received.
    pub http_status: Option<u16>,
    /// Start of the response body.
    pub response_body: Option<String>,
    /// Round trip.
    pub latency_ms: Option<u32>,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// Whether it succeeded.
    pub success: bool,
    /// When.
    pub created_at: Millis,
}

// Defaults follow the blueprint's column defaults: a new organization, key, provider or webhook
// is active; a key allows 60 requests a minute and 10,000 a day; a template is in English.

impl Default for Organization {
    fn default() -> Self {
        Self {
            id: 0,
            name: String::new(),
            default_country: "PK".to_owned(),
            time_zone: String::new(),
            credit_balance: None,
            currency: None,
            retention_days: None,
            quiet_hours: None,
            dlt_enabled: false,
            is_active: true,
            created_at: 0,
            updated_at: 0,
        }
    }
}

impl Default for ApiKey {
    fn default() -> Self {
        Self {
            id: 0,
            organization_id: 0,
            name: String::new(),
            key_prefix: String::new(),
            key_hash: [0; 32],
            scopes: Vec::new(),
            rate_limit_per_min: 60,
            rate_limit_per_day: 10_000,
            is_active: true,
            last_used_at: None,
            expires_at: None,
            created_at: 0,
            updated_at: 0,
        }
    }
}

impl Default for ProviderConfig {
    fn default() -> Self {
        Self {
            id: 0,
            organization_id: 0,
            provider_kind: ProviderKind::default(),
            display_name: String::new(),
            settings: serde_json::Value::Null,
            credentials: serde_json::Value::Null,
            priority: 0,
            is_active: true,
            is_default: false,
            last_health_check: None,
            health_status: HealthStatus::default(),
            failure_count: 0,
            tps: None,
            cost_per_segment: None,
            cost_currency: None,
            registered_sender_ids: Vec::new(),
            created_at: 0,
            updated_at: 0,
        }
    }
}

impl Default for Template {
    fn default() -> Self {
        Self {
            id: 0,
            organization_id: 0,
            name: String::new(),
            body: String::new(),
            variables: Vec::new(),
            dlt_template_id: None,
            dlt_entity_id: None,
            is_approved: false,
            category: TemplateCategory::default(),
            language: "en".to_owned(),
            created_at: 0,
            updated_at: 0,
        }
    }
}

impl Default for Webhook {
    fn default() -> Self {
        Self {
            id: 0,
            organization_id: 0,
            url: String::new(),
            secret: String::new(),
            events: Vec::new(),
            is_active: true,
            last_triggered_at: None,
            consecutive_fails: 0,
            created_at: 0,
            updated_at: 0,
        }
    }
}

/// What `Debug` shows in place of a secret that is set.
const MASK: &str = "***";

impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let credentials = if self.credentials.is_null() {
            "null"
        } else {
            MASK
        };
        f.debug_struct("ProviderConfig")
            .field("id", &self.id)
            .field("organization_id", &self.organization_id)
            .field("provider_kind", &self.provider_kind)
            .field("display_name", &self.display_name)
            .field("settings", &self.settings)
            .field("credentials", &format_args!("{credentials}"))
            .field("priority", &self.priority)
            .field("is_active", &self.is_active)
            .field("is_default", &self.is_default)
            .field("last_health_check", &self.last_health_check)
            .field("health_status", &self.health_status)
            .field("failure_count", &self.failure_count)
            .field("tps", &self.tps)
            .field("cost_per_segment", &self.cost_per_segment)
            .field("cost_currency", &self.cost_currency)
            .field("registered_sender_ids", &self.registered_sender_ids)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = if self.secret.is_empty() { "" } else { MASK };
        f.debug_struct("Webhook")
            .field("id", &self.id)
            .field("organization_id", &self.organization_id)
            .field("url", &self.url)
            .field("secret", &format_args!("{secret:?}"))
            .field("events", &self.events)
            .field("is_active", &self.is_active)
            .field("last_triggered_at", &self.last_triggered_at)
            .field("consecutive_fails", &self.consecutive_fails)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

/// What a console user may do in its organization (blueprint §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConsoleRole {
    /// Everything in the organization: providers, API keys, webhooks, users, settings.
    Admin,
    /// Send, inbox, contacts, templates, campaigns, reports; no providers, keys, webhooks.
    #[default]
    Member,
}

/// A person who logs in to the web console; belongs to one organization. Emails are unique
/// across organizations (the login form asks for the email only).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ConsoleUser {
    /// Its id.
    pub id: Id,
    /// The tenant.
    pub organization_id: Id,
    /// Login name: trimmed and lower-cased by the store.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Its role.
    pub role: ConsoleRole,
    /// The argon2id PHC string of the password (the caller hashes; the store never sees the
    /// password).
    pub password_hash: String,
    /// Whether it may log in.
    pub is_active: bool,
    /// Last successful login.
    pub last_login_at: Option<Millis>,
    /// When it was created.
    pub created_at: Millis,
    /// When it last changed.
    pub updated_at: Millis,
}

/// A console login session. Stored under the SHA-256 of its random id (the cookie), so the
/// store never holds a usable session id.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ConsoleSession {
    /// The user.
    pub user_id: Id,
    /// The user's organization.
    pub organization_id: Id,
    /// The token every state-changing request of this session must carry.
    pub csrf_token: String,
    /// When it was created.
    pub created_at: Millis,
    /// When it stops being accepted (server-side expiry).
    pub expires_at: Millis,
}
