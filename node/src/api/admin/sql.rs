//! The simple DB's admin side (SPEC §5, §7): tables (`CREATE TABLE`, `CREATE [UNIQUE] INDEX`,
//! `ALTER TABLE ... ADD COLUMN`, `DROP TABLE [CASCADE]`) and query definitions (register,
//! list, show, replace, delete) of one project.

use commonrock_actors::sql::ddl::DdlOutcome;
use commonrock_actors::sql::{
    Definition, OrderColumn, ParamSpec, SqlError, StatementKind, Warning,
};
use commonrock_actors::store::rows::{ColumnSpec, DefinitionRecord, IndexSpec, TableRecord};
use commonrock_actors::DomainError;
use http::{Method, StatusCode};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::{audit, ok, project, AdminPrincipal};
use crate::api::sql::engine;
use crate::api::AppState;
use crate::http::validation::{validated, Fields, Issue};
use crate::http::{format_time, Answer, ApiError, Code, Handled, Request};

/// Longest statement text accepted by the body check; the engine's own limit (16 KiB by
/// default) answers `sql_too_complex` below it.
const MAX_SQL_CHARS: usize = 65_536;

#[derive(Serialize)]
struct TableOut {
    id: Uuid,
    name: String,
    columns: Vec<ColumnOut>,
    primary_key: String,
    indexes: Vec<IndexSpec>,
    buckets: u32,
    version: u64,
    created_at: String,
}

#[derive(Serialize)]
struct ColumnOut {
    name: String,
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

#[derive(Serialize)]
struct Dropped {
    table: String,
    /// Definitions deleted with the table (cascade).
    deleted_query_definitions: Vec<Uuid>,
}

/// DROP INDEX: the index and its table as it is now (null when IF EXISTS found nothing).
#[derive(Serialize)]
struct IndexDropped {
    dropped_index: String,
    table: Option<TableOut>,
}

/// A definition with its analysis against the current tables.
#[derive(Serialize)]
struct DefinitionOut {
    id: Uuid,
    name: String,
    sql: String,
    public: bool,
    kind: StatementKind,
    params: Vec<ParamSpec>,
    order_by: Vec<OrderColumn>,
    /// Whether `cursor_mode: "keyset"` works, and why not.
    keyset: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    keyset_unavailable: Option<String>,
    warnings: Vec<Warning>,
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
            warnings: d.warnings,
            created_at: format_time(d.created_at),
        }
    }
}

/// A definition as listed: the stored record, no analysis.
#[derive(Serialize)]
struct DefinitionListed {
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

/// `GET|POST /admin/v1/projects/{slug}/sql/tables`
pub async fn tables(state: &AppState, req: &Request, who: &AdminPrincipal, slug: &str) -> Handled {
    let view = project(state, slug)?;
    let sql = engine(state)?;
    let project_id = view.project.id;
    if req.method == Method::GET {
        let mut list = sql.list_tables(project_id).await?;
        list.sort_by(|a, b| a.name.cmp(&b.name));
        let tables: Vec<TableOut> = list.iter().map(TableOut::from).collect();
        return Answer::json(StatusCode::OK, &serde_json::json!({ "tables": tables }));
    }
    let body = req.json()?;
    let mut f = Fields::of(&body)?;
    let text = f.string("sql", 1, MAX_SQL_CHARS);
    f.finish()?;
    match sql.execute_ddl(project_id, &validated(text)?).await? {
        DdlOutcome::Created(table) => {
            audit(state, who, "create_sql_table", slug);
            Answer::json(StatusCode::CREATED, &TableOut::from(&table))
        }
        DdlOutcome::Altered(table) => {
            audit(state, who, "alter_sql_table", slug);
            Answer::json(StatusCode::CREATED, &TableOut::from(&table))
        }
        DdlOutcome::Dropped { table, definitions } => {
            audit(state, who, "drop_sql_table", slug);
            Answer::json(
                StatusCode::OK,
                &Dropped {
                    table,
                    deleted_query_definitions: definitions,
                },
            )
        }
        DdlOutcome::IndexDropped { index, table } => {
            audit(state, who, "drop_sql_index", slug);
            Answer::json(
                StatusCode::OK,
                &IndexDropped {
                    dropped_index: index,
                    table: table.as_ref().map(TableOut::from),
                },
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
            audit(state, who, "drop_sql_table", slug);
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
        let body = req.json()?;
        let mut f = Fields::of(&body)?;
        let flag = f.bool("cascade", false);
        f.finish()?;
        cascade |= flag.unwrap_or(false);
    }
    Ok(cascade)
}

/// Name, SQL text and the public flag of a definition body (POST and PUT).
fn definition_body(req: &Request) -> Result<(String, String, bool), ApiError> {
    let body = req.json()?;
    let mut f = Fields::of(&body)?;
    let name = f.string("name", 1, 200);
    let text = f.string("sql", 1, MAX_SQL_CHARS);
    let public = f.bool("public", false);
    f.finish()?;
    Ok((validated(name)?, validated(text)?, public.unwrap_or(false)))
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
            &serde_json::json!({ "query_definitions": list }),
        );
    }
    let (name, text, public) = definition_body(req)?;
    let definition = sql
        .register_definition(project_id, &name, &text, public)
        .await?;
    audit(state, who, "create_sql_definition", slug);
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
            audit(state, who, "delete_sql_definition", slug);
            ok()
        }
        _ => {
            // Swapped atomically under the same id (SqlEngine::replace_definition).
            let (name, text, public) = definition_body(req)?;
            let d = sql
                .replace_definition(project_id, id, &name, &text, public)
                .await?;
            audit(state, who, "replace_sql_definition", slug);
            Answer::json(StatusCode::OK, &DefinitionOut::from(d))
        }
    }
}
