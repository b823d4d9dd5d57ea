//! The OpenAPI 3.1 description, generated from the route table (so every served route is in
//! it), with the request schemas of the public endpoints spelled out.

use serde_json::{Map, Value, json};

use crate::routes::{Access, route_table};

fn send_schema() -> Value {
    json!({
        "type": "object",
        "required": ["to"],
        "properties": {
            "to": { "type": "string", "description": "E.164, or a local number in the organization's default country" },
            "body": { "type": "string", "maxLength": 1600, "description": "Control characters are stripped; {{variables}} filled from variables" },
            "templateId": { "type": "integer" },
            "variables": { "type": "object", "additionalProperties": true },
            "from": { "type": "string", "maxLength": 20 },
            "provider": { "type": ["string", "integer"], "description": "Provider id, name (smpp, twilio…) or display name" },
            "priority": { "type": "string", "enum": ["otp", "transactional", "bulk"] },
            "scheduledAt": { "type": "string", "format": "date-time" },
            "validityPeriod": { "type": ["integer", "string"], "description": "Seconds, or a duration such as \"2h\"" },
            "callbackUrl": { "type": "string", "format": "uri" },
            "metadata": { "type": "object", "additionalProperties": true },
            "idempotencyKey": { "type": "string", "minLength": 1, "maxLength": 255, "description": "Same key space as the Idempotency-Key header" }
        }
    })
}

fn request_schema(method: &str, path: &str) -> Option<Value> {
    match (method, path) {
        ("POST", "/api/sms/send") => Some(send_schema()),
        ("POST", "/api/sms/send-bulk") => Some(json!({
            "type": "object",
            "required": ["recipients"],
            "properties": {
                "recipients": { "type": "array", "maxItems": 10000, "items": {
                    "type": "object", "required": ["to"],
                    "properties": { "to": { "type": "string" }, "variables": { "type": "object" } } } },
                "body": { "type": "string" }, "templateId": { "type": "integer" },
                "name": { "type": "string" }, "scheduledAt": { "type": "string", "format": "date-time" },
                "from": { "type": "string" }, "priority": { "type": "string", "enum": ["otp", "transactional", "bulk"] },
                "provider": { "type": ["string", "integer"] }, "callbackUrl": { "type": "string" },
                "validityPeriod": { "type": ["integer", "string"] }, "metadata": { "type": "object" },
                "idempotencyKey": { "type": "string", "minLength": 1, "maxLength": 255 },
                "campaignId": { "type": ["integer", "string"], "description": "Start this saved campaign instead" }
            }
        })),
        ("POST", "/api/sms/preview") => Some(json!({
            "type": "object",
            "properties": { "body": { "type": "string" }, "templateId": { "type": "integer" }, "variables": { "type": "object" } }
        })),
        (
            "POST" | "PATCH",
            "/api/admin/organizations" | "/api/admin/organizations/{organizationId}",
        ) => {
            let mut schema = json!({
                "type": "object",
                "properties": { "name": { "type": "string" }, "defaultCountry": { "type": "string", "example": "PK" },
                    "timezone": { "type": ["string", "null"], "example": "Asia/Karachi", "description": "IANA time zone of the organization's days (analytics, CSV exports); absent or null: its country's" },
                    "creditBalance": { "type": ["string", "number", "null"] },
                    "currency": { "type": ["string", "null"], "example": "PKR" },
                    "dltEnabled": { "type": "boolean", "description": "Transactional template sends and campaigns need an approved template with a dltTemplateId" },
                    "isActive": { "type": "boolean" },
                    "retentionDays": { "type": ["integer", "null"], "minimum": 1, "maximum": 36500, "description": "null: the gateway's default" },
                    "quietHours": { "type": ["object", "null"], "description": "When promotional campaigns wait, in the organization's local time",
                        "properties": { "start": { "type": "string", "example": "21:00" }, "end": { "type": "string", "example": "08:00" },
                                        "timeZone": { "type": "string", "example": "Asia/Karachi" } } } }
            });
            if method == "POST" {
                schema["required"] = json!(["name"]);
            }
            Some(schema)
        }
        (
            "POST" | "PUT",
            "/api/sms/api-keys"
            | "/api/sms/api-keys/{keyId}"
            | "/api/admin/organizations/{organizationId}/api-keys",
        ) => Some(json!({
            "type": "object",
            "properties": { "name": { "type": "string" }, "scopes": { "type": "array", "items": { "type": "string",
                "enum": ["sms:send", "sms:read", "contacts:read", "contacts:write", "campaigns:write", "admin"] } },
                "rateLimitPerMin": { "type": "integer" }, "rateLimitPerDay": { "type": "integer" },
                "expiresAt": { "type": ["string", "null"], "format": "date-time" }, "isActive": { "type": "boolean" } }
        })),
        ("POST" | "PUT", "/api/sms/providers" | "/api/sms/providers/{providerId}") => Some(json!({
            "type": "object",
            "properties": { "providerName": { "type": "string", "enum": ["smpp", "smpp_gateway", "twilio", "vonage", "veevo"] },
                "displayName": { "type": "string" }, "priority": { "type": "integer" }, "isActive": { "type": "boolean" },
                "isDefault": { "type": "boolean" },
                "credentials": { "type": "object", "description": "Write-only; masked on read. SMPP: host, port, systemId, password, systemType" },
                "settings": { "type": "object", "description": "binds, window, bindMode, tps, tls, …" },
                "costPerSegment": { "type": ["string", "number"] }, "costCurrency": { "type": "string" },
                "registeredSenderIds": { "type": "array", "items": { "type": "string" } } }
        })),
        ("POST", "/api/sms/providers/{providerId}/test") => Some(json!({
            "type": "object", "required": ["to"],
            "properties": { "to": { "type": "string" }, "body": { "type": "string" } }
        })),
        ("POST" | "PUT", "/api/sms/webhooks" | "/api/sms/webhooks/{webhookId}") => Some(json!({
            "type": "object",
            "properties": { "url": { "type": "string", "format": "uri" },
                "events": { "type": "array", "items": { "type": "string", "enum": [
                    "message.queued", "message.sent", "message.delivered", "message.failed", "message.inbound"] } },
                "isActive": { "type": "boolean" }, "rotateSecret": { "type": "boolean" } }
        })),
        ("POST" | "PATCH", "/api/sms/smpp-accounts" | "/api/sms/smpp-accounts/{accountId}") => {
            let mut schema = json!({
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "systemId": { "type": "string", "maxLength": 15, "description": "Bind system_id, unique across the gateway" },
                    "password": { "type": "string", "minLength": 1, "maxLength": 8, "description": "Generated when absent on create; shown once" },
                    "regeneratePassword": { "type": "boolean" },
                    "description": { "type": "string" },
                    "bindTypes": { "type": "array", "items": { "type": "string", "enum": ["transmitter", "receiver", "transceiver"] } },
                    "maxBinds": { "type": "integer", "minimum": 1, "maximum": 1000 },
                    "allowedIps": { "type": "array", "items": { "type": "string", "example": "203.0.113.0/24" } },
                    "tps": { "type": ["integer", "null"], "minimum": 1, "description": "Above it: ESME_RTHROTTLED" },
                    "maxWindow": { "type": "integer", "minimum": 1, "maximum": 10000, "description": "Outstanding submits per bind; above it: ESME_RMSGQFUL" },
                    "senderIds": { "type": "array", "items": { "type": "string" } },
                    "defaultPriority": { "type": "string", "enum": ["otp", "transactional", "bulk"] },
                    "receiptIdFormat": { "type": "string", "enum": ["hex", "decimal"] },
                    "moNumbers": { "type": "array", "items": { "type": "string" }, "description": "Inbound messages to these numbers go to this account" },
                    "isActive": { "type": "boolean" }
                }
            });
            if method == "POST" {
                schema["required"] = json!(["systemId"]);
            }
            Some(schema)
        }
        _ => crate::routes::request_schema_of(method, path),
    }
}

/// The GET routes answering with a list (`data` is a [`List`](crate::listing::Listed)).
pub(crate) const LIST_PATHS: [&str; 17] = [
    "/api/admin/organizations",
    "/api/admin/organizations/{organizationId}/users",
    "/api/admin/organizations/{organizationId}/api-keys",
    "/api/admin/organizations/{organizationId}/webhooks",
    "/api/sms/messages",
    "/api/sms/inbox",
    "/api/sms/api-keys",
    "/api/sms/providers",
    "/api/sms/smpp-accounts",
    "/api/sms/webhooks",
    "/api/sms/webhooks/{webhookId}/deliveries",
    "/api/sms/contacts",
    "/api/sms/contacts/{contactId}/groups",
    "/api/sms/groups",
    "/api/sms/groups/{groupId}/members",
    "/api/sms/templates",
    "/api/sms/campaigns",
];

fn query_parameters(path: &str) -> Vec<Value> {
    let q = |name: &str, ty: &str, description: &str| json!({ "name": name, "in": "query", "required": false, "description": description, "schema": { "type": ty } });
    let mut params = match path {
        "/api/sms/messages" => vec![
            q("direction", "string", "OUTBOUND or INBOUND"),
            q(
                "status",
                "string",
                "QUEUED, SUBMITTED, SENT, DELIVERED, FAILED, REJECTED, EXPIRED, RECEIVED",
            ),
            q("from", "string", "Created at or after (date or RFC 3339)"),
            q(
                "to",
                "string",
                "Created before (a bare date: through that day)",
            ),
            q("phone", "string", "Recipient number"),
            q("campaignId", "integer", "Campaign"),
        ],
        "/api/sms/inbox" => vec![q("phone", "string", "One thread, both directions")],
        "/api/sms/contacts" => vec![
            q("search", "string", "Name, phone or email contains"),
            q(
                "optedOut",
                "boolean",
                "Only opted-out (true) or opted-in (false) contacts",
            ),
        ],
        "/api/sms/campaigns" => vec![q(
            "status",
            "string",
            "DRAFT, SCHEDULED, IN_PROGRESS, COMPLETED, CANCELLED or PAUSED",
        )],
        "/api/sms/analytics" => vec![q(
            "period",
            "string",
            "today, last_7_days, last_30_days (default), last_90_days: whole days of the organization's timezone",
        )],
        _ => Vec::new(),
    };
    if path == "/api/sms/inbox" {
        params.push(q("limit", "integer", "1 to 1000, default 50 (one page)"));
    } else if LIST_PATHS.contains(&path) {
        params.push(q(
            "cursor",
            "string",
            "The previous page's nextCursor (opaque; stable under inserts)",
        ));
        params.push(q("limit", "integer", "1 to 1000, default 50"));
        let mut page = q(
            "page",
            "integer",
            "Deprecated (offset paging, shifts under inserts): use cursor. From 1; not with cursor",
        );
        page["deprecated"] = json!(true);
        params.push(page);
    }
    params
}

fn error_response(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

/// The document.
pub(crate) fn spec(server: Option<&str>) -> Value {
    let mut paths = Map::new();
    for route in route_table() {
        let mut parameters: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "integer" } }))
            .collect();
        if route.method == "GET" {
            parameters.extend(query_parameters(route.path));
        }
        let mut responses = Map::new();
        let success = if route.path == "/api/sms/events" {
            json!({ "description": "An event stream (event: message.status | message.inbound, data: JSON)",
                    "content": { "text/event-stream": { "schema": { "type": "string" } } } })
        } else if route.path == "/docs/errors" {
            json!({ "description": "docs/errors.md", "content": { "text/markdown": { "schema": { "type": "string" } } } })
        } else if route.path == "/openapi.json" {
            json!({ "description": "This document", "content": { "application/json": { "schema": { "type": "object" } } } })
        } else if route.method == "GET" && LIST_PATHS.contains(&route.path) {
            json!({ "description": route.summary,
                    "content": { "application/json": { "schema": { "allOf": [
                        { "$ref": "#/components/schemas/Success" },
                        { "type": "object", "properties": { "data": { "$ref": "#/components/schemas/List" } } }
                    ] } } } })
        } else {
            json!({ "description": route.summary,
                    "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Success" } } } })
        };
        responses.insert(route.status.to_string(), success);
        let mut security = Value::Null;
        match route.access {
            Access::Public => {}
            Access::Key(scope) => {
                security = json!([{ "apiKey": [scope] }]);
                responses.insert(
                    "401".into(),
                    error_response("Missing, unknown, revoked or expired API key"),
                );
                responses.insert("403".into(), error_response("The key lacks the scope"));
                responses.insert("429".into(), error_response("Rate limited (Retry-After)"));
            }
            Access::Superadmin => {
                security = json!([{ "superadmin": [] }]);
                responses.insert(
                    "401".into(),
                    error_response("Missing or wrong superadmin token"),
                );
            }
        }
        if matches!(route.method, "POST" | "PUT" | "PATCH") {
            responses.insert(
                "400".into(),
                error_response("Invalid input or malformed JSON"),
            );
            responses.insert("413".into(), error_response("Body over the size limit"));
        }
        if route.path.contains('{') {
            responses.insert(
                "404".into(),
                error_response("Not found in this organization"),
            );
        }
        if crate::routes::IDEMPOTENT_ROUTES.contains(&(route.method, route.path)) {
            parameters.push(json!({ "name": "Idempotency-Key", "in": "header", "required": false,
                "schema": { "type": "string", "minLength": 1, "maxLength": 255 },
                "description": "Retries with the same key and request within 24 hours replay the first answer (Idempotent-Replayed: true); the body's idempotencyKey is the same key space" }));
            responses.insert(
                "409".into(),
                error_response("IDEMPOTENCY_KEY_IN_USE: a request with this key is running"),
            );
            responses.insert(
                "422".into(),
                error_response("IDEMPOTENCY_KEY_REUSED (another request with this key), or refused content (MISSING_VARIABLE, OPTED_OUT, DLT)"),
            );
        }
        if route.path == "/api/sms/send" {
            responses.insert("402".into(), error_response("Insufficient credit"));
            responses.insert("503".into(), error_response("Queue full (Retry-After)"));
        }
        let mut op = json!({
            "operationId": operation_id(route.method, route.path),
            "summary": route.summary,
            "tags": [route.tag],
            "parameters": parameters,
            "responses": responses,
        });
        if !security.is_null() {
            op["security"] = security;
        }
        if let Some(mut schema) = request_schema(route.method, route.path) {
            close_objects(&mut schema);
            op["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": schema } } });
        }
        let item = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        item[route.method.to_ascii_lowercase()] = op;
    }
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Sairex SMS API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Every JSON response is an envelope: {\"success\": true, \"data\": …} or {\"success\": false, \"error\": {\"code\", \"message\", \"field\", \"docs\"}} (codes: GET /docs/errors). Request bodies refuse unknown fields. Authenticated responses carry X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset."
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "apiKey": { "type": "http", "scheme": "bearer", "description": "An organization's API key, sk_live_…" },
                "superadmin": { "type": "http", "scheme": "bearer", "description": "The gateway's superadmin token" }
            },
            "schemas": {
                "Success": { "type": "object", "required": ["success", "data"],
                    "properties": { "success": { "const": true }, "data": {} } },
                "List": { "type": "object", "required": ["items", "nextCursor", "limit", "total"],
                    "description": "Every list: newest first (by id), one page",
                    "properties": { "items": { "type": "array" },
                                    "nextCursor": { "type": ["string", "null"], "description": "Pass as ?cursor= for the next page; null on the last" },
                                    "limit": { "type": "integer", "minimum": 1, "maximum": 1000 },
                                    "total": { "type": "integer", "minimum": 0, "description": "Items in the whole list (for the inbox: conversations found)" } } },
                "Error": { "type": "object", "required": ["success", "error"],
                    "properties": { "success": { "const": false }, "error": { "type": "object", "required": ["code", "message"],
                        "properties": { "code": { "type": "string", "description": "Stable; see docs/errors.md" },
                                        "message": { "type": "string" },
                                        "field": { "type": "string", "description": "The request field at fault, e.g. recipients[2].to" },
                                        "docs": { "type": "string", "description": "This code's entry in the error catalogue, e.g. /docs/errors#unknown_field" },
                                        "messageId": { "type": "integer" }, "retryAfter": { "type": "integer" } } } } }
            }
        }
    });
    if let Some(url) = server {
        doc["servers"] = json!([{ "url": url }]);
    }
    doc
}

/// Request bodies refuse unknown fields (400 UNKNOWN_FIELD): every object schema that lists
/// its properties says so, unless it already says otherwise (free-form `variables`, `metadata`).
fn close_objects(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if map.contains_key("properties") && !map.contains_key("additionalProperties") {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            for (key, value) in map.iter_mut() {
                if key != "additionalProperties" {
                    close_objects(value);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(close_objects),
        _ => {}
    }
}

/// `POST /api/sms/send-bulk` → `postApiSmsSendBulk`.
fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_ascii_lowercase();
    let mut upper = true;
    for c in path.chars() {
        if c.is_ascii_alphanumeric() {
            if upper {
                id.push(c.to_ascii_uppercase());
            } else {
                id.push(c);
            }
            upper = false;
        } else {
            upper = true;
        }
    }
    id
}
