//! End users of a project seen by an admin: look up, disable/enable, delete (cascading to
//! sessions), set a password, list and revoke sessions.

use commonrock_actors::engine::now;
use http::{Method, StatusCode};
use serde::Serialize;

use super::{audit, ok, project, AdminPrincipal};
use crate::api::public::sessions::{Revoked, SessionList, SessionView};
use crate::api::AppState;
use crate::http::validation::{body_loc, validated, Fields, Issue};
use crate::http::{format_time, Answer, ApiError, Code, Handled, Request};

#[derive(Serialize)]
struct EndUserOut {
    id: uuid::Uuid,
    external_id: String,
    disabled: bool,
    created_at: String,
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
            audit(state, who, "delete_end_user", slug);
            ok()
        }
        _ => {
            let body = req.json()?;
            let mut f = Fields::of(&body)?;
            let disabled = f.bool("disabled", false);
            if disabled.is_none() && !f.has("disabled") {
                f.push(Issue::missing(body_loc("disabled")));
            }
            f.finish()?;
            let user = engine
                .set_end_user_disabled(pid, ext, validated(disabled)?)
                .await?;
            audit(state, who, "update_end_user", slug);
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
    let body = req.json()?;
    let mut f = Fields::of(&body)?;
    let password = f.string("password", 8, 1024);
    f.finish()?;
    state
        .engine
        .admin_set_password(pid, ext, validated(password)?)
        .await?;
    audit(state, who, "set_end_user_password", slug);
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
    audit(state, who, "revoke_end_user_sessions", slug);
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
    audit(state, who, "revoke_session", slug);
    Answer::json(StatusCode::OK, &Revoked { revoked: 1 })
}
