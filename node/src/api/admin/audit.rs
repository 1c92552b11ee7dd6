//! The audit log of admin actions (SPEC §10): written after every admin change, listed newest
//! first by `GET /admin/v1/audit-log` with cursor paging.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use commonrock_actors::model::{AuditActor, AuditEntry};
use commonrock_actors::store::portal::MAX_AUDIT_PAGE;
use http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::{Actor, AdminPrincipal};
use crate::api::AppState;
use crate::http::schema::CodedError;
use crate::http::{format_time, Answer, ApiError, Code, Handled, Request};

const DEFAULT_PAGE: usize = 50;

/// Records an admin action in the audit log and as a structured security event (never with a
/// secret: `target` names what was acted on, such as a slug, a client id or a key id).
pub async fn audit(
    state: &AppState,
    who: &AdminPrincipal,
    action: &'static str,
    project: Option<&str>,
    target: &str,
) {
    state
        .engine
        .metrics()
        .security_events
        .with_label_values(&["admin_action"])
        .inc();
    let actor = match &who.actor {
        Actor::Bootstrap => AuditActor::Bootstrap,
        Actor::Token(id) => AuditActor::AdminToken { id: *id },
        Actor::User(s) => AuditActor::AdminUser {
            id: s.user_id(),
            email: s.email().to_string(),
        },
    };
    tracing::info!(event = "admin_action", actor = ?actor, action, project, target, "admin action");
    state
        .engine
        .record_audit(AuditEntry {
            id: uuid::Uuid::now_v7(),
            at: commonrock_actors::engine::now(),
            actor,
            action: action.to_string(),
            project: project.map(str::to_string),
            target: target.to_string(),
            ip: who.ip.map(|ip| ip.to_string()),
            request_id: commonrock_actors::owner::request_id().map(|r| r.to_string()),
        })
        .await;
}

/// Who did it: `kind` is `admin_user` (with its id and email), `admin_token` (with its id) or
/// `bootstrap` (the `COMMONROCK_ADMIN_TOKEN`).
#[derive(Serialize, ToSchema)]
pub struct ActorOut {
    #[schema(example = "admin_user")]
    kind: &'static str,
    id: Option<uuid::Uuid>,
    /// The admin user's email.
    #[schema(example = "ops@example.com")]
    name: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct EntryOut {
    id: uuid::Uuid,
    #[schema(example = "2026-12-03T10:00:00Z")]
    at: String,
    actor: ActorOut,
    #[schema(example = "create_project")]
    action: String,
    /// The project's slug, for actions on one project.
    project: Option<String>,
    /// What was acted on: a slug, a client id, a key id, an external id (never a secret).
    target: String,
    ip: Option<String>,
    request_id: Option<String>,
}

/// A page of the audit log, newest first.
#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    entries: Vec<EntryOut>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    next_cursor: Option<String>,
}

fn out(e: AuditEntry) -> EntryOut {
    let actor = match e.actor {
        AuditActor::Bootstrap => ActorOut {
            kind: "bootstrap",
            id: None,
            name: None,
        },
        AuditActor::AdminToken { id } => ActorOut {
            kind: "admin_token",
            id: Some(id),
            name: None,
        },
        AuditActor::AdminUser { id, email } => ActorOut {
            kind: "admin_user",
            id: Some(id),
            name: Some(email),
        },
    };
    EntryOut {
        id: e.id,
        at: format_time(e.at),
        actor,
        action: e.action,
        project: e.project,
        target: e.target,
        ip: e.ip,
        request_id: e.request_id,
    }
}

fn invalid_cursor() -> ApiError {
    ApiError::code(Code::InvalidCursor)
}

/// `?limit=1..200&cursor=...`; an unknown parameter is ignored.
fn query(req: &Request) -> Result<(usize, Option<uuid::Uuid>), ApiError> {
    let mut limit = DEFAULT_PAGE;
    let mut cursor = None;
    for pair in req.query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "limit" => {
                limit = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_AUDIT_PAGE).contains(n))
                    .ok_or_else(|| {
                        ApiError::code_with_reason(
                            Code::InvalidCursor,
                            &format!("limit must be 1..={MAX_AUDIT_PAGE}"),
                        )
                    })?
            }
            "cursor" => {
                let bytes = URL_SAFE_NO_PAD.decode(v).map_err(|_| invalid_cursor())?;
                cursor = Some(uuid::Uuid::from_slice(&bytes).map_err(|_| invalid_cursor())?);
            }
            _ => {}
        }
    }
    Ok((limit, cursor))
}

pub async fn list(state: &AppState, req: &Request) -> Handled {
    let (limit, before) = query(req)?;
    let entries = state.engine.audit_log(before, limit).await?;
    let next_cursor = (entries.len() == limit)
        .then(|| {
            entries
                .last()
                .map(|e| URL_SAFE_NO_PAD.encode(e.id.as_bytes()))
        })
        .flatten();
    Answer::json(
        StatusCode::OK,
        &AuditPage {
            entries: entries.into_iter().map(out).collect(),
            next_cursor,
        },
    )
}

/// `GET /admin/v1/audit-log`
#[utoipa::path(get, path = "/admin/v1/audit-log", tag = "admin", security(("admin" = []), ("portal" = [])),
    params(
        ("limit" = Option<u32>, Query, description = "Entries per page, 1..=200 (default 50)", minimum = 1, maximum = 200),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses(
        (status = 200, description = "Admin actions, newest first", body = AuditPage),
        (status = 400, description = "`invalid_cursor`: a cursor or limit this endpoint did not hand out", body = CodedError)))]
pub fn list_doc() {}
