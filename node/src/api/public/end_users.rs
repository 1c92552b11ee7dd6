//! `/{slug}/v1/public/end-users/{signup,login,refresh,logout,me,password}`.

use std::sync::Arc;

use commonrock_actors::engine::{ip_key, now, Credentials, Issued};
use commonrock_actors::ratelimit::LimitCheck;
use commonrock_actors::tenant::ProjectView;
use http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::{authenticate_client, caller, device_id, session};
use crate::api::routes::EndUserAction;
use crate::api::AppState;
use crate::http::validation::{validated, Fields};
use crate::http::{format_time, Answer, ApiError, Handled, Request};

#[derive(Serialize, ToSchema)]
pub struct EndUserRef {
    pub id: uuid::Uuid,
    pub external_id: String,
}

/// The seed's token response plus the OAuth-style aliases its Next.js handler reads.
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    pub token: String,
    pub refresh_token: String,
    pub end_user: EndUserRef,
    pub session_id: uuid::Uuid,
    #[schema(example = "2026-02-04T13:00:00Z")]
    pub expires_at: String,
    pub refresh_expires_at: String,
    pub access_token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    pub expires_in: i64,
    pub user: EndUserRef,
}

/// Body of signup and login (documents what `credentials` validates).
#[derive(ToSchema)]
pub struct CredentialsBody {
    #[schema(min_length = 1, max_length = 128, example = "user-1")]
    pub external_id: String,
    /// At least 8 characters at signup; any length at login.
    #[schema(min_length = 8, max_length = 1024, example = "password123")]
    pub password: String,
    /// Else the `X-Device-Id` header; one of them is required.
    #[schema(max_length = 128, example = "iphone-15")]
    pub device_id: Option<String>,
}

#[derive(ToSchema)]
pub struct RefreshBody {
    pub refresh_token: String,
    #[schema(max_length = 128)]
    pub device_id: Option<String>,
}

#[derive(ToSchema)]
pub struct PasswordBody {
    pub current_password: String,
    #[schema(min_length = 8, max_length = 1024)]
    pub new_password: String,
}

#[derive(Serialize, ToSchema)]
pub struct StatusOk {
    #[schema(example = "ok")]
    pub status: &'static str,
}

fn token_answer(status: StatusCode, issued: Issued) -> Handled {
    let s = &issued.session;
    let body = TokenResponse {
        token: issued.access_token.clone(),
        refresh_token: issued.refresh_token,
        end_user: EndUserRef {
            id: s.end_user_id,
            external_id: s.external_id.clone(),
        },
        session_id: s.id,
        expires_at: format_time(s.access_expires_at),
        refresh_expires_at: format_time(s.refresh_expires_at),
        access_token: issued.access_token,
        token_type: "Bearer",
        expires_in: (s.access_expires_at - now()).max(0),
        user: EndUserRef {
            id: s.end_user_id,
            external_id: s.external_id.clone(),
        },
    };
    Ok(Answer::json(status, &body)?.no_store())
}

pub async fn handle(
    state: &Arc<AppState>,
    req: &Request,
    project: &Arc<ProjectView>,
    action: EndUserAction,
) -> Handled {
    match action {
        EndUserAction::Signup => signup(state, req, project).await,
        EndUserAction::Login => login(state, req, project).await,
        EndUserAction::Refresh => refresh(state, req, project).await,
        EndUserAction::Logout => logout(state, req, project).await,
        EndUserAction::Me => me(state, req, project).await,
        EndUserAction::Password => password(state, req, project).await,
    }
}

/// Per-IP limit of an endpoint (signups, login attempts), counted before the body is read.
async fn ip_limit(
    state: &AppState,
    req: &Request,
    project: &ProjectView,
    name: &'static str,
    limit: commonrock_actors::model::Limit,
) -> Result<(), ApiError> {
    let route = ip_key(project.project.id, req.ip);
    let key = [name.as_bytes(), &route].concat();
    state
        .engine
        .check_limits(&route, vec![LimitCheck { name, key, limit }])
        .await?;
    Ok(())
}

fn credentials(req: &Request, password_min: usize) -> Result<Credentials, ApiError> {
    let body = req.json()?;
    let mut f = Fields::of(&body)?;
    let external_id = f.string("external_id", 1, 128);
    let password = f.string("password", password_min, 1024);
    let device_id = device_id(&mut f, req);
    f.finish()?;
    Ok(Credentials {
        external_id: validated(external_id)?,
        password: validated(password)?,
        device_id: validated(device_id)?,
    })
}

/// `POST /{slug}/v1/public/end-users/signup`
#[utoipa::path(post, path = "/{slug}/v1/public/end-users/signup", tag = "end-users",
    params(("slug" = String, Path)), request_body = CredentialsBody, security(("public_client" = [])),
    responses((status = 201, body = TokenResponse), (status = 409, description = "External ID already registered")))]
pub async fn signup(state: &AppState, req: &Request, project: &ProjectView) -> Handled {
    authenticate_client(state, req, project, "end_users:signup").await?;
    ip_limit(
        state,
        req,
        project,
        "signup_per_ip",
        project.project.settings.rate_limits.signup_per_ip,
    )
    .await?;
    let creds = credentials(req, 8)?;
    let issued = state.engine.signup(project, creds, &caller(req)).await?;
    token_answer(StatusCode::CREATED, issued)
}

/// `POST /{slug}/v1/public/end-users/login`
#[utoipa::path(post, path = "/{slug}/v1/public/end-users/login", tag = "end-users",
    params(("slug" = String, Path)), request_body = CredentialsBody, security(("public_client" = [])),
    responses((status = 200, body = TokenResponse), (status = 401, description = "Invalid credentials")))]
pub async fn login(state: &AppState, req: &Request, project: &ProjectView) -> Handled {
    authenticate_client(state, req, project, "end_users:login").await?;
    ip_limit(
        state,
        req,
        project,
        "login_per_ip",
        project.project.settings.rate_limits.login_per_ip,
    )
    .await?;
    // The password minimum is a signup rule: a short password here is just a wrong one.
    let creds = credentials(req, 0)?;
    let issued = state.engine.login(project, creds, &caller(req)).await?;
    token_answer(StatusCode::OK, issued)
}

/// `POST /{slug}/v1/public/end-users/refresh`
#[utoipa::path(post, path = "/{slug}/v1/public/end-users/refresh", tag = "end-users",
    params(("slug" = String, Path)), request_body = RefreshBody, security(("public_client" = [])),
    responses((status = 200, body = TokenResponse), (status = 401, description = "Invalid refresh token")))]
pub async fn refresh(state: &AppState, req: &Request, project: &ProjectView) -> Handled {
    authenticate_client(state, req, project, "end_users:refresh").await?;
    let body = req.json()?;
    let mut f = Fields::of(&body)?;
    let token = f.string("refresh_token", 1, 512);
    let device = device_id(&mut f, req);
    f.finish()?;
    let issued = state
        .engine
        .refresh(
            project,
            &validated(token)?,
            validated(device)?,
            &caller(req),
        )
        .await?;
    token_answer(StatusCode::OK, issued)
}

/// `POST /{slug}/v1/public/end-users/logout`
#[utoipa::path(post, path = "/{slug}/v1/public/end-users/logout", tag = "end-users",
    params(("slug" = String, Path)), security(("public_client" = [], "bearer" = [])),
    responses((status = 200, body = StatusOk), (status = 401, description = "Invalid session")))]
pub async fn logout(state: &AppState, req: &Request, project: &ProjectView) -> Handled {
    authenticate_client(state, req, project, "end_users:logout").await?;
    let token = req.bearer().ok_or_else(ApiError::invalid_session)?;
    state.engine.logout(project, token).await?;
    Answer::json(StatusCode::OK, &StatusOk { status: "ok" })
}

/// `GET /{slug}/v1/public/end-users/me`
#[utoipa::path(get, path = "/{slug}/v1/public/end-users/me", tag = "end-users",
    params(("slug" = String, Path)), security(("public_client" = [], "bearer" = [])),
    responses((status = 200, body = EndUserRef), (status = 401, description = "Invalid session")))]
pub async fn me(state: &AppState, req: &Request, project: &ProjectView) -> Handled {
    authenticate_client(state, req, project, "end_users:me").await?;
    let s = session(state, req, project).await?;
    Answer::json(
        StatusCode::OK,
        &EndUserRef {
            id: s.end_user_id,
            external_id: s.external_id.to_string(),
        },
    )
}

/// `POST /{slug}/v1/public/end-users/password`: change the password, revoke other sessions.
#[utoipa::path(post, path = "/{slug}/v1/public/end-users/password", tag = "end-users",
    params(("slug" = String, Path)), request_body = PasswordBody, security(("public_client" = [], "bearer" = [])),
    responses((status = 200, body = StatusOk), (status = 401, description = "Invalid session or credentials")))]
pub async fn password(state: &AppState, req: &Request, project: &ProjectView) -> Handled {
    authenticate_client(state, req, project, "end_users:me").await?;
    let s = session(state, req, project).await?;
    let body = req.json()?;
    let mut f = Fields::of(&body)?;
    let current = f.string("current_password", 0, 1024);
    let new = f.string("new_password", 8, 1024);
    f.finish()?;
    let (current, new) = (validated(current)?, validated(new)?);
    // Per-account attempt limits also guard the current-password check against guessing.
    let account = commonrock_actors::engine::account_key(project.project.id, &s.external_id);
    state
        .engine
        .check_limits(
            &account,
            vec![LimitCheck {
                name: "login_per_account",
                key: [b"la:".as_slice(), &account].concat(),
                limit: project.project.settings.rate_limits.login_per_account,
            }],
        )
        .await?;
    state
        .engine
        .change_password(project, &s, current, new)
        .await?;
    Answer::json(StatusCode::OK, &StatusOk { status: "ok" })
}
