//! `GET /api/sms/events`: the organization's events as Server-Sent Events (`message.status`,
//! `message.inbound`), read from the store's durable outbox, with keep-alives.
//!
//! Every event carries `id:` (its outbox position). A client that reconnects with
//! `Last-Event-ID` gets every event after that one, in order, exactly once, as long as the
//! outbox still holds them (its retention, `[store] outbox_retention`); without it, events from
//! now on. A client so far behind that what it missed was trimmed gets one `lagged` event
//! saying so and the stream ends, so it can re-read the messages it needs rather than silently
//! miss them. A slow client is never skipped ahead: it reads at its own pace from the store.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::{self, Stream};
use sairex_store::model::Id;
use sairex_store::{OutboxEntry, Store};
use serde_json::json;
use tokio::sync::watch;

use crate::auth::{Principal, Scope};
use crate::error::ApiResult;
use crate::state::AppState;
use crate::time;

/// How often a comment line keeps idle connections (and proxies) open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Entries read from the store at a time.
const READ: usize = 256;

/// The event for one outbox entry.
fn to_sse(entry: &OutboxEntry) -> Event {
    let m = &entry.message;
    let at = time::format(entry.occurred_at);
    let (name, data) = if entry.is_inbound() {
        (
            "message.inbound",
            json!({
                "messageId": m.id,
                "at": at,
                "from": m.from_number,
                "to": m.to_number,
                "body": m.body,
                "contactId": m.contact_id,
            }),
        )
    } else {
        (
            "message.status",
            json!({
                "messageId": m.id,
                "status": m.status,
                "event": entry.event_type,
                "providerId": m.provider_id,
                "errorCode": m.error_code,
                "at": at,
            }),
        )
    };
    Event::default()
        .id(entry.seq.to_string())
        .event(name)
        .data(data.to_string())
}

struct Reader {
    store: Store,
    org: Id,
    cursor: u64,
    watch: watch::Receiver<u64>,
    ready: VecDeque<Event>,
    /// Checked once: whether a resumed client's position is still in the outbox.
    check_trimmed: bool,
    done: bool,
}

impl Reader {
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(event);
            }
            if self.done {
                return None;
            }
            if std::mem::take(&mut self.check_trimmed)
                && let Ok(trimmed) = self.store.outbox_trimmed(self.org)
                && trimmed > self.cursor
            {
                self.done = true;
                return Some(Event::default().event("lagged").data(
                    json!({
                        "lastEventId": self.cursor,
                        "trimmedUpTo": trimmed,
                        "message": "events after lastEventId were removed by the outbox's retention; re-read the messages you need",
                    })
                    .to_string(),
                ));
            }
            self.watch.borrow_and_update();
            match self.store.outbox_after(self.org, self.cursor, READ) {
                Ok(entries) if !entries.is_empty() => {
                    if let Some(last) = entries.last() {
                        self.cursor = last.seq;
                    }
                    self.ready.extend(entries.iter().map(to_sse));
                }
                Ok(_) => {
                    if self.watch.changed().await.is_err() {
                        return None;
                    }
                }
                Err(e) => {
                    tracing::error!(org = self.org, error = %e, "event stream cannot read the outbox");
                    self.done = true;
                    return Some(
                        Event::default()
                            .event("error")
                            .data(json!({ "message": "the event stream failed; reconnect with Last-Event-ID" }).to_string()),
                    );
                }
            }
        }
    }
}

fn events(reader: Reader) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(reader, |mut reader| async move {
        reader.next().await.map(|event| (Ok(event), reader))
    })
}

/// `GET /api/sms/events`.
pub(crate) async fn stream(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
) -> ApiResult<Response> {
    principal.require(Scope::SmsRead)?;
    let store = state.store().clone();
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let reader = Reader {
        watch: store.outbox_watch(),
        cursor: resume.unwrap_or_else(|| store.outbox_head()),
        check_trimmed: resume.is_some(),
        org: principal.org_id(),
        store,
        ready: VecDeque::new(),
        done: false,
    };
    let sse = Sse::new(events(reader)).keep_alive(KeepAlive::new().interval(KEEP_ALIVE));
    Ok(sse.into_response())
}
