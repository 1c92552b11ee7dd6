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
use crate::http::schema::JsonBody;
use crate::http::schema::{CodedError, PlainError};
use crate::http::validation::Fields;
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

/// `POST signup`. `device_id` comes from the body, else from the `X-Device-Id` header; one of
/// them is required (422 `["body","device_id"]` otherwise).
#[derive(ToSchema)]
pub struct SignupBody {
    #[schema(min_length = 1, max_length = 128, example = "user-1")]
    pub external_id: String,
    #[schema(min_length = 8, max_length = 1024, example = "password123")]
    pub password: String,
    /// The session's device; else the `X-Device-Id` header (one of them is required).
    #[schema(value_type = Option<String>, min_length = 1, max_length = 128, example = "iphone-15")]
    pub device_id: String,
}

impl JsonBody for SignupBody {
    fn read(f: &mut Fields<'_>, req: &Request) -> Option<Self> {
        let external_id = f.string("external_id", 1, 128);
        let password = f.string("password", 8, 1024);
        let device_id = device_id(f, req);
        Some(SignupBody {
            external_id: external_id?,
            password: password?,
            device_id: device_id?,
        })
    }
}

/// `POST login`: as signup, but any password length up to 1024 (a short one is just wrong:
/// 401, not 422).
#[derive(ToSchema)]
pub struct LoginBody {
    #[schema(min_length = 1, max_length = 128, example = "user-1")]
    pub external_id: String,
    #[schema(max_length = 1024, example = "password123")]
    pub password: String,
    /// The session's device; else the `X-Device-Id` header (one of them is required).
    #[schema(value_type = Option<String>, min_length = 1, max_length = 128, example = "iphone-15")]
    pub device_id: String,
}

impl JsonBody for LoginBody {
    fn read(f: &mut Fields<'_>, req: &Request) -> Option<Self> {
        let external_id = f.string("external_id", 1, 128);
        let password = f.string("password", 0, 1024);
        let device_id = device_id(f, req);
        Some(LoginBody {
            external_id: external_id?,
            password: password?,
            device_id: device_id?,
        })
    }
}

#[derive(ToSchema)]
pub struct RefreshBody {
    #[schema(min_length = 1, max_length = 512)]
    pub refresh_token: String,
    /// The session's device (else `X-Device-Id`): a refresh from another device fails (401).
    #[schema(value_type = Option<String>, min_length = 1, max_length = 128, example = "iphone-15")]
    pub device_id: String,
}

impl JsonBody for RefreshBody {
    fn read(f: &mut Fields<'_>, req: &Request) -> Option<Self> {
        let refresh_token = f.string("refresh_token", 1, 512);
        let device_id = device_id(f, req);
        Some(RefreshBody {
            refresh_token: refresh_token?,
            device_id: device_id?,
        })
    }
}

#[derive(ToSchema)]
pub struct PasswordBody {
    #[schema(max_length = 1024)]
    pub current_password: String,
    #[schema(min_length = 8, max_length = 1024)]
    pub new_password: String,
}

impl JsonBody for PasswordBody {
    fn read(f: &mut Fields<'_>, _req: &Request) -> Option<Self> {
        let current_password = f.string("current_password", 0, 1024);
        let new_password = f.string("new_password", 8, 1024);
        Some(PasswordBody {
            current_password: current_password?,
            new_password: new_password?,
        })
    }
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

/// `POST /{slug}/v1/public/end-users/signup`
#[utoipa::path(post, path = "/{slug}/v1/public/end-users/signup", tag = "end-users",
    params(("slug" = String, Path), ("X-Device-Id" = Option<String>, Header, max_length = 128,
        description = "The device id when the body has no `device_id` (surrounding spaces ignored)")), request_body = SignupBody,
    security(("client_id" = [], "client_key" = [], "client_origin" = [])),
    responses(
        (status = 201, description = "Signed up and logged in", body = TokenResponse),
        (status = 409, description = "`{\"detail\":\"External ID already registered\"}`", body = PlainError),
        (status = 429, description = "`rate_limited`: `signup_per_ip`", body = CodedError)))]
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
    let body = SignupBody::parse(req)?;
    let creds = Credentials {
        external_id: body.external_id,
        password: body.password,
        device_id: body.device_id,
    };
    let issued = state.engine.signup(project, creds, &caller(req)).await?;
    token_answer(StatusCode::CREATED, issued)
}

/// `POST /{slug}/v1/public/end-users/login`
#[utoipa::path(post, path = "/{slug}/v1/public/end-users/login", tag = "end-users",
    params(("slug" = String, Path), ("X-Device-Id" = Option<String>, Header, max_length = 128,
        description = "The device id when the body has no `device_id` (surrounding spaces ignored)")), request_body = LoginBody,
    security(("client_id" = [], "client_key" = [], "client_origin" = [])),
    responses(
        (status = 200, description = "Logged in: a new session", body = TokenResponse),
        (status = 401, description = "`{\"detail\":\"Invalid credentials\"}`: unknown external_id, wrong password or disabled user", body = PlainError),
        (status = 429, description = "`rate_limited`: `login_per_ip`, `login_per_account_ip`, `login_per_account` (never says whether the user exists)", body = CodedError)))]
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
    let body = LoginBody::parse(req)?;
    let creds = Credentials {
        external_id: body.external_id,
        password: body.password,
        device_id: body.device_id,
    };
    let issued = state.engine.login(project, creds, &caller(req)).await?;
    token_answer(StatusCode::OK, issued)
}

/// `POST /{slug}/v1/public/end-users/refresh`
#[utoipa::path(post, path = "/{slug}/v1/public/end-users/refresh", tag = "end-users",
    params(("slug" = String, Path), ("X-Device-Id" = Option<String>, Header, max_length = 128,
        description = "The device id when the body has no `device_id` (surrounding spaces ignored)")), request_body = RefreshBody,
    security(("client_id" = [], "client_key" = [], "client_origin" = [])),
    responses(
        (status = 200, description = "New tokens (rotation; the same ones again within the grace window)", body = TokenResponse),
        (status = 401, description = "`{\"detail\":\"Invalid refresh token\"}`", body = PlainError)))]
pub async fn refresh(state: &AppState, req: &Request, project: &ProjectView) -> Handled {
    authenticate_client(state, req, project, "end_users:refresh").await?;
    let body = RefreshBody::parse(req)?;
    let issued = state
        .engine
        .refresh(project, &body.refresh_token, body.device_id, &caller(req))
        .await?;
    token_answer(StatusCode::OK, issued)
}

/// `POST /{slug}/v1/public/end-users/logout`
#[utoipa::path(post, path = "/{slug}/v1/public/end-users/logout", tag = "end-users",
    params(("slug" = String, Path)),
    security(("client_id" = [], "client_key" = [], "client_origin" = [], "end_user" = [])),
    responses((status = 200, description = "The session is revoked", body = StatusOk)))]
pub async fn logout(state: &AppState, req: &Request, project: &ProjectView) -> Handled {
    authenticate_client(state, req, project, "end_users:logout").await?;
    let token = req.bearer().ok_or_else(ApiError::invalid_session)?;
    state.engine.logout(project, token).await?;
    Answer::json(StatusCode::OK, &StatusOk { status: "ok" })
}

/// `GET /{slug}/v1/public/end-users/me`
#[utoipa::path(get, path = "/{slug}/v1/public/end-users/me", tag = "end-users",
    params(("slug" = String, Path)),
    security(("client_id" = [], "client_key" = [], "client_origin" = [], "end_user" = [])),
    responses((status = 200, description = "The caller", body = EndUserRef)))]
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
    params(("slug" = String, Path)), request_body = PasswordBody,
    security(("client_id" = [], "client_key" = [], "client_origin" = [], "end_user" = [])),
    responses(
        (status = 200, description = "Changed; the user's other sessions are revoked", body = StatusOk),
        (status = 401, description = "`{\"detail\":\"Invalid credentials\"}`: wrong `current_password`", body = PlainError),
        (status = 429, description = "`rate_limited`: `login_per_account`", body = CodedError)))]
pub async fn password(state: &AppState, req: &Request, project: &ProjectView) -> Handled {
    authenticate_client(state, req, project, "end_users:me").await?;
    let s = session(state, req, project).await?;
    let body = PasswordBody::parse(req)?;
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
        .change_password(project, &s, body.current_password, body.new_password)
        .await?;
    Answer::json(StatusCode::OK, &StatusOk { status: "ok" })
}
