//! Running a registered query definition (SPEC §5): `POST /{slug}/v1/public/sql/execute` with
//! a public client (scope `sql:execute`) and an end user's Bearer token, and
//! `POST /{slug}/v1/sql/execute` with a secret key. Checks in SPEC §6's order: credentials
//! (and their rate limit) → body validation → the definition (404, then 403 for a public
//! client on a non-public definition) → parameters (422) and the statement.

use std::sync::Arc;

use commonrock_actors::sql::{Caller, CursorMode, ExecuteRequest, Page, SqlEngine, Warning};
use commonrock_actors::tenant::ProjectView;
use http::StatusCode;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::introspection::authenticate_key;
use super::public::{authenticate_client, session};
use super::AppState;
use crate::http::schema::{CodedError, ValidationError};
use crate::http::validation::{validated, Fields};
use crate::http::{Answer, ApiError, Code, Handled, Request};

/// The scope a public client needs.
pub const SCOPE: &str = "sql:execute";
/// Longest cursor accepted (keyset cursors carry the last row's ORDER BY values).
const MAX_CURSOR_CHARS: usize = 8192;

/// The execute body (seed: SQLクエリ定義の実行). Unknown fields are ignored.
#[derive(ToSchema)]
pub struct ExecuteBody {
    /// The query definition to run.
    pub query_definition_id: uuid::Uuid,
    /// Named parameters (`:author_id` → `"author_id"`), typed as the definition says: a
    /// missing, unknown or mistyped one is a 422 at `["body","params",name]`. `end_user_id`
    /// and `external_id` are taken from the session on the public path, whatever is sent.
    #[schema(value_type = Option<Object>)]
    pub params: Map<String, Value>,
    /// Rows per page, 1..=`SQL_MAX_ROWS` (1000 unless configured; default 100).
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 1000, default = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page, in the same `cursor_mode`.
    #[schema(max_length = 8192)]
    pub cursor: Option<String>,
    #[schema(value_type = Option<Paging>)]
    pub cursor_mode: Paging,
}

/// `cursor_mode`: `offset` (default), the cursor is the next offset; `keyset`, opaque signed
/// cursors that resume after the last row (the ORDER BY must end in a unique key).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ToSchema)]
#[schema(as = CursorMode, rename_all = "lowercase")]
pub enum Paging {
    Offset,
    Keyset,
}

impl Paging {
    /// The names the body accepts, in the order of the schema's enum.
    const NAMES: [&'static str; 2] = ["offset", "keyset"];

    fn of(name: &str) -> Self {
        if name == Self::NAMES[1] {
            Paging::Keyset
        } else {
            Paging::Offset
        }
    }
}

impl From<Paging> for CursorMode {
    fn from(p: Paging) -> Self {
        match p {
            Paging::Offset => CursorMode::Offset,
            Paging::Keyset => CursorMode::Keyset,
        }
    }
}

impl ExecuteBody {
    /// Like `JsonBody::read`, with the node's `SQL_MAX_ROWS` as the largest `limit`.
    pub fn read_with(f: &mut Fields<'_>, max_rows: u32) -> Option<Self> {
        let id = f.uuid("query_definition_id");
        let params = f.opt_object("params");
        let limit = f.opt_int("limit", 1, i64::from(max_rows));
        let cursor = f.opt_string("cursor", MAX_CURSOR_CHARS);
        let mode = f.opt_enum("cursor_mode", &Paging::NAMES);
        Some(ExecuteBody {
            query_definition_id: id?,
            params: params?,
            limit: limit.and_then(|n| u32::try_from(n).ok()),
            cursor,
            cursor_mode: mode.map_or(Paging::Offset, Paging::of),
        })
    }
}

/// One warning, e.g. `order_by_missing`.
#[derive(Serialize, ToSchema)]
pub struct SqlWarning {
    pub code: String,
    pub message: String,
}

impl From<Warning> for SqlWarning {
    fn from(w: Warning) -> Self {
        SqlWarning {
            code: w.code,
            message: w.message,
        }
    }
}

/// A page of rows; DML answers `rows: []` and `affected_rows`. `next_cursor` is absent on the
/// last page; `warnings` is always present.
#[derive(Serialize, ToSchema)]
pub struct ExecuteResult {
    /// One object per row, keyed by output column.
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    pub warnings: Vec<SqlWarning>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub affected_rows: Option<u64>,
}

impl From<Page> for ExecuteResult {
    fn from(p: Page) -> Self {
        ExecuteResult {
            rows: p.rows,
            next_cursor: p.next_cursor,
            warnings: p.warnings.into_iter().map(SqlWarning::from).collect(),
            affected_rows: p.affected_rows,
        }
    }
}

/// `POST /{slug}/v1/public/sql/execute`
#[utoipa::path(post, path = "/{slug}/v1/public/sql/execute", tag = "sql",
    params(("slug" = String, Path)), request_body = ExecuteBody,
    security(("client_id" = [], "client_key" = [], "client_origin" = [], "end_user" = [])),
    responses(
        (status = 200, description = "A page of rows, or the DML's affected rows", body = ExecuteResult),
        (status = 400, description = "`invalid_cursor`: tampered, of another definition or mode, or keyset paging without a unique ORDER BY; `invalid_sql`: the definition no longer fits the tables", body = CodedError),
        (status = 403, description = "`client_scope_denied`: the definition is not registered `public`; `sql_quota_exceeded`: a row quota or read cap is reached", body = CodedError),
        (status = 404, description = "`sql_template_not_found`: no such definition in this project", body = CodedError),
        (status = 409, description = "`already_exists`: an INSERT or UPDATE hit a taken primary key or UNIQUE value", body = CodedError),
        (status = 422, description = "A parameter is missing, unknown or mistyped (`[\"body\",\"params\",name]`), or `limit` is out of range", body = ValidationError),
        (status = 503, description = "`service_unavailable`: the statement passed its 5 s deadline or the SQL pool is full", body = CodedError)))]
pub fn execute_public_doc() {}

/// `POST /{slug}/v1/sql/execute`
#[utoipa::path(post, path = "/{slug}/v1/sql/execute", tag = "sql",
    params(("slug" = String, Path)), request_body = ExecuteBody,
    security(("secret_key" = [])),
    responses(
        (status = 200, description = "A page of rows, or the DML's affected rows", body = ExecuteResult),
        (status = 400, description = "`invalid_cursor`: tampered, of another definition or mode, or keyset paging without a unique ORDER BY; `invalid_sql`: the definition no longer fits the tables", body = CodedError),
        (status = 403, description = "`sql_quota_exceeded`: a row quota or read cap is reached", body = CodedError),
        (status = 404, description = "`sql_template_not_found`: no such definition in this project", body = CodedError),
        (status = 409, description = "`already_exists`: an INSERT or UPDATE hit a taken primary key or UNIQUE value", body = CodedError),
        (status = 422, description = "A parameter is missing, unknown or mistyped (`[\"body\",\"params\",name]`), or `limit` is out of range", body = ValidationError),
        (status = 503, description = "`service_unavailable`: the statement passed its 5 s deadline or the SQL pool is full", body = CodedError)))]
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
    run(state, req, project, caller).await
}

/// Runs the body's definition for `caller` (an end user of a public client: public
/// definitions only), or for a trusted backend or admin when None.
pub async fn run(
    state: &AppState,
    req: &Request,
    project: &ProjectView,
    caller: Option<Caller>,
) -> Handled {
    let sql = engine(state)?;
    let max_rows = sql.config().max_rows;
    let value = req.json()?;
    let mut f = Fields::of(&value)?;
    let body = ExecuteBody::read_with(&mut f, max_rows);
    f.finish()?;
    let body = validated(body)?;
    let public_only = caller.is_some();
    let request = ExecuteRequest {
        params: body.params,
        caller: caller.unwrap_or_default(),
        limit: body.limit,
        cursor: body.cursor,
        mode: body.cursor_mode.into(),
    };
    let page = sql
        .execute_by_id(
            project.project.id,
            body.query_definition_id,
            request,
            public_only,
            // Compiled definitions are good while the configuration epoch stays.
            state.engine.tenants().epoch,
        )
        .await?;
    Ok(Answer::json(StatusCode::OK, &ExecuteResult::from(page))?.no_store())
}
