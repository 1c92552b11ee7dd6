//! `POST /{slug}/v1/sessions/introspect[/batch]` with a secret key: is this access token
//! active, and whose is it? Secret-key authentication (SPEC §2) lives here too.

use std::sync::Arc;

use commonrock_actors::crypto::secrets::{ct_eq, sha256};
use commonrock_actors::engine::{credential_key, now, Active};
use commonrock_actors::origin;
use commonrock_actors::ratelimit::LimitCheck;
use commonrock_actors::tenant::{KeyEntry, ProjectView};
use http::StatusCode;
use serde::Serialize;
use std::borrow::Cow;
use utoipa::openapi::schema::{Array, ArrayBuilder, ObjectBuilder, SchemaType, Type};
use utoipa::ToSchema;

use super::AppState;
use crate::http::schema::JsonBody;
use crate::http::validation::Fields;
use crate::http::{format_time, Answer, ApiError, Code, Handled, Request};

pub const MAX_BATCH: usize = 1000;
const MAX_TOKEN_CHARS: usize = 4096;

const MAX_SCOPES: usize = 100;
const MAX_SCOPE_CHARS: usize = 256;

/// The introspection body. The hot path deserialises it straight from the bytes, borrowing the
/// token instead of building a JSON tree; a body that does not deserialise, or breaks a limit,
/// is read again through `Fields` for the seed's 422 answer, into the same type.
#[derive(serde::Deserialize, ToSchema)]
pub struct IntrospectBody<'a> {
    /// The access token; absent, unknown, expired or revoked → `{"active":false}`.
    #[serde(borrow, default)]
    #[schema(value_type = Option<String>, max_length = 4096)]
    pub token: Option<Cow<'a, str>>,
    /// Accepted for forward compatibility; unused.
    #[serde(borrow, default)]
    #[schema(schema_with = scopes_schema)]
    pub required_scopes: Option<Vec<Cow<'a, str>>>,
}

fn scopes_schema() -> Array {
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(MAX_SCOPE_CHARS)),
        )
        .max_items(Some(MAX_SCOPES))
        .build()
}

impl IntrospectBody<'_> {
    fn is_valid(&self) -> bool {
        self.token
            .as_ref()
            .is_none_or(|t| t.chars().count() <= MAX_TOKEN_CHARS)
            && self.required_scopes.as_ref().is_none_or(|s| {
                s.len() <= MAX_SCOPES && s.iter().all(|x| x.chars().count() <= MAX_SCOPE_CHARS)
            })
    }
}

impl JsonBody for IntrospectBody<'static> {
    fn read(f: &mut Fields<'_>, _req: &Request) -> Option<Self> {
        let token = f.opt_string("token", MAX_TOKEN_CHARS);
        let scopes = f.string_list("required_scopes", false, MAX_SCOPES, MAX_SCOPE_CHARS);
        Some(IntrospectBody {
            token: token.map(Cow::Owned),
            required_scopes: scopes.map(|s| s.into_iter().map(Cow::Owned).collect()),
        })
    }
}

/// Whether a body is a JSON object: serde's derived structs also accept an array of their
/// fields in order (`["<token>"]`), which every other endpoint refuses with 422
/// `type_error.dict`. The validating path gives that answer.
fn is_object(body: &[u8]) -> bool {
    body.iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{')
}

/// The batch body: up to 1000 tokens, answered in the same order.
#[derive(serde::Deserialize, ToSchema)]
pub struct BatchBody<'a> {
    #[serde(borrow)]
    #[schema(schema_with = tokens_schema)]
    pub tokens: Vec<Cow<'a, str>>,
}

fn tokens_schema() -> Array {
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(MAX_TOKEN_CHARS)),
        )
        .max_items(Some(MAX_BATCH))
        .build()
}

impl BatchBody<'_> {
    fn is_valid(&self) -> bool {
        self.tokens.len() <= MAX_BATCH
            && self
                .tokens
                .iter()
                .all(|t| t.chars().count() <= MAX_TOKEN_CHARS)
    }
}

impl JsonBody for BatchBody<'static> {
    fn read(f: &mut Fields<'_>, _req: &Request) -> Option<Self> {
        let tokens = f.string_list("tokens", true, MAX_BATCH, MAX_TOKEN_CHARS);
        Some(BatchBody {
            tokens: tokens?.into_iter().map(Cow::Owned).collect(),
        })
    }
}

/// SPEC §2, in order: header present (401) → key live and of this project (401) → at least one
/// restriction (403) → IP inside `allowed_cidrs` (403) → Origin sent and allowed (403); then
/// the per-key limit (429). The IP is checked on every request; an unknown IP fails closed.
pub async fn authenticate_key(
    state: &AppState,
    req: &Request,
    project: &ProjectView,
) -> Result<Arc<KeyEntry>, ApiError> {
    let presented = req
        .header("x-api-key")
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| ApiError::code(Code::MissingApiKey))?;
    let hash = sha256(presented.as_bytes());
    let now = now();
    let entry = state
        .engine
        .tenants()
        .secret_keys
        .get(&hash)
        .cloned()
        .filter(|k| {
            ct_eq(&k.record.key_hash, &hash)
                && k.record.project_id == project.project.id
                && k.record.revoked_at.is_none()
                && k.record.expires_at.is_none_or(|t| now < t)
        })
        .ok_or_else(|| ApiError::code(Code::InvalidApiKey))?;
    let key = &entry.record;
    if key.allowed_cidrs.is_empty() && key.allowed_origins.is_empty() {
        return Err(ApiError::code(Code::RestrictionsRequired));
    }
    if !key.allowed_cidrs.is_empty() {
        let inside = req
            .ip
            .is_some_and(|ip| key.allowed_cidrs.iter().any(|net| net.contains(&ip)));
        if !inside {
            return Err(ApiError::code(Code::IpDenied));
        }
    }
    if !key.allowed_origins.is_empty() {
        let origin = req
            .origin()
            .ok_or_else(|| ApiError::code(Code::OriginRequired))?;
        if !key
            .allowed_origins
            .iter()
            .any(|a| origin::matches(a, origin))
        {
            return Err(ApiError::code(Code::OriginDenied));
        }
    }
    let route = credential_key(b'k', key.id.as_bytes());
    state.engine.check_capacity(LimitCheck {
        name: "per_secret_key",
        key: route.clone(),
        limit: project.project.settings.rate_limits.per_secret_key,
    })?;
    entry.touch(now);
    Ok(entry)
}

/// The single answer: every field when active, `{"active":false}` and nothing else otherwise.
#[derive(Serialize, ToSchema)]
pub struct IntrospectionResult {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_id: Option<uuid::Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_user_id: Option<uuid::Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<uuid::Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

impl IntrospectionResult {
    fn of(active: Option<Active>) -> Self {
        match active {
            Some(a) => IntrospectionResult {
                active: true,
                project_id: Some(a.session.project_id),
                end_user_id: Some(a.session.end_user_id),
                session_id: Some(a.session.id),
                expires_at: Some(format_time(a.expires_at)),
            },
            None => IntrospectionResult {
                active: false,
                project_id: None,
                end_user_id: None,
                session_id: None,
                expires_at: None,
            },
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct BatchResult {
    pub results: Vec<IntrospectionResult>,
}

pub async fn handle(
    state: &Arc<AppState>,
    req: &Request,
    project: &Arc<ProjectView>,
    batch: bool,
) -> Handled {
    authenticate_key(state, req, project).await?;
    if batch {
        introspect_batch(state, req, project).await
    } else {
        introspect(state, req, project).await
    }
}

/// `POST /{slug}/v1/sessions/introspect`
#[utoipa::path(post, path = "/{slug}/v1/sessions/introspect", tag = "introspection",
    params(("slug" = String, Path)), request_body = IntrospectBody, security(("secret_key" = [])),
    responses((status = 200, description = "`{\"active\":false}` alone for any token that is not active", body = IntrospectionResult,
        headers(("Cache-Control" = String, description = "`no-store`")))))]
pub async fn introspect(state: &AppState, req: &Request, project: &ProjectView) -> Handled {
    req.check_content_type()?;
    let fast = is_object(&req.body)
        .then(|| serde_json::from_slice::<IntrospectBody<'_>>(&req.body).ok())
        .flatten()
        .filter(IntrospectBody::is_valid);
    // Anything the typed parse refuses takes the validating path, which names every problem.
    let body = match fast {
        Some(body) => body,
        None => IntrospectBody::parse(req)?,
    };
    let active = match body.token {
        Some(t) => state.engine.introspect(project, &t).await?,
        None => None,
    };
    Ok(Answer::json(StatusCode::OK, &IntrospectionResult::of(active))?.no_store())
}

/// `POST /{slug}/v1/sessions/introspect/batch`: up to 1000 tokens, answers in request order.
#[utoipa::path(post, path = "/{slug}/v1/sessions/introspect/batch", tag = "introspection",
    params(("slug" = String, Path)), request_body = BatchBody, security(("secret_key" = [])),
    responses((status = 200, description = "One result per token, in request order", body = BatchResult,
        headers(("Cache-Control" = String, description = "`no-store`")))))]
pub async fn introspect_batch(state: &AppState, req: &Request, project: &ProjectView) -> Handled {
    req.check_content_type()?;
    let fast = is_object(&req.body)
        .then(|| serde_json::from_slice::<BatchBody<'_>>(&req.body).ok())
        .flatten()
        .filter(BatchBody::is_valid);
    let body = match fast {
        Some(body) => body,
        None => BatchBody::parse(req)?,
    };
    let results = state
        .engine
        .introspect_batch(project, &body.tokens)
        .await?
        .into_iter()
        .map(IntrospectionResult::of)
        .collect();
    Ok(Answer::json(StatusCode::OK, &BatchResult { results })?.no_store())
}
