//! End users of a project seen by an admin: look up, disable/enable, delete (cascading to
//! sessions), set a password, list and revoke sessions.

use commonrock_actors::engine::now;
use http::{Method, StatusCode};
use serde::Serialize;
use utoipa::ToSchema;

use super::{audit, ok, project, AdminPrincipal};
use crate::api::public::sessions::{Revoked, SessionList, SessionView};
use crate::api::AppState;
use crate::http::schema::{CodedError, JsonBody};
use crate::http::validation::Fields;
use crate::http::{format_time, Answer, ApiError, Code, Handled, Request};

#[derive(Serialize, ToSchema)]
pub struct EndUserOut {
    id: uuid::Uuid,
    external_id: String,
    disabled: bool,
    created_at: String,
}

/// `PATCH /admin/v1/projects/{slug}/end-users/{external_id}`.
#[derive(ToSchema)]
pub struct PatchEndUser {
    /// A disabled user cannot log in or refresh; its sessions stay until revoked.
    pub disabled: bool,
}

impl JsonBody for PatchEndUser {
    fn read(f: &mut Fields<'_>, _req: &Request) -> Option<Self> {
        let disabled = f.bool("disabled", true);
        Some(PatchEndUser {
            disabled: disabled?,
        })
    }
}

/// `PUT /admin/v1/projects/{slug}/end-users/{external_id}/password`.
#[derive(ToSchema)]
pub struct SetPassword {
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
}

impl JsonBody for SetPassword {
    fn read(f: &mut Fields<'_>, _req: &Request) -> Option<Self> {
        let password = f.string("password", 8, 1024);
        Some(SetPassword {
            password: password?,
        })
    }
}

fn out(u: &commonrock_actors::model::EndUser) -> EndUserOut {
    EndUserOut {
        id: u.id,
        external_id: u.external_id.clone(),
        disabled: u.disabled,
        created_at: format_time(u.created_at),
    }
}

pub async fn one(
    state: &AppState,
    req: &Request,
    who: &AdminPrincipal,
    slug: &str,
    ext: &str,
) -> Handled {
    let pid = project(state, slug)?.project.id;
    let engine = &state.engine;
    match req.method {
        Method::GET => Answer::json(StatusCode::OK, &out(&engine.end_user(pid, ext).await?)),
        Method::DELETE => {
            engine.delete_end_user(pid, ext).await?;
            audit(state, who, "delete_end_user", Some(slug), ext).await;
            ok()
        }
        _ => {
            let body = PatchEndUser::parse(req)?;
            let user = engine
                .set_end_user_disabled(pid, ext, body.disabled)
                .await?;
            audit(
                state,
                who,
                if body.disabled {
                    "disable_end_user"
                } else {
                    "enable_end_user"
                },
                Some(slug),
                ext,
            )
            .await;
            Answer::json(StatusCode::OK, &out(&user))
        }
    }
}

pub async fn password(
    state: &AppState,
    req: &Request,
    who: &AdminPrincipal,
    slug: &str,
    ext: &str,
) -> Handled {
    let pid = project(state, slug)?.project.id;
    let body = SetPassword::parse(req)?;
    state
        .engine
        .admin_set_password(pid, ext, body.password)
        .await?;
    audit(state, who, "set_end_user_password", Some(slug), ext).await;
    ok()
}

pub async fn sessions(
    state: &AppState,
    req: &Request,
    who: &AdminPrincipal,
    slug: &str,
    ext: &str,
) -> Handled {
    let pid = project(state, slug)?.project.id;
    let user = state.engine.end_user(pid, ext).await?;
    if req.method == Method::GET {
        let now = now();
        let sessions = state
            .engine
            .user_sessions(pid, user.id)
            .await?
            .iter()
            .filter(|s| s.is_live(now))
            .map(|s| SessionView::of(s, None))
            .collect();
        return Answer::json(StatusCode::OK, &SessionList { sessions });
    }
    let revoked = state
        .engine
        .revoke_user_sessions(pid, user.id, None)
        .await?;
    audit(state, who, "revoke_end_user_sessions", Some(slug), ext).await;
    Answer::json(StatusCode::OK, &Revoked { revoked })
}

pub async fn revoke_session(
    state: &AppState,
    who: &AdminPrincipal,
    slug: &str,
    id: &str,
) -> Handled {
    let pid = project(state, slug)?.project.id;
    let id: uuid::Uuid = id.parse().map_err(|_| ApiError::code(Code::NotFound))?;
    if !state.engine.revoke_session(pid, id, None).await? {
        return Err(ApiError::code(Code::NotFound));
    }
    audit(state, who, "revoke_session", Some(slug), &id.to_string()).await;
    Answer::json(StatusCode::OK, &Revoked { revoked: 1 })
}

/// `GET /admin/v1/projects/{slug}/end-users/{external_id}`
#[utoipa::path(get, path = "/admin/v1/projects/{slug}/end-users/{external_id}", tag = "admin",
    security(("admin" = []), ("portal" = [])), params(("slug" = String, Path), ("external_id" = String, Path)),
    responses(
        (status = 200, description = "The end user", body = EndUserOut),
        (status = 404, description = "`project_not_found`; `not_found`: no such end user", body = CodedError),
        (status = 503, description = "`service_unavailable`: the store did not answer in time", body = CodedError)))]
pub fn get_doc() {}

/// `PATCH /admin/v1/projects/{slug}/end-users/{external_id}`
#[utoipa::path(patch, path = "/admin/v1/projects/{slug}/end-users/{external_id}", tag = "admin",
    security(("admin" = []), ("portal" = [])), params(("slug" = String, Path), ("external_id" = String, Path)),
    request_body = PatchEndUser,
    responses(
        (status = 200, description = "The end user as changed", body = EndUserOut),
        (status = 404, description = "`project_not_found`; `not_found`: no such end user", body = CodedError)))]
pub fn patch_doc() {}

/// `DELETE /admin/v1/projects/{slug}/end-users/{external_id}`
#[utoipa::path(delete, path = "/admin/v1/projects/{slug}/end-users/{external_id}", tag = "admin",
    security(("admin" = []), ("portal" = [])), params(("slug" = String, Path), ("external_id" = String, Path)),
    responses(
        (status = 200, description = "Deleted with its sessions", body = super::Done),
        (status = 404, description = "`project_not_found`; `not_found`: no such end user", body = CodedError)))]
pub fn delete_doc() {}

/// `PUT /admin/v1/projects/{slug}/end-users/{external_id}/password`
#[utoipa::path(put, path = "/admin/v1/projects/{slug}/end-users/{external_id}/password", tag = "admin",
    security(("admin" = []), ("portal" = [])), params(("slug" = String, Path), ("external_id" = String, Path)),
    request_body = SetPassword,
    responses(
        (status = 200, description = "Set; every session of the user is revoked", body = super::Done),
        (status = 404, description = "`project_not_found`; `not_found`: no such end user", body = CodedError)))]
pub fn password_doc() {}

/// `GET /admin/v1/projects/{slug}/end-users/{external_id}/sessions`
#[utoipa::path(get, path = "/admin/v1/projects/{slug}/end-users/{external_id}/sessions", tag = "admin",
    security(("admin" = []), ("portal" = [])), params(("slug" = String, Path), ("external_id" = String, Path)),
    responses(
        (status = 200, description = "The user's live sessions", body = SessionList),
        (status = 404, description = "`project_not_found`; `not_found`: no such end user", body = CodedError),
        (status = 503, description = "`service_unavailable`: the store did not answer in time", body = CodedError)))]
pub fn sessions_list_doc() {}

/// `DELETE /admin/v1/projects/{slug}/end-users/{external_id}/sessions`
#[utoipa::path(delete, path = "/admin/v1/projects/{slug}/end-users/{external_id}/sessions", tag = "admin",
    security(("admin" = []), ("portal" = [])), params(("slug" = String, Path), ("external_id" = String, Path)),
    responses(
        (status = 200, description = "Every session of the user is revoked", body = Revoked),
        (status = 404, description = "`project_not_found`; `not_found`: no such end user", body = CodedError)))]
pub fn sessions_revoke_doc() {}

/// `DELETE /admin/v1/projects/{slug}/sessions/{session_id}`
#[utoipa::path(delete, path = "/admin/v1/projects/{slug}/sessions/{session_id}", tag = "admin",
    security(("admin" = []), ("portal" = [])), params(("slug" = String, Path), ("session_id" = uuid::Uuid, Path)),
    responses(
        (status = 200, description = "Revoked", body = Revoked),
        (status = 404, description = "`project_not_found`; `not_found`: no live session has this id", body = CodedError)))]
pub fn session_revoke_doc() {}
