//! The campaign runner: expands campaigns into messages, a chunk at a time, from the store.
//!
//! A campaign the API starts is `IN_PROGRESS` (or `SCHEDULED` until its `scheduledAt`); the
//! runner polls the store for such campaigns (and is woken early by [`CampaignRunnerHandle::wake`]),
//! and for each one:
//! - reads the next [`RunnerConfig::chunk`] recipients after its cursor: group members in
//!   contact-id order, or the campaign's own audience (inline or uploaded recipients, one per
//!   phone, so duplicates are gone before the runner sees them) in phone order; the audience
//!   is never in memory whole;
//! - skips opted-out contacts (counted), renders the template or body with the recipient's
//!   variables (a recipient whose variables miss a placeholder without default is counted as
//!   invalid), and enqueues the chunk at bulk priority in one writer turn
//!   ([`Store::enqueue_many`]), each message with the idempotency key
//!   `campaign:{id}:c{contact}` or `campaign:{id}:r{seq}`;
//! - then stores its cursor and counters in the campaign's `extra.run`.
//!
//! A crash between the enqueue and the cursor write re-reads the chunk after a restart; the
//! idempotency keys make those messages duplicates of the ones already queued, so no recipient
//! is skipped or sent twice. Pause, cancel and resume are status changes by the API: the
//! runner only moves a campaign it finds `IN_PROGRESS`, and never writes over a status it did
//! not set. The runner keeps at most [`RunnerConfig::queue_ahead`] of a campaign's messages
//! waiting in the queue, so a pause takes effect within that many messages and a large
//! campaign never floods the queue ahead of other traffic.
//!
//! Before each chunk the runner reads the campaign's templates again and checks them
//! ([`check_campaign`]): a template deleted, or one DLT now refuses (the template or the
//! organization's `dltEnabled` changed after the campaign was started), pauses the campaign
//! with the reason in its `extra.halt` ([`Halt`]) instead of sending; the API applies the same
//! check when a campaign is started or resumed, so the user hears of it up front.
//!
//! A campaign with A/B variants sends each recipient one variant's body or template, picked by
//! [`variant_for`] from the recipient's idempotency key (campaign id and contact id or
//! audience position): the same recipient always gets the same variant, whatever pauses,
//! restarts or re-read chunks happen. Messages carry their variant, and the store counts each
//! variant's messages from its own index ([`Store::campaign_variant_counts`]).
//!
//! Promotional campaigns (template category PROMOTIONAL, of any variant) wait while the
//! organization is in its quiet hours (its local time zone). Stats are counted from the
//! store's campaign index ([`Store::campaign_counts`]), so they are exact whatever receipts
//! arrive while the runner is down; the runner copies them into the campaign record every
//! [`RunnerConfig::stats_every`] while any message of the campaign is not final.

mod quiet;
mod unfilled;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use sairex_pdu::text::{Encoding, count_segments};
use sairex_store::model::{
    Campaign, CampaignStatus, Contact, Id, Message, Millis, Priority, TemplateCategory,
};
use sairex_store::{Enqueued, Recipient, Store, StoreError, now_ms, render_template};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::compliance::{DLT_TEMPLATE_NOT_APPROVED, DltRefusal, check_dlt};
use crate::dispatch::DispatcherHandle;

pub use quiet::{in_quiet_hours, is_known_time_zone};
pub use unfilled::{Unfilled, unfilled_variable};

/// Where the runner's new messages are announced.
pub trait CampaignSink: Send + Sync + 'static {
    /// Messages are ready in the store.
    fn nudge(&self);
}

impl CampaignSink for DispatcherHandle {
    fn nudge(&self) {
        DispatcherHandle::nudge(self);
    }
}

/// How the runner paces itself.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// How often the store is looked at when nothing is being expanded.
    pub poll_interval: Duration,
    /// Recipients read and messages enqueued per step.
    pub chunk: usize,
    /// Most messages of one campaign waiting in the queue before the runner expands more.
    pub queue_ahead: u64,
    /// How often the counters of campaigns with messages in flight are refreshed.
    pub stats_every: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_millis(500),
            chunk: 500,
            queue_ahead: 5_000,
            stats_every: Duration::from_secs(2),
        }
    }
}

/// The runner's state of a campaign, kept in its `extra.run` (store-durable with the cursor).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RunState {
    /// Last group member (contact id) expanded.
    pub after_contact: Option<Id>,
    /// Last own-audience phone expanded.
    pub after_phone: Option<String>,
    /// Messages created.
    pub queued: u64,
    /// Opted-out contacts skipped.
    pub skipped_opted_out: u64,
    /// Recipients whose message could not be made (missing variable, empty body).
    pub skipped_invalid: u64,
    /// Whether the whole audience has been expanded.
    pub done: bool,
}

impl RunState {
    /// The state in a campaign's `extra`.
    pub fn of(campaign: &Campaign) -> Self {
        extra_get(campaign, "run").unwrap_or_default()
    }

    fn store_into(&self, campaign: &mut Campaign) {
        extra_put(campaign, "run", self);
    }
}

/// A value the runner keeps under `key` in a campaign's `extra` (the record has no field for
/// it); `None` when absent or unreadable.
fn extra_get<T: serde::de::DeserializeOwned>(campaign: &Campaign, key: &str) -> Option<T> {
    campaign
        .extra
        .as_ref()
        .and_then(|e| e.get(key))
        .and_then(|v| serde_json::from_value(v.clone()).ok())
}

/// Puts `value` under `key` in a campaign's `extra`, keeping the other keys.
fn extra_put(campaign: &mut Campaign, key: &str, value: &impl Serialize) {
    let mut extra = match campaign.extra.take() {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    extra.insert(
        key.into(),
        serde_json::to_value(value).unwrap_or(Value::Null),
    );
    campaign.extra = Some(Value::Object(extra));
}

/// The sender id a campaign was given (`extra.from`).
fn sender_of(campaign: &Campaign) -> String {
    extra_get(campaign, "from").unwrap_or_default()
}

/// Why the runner paused a campaign, kept in its `extra.halt` until the campaign is started
/// or resumed again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Halt {
    /// Stable code: [`DLT_TEMPLATE_NOT_APPROVED`] or `TEMPLATE_NOT_FOUND`.
    pub code: String,
    /// For people: what to fix.
    pub message: String,
    /// When the runner paused it.
    pub at: Millis,
}

impl Halt {
    /// The halt recorded in a campaign's `extra`, if any.
    pub fn of(campaign: &Campaign) -> Option<Self> {
        extra_get(campaign, "halt")
    }

    /// Forgets a campaign's halt (it is being started or resumed).
    pub fn clear(campaign: &mut Campaign) {
        if let Some(Value::Object(extra)) = campaign.extra.as_mut() {
            extra.remove("halt");
        }
    }

    fn store_into(&self, campaign: &mut Campaign) {
        extra_put(campaign, "halt", self);
    }
}

/// Why a campaign cannot send now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Blocker {
    /// A template it sends from does not exist (it was deleted).
    #[error("{field}: no template {template} (was it deleted?)")]
    TemplateMissing {
        /// Where the campaign names it (`templateId`, `variants[1].templateId`).
        field: String,
        /// The template.
        template: Id,
    },
    /// DLT refuses a template it sends from.
    #[error("{field}: {refusal}")]
    Dlt {
        /// Where the campaign names it.
        field: String,
        /// The refusal.
        refusal: DltRefusal,
    },
}

impl Blocker {
    /// Stable code of the blocker.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TemplateMissing { .. } => "TEMPLATE_NOT_FOUND",
            Self::Dlt { .. } => DLT_TEMPLATE_NOT_APPROVED,
        }
    }
}

/// Why [`check_campaign`] says no.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The campaign cannot send as it is.
    #[error(transparent)]
    Blocked(#[from] Blocker),
    /// The store could not answer.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a campaign sends: one body, or one per A/B variant (index = variant).
#[derive(Debug)]
struct Content {
    bodies: Vec<String>,
    /// The variants' shares, empty without variants.
    percents: Vec<u8>,
    /// Any template of it is PROMOTIONAL (quiet hours apply).
    promotional: bool,
}

impl Content {
    /// The variant (none without variants) and body of the recipient with this key.
    fn pick(&self, key: &str) -> (Option<u8>, &str) {
        let variant = if self.percents.is_empty() {
            None
        } else {
            u8::try_from(variant_for(key, &self.percents)).ok()
        };
        let body = self.bodies.get(usize::from(variant.unwrap_or(0)));
        (variant, body.map_or("", String::as_str))
    }
}

/// Reads a campaign's bodies: its template's (read now, so a change is seen), its raw body,
/// or each variant's; every template must exist and pass DLT. Campaign messages go out at
/// bulk priority, so DLT binds a template here by its TRANSACTIONAL category.
fn content(store: &Store, campaign: &Campaign, dlt_enabled: bool) -> Result<Content, CheckError> {
    let org = campaign.organization_id;
    let sources: Vec<(String, Option<Id>, Option<&String>)> = if campaign.variants.is_empty() {
        vec![(
            "templateId".to_owned(),
            campaign.template_id,
            campaign.message_body.as_ref(),
        )]
    } else {
        campaign
            .variants
            .iter()
            .enumerate()
            .map(|(i, v)| {
                (
                    format!("variants[{i}].templateId"),
                    v.template_id,
                    v.message_body.as_ref(),
                )
            })
            .collect()
    };
    let mut out = Content {
        bodies: Vec::with_capacity(sources.len()),
        percents: campaign.variants.iter().map(|v| v.percent).collect(),
        promotional: false,
    };
    for (field, template, body) in sources {
        let Some(id) = template else {
            out.bodies.push(body.cloned().unwrap_or_default());
            continue;
        };
        let template = match store.template(org, id) {
            Ok(t) => t,
            Err(StoreError::NotFound { .. }) => {
                return Err(Blocker::TemplateMissing {
                    field,
                    template: id,
                }
                .into());
            }
            Err(e) => return Err(e.into()),
        };
        check_dlt(dlt_enabled, &template, Priority::BULK)
            .map_err(|refusal| Blocker::Dlt { field, refusal })?;
        out.promotional |= template.category == TemplateCategory::Promotional;
        out.bodies.push(template.body);
    }
    Ok(out)
}

/// Whether a campaign can send now: every template it names exists and, when the
/// organization has DLT enabled, is approved and registered if transactional. The API asks
/// this before starting or resuming a campaign; the runner before every chunk.
///
/// # Errors
/// [`CheckError::Blocked`] with the reason, or a store error.
pub fn check_campaign(
    store: &Store,
    campaign: &Campaign,
    dlt_enabled: bool,
) -> Result<(), CheckError> {
    content(store, campaign, dlt_enabled).map(|_| ())
}

/// The A/B variant (an index into `percents`, which sum to 100) of the recipient whose
/// message has idempotency key `key`: the first 8 bytes of the key's SHA-256 modulo 100 fall
/// into one variant's share. A function of the key alone, so it never changes for a recipient.
pub fn variant_for(key: &str, percents: &[u8]) -> usize {
    let digest = Sha256::digest(key.as_bytes());
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    let roll = u64::from_be_bytes(head) % 100;
    let mut upto = 0u64;
    for (i, p) in percents.iter().enumerate() {
        upto += u64::from(*p);
        if roll < upto {
            return i;
        }
    }
    // Only if the shares sum below 100, which the store refuses.
    percents.len().saturating_sub(1)
}

/// A running campaign runner.
#[derive(Debug)]
pub struct CampaignRunnerHandle {
    wake: Arc<Notify>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl CampaignRunnerHandle {
    /// Looks at the store now (a campaign was started or resumed).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// A waker to hand to the API.
    pub fn waker(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }

    /// Stops after the step in progress (its cursor is stored; nothing is lost).
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// The campaign runner.
pub struct CampaignRunner {
    store: Store,
    sink: Arc<dyn CampaignSink>,
    config: RunnerConfig,
    /// Completed campaigns whose messages are all final and counters copied.
    settled: HashSet<Id>,
    last_stats: Option<tokio::time::Instant>,
}

impl std::fmt::Debug for CampaignRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CampaignRunner")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What one step of a campaign did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Messages were queued; there may be more.
    Progress,
    /// Waiting: the queue holds enough of its messages, or quiet hours.
    Waiting,
    /// Nothing more to do now.
    Idle,
}

impl CampaignRunner {
    /// Starts the runner on the current tokio runtime.
    pub fn start(
        store: Store,
        sink: Arc<dyn CampaignSink>,
        config: RunnerConfig,
    ) -> CampaignRunnerHandle {
        let wake = Arc::new(Notify::new());
        let stop = CancellationToken::new();
        let mut runner = Self {
            store,
            sink,
            config,
            settled: HashSet::new(),
            last_stats: None,
        };
        let task = tokio::spawn({
            let (wake, stop) = (Arc::clone(&wake), stop.clone());
            async move { runner.run(wake, stop).await }
        });
        CampaignRunnerHandle { wake, stop, task }
    }

    async fn run(&mut self, wake: Arc<Notify>, stop: CancellationToken) {
        let mut pause = Duration::ZERO;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = wake.notified() => {}
                () = tokio::time::sleep(pause) => {}
            }
            let busy = match self.tick(&stop).await {
                Ok(busy) => busy,
                Err(e) => {
                    tracing::error!(error = %e, "campaign runner step failed; retrying");
                    false
                }
            };
            // Expanding or waiting on the queue: look again soon; otherwise poll.
            pause = if busy {
                Duration::from_millis(20)
            } else {
                self.config.poll_interval
            };
        }
    }

    /// One pass over the active campaigns; true when any of them has work pending.
    async fn tick(&mut self, stop: &CancellationToken) -> Result<bool, StoreError> {
        let now = now_ms();
        let mut busy = false;
        let active = self
            .store
            .campaigns_in(&[CampaignStatus::Scheduled, CampaignStatus::InProgress])?;
        for campaign in active {
            if stop.is_cancelled() {
                return Ok(false);
            }
            let campaign = match campaign.status {
                CampaignStatus::Scheduled if campaign.scheduled_at.is_none_or(|at| at <= now) => {
                    let (c, _) = self
                        .store
                        .transition_campaign(
                            campaign.organization_id,
                            campaign.id,
                            vec![CampaignStatus::Scheduled],
                            move |c| {
                                c.status = CampaignStatus::InProgress;
                                c.started_at.get_or_insert(now);
                                Ok(())
                            },
                        )
                        .await?;
                    c
                }
                CampaignStatus::Scheduled => continue,
                _ => campaign,
            };
            if campaign.status != CampaignStatus::InProgress {
                continue;
            }
            self.settled.remove(&campaign.id);
            match self.step(&campaign).await {
                Ok(Step::Progress | Step::Waiting) => busy = true,
                Ok(Step::Idle) => {}
                Err(e) => {
                    tracing::error!(campaign = campaign.id, error = %e, "campaign step failed");
                }
            }
        }
        self.refresh_stats().await?;
        Ok(busy)
    }

    /// Copies exact counts into the records of campaigns whose messages are still moving.
    async fn refresh_stats(&mut self) -> Result<(), StoreError> {
        let due = self
            .last_stats
            .is_none_or(|at| at.elapsed() >= self.config.stats_every);
        if !due {
            return Ok(());
        }
        self.last_stats = Some(tokio::time::Instant::now());
        let watched = self.store.campaigns_in(&[
            CampaignStatus::InProgress,
            CampaignStatus::Paused,
            CampaignStatus::Completed,
            CampaignStatus::Cancelled,
        ])?;
        for c in watched {
            if self.settled.contains(&c.id) {
                continue;
            }
            // One scan of the campaign's messages serves the record and the check below.
            let (synced, counts) = self
                .store
                .sync_campaign_stats(c.organization_id, c.id)
                .await?;
            let moving = counts.queued + counts.submitted + counts.sent;
            if moving == 0
                && matches!(
                    synced.status,
                    CampaignStatus::Completed | CampaignStatus::Cancelled
                )
            {
                self.settled.insert(c.id);
            }
        }
        Ok(())
    }

    /// Expands the next chunk of one campaign.
    async fn step(&mut self, campaign: &Campaign) -> Result<Step, StoreError> {
        let org = campaign.organization_id;
        let mut run = RunState::of(campaign);
        if run.done {
            return self.finish(campaign, run).await.map(|()| Step::Idle);
        }
        let organization = self.store.organization(org)?;
        let content = match content(&self.store, campaign, organization.dlt_enabled) {
            Ok(c) => c,
            Err(CheckError::Blocked(blocker)) => {
                // Retrying would fail the same way every tick: a person must fix it and resume.
                tracing::warn!(campaign = campaign.id, reason = %blocker, "campaign paused");
                self.halt(campaign, &blocker).await?;
                self.store.hold_campaign_messages(org, campaign.id).await?;
                return Ok(Step::Idle);
            }
            Err(CheckError::Store(e)) => return Err(e),
        };
        if content.promotional
            && let Some(quiet) = &organization.quiet_hours
            && in_quiet_hours(quiet, now_ms())
        {
            return Ok(Step::Waiting);
        }
        let waiting = self
            .store
            .campaign_queued(org, campaign.id, self.config.queue_ahead)?;
        if waiting >= self.config.queue_ahead {
            return Ok(Step::Waiting);
        }
        let targets = self.next_targets(campaign, &run)?;
        let last = targets.len() < self.config.chunk;
        let mut messages = Vec::with_capacity(targets.len());
        for target in &targets {
            match &target.cursor {
                Cursor::Contact(id) => run.after_contact = Some(*id),
                Cursor::Phone(p) => run.after_phone = Some(p.clone()),
            }
            if target.phone.is_none() {
                continue;
            }
            if target.opted_out {
                run.skipped_opted_out += 1;
                continue;
            }
            let (variant, body) = content.pick(&target.key);
            match self.message_for(campaign, body, target) {
                Some(m) => messages.push(Message {
                    campaign_variant: variant,
                    ..m
                }),
                None => run.skipped_invalid += 1,
            }
        }
        if !messages.is_empty() {
            for result in self.store.enqueue_many(messages).await? {
                match result {
                    Ok(Enqueued::Created(_)) => run.queued += 1,
                    // Queued before a crash that lost the cursor: the same message.
                    Ok(Enqueued::Duplicate(_)) => run.queued += 1,
                    Err(StoreError::Invalid { .. }) => run.skipped_invalid += 1,
                    Err(e) => return Err(e),
                }
            }
            self.sink.nudge();
        }
        run.done = last;
        let saved = self.save(campaign, run.clone()).await?;
        // Paused or cancelled while this chunk was written: its messages must not go either.
        match saved.status {
            CampaignStatus::Paused => {
                self.store
                    .hold_campaign_messages(campaign.organization_id, campaign.id)
                    .await?;
                return Ok(Step::Progress);
            }
            CampaignStatus::Cancelled => {
                self.store
                    .cancel_campaign_messages(campaign.organization_id, campaign.id)
                    .await?;
                return Ok(Step::Progress);
            }
            _ => {}
        }
        if last {
            self.finish(campaign, run).await?;
            return Ok(Step::Idle);
        }
        Ok(Step::Progress)
    }

    /// Stores the cursor and counters, whatever the status now is (a pause that came while
    /// the chunk was written must not lose the chunk's cursor).
    async fn save(&self, campaign: &Campaign, run: RunState) -> Result<Campaign, StoreError> {
        let total = self.audience_size(campaign)?;
        self.store
            .transition_campaign(
                campaign.organization_id,
                campaign.id,
                vec![
                    CampaignStatus::InProgress,
                    CampaignStatus::Paused,
                    CampaignStatus::Cancelled,
                    CampaignStatus::Scheduled,
                ],
                move |c| {
                    run.store_into(c);
                    c.total_recipients = total;
                    Ok(())
                },
            )
            .await
            .map(|(campaign, _)| campaign)
    }

    /// Pauses a campaign that cannot send, with the reason, if it is still in progress.
    async fn halt(&self, campaign: &Campaign, blocker: &Blocker) -> Result<(), StoreError> {
        let halt = Halt {
            code: blocker.code().to_owned(),
            message: blocker.to_string(),
            at: now_ms(),
        };
        self.store
            .transition_campaign(
                campaign.organization_id,
                campaign.id,
                vec![CampaignStatus::InProgress],
                move |c| {
                    c.status = CampaignStatus::Paused;
                    halt.store_into(c);
                    Ok(())
                },
            )
            .await
            .map(|_| ())
    }

    /// Marks an expanded campaign COMPLETED, if it is still in progress.
    async fn finish(&self, campaign: &Campaign, run: RunState) -> Result<(), StoreError> {
        self.store
            .transition_campaign(
                campaign.organization_id,
                campaign.id,
                vec![CampaignStatus::InProgress],
                move |c| {
                    run.store_into(c);
                    c.status = CampaignStatus::Completed;
                    c.completed_at = Some(now_ms());
                    Ok(())
                },
            )
            .await?;
        self.store
            .sync_campaign_stats(campaign.organization_id, campaign.id)
            .await?;
        Ok(())
    }

    fn audience_size(&self, campaign: &Campaign) -> Result<u64, StoreError> {
        match campaign.group_id {
            Some(g) => Ok(self.store.group(campaign.organization_id, g)?.member_count),
            None => self.store.campaign_recipient_count(campaign.id),
        }
    }

    /// The next chunk of the audience after the cursor.
    fn next_targets(&self, campaign: &Campaign, run: &RunState) -> Result<Vec<Target>, StoreError> {
        let org = campaign.organization_id;
        let chunk = self.config.chunk;
        let mut out = Vec::with_capacity(chunk);
        match campaign.group_id {
            Some(group) => {
                for id in self
                    .store
                    .group_member_ids_after(group, run.after_contact, chunk)?
                {
                    match self.store.contact(org, id) {
                        Ok(c) => out.push(Target::contact(campaign.id, c)),
                        // Deleted since it was listed: nothing to send, move on.
                        Err(StoreError::NotFound { .. }) => out.push(Target::gone(id)),
                        Err(e) => return Err(e),
                    }
                }
            }
            None => {
                for r in self.store.campaign_recipients_after(
                    campaign.id,
                    run.after_phone.as_deref(),
                    chunk,
                )? {
                    let contact = self.store.contact_by_phone(org, &r.phone)?;
                    out.push(Target::recipient(campaign.id, r, contact));
                }
            }
        }
        Ok(out)
    }

    fn message_for(&self, campaign: &Campaign, body: &str, target: &Target) -> Option<Message> {
        let phone = target.phone.as_ref()?;
        let text = render_template(body, Some(&target.variables)).ok()?;
        let text: String = text
            .chars()
            .filter(|c| !c.is_control() || *c == '\n' || *c == '\r')
            .collect();
        if text.trim().is_empty() {
            return None;
        }
        let count = count_segments(&text);
        Some(Message {
            organization_id: campaign.organization_id,
            from_number: sender_of(campaign),
            to_number: phone.clone(),
            contact_id: target.contact_id,
            encoding: match count.encoding {
                Encoding::Gsm7 => "GSM-7",
                Encoding::Latin1 => "LATIN-1",
                Encoding::Ucs2 => "UCS-2",
            }
            .to_owned(),
            segments: u32::try_from(count.segments).unwrap_or(u32::MAX),
            body: text,
            campaign_id: Some(campaign.id),
            idempotency_key: Some(target.key.clone()),
            priority: Priority::BULK,
            ..Message::default()
        })
    }
}

/// Where the cursor is after a target.
#[derive(Debug, Clone)]
enum Cursor {
    Contact(Id),
    Phone(String),
}

/// One recipient, ready to render.
#[derive(Debug, Clone)]
struct Target {
    cursor: Cursor,
    phone: Option<String>,
    contact_id: Option<Id>,
    opted_out: bool,
    variables: Map<String, Value>,
    /// The message's idempotency key: never the phone (erasure leaves no copy of it).
    key: String,
}

/// A contact's fields as template variables: its metadata, then name, phone and email.
fn contact_variables(contact: &Contact, into: &mut Map<String, Value>) {
    if let Some(Value::Object(meta)) = &contact.metadata {
        for (k, v) in meta {
            into.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    if let Some(name) = &contact.display_name {
        into.entry("name")
            .or_insert_with(|| Value::String(name.clone()));
    }
    if let Some(email) = &contact.email {
        into.entry("email")
            .or_insert_with(|| Value::String(email.clone()));
    }
    into.entry("phone")
        .or_insert_with(|| Value::String(contact.phone_number.clone()));
}

impl Target {
    fn contact(campaign: Id, contact: Contact) -> Self {
        let mut variables = Map::new();
        contact_variables(&contact, &mut variables);
        Self {
            cursor: Cursor::Contact(contact.id),
            phone: Some(contact.phone_number),
            contact_id: Some(contact.id),
            opted_out: contact.is_opted_out,
            variables,
            key: format!("campaign:{campaign}:c{}", contact.id),
        }
    }

    fn gone(id: Id) -> Self {
        Self {
            cursor: Cursor::Contact(id),
            phone: None,
            contact_id: None,
            opted_out: false,
            variables: Map::new(),
            key: String::new(),
        }
    }

    fn recipient(campaign: Id, r: Recipient, contact: Option<Contact>) -> Self {
        let mut variables = match r.variables {
            Some(Value::Object(map)) => map,
            _ => Map::new(),
        };
        if let Some(c) = &contact {
            contact_variables(c, &mut variables);
        } else {
            variables
                .entry("phone")
                .or_insert_with(|| Value::String(r.phone.clone()));
        }
        Self {
            cursor: Cursor::Phone(r.phone.clone()),
            phone: Some(r.phone),
            contact_id: contact.as_ref().map(|c| c.id),
            opted_out: contact.is_some_and(|c| c.is_opted_out),
            variables,
            key: format!("campaign:{campaign}:r{}", r.seq),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recipients_variant_depends_on_its_key_alone_and_follows_the_shares() {
        let shares = [30, 70];
        let mut first = 0;
        for i in 0..10_000 {
            let key = format!("campaign:7:r{i}");
            let v = variant_for(&key, &shares);
            assert_eq!(v, variant_for(&key, &shares), "same key, same variant");
            if v == 0 {
                first += 1;
            }
        }
        assert!(
            (2_700..=3_300).contains(&first),
            "{first} of 10,000 in the 30% arm"
        );
        // Another campaign's recipient with the same position is drawn independently.
        let moved = (0..1_000)
            .filter(|i| {
                variant_for(&format!("campaign:7:r{i}"), &shares)
                    != variant_for(&format!("campaign:8:r{i}"), &shares)
            })
            .count();
        assert!(moved > 200, "{moved}");
        let three = [10, 10, 80];
        assert!((0..100).all(|i| variant_for(&format!("k{i}"), &three) < 3));
    }
}
