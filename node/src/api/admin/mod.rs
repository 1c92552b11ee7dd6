//! The admin API (`/admin/v1/*`): authentication and dispatch. A caller authenticates with a
//! bearer admin token (the bootstrap `COMMONROCK_ADMIN_TOKEN` or a minted one) or with the
//! portal's session cookie; a cookie-authenticated write must also carry the session's CSRF
//! token (SPEC §10).

pub mod admin_users;
pub mod audit;
pub mod auth;
pub mod cluster;
pub mod credentials;
pub mod end_users;
pub mod orgs;
pub mod projects;
pub mod sql;
pub mod tokens;

use std::sync::Arc;

use commonrock_actors::crypto::secrets::{ct_eq, sha256};
use commonrock_actors::engine::portal::PortalSession;
use commonrock_actors::tenant::ProjectView;
use http::{Method, StatusCode};
use serde::Serialize;

use super::routes::AdminTarget;
use super::AppState;
use crate::http::{Answer, ApiError, Code, Handled, Request};

pub use audit::audit;

/// Who is calling the admin API, and from where; recorded in the audit log.
#[derive(Clone, Debug)]
pub struct AdminPrincipal {
    pub actor: Actor,
    pub ip: Option<std::net::IpAddr>,
}

#[derive(Clone, Debug)]
pub enum Actor {
    Bootstrap,
    Token(uuid::Uuid),
    /// An admin user, by the portal's session cookie.
    User(Box<PortalSession>),
}

impl AdminPrincipal {
    /// The portal session, when the caller is an admin user.
    pub fn session(&self) -> Option<&PortalSession> {
        match &self.actor {
            Actor::User(s) => Some(s),
            _ => None,
        }
    }
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

fn unauthorized() -> ApiError {
    let mut e = ApiError::code(Code::Unauthorized);
    e.bearer_challenge = true;
    e
}

/// A bearer token when one is sent (it wins over a cookie), else the portal cookie.
pub async fn authenticate(state: &AppState, req: &Request) -> Result<AdminPrincipal, ApiError> {
    guard_network(state, req)?;
    let principal = |actor| AdminPrincipal { actor, ip: req.ip };
    if let Some(token) = req.bearer() {
        return bearer(state, token).map(principal);
    }
    let token = auth::session_cookie(req).ok_or_else(unauthorized)?;
    let session = state
        .engine
        .portal_session(token, &super::public::caller(req))
        .await
        .map_err(|e| match e {
            commonrock_actors::DomainError::InvalidSession => unauthorized(),
            other => other.into(),
        })?;
    if !matches!(req.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        let expected = state.engine.csrf_token(&session.session);
        let sent = req.header("x-csrf-token");
        match (expected, sent) {
            (Some(e), Some(s)) if ct_eq(e.as_bytes(), s.as_bytes()) => {}
            _ => return Err(ApiError::code(Code::CsrfFailed)),
        }
    }
    Ok(principal(Actor::User(Box::new(session))))
}

fn bearer(state: &AppState, token: &str) -> Result<Actor, ApiError> {
    let hash = sha256(token.as_bytes());
    if let Some(bootstrap) = &state.bootstrap_admin_hash {
        if ct_eq(bootstrap, &hash) {
            return Ok(Actor::Bootstrap);
        }
    }
    match state.engine.tenants().admin_tokens.get(&hash) {
        Some(t) if ct_eq(&t.token_hash, &hash) => Ok(Actor::Token(t.id)),
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

pub async fn dispatch(state: &Arc<AppState>, req: &Request, target: AdminTarget) -> Handled {
    use AdminTarget as A;
    // Logging in is the one admin call without credentials.
    if let A::AuthLogin = target {
        guard_network(state, req)?;
        return auth::login(state, req).await;
    }
    let who = authenticate(state, req).await?;
    let answer = route(state, req, &who, target)
        .await
        .unwrap_or_else(Answer::from);
    // A renewed portal session's new token goes back with every answer, errors included.
    Ok(match who.session().and_then(|s| s.renewed.as_deref()) {
        Some(token) if !answer.headers.contains_key(http::header::SET_COOKIE) => {
            answer.with_header(http::header::SET_COOKIE, auth::cookie(state, token))
        }
        _ => answer,
    })
}

async fn route(
    state: &Arc<AppState>,
    req: &Request,
    who: &AdminPrincipal,
    target: AdminTarget,
) -> Handled {
    use AdminTarget as A;
    match target {
        A::AuthLogin => auth::login(state, req).await,
        A::AuthLogout => auth::logout(state, who).await,
        A::AuthMe => auth::me(state, who).await,
        A::TotpEnroll => auth::totp_enroll(state, req, who).await,
        A::TotpConfirm => auth::totp_confirm(state, req, who).await,
        A::AdminUsers => admin_users::collection(state, req, who).await,
        A::AdminUser(id) => admin_users::one(state, req, who, &id).await,
        A::AdminUserTotp(id) => admin_users::reset_totp(state, who, &id).await,
        A::AuditLog => audit::list(state, req).await,
        A::Orgs => orgs::handle(state, req, who).await,
        A::Projects => projects::collection(state, req, who).await,
        A::Project(slug) => projects::one(state, req, who, &slug).await,
        A::ProjectMaintenance(slug) => projects::maintenance(state, req, who, Some(&slug)).await,
        A::Maintenance => projects::maintenance(state, req, who, None).await,
        A::Cluster => cluster::view(state),
        A::Clients(slug) => credentials::clients(state, req, who, &slug).await,
        A::Client(slug, id) => credentials::revoke_client(state, who, &slug, &id).await,
        A::ApiKeys(slug) => credentials::api_keys(state, req, who, &slug).await,
        A::ApiKey(slug, id) => credentials::revoke_api_key(state, who, &slug, &id).await,
        A::EndUser(slug, ext) => end_users::one(state, req, who, &slug, &ext).await,
        A::EndUserPassword(slug, ext) => end_users::password(state, req, who, &slug, &ext).await,
        A::EndUserSessions(slug, ext) => end_users::sessions(state, req, who, &slug, &ext).await,
        A::Session(slug, id) => end_users::revoke_session(state, who, &slug, &id).await,
        A::AdminTokens => tokens::collection(state, req, who).await,
        A::AdminToken(id) => tokens::revoke(state, who, &id).await,
        A::CrashShard(n) => crash_shard(state, req, &n).await,
        A::CrashTenants => crash_tenants(state, req).await,
        A::SqlTables(slug) => sql::tables(state, req, who, &slug).await,
        A::SqlTable(slug, name) => sql::table(state, req, who, &slug, &name).await,
        A::SqlDefinitions(slug) => sql::definitions(state, req, who, &slug).await,
        A::SqlDefinition(slug, id) => sql::definition(state, req, who, &slug, &id).await,
        A::SqlExecute(slug) => sql::execute(state, req, who, &slug).await,
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
