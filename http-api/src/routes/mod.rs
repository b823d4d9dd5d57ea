//! The route table: every route once, with its method, path, auth and summary. The router and
//! `/openapi.json` are both built from it, so a route cannot be served and left undocumented.

pub(crate) mod admin;
pub(crate) mod callbacks;
pub(crate) mod campaigns;
pub(crate) mod contacts;
pub(crate) mod events;
pub(crate) mod groups;
mod health;
pub(crate) mod import;
pub(crate) mod read;
pub(crate) mod send;
mod smpp_accounts;
pub(crate) mod templates;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, MatchedPath, Request};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, patch, post, put};
use sairex_store::model::Id;
use serde::de::DeserializeOwned;

use crate::auth::{self, Principal, Scope};
use crate::error::ApiError;
use crate::state::AppState;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (health, the spec).
    Public,
    /// An API key of the organization with this scope (`admin` implies every scope).
    Key(&'static str),
    /// The superadmin token.
    Superadmin,
}

/// One route of the API, as documented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteInfo {
    /// HTTP method ("GET").
    pub method: &'static str,
    /// Path with `{param}` placeholders, as axum and OpenAPI both spell them.
    pub path: &'static str,
    /// One line for the documentation.
    pub summary: &'static str,
    /// Who may call it.
    pub access: Access,
    /// OpenAPI tag.
    pub tag: &'static str,
    /// Its success status.
    pub status: u16,
}

const fn info(
    method: &'static str,
    path: &'static str,
    access: Access,
    tag: &'static str,
    status: u16,
    summary: &'static str,
) -> RouteInfo {
    RouteInfo {
        method,
        path,
        summary,
        access,
        tag,
        status,
    }
}

const SEND: Access = Access::Key("sms:send");
const READ: Access = Access::Key("sms:read");
const ADMIN: Access = Access::Key("admin");
const CONTACTS_READ: Access = Access::Key("contacts:read");
const CONTACTS_WRITE: Access = Access::Key("contacts:write");
const CAMPAIGNS_WRITE: Access = Access::Key("campaigns:write");

/// Every route with its handler.
fn routes() -> Vec<(RouteInfo, MethodRouter<AppState>)> {
    use Access::{Public, Superadmin};
    vec![
        (
            info(
                "GET",
                "/healthz",
                Public,
                "health",
                200,
                "Liveness: the process answers",
            ),
            get(health::healthz),
        ),
        (
            info(
                "GET",
                "/readyz",
                Public,
                "health",
                200,
                "Readiness: store open and engine running (503 otherwise)",
            ),
            get(health::readyz),
        ),
        (
            info(
                "GET",
                "/openapi.json",
                Public,
                "health",
                200,
                "This API's OpenAPI 3.1 description",
            ),
            get(health::openapi),
        ),
        (
            info(
                "GET",
                "/docs/errors",
                Public,
                "health",
                200,
                "The error catalogue (Markdown): every error code with its cause and fix",
            ),
            get(health::errors_doc),
        ),
        (
            info(
                "POST",
                "/api/sms/receive",
                Public,
                "callbacks",
                200,
                "Inbound message from an HTTP provider (?provider=twilio|vonage|veevo; signed)",
            ),
            post(callbacks::receive),
        ),
        (
            info(
                "GET",
                "/api/sms/receive",
                Public,
                "callbacks",
                200,
                "Inbound message as query parameters (Vonage; signed)",
            ),
            get(callbacks::receive),
        ),
        (
            info(
                "POST",
                "/api/sms/dlr",
                Public,
                "callbacks",
                200,
                "Delivery receipt from an HTTP provider (?provider=twilio|vonage|veevo; signed)",
            ),
            post(callbacks::dlr),
        ),
        (
            info(
                "GET",
                "/api/sms/dlr",
                Public,
                "callbacks",
                200,
                "Delivery receipt as query parameters (Vonage; signed)",
            ),
            get(callbacks::dlr),
        ),
        (
            info(
                "POST",
                "/api/admin/organizations",
                Superadmin,
                "admin",
                201,
                "Create an organization and its first admin API key (shown once)",
            ),
            post(admin::create_organization),
        ),
        (
            info(
                "GET",
                "/api/admin/organizations",
                Superadmin,
                "admin",
                200,
                "List organizations",
            ),
            get(admin::list_organizations),
        ),
        (
            info(
                "GET",
                "/api/admin/organizations/{organizationId}",
                Superadmin,
                "admin",
                200,
                "An organization",
            ),
            get(admin::get_organization),
        ),
        (
            info(
                "PATCH",
                "/api/admin/organizations/{organizationId}",
                Superadmin,
                "admin",
                200,
                "Change an organization (absent fields stay; null clears); seen by the next request",
            ),
            patch(admin::update_organization),
        ),
        (
            info(
                "POST",
                "/api/admin/organizations/{organizationId}/users",
                Superadmin,
                "admin",
                201,
                "Create a web console user of the organization (email, name, role ADMIN or MEMBER, password)",
            ),
            post(crate::console::users::admin_create_user),
        ),
        (
            info(
                "GET",
                "/api/admin/organizations/{organizationId}/users",
                Superadmin,
                "admin",
                200,
                "The organization's web console users",
            ),
            get(crate::console::users::admin_list_users),
        ),
        (
            info(
                "POST",
                "/api/admin/organizations/{organizationId}/api-keys",
                Superadmin,
                "admin",
                201,
                "Create an API key of an organization (admin scope by default; shown once)",
            ),
            post(admin::create_org_key),
        ),
        (
            info(
                "GET",
                "/api/admin/organizations/{organizationId}/api-keys",
                Superadmin,
                "admin",
                200,
                "List an organization's API keys (masked)",
            ),
            get(admin::list_org_keys),
        ),
        (
            info(
                "GET",
                "/api/admin/organizations/{organizationId}/webhooks",
                Superadmin,
                "admin",
                200,
                "List an organization's webhooks (secrets masked)",
            ),
            get(admin::list_org_webhooks),
        ),
        (
            info(
                "GET",
                "/api/admin/status",
                Superadmin,
                "admin",
                200,
                "Gateway status: every provider with its binds, queue depths per organization and priority, the store's size; ok false when something is down",
            ),
            get(admin::status),
        ),
        (
            info(
                "POST",
                "/api/sms/send",
                SEND,
                "messages",
                202,
                "Send one message (durable before 202)",
            ),
            post(send::send),
        ),
        (
            info(
                "POST",
                "/api/sms/send-bulk",
                SEND,
                "messages",
                202,
                "Send one body or template to many recipients",
            ),
            post(send::send_bulk),
        ),
        (
            info(
                "POST",
                "/api/sms/preview",
                SEND,
                "messages",
                200,
                "Encoding, segments and cost of a body, without sending",
            ),
            post(send::preview),
        ),
        (
            info(
                "GET",
                "/api/sms/status/{messageId}",
                READ,
                "messages",
                200,
                "A message's status and timeline (sms:read or sms:send)",
            ),
            get(read::status),
        ),
        (
            info(
                "GET",
                "/api/sms/messages",
                READ,
                "messages",
                200,
                "List messages with filters and pagination",
            ),
            get(read::list_messages),
        ),
        (
            info(
                "GET",
                "/api/sms/inbox",
                READ,
                "messages",
                200,
                "Inbound conversations, or one thread with ?phone=",
            ),
            get(read::inbox),
        ),
        (
            info(
                "GET",
                "/api/sms/events",
                READ,
                "messages",
                200,
                "Server-Sent Events: message.status and message.inbound",
            ),
            get(events::stream),
        ),
        (
            info(
                "GET",
                "/api/sms/analytics",
                ADMIN,
                "analytics",
                200,
                "Summary, daily, provider and campaign breakdowns for a period",
            ),
            get(read::analytics),
        ),
        (
            info(
                "GET",
                "/api/sms/providers",
                ADMIN,
                "providers",
                200,
                "List the organization's providers (credentials masked)",
            ),
            get(admin::list_providers),
        ),
        (
            info(
                "POST",
                "/api/sms/providers",
                ADMIN,
                "providers",
                201,
                "Create a provider",
            ),
            post(admin::create_provider),
        ),
        (
            info(
                "GET",
                "/api/sms/providers/{providerId}",
                ADMIN,
                "providers",
                200,
                "A provider (credentials masked)",
            ),
            get(admin::get_provider),
        ),
        (
            info(
                "PUT",
                "/api/sms/providers/{providerId}",
                ADMIN,
                "providers",
                200,
                "Change a provider",
            ),
            put(admin::update_provider),
        ),
        (
            info(
                "DELETE",
                "/api/sms/providers/{providerId}",
                ADMIN,
                "providers",
                200,
                "Delete a provider",
            ),
            delete(admin::delete_provider),
        ),
        (
            info(
                "POST",
                "/api/sms/providers/{providerId}/test",
                ADMIN,
                "providers",
                202,
                "Send a test message through this provider",
            ),
            post(admin::test_provider),
        ),
        (
            info(
                "GET",
                "/api/sms/api-keys",
                ADMIN,
                "api-keys",
                200,
                "List API keys (prefix only)",
            ),
            get(admin::list_keys),
        ),
        (
            info(
                "POST",
                "/api/sms/api-keys",
                ADMIN,
                "api-keys",
                201,
                "Create an API key (the key is shown once)",
            ),
            post(admin::create_key),
        ),
        (
            info(
                "PUT",
                "/api/sms/api-keys/{keyId}",
                ADMIN,
                "api-keys",
                200,
                "Change a key's name, scopes, limits, expiry or state",
            ),
            put(admin::update_key),
        ),
        (
            info(
                "DELETE",
                "/api/sms/api-keys/{keyId}",
                ADMIN,
                "api-keys",
                200,
                "Revoke a key",
            ),
            delete(admin::revoke_key),
        ),
        (
            info(
                "POST",
                "/api/sms/api-keys/{keyId}/rotate",
                ADMIN,
                "api-keys",
                201,
                "Replace a key by a new one with the same settings (shown once)",
            ),
            post(admin::rotate_key),
        ),
        (
            info(
                "GET",
                "/api/sms/smpp-accounts",
                ADMIN,
                "smpp-accounts",
                200,
                "List SMPP accounts (customers binding to the SMPP server)",
            ),
            get(smpp_accounts::list),
        ),
        (
            info(
                "POST",
                "/api/sms/smpp-accounts",
                ADMIN,
                "smpp-accounts",
                201,
                "Create an SMPP account (its password is shown once)",
            ),
            post(smpp_accounts::create),
        ),
        (
            info(
                "GET",
                "/api/sms/smpp-accounts/{accountId}",
                ADMIN,
                "smpp-accounts",
                200,
                "An SMPP account",
            ),
            get(smpp_accounts::get),
        ),
        (
            info(
                "PATCH",
                "/api/sms/smpp-accounts/{accountId}",
                ADMIN,
                "smpp-accounts",
                200,
                "Change an SMPP account (a new password is shown once)",
            ),
            patch(smpp_accounts::update),
        ),
        (
            info(
                "DELETE",
                "/api/sms/smpp-accounts/{accountId}",
                ADMIN,
                "smpp-accounts",
                200,
                "Delete an SMPP account (its sessions are unbound)",
            ),
            delete(smpp_accounts::delete),
        ),
        (
            info(
                "GET",
                "/api/sms/webhooks",
                ADMIN,
                "webhooks",
                200,
                "List webhooks",
            ),
            get(admin::list_webhooks),
        ),
        (
            info(
                "POST",
                "/api/sms/webhooks",
                ADMIN,
                "webhooks",
                201,
                "Create a webhook (its secret is shown once)",
            ),
            post(admin::create_webhook),
        ),
        (
            info(
                "GET",
                "/api/sms/webhooks/{webhookId}",
                ADMIN,
                "webhooks",
                200,
                "A webhook",
            ),
            get(admin::get_webhook),
        ),
        (
            info(
                "PUT",
                "/api/sms/webhooks/{webhookId}",
                ADMIN,
                "webhooks",
                200,
                "Change a webhook",
            ),
            put(admin::update_webhook),
        ),
        (
            info(
                "DELETE",
                "/api/sms/webhooks/{webhookId}",
                ADMIN,
                "webhooks",
                200,
                "Delete a webhook",
            ),
            delete(admin::delete_webhook),
        ),
        (
            info(
                "POST",
                "/api/sms/webhooks/{webhookId}/test",
                ADMIN,
                "webhooks",
                200,
                "Send a signed test event now",
            ),
            post(admin::test_webhook),
        ),
        (
            info(
                "GET",
                "/api/sms/webhooks/{webhookId}/deliveries",
                ADMIN,
                "webhooks",
                200,
                "A webhook's delivery log, newest first",
            ),
            get(admin::webhook_deliveries),
        ),
        (
            info(
                "GET",
                "/api/sms/contacts",
                CONTACTS_READ,
                "contacts",
                200,
                "List contacts: search by name or phone, filter by optedOut",
            ),
            get(contacts::list),
        ),
        (
            info(
                "POST",
                "/api/sms/contacts",
                CONTACTS_WRITE,
                "contacts",
                201,
                "Create a contact (E.164; a phone the organization has is 409 with existingId)",
            ),
            post(contacts::create),
        ),
        (
            info(
                "GET",
                "/api/sms/contacts/export",
                CONTACTS_READ,
                "contacts",
                200,
                "Every contact as CSV, streamed",
            ),
            get(contacts::export),
        ),
        (
            info(
                "POST",
                "/api/sms/contacts/import",
                CONTACTS_WRITE,
                "contacts",
                200,
                "Import contacts from CSV (text/csv or multipart): upsert by phone, or preview=true",
            ),
            post(import::import).layer(DefaultBodyLimit::max(import::MAX_IMPORT_BYTES)),
        ),
        (
            info(
                "GET",
                "/api/sms/contacts/{contactId}",
                CONTACTS_READ,
                "contacts",
                200,
                "A contact",
            ),
            get(contacts::get),
        ),
        (
            info(
                "PUT",
                "/api/sms/contacts/{contactId}",
                CONTACTS_WRITE,
                "contacts",
                200,
                "Change a contact",
            ),
            put(contacts::update),
        ),
        (
            info(
                "DELETE",
                "/api/sms/contacts/{contactId}",
                CONTACTS_WRITE,
                "contacts",
                200,
                "Erase a contact: its messages anonymised, the contact deleted",
            ),
            delete(contacts::erase),
        ),
        (
            info(
                "POST",
                "/api/sms/contacts/{contactId}/opt-out",
                CONTACTS_WRITE,
                "contacts",
                200,
                "Opt a contact out (optedOutAt)",
            ),
            post(contacts::opt_out),
        ),
        (
            info(
                "POST",
                "/api/sms/contacts/{contactId}/opt-in",
                CONTACTS_WRITE,
                "contacts",
                200,
                "Opt a contact back in (optedInAt)",
            ),
            post(contacts::opt_in),
        ),
        (
            info(
                "GET",
                "/api/sms/contacts/{contactId}/groups",
                CONTACTS_READ,
                "contacts",
                200,
                "The groups a contact is in",
            ),
            get(contacts::groups_of),
        ),
        (
            info(
                "GET",
                "/api/sms/groups",
                CONTACTS_READ,
                "groups",
                200,
                "List groups",
            ),
            get(groups::list),
        ),
        (
            info(
                "POST",
                "/api/sms/groups",
                CONTACTS_WRITE,
                "groups",
                201,
                "Create a group",
            ),
            post(groups::create),
        ),
        (
            info(
                "GET",
                "/api/sms/groups/{groupId}",
                CONTACTS_READ,
                "groups",
                200,
                "A group with its exact memberCount",
            ),
            get(groups::get),
        ),
        (
            info(
                "PUT",
                "/api/sms/groups/{groupId}",
                CONTACTS_WRITE,
                "groups",
                200,
                "Change a group",
            ),
            put(groups::update),
        ),
        (
            info(
                "DELETE",
                "/api/sms/groups/{groupId}",
                CONTACTS_WRITE,
                "groups",
                200,
                "Delete a group (the contacts stay)",
            ),
            delete(groups::delete),
        ),
        (
            info(
                "GET",
                "/api/sms/groups/{groupId}/members",
                CONTACTS_READ,
                "groups",
                200,
                "A group's members",
            ),
            get(groups::members),
        ),
        (
            info(
                "POST",
                "/api/sms/groups/{groupId}/members",
                CONTACTS_WRITE,
                "groups",
                200,
                "Add members by contactIds or phones",
            ),
            post(groups::add_members),
        ),
        (
            info(
                "DELETE",
                "/api/sms/groups/{groupId}/members",
                CONTACTS_WRITE,
                "groups",
                200,
                "Remove members by contactIds or phones",
            ),
            delete(groups::remove_members),
        ),
        (
            info(
                "GET",
                "/api/sms/templates",
                CONTACTS_READ,
                "templates",
                200,
                "List templates",
            ),
            get(templates::list),
        ),
        (
            info(
                "POST",
                "/api/sms/templates",
                CAMPAIGNS_WRITE,
                "templates",
                201,
                "Create a template (variables from its {{placeholders}})",
            ),
            post(templates::create),
        ),
        (
            info(
                "GET",
                "/api/sms/templates/{templateId}",
                CONTACTS_READ,
                "templates",
                200,
                "A template",
            ),
            get(templates::get),
        ),
        (
            info(
                "PUT",
                "/api/sms/templates/{templateId}",
                CAMPAIGNS_WRITE,
                "templates",
                200,
                "Change a template",
            ),
            put(templates::update),
        ),
        (
            info(
                "DELETE",
                "/api/sms/templates/{templateId}",
                CAMPAIGNS_WRITE,
                "templates",
                200,
                "Delete a template",
            ),
            delete(templates::delete),
        ),
        (
            info(
                "POST",
                "/api/sms/templates/{templateId}/preview",
                CONTACTS_READ,
                "templates",
                200,
                "Render a template with variables: text, encoding, segments",
            ),
            post(templates::preview),
        ),
        (
            info(
                "GET",
                "/api/sms/campaigns",
                CONTACTS_READ,
                "campaigns",
                200,
                "List campaigns, optionally by status",
            ),
            get(campaigns::list),
        ),
        (
            info(
                "POST",
                "/api/sms/campaigns",
                CAMPAIGNS_WRITE,
                "campaigns",
                201,
                "Create a campaign: template or body, group or inline recipients, now or scheduledAt",
            ),
            post(campaigns::create),
        ),
        (
            info(
                "GET",
                "/api/sms/campaigns/{campaignId}",
                CONTACTS_READ,
                "campaigns",
                200,
                "A campaign",
            ),
            get(campaigns::get),
        ),
        (
            info(
                "PUT",
                "/api/sms/campaigns/{campaignId}",
                CAMPAIGNS_WRITE,
                "campaigns",
                200,
                "Change a draft or scheduled campaign",
            ),
            put(campaigns::update),
        ),
        (
            info(
                "DELETE",
                "/api/sms/campaigns/{campaignId}",
                CAMPAIGNS_WRITE,
                "campaigns",
                200,
                "Delete a campaign that is not being sent (its messages stay)",
            ),
            delete(campaigns::delete),
        ),
        (
            info(
                "POST",
                "/api/sms/campaigns/{campaignId}/recipients",
                CAMPAIGNS_WRITE,
                "campaigns",
                200,
                "Upload the audience as CSV (columns mapped to template variables; preview=true)",
            ),
            post(campaigns::upload).layer(DefaultBodyLimit::max(import::MAX_IMPORT_BYTES)),
        ),
        (
            info(
                "POST",
                "/api/sms/campaigns/{campaignId}/start",
                CAMPAIGNS_WRITE,
                "campaigns",
                202,
                "Start sending (now, or at scheduledAt)",
            ),
            post(campaigns::start),
        ),
        (
            info(
                "POST",
                "/api/sms/campaigns/{campaignId}/pause",
                CAMPAIGNS_WRITE,
                "campaigns",
                200,
                "Pause: no more messages are expanded",
            ),
            post(campaigns::pause),
        ),
        (
            info(
                "POST",
                "/api/sms/campaigns/{campaignId}/resume",
                CAMPAIGNS_WRITE,
                "campaigns",
                200,
                "Resume where it left off",
            ),
            post(campaigns::resume),
        ),
        (
            info(
                "POST",
                "/api/sms/campaigns/{campaignId}/cancel",
                CAMPAIGNS_WRITE,
                "campaigns",
                200,
                "Cancel for good",
            ),
            post(campaigns::cancel),
        ),
        (
            info(
                "GET",
                "/api/sms/campaigns/{campaignId}/stats",
                CONTACTS_READ,
                "campaigns",
                200,
                "Live stats: recipients, queued, sent, delivered, failed, rejected, skipped",
            ),
            get(campaigns::stats),
        ),
    ]
}

/// Request schemas of the contact, group, template and campaign routes, for `/openapi.json`.
pub(crate) fn request_schema_of(method: &str, path: &str) -> Option<serde_json::Value> {
    use serde_json::json;
    let contact = json!({ "type": "object", "properties": {
        "phoneNumber": { "type": "string", "description": "E.164, or local in countryCode / the organization's country" },
        "displayName": { "type": "string" }, "email": { "type": "string" },
        "countryCode": { "type": "string", "example": "PK" }, "metadata": { "type": "object" },
        "studentId": { "type": "integer" }, "userId": { "type": "integer" }, "isOptedOut": { "type": "boolean" } } });
    let members = json!({ "type": "object", "properties": {
        "contactIds": { "type": "array", "items": { "type": "integer" } },
        "phones": { "type": "array", "items": { "type": "string" } } } });
    let template = json!({ "type": "object", "properties": {
        "name": { "type": "string" }, "body": { "type": "string", "description": "{{name}} or {{name|default}} placeholders" },
        "category": { "type": "string", "enum": ["TRANSACTIONAL", "PROMOTIONAL", "OTP"] },
        "language": { "type": "string" }, "dltTemplateId": { "type": "string" },
        "dltEntityId": { "type": "string" }, "isApproved": { "type": "boolean" } } });
    let campaign = json!({ "type": "object", "properties": {
        "name": { "type": "string" }, "description": { "type": "string" },
        "templateId": { "type": "integer" }, "messageBody": { "type": "string" },
        "groupId": { "type": "integer" }, "from": { "type": "string" },
        "scheduledAt": { "type": "string", "format": "date-time" }, "start": { "type": "boolean" },
        "variants": { "type": "array", "maxItems": 10, "description": "A/B test: 2 to 10 variants whose percent sum to 100, each with messageBody or templateId (then leave the campaign's own out); [] removes them",
            "items": { "type": "object", "required": ["percent"], "properties": {
                "name": { "type": "string", "description": "Default A, B, …" },
                "percent": { "type": "integer", "minimum": 1, "maximum": 100 },
                "messageBody": { "type": "string" }, "templateId": { "type": "integer" } } } },
        "recipients": { "type": "array", "maxItems": 10000, "items": { "type": "object",
            "properties": { "to": { "type": "string" }, "variables": { "type": "object" } } } } } });
    match (method, path) {
        ("POST" | "PUT", "/api/sms/contacts" | "/api/sms/contacts/{contactId}") => Some(contact),
        ("POST" | "DELETE", "/api/sms/groups/{groupId}/members") => Some(members),
        ("POST" | "PUT", "/api/sms/groups" | "/api/sms/groups/{groupId}") => Some(json!({
            "type": "object", "properties": { "name": { "type": "string" },
            "description": { "type": "string" }, "color": { "type": "string", "example": "#3B82F6" } } })),
        ("POST" | "PUT", "/api/sms/templates" | "/api/sms/templates/{templateId}") => {
            Some(template)
        }
        ("POST", "/api/admin/organizations/{organizationId}/users") => Some(json!({
            "type": "object", "required": ["email", "password"], "properties": {
            "email": { "type": "string", "format": "email" }, "name": { "type": "string" },
            "role": { "type": "string", "enum": ["ADMIN", "MEMBER"], "default": "MEMBER" },
            "password": { "type": "string", "minLength": 8, "description": "stored as argon2id only" } } })),
        ("POST", "/api/sms/templates/{templateId}/preview") => Some(json!({
            "type": "object", "properties": { "variables": { "type": "object" } } })),
        ("POST" | "PUT", "/api/sms/campaigns" | "/api/sms/campaigns/{campaignId}") => {
            Some(campaign)
        }
        _ => None,
    }
}

/// The routes that honour `Idempotency-Key` (see `crate::idempotency`).
pub(crate) const IDEMPOTENT_ROUTES: [(&str, &str); 3] = [
    ("POST", "/api/sms/send"),
    ("POST", "/api/sms/send-bulk"),
    ("POST", "/api/sms/campaigns"),
];

/// Every route the router serves, in table order.
pub fn route_table() -> Vec<RouteInfo> {
    routes().into_iter().map(|(info, _)| info).collect()
}

/// The router over `state`.
pub(crate) fn build(state: AppState) -> Router {
    let mut public = Router::new();
    let mut keyed = Router::new();
    let mut admin = Router::new();
    for (info, mut handler) in routes() {
        if IDEMPOTENT_ROUTES.contains(&(info.method, info.path)) {
            handler = handler.layer(from_fn_with_state(state.clone(), crate::idempotency::layer));
        }
        match info.access {
            Access::Public => public = public.route(info.path, handler),
            Access::Key(_) => keyed = keyed.route(info.path, handler),
            Access::Superadmin => admin = admin.route(info.path, handler),
        }
    }
    // route_layer: only matched routes authenticate, so an unknown path is a plain 404.
    let keyed = keyed
        .route_layer(from_fn_with_state(state.clone(), auth::authenticate))
        .route_layer(from_fn(count_request));
    let admin = admin
        .route_layer(from_fn_with_state(state.clone(), auth::superadmin))
        .route_layer(from_fn(count_request));
    let public = public.route_layer(from_fn(count_request));
    Router::new()
        .merge(public)
        .merge(keyed)
        .merge(admin)
        .merge(crate::console::router(state.clone()))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.settings().body_limit))
        .with_state(state)
}

/// Counts every routed request: `sms_api_requests_total{method, route, status}`. Labels are
/// static strings for every route and the usual statuses, so counting allocates nothing.
async fn count_request(path: MatchedPath, request: Request, next: Next) -> Response {
    let method = method_label(request.method());
    let route = route_label(path.as_str());
    let response = next.run(request).await;
    metrics::counter!(
        "sms_api_requests_total",
        "method" => method,
        "route" => route,
        "status" => status_label(response.status()),
    )
    .increment(1);
    response
}

fn method_label(method: &Method) -> metrics::SharedString {
    match *method {
        Method::GET => "GET".into(),
        Method::POST => "POST".into(),
        Method::PUT => "PUT".into(),
        Method::DELETE => "DELETE".into(),
        Method::PATCH => "PATCH".into(),
        ref other => other.as_str().to_owned().into(),
    }
}

fn route_label(path: &str) -> metrics::SharedString {
    static PATHS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    let paths = PATHS.get_or_init(|| route_table().into_iter().map(|r| r.path).collect());
    match paths.iter().find(|p| **p == path) {
        Some(p) => (*p).into(),
        None => path.to_owned().into(),
    }
}

fn status_label(status: StatusCode) -> metrics::SharedString {
    const COMMON: [&str; 16] = [
        "200", "201", "202", "400", "401", "402", "403", "404", "405", "409", "413", "422", "429",
        "500", "502", "503",
    ];
    let code = status.as_str();
    match COMMON.iter().find(|c| **c == code) {
        Some(c) => (*c).into(),
        None => code.to_owned().into(),
    }
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such route")
}

async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        format!("{method} is not allowed on this route"),
    )
}

/// A JSON body: a body over the limit is 413; malformed JSON is 400 naming the problem; an
/// unknown field or a value of the wrong type is 400 naming the field (see `crate::json`).
/// No content type is required.
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "PAYLOAD_TOO_LARGE",
                        "the request body is over the size limit",
                    )
                } else {
                    ApiError::bad_request("BAD_REQUEST", rejection.body_text())
                }
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_request(
                "MALFORMED_JSON",
                "the request body is empty; a JSON object is expected",
            ));
        }
        crate::json::parse(&bytes).map(ApiJson)
    }
}

/// Query parameters: a bad one is 400 naming it.
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| ApiQuery(q.0))
            .map_err(|e| ApiError::bad_request("BAD_QUERY", e.body_text()))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("missing API key"))
    }
}

/// A record id from the path: anything but a positive integer names no record (404).
pub(crate) fn parse_id(raw: &str, what: &str) -> Result<Id, ApiError> {
    raw.parse::<Id>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::not_found(what))
}

/// The scope a key needs, checked by handlers.
pub(crate) fn need(principal: &Principal, scope: Scope) -> Result<(), ApiError> {
    principal.require(scope)
}

/// Response with no content but the envelope.
pub(crate) fn done() -> Response {
    crate::error::ok(&serde_json::json!({ "ok": true })).into_response()
}
