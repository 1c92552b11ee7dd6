//! The public API (`/{slug}/v1/public/*`), called by browsers and native apps with a public
//! client: client authentication in SPEC §2's order, CORS preflight, shared helpers.

pub mod end_users;
pub mod sessions;

use std::net::IpAddr;
use std::sync::Arc;

use commonrock_actors::crypto::secrets::{ct_eq, sha256};
use commonrock_actors::engine::{credential_key, now, Caller};
use commonrock_actors::origin;
use commonrock_actors::ratelimit::LimitCheck;
use commonrock_actors::tenant::{ClientEntry, ProjectView};
use http::header::HeaderValue;
use http::StatusCode;
use serde_json::Value;

use super::AppState;
use crate::http::validation::{Fields, Issue};
use crate::http::{Answer, ApiError, Code, Request};

pub const SCOPES: [&str; 6] = [
    "end_users:signup",
    "end_users:login",
    "end_users:refresh",
    "end_users:logout",
    "end_users:me",
    "sql:execute",
];

/// Answer to `OPTIONS` on a public path; CORS headers only when the Origin is allowed.
pub fn preflight(allowed: bool) -> Answer {
    let answer = Answer::empty(StatusCode::NO_CONTENT);
    if !allowed {
        return answer;
    }
    answer
        .with_header(
            http::header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
        )
        .with_header(
            http::header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(
                "Content-Type, Authorization, X-Client-Id, X-Client-Key, X-Device-Id",
            ),
        )
        .with_header(
            http::header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        )
}

/// SPEC §2, in order: client and key (401) → Origin present (403) → Origin allowed (403) →
/// scope (403); then the per-IP and the per-client rate limits (429).
pub async fn authenticate_client(
    state: &AppState,
    req: &Request,
    project: &ProjectView,
    scope: &str,
) -> Result<Arc<ClientEntry>, ApiError> {
    let invalid = || ApiError::code(Code::InvalidCredentials);
    let id = req.header("x-client-id").ok_or_else(invalid)?;
    let key = req.header("x-client-key").ok_or_else(invalid)?;
    let client = project
        .clients
        .get(id)
        .filter(|c| c.record.revoked_at.is_none())
        .ok_or_else(invalid)?;
    if !ct_eq(&sha256(key.as_bytes()), &client.record.key_hash) {
        return Err(invalid());
    }
    let origin = req
        .origin()
        .ok_or_else(|| ApiError::code(Code::OriginRequired))?;
    if !client
        .record
        .allowed_origins
        .iter()
        .any(|allowed| origin::matches(allowed, origin))
    {
        return Err(ApiError::code(Code::OriginDenied));
    }
    if !client.record.scopes.iter().any(|s| s == scope) {
        return Err(ApiError::code(Code::ClientScopeDenied));
    }
    // Per IP first: a request it refuses draws nothing from the client's budget.
    state.engine.check_capacity(LimitCheck {
        name: "public_per_ip",
        key: ip_bucket_key(project, req.ip),
        limit: project.project.settings.rate_limits.public_per_ip,
    })?;
    let key = credential_key(b'c', client.record.client_id.as_bytes());
    state.engine.check_capacity(LimitCheck {
        name: "per_client",
        key: key.clone(),
        limit: project.project.settings.rate_limits.per_client,
    })?;
    client.touch(now());
    Ok(client.clone())
}

/// The per-IP bucket of a public caller in one project. An IPv6 caller is keyed by its /64:
/// one host usually holds a whole /64 and could otherwise rotate addresses at will. Callers
/// whose IP is unknown share one bucket (unknown must not mean unlimited).
fn ip_bucket_key(project: &ProjectView, ip: Option<IpAddr>) -> Vec<u8> {
    let mut key = Vec::with_capacity(2 + 16 + 8);
    key.extend_from_slice(b"pi");
    key.extend_from_slice(project.project.id.as_bytes());
    match ip.map(|ip| ip.to_canonical()) {
        Some(IpAddr::V4(v4)) => key.extend_from_slice(&v4.octets()),
        Some(IpAddr::V6(v6)) => key.extend_from_slice(&v6.octets()[..8]),
        None => key.extend_from_slice(b"unknown"),
    }
    key
}

pub fn caller(req: &Request) -> Caller {
    Caller {
        ip: req.ip,
        user_agent: req.user_agent(),
    }
}

/// `device_id` from the body, else from `X-Device-Id`; at most 128 characters.
pub fn device_id(fields: &mut Fields<'_>, req: &Request) -> Option<String> {
    if fields.has("device_id") && !matches!(fields.raw("device_id"), None | Some(Value::Null)) {
        return fields.string("device_id", 1, 128);
    }
    match req
        .header("x-device-id")
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        Some(d) if d.chars().count() > 128 => {
            fields.push(Issue::header_too_long("x-device-id", 128));
            None
        }
        Some(d) => Some(d.to_string()),
        None => {
            fields.push(Issue::missing(crate::http::validation::body_loc(
                "device_id",
            )));
            None
        }
    }
}

/// A Bearer access token's session, or the seed's `{"detail":"Invalid session"}` (401).
pub async fn session(
    state: &AppState,
    req: &Request,
    project: &ProjectView,
) -> Result<commonrock_actors::model::SessionState, ApiError> {
    let token = req.bearer().ok_or_else(ApiError::invalid_session)?;
    Ok(state.engine.authenticate(project, token).await?)
}
