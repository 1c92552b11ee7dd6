//! The simple DB's admin side (SPEC §5, §7): tables (`CREATE TABLE`, `CREATE [UNIQUE] INDEX`,
//! `ALTER TABLE ... ADD COLUMN`, `DROP TABLE [CASCADE]`) and query definitions (register,
//! list, show, replace, delete) of one project.

use commonrock_actors::sql::ddl::DdlOutcome;
use commonrock_actors::sql::{Definition, OrderColumn, ParamSpec, SqlError, StatementKind};
use commonrock_actors::store::rows::{ColumnSpec, DefinitionRecord, IndexSpec, TableRecord};
use commonrock_actors::DomainError;
use http::{Method, StatusCode};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{audit, ok, project, AdminPrincipal};
use crate::api::sql::{engine, SqlWarning};
use crate::api::AppState;
use crate::http::schema::{CodedError, JsonBody};
use crate::http::validation::{Fields, Issue};
use crate::http::{format_time, Answer, ApiError, Code, Handled, Request};

/// Longest statement text accepted by the body check; the engine's own limit (16 KiB by
/// default) answers `sql_too_complex` below it.
const MAX_SQL_CHARS: usize = 65_536;

/// `POST /admin/v1/projects/{slug}/sql/tables`: one DDL statement.
#[derive(ToSchema)]
pub struct SqlStatement {
    /// `CREATE TABLE`, `CREATE [UNIQUE] INDEX`, `ALTER TABLE … ADD COLUMN`, `DROP TABLE
    /// [CASCADE]` or `DROP INDEX` (docs/sql.md).
    #[schema(
        min_length = 1,
        max_length = 65536,
        example = "CREATE TABLE posts (id TEXT PRIMARY KEY, author_id TEXT NOT NULL, title TEXT)"
    )]
    pub sql: String,
}

impl JsonBody for SqlStatement {
    fn read(f: &mut Fields<'_>, _req: &Request) -> Option<Self> {
        let sql = f.string("sql", 1, MAX_SQL_CHARS);
        Some(SqlStatement { sql: sql? })
    }
}

/// The optional body of `DELETE /admin/v1/projects/{slug}/sql/tables/{name}`.
#[derive(ToSchema)]
pub struct DropTableBody {
    /// Also delete the query definitions that use the table (else they make the drop fail).
    pub cascade: Option<bool>,
}

impl JsonBody for DropTableBody {
    fn read(f: &mut Fields<'_>, _req: &Request) -> Option<Self> {
        let cascade = f.bool("cascade", false);
        Some(DropTableBody { cascade })
    }
}

/// `POST` and `PUT` of a query definition.
#[derive(ToSchema)]
pub struct DefinitionBody {
    #[schema(min_length = 1, max_length = 200, example = "posts_by_author")]
    pub name: String,
    /// One SELECT, INSERT, UPDATE or DELETE with named parameters (`:author_id`).
    #[schema(
        min_length = 1,
        max_length = 65536,
        example = "SELECT id, title FROM posts WHERE author_id = :author_id ORDER BY id"
    )]
    pub sql: String,
    /// Callable by public clients (default false).
    #[schema(value_type = Option<bool>)]
    pub public: bool,
}

impl JsonBody for DefinitionBody {
    fn read(f: &mut Fields<'_>, _req: &Request) -> Option<Self> {
        let name = f.string("name", 1, 200);
        let sql = f.string("sql", 1, MAX_SQL_CHARS);
        let public = f.bool("public", false);
        Some(DefinitionBody {
            name: name?,
            sql: sql?,
            public: public.unwrap_or(false),
        })
    }
}

#[derive(Serialize, ToSchema)]
pub struct TableOut {
    id: Uuid,
    name: String,
    columns: Vec<ColumnOut>,
    primary_key: String,
    /// `{name, column, unique, building?}` each.
    #[schema(value_type = Vec<Object>)]
    indexes: Vec<IndexSpec>,
    buckets: u32,
    version: u64,
    created_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct ColumnOut {
    name: String,
    /// `TEXT`, `INTEGER`, `FLOAT`, `BOOLEAN`, `UUID`, `TIMESTAMP`, `JSON`, …
    #[serde(rename = "type")]
    ty: &'static str,
    nullable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    default: Option<Value>,
}

impl From<&ColumnSpec> for ColumnOut {
    fn from(c: &ColumnSpec) -> Self {
        ColumnOut {
            name: c.name.clone(),
            ty: c.ty.name(),
            nullable: c.nullable,
            default: c.default.clone(),
        }
    }
}

impl From<&TableRecord> for TableOut {
    fn from(t: &TableRecord) -> Self {
        TableOut {
            id: t.id,
            name: t.name.clone(),
            columns: t.columns.iter().map(ColumnOut::from).collect(),
            primary_key: t.primary_key.clone(),
            indexes: t.indexes.clone(),
            buckets: t.buckets,
            version: t.version,
            created_at: format_time(t.created_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Dropped {
    table: String,
    /// Definitions deleted with the table (cascade).
    deleted_query_definitions: Vec<Uuid>,
}

/// DROP INDEX: the index and its table as it is now (null when IF EXISTS found nothing).
#[derive(Serialize, ToSchema)]
pub struct IndexDropped {
    dropped_index: String,
    table: Option<TableOut>,
}

/// A DROP statement's answer.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum DropAnswer {
    Table(Dropped),
    Index(IndexDropped),
}

/// A definition with its analysis against the current tables.
#[derive(Serialize, ToSchema)]
pub struct DefinitionOut {
    id: Uuid,
    name: String,
    sql: String,
    public: bool,
    /// `select`, `insert`, `update` or `delete`.
    #[schema(value_type = String)]
    kind: StatementKind,
    /// `{name, type, reserved, nullable}` each.
    #[schema(value_type = Vec<Object>)]
    params: Vec<ParamSpec>,
    /// `{table, column, type, descending, unique}` each.
    #[schema(value_type = Vec<Object>)]
    order_by: Vec<OrderColumn>,
    /// Whether `cursor_mode: "keyset"` works, and why not.
    keyset: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    keyset_unavailable: Option<String>,
    warnings: Vec<SqlWarning>,
    created_at: String,
}

impl From<Definition> for DefinitionOut {
    fn from(d: Definition) -> Self {
        DefinitionOut {
            id: d.id,
            name: d.name,
            sql: d.sql,
            public: d.public,
            kind: d.kind,
            params: d.params,
            order_by: d.order_by,
            keyset: d.keyset_unavailable.is_none(),
            keyset_unavailable: d.keyset_unavailable,
            warnings: d.warnings.into_iter().map(SqlWarning::from).collect(),
            created_at: format_time(d.created_at),
        }
    }
}

/// A definition as listed: the stored record, no analysis.
#[derive(Serialize, ToSchema)]
pub struct DefinitionListed {
    id: Uuid,
    name: String,
    sql: String,
    public: bool,
    tables: Vec<String>,
    created_at: String,
}

impl From<DefinitionRecord> for DefinitionListed {
    fn from(d: DefinitionRecord) -> Self {
        DefinitionListed {
            id: d.id,
            name: d.name,
            sql: d.sql,
            public: d.public,
            tables: d.tables,
            created_at: format_time(d.created_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TableList {
    tables: Vec<TableOut>,
}

#[derive(Serialize, ToSchema)]
pub struct DefinitionList {
    query_definitions: Vec<DefinitionListed>,
}

/// `GET|POST /admin/v1/projects/{slug}/sql/tables`
pub async fn tables(state: &AppState, req: &Request, who: &AdminPrincipal, slug: &str) -> Handled {
    let view = project(state, slug)?;
    let sql = engine(state)?;
    let project_id = view.project.id;
    if req.method == Method::GET {
        let mut list = sql.list_tables(project_id).await?;
        list.sort_by(|a, b| a.name.cmp(&b.name));
        let tables: Vec<TableOut> = list.iter().map(TableOut::from).collect();
        return Answer::json(StatusCode::OK, &TableList { tables });
    }
    let body = SqlStatement::parse(req)?;
    match sql.execute_ddl(project_id, &body.sql).await? {
        DdlOutcome::Created(table) => {
            audit(state, who, "create_sql_table", Some(slug), &table.name).await;
            Answer::json(StatusCode::CREATED, &TableOut::from(&table))
        }
        DdlOutcome::Altered(table) => {
            audit(state, who, "alter_sql_table", Some(slug), &table.name).await;
            Answer::json(StatusCode::CREATED, &TableOut::from(&table))
        }
        DdlOutcome::Dropped { table, definitions } => {
            audit(state, who, "drop_sql_table", Some(slug), &table).await;
            Answer::json(
                StatusCode::OK,
                &DropAnswer::Table(Dropped {
                    table,
                    deleted_query_definitions: definitions,
                }),
            )
        }
        DdlOutcome::IndexDropped { index, table } => {
            audit(state, who, "drop_sql_index", Some(slug), &index).await;
            Answer::json(
                StatusCode::OK,
                &DropAnswer::Index(IndexDropped {
                    dropped_index: index,
                    table: table.as_ref().map(TableOut::from),
                }),
            )
        }
    }
}

/// `GET|DELETE /admin/v1/projects/{slug}/sql/tables/{name}`; DELETE takes `?cascade=true` or a
/// body `{"cascade":true}`.
pub async fn table(
    state: &AppState,
    req: &Request,
    who: &AdminPrincipal,
    slug: &str,
    name: &str,
) -> Handled {
    let view = project(state, slug)?;
    let sql = engine(state)?;
    let project_id = view.project.id;
    let Some(table) = sql
        .store()
        .get_table(project_id, name)
        .await
        .map_err(SqlError::from)?
    else {
        return Err(ApiError::code(Code::NotFound));
    };
    if req.method == Method::GET {
        return Answer::json(StatusCode::OK, &TableOut::from(&table));
    }
    let cascade = cascade_flag(req)?;
    if !cascade {
        let mut users: Vec<String> = sql
            .list_definitions(project_id)
            .await?
            .into_iter()
            .filter(|d| d.tables.contains(&table.name))
            .map(|d| d.name)
            .collect();
        users.sort();
        if !users.is_empty() {
            return Err(SqlError::invalid(format!(
                "table {} is used by query definitions {}; delete them first or pass cascade=true",
                table.name,
                users.join(", ")
            ))
            .into());
        }
    }
    match sql.drop_table(project_id, &table.name, cascade).await? {
        DdlOutcome::Dropped { table, definitions } => {
            audit(state, who, "drop_sql_table", Some(slug), &table).await;
            Answer::json(
                StatusCode::OK,
                &Dropped {
                    table,
                    deleted_query_definitions: definitions,
                },
            )
        }
        _ => Err(DomainError::Internal("unexpected drop outcome".into()).into()),
    }
}

/// `cascade` from the query string (`true`/`false`/`1`/`0`) or from a JSON body.
fn cascade_flag(req: &Request) -> Result<bool, ApiError> {
    let mut cascade = false;
    if let Some(v) = req.query_param("cascade") {
        cascade = match v.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "" => true,
            "false" | "0" | "no" => false,
            _ => {
                return Err(ApiError::validation(vec![Issue::query_bool("cascade")]));
            }
        };
    }
    if !req.body.iter().all(u8::is_ascii_whitespace) {
        cascade |= DropTableBody::parse(req)?.cascade.unwrap_or(false);
    }
    Ok(cascade)
}

/// `GET|POST /admin/v1/projects/{slug}/sql/query-definitions`
pub async fn definitions(
    state: &AppState,
    req: &Request,
    who: &AdminPrincipal,
    slug: &str,
) -> Handled {
    let view = project(state, slug)?;
    let sql = engine(state)?;
    let project_id = view.project.id;
    if req.method == Method::GET {
        let mut list = sql.list_definitions(project_id).await?;
        list.sort_by(|a, b| a.name.cmp(&b.name));
        let list: Vec<DefinitionListed> = list.into_iter().map(DefinitionListed::from).collect();
        return Answer::json(
            StatusCode::OK,
            &DefinitionList {
                query_definitions: list,
            },
        );
    }
    let body = DefinitionBody::parse(req)?;
    let definition = sql
        .register_definition(project_id, &body.name, &body.sql, body.public)
        .await?;
    audit(
        state,
        who,
        "create_sql_definition",
        Some(slug),
        &definition.id.to_string(),
    )
    .await;
    Answer::json(StatusCode::CREATED, &DefinitionOut::from(definition))
}

/// `GET|PUT|DELETE /admin/v1/projects/{slug}/sql/query-definitions/{id}`
pub async fn definition(
    state: &AppState,
    req: &Request,
    who: &AdminPrincipal,
    slug: &str,
    id: &str,
) -> Handled {
    let view = project(state, slug)?;
    let sql = engine(state)?;
    let project_id = view.project.id;
    let id: Uuid = id
        .parse()
        .map_err(|_| ApiError::code(Code::SqlTemplateNotFound))?;
    match req.method {
        Method::GET => {
            let d = sql.get_definition(project_id, id).await?;
            Answer::json(StatusCode::OK, &DefinitionOut::from(d))
        }
        Method::DELETE => {
            sql.delete_definition(project_id, id).await?;
            audit(
                state,
                who,
                "delete_sql_definition",
                Some(slug),
                &id.to_string(),
            )
            .await;
            ok()
        }
        _ => {
            // Swapped atomically under the same id (SqlEngine::replace_definition).
            let body = DefinitionBody::parse(req)?;
            let d = sql
                .replace_definition(project_id, id, &body.name, &body.sql, body.public)
                .await?;
            audit(
                state,
                who,
                "replace_sql_definition",
                Some(slug),
                &id.to_string(),
            )
            .await;
            Answer::json(StatusCode::OK, &DefinitionOut::from(d))
        }
    }
}

/// `GET /admin/v1/projects/{slug}/sql/tables`
#[utoipa::path(get, path = "/admin/v1/projects/{slug}/sql/tables", tag = "admin-sql",
    security(("admin" = []), ("portal" = [])), params(("slug" = String, Path)),
    responses(
        (status = 200, description = "The project's tables, by name", body = TableList),
        (status = 404, description = "`project_not_found`", body = CodedError),
        (status = 503, description = "`service_unavailable`: the store did not answer in time", body = CodedError)))]
pub fn tables_list_doc() {}

/// `POST /admin/v1/projects/{slug}/sql/tables`
#[utoipa::path(post, path = "/admin/v1/projects/{slug}/sql/tables", tag = "admin-sql",
    security(("admin" = []), ("portal" = [])), params(("slug" = String, Path)), request_body = SqlStatement,
    responses(
        (status = 201, description = "CREATE TABLE, CREATE INDEX, ALTER TABLE: the table as it is now", body = TableOut),
        (status = 200, description = "DROP TABLE or DROP INDEX", body = DropAnswer),
        (status = 400, description = "`invalid_sql`: not one DDL statement this engine runs, an unknown table or column, …; `sql_too_complex`", body = CodedError),
        (status = 403, description = "`sql_quota_exceeded`: 100 tables per project", body = CodedError),
        (status = 404, description = "`project_not_found`", body = CodedError),
        (status = 409, description = "`already_exists`: the table or index name is taken, or a UNIQUE index meets duplicates", body = CodedError)))]
pub fn tables_create_doc() {}

/// `GET /admin/v1/projects/{slug}/sql/tables/{name}`
#[utoipa::path(get, path = "/admin/v1/projects/{slug}/sql/tables/{name}", tag = "admin-sql",
    security(("admin" = []), ("portal" = [])), params(("slug" = String, Path), ("name" = String, Path, pattern = "^[A-Za-z_][A-Za-z0-9_]*$", max_length = 128)),
    responses(
        (status = 200, description = "The table", body = TableOut),
        (status = 404, description = "`project_not_found`; `not_found`: no such table", body = CodedError),
        (status = 503, description = "`service_unavailable`: the store did not answer in time", body = CodedError)))]
pub fn table_get_doc() {}

/// `DELETE /admin/v1/projects/{slug}/sql/tables/{name}`
#[utoipa::path(delete, path = "/admin/v1/projects/{slug}/sql/tables/{name}", tag = "admin-sql",
    security(("admin" = []), ("portal" = [])),
    params(("slug" = String, Path), ("name" = String, Path, pattern = "^[A-Za-z_][A-Za-z0-9_]*$", max_length = 128),
        ("cascade" = Option<String>, Query, pattern = "^([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|1|0|[Yy][Ee][Ss]|[Nn][Oo])?$",
            description = "A boolean (`true`, `false`, `1`, `0`, `yes`, `no`; empty means true): also delete the definitions that use the table")),
    request_body(content = Option<DropTableBody>, description = "Optional; `cascade` here works as the query flag"),
    responses(
        (status = 200, description = "Dropped", body = Dropped),
        (status = 400, description = "`invalid_sql`: query definitions use the table (without cascade)", body = CodedError),
        (status = 404, description = "`project_not_found`; `not_found`: no such table", body = CodedError)))]
pub fn table_delete_doc() {}

/// `GET /admin/v1/projects/{slug}/sql/query-definitions`
#[utoipa::path(get, path = "/admin/v1/projects/{slug}/sql/query-definitions", tag = "admin-sql",
    security(("admin" = []), ("portal" = [])), params(("slug" = String, Path)),
    responses(
        (status = 200, description = "The project's definitions, by name", body = DefinitionList),
        (status = 404, description = "`project_not_found`", body = CodedError),
        (status = 503, description = "`service_unavailable`: the store did not answer in time", body = CodedError)))]
pub fn definitions_list_doc() {}

/// `POST /admin/v1/projects/{slug}/sql/query-definitions`
#[utoipa::path(post, path = "/admin/v1/projects/{slug}/sql/query-definitions", tag = "admin-sql",
    security(("admin" = []), ("portal" = [])), params(("slug" = String, Path)), request_body = DefinitionBody,
    responses(
        (status = 201, description = "Registered, with its analysis and warnings", body = DefinitionOut),
        (status = 400, description = "`invalid_sql`; `sql_too_complex`", body = CodedError),
        (status = 403, description = "`sql_quota_exceeded`: 1000 definitions per project", body = CodedError),
        (status = 404, description = "`project_not_found`", body = CodedError),
        (status = 409, description = "`already_exists`: the name is taken", body = CodedError)))]
pub fn definitions_create_doc() {}

/// `GET /admin/v1/projects/{slug}/sql/query-definitions/{id}`
#[utoipa::path(get, path = "/admin/v1/projects/{slug}/sql/query-definitions/{id}", tag = "admin-sql",
    security(("admin" = []), ("portal" = [])), params(("slug" = String, Path), ("id" = uuid::Uuid, Path)),
    responses(
        (status = 200, description = "The definition with its analysis against the current tables", body = DefinitionOut),
        (status = 400, description = "`invalid_sql`: the definition no longer fits the tables", body = CodedError),
        (status = 404, description = "`project_not_found`; `sql_template_not_found`", body = CodedError),
        (status = 503, description = "`service_unavailable`: the store did not answer in time", body = CodedError)))]
pub fn definition_get_doc() {}

/// `PUT /admin/v1/projects/{slug}/sql/query-definitions/{id}`
#[utoipa::path(put, path = "/admin/v1/projects/{slug}/sql/query-definitions/{id}", tag = "admin-sql",
    security(("admin" = []), ("portal" = [])), params(("slug" = String, Path), ("id" = uuid::Uuid, Path)),
    request_body = DefinitionBody,
    responses(
        (status = 200, description = "Replaced under the same id", body = DefinitionOut),
        (status = 400, description = "`invalid_sql`; `sql_too_complex`", body = CodedError),
        (status = 404, description = "`project_not_found`; `sql_template_not_found`", body = CodedError),
        (status = 409, description = "`already_exists`: the name is taken", body = CodedError)))]
pub fn definition_put_doc() {}

/// `DELETE /admin/v1/projects/{slug}/sql/query-definitions/{id}`
#[utoipa::path(delete, path = "/admin/v1/projects/{slug}/sql/query-definitions/{id}", tag = "admin-sql",
    security(("admin" = []), ("portal" = [])), params(("slug" = String, Path), ("id" = uuid::Uuid, Path)),
    responses(
        (status = 200, description = "Deleted", body = super::Done),
        (status = 404, description = "`project_not_found`; `sql_template_not_found`", body = CodedError)))]
pub fn definition_delete_doc() {}

/// `POST /admin/v1/projects/{slug}/sql/execute`: the portal's "run this definition", with the
/// rights of a secret key (any definition, public or not). Audited, since it may write.
pub async fn execute(state: &AppState, req: &Request, who: &AdminPrincipal, slug: &str) -> Handled {
    let view = project(state, slug)?;
    let answer = crate::api::sql::run(state, req, &view, None).await?;
    let id = req
        .json()
        .ok()
        .and_then(|v| v.get("query_definition_id")?.as_str().map(str::to_string))
        .unwrap_or_default();
    audit(state, who, "execute_sql_definition", Some(slug), &id).await;
    Ok(answer)
}

/// `POST /admin/v1/projects/{slug}/sql/execute`
#[utoipa::path(post, path = "/admin/v1/projects/{slug}/sql/execute", tag = "sql",
    params(("slug" = String, Path)), request_body = crate::api::sql::ExecuteBody,
    security(("admin" = []), ("portal" = [])),
    responses(
        (status = 200, description = "A page of rows, or the DML's affected rows, as `/{slug}/v1/sql/execute` answers", body = crate::api::sql::ExecuteResult),
        (status = 400, description = "`invalid_cursor` or `invalid_sql`", body = CodedError),
        (status = 404, description = "`project_not_found` or `sql_template_not_found`", body = CodedError),
        (status = 422, description = "A parameter is missing, unknown or mistyped", body = crate::http::schema::ValidationError)))]
pub fn execute_doc() {}
