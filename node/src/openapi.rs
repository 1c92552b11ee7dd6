//! The OpenAPI document, generated from the handlers' annotations and the body types they parse
//! into. The annotations state each operation's own outcomes; `complete` adds what the
//! dispatcher answers for every operation of a kind (credentials, maintenance, body size and
//! validation, SPEC §6's order), with the headers those answers carry, so no operation can miss
//! them.

use serde_json::{json, Value};
use utoipa::OpenApi;

use crate::http::schema::{CodedError, PlainError, ValidationError};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "CommonRock API",
        description = "Authentication, sessions and a simple database as a service.\n\n\
            Every response carries `X-Request-Id`. Errors have one of three bodies: coded \
            `{\"detail\":{\"code\",\"message\"}}`, plain `{\"detail\":\"…\"}` (the end-user \
            endpoints' own outcomes) and the 422 validation list. A path that exists answers an \
            undocumented method with 405 `method_not_allowed` and an `Allow` header; an unknown \
            path answers 404 `not_found`. Codes and their meaning: docs/error-codes.md."
    ),
    paths(
        crate::api::public::end_users::signup,
        crate::api::public::end_users::login,
        crate::api::public::end_users::refresh,
        crate::api::public::end_users::logout,
        crate::api::public::end_users::me,
        crate::api::public::end_users::password,
        crate::api::public::sessions::list_doc,
        crate::api::public::sessions::revoke_doc,
        crate::api::public::sessions::revoke_others_doc,
        crate::api::introspection::introspect,
        crate::api::introspection::introspect_batch,
        crate::api::sql::execute_public_doc,
        crate::api::sql::execute_secret_doc,
        crate::api::admin::orgs::list_doc,
        crate::api::admin::orgs::create_doc,
        crate::api::admin::projects::list_doc,
        crate::api::admin::projects::create_doc,
        crate::api::admin::projects::get_doc,
        crate::api::admin::projects::patch_doc,
        crate::api::admin::projects::project_maintenance_get_doc,
        crate::api::admin::projects::project_maintenance_put_doc,
        crate::api::admin::projects::node_maintenance_get_doc,
        crate::api::admin::projects::node_maintenance_put_doc,
        crate::api::admin::credentials::clients_list_doc,
        crate::api::admin::credentials::clients_create_doc,
        crate::api::admin::credentials::client_revoke_doc,
        crate::api::admin::credentials::keys_list_doc,
        crate::api::admin::credentials::keys_create_doc,
        crate::api::admin::credentials::key_revoke_doc,
        crate::api::admin::end_users::get_doc,
        crate::api::admin::end_users::patch_doc,
        crate::api::admin::end_users::delete_doc,
        crate::api::admin::end_users::password_doc,
        crate::api::admin::end_users::sessions_list_doc,
        crate::api::admin::end_users::sessions_revoke_doc,
        crate::api::admin::end_users::session_revoke_doc,
        crate::api::admin::tokens::list_doc,
        crate::api::admin::tokens::create_doc,
        crate::api::admin::tokens::revoke_doc,
        crate::api::admin::cluster::view,
        crate::api::admin::auth::login_doc,
        crate::api::admin::auth::logout_doc,
        crate::api::admin::auth::me_doc,
        crate::api::admin::auth::enroll_doc,
        crate::api::admin::auth::confirm_doc,
        crate::api::admin::admin_users::list_doc,
        crate::api::admin::admin_users::create_doc,
        crate::api::admin::admin_users::get_doc,
        crate::api::admin::admin_users::patch_doc,
        crate::api::admin::admin_users::delete_doc,
        crate::api::admin::admin_users::reset_totp_doc,
        crate::api::admin::audit::list_doc,
        crate::api::admin::sql::execute_doc,
        crate::api::admin::sql::tables_list_doc,
        crate::api::admin::sql::tables_create_doc,
        crate::api::admin::sql::table_get_doc,
        crate::api::admin::sql::table_delete_doc,
        crate::api::admin::sql::definitions_list_doc,
        crate::api::admin::sql::definitions_create_doc,
        crate::api::admin::sql::definition_get_doc,
        crate::api::admin::sql::definition_put_doc,
        crate::api::admin::sql::definition_delete_doc,
        crate::api::ops::healthz,
        crate::api::ops::readyz,
        crate::api::ops::metrics,
        crate::api::ops::openapi,
        crate::api::ops::docs_redirect,
        crate::api::ops::docs_index_doc,
        crate::api::ops::docs,
        crate::api::portal::redirect_doc,
        crate::api::portal::index_doc,
        crate::api::portal::file_doc,
    ),
    components(schemas(CodedError, PlainError, ValidationError)),
    tags(
        (name = "end-users", description = "Public client (X-Client-Id, X-Client-Key, Origin); some also an end user's Bearer access token"),
        (name = "introspection", description = "Secret key (X-API-Key)"),
        (name = "sql", description = "Running registered query definitions"),
        (name = "admin", description = "Admin API: Bearer admin token"),
        (name = "admin-sql", description = "Admin API: tables and query definitions"),
        (name = "portal", description = "Admin users, their portal sessions (cookie `cr_portal` + `X-CSRF-Token` on writes) and TOTP"),
        (name = "ops", description = "Health, readiness, metrics and this document"),
    )
)]
pub struct ApiDoc;

/// The document `GET /openapi.json` serves.
pub fn document() -> String {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_else(|_| json!({}));
    complete(&mut doc);
    serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".to_string())
}

const PATH_SLUG: &str = "^[a-z0-9][a-z0-9_-]{2,63}$";

fn error_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn coded() -> Value {
    error_ref("CodedError")
}

/// What the dispatcher answers for an operation of a kind, read off its path, security and
/// body. Mirrors `api::handle`, the credential checks and `Request::json`.
fn common_answers(path: &str, method: &str, op: &Value) -> Vec<(u16, String, Value)> {
    let schemes: Vec<&str> = op["security"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .flat_map(|r| r.keys().map(String::as_str))
        .collect();
    let has = |s: &str| schemes.contains(&s);
    let tenant = path.starts_with("/{slug}/v1/");
    let body = op.get("requestBody").is_some();
    let mut out: Vec<(u16, &str, Value)> = vec![
        (
            413,
            "`payload_too_large`: body over 64 KiB (256 KiB for batch introspection)",
            coded(),
        ),
        (
            500,
            "`internal_error`: a bug; the detail goes to the log only",
            coded(),
        ),
    ];
    if tenant {
        out.push((
            404,
            "`project_not_found`: no project has this slug",
            coded(),
        ));
        out.push((
            503,
            "`maintenance_mode`: node-wide or project maintenance is on; `service_unavailable`: the store, a shard or the Argon2 queue could not answer in time (the outcome of a write is unknown: retry)",
            coded(),
        ));
    }
    if has("client_id") {
        out.push((401, "`invalid_credentials`: `X-Client-Id` / `X-Client-Key` missing, unknown, revoked or not matching", coded()));
        out.push((403, "`origin_required`: `Origin` missing, empty or `null`; `origin_denied`: not an allowed origin of the client; `client_scope_denied`: the client lacks the endpoint's scope", coded()));
        out.push((
            429,
            "`rate_limited`: the per-IP or per-client bucket is empty",
            coded(),
        ));
    }
    if has("end_user") {
        out.push((401, "`{\"detail\":\"Invalid session\"}`: `Authorization: Bearer <access token>` missing, malformed or not active", error_ref("PlainError")));
    }
    if has("secret_key") {
        out.push((401, "`missing_api_key`: `X-API-Key` absent or empty; `invalid_api_key`: unknown, revoked, expired or of another project", coded()));
        out.push((403, "`restrictions_required`: the key has neither `allowed_cidrs` nor `allowed_origins`; `ip_denied`: caller outside `allowed_cidrs`; `origin_required` / `origin_denied`: the key is restricted by origins and `Origin` is missing or not allowed", coded()));
        out.push((429, "`rate_limited`: the key's bucket is empty", coded()));
    }
    if has("portal") {
        out.push((
            401,
            "`unauthorized`: no bearer token and no live portal session cookie",
            coded(),
        ));
        if method != "get" {
            out.push((
                403,
                "`csrf_failed`: a cookie-authenticated write without the session's `X-CSRF-Token`",
                coded(),
            ));
        }
    }
    if has("admin") {
        out.push((
            401,
            "`unauthorized`: admin bearer token missing, unknown or revoked",
            coded(),
        ));
        out.push((403, "`ip_denied`: caller outside `--admin-cidrs`", coded()));
        out.push((
            404,
            "`not_found`: with `--admin-listen` the admin API is served on the admin listener only",
            coded(),
        ));
        if method != "get" {
            out.push((503, "`service_unavailable`: the tenant directory or the store did not answer in time (the outcome is unknown: retry)", coded()));
        }
    }
    if body {
        out.push((
            415,
            "`unsupported_media_type`: a body whose `Content-Type` is not JSON",
            coded(),
        ));
        out.push((
            422,
            "Validation error: malformed JSON, a missing, mistyped or out-of-range field",
            error_ref("ValidationError"),
        ));
    }
    out.into_iter()
        .map(|(s, d, v)| (s, d.to_string(), v))
        .collect()
}

/// Adds a response, or merges it into the one already there (descriptions joined, bodies
/// combined with `oneOf`).
fn add_response(op: &mut Value, status: u16, description: &str, body: Value) {
    let responses = op
        .as_object_mut()
        .map(|o| o.entry("responses").or_insert_with(|| json!({})));
    let Some(Value::Object(responses)) = responses else {
        return;
    };
    let key = status.to_string();
    let Some(existing) = responses.get_mut(&key) else {
        responses.insert(
            key,
            json!({
                "description": description,
                "content": {"application/json": {"schema": body}}
            }),
        );
        return;
    };
    let text = existing["description"].as_str().unwrap_or_default();
    let joined = if text.is_empty() {
        description.to_string()
    } else {
        format!("{text}; {description}")
    };
    existing["description"] = json!(joined);
    let slot = &mut existing["content"]["application/json"]["schema"];
    match slot {
        Value::Null => *slot = body,
        Value::Object(s) if s.contains_key("oneOf") => {
            if let Some(Value::Array(list)) = s.get_mut("oneOf") {
                if !list.contains(&body) {
                    list.push(body);
                }
            }
        }
        other if *other != body => {
            let first = other.take();
            *other = json!({ "oneOf": [first, body] });
        }
        _ => {}
    }
}

fn refers_to(schema: &Value, name: &str) -> bool {
    let target = format!("#/components/schemas/{name}");
    schema["$ref"] == json!(target)
        || schema["oneOf"]
            .as_array()
            .is_some_and(|l| l.iter().any(|s| s["$ref"] == json!(target)))
}

fn header(description: &str, required: bool, schema: Value) -> Value {
    json!({"description": description, "required": required, "schema": schema})
}

/// Headers of one response of an operation.
fn add_headers(status: &str, response: &mut Value, bearer: Option<bool>, public: bool) {
    let Some(obj) = response.as_object_mut() else {
        return;
    };
    let coded_error = obj
        .get("content")
        .and_then(|c| c.get("application/json"))
        .is_some_and(|c| refers_to(&c["schema"], "CodedError"));
    let headers = obj.entry("headers").or_insert_with(|| json!({}));
    headers["X-Request-Id"] = header(
        "The caller's id when it sent a short printable one, else a new one",
        true,
        json!({"type": "string"}),
    );
    if status == "429" || (status == "503" && coded_error) {
        headers["Retry-After"] = header(
            "Seconds until a retry may pass (at least 1)",
            true,
            json!({"type": "integer", "minimum": 1}),
        );
    }
    if let (Some(always), "401") = (bearer, status) {
        headers["WWW-Authenticate"] = header(
            "`Bearer`, on every 401 about the bearer token",
            always,
            json!({"type": "string", "enum": ["Bearer"]}),
        );
    }
    if public {
        headers["Access-Control-Allow-Origin"] = header(
            "The request's Origin, when a public client of the project allows it",
            false,
            json!({"type": "string"}),
        );
    }
}

/// The CORS preflight every public path answers (`OPTIONS`, no credentials).
fn preflight(path: &str) -> Value {
    let mut parameters: Vec<Value> = path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            let mut schema = json!({"type": "string"});
            if name == "slug" {
                schema["pattern"] = json!(PATH_SLUG);
            }
            json!({"name": name, "in": "path", "required": true, "schema": schema})
        })
        .collect();
    parameters.push(
        json!({"name": "Origin", "in": "header", "required": false, "schema": {"type": "string"}}),
    );
    let mut op = json!({
        "tags": ["end-users"],
        "summary": "CORS preflight",
        "description": "Answers 204; the CORS headers are present only when the `Origin` is allowed by a public client of the project.",
        "operationId": format!("preflight {path}"),
        "parameters": parameters,
        "responses": {"204": {"description": "Preflight answer", "headers": {
            "Access-Control-Allow-Origin": header("The allowed Origin", false, json!({"type": "string"})),
            "Access-Control-Allow-Methods": header("`GET, POST, DELETE, OPTIONS`", false, json!({"type": "string"})),
            "Access-Control-Allow-Headers": header("`Content-Type, Authorization, X-Client-Id, X-Client-Key, X-Device-Id`", false, json!({"type": "string"})),
            "Access-Control-Max-Age": header("Seconds a browser may cache the answer", false, json!({"type": "integer"}))
        }}}
    });
    add_response(
        &mut op,
        404,
        "`project_not_found`: no project has this slug",
        coded(),
    );
    add_response(
        &mut op,
        413,
        "`payload_too_large`: body over 64 KiB",
        coded(),
    );
    if let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) {
        for (status, response) in responses.iter_mut() {
            add_headers(status, response, None, true);
        }
    }
    op
}

/// Security schemes, the common answers and headers, preflights and the slug's pattern.
fn complete(doc: &mut Value) {
    doc["components"]["securitySchemes"] = json!({
        "client_id": {"type": "apiKey", "in": "header", "name": "X-Client-Id",
            "description": "Public client id (`pk_live_…`); sent with X-Client-Key and Origin (SPEC §2)"},
        "client_key": {"type": "apiKey", "in": "header", "name": "X-Client-Key",
            "description": "Public client key (`pk_live_…`)"},
        "client_origin": {"type": "apiKey", "in": "header", "name": "Origin",
            "description": "An allowed origin of the public client, e.g. `https://app.example.com` or `app://com.example.ios`"},
        "end_user": {"type": "http", "scheme": "bearer",
            "description": "An end user's access token (`cr_at_…`)"},
        "secret_key": {"type": "apiKey", "in": "header", "name": "X-API-Key",
            "description": "Secret key (`sk_live_…`), for backends; restricted by `allowed_cidrs` and/or `allowed_origins` (then `Origin` is required too)"},
        "admin": {"type": "http", "scheme": "bearer",
            "description": "Admin token: `COMMONROCK_ADMIN_TOKEN` or one minted through /admin/v1/admin-tokens"},
        "portal": {"type": "apiKey", "in": "cookie", "name": "cr_portal",
            "description": "A portal session from `POST /admin/v1/auth/login`; writes also need `X-CSRF-Token`"}
    });
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        let public = path.starts_with("/{slug}/v1/public/");
        if public {
            item.insert("options".into(), preflight(path));
        }
        for (method, op) in item.iter_mut() {
            if method == "options" {
                continue;
            }
            for (status, description, body) in common_answers(path, method, op) {
                add_response(op, status, &description, body);
            }
            let schemes: Vec<String> = op["security"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_object)
                .flat_map(|r| r.keys().cloned())
                .collect();
            let bearer = if schemes.iter().any(|s| s == "admin") {
                Some(true)
            } else if schemes.iter().any(|s| s == "end_user") {
                Some(false)
            } else {
                None
            };
            let params = op.get_mut("parameters").and_then(Value::as_array_mut);
            for p in params.into_iter().flatten() {
                if p["name"] == "slug" && p["in"] == "path" {
                    p["schema"]["pattern"] = json!(PATH_SLUG);
                    p["description"] = json!("Project slug");
                }
            }
            if let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) {
                for (status, response) in responses.iter_mut() {
                    add_headers(status, response, bearer, public);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use bytes::Bytes;
    use http::{HeaderMap, Method};
    use serde_json::{json, Value};
    use utoipa::PartialSchema;

    use crate::http::schema::JsonBody;
    use crate::http::validation::Fields;
    use crate::http::{Code, Request};

    fn doc() -> Value {
        serde_json::from_str(&super::document()).expect("valid json")
    }

    fn request() -> Request {
        Request {
            method: Method::POST,
            path: "/".into(),
            query: String::new(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
            ip: None,
        }
    }

    /// The schema's property names, and the names `read` looks at.
    fn tie<T: PartialSchema>(
        read: impl Fn(&mut Fields<'_>),
    ) -> (BTreeSet<String>, BTreeSet<String>) {
        let schema = serde_json::to_value(T::schema()).expect("schema");
        let documented = schema["properties"]
            .as_object()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        let empty = json!({});
        let mut f = Fields::of(&empty).expect("object");
        read(&mut f);
        (documented, f.seen())
    }

    fn assert_tied<T: PartialSchema>(name: &str, read: impl Fn(&mut Fields<'_>)) {
        let (documented, read) = tie::<T>(read);
        assert!(!documented.is_empty(), "{name} documents its fields");
        assert_eq!(
            documented, read,
            "{name}: documented properties vs fields read"
        );
    }

    macro_rules! assert_tied {
        ($($t:ty),* $(,)?) => {$(
            assert_tied::<$t>(stringify!($t), |f| { let _ = <$t as JsonBody>::read(f, &request()); });
        )*};
    }

    #[test]
    fn every_body_documents_exactly_the_fields_it_reads() {
        use crate::api::admin::admin_users::{CreateAdminUser, PatchAdminUser};
        use crate::api::admin::auth::{ConfirmTotp, Login};
        use crate::api::admin::credentials::{CreateApiKey, CreateClient};
        use crate::api::admin::end_users::{PatchEndUser, SetPassword};
        use crate::api::admin::orgs::CreateOrg;
        use crate::api::admin::projects::{CreateProject, MaintenanceBody, PatchProject};
        use crate::api::admin::sql::{DefinitionBody, DropTableBody, SqlStatement};
        use crate::api::admin::tokens::CreateAdminToken;
        use crate::api::introspection::{BatchBody, IntrospectBody};
        use crate::api::public::end_users::{LoginBody, PasswordBody, RefreshBody, SignupBody};
        use crate::api::sql::ExecuteBody;
        assert_tied!(
            SignupBody,
            LoginBody,
            RefreshBody,
            PasswordBody,
            IntrospectBody<'static>,
            BatchBody<'static>,
            CreateOrg,
            CreateProject,
            PatchProject,
            MaintenanceBody,
            CreateClient,
            CreateApiKey,
            PatchEndUser,
            SetPassword,
            CreateAdminToken,
            SqlStatement,
            DropTableBody,
            DefinitionBody,
            Login,
            ConfirmTotp,
            CreateAdminUser,
            PatchAdminUser,
        );
        assert_tied::<ExecuteBody>("ExecuteBody", |f| {
            let _ = ExecuteBody::read_with(f, 1000);
        });
    }

    #[test]
    fn the_document_lists_the_seed_endpoints_and_schemes() {
        let doc = doc();
        for path in [
            "/{slug}/v1/public/end-users/login",
            "/{slug}/v1/sessions/introspect",
            "/{slug}/v1/sessions/introspect/batch",
            "/{slug}/v1/public/sql/execute",
            "/{slug}/v1/sql/execute",
            "/admin/v1/projects/{slug}/api-keys",
            "/healthz",
        ] {
            assert!(doc["paths"][path].is_object(), "{path} documented");
        }
        for scheme in [
            "client_id",
            "client_key",
            "client_origin",
            "end_user",
            "secret_key",
            "admin",
        ] {
            assert!(doc["components"]["securitySchemes"][scheme].is_object());
        }
    }

    #[test]
    fn every_operation_documents_the_answers_of_its_kind() {
        let doc = doc();
        let introspect = &doc["paths"]["/{slug}/v1/sessions/introspect"]["post"]["responses"];
        for status in [
            "200", "401", "403", "404", "413", "415", "422", "429", "503",
        ] {
            assert!(
                introspect[status].is_object(),
                "introspect answers {status}"
            );
        }
        assert!(introspect["401"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("missing_api_key")));
        assert_eq!(
            introspect["429"]["headers"]["Retry-After"]["required"],
            true
        );
        assert_eq!(
            introspect["200"]["headers"]["X-Request-Id"]["required"],
            true
        );
        let me = &doc["paths"]["/{slug}/v1/public/end-users/me"];
        assert!(me["options"]["responses"]["204"].is_object(), "preflight");
        let unauthorized = &me["get"]["responses"]["401"];
        assert!(unauthorized["headers"]["WWW-Authenticate"].is_object());
        assert_eq!(
            unauthorized["content"]["application/json"]["schema"]["oneOf"]
                .as_array()
                .map(Vec::len),
            Some(2),
            "coded invalid_credentials or plain Invalid session"
        );
        let admin = &doc["paths"]["/admin/v1/orgs"]["post"]["responses"];
        assert_eq!(
            admin["401"]["headers"]["WWW-Authenticate"]["required"],
            true
        );
        let codes = &doc["components"]["schemas"]["CodedError"]["properties"]["detail"]
            ["properties"]["code"]["enum"];
        assert_eq!(codes.as_array().map(Vec::len), Some(Code::ALL.len()));
    }

    #[test]
    fn device_id_may_come_from_the_header() {
        let doc = doc();
        let op = &doc["paths"]["/{slug}/v1/public/end-users/signup"]["post"];
        let header = op["parameters"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["name"] == "X-Device-Id"))
            .expect("X-Device-Id documented");
        assert_eq!(header["in"], "header");
        assert_eq!(header["required"], false);
    }
}
