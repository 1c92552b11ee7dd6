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
use utoipa::ToSchema;

use super::AppState;
use crate::http::validation::Fields;
use crate::http::{format_time, Answer, ApiError, Code, Handled, Request};

pub const MAX_BATCH: usize = 1000;
const MAX_TOKEN_CHARS: usize = 4096;

/// The hot path's typed parse: borrows the tokens from the body instead of building a JSON
/// tree and copying each string. Only bodies that pass every check of the validating path use
/// it, so both paths accept exactly the same requests.
#[derive(serde::Deserialize)]
struct FastSingle<'a> {
    #[serde(borrow, default)]
    token: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    required_scopes: Option<Vec<std::borrow::Cow<'a, str>>>,
}

impl FastSingle<'_> {
    fn is_valid(&self) -> bool {
        self.token
            .as_ref()
            .is_none_or(|t| t.chars().count() <= MAX_TOKEN_CHARS)
            && self
                .required_scopes
                .as_ref()
                .is_none_or(|s| s.len() <= 100 && s.iter().all(|x| x.chars().count() <= 256))
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

#[derive(serde::Deserialize)]
struct FastBatch<'a> {
    #[serde(borrow)]
    tokens: Vec<std::borrow::Cow<'a, str>>,
}

impl FastBatch<'_> {
    fn is_valid(&self) -> bool {
        self.tokens.len() <= MAX_BATCH
            && self
                .tokens
                .iter()
                .all(|t| t.chars().count() <= MAX_TOKEN_CHARS)
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

#[derive(ToSchema)]
pub struct IntrospectBody {
    pub token: Option<String>,
    /// Accepted for forward compatibility; unused.
    pub required_scopes: Option<Vec<String>>,
}

#[derive(ToSchema)]
pub struct BatchBody {
    #[schema(max_items = 1000)]
    pub tokens: Vec<String>,
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
    responses((status = 200, body = IntrospectionResult), (status = 401, description = "Invalid API key")))]
pub async fn introspect(state: &AppState, req: &Request, project: &ProjectView) -> Handled {
    req.check_content_type()?;
    if let Some(fast) = is_object(&req.body)
        .then(|| serde_json::from_slice::<FastSingle<'_>>(&req.body).ok())
        .flatten()
    {
        if fast.is_valid() {
            let active = match fast.token {
                Some(t) => state.engine.introspect(project, &t).await?,
                None => None,
            };
            return Ok(Answer::json(StatusCode::OK, &IntrospectionResult::of(active))?.no_store());
        }
    }
    // Anything the typed parse refuses takes the validating path, which names every problem.
    let body = req.json()?;
    let mut f = Fields::of(&body)?;
    let token = f.opt_string("token", MAX_TOKEN_CHARS);
    f.string_list("required_scopes", false, 100, 256);
    f.finish()?;
    let active = match token {
        Some(t) => state.engine.introspect(project, &t).await?,
        None => None,
    };
    Ok(Answer::json(StatusCode::OK, &IntrospectionResult::of(active))?.no_store())
}

/// `POST /{slug}/v1/sessions/introspect/batch`: up to 1000 tokens, answers in request order.
#[utoipa::path(post, path = "/{slug}/v1/sessions/introspect/batch", tag = "introspection",
    params(("slug" = String, Path)), request_body = BatchBody, security(("secret_key" = [])),
    responses((status = 200, body = BatchResult), (status = 422, description = "More than 1000 tokens")))]
pub async fn introspect_batch(state: &AppState, req: &Request, project: &ProjectView) -> Handled {
    req.check_content_type()?;
    if let Some(fast) = is_object(&req.body)
        .then(|| serde_json::from_slice::<FastBatch<'_>>(&req.body).ok())
        .flatten()
    {
        if fast.is_valid() {
            let results = state
                .engine
                .introspect_batch(project, &fast.tokens)
                .await?
                .into_iter()
                .map(IntrospectionResult::of)
                .collect();
            return Ok(Answer::json(StatusCode::OK, &BatchResult { results })?.no_store());
        }
    }
    let body = req.json()?;
    let mut f = Fields::of(&body)?;
    let tokens = f.string_list("tokens", true, MAX_BATCH, MAX_TOKEN_CHARS);
    f.finish()?;
    let tokens = crate::http::validation::validated(tokens)?;
    let results = state
        .engine
        .introspect_batch(project, &tokens)
        .await?
        .into_iter()
        .map(IntrospectionResult::of)
        .collect();
    Ok(Answer::json(StatusCode::OK, &BatchResult { results })?.no_store())
}
