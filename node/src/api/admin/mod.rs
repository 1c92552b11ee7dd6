//! The admin API (`/admin/v1/*`): authentication and dispatch. Today a caller authenticates
//! with a bearer admin token (the bootstrap `COMMONROCK_ADMIN_TOKEN` or a minted one); the
//! portal's cookie session will be one more `AdminPrincipal` variant checked here.

pub mod cluster;
pub mod credentials;
pub mod end_users;
pub mod orgs;
pub mod projects;
pub mod sql;
pub mod tokens;

use std::sync::Arc;

use commonrock_actors::crypto::secrets::{ct_eq, sha256};
use commonrock_actors::tenant::ProjectView;
use http::StatusCode;
use serde::Serialize;

use super::routes::AdminTarget;
use super::AppState;
use crate::http::{Answer, ApiError, Code, Handled, Request};

/// Who is calling the admin API; recorded on security events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminPrincipal {
    Bootstrap,
    Token(uuid::Uuid),
}

/// Admin API and /metrics only from `--admin-cidrs` when set; an unknown IP fails closed.
pub fn guard_network(state: &AppState, req: &Request) -> Result<(), ApiError> {
    if state.admin_cidrs.is_empty() {
        return Ok(());
    }
    match req.ip {
        Some(ip) if state.admin_cidrs.iter().any(|n| n.contains(&ip)) => Ok(()),
        _ => Err(ApiError::code(Code::IpDenied)),
    }
}

pub fn authenticate(state: &AppState, req: &Request) -> Result<AdminPrincipal, ApiError> {
    guard_network(state, req)?;
    let unauthorized = || {
        let mut e = ApiError::code(Code::Unauthorized);
        e.bearer_challenge = true;
        e
    };
    let token = req.bearer().ok_or_else(unauthorized)?;
    let hash = sha256(token.as_bytes());
    if let Some(bootstrap) = &state.bootstrap_admin_hash {
        if ct_eq(bootstrap, &hash) {
            return Ok(AdminPrincipal::Bootstrap);
        }
    }
    match state.engine.tenants().admin_tokens.get(&hash) {
        Some(t) if ct_eq(&t.token_hash, &hash) => Ok(AdminPrincipal::Token(t.id)),
        _ => Err(unauthorized()),
    }
}

pub fn project(state: &AppState, slug: &str) -> Result<Arc<ProjectView>, ApiError> {
    state
        .engine
        .tenants()
        .project(slug)
        .cloned()
        .ok_or_else(|| ApiError::code(Code::ProjectNotFound))
}

/// `{"status":"ok"}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Done {
    #[schema(example = "ok")]
    pub status: &'static str,
}

pub fn ok() -> Handled {
    Answer::json(StatusCode::OK, &Done { status: "ok" })
}

/// Logs an admin action as a structured security event (never with a secret).
pub fn audit(state: &AppState, who: &AdminPrincipal, action: &'static str, target: &str) {
    state
        .engine
        .metrics()
        .security_events
        .with_label_values(&["admin_action"])
        .inc();
    tracing::info!(event = "admin_action", principal = ?who, action, target, "admin action");
}

pub async fn dispatch(state: &Arc<AppState>, req: &Request, target: AdminTarget) -> Handled {
    let who = authenticate(state, req)?;
    use AdminTarget as A;
    match target {
        A::Orgs => orgs::handle(state, req, &who).await,
        A::Projects => projects::collection(state, req, &who).await,
        A::Project(slug) => projects::one(state, req, &who, &slug).await,
        A::ProjectMaintenance(slug) => projects::maintenance(state, req, &who, Some(&slug)).await,
        A::Maintenance => projects::maintenance(state, req, &who, None).await,
        A::Cluster => cluster::view(state),
        A::Clients(slug) => credentials::clients(state, req, &who, &slug).await,
        A::Client(slug, id) => credentials::revoke_client(state, &who, &slug, &id).await,
        A::ApiKeys(slug) => credentials::api_keys(state, req, &who, &slug).await,
        A::ApiKey(slug, id) => credentials::revoke_api_key(state, &who, &slug, &id).await,
        A::EndUser(slug, ext) => end_users::one(state, req, &who, &slug, &ext).await,
        A::EndUserPassword(slug, ext) => end_users::password(state, req, &who, &slug, &ext).await,
        A::EndUserSessions(slug, ext) => end_users::sessions(state, req, &who, &slug, &ext).await,
        A::Session(slug, id) => end_users::revoke_session(state, &who, &slug, &id).await,
        A::AdminTokens => tokens::collection(state, req, &who).await,
        A::AdminToken(id) => tokens::revoke(state, &who, &id).await,
        A::CrashShard(n) => crash_shard(state, req, &n).await,
        A::CrashTenants => crash_tenants(state, req).await,
        A::SqlTables(slug) => sql::tables(state, req, &who, &slug).await,
        A::SqlTable(slug, name) => sql::table(state, req, &who, &slug, &name).await,
        A::SqlDefinitions(slug) => sql::definitions(state, req, &who, &slug).await,
        A::SqlDefinition(slug, id) => sql::definition(state, req, &who, &slug, &id).await,
    }
}

/// Fault injection for the supervision tests: exists only when the node enables it.
/// `?fail_restarts=N` makes the next N starts of the actor fail, so the restart backs off.
async fn crash_shard(state: &AppState, req: &Request, n: &str) -> Handled {
    let fail_restarts = fault_injection(state, req)?;
    let index: usize = n.parse().map_err(|_| ApiError::code(Code::NotFound))?;
    if index >= state.engine.shard_count() {
        return Err(ApiError::code(Code::NotFound));
    }
    state.engine.fail_shard_starts(fail_restarts).await?;
    state.engine.crash_shard(index).await?;
    ok()
}

async fn crash_tenants(state: &AppState, req: &Request) -> Handled {
    let fail_restarts = fault_injection(state, req)?;
    state.engine.crash_directory(fail_restarts).await?;
    ok()
}

/// 404 unless the node enables fault injection; the requested number of failing restarts.
fn fault_injection(state: &AppState, req: &Request) -> Result<u32, ApiError> {
    if !state.fault_injection {
        return Err(ApiError::code(Code::NotFound));
    }
    Ok(req
        .query
        .split('&')
        .find_map(|kv| kv.strip_prefix("fail_restarts="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}
