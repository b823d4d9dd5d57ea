//! Providers: where the dispatcher sends messages. One provider is one configured route to a
//! carrier (an SMPP account with its binds, or an HTTP API). Whatever its kind, the dispatcher
//! talks to it the same way, by credit:
//!
//! - the provider announces how many messages it can take now ([`ProviderEvent::Credit`]),
//!   combining free window slots and its TPS bucket;
//! - the dispatcher hands it at most that many [`Outbound`] messages through a
//!   [`ProviderLink`];
//! - the provider answers every one, exactly once, with [`ProviderEvent::Done`], and reports
//!   incoming receipts and mobile-originated messages as [`ProviderEvent::Deliver`], each with
//!   a [`DeliverAck`] the dispatcher completes once it is durable.
//!
//! The message text travels as text: each provider encodes and splits it its own way (an SMPP
//! provider by its data_coding and concatenation settings; an HTTP API takes text).
//!
//! # Parts accepted, parts not
//! A provider that splits a long text into submits of its own can have some parts accepted and
//! others not (throttled, refused, unanswered). Its answer then says which, by position
//! ([`AcceptedParts`]), with the concatenation reference it used. A resend carries them back
//! ([`Outbound::resume`]): the provider splits the text the same way, puts the same reference
//! on every part, and sends only the parts not accepted, so the handset can join the parts of
//! both attempts and gets none twice (as Kannel retries each part of a split message on its
//! own). Only providers that report a [`ProviderLink::part_layout`] can do this; an HTTP API
//! splits on its side and can only send a message whole.

use std::sync::Arc;

use sairex_pdu::CommandStatus;
use sairex_store::model::Id;
use tokio::sync::mpsc;

use crate::classify::SubmitOutcome;

pub mod http;
pub mod settings;
pub mod smpp;
pub mod token_bucket;

pub use crate::session::{DeliverAck, DeliverStatus};

/// One message for a provider to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Outbound {
    /// The dispatcher's handle for this attempt; [`ProviderEvent::Done`] carries it back.
    pub token: u64,
    /// The organization.
    pub organization_id: Id,
    /// The message.
    pub message_id: Id,
    /// Sender ID or number.
    pub from: String,
    /// Recipient, E.164.
    pub to: String,
    /// The text.
    pub body: String,
    /// Whether to ask for a delivery receipt.
    pub receipt: bool,
    /// Parts of this message accepted before: send only the others, with this reference.
    /// Only handed to a provider whose [`ProviderLink::part_layout`] is the one the accepted
    /// parts were split with. Boxed: it is rare, and the link hands the whole message back
    /// on error.
    pub resume: Option<Box<Resume>>,
}

/// What a resend of a partly accepted multipart message must keep (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    /// The concatenation reference every part carries.
    pub reference: u16,
    /// One entry per part, in part order: the id of a part accepted before (not sent again),
    /// `None` for a part to send. Its length is the part count.
    pub ids: Vec<Option<String>>,
}

/// The parts of a message a provider accepted, by position, for an answer that is not
/// [`SendOutcome::Accepted`].
///
/// Includes the parts accepted by earlier attempts that the [`Outbound::resume`] named, so an
/// answer always tells everything known accepted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AcceptedParts {
    /// One entry per part, in part order: the provider's id of an accepted part, `None` for a
    /// part that was not. Empty when the provider does not know its parts (nothing was sent,
    /// or an HTTP API failed before it said anything).
    pub ids: Vec<Option<String>>,
    /// The concatenation reference the parts carry, when the provider chose one (an SMPP UDH
    /// or `sar_msg_ref_num`); `None` for a provider that splits on its side.
    pub reference: Option<u16>,
}

impl AcceptedParts {
    /// Nothing known accepted.
    pub fn none() -> Self {
        Self::default()
    }

    /// How many parts were accepted.
    pub fn count(&self) -> usize {
        self.ids.iter().flatten().count()
    }

    /// The accepted parts' ids, in part order, without their positions.
    pub fn into_ids(self) -> Vec<String> {
        self.ids.into_iter().flatten().collect()
    }
}

/// How a send ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Every part was accepted; the provider's id of each part, in order (for a resend, the
    /// ids of the parts accepted before in their places).
    Accepted {
        /// Provider message ids, one per part.
        provider_msg_ids: Vec<String>,
    },
    /// A part was refused; other parts may have been accepted.
    Refused {
        /// The status the provider gave (for HTTP providers, the closest SMPP status).
        status: CommandStatus,
        /// What it means for the message.
        outcome: SubmitOutcome,
        /// The provider's own error code, when it has one (HTTP providers).
        error_code: Option<String>,
        /// Parts accepted, by position.
        accepted: AcceptedParts,
    },
    /// A part may or may not have reached the carrier (a response never came). What the
    /// dispatcher does next is the provider's [`InDoubtPolicy`], asked through
    /// [`ProviderLink::in_doubt_policy`]: resend (possibly a duplicate) or fail it.
    ///
    /// Parts known accepted are given: those are never sent again.
    InDoubt {
        /// Parts accepted, by position.
        accepted: AcceptedParts,
    },
    /// Nothing was sent (no bind up, draining, overloaded), or only the parts given as
    /// accepted were: the rest is safe to send again.
    NotSent {
        /// Why.
        reason: String,
        /// Parts accepted before the others could not be sent, by position.
        accepted: AcceptedParts,
    },
}

/// What a provider reports to the dispatcher.
#[derive(Debug)]
pub enum ProviderEvent {
    /// The provider can take `n` more messages now (in addition to earlier credit not used).
    Credit {
        /// The provider.
        provider_id: Id,
        /// Messages.
        n: u32,
    },
    /// The provider can take nothing now (all binds down): credit given before is void.
    Unavailable {
        /// The provider.
        provider_id: Id,
    },
    /// The answer for one [`Outbound`].
    Done {
        /// The provider.
        provider_id: Id,
        /// The token of the [`Outbound`].
        token: u64,
        /// How it ended.
        outcome: SendOutcome,
    },
    /// A delivery receipt or a mobile-originated message arrived.
    Deliver {
        /// The provider it came through.
        provider_id: Id,
        /// The message as received.
        deliver: Box<sairex_pdu::DeliverSm>,
        /// Completed by the dispatcher once the receipt is applied or the message stored
        /// ([`DeliverStatus::Done`]), when the store failed ([`DeliverStatus::Retry`]: the
        /// carrier redelivers), or when it can never be used ([`DeliverStatus::Reject`]). The
        /// provider answers the carrier only then. Dropping it means `Retry`.
        ack: DeliverAck,
    },
}

/// Why a provider did not take a message handed to it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The provider is stopping or gone; the message was not taken.
    #[error("provider {0} is not accepting messages")]
    Closed(Id),
}

/// The dispatcher's handle to a provider.
pub trait ProviderLink: Send + Sync + std::fmt::Debug {
    /// The provider configuration's id.
    fn provider_id(&self) -> Id;

    /// Hands over one message. Only call it with credit; the answer comes as
    /// [`ProviderEvent::Done`].
    ///
    /// # Errors
    /// [`LinkError::Closed`] when the provider no longer takes messages: the message is the
    /// caller's again.
    fn send(&self, message: Outbound) -> Result<(), (LinkError, Outbound)>;

    /// What to do with this provider's [`SendOutcome::InDoubt`] answers.
    ///
    /// A trait method with a default rather than a field of the outcome or of
    /// [`ProviderEvent::Done`]: the policy is per provider configuration, the dispatcher already
    /// holds the link of every provider, and adding a field would break every existing
    /// constructor and pattern of those types.
    fn in_doubt_policy(&self) -> InDoubtPolicy {
        InDoubtPolicy::Resubmit
    }

    /// How this provider splits a long text, when it sends each part as a submit of its own
    /// and can therefore send some parts of a message without the others (see the module
    /// docs). Two providers with the same layout make the same parts of the same text. `None`
    /// (the default): the provider splits on its side and can only send a message whole.
    fn part_layout(&self) -> Option<String> {
        None
    }

    /// Whether a message this provider accepts asking for a receipt will get one (an SMPP
    /// provider configured with `registered_delivery` 0 never asks the SMSC). Without a
    /// receipt to wait for, the dispatcher does not expire the message when none comes.
    fn requests_receipts(&self) -> bool {
        true
    }

    /// The dispatcher holds none of this provider's credit (it was just added, or replaced):
    /// announce all of it again. Credit announced before the dispatcher knew the provider
    /// was dropped, so without this a provider added while running could wait forever.
    fn resync(&self) {}
}

/// What the dispatcher does with a message whose outcome is [`SendOutcome::InDoubt`]
/// (issue 4: "the provider's policy decides").
/// Read from a provider record's settings as `inDoubt: "resubmit" | "fail"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum InDoubtPolicy {
    /// Send it again. The carrier may then deliver it twice: the dispatcher counts such resends
    /// as possible duplicates.
    #[default]
    Resubmit,
    /// Fail it without resending: no duplicate, but possibly a message lost that in fact went
    /// through (its receipt, if one comes, still tells).
    Fail,
}

/// Where providers report to: one bounded channel for the dispatcher.
pub type ProviderEvents = mpsc::Sender<ProviderEvent>;

/// A shared provider handle.
pub type SharedLink = Arc<dyn ProviderLink>;
