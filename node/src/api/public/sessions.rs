//! An end user's own sessions: `GET /{slug}/v1/public/end-users/sessions`,
//! `DELETE .../sessions/{session_id}`, `POST .../sessions/revoke-others` (Bearer, `end_users:me`).

use std::sync::Arc;

use commonrock_actors::engine::now;
use commonrock_actors::model::Session;
use commonrock_actors::tenant::ProjectView;
use http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::{authenticate_client, session};
use crate::api::routes::OwnSessionAction;
use crate::api::AppState;
use crate::http::schema::CodedError;
use crate::http::{format_time, Answer, ApiError, Code, Handled, Request};

/// A session as shown to its user or an admin: never a token.
#[derive(Serialize, ToSchema)]
pub struct SessionView {
    pub id: uuid::Uuid,
    pub device_id: String,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub created_at: String,
    pub last_used_at: String,
    pub expires_at: String,
    pub refresh_expires_at: String,
    pub revoked: bool,
    /// True for the session of the token making the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<bool>,
}

impl SessionView {
    pub fn of(s: &Session, current: Option<uuid::Uuid>) -> Self {
        SessionView {
            id: s.id,
            device_id: s.device_id.clone(),
            user_agent: s.user_agent.clone(),
            ip: s.ip.clone(),
            created_at: format_time(s.created_at),
            last_used_at: format_time(s.last_used_at),
            expires_at: format_time(s.access_expires_at),
            refresh_expires_at: format_time(s.refresh_expires_at),
            revoked: s.revoked_at.is_some(),
            current: current.map(|c| c == s.id),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionView>,
}

#[derive(Serialize, ToSchema)]
pub struct Revoked {
    pub revoked: usize,
}

/// `GET /{slug}/v1/public/end-users/sessions`: the caller's live sessions.
#[utoipa::path(get, path = "/{slug}/v1/public/end-users/sessions", tag = "end-users",
    params(("slug" = String, Path)),
    security(("client_id" = [], "client_key" = [], "client_origin" = [], "end_user" = [])),
    responses((status = 200, description = "Live sessions; `current` marks the caller's", body = SessionList)))]
pub fn list_doc() {}

/// `DELETE /{slug}/v1/public/end-users/sessions/{session_id}`: revoke one of the caller's sessions.
#[utoipa::path(delete, path = "/{slug}/v1/public/end-users/sessions/{session_id}", tag = "end-users",
    params(("slug" = String, Path), ("session_id" = uuid::Uuid, Path, description = "A session id of the caller")),
    security(("client_id" = [], "client_key" = [], "client_origin" = [], "end_user" = [])),
    responses(
        (status = 200, description = "Revoked", body = Revoked),
        (status = 404, description = "`not_found`: no live session of this user has this id", body = CodedError)))]
pub fn revoke_doc() {}

/// `POST /{slug}/v1/public/end-users/sessions/revoke-others`
#[utoipa::path(post, path = "/{slug}/v1/public/end-users/sessions/revoke-others", tag = "end-users",
    params(("slug" = String, Path)),
    security(("client_id" = [], "client_key" = [], "client_origin" = [], "end_user" = [])),
    responses((status = 200, description = "Every other session of the caller is revoked", body = Revoked)))]
pub fn revoke_others_doc() {}

pub async fn handle(
    state: &Arc<AppState>,
    req: &Request,
    project: &Arc<ProjectView>,
    action: OwnSessionAction,
) -> Handled {
    authenticate_client(state, req, project, "end_users:me").await?;
    let me = session(state, req, project).await?;
    let engine = &state.engine;
    match action {
        OwnSessionAction::List => {
            let now = now();
            let sessions = engine
                .user_sessions(project.project.id, me.end_user_id)
                .await?
                .iter()
                .filter(|s| s.is_live(now))
                .map(|s| SessionView::of(s, Some(me.id)))
                .collect();
            Answer::json(StatusCode::OK, &SessionList { sessions })
        }
        OwnSessionAction::Revoke(id) => {
            let id: uuid::Uuid = id.parse().map_err(|_| ApiError::code(Code::NotFound))?;
            if engine
                .revoke_session(project.project.id, id, Some(me.end_user_id))
                .await?
            {
                Answer::json(StatusCode::OK, &Revoked { revoked: 1 })
            } else {
                Err(ApiError::code(Code::NotFound))
            }
        }
        OwnSessionAction::RevokeOthers => {
            let revoked = engine
                .revoke_user_sessions(project.project.id, me.end_user_id, Some(me.id))
                .await?;
            Answer::json(StatusCode::OK, &Revoked { revoked })
        }
    }
}
