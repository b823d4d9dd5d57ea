//! Contacts: CRUD with E.164 phones unique per organization (a duplicate is 409 with the
//! holder's id), search and opt-out filter, opt-out and opt-in with their timestamps, erasure
//! (`DELETE`: the contact's messages anonymised, then the contact deleted) and a streamed CSV
//! export. The CSV import is in `import`.

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use phonenumber::Mode;
use phonenumber::country::Id as Country;
use sairex_store::model::{Contact, Id};
use sairex_store::{CONTACT_CSV_HEADER, ContactFilter, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;

use super::{ApiJson, ApiQuery, need, parse_id};
use crate::auth::{Principal, Scope};
use crate::error::{ApiError, ApiResult, envelope, ok};
use crate::listing::{self, ListParams};
use crate::state::AppState;
use crate::time;

/// Longest phone input considered (E.164 is at most 15 digits; formatting adds a few).
const MAX_PHONE_INPUT: usize = 32;
/// Largest `metadata` of a contact, serialised.
const MAX_METADATA: usize = 8 * 1024;
/// Bytes of CSV gathered before a chunk of the export is handed to the client.
const EXPORT_CHUNK: usize = 64 * 1024;
/// Export chunks buffered between the store reader and the socket (back-pressure beyond).
const EXPORT_BUFFER: usize = 4;

/// A phone in E.164 and its country, or why not (`raw` in the organization's `country`
/// when it has no `+`).
pub(crate) fn normalise_phone(
    raw: &str,
    country: Option<Country>,
) -> Result<(String, String), String> {
    let raw = crate::phone::ascii_digits(raw.trim());
    let raw = raw.as_ref();
    if raw.is_empty() {
        return Err("a phone number is required".into());
    }
    // Characters, not bytes: full-width and Arabic-Indic digits take 2 or 3 bytes each.
    if raw.chars().count() > MAX_PHONE_INPUT {
        return Err("too long for a phone number".into());
    }
    let number =
        phonenumber::parse(country, raw).map_err(|e| format!("not a phone number ({e})"))?;
    if !phonenumber::is_valid(&number) {
        return Err(format!(
            "{raw} is not a valid phone number (write it in E.164, e.g. +923001234567)"
        ));
    }
    let code = number
        .country()
        .id()
        .map(|c| c.as_ref().to_owned())
        .unwrap_or_default();
    Ok((number.format().mode(Mode::E164).to_string(), code))
}

/// A contact as the API shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ContactView {
    id: Id,
    phone_number: String,
    country_code: String,
    display_name: Option<String>,
    email: Option<String>,
    student_id: Option<Id>,
    user_id: Option<Id>,
    metadata: Option<Value>,
    is_opted_out: bool,
    opted_out_at: Option<String>,
    opted_in_at: Option<String>,
    created_at: String,
    updated_at: String,
}

impl From<Contact> for ContactView {
    fn from(c: Contact) -> Self {
        Self {
            id: c.id,
            phone_number: c.phone_number,
            country_code: c.country_code,
            display_name: c.display_name,
            email: c.email,
            student_id: c.student_id,
            user_id: c.user_id,
            metadata: c.metadata,
            is_opted_out: c.is_opted_out,
            opted_out_at: c.opted_out_at.map(time::format),
            opted_in_at: c.opted_in_at.map(time::format),
            created_at: time::format(c.created_at),
            updated_at: time::format(c.updated_at),
        }
    }
}

/// 409 for a phone the organization already has, with the holder's id.
pub(crate) fn duplicate(entity: &str, what: &str, existing_id: Id) -> Response {
    let body = serde_json::json!({
        "success": false,
        "error": {
            "code": "DUPLICATE",
            "message": format!("a {entity} with this {what} already exists"),
            "existingId": existing_id,
            "docs": crate::error::docs_link("DUPLICATE"),
        }
    });
    (StatusCode::CONFLICT, axum::Json(body)).into_response()
}

/// A store error as the answer: a conflict carries the holder's id.
pub(crate) fn store_error(err: StoreError) -> Response {
    match err {
        StoreError::Conflict {
            entity,
            what,
            existing_id,
        } => duplicate(entity, &what, existing_id),
        other => ApiError::from(other).into_response(),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct ContactBody {
    phone_number: Option<String>,
    phone: Option<String>,
    display_name: Option<String>,
    name: Option<String>,
    email: Option<String>,
    country_code: Option<String>,
    student_id: Option<Id>,
    user_id: Option<Id>,
    metadata: Option<Value>,
    is_opted_out: Option<bool>,
}

fn check_metadata(metadata: Option<&Value>) -> Result<(), ApiError> {
    match metadata {
        None | Some(Value::Null) => Ok(()),
        Some(v @ Value::Object(_)) if v.to_string().len() <= MAX_METADATA => Ok(()),
        Some(Value::Object(_)) => Err(ApiError::invalid(format!(
            "metadata: at most {MAX_METADATA} bytes"
        ))),
        Some(_) => Err(ApiError::invalid("metadata: a JSON object")),
    }
}

fn check_email(email: Option<&str>) -> Result<(), ApiError> {
    match email.map(str::trim) {
        Some(e) if !e.is_empty() && (!e.contains('@') || e.len() > 254) => {
            Err(ApiError::invalid("email: not an email address"))
        }
        _ => Ok(()),
    }
}

/// The country a local number is read in: the body's, else the organization's.
fn country_of(principal: &Principal, given: Option<&str>) -> Result<Option<Country>, ApiError> {
    match given.map(str::trim).filter(|c| !c.is_empty()) {
        Some(code) => {
            code.to_ascii_uppercase().parse().map(Some).map_err(|_| {
                ApiError::invalid("countryCode: an ISO 3166-1 alpha-2 code such as PK")
            })
        }
        None => Ok(principal.org.default_country),
    }
}

fn phone_of(
    principal: &Principal,
    raw: &str,
    country: Option<&str>,
) -> ApiResult<(String, String)> {
    let country = country_of(principal, country)?;
    normalise_phone(raw, country)
        .map_err(|e| ApiError::bad_request("INVALID_PHONE", format!("phoneNumber: {e}")))
}

/// `POST /api/sms/contacts`.
pub(crate) async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<ContactBody>,
) -> ApiResult {
    need(&principal, Scope::ContactsWrite)?;
    let raw = body.phone_number.or(body.phone).unwrap_or_default();
    let (phone, country) = phone_of(&principal, &raw, body.country_code.as_deref())?;
    check_metadata(body.metadata.as_ref())?;
    let email = body.email;
    check_email(email.as_deref())?;
    let contact = Contact {
        organization_id: principal.org_id(),
        phone_number: phone,
        country_code: country,
        display_name: body.display_name.or(body.name),
        email,
        student_id: body.student_id,
        user_id: body.user_id,
        metadata: body.metadata.filter(|m| !m.is_null()),
        is_opted_out: body.is_opted_out.unwrap_or(false),
        ..Contact::default()
    };
    match state.store().create_contact(contact).await {
        Ok(c) => Ok(envelope(StatusCode::CREATED, &ContactView::from(c))),
        Err(e) => Ok(store_error(e)),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct ListQuery {
    search: Option<String>,
    opted_out: Option<bool>,
    cursor: Option<String>,
    page: Option<u64>,
    limit: Option<u32>,
}

/// `GET /api/sms/contacts?search=&optedOut=&cursor=&limit=`.
pub(crate) async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult {
    need(&principal, Scope::ContactsRead)?;
    let request = ListParams {
        cursor: q.cursor,
        limit: q.limit,
        page: q.page,
    }
    .request()?;
    let filter = ContactFilter {
        search: q.search.map(|s| s.trim().to_owned()),
        opted_out: q.opted_out,
    };
    let listed = listing::fetch(
        request,
        |page| {
            state
                .store()
                .list_contacts(principal.org_id(), &filter, page)
        },
        |c| c.id,
    )?;
    Ok(ok(&listed.map(ContactView::from)))
}

/// `GET /api/sms/contacts/{contactId}`.
pub(crate) async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult {
    need(&principal, Scope::ContactsRead)?;
    let id = parse_id(&id, "contact")?;
    let contact = state.store().contact(principal.org_id(), id)?;
    Ok(ok(&ContactView::from(contact)))
}

/// `PUT /api/sms/contacts/{contactId}`: the fields given replace the contact's (opt-out has
/// its own routes).
pub(crate) async fn update(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ContactBody>,
) -> ApiResult {
    need(&principal, Scope::ContactsWrite)?;
    let id = parse_id(&id, "contact")?;
    let phone = match body.phone_number.or(body.phone) {
        Some(raw) => Some(phone_of(&principal, &raw, body.country_code.as_deref())?),
        None => None,
    };
    check_metadata(body.metadata.as_ref())?;
    check_email(body.email.as_deref())?;
    let name = body.display_name.or(body.name);
    let (email, metadata) = (body.email, body.metadata);
    let (student_id, user_id) = (body.student_id, body.user_id);
    let result = state
        .store()
        .update_contact(principal.org_id(), id, move |c| {
            if let Some((phone, country)) = phone {
                c.phone_number = phone;
                c.country_code = country;
            }
            if name.is_some() {
                c.display_name = name;
            }
            if email.is_some() {
                c.email = email;
            }
            if let Some(m) = metadata {
                c.metadata = (!m.is_null()).then_some(m);
            }
            if student_id.is_some() {
                c.student_id = student_id;
            }
            if user_id.is_some() {
                c.user_id = user_id;
            }
            Ok(())
        })
        .await;
    match result {
        Ok(c) => Ok(ok(&ContactView::from(c))),
        Err(e) => Ok(store_error(e)),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Erased {
    id: Id,
    erased: bool,
    messages_anonymised: u64,
}

/// `DELETE /api/sms/contacts/{contactId}`: the right to erasure. The contact's messages keep
/// a salted hash in place of the number, campaign audiences forget it, and the contact and
/// its memberships are deleted.
pub(crate) async fn erase(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult {
    need(&principal, Scope::ContactsWrite)?;
    let id = parse_id(&id, "contact")?;
    let org = principal.org_id();
    let contact = state.store().contact(org, id)?;
    // Audiences first: erase_contact deletes the record that names the phone, and a crash
    // after it would leave nothing to find the audiences' copies by.
    state
        .store()
        .forget_recipient_phone(org, &contact.phone_number)
        .await?;
    let erasure = state.store().erase_contact(org, id, false).await?;
    Ok(ok(&Erased {
        id,
        erased: true,
        messages_anonymised: erasure.messages_anonymised,
    }))
}

/// `POST /api/sms/contacts/{contactId}/opt-out`.
pub(crate) async fn opt_out(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult {
    need(&principal, Scope::ContactsWrite)?;
    let id = parse_id(&id, "contact")?;
    let contact = state
        .store()
        .opt_out_contact(principal.org_id(), id)
        .await?;
    Ok(ok(&ContactView::from(contact)))
}

/// `POST /api/sms/contacts/{contactId}/opt-in`.
pub(crate) async fn opt_in(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult {
    need(&principal, Scope::ContactsWrite)?;
    let id = parse_id(&id, "contact")?;
    let contact = state.store().opt_in_contact(principal.org_id(), id).await?;
    Ok(ok(&ContactView::from(contact)))
}

/// `GET /api/sms/contacts/{contactId}/groups`.
pub(crate) async fn groups_of(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> ApiResult {
    need(&principal, Scope::ContactsRead)?;
    let request = q.request()?;
    let id = parse_id(&id, "contact")?;
    let groups = state.store().contact_groups(principal.org_id(), id)?;
    Ok(ok(
        &listing::from_vec(request, groups, |g| g.id).map(super::groups::GroupView::from)
    ))
}

/// `GET /api/sms/contacts/export`: every contact of the organization as CSV
/// ([`CONTACT_CSV_HEADER`]), streamed: a blocking task reads the store record by record and
/// hands over chunks of about [`EXPORT_CHUNK`] bytes, waiting while the client is slow.
pub(crate) async fn export(State(state): State<AppState>, principal: Principal) -> ApiResult {
    need(&principal, Scope::ContactsRead)?;
    let org = principal.org_id();
    let store = state.store().clone();
    // Times in the organization's zone, with its offset: what a spreadsheet user reads.
    let tz = crate::zone::of(&store.organization(org)?);
    let (tx, mut rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(EXPORT_BUFFER);
    tokio::task::spawn_blocking(move || {
        let mut writer = csv::Writer::from_writer(ChunkWriter {
            buf: Vec::with_capacity(EXPORT_CHUNK * 2),
            tx: tx.clone(),
        });
        if writer.write_record(CONTACT_CSV_HEADER).is_err() {
            return;
        }
        for contact in store.export_contacts(org) {
            let row = match contact {
                Ok(c) => csv_row(&c, &tz),
                Err(e) => {
                    tracing::error!(error = %e, "contact export failed mid-stream");
                    let _ = tx.blocking_send(Err(std::io::Error::other("export failed")));
                    return;
                }
            };
            // An error here is a client that went away: stop reading the store.
            if writer.write_record(&row).is_err() {
                return;
            }
        }
        if let Ok(mut inner) = writer.into_inner() {
            inner.send();
        }
    });
    let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"contacts.csv\""),
    );
    Ok(response)
}

/// A contact as CSV fields in [`CONTACT_CSV_HEADER`] order, times as RFC 3339 (ISO 8601)
/// with the organization's offset, metadata as JSON.
fn csv_row(c: &Contact, tz: &jiff::tz::TimeZone) -> Vec<String> {
    vec![
        c.id.to_string(),
        c.phone_number.clone(),
        c.country_code.clone(),
        c.display_name.clone().unwrap_or_default(),
        c.email.clone().unwrap_or_default(),
        c.is_opted_out.to_string(),
        c.opted_out_at
            .map(|t| crate::zone::format(t, tz))
            .unwrap_or_default(),
        crate::zone::format(c.created_at, tz),
        c.metadata
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
    ]
}

/// The export's sink: CSV bytes gathered into chunks of [`EXPORT_CHUNK`] and handed to the
/// response body, waiting while the channel is full.
struct ChunkWriter {
    buf: Vec<u8>,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
}

impl ChunkWriter {
    fn send(&mut self) -> bool {
        if self.buf.is_empty() {
            return true;
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(EXPORT_CHUNK * 2));
        self.tx.blocking_send(Ok(Bytes::from(chunk))).is_ok()
    }
}

impl std::io::Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= EXPORT_CHUNK && !self.send() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the client went away",
            ));
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_become_e164_with_their_country() {
        let pk: Country = "PK".parse().unwrap();
        assert_eq!(
            normalise_phone("0300-1234567", Some(pk)).unwrap(),
            ("+923001234567".to_owned(), "PK".to_owned())
        );
        assert_eq!(
            normalise_phone("+44 20 7946 0958", Some(pk)).unwrap().1,
            "GB"
        );
        assert!(normalise_phone("12", Some(pk)).is_err());
        assert!(normalise_phone("", Some(pk)).is_err());
    }
}
