//! Outbound webhooks, their secrets sealed at rest, and the log of their deliveries
//! (`[WEBHOOK_DELIVERY][org][webhook][id]`, listed newest first).

use crate::crypto::Stored;
use crate::kv::{Batch, Kv};

use crate::error::Result;
use crate::keys::{self, prefix_end, space};
use crate::messages::{Page, PageRequest, next_id};
use crate::model::{Id, Millis, Webhook, WebhookDelivery};
use crate::value::{decode, encode};
use crate::writer::Ctx;
use crate::{Store, now_ms};

use super::{
    Record, all, create_op, delete_op, invalid, list, load, not_found, page_of, record_fields,
    update_op,
};

/// Longest webhook URL, in bytes.
const MAX_URL: usize = 2048;
/// Most of a response body a delivery keeps, in bytes.
const MAX_RESPONSE_BODY: usize = 1024;

impl Record for Webhook {
    const ENTITY: &'static str = "webhook";
    const SPACE: u8 = space::WEBHOOK;
    const SEALED: bool = true;

    record_fields!();

    fn keep_owned(&mut self, old: &Self) {
        self.last_triggered_at = old.last_triggered_at;
        self.consecutive_fails = old.consecutive_fails;
    }

    fn validate(&mut self) -> Result<()> {
        self.url = self.url.trim().to_owned();
        let scheme_ok = self.url.starts_with("https://") || self.url.starts_with("http://");
        if !scheme_ok || self.url.len() > MAX_URL || self.url.chars().any(char::is_whitespace) {
            return Err(invalid(
                "url",
                format!("must be an http(s) URL of at most {MAX_URL} bytes"),
            ));
        }
        if self.events.iter().any(|e| e.trim().is_empty()) {
            return Err(invalid("events", "contains an empty event name"));
        }
        Ok(())
    }

    fn take_secret(&mut self) -> Result<Option<Vec<u8>>> {
        let secret = std::mem::take(&mut self.secret);
        Ok((!secret.is_empty()).then(|| secret.into_bytes()))
    }

    fn put_secret(&mut self, plain: Vec<u8>) -> Result<()> {
        self.secret = String::from_utf8(plain).map_err(|_| crate::StoreError::Corrupt {
            key: format!("webhook {}", self.id),
            problem: "the secret is not UTF-8".into(),
        })?;
        Ok(())
    }
}

fn truncate(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

fn forget_deliveries(tree: &Kv, batch: &mut Batch, org: Id, webhook: Id) -> Result<()> {
    let prefix = keys::webhook_deliveries(org, webhook);
    for entry in tree.range(prefix.clone()..prefix_end(&prefix)) {
        let (key, _) = entry?;
        batch.remove(key);
    }
    Ok(())
}

/// How stale a webhook's `lastTriggeredAt` may be before a delivery rewrites it: the webhook
/// record is then rewritten about once a second under a stream of deliveries, not once each.
const LAST_TRIGGERED_PRECISION_MS: Millis = 1000;

// `delivery_op` reads and writes the record in its sealed form.
const _: () = assert!(Webhook::SEALED);

fn delivery_op(ctx: &mut Ctx, delivery: WebhookDelivery, now: Millis) -> Result<WebhookDelivery> {
    let mut batch = Batch::default();
    let (_, mut logged) = log_deliveries(
        ctx,
        &mut batch,
        delivery.organization_id,
        delivery.webhook_id,
        vec![delivery],
        now,
    )?;
    ctx.apply(batch)?;
    logged
        .pop()
        .ok_or_else(|| crate::StoreError::Storage("delivery not logged".into()))
}

/// Adds attempts (oldest first) to a webhook's delivery log in `batch`, and moves its failure
/// streak and `lastTriggeredAt` with them. Returns the streak after them, and the attempts as
/// logged (with ids).
pub(crate) fn log_deliveries(
    ctx: &mut Ctx,
    batch: &mut Batch,
    org: Id,
    webhook_id: Id,
    deliveries: Vec<WebhookDelivery>,
    now: Millis,
) -> Result<(u32, Vec<WebhookDelivery>)> {
    // The webhook's plain fields only: its secret stays sealed as stored (no decryption, no
    // new nonce), since a delivery never changes it.
    let key = Webhook::key(org, webhook_id);
    let Some(bytes) = ctx.kv.get(&key)? else {
        return Err(not_found(Webhook::ENTITY, webhook_id));
    };
    let mut stored: Stored<Webhook> = decode(&key, &bytes)?;
    let webhook = &mut stored.record;
    let mut fails = webhook.consecutive_fails;
    let mut last = webhook.last_triggered_at;
    let mut logged = Vec::with_capacity(deliveries.len());
    for mut delivery in deliveries {
        delivery.id = next_id(ctx)?;
        delivery.organization_id = org;
        delivery.webhook_id = webhook_id;
        if delivery.created_at == 0 {
            delivery.created_at = now;
        }
        if let Some(body) = &mut delivery.response_body {
            truncate(body, MAX_RESPONSE_BODY);
        }
        fails = if delivery.success {
            0
        } else {
            fails.saturating_add(1)
        };
        last = Some(last.map_or(delivery.created_at, |at| at.max(delivery.created_at)));
        batch.insert(
            keys::webhook_delivery(org, webhook_id, delivery.id),
            encode(&delivery)?,
        );
        logged.push(delivery);
    }
    let stale = match (webhook.last_triggered_at, last) {
        (None, Some(_)) => true,
        (Some(before), Some(after)) => after.saturating_sub(before) >= LAST_TRIGGERED_PRECISION_MS,
        _ => false,
    };
    // The failure streak moves with the attempts that change it, in one batch.
    if fails != webhook.consecutive_fails || stale {
        webhook.consecutive_fails = fails;
        webhook.last_triggered_at = last;
        webhook.updated_at = now;
        batch.insert(key.as_slice(), encode(&stored)?);
    }
    Ok((fails, logged))
}

impl Store {
    /// Creates a webhook; its `secret` is sealed under the master key.
    ///
    /// # Errors
    /// [`StoreError::MasterKeyRequired`](crate::StoreError::MasterKeyRequired) when it has a
    /// secret and the store has no master key; [`StoreError::Invalid`](crate::StoreError::Invalid)
    /// for a URL that is not http(s); storage errors.
    pub async fn create_webhook(&self, webhook: Webhook) -> Result<Webhook> {
        let sealer = self.sealer().cloned();
        self.writer()
            .run(move |ctx| create_op(ctx, sealer.as_ref(), webhook, now_ms()))
            .await
    }

    /// A webhook of the organization, secret in clear.
    ///
    /// # Errors
    /// [`StoreError::NotFound`](crate::StoreError::NotFound), also for another organization's.
    pub fn webhook(&self, org: Id, id: Id) -> Result<Webhook> {
        load(self.kv(), self.sealer(), org, id)
    }

    /// Changes a webhook; `lastTriggeredAt` and `consecutiveFails` are kept (deliveries move
    /// them). A changed secret is sealed anew.
    ///
    /// # Errors
    /// [`StoreError::NotFound`](crate::StoreError::NotFound), validation errors, or what
    /// `change` returns.
    pub async fn update_webhook(
        &self,
        org: Id,
        id: Id,
        change: impl FnOnce(&mut Webhook) -> Result<()> + Send + 'static,
    ) -> Result<Webhook> {
        let sealer = self.sealer().cloned();
        self.writer()
            .run(move |ctx| update_op(ctx, sealer.as_ref(), org, id, now_ms(), change))
            .await
    }

    /// Deletes a webhook, its delivery log and its place in the outbox.
    ///
    /// # Errors
    /// [`StoreError::NotFound`](crate::StoreError::NotFound), storage errors.
    pub async fn delete_webhook(&self, org: Id, id: Id) -> Result<Webhook> {
        let sealer = self.sealer().cloned();
        self.writer()
            .run(move |ctx| {
                delete_op(ctx, sealer.as_ref(), org, id, |tree, batch, _: &Webhook| {
                    forget_deliveries(tree, batch, org, id)?;
                    crate::outbox::forget_consumer(tree, batch, org, id)
                })
            })
            .await
    }

    /// The organization's webhooks, newest first.
    ///
    /// # Errors
    /// Storage errors.
    pub fn list_webhooks(&self, org: Id, page: PageRequest) -> Result<Page<Webhook>> {
        list(self.kv(), self.sealer(), org, page, None)
    }

    /// The organization's active webhooks, oldest first (what the dispatcher fans out to).
    ///
    /// # Errors
    /// Storage errors.
    pub fn active_webhooks(&self, org: Id) -> Result<Vec<Webhook>> {
        let mut hooks: Vec<Webhook> = all(self.kv(), self.sealer(), org)?;
        hooks.retain(|w| w.is_active);
        Ok(hooks)
    }

    /// Appends a delivery attempt to a webhook's log (the store assigns `id`, and `createdAt`
    /// when 0; a long response body is cut to 1 KiB), and in the same batch sets the webhook's
    /// `consecutiveFails` (0 after a success, one more after a failure) and its
    /// `lastTriggeredAt` (to the second: a stream of successful deliveries rewrites the webhook
    /// about once a second, not once each).
    ///
    /// # Errors
    /// [`StoreError::NotFound`](crate::StoreError::NotFound) when the organization has no such
    /// webhook, storage errors.
    pub async fn record_webhook_delivery(
        &self,
        delivery: WebhookDelivery,
    ) -> Result<WebhookDelivery> {
        self.writer()
            .run(move |ctx| delivery_op(ctx, delivery, now_ms()))
            .await
    }

    /// One page of a webhook's deliveries, newest first.
    ///
    /// # Errors
    /// [`StoreError::NotFound`](crate::StoreError::NotFound) for the webhook (also another
    /// organization's), storage errors.
    pub fn webhook_deliveries(
        &self,
        org: Id,
        webhook: Id,
        page: PageRequest,
    ) -> Result<Page<WebhookDelivery>> {
        if !self.kv().contains_key(Webhook::key(org, webhook))? {
            return Err(super::not_found(Webhook::ENTITY, webhook));
        }
        page_of(
            self.kv(),
            &keys::webhook_deliveries(org, webhook),
            page,
            decode,
            None,
        )
    }
}
