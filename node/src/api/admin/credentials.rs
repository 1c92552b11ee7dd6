//! Public clients and secret keys of a project: create (the secret is shown once), list (a
//! non-secret prefix, created and last-used times), revoke. Two live keys allow rotation.

use std::sync::atomic::Ordering;

use commonrock_actors::tenant::{Applied, Change};
use commonrock_actors::{origin, DomainError};
use http::{Method, StatusCode};
use ipnet::IpNet;
use serde::Serialize;
use utoipa::openapi::schema::{Array, ArrayBuilder, ObjectBuilder, SchemaType, Type};
use utoipa::ToSchema;

use super::{audit, ok, project, AdminPrincipal};
use crate::api::public::SCOPES;
use crate::api::AppState;
use crate::http::schema::{CodedError, JsonBody};
use crate::http::validation::{Fields, Issue};
use crate::http::{format_time, Answer, ApiError, Code, Handled, Request};

fn time_or_none(t: i64) -> Option<String> {
    (t > 0).then(|| format_time(t))
}

const MAX_ORIGINS: usize = 100;
const MAX_ORIGIN_CHARS: usize = 512;
const MAX_CIDRS: usize = 100;
const MAX_CIDR_CHARS: usize = 64;
const MAX_SCOPES: usize = 16;
const MAX_SCOPE_CHARS: usize = 64;

/// `scheme://host[:port]` (an optional trailing `/`), as `origin::normalise` accepts it; IPv6
/// hosts in brackets are accepted too.
const ORIGIN_PATTERN: &str = r"^[A-Za-z0-9+.-]+://[^/?#@\s:]+(:[0-9]+)?/?$";

fn origins_schema() -> Array {
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(MAX_ORIGIN_CHARS))
                .pattern(Some(ORIGIN_PATTERN))
                .examples(["https://shop.acme.example"]),
        )
        .max_items(Some(MAX_ORIGINS))
        .description(Some(
            "Allowed origins, e.g. `https://app.example.com`, `app://com.example.ios`",
        ))
        .build()
}

fn scopes_schema() -> Array {
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(SCOPES)),
        )
        .max_items(Some(MAX_SCOPES))
        .description(Some("Another scope answers 400 `invalid_public_scopes`"))
        .build()
}

fn cidrs_schema() -> Array {
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(MAX_CIDR_CHARS))
                .examples(["10.0.0.0/8", "127.0.0.1", "2001:db8::/32"]),
        )
        .max_items(Some(MAX_CIDRS))
        .description(Some(
            "Networks (CIDR, IPv4 or IPv6) the key may be used from; a bare address is that host",
        ))
        .build()
}

fn origins_field(f: &mut Fields<'_>, name: &str) -> Option<Vec<String>> {
    let list = f
        .string_list(name, false, MAX_ORIGINS, MAX_ORIGIN_CHARS)
        .unwrap_or_default();
    let mut out = Vec::with_capacity(list.len());
    for o in list {
        match origin::normalise(&o) {
            Some(n) => out.push(n),
            None => {
                f.push(Issue::value_error(name, format!("not an origin: {o}")));
                return None;
            }
        }
    }
    Some(out)
}

/// `POST /admin/v1/projects/{slug}/clients`.
#[derive(ToSchema)]
pub struct CreateClient {
    #[schema(min_length = 1, max_length = 200, example = "web")]
    pub name: String,
    #[schema(schema_with = origins_schema, required = false)]
    pub allowed_origins: Vec<String>,
    #[schema(schema_with = scopes_schema)]
    pub scopes: Vec<String>,
}

impl JsonBody for CreateClient {
    fn read(f: &mut Fields<'_>, _req: &Request) -> Option<Self> {
        let name = f.string("name", 1, 200);
        let allowed_origins = origins_field(f, "allowed_origins");
        let scopes = f.string_list("scopes", true, MAX_SCOPES, MAX_SCOPE_CHARS);
        Some(CreateClient {
            name: name?,
            allowed_origins: allowed_origins?,
            scopes: scopes?,
        })
    }
}

/// `POST /admin/v1/projects/{slug}/api-keys`. A key with neither `allowed_cidrs` nor
/// `allowed_origins` is created, but refused (403 `restrictions_required`) until it has one.
#[derive(ToSchema)]
pub struct CreateApiKey {
    #[schema(min_length = 1, max_length = 200, example = "backend")]
    pub name: String,
    #[schema(schema_with = cidrs_schema, required = false)]
    pub allowed_cidrs: Vec<IpNet>,
    #[schema(schema_with = origins_schema, required = false)]
    pub allowed_origins: Vec<String>,
    /// When the key stops working (RFC 3339).
    #[schema(value_type = Option<String>, format = DateTime, max_length = 64, example = "2027-01-01T00:00:00Z")]
    pub expires_at: Option<i64>,
}

impl JsonBody for CreateApiKey {
    fn read(f: &mut Fields<'_>, _req: &Request) -> Option<Self> {
        let name = f.string("name", 1, 200);
        let cidrs = f
            .string_list("allowed_cidrs", false, MAX_CIDRS, MAX_CIDR_CHARS)
            .unwrap_or_default();
        let mut nets = Vec::with_capacity(cidrs.len());
        for c in &cidrs {
            // A bare address means just that host.
            let parsed = c
                .parse::<IpNet>()
                .or_else(|_| c.parse::<std::net::IpAddr>().map(IpNet::from));
            match parsed {
                Ok(n) => nets.push(n),
                Err(_) => f.push(Issue::value_error(
                    "allowed_cidrs",
                    format!("not a CIDR: {c}"),
                )),
            }
        }
        let allowed_origins = origins_field(f, "allowed_origins");
        let expires_at = match f.opt_string("expires_at", 64) {
            None => Some(None),
            Some(t) => match chrono::DateTime::parse_from_rfc3339(&t) {
                Ok(t) => Some(Some(t.timestamp())),
                Err(_) => {
                    f.push(Issue::value_error(
                        "expires_at",
                        "expected an RFC 3339 time such as 2026-02-04T13:00:00Z",
                    ));
                    None
                }
            },
        };
        Some(CreateApiKey {
            name: name?,
            allowed_cidrs: nets,
            allowed_origins: allowed_origins?,
            expires_at: expires_at?,
        })
    }
}

/// A new client: the key is shown this once.
#[derive(Serialize, ToSchema)]
pub struct ClientCreated {
    client_id: String,
    client_key: String,
    name: String,
    allowed_origins: Vec<String>,
    scopes: Vec<String>,
    created_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct ClientOut {
    client_id: String,
    name: String,
    key_prefix: String,
    allowed_origins: Vec<String>,
    scopes: Vec<String>,
    created_at: String,
    last_used_at: Option<String>,
    revoked_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ClientList {
    clients: Vec<ClientOut>,
}

pub async fn clients(state: &AppState, req: &Request, who: &AdminPrincipal, slug: &str) -> Handled {
    let view = project(state, slug)?;
    if req.method == Method::GET {
        let mut list: Vec<_> = view.clients.values().collect();
        list.sort_by_key(|c| (c.record.created_at, c.record.client_id.clone()));
        let clients: Vec<ClientOut> = list
            .into_iter()
            .map(|c| ClientOut {
                client_id: c.record.client_id.clone(),
                name: c.record.name.clone(),
                key_prefix: c.record.key_prefix.clone(),
                allowed_origins: c.record.allowed_origins.clone(),
                scopes: c.record.scopes.clone(),
                created_at: format_time(c.record.created_at),
                last_used_at: time_or_none(c.last_used.load(Ordering::Relaxed)),
                revoked_at: c.record.revoked_at.map(format_time),
            })
            .collect();
        return Answer::json(StatusCode::OK, &ClientList { clients });
    }
    let body = CreateClient::parse(req)?;
    if body.scopes.iter().any(|s| !SCOPES.contains(&s.as_str())) {
        return Err(ApiError::code(Code::InvalidPublicScopes));
    }
    let applied = state
        .engine
        .apply(Change::CreateClient {
            slug: slug.to_string(),
            name: body.name,
            allowed_origins: body.allowed_origins,
            scopes: body.scopes,
        })
        .await?;
    let Applied::Client { client, key } = applied else {
        return Err(DomainError::Internal("unexpected apply result".into()).into());
    };
    audit(state, who, "create_client", Some(slug), &client.client_id).await;
    Answer::json(
        StatusCode::CREATED,
        &ClientCreated {
            client_id: client.client_id,
            client_key: key,
            name: client.name,
            allowed_origins: client.allowed_origins,
            scopes: client.scopes,
            created_at: format_time(client.created_at),
        },
    )
    .map(Answer::no_store)
}

pub async fn revoke_client(
    state: &AppState,
    who: &AdminPrincipal,
    slug: &str,
    id: &str,
) -> Handled {
    state
        .engine
        .apply(Change::RevokeClient {
            slug: slug.to_string(),
            client_id: id.to_string(),
        })
        .await?;
    audit(state, who, "revoke_client", Some(slug), id).await;
    ok()
}

/// A new secret key: `key` is shown this once.
#[derive(Serialize, ToSchema)]
pub struct KeyCreated {
    id: uuid::Uuid,
    key: String,
    name: String,
    key_prefix: String,
    #[schema(value_type = Vec<String>)]
    allowed_cidrs: Vec<IpNet>,
    allowed_origins: Vec<String>,
    created_at: String,
    expires_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct KeyOut {
    id: uuid::Uuid,
    name: String,
    key_prefix: String,
    #[schema(value_type = Vec<String>)]
    allowed_cidrs: Vec<IpNet>,
    allowed_origins: Vec<String>,
    created_at: String,
    expires_at: Option<String>,
    last_used_at: Option<String>,
    revoked_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct KeyList {
    api_keys: Vec<KeyOut>,
}

pub async fn api_keys(
    state: &AppState,
    req: &Request,
    who: &AdminPrincipal,
    slug: &str,
) -> Handled {
    let view = project(state, slug)?;
    if req.method == Method::GET {
        let keys: Vec<KeyOut> = view
            .keys
            .iter()
            .map(|k| KeyOut {
                id: k.record.id,
                name: k.record.name.clone(),
                key_prefix: k.record.key_prefix.clone(),
                allowed_cidrs: k.record.allowed_cidrs.clone(),
                allowed_origins: k.record.allowed_origins.clone(),
                created_at: format_time(k.record.created_at),
                expires_at: k.record.expires_at.map(format_time),
                last_used_at: time_or_none(k.last_used.load(Ordering::Relaxed)),
                revoked_at: k.record.revoked_at.map(format_time),
            })
            .collect();
        return Answer::json(StatusCode::OK, &KeyList { api_keys: keys });
    }
    let body = CreateApiKey::parse(req)?;
    let applied = state
        .engine
        .apply(Change::CreateSecretKey {
            slug: slug.to_string(),
            name: body.name,
            allowed_cidrs: body.allowed_cidrs,
            allowed_origins: body.allowed_origins,
            expires_at: body.expires_at,
        })
        .await?;
    let Applied::SecretKey { key, secret } = applied else {
        return Err(DomainError::Internal("unexpected apply result".into()).into());
    };
    audit(
        state,
        who,
        "create_api_key",
        Some(slug),
        &key.id.to_string(),
    )
    .await;
    Answer::json(
        StatusCode::CREATED,
        &KeyCreated {
            id: key.id,
            key: secret,
            name: key.name,
            key_prefix: key.key_prefix,
            allowed_cidrs: key.allowed_cidrs,
            allowed_origins: key.allowed_origins,
            created_at: format_time(key.created_at),
            expires_at: key.expires_at.map(format_time),
        },
    )
    .map(Answer::no_store)
}

pub async fn revoke_api_key(
    state: &AppState,
    who: &AdminPrincipal,
    slug: &str,
    id: &str,
) -> Handled {
    let id: uuid::Uuid = id.parse().map_err(|_| ApiError::code(Code::NotFound))?;
    state
        .engine
        .apply(Change::RevokeSecretKey {
            slug: slug.to_string(),
            id,
        })
        .await?;
    audit(state, who, "revoke_api_key", Some(slug), &id.to_string()).await;
    ok()
}

/// `GET /admin/v1/projects/{slug}/clients`
#[utoipa::path(get, path = "/admin/v1/projects/{slug}/clients", tag = "admin",
    security(("admin" = []), ("portal" = [])), params(("slug" = String, Path)),
    responses(
        (status = 200, description = "The project's public clients (revoked ones included), with a key prefix", body = ClientList),
        (status = 404, description = "`project_not_found`", body = CodedError)))]
pub fn clients_list_doc() {}

/// `POST /admin/v1/projects/{slug}/clients`
#[utoipa::path(post, path = "/admin/v1/projects/{slug}/clients", tag = "admin",
    security(("admin" = []), ("portal" = [])), params(("slug" = String, Path)), request_body = CreateClient,
    responses(
        (status = 201, description = "Created; `client_key` is shown this once", body = ClientCreated,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, description = "`invalid_public_scopes`", body = CodedError),
        (status = 404, description = "`project_not_found`", body = CodedError)))]
pub fn clients_create_doc() {}

/// `DELETE /admin/v1/projects/{slug}/clients/{client_id}`
#[utoipa::path(delete, path = "/admin/v1/projects/{slug}/clients/{client_id}", tag = "admin",
    security(("admin" = []), ("portal" = [])), params(("slug" = String, Path), ("client_id" = String, Path)),
    responses(
        (status = 200, description = "Revoked", body = super::Done),
        (status = 404, description = "`project_not_found`; `not_found`: no such client", body = CodedError)))]
pub fn client_revoke_doc() {}

/// `GET /admin/v1/projects/{slug}/api-keys`
#[utoipa::path(get, path = "/admin/v1/projects/{slug}/api-keys", tag = "admin",
    security(("admin" = []), ("portal" = [])), params(("slug" = String, Path)),
    responses(
        (status = 200, description = "The project's secret keys (revoked ones included), with a key prefix", body = KeyList),
        (status = 404, description = "`project_not_found`", body = CodedError)))]
pub fn keys_list_doc() {}

/// `POST /admin/v1/projects/{slug}/api-keys`
#[utoipa::path(post, path = "/admin/v1/projects/{slug}/api-keys", tag = "admin",
    security(("admin" = []), ("portal" = [])), params(("slug" = String, Path)), request_body = CreateApiKey,
    responses(
        (status = 201, description = "Created; `key` is shown this once", body = KeyCreated,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 404, description = "`project_not_found`", body = CodedError)))]
pub fn keys_create_doc() {}

/// `DELETE /admin/v1/projects/{slug}/api-keys/{id}`
#[utoipa::path(delete, path = "/admin/v1/projects/{slug}/api-keys/{id}", tag = "admin",
    security(("admin" = []), ("portal" = [])), params(("slug" = String, Path), ("id" = uuid::Uuid, Path)),
    responses(
        (status = 200, description = "Revoked", body = super::Done),
        (status = 404, description = "`project_not_found`; `not_found`: no such key", body = CodedError)))]
pub fn key_revoke_doc() {}
