//! Groups: CRUD with a name unique per organization, and members added or removed by contact
//! ids or phones; `memberCount` is the store's, exact.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use sairex_store::model::{Group, Id};
use sairex_store::{MAX_MEMBERS_PER_CALL, MembershipChange};
use serde::{Deserialize, Serialize};

use super::contacts::{ContactView, normalise_phone, store_error};
use super::{ApiJson, ApiQuery, need, parse_id};
use crate::auth::{Principal, Scope};
use crate::error::{ApiError, ApiResult, envelope, ok};
use crate::listing::{self, ListParams};
use crate::state::AppState;
use crate::time;

/// A group as the API shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GroupView {
    id: Id,
    name: String,
    description: Option<String>,
    color: Option<String>,
    member_count: u64,
    created_at: String,
    updated_at: String,
}

impl From<Group> for GroupView {
    fn from(g: Group) -> Self {
        Self {
            id: g.id,
            name: g.name,
            description: g.description,
            color: g.color,
            member_count: g.member_count,
            created_at: time::format(g.created_at),
            updated_at: time::format(g.updated_at),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct GroupBody {
    name: Option<String>,
    description: Option<String>,
    color: Option<String>,
}

fn check_color(color: Option<&str>) -> Result<(), ApiError> {
    match color {
        Some(c)
            if !(c.len() == 7
                && c.starts_with('#')
                && c[1..].bytes().all(|b| b.is_ascii_hexdigit())) =>
        {
            Err(ApiError::invalid("color: a hex colour such as #3B82F6"))
        }
        _ => Ok(()),
    }
}

/// `POST /api/sms/groups`.
pub(crate) async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<GroupBody>,
) -> ApiResult {
    need(&principal, Scope::ContactsWrite)?;
    check_color(body.color.as_deref())?;
    let group = Group {
        organization_id: principal.org_id(),
        name: body.name.unwrap_or_default(),
        description: body.description,
        color: body.color,
        ..Group::default()
    };
    match state.store().create_group(group).await {
        Ok(g) => Ok(envelope(StatusCode::CREATED, &GroupView::from(g))),
        Err(e) => Ok(store_error(e)),
    }
}

/// `GET /api/sms/groups`.
pub(crate) async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<ListParams>,
) -> ApiResult {
    need(&principal, Scope::ContactsRead)?;
    let listed = listing::fetch(
        q.request()?,
        |page| state.store().list_groups(principal.org_id(), page),
        |g| g.id,
    )?;
    Ok(ok(&listed.map(GroupView::from)))
}

/// `GET /api/sms/groups/{groupId}`.
pub(crate) async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult {
    need(&principal, Scope::ContactsRead)?;
    let id = parse_id(&id, "group")?;
    Ok(ok(&GroupView::from(
        state.store().group(principal.org_id(), id)?,
    )))
}

/// `PUT /api/sms/groups/{groupId}`.
pub(crate) async fn update(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<GroupBody>,
) -> ApiResult {
    need(&principal, Scope::ContactsWrite)?;
    let id = parse_id(&id, "group")?;
    check_color(body.color.as_deref())?;
    let result = state
        .store()
        .update_group(principal.org_id(), id, move |g| {
            if let Some(name) = body.name {
                g.name = name;
            }
            if body.description.is_some() {
                g.description = body.description;
            }
            if body.color.is_some() {
                g.color = body.color;
            }
            Ok(())
        })
        .await;
    match result {
        Ok(g) => Ok(ok(&GroupView::from(g))),
        Err(e) => Ok(store_error(e)),
    }
}

/// `DELETE /api/sms/groups/{groupId}`: the group and its memberships (the contacts stay).
pub(crate) async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult {
    need(&principal, Scope::ContactsWrite)?;
    let id = parse_id(&id, "group")?;
    let group = state.store().delete_group(principal.org_id(), id).await?;
    Ok(ok(&GroupView::from(group)))
}

/// `GET /api/sms/groups/{groupId}/members`.
pub(crate) async fn members(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> ApiResult {
    need(&principal, Scope::ContactsRead)?;
    let id = parse_id(&id, "group")?;
    let listed = listing::fetch(
        q.request()?,
        |page| state.store().group_members(principal.org_id(), id, page),
        |c| c.id,
    )?;
    Ok(ok(&listed.map(ContactView::from)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct MembersBody {
    contact_ids: Vec<Id>,
    phones: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MembersChanged {
    group: GroupView,
    changed: Vec<Id>,
    unchanged: Vec<Id>,
    unknown_ids: Vec<Id>,
    unknown_phones: Vec<String>,
}

/// The contact ids named by a members body: ids as given, phones looked up (a phone that is
/// not a contact of the organization is reported, not created).
fn resolve_members(
    state: &AppState,
    principal: &Principal,
    body: MembersBody,
) -> Result<(Vec<Id>, Vec<String>), ApiError> {
    if body.contact_ids.is_empty() && body.phones.is_empty() {
        return Err(ApiError::invalid("contactIds or phones: at least one"));
    }
    if body.contact_ids.len() + body.phones.len() > MAX_MEMBERS_PER_CALL {
        return Err(ApiError::invalid(format!(
            "contactIds and phones: at most {MAX_MEMBERS_PER_CALL} per call"
        )));
    }
    let mut ids = body.contact_ids;
    let mut unknown = Vec::new();
    for raw in body.phones {
        let found = match normalise_phone(&raw, principal.org.default_country) {
            Ok((phone, _)) => state.store().contact_by_phone(principal.org_id(), &phone)?,
            Err(_) => None,
        };
        match found {
            Some(c) => ids.push(c.id),
            None => unknown.push(raw),
        }
    }
    Ok((ids, unknown))
}

fn changed_view(change: MembershipChange, unknown_phones: Vec<String>) -> MembersChanged {
    MembersChanged {
        group: GroupView::from(change.group),
        changed: change.changed,
        unchanged: change.unchanged,
        unknown_ids: change.unknown,
        unknown_phones,
    }
}

/// `POST /api/sms/groups/{groupId}/members`: `{contactIds: [..], phones: [..]}`.
pub(crate) async fn add_members(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<MembersBody>,
) -> ApiResult {
    need(&principal, Scope::ContactsWrite)?;
    let id = parse_id(&id, "group")?;
    // The group is checked first, so a bad group is 404 whatever the body names.
    state.store().group(principal.org_id(), id)?;
    let (ids, unknown) = resolve_members(&state, &principal, body)?;
    let change = state
        .store()
        .add_group_members(principal.org_id(), id, ids)
        .await?;
    Ok(ok(&changed_view(change, unknown)))
}

/// `DELETE /api/sms/groups/{groupId}/members`: the same body as adding.
pub(crate) async fn remove_members(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<MembersBody>,
) -> ApiResult {
    need(&principal, Scope::ContactsWrite)?;
    let id = parse_id(&id, "group")?;
    state.store().group(principal.org_id(), id)?;
    let (ids, unknown) = resolve_members(&state, &principal, body)?;
    let change = state
        .store()
        .remove_group_members(principal.org_id(), id, ids)
        .await?;
    Ok(ok(&changed_view(change, unknown)))
}
