//! Templates: CRUD (the store derives `variables` from the body's `{{name}}` placeholders on
//! every save), DLT template and entity ids, approval, category and language, and a preview
//! that renders the body with variables (`{{name|default}}` falls back to the default; a
//! missing variable is a 400 naming it) and shows its encoding and segments.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use sairex_store::model::{Id, Template, TemplateCategory};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::contacts::store_error;
use super::{ApiJson, ApiQuery, need, parse_id};
use crate::auth::{Principal, Scope};
use crate::error::{ApiError, ApiResult, envelope, ok};
use crate::listing::{self, ListParams};
use crate::state::AppState;
use crate::{text, time};

/// Longest DLT id or language tag kept.
const MAX_TAG: usize = 64;

/// A template as the API shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TemplateView {
    id: Id,
    name: String,
    body: String,
    variables: Vec<String>,
    dlt_template_id: Option<String>,
    dlt_entity_id: Option<String>,
    is_approved: bool,
    category: TemplateCategory,
    language: String,
    encoding: &'static str,
    segments: u32,
    created_at: String,
    updated_at: String,
}

impl From<Template> for TemplateView {
    fn from(t: Template) -> Self {
        let analysis = text::analyse(&t.body);
        Self {
            id: t.id,
            name: t.name,
            body: t.body,
            variables: t.variables,
            dlt_template_id: t.dlt_template_id,
            dlt_entity_id: t.dlt_entity_id,
            is_approved: t.is_approved,
            category: t.category,
            language: t.language,
            encoding: analysis.encoding,
            segments: analysis.segments,
            created_at: time::format(t.created_at),
            updated_at: time::format(t.updated_at),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct TemplateBody {
    name: Option<String>,
    body: Option<String>,
    dlt_template_id: Option<String>,
    dlt_entity_id: Option<String>,
    is_approved: Option<bool>,
    category: Option<String>,
    language: Option<String>,
}

fn parse_category(raw: &str) -> Result<TemplateCategory, ApiError> {
    match raw.to_ascii_uppercase().as_str() {
        "TRANSACTIONAL" => Ok(TemplateCategory::Transactional),
        "PROMOTIONAL" => Ok(TemplateCategory::Promotional),
        "OTP" => Ok(TemplateCategory::Otp),
        _ => Err(ApiError::invalid(
            "category: one of TRANSACTIONAL, PROMOTIONAL, OTP",
        )),
    }
}

fn check_tag(field: &str, value: Option<&String>) -> Result<(), ApiError> {
    match value {
        Some(v) if v.len() > MAX_TAG || v.chars().any(char::is_control) => Err(ApiError::invalid(
            format!("{field}: at most {MAX_TAG} printable characters"),
        )),
        _ => Ok(()),
    }
}

/// Applies the body's fields to a template (only those given).
fn apply(body: TemplateBody, t: &mut Template) -> Result<(), ApiError> {
    check_tag("dltTemplateId", body.dlt_template_id.as_ref())?;
    check_tag("dltEntityId", body.dlt_entity_id.as_ref())?;
    check_tag("language", body.language.as_ref())?;
    if let Some(name) = body.name {
        t.name = name;
    }
    if let Some(text) = body.body {
        let cleaned = text::strip_controls(&text).into_owned();
        if cleaned.chars().count() > text::MAX_BODY_CHARS {
            return Err(ApiError::bad_request(
                "BODY_TOO_LONG",
                format!("body: at most {} characters", text::MAX_BODY_CHARS),
            ));
        }
        t.body = cleaned;
    }
    if let Some(category) = body.category {
        t.category = parse_category(&category)?;
    }
    if let Some(language) = body.language.filter(|l| !l.trim().is_empty()) {
        t.language = language.trim().to_owned();
    }
    if body.dlt_template_id.is_some() {
        t.dlt_template_id = body.dlt_template_id.filter(|v| !v.is_empty());
    }
    if body.dlt_entity_id.is_some() {
        t.dlt_entity_id = body.dlt_entity_id.filter(|v| !v.is_empty());
    }
    if let Some(approved) = body.is_approved {
        t.is_approved = approved;
    }
    Ok(())
}

/// `POST /api/sms/templates`.
pub(crate) async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<TemplateBody>,
) -> ApiResult {
    need(&principal, Scope::CampaignsWrite)?;
    let mut template = Template {
        organization_id: principal.org_id(),
        ..Template::default()
    };
    apply(body, &mut template)?;
    match state.store().create_template(template).await {
        Ok(t) => Ok(envelope(StatusCode::CREATED, &TemplateView::from(t))),
        Err(e) => Ok(store_error(e)),
    }
}

/// `GET /api/sms/templates`.
pub(crate) async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<ListParams>,
) -> ApiResult {
    need(&principal, Scope::ContactsRead)?;
    let listed = listing::fetch(
        q.request()?,
        |page| state.store().list_templates(principal.org_id(), page),
        |t| t.id,
    )?;
    Ok(ok(&listed.map(TemplateView::from)))
}

/// `GET /api/sms/templates/{templateId}`.
pub(crate) async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult {
    need(&principal, Scope::ContactsRead)?;
    let id = parse_id(&id, "template")?;
    Ok(ok(&TemplateView::from(
        state.store().template(principal.org_id(), id)?,
    )))
}

/// `PUT /api/sms/templates/{templateId}`.
pub(crate) async fn update(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<TemplateBody>,
) -> ApiResult {
    need(&principal, Scope::CampaignsWrite)?;
    let id = parse_id(&id, "template")?;
    // Checked here so that a bad field is the 400 it is, not a store error.
    apply(
        TemplateBody {
            name: None,
            body: body.body.clone(),
            dlt_template_id: body.dlt_template_id.clone(),
            dlt_entity_id: body.dlt_entity_id.clone(),
            is_approved: None,
            category: body.category.clone(),
            language: body.language.clone(),
        },
        &mut Template::default(),
    )?;
    let result = state
        .store()
        .update_template(principal.org_id(), id, move |t| {
            apply(body, t).map_err(|e| sairex_store::StoreError::Invalid {
                field: "template",
                problem: e.message.into_owned(),
            })
        })
        .await;
    match result {
        Ok(t) => Ok(ok(&TemplateView::from(t))),
        Err(e) => Ok(store_error(e)),
    }
}

/// `DELETE /api/sms/templates/{templateId}`.
pub(crate) async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult {
    need(&principal, Scope::CampaignsWrite)?;
    let id = parse_id(&id, "template")?;
    let template = state
        .store()
        .delete_template(principal.org_id(), id)
        .await?;
    Ok(ok(&TemplateView::from(template)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct PreviewBody {
    variables: Option<Map<String, Value>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Rendered {
    template_id: Id,
    text: String,
    encoding: &'static str,
    segments: u32,
    characters: usize,
    ucs2_characters: Vec<String>,
    variables: Vec<String>,
}

/// A template's body filled with `variables`: 400 `MISSING_VARIABLE` naming the first
/// placeholder with neither a value nor a default.
pub(crate) fn render(
    template: &Template,
    variables: Option<&Map<String, Value>>,
) -> Result<String, ApiError> {
    let rendered = text::render(&template.body, variables).map_err(|name| {
        ApiError::bad_request(
            "MISSING_VARIABLE",
            format!("variables: no value for {{{{{name}}}}} and the template gives no default"),
        )
    })?;
    Ok(text::strip_controls(&rendered).into_owned())
}

/// `POST /api/sms/templates/{templateId}/preview`: `{variables: {...}}`.
pub(crate) async fn preview(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PreviewBody>,
) -> ApiResult {
    need(&principal, Scope::ContactsRead)?;
    let id = parse_id(&id, "template")?;
    let template = state.store().template(principal.org_id(), id)?;
    let rendered = render(&template, body.variables.as_ref())?;
    let analysis = text::analyse(&rendered);
    Ok(ok(&Rendered {
        template_id: template.id,
        encoding: analysis.encoding,
        segments: analysis.segments,
        characters: analysis.units,
        ucs2_characters: text::ucs2_forcing(&rendered),
        variables: template.variables,
        text: rendered,
    }))
}
