//! Running a registered query definition (SPEC §5): `POST /{slug}/v1/public/sql/execute` with
//! a public client (scope `sql:execute`) and an end user's Bearer token, and
//! `POST /{slug}/v1/sql/execute` with a secret key. Checks in SPEC §6's order: credentials
//! (and their rate limit) → body validation → the definition (404, then 403 for a public
//! client on a non-public definition) → parameters (422) and the statement.

use std::sync::Arc;

use commonrock_actors::sql::{Caller, CursorMode, ExecuteRequest, SqlEngine};
use commonrock_actors::tenant::ProjectView;
use http::StatusCode;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::introspection::authenticate_key;
use super::public::{authenticate_client, session};
use super::AppState;
use crate::http::validation::{validated, Fields};
use crate::http::{Answer, ApiError, Code, Handled, Request};

/// The scope a public client needs.
pub const SCOPE: &str = "sql:execute";
/// Longest cursor accepted (keyset cursors carry the last row's ORDER BY values).
const MAX_CURSOR_CHARS: usize = 8192;

/// The execute body (seed: SQLクエリ定義の実行). Unknown fields are ignored.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ExecuteBody {
    /// The query definition to run.
    pub query_definition_id: uuid::Uuid,
    /// Named parameters (`:author_id` → `"author_id"`); `end_user_id` and `external_id` are
    /// taken from the session on the public path, whatever is sent.
    #[schema(value_type = Option<Object>)]
    pub params: Option<Map<String, Value>>,
    /// 1..=SQL_MAX_ROWS (default 100).
    #[schema(minimum = 1, maximum = 1000, default = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// `offset` (default) or `keyset`.
    #[schema(example = "offset")]
    pub cursor_mode: Option<String>,
}

/// One warning of a definition, e.g. `order_by_missing`.
#[derive(Serialize, ToSchema)]
pub struct SqlWarning {
    pub code: String,
    pub message: String,
}

/// A page of rows; DML answers `rows: []` and `affected_rows`. `next_cursor` is absent on the
/// last page; `warnings` is always present.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ExecuteResult {
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<Map<String, Value>>,
    pub next_cursor: Option<String>,
    pub warnings: Vec<SqlWarning>,
    pub affected_rows: Option<u64>,
}

/// `POST /{slug}/v1/public/sql/execute`
#[utoipa::path(post, path = "/{slug}/v1/public/sql/execute", tag = "sql",
    params(("slug" = String, Path)), request_body = ExecuteBody,
    security(("public_client" = [], "bearer" = [])),
    responses(
        (status = 200, body = ExecuteResult),
        (status = 400, description = "invalid_cursor"),
        (status = 401, description = "Invalid credentials / Invalid session"),
        (status = 403, description = "client_scope_denied: no sql:execute scope, or the definition is not public"),
        (status = 404, description = "sql_template_not_found"),
        (status = 422, description = "Invalid body, limit or params")))]
pub fn execute_public_doc() {}

/// `POST /{slug}/v1/sql/execute`
#[utoipa::path(post, path = "/{slug}/v1/sql/execute", tag = "sql",
    params(("slug" = String, Path)), request_body = ExecuteBody,
    security(("secret_key" = [])),
    responses(
        (status = 200, body = ExecuteResult),
        (status = 400, description = "invalid_cursor"),
        (status = 401, description = "missing_api_key / invalid_api_key"),
        (status = 404, description = "sql_template_not_found"),
        (status = 422, description = "Invalid body, limit or params")))]
pub fn execute_secret_doc() {}

/// The engine, or 503 while this node's store has no row storage.
pub fn engine(state: &AppState) -> Result<&Arc<SqlEngine>, ApiError> {
    state.sql.as_ref().ok_or_else(|| {
        tracing::warn!(
            reason = "sql engine not available on this store",
            "answering 503"
        );
        ApiError::code(Code::ServiceUnavailable)
    })
}

struct Body {
    id: uuid::Uuid,
    request: ExecuteRequest,
}

fn parse_body(req: &Request, max_rows: u32) -> Result<Body, ApiError> {
    let body = req.json()?;
    let mut f = Fields::of(&body)?;
    let id = f.uuid("query_definition_id");
    let params = f.opt_object("params");
    let limit = f.opt_int("limit", 1, i64::from(max_rows));
    let cursor = f.opt_string("cursor", MAX_CURSOR_CHARS);
    let mode = f.opt_enum("cursor_mode", &["offset", "keyset"]);
    f.finish()?;
    Ok(Body {
        id: validated(id)?,
        request: ExecuteRequest {
            params: validated(params)?,
            caller: Caller::default(),
            limit: limit.and_then(|n| u32::try_from(n).ok()),
            cursor,
            mode: match mode {
                Some("keyset") => CursorMode::Keyset,
                _ => CursorMode::Offset,
            },
        },
    })
}

pub async fn execute(
    state: &Arc<AppState>,
    req: &Request,
    project: &Arc<ProjectView>,
    public: bool,
) -> Handled {
    let caller = if public {
        authenticate_client(state, req, project, SCOPE).await?;
        let me = session(state, req, project).await?;
        Some(Caller {
            end_user_id: Some(me.end_user_id),
            external_id: Some(me.external_id.to_string()),
        })
    } else {
        authenticate_key(state, req, project).await?;
        None
    };
    let sql = engine(state)?;
    let Body { id, mut request } = parse_body(req, sql.config().max_rows)?;
    let public_only = caller.is_some();
    if let Some(caller) = caller {
        request.caller = caller;
    }
    let page = sql
        .execute_by_id(project.project.id, id, request, public_only)
        .await?;
    Ok(Answer::json(StatusCode::OK, &page)?.no_store())
}
