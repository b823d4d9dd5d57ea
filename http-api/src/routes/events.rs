//! `GET /api/sms/events`: the organization's engine events as Server-Sent Events
//! (`message.status`, `message.inbound`), with keep-alives.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::{self, Stream};
use sairex_engine::dispatch::EngineEvent;
use sairex_store::model::Id;
use sairex_store::{Store, now_ms};
use serde_json::json;
use tokio::sync::broadcast::{Receiver, error::RecvError};

use crate::auth::{Principal, Scope};
use crate::error::ApiResult;
use crate::state::AppState;
use crate::time;

/// How often a comment line keeps idle connections (and proxies) open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The event for one engine event, if it is the organization's.
fn to_sse(store: &Store, org: Id, event: &EngineEvent) -> Option<Event> {
    match event {
        EngineEvent::StatusChanged {
            org: o,
            message_id,
            status,
            provider_id,
            error_code,
        } if *o == org => Some(
            Event::default().event("message.status").data(
                json!({
                    "messageId": message_id,
                    "status": status,
                    "providerId": provider_id,
                    "errorCode": error_code,
                    "at": time::format(now_ms()),
                })
                .to_string(),
            ),
        ),
        EngineEvent::Inbound { org: o, message_id } if *o == org => {
            let mut data = json!({ "messageId": message_id, "at": time::format(now_ms()) });
            if let Ok(m) = store.message(org, *message_id) {
                data["from"] = json!(m.from_number);
                data["to"] = json!(m.to_number);
                data["body"] = json!(m.body);
                data["contactId"] = json!(m.contact_id);
            }
            Some(
                Event::default()
                    .event("message.inbound")
                    .data(data.to_string()),
            )
        }
        _ => None,
    }
}

fn events(
    rx: Receiver<EngineEvent>,
    store: Store,
    org: Id,
) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(rx, move |mut rx| {
        let store = store.clone();
        async move {
            loop {
                match rx.recv().await {
                    Ok(event) => {
                        if let Some(sse) = to_sse(&store, org, &event) {
                            return Some((Ok(sse), rx));
                        }
                    }
                    // A slow reader missed events: say so, so it can re-read what it needs.
                    Err(RecvError::Lagged(n)) => {
                        let note = Event::default()
                            .event("lagged")
                            .data(json!({ "missed": n }).to_string());
                        return Some((Ok(note), rx));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        }
    })
}

/// `GET /api/sms/events`.
pub(crate) async fn stream(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Response> {
    principal.require(Scope::SmsRead)?;
    let rx = state.engine().subscribe();
    let sse = Sse::new(events(rx, state.store().clone(), principal.org_id()))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE));
    Ok(sse.into_response())
}
