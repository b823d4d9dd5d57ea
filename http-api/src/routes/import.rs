//! `POST /api/sms/contacts/import`: a CSV of contacts, as the request body (`text/csv`) or
//! the `file` part of a `multipart/form-data` upload, streamed.
//!
//! Three stages run at once, joined by bounded channels so none holds the file: the request
//! body is forwarded chunk by chunk to a blocking parser (the `csv` crate wants `Read`), which
//! turns rows into contacts and hands batches of [`BATCH_ROWS`] to the store's batched upsert
//! (one writer turn, one sled batch each). A slow store stalls the parser, which stalls the
//! body: memory stays bounded whatever the file's size.
//!
//! Options come as query parameters, or as multipart text parts before the file:
//! `preview=true` (columns and the first [`PREVIEW_ROWS`] rows parsed, nothing written),
//! `groupId` (every imported contact joins the group), and `mapping`, a JSON object:
//! `{"phone": "mobile_num", "name": "student_name", "email": "mail", "countryCode": "cc",
//! "custom": {"amount": "fee_amount"}}` (each entry field → column, like `phone`: metadata key
//! `amount` from column `fee_amount`). Without
//! a mapping, columns are recognised by name (phone, phoneNumber, mobile, msisdn; name,
//! displayName; email; countryCode; isOptedOut; metadata as JSON), `id`, `optedOutAt` and
//! `createdAt` are ignored, and every other column becomes a metadata key; so an export
//! imports back as it was.

use std::collections::HashMap;
use std::io::Read;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::header;
use futures::StreamExt;
use phonenumber::country::Id as Country;
use sairex_store::model::{Contact, Id};
use sairex_store::{Recipient, RowOutcome};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};

use super::contacts::normalise_phone;
use super::{ApiQuery, need};
use crate::auth::{Principal, Scope};
use crate::error::{ApiError, ApiResult, ok};
use crate::state::AppState;

/// Rows per store batch: large enough that a writer turn's fixed cost is spread thin, small
/// enough that one batch is a few MiB at most.
pub(crate) const BATCH_ROWS: usize = 2_000;
/// Rows a preview parses.
pub(crate) const PREVIEW_ROWS: usize = 10;
/// Per-row errors listed in the report (all are counted).
const MAX_ERRORS_LISTED: usize = 1_000;
/// Body chunks buffered between the socket and the parser.
const CHUNKS_BUFFERED: usize = 8;
/// Parsed batches buffered between the parser and the store.
const BATCHES_BUFFERED: usize = 2;
/// Largest import body (a million rows of a few columns is well under it).
pub(crate) const MAX_IMPORT_BYTES: usize = 1024 * 1024 * 1024;

/// The column mapping a caller gives.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Mapping {
    phone: Option<String>,
    name: Option<String>,
    email: Option<String>,
    country_code: Option<String>,
    /// Metadata key → CSV column (field → column, the direction of every other entry).
    custom: Option<HashMap<String, String>>,
}

/// Where each field is in a row.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Columns {
    phone: usize,
    name: Option<usize>,
    email: Option<usize>,
    country_code: Option<usize>,
    is_opted_out: Option<usize>,
    /// A column of JSON objects merged into metadata (the export's `metadata`).
    metadata: Option<usize>,
    /// (column, metadata key).
    custom: Vec<(usize, String)>,
}

/// `phone_number` → `phonenumber`: header names compared without case, spaces, `_` or `-`.
fn fold(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-'))
        .flat_map(char::to_lowercase)
        .collect()
}

fn find(headers: &[String], wanted: &str) -> Result<usize, ApiError> {
    headers
        .iter()
        .position(|h| h == wanted)
        .or_else(|| headers.iter().position(|h| fold(h) == fold(wanted)))
        .ok_or_else(|| ApiError::invalid(format!("mapping: the CSV has no column {wanted:?}")))
}

fn find_any(headers: &[String], names: &[&str]) -> Option<usize> {
    headers
        .iter()
        .position(|h| names.contains(&fold(h).as_str()))
}

/// Resolves the mapping against the header row.
pub(crate) fn resolve(headers: &[String], mapping: &Mapping) -> Result<Columns, ApiError> {
    const PHONE: &[&str] = &[
        "phone",
        "phonenumber",
        "mobile",
        "mobilenumber",
        "msisdn",
        "to",
        "number",
    ];
    const NAME: &[&str] = &["name", "displayname", "fullname"];
    const EMAIL: &[&str] = &["email", "emailaddress"];
    const COUNTRY: &[&str] = &["countrycode", "country"];
    const OPTED_OUT: &[&str] = &["isoptedout", "optedout"];
    const IGNORED: &[&str] = &["id", "optedoutat", "optedinat", "createdat", "updatedat"];
    let pick = |given: &Option<String>, names: &[&str]| -> Result<Option<usize>, ApiError> {
        match given {
            Some(column) => find(headers, column).map(Some),
            None => Ok(find_any(headers, names)),
        }
    };
    let phone = pick(&mapping.phone, PHONE)?.ok_or_else(|| {
        ApiError::invalid(
            "mapping: no phone column (name one with mapping.phone, or call it phone)",
        )
    })?;
    let mut columns = Columns {
        phone,
        name: pick(&mapping.name, NAME)?,
        email: pick(&mapping.email, EMAIL)?,
        country_code: pick(&mapping.country_code, COUNTRY)?,
        is_opted_out: find_any(headers, OPTED_OUT),
        metadata: find_any(headers, &["metadata"]),
        custom: Vec::new(),
    };
    match &mapping.custom {
        Some(custom) => {
            for (key, column) in custom {
                columns.custom.push((find(headers, column)?, key.clone()));
            }
            columns.custom.sort();
        }
        None => {
            let used = [
                Some(columns.phone),
                columns.name,
                columns.email,
                columns.country_code,
                columns.is_opted_out,
                columns.metadata,
            ];
            for (i, h) in headers.iter().enumerate() {
                if !used.contains(&Some(i)) && !IGNORED.contains(&fold(h).as_str()) && !h.is_empty()
                {
                    columns.custom.push((i, h.clone()));
                }
            }
        }
    }
    Ok(columns)
}

/// `,` or `;` (or a tab), whichever the header line has most of outside quotes.
pub(crate) fn detect_delimiter(head: &[u8]) -> u8 {
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for &b in head {
        match b {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => break,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    match counts {
        [c, s, t] if s > c && s >= t => b';',
        [c, s, t] if t > c && t > s => b'\t',
        _ => b',',
    }
}

fn field(record: &csv::StringRecord, at: Option<usize>) -> Option<&str> {
    at.and_then(|i| record.get(i))
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn truthy(v: &str) -> bool {
    matches!(
        v.to_ascii_lowercase().as_str(),
        "true" | "1" | "yes" | "y" | "t"
    )
}

/// One row as a contact of `org`, or why it cannot be one.
pub(crate) fn parse_row(
    record: &csv::StringRecord,
    columns: &Columns,
    org: Id,
    default_country: Option<Country>,
) -> Result<Contact, String> {
    let raw_phone = field(record, Some(columns.phone)).ok_or("no phone number")?;
    let country = match field(record, columns.country_code) {
        Some(code) => Some(
            code.to_ascii_uppercase()
                .parse::<Country>()
                .map_err(|_| format!("countryCode: {code:?} is not an ISO 3166-1 alpha-2 code"))?,
        ),
        None => default_country,
    };
    let (phone, country_code) =
        normalise_phone(raw_phone, country).map_err(|e| format!("phone: {e}"))?;
    let mut metadata = match field(record, columns.metadata) {
        Some(json) => match serde_json::from_str::<Value>(json) {
            Ok(Value::Object(map)) => map,
            _ => return Err("metadata: not a JSON object".into()),
        },
        None => Map::new(),
    };
    for (at, key) in &columns.custom {
        if let Some(v) = field(record, Some(*at)) {
            metadata.insert(key.clone(), Value::String(v.to_owned()));
        }
    }
    let email = field(record, columns.email).map(str::to_owned);
    if email.as_deref().is_some_and(|e| !e.contains('@')) {
        return Err("email: not an email address".into());
    }
    Ok(Contact {
        organization_id: org,
        phone_number: phone,
        country_code,
        display_name: field(record, columns.name).map(str::to_owned),
        email,
        metadata: (!metadata.is_empty()).then_some(Value::Object(metadata)),
        is_opted_out: field(record, columns.is_opted_out).is_some_and(truthy),
        ..Contact::default()
    })
}

/// Reads the body chunks the async side forwards; an error from the body ends the read.
struct ChunkReader {
    rx: mpsc::Receiver<Result<Bytes, String>>,
    current: Bytes,
    /// Whether the UTF-8 byte-order mark was looked for yet.
    started: bool,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                None => return Ok(0),
            }
            if !self.started && !self.current.is_empty() {
                self.started = true;
                if self.current.starts_with(b"\xEF\xBB\xBF") {
                    self.current = self.current.slice(3..);
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

impl ChunkReader {
    /// The first bytes (after the BOM), without consuming them: enough to see the header line.
    fn peek_head(&mut self) -> std::io::Result<Vec<u8>> {
        let mut head = Vec::new();
        // Gather until a newline or 64 KiB, keeping every byte for the parser.
        while !head.contains(&b'\n') && head.len() < 64 * 1024 {
            let mut buf = [0u8; 8192];
            let n = self.read(&mut buf)?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        Ok(head)
    }
}

/// One row the parser could not use.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RowError {
    /// The row's number: the header is 1, the first data row 2 (blank lines are not rows).
    row: u64,
    reason: String,
}

/// What the parser hands the store: contacts with their line numbers.
struct Parsed {
    lines: Vec<u64>,
    contacts: Vec<Contact>,
}

/// What the parser found beyond the rows.
#[derive(Debug, Default)]
struct ParseEnd {
    columns: Vec<String>,
    delimiter: u8,
    resolved: Option<Columns>,
    rows: u64,
    blank: u64,
    errors: Vec<RowError>,
    error_count: u64,
    preview: Vec<Value>,
}

/// Parses the CSV from `reader`: header, delimiter, mapping, then each row, sending batches
/// of [`BATCH_ROWS`] contacts (nothing in preview mode, which stops after [`PREVIEW_ROWS`]).
fn parse_all(
    mut reader: ChunkReader,
    mapping: &Mapping,
    org: Id,
    country: Option<Country>,
    preview: bool,
    batches: &mpsc::Sender<Parsed>,
) -> Result<ParseEnd, ApiError> {
    let head = reader
        .peek_head()
        .map_err(|e| ApiError::bad_request("BAD_CSV", format!("reading the upload: {e}")))?;
    let delimiter = detect_delimiter(&head);
    let source = std::io::Cursor::new(head).chain(reader);
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(true)
        .from_reader(source);
    let columns: Vec<String> = csv
        .headers()
        .map_err(|e| ApiError::bad_request("BAD_CSV", format!("header row: {e}")))?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    if columns.iter().all(String::is_empty) {
        return Err(ApiError::bad_request("BAD_CSV", "the CSV is empty"));
    }
    let resolved = resolve(&columns, mapping)?;
    let mut end = ParseEnd {
        columns,
        delimiter,
        ..ParseEnd::default()
    };
    let mut batch = Parsed {
        lines: Vec::with_capacity(BATCH_ROWS),
        contacts: Vec::with_capacity(BATCH_ROWS),
    };
    let mut record = csv::StringRecord::new();
    // The header is record 1; blank lines are not records.
    let mut row = 1u64;
    loop {
        row += 1;
        let more = match csv.read_record(&mut record) {
            Ok(more) => more,
            Err(e) => {
                if let csv::ErrorKind::Utf8 { .. } = e.kind() {
                    // That row is unreadable; the reader has moved past it.
                    end.rows += 1;
                    end.error_count += 1;
                    push_error(&mut end.errors, row, "not UTF-8 text".into());
                    continue;
                }
                return Err(ApiError::bad_request(
                    "BAD_CSV",
                    format!("reading the CSV: {e}"),
                ));
            }
        };
        if !more {
            break;
        }
        if record.iter().all(|f| f.trim().is_empty()) {
            end.blank += 1;
            continue;
        }
        end.rows += 1;
        let parsed = parse_row(&record, &resolved, org, country);
        if preview {
            end.preview.push(preview_row(row, &record, parsed));
            if end.preview.len() >= PREVIEW_ROWS {
                break;
            }
            continue;
        }
        match parsed {
            Ok(contact) => {
                batch.lines.push(row);
                batch.contacts.push(contact);
                if batch.contacts.len() >= BATCH_ROWS {
                    let full = std::mem::replace(
                        &mut batch,
                        Parsed {
                            lines: Vec::with_capacity(BATCH_ROWS),
                            contacts: Vec::with_capacity(BATCH_ROWS),
                        },
                    );
                    if batches.blocking_send(full).is_err() {
                        // The store side failed and stopped; its error is the answer.
                        return Ok(end);
                    }
                }
            }
            Err(reason) => {
                end.error_count += 1;
                push_error(&mut end.errors, row, reason);
            }
        }
    }
    if !batch.contacts.is_empty() {
        let _ = batches.blocking_send(batch);
    }
    end.resolved = Some(resolved);
    Ok(end)
}

fn push_error(errors: &mut Vec<RowError>, row: u64, reason: String) {
    if errors.len() < MAX_ERRORS_LISTED {
        errors.push(RowError { row, reason });
    }
}

fn preview_row(row: u64, record: &csv::StringRecord, parsed: Result<Contact, String>) -> Value {
    let raw: Vec<&str> = record.iter().collect();
    match parsed {
        Ok(c) => serde_json::json!({
            "row": row, "raw": raw, "valid": true,
            "phoneNumber": c.phone_number, "countryCode": c.country_code,
            "displayName": c.display_name, "email": c.email, "metadata": c.metadata,
            "isOptedOut": c.is_opted_out,
        }),
        Err(reason) => {
            serde_json::json!({ "row": row, "raw": raw, "valid": false, "error": reason })
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct ImportQuery {
    preview: Option<bool>,
    group_id: Option<Id>,
    mapping: Option<String>,
}

/// Options from the query, overridden by multipart text parts.
#[derive(Debug, Default)]
struct Options {
    preview: bool,
    group: Option<Id>,
    mapping: Mapping,
}

fn parse_mapping(text: &str) -> Result<Mapping, ApiError> {
    serde_json::from_str(text)
        .map_err(|e| ApiError::invalid(format!("mapping: not a mapping object ({e})")))
}

fn options_from_query(q: ImportQuery) -> Result<Options, ApiError> {
    Ok(Options {
        preview: q.preview.unwrap_or(false),
        group: q.group_id,
        mapping: match q.mapping.as_deref() {
            Some(m) => parse_mapping(m)?,
            None => Mapping::default(),
        },
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    created: u64,
    updated: u64,
    skipped: u64,
    rows: u64,
    blank_rows: u64,
    errors: Vec<RowError>,
    errors_truncated: bool,
    /// Campaign uploads: rows whose phone the audience already had.
    #[serde(skip_serializing_if = "Option::is_none")]
    duplicates: Option<u64>,
    group_id: Option<Id>,
    duration_ms: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Preview {
    columns: Vec<String>,
    delimiter: String,
    mapping: Option<Columns>,
    rows: Vec<Value>,
}

/// Where the parsed rows go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sink {
    /// Upserted as the organization's contacts.
    Contacts,
    /// Into this campaign's own audience (columns become template variables).
    Campaign(Id),
}

/// A parsed row as a campaign recipient: its metadata, name and email are its variables.
fn recipient_of(contact: Contact) -> Recipient {
    let mut variables = match contact.metadata {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    if let Some(name) = contact.display_name {
        variables.entry("name").or_insert(Value::String(name));
    }
    if let Some(email) = contact.email {
        variables.entry("email").or_insert(Value::String(email));
    }
    Recipient {
        phone: contact.phone_number,
        variables: (!variables.is_empty()).then_some(Value::Object(variables)),
        seq: 0,
    }
}

/// Counts of what the store did.
#[derive(Debug, Default)]
struct Written {
    created: u64,
    duplicates: u64,
    updated: u64,
    invalid: u64,
    errors: Vec<RowError>,
}

/// Reads multipart text parts into `options` until the `file` part, then forwards its
/// chunks. The options go to `ready` as soon as the file starts (or the upload fails).
async fn forward_multipart(
    mut parts: Multipart,
    mut options: Options,
    ready: oneshot::Sender<Result<Options, ApiError>>,
    chunks: mpsc::Sender<Result<Bytes, String>>,
) {
    let bad = |e: axum::extract::multipart::MultipartError| {
        ApiError::bad_request("BAD_MULTIPART", e.body_text())
    };
    let mut file = loop {
        let field = match parts.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => {
                let _ = ready.send(Err(ApiError::invalid("file: no file part in the upload")));
                return;
            }
            Err(e) => {
                let _ = ready.send(Err(bad(e)));
                return;
            }
        };
        let name = field.name().unwrap_or("").to_owned();
        if name == "file" {
            break field;
        }
        if !matches!(name.as_str(), "mapping" | "preview" | "groupId") {
            continue;
        }
        let text = match field.text().await {
            Ok(text) => text,
            Err(e) => {
                let _ = ready.send(Err(bad(e)));
                return;
            }
        };
        let applied = match name.as_str() {
            "mapping" => parse_mapping(&text).map(|m| options.mapping = m),
            "preview" => {
                options.preview = truthy(text.trim());
                Ok(())
            }
            _ => text
                .trim()
                .parse::<Id>()
                .map(|g| options.group = Some(g))
                .map_err(|_| ApiError::invalid("groupId: a group id")),
        };
        if let Err(e) = applied {
            let _ = ready.send(Err(e));
            return;
        }
    };
    if ready.send(Ok(options)).is_err() {
        return;
    }
    loop {
        match file.chunk().await {
            Ok(Some(chunk)) => {
                if chunks.send(Ok(chunk)).await.is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Err(e) => {
                let _ = chunks.send(Err(e.body_text())).await;
                return;
            }
        }
    }
}

/// Forwards a plain request body.
async fn forward_body(body: Body, chunks: mpsc::Sender<Result<Bytes, String>>) {
    let mut body = body.into_data_stream();
    while let Some(chunk) = body.next().await {
        let item = chunk.map_err(|e| {
            // The body limit ends the stream with this error.
            if e.to_string().contains("length limit") {
                format!("the upload is over {MAX_IMPORT_BYTES} bytes")
            } else {
                e.to_string()
            }
        });
        let failed = item.is_err();
        if chunks.send(item).await.is_err() || failed {
            return;
        }
    }
}

async fn write_contacts(
    state: &AppState,
    org: Id,
    group: Option<Id>,
    batch: Parsed,
    written: &mut Written,
) -> Result<(), sairex_store::StoreError> {
    let outcomes = state
        .store()
        .upsert_contacts_by_phone(org, batch.contacts, group)
        .await?;
    for (outcome, line) in outcomes.into_iter().zip(batch.lines) {
        match outcome {
            RowOutcome::Created(_) => written.created += 1,
            RowOutcome::Updated(_) => written.updated += 1,
            RowOutcome::Invalid(reason) => {
                written.invalid += 1;
                push_error(&mut written.errors, line, reason);
            }
        }
    }
    Ok(())
}

/// Runs the parser on a blocking thread and writes its batches; returns the report.
async fn parse_and_write(
    state: &AppState,
    principal: &Principal,
    options: Options,
    chunks: mpsc::Receiver<Result<Bytes, String>>,
    started: tokio::time::Instant,
    sink: Sink,
) -> ApiResult {
    let org = principal.org_id();
    if let Some(group) = options.group {
        state.store().group(org, group)?;
    }
    let (batch_tx, mut batch_rx) = mpsc::channel::<Parsed>(BATCHES_BUFFERED);
    let country = principal.org.default_country;
    let preview = options.preview;
    let mapping = options.mapping;
    let parser = tokio::task::spawn_blocking(move || {
        let reader = ChunkReader {
            rx: chunks,
            current: Bytes::new(),
            started: false,
        };
        parse_all(reader, &mapping, org, country, preview, &batch_tx)
    });
    let mut written = Written::default();
    let mut failure = None;
    while let Some(batch) = batch_rx.recv().await {
        let stored = match sink {
            Sink::Contacts => write_contacts(state, org, options.group, batch, &mut written).await,
            Sink::Campaign(campaign) => {
                let recipients = batch.contacts.into_iter().map(recipient_of).collect();
                state
                    .store()
                    .add_campaign_recipients(org, campaign, recipients)
                    .await
                    .map(|(added, duplicates)| {
                        written.created += added;
                        written.duplicates += duplicates;
                    })
            }
        };
        if let Err(e) = stored {
            // Closing the channel stops the parser at its next batch.
            failure = Some(e);
            break;
        }
    }
    drop(batch_rx);
    let end = parser.await.map_err(ApiError::internal)??;
    if let Some(e) = failure {
        return Err(e.into());
    }
    if preview {
        return Ok(ok(&Preview {
            columns: end.columns,
            delimiter: char::from(end.delimiter).to_string(),
            mapping: end.resolved,
            rows: end.preview,
        }));
    }
    let mut errors = end.errors;
    errors.extend(written.errors);
    errors.sort_by_key(|e| e.row);
    let error_count = end.error_count + written.invalid;
    let truncated = error_count > errors.len() as u64;
    errors.truncate(MAX_ERRORS_LISTED);
    Ok(ok(&Report {
        created: written.created,
        updated: written.updated,
        skipped: error_count,
        rows: end.rows,
        blank_rows: end.blank,
        errors,
        errors_truncated: truncated,
        duplicates: matches!(sink, Sink::Campaign(_)).then_some(written.duplicates),
        group_id: options.group,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }))
}

/// `POST /api/sms/contacts/import`.
pub(crate) async fn import(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<ImportQuery>,
    request: Request,
) -> ApiResult {
    need(&principal, Scope::ContactsWrite)?;
    run(state, principal, q, request, Sink::Contacts).await
}

/// Streams a CSV upload (plain body or multipart) through the parser into `sink`.
pub(crate) async fn run(
    state: AppState,
    principal: Principal,
    q: ImportQuery,
    request: Request,
    sink: Sink,
) -> ApiResult {
    let started = tokio::time::Instant::now();
    let options = options_from_query(q)?;
    if options.group.is_some() && sink != Sink::Contacts {
        return Err(ApiError::invalid("groupId: only for contact imports"));
    }
    let is_multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    let (chunk_tx, chunk_rx) = mpsc::channel::<Result<Bytes, String>>(CHUNKS_BUFFERED);
    if is_multipart {
        let parts = Multipart::from_request(request, &state)
            .await
            .map_err(|e| ApiError::bad_request("BAD_MULTIPART", e.body_text()))?;
        let (ready_tx, ready_rx) = oneshot::channel();
        let forward = forward_multipart(parts, options, ready_tx, chunk_tx);
        let work = async {
            let options = ready_rx
                .await
                .map_err(|_| ApiError::bad_request("BAD_MULTIPART", "the upload ended early"))??;
            parse_and_write(&state, &principal, options, chunk_rx, started, sink).await
        };
        let ((), result) = tokio::join!(forward, work);
        result
    } else {
        let forward = forward_body(request.into_body(), chunk_tx);
        let work = parse_and_write(&state, &principal, options, chunk_rx, started, sink);
        let ((), result) = tokio::join!(forward, work);
        result
    }
}
