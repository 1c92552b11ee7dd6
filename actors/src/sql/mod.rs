//! The simple DB (SPEC §5): app tables created with DDL, registered query definitions, and
//! their execution by GlueSQL (`gluesql-core` 0.20) over the project's rows in the
//! [`RowStore`]. Statements run on [`pool::SqlPool`], a bounded pool of its own, because
//! GlueSQL's storage traits are synchronous. See `docs/sql.md`.

pub mod analyze;
pub mod compiled;
pub mod cursor;
pub mod ddl;
pub mod error;
pub mod keys;
pub mod lookup;
pub mod metrics;
pub mod pool;
pub mod storage;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gluesql_core::executor::{execute as glue_execute, Payload};
use gluesql_core::prelude::Value;
use gluesql_core::store::Planner as _;
use gluesql_core::translate::{translate_with_params, IntoParamLiteral, ParamLiteral};
use serde_json::{Map, Value as Json};
use sqlparser::ast::{
    BinaryOperator, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList,
    FunctionArguments, Ident, ObjectName, Offset, OffsetRows, SelectItem, SetExpr, Statement,
    Value as SqlValue,
};
use uuid::Uuid;

pub use analyze::{
    Catalog, OrderColumn, ParamSpec, SqlLimits, StatementKind, Warning, ORDER_BY_MISSING,
};
pub use error::{ParamError, SqlError};

use crate::store::rows::{ColumnType, DefinitionRecord, MetaInserted, RowQuota, RowStore};
use analyze::Analysis;
use storage::{Control, RowsAdapter, ScanHint, WriteMode};

/// Engine configuration; every field has a default (docs/sql.md lists them).
#[derive(Clone, Debug)]
pub struct SqlConfig {
    pub limits: SqlLimits,
    /// Upper bound of `limit` (`SQL_MAX_ROWS`).
    pub max_rows: u32,
    pub default_limit: u32,
    pub statement_timeout: Duration,
    /// How long a store call may still run after its statement's deadline. CREATE INDEX on a
    /// table with rows waits `statement_timeout + store_call_margin` before its backfill, so
    /// that no statement which read the table without the new index can still write.
    pub store_call_margin: Duration,
    /// How long another node may run compiled definitions after a change here (its tenant
    /// poll, 1 s, plus the reload): added to CREATE INDEX's wait before a backfill.
    pub compiled_staleness: Duration,
    /// Rows and bytes one statement may read from the store.
    pub max_rows_read: u64,
    pub max_bytes_read: u64,
    /// SQL pool threads and queued statements.
    pub threads: usize,
    pub queue: usize,
    /// Rows per store page.
    pub page_size: usize,
    /// Buckets of a new table.
    pub buckets: u32,
    pub max_tables_per_project: u64,
    pub max_definitions_per_project: u64,
    pub max_rows_per_table: u64,
    pub max_rows_per_project: u64,
}

impl Default for SqlConfig {
    fn default() -> Self {
        SqlConfig {
            limits: SqlLimits::default(),
            max_rows: 1000,
            default_limit: 100,
            statement_timeout: Duration::from_secs(5),
            store_call_margin: Duration::from_secs(3),
            compiled_staleness: Duration::from_secs(3),
            max_rows_read: 1_000_000,
            max_bytes_read: 256 * 1024 * 1024,
            threads: 2,
            queue: 64,
            page_size: 500,
            buckets: 16,
            max_tables_per_project: 100,
            max_definitions_per_project: 1000,
            max_rows_per_table: 1_000_000,
            max_rows_per_project: 5_000_000,
        }
    }
}

/// A registered definition as the API shows it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Definition {
    pub id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    pub sql: String,
    pub public: bool,
    pub kind: StatementKind,
    pub params: Vec<ParamSpec>,
    /// The resolved ORDER BY, empty without one or when it is not made of plain columns.
    pub order_by: Vec<OrderColumn>,
    /// Why keyset paging is unavailable, if it is.
    pub keyset_unavailable: Option<String>,
    pub warnings: Vec<Warning>,
    pub created_at: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CursorMode {
    #[default]
    Offset,
    Keyset,
}

impl CursorMode {
    fn name(self) -> &'static str {
        match self {
            CursorMode::Offset => "offset",
            CursorMode::Keyset => "keyset",
        }
    }
}

/// Reserved parameters from the caller's session: when set they replace whatever the client
/// sent (public path). The secret-key path passes `Caller::default()`, so they come from
/// `params`.
#[derive(Clone, Debug, Default)]
pub struct Caller {
    pub end_user_id: Option<Uuid>,
    pub external_id: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct ExecuteRequest {
    pub params: Map<String, Json>,
    pub caller: Caller,
    /// `None` = the default limit; out of 1..=max_rows → a `limit` 422 (checked by the node
    /// too; here a `ParamErrors` entry named `limit`).
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    pub mode: CursorMode,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Page {
    pub rows: Vec<Map<String, Json>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    pub warnings: Vec<Warning>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub affected_rows: Option<u64>,
    /// Rows read from the store by this execution (not part of the API answer).
    #[serde(skip)]
    pub rows_read: u64,
}

pub struct SqlEngine {
    store: Arc<dyn RowStore>,
    config: SqlConfig,
    pub(crate) pool: pool::SqlPool,
    metrics: metrics::SqlMetrics,
    cursor_key: Vec<u8>,
    compiled: compiled::CompiledCache,
    /// Tells the other nodes that tables or definitions changed (the node sets it).
    announcer: std::sync::OnceLock<Arc<dyn compiled::SchemaAnnouncer>>,
}

impl SqlEngine {
    /// `cursor_key` signs keyset cursors (give every node the same key); metrics go to
    /// `registry`.
    pub fn new(
        store: Arc<dyn RowStore>,
        config: SqlConfig,
        cursor_key: &[u8],
        registry: &prometheus::Registry,
    ) -> Result<SqlEngine, SqlError> {
        let pool = pool::SqlPool::new(config.threads, config.queue)?;
        let metrics = metrics::SqlMetrics::new(registry)
            .map_err(|e| SqlError::Internal(format!("sql metrics: {e}")))?;
        Ok(SqlEngine {
            store,
            config,
            pool,
            metrics,
            cursor_key: cursor_key.to_vec(),
            compiled: compiled::CompiledCache::default(),
            announcer: std::sync::OnceLock::new(),
        })
    }

    pub fn config(&self) -> &SqlConfig {
        &self.config
    }

    /// Pool threads running a statement now.
    pub fn busy_threads(&self) -> usize {
        self.pool.busy()
    }

    pub fn store(&self) -> &Arc<dyn RowStore> {
        &self.store
    }

    /// Sets who tells the other nodes about table and definition changes (once).
    pub fn set_announcer(&self, announcer: Arc<dyn compiled::SchemaAnnouncer>) {
        let _ = self.announcer.set(announcer);
    }

    /// Compiled definitions held by this node (for metrics and tests).
    pub fn compiled_len(&self) -> usize {
        self.compiled.len()
    }

    /// A table or definition changed here: drop this node's compiled definitions now, and
    /// move the configuration epoch so that every other node drops its own within its poll.
    pub(crate) async fn schema_changed(&self) {
        self.compiled.invalidate();
        if let Some(a) = self.announcer.get() {
            a.announce().await;
        }
    }

    async fn catalog(&self, project_id: Uuid) -> Result<Catalog, SqlError> {
        Ok(self
            .store
            .list_tables(project_id)
            .await?
            .into_iter()
            .map(|t| (t.name.clone(), t))
            .collect())
    }

    /// `sql` analysed against the project's current tables, on the pool (parsing recurses).
    async fn summary(&self, project_id: Uuid, sql: &str) -> Result<Summary, SqlError> {
        let catalog = self.catalog(project_id).await?;
        let limits = self.config.limits.clone();
        let text = sql.to_owned();
        self.pool
            .run(move || analyze::analyze(&text, &catalog, &limits).map(|a| summarize(&a)))
            .await
    }

    /// Registers a SELECT / INSERT / UPDATE / DELETE under a name unique in the project.
    pub async fn register_definition(
        &self,
        project_id: Uuid,
        name: &str,
        sql: &str,
        public: bool,
    ) -> Result<Definition, SqlError> {
        let name = valid_name(name)?;
        let analysis = self.summary(project_id, sql).await?;
        // A new definition changes nothing compiled; only replace and delete do.
        let record = DefinitionRecord {
            project_id,
            id: Uuid::now_v7(),
            name: name.to_owned(),
            sql: sql.to_owned(),
            public,
            tables: analysis.tables.clone(),
            created_at: chrono::Utc::now().timestamp(),
        };
        match self
            .store
            .insert_definition(&record, self.config.max_definitions_per_project)
            .await?
        {
            MetaInserted::Created => Ok(definition(&record, analysis)),
            MetaInserted::AlreadyExists => Err(SqlError::Conflict {
                message: format!("a query definition named {name} exists"),
            }),
            MetaInserted::QuotaExceeded => Err(SqlError::Quota {
                message: format!(
                    "a project holds at most {} query definitions",
                    self.config.max_definitions_per_project
                ),
            }),
        }
    }

    /// The definition analysed against the current tables (`TemplateNotFound` if absent).
    pub async fn get_definition(&self, project_id: Uuid, id: Uuid) -> Result<Definition, SqlError> {
        let record = self
            .store
            .get_definition(project_id, id)
            .await?
            .ok_or(SqlError::TemplateNotFound)?;
        let summary = self.summary(project_id, &record.sql).await?;
        Ok(definition(&record, summary))
    }

    pub async fn list_definitions(
        &self,
        project_id: Uuid,
    ) -> Result<Vec<DefinitionRecord>, SqlError> {
        Ok(self.store.list_definitions(project_id).await?)
    }

    pub async fn delete_definition(&self, project_id: Uuid, id: Uuid) -> Result<(), SqlError> {
        if self.store.delete_definition(project_id, id).await? {
            self.schema_changed().await;
            Ok(())
        } else {
            Err(SqlError::TemplateNotFound)
        }
    }

    /// Replaces a definition's name, text and public flag under the same id (`created_at`
    /// kept), the new text analysed exactly as at registration. The store swaps the record in
    /// one step, so an execution meanwhile runs the old text or the new one, never a 404.
    pub async fn replace_definition(
        &self,
        project_id: Uuid,
        id: Uuid,
        name: &str,
        sql: &str,
        public: bool,
    ) -> Result<Definition, SqlError> {
        use crate::store::rows::MetaReplaced;
        let old = self
            .store
            .get_definition(project_id, id)
            .await?
            .ok_or(SqlError::TemplateNotFound)?;
        let name = valid_name(name)?;
        let analysis = self.summary(project_id, sql).await?;
        let record = DefinitionRecord {
            project_id,
            id,
            name: name.to_owned(),
            sql: sql.to_owned(),
            public,
            tables: analysis.tables.clone(),
            created_at: old.created_at,
        };
        match self.store.replace_definition(&record).await? {
            MetaReplaced::Replaced => {
                self.schema_changed().await;
                Ok(definition(&record, analysis))
            }
            MetaReplaced::NotFound => Err(SqlError::TemplateNotFound),
            MetaReplaced::NameTaken => Err(SqlError::Conflict {
                message: format!("a query definition named {name} exists"),
            }),
        }
    }

    /// Runs a definition: parameters typed and bound by the engine, one page of rows.
    pub async fn execute(
        &self,
        definition: &Definition,
        request: ExecuteRequest,
    ) -> Result<Page, SqlError> {
        let record = DefinitionRecord {
            project_id: definition.project_id,
            id: definition.id,
            name: definition.name.clone(),
            sql: definition.sql.clone(),
            public: definition.public,
            tables: Vec::new(),
            created_at: definition.created_at,
        };
        let catalog = Arc::new(self.catalog(definition.project_id).await?);
        let run = Prepared {
            definition: record,
            catalog,
            analysis: None,
        };
        self.measured(run, request).await
    }

    /// Runs the stored definition `id` (what the execute endpoints do): one read of its record
    /// and one analysis, on the pool thread that runs it. `public_only` (the public path)
    /// refuses a definition not registered public with `NotPublic`.
    pub async fn execute_by_id(
        &self,
        project_id: Uuid,
        id: Uuid,
        request: ExecuteRequest,
        public_only: bool,
        epoch: Option<Uuid>,
    ) -> Result<Page, SqlError> {
        let compiled = match self.compiled(project_id, id, epoch).await {
            Ok(c) => c,
            Err(e) => {
                if !matches!(e, SqlError::TemplateNotFound) {
                    self.metrics
                        .executions
                        .with_label_values(&["unknown", e.code()])
                        .inc();
                }
                return Err(e);
            }
        };
        if public_only && !compiled.record.public {
            return Err(SqlError::NotPublic);
        }
        let run = Prepared {
            definition: compiled.record.clone(),
            catalog: Arc::clone(&compiled.catalog),
            analysis: Some(Arc::clone(&compiled.analysis)),
        };
        self.measured(run, request).await
    }

    /// Definition `id` ready to run: from this node's cache, or read, analysed and kept.
    /// `epoch` is the tenant configuration epoch the caller sees (see `compiled`).
    async fn compiled(
        &self,
        project_id: Uuid,
        id: Uuid,
        epoch: Option<Uuid>,
    ) -> Result<Arc<compiled::Compiled>, SqlError> {
        if let Some(c) = self.compiled.get(project_id, id, epoch) {
            self.metrics.compiled.with_label_values(&["hit"]).inc();
            return Ok(c);
        }
        self.metrics.compiled.with_label_values(&["miss"]).inc();
        let generation = self.compiled.generation();
        let record = self
            .store
            .get_definition(project_id, id)
            .await?
            .ok_or(SqlError::TemplateNotFound)?;
        let catalog = Arc::new(self.catalog(project_id).await?);
        let limits = self.config.limits.clone();
        let text = record.sql.clone();
        let tables = Arc::clone(&catalog);
        let analysis = self
            .pool
            .run(move || analyze::analyze(&text, &tables, &limits))
            .await?;
        let compiled = Arc::new(compiled::Compiled {
            record,
            catalog,
            analysis: Arc::new(analysis),
        });
        self.compiled
            .insert(generation, epoch, Arc::clone(&compiled));
        Ok(compiled)
    }

    async fn measured(&self, run: Prepared, request: ExecuteRequest) -> Result<Page, SqlError> {
        let started = Instant::now();
        let (kind, result) = self.execute_inner(run, request).await;
        // A statement that failed before its analysis has no kind.
        let kind = kind.map_or("unknown", StatementKind::name);
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.code(),
        };
        self.metrics
            .executions
            .with_label_values(&[kind, outcome])
            .inc();
        self.metrics
            .latency
            .with_label_values(&[kind])
            .observe(started.elapsed().as_secs_f64());
        if let Ok(page) = &result {
            self.metrics.rows_returned.inc_by(page.rows.len() as u64);
            self.metrics.rows_read.inc_by(page.rows_read);
        }
        result
    }

    async fn execute_inner(
        &self,
        run: Prepared,
        request: ExecuteRequest,
    ) -> (Option<StatementKind>, Result<Page, SqlError>) {
        let limit = request.limit.unwrap_or(self.config.default_limit);
        if limit == 0 || limit > self.config.max_rows {
            return (
                None,
                Err(SqlError::ParamErrors(vec![ParamError {
                    name: "limit".into(),
                    msg: format!(
                        "ensure this value is between 1 and {}",
                        self.config.max_rows
                    ),
                    kind: "value_error.number.not_in_range".into(),
                }])),
            );
        }
        let control = Arc::new(Control {
            deadline: Instant::now() + self.config.statement_timeout,
            cancelled: AtomicBool::new(false),
            rows_read: AtomicU64::new(0),
            bytes_read: AtomicU64::new(0),
            max_rows_read: self.config.max_rows_read,
            max_bytes_read: self.config.max_bytes_read,
        });
        // Dropping the request (client gone, outer timeout) stops the statement at its next row.
        struct CancelOnDrop(Arc<Control>);
        impl Drop for CancelOnDrop {
            fn drop(&mut self) {
                self.0.cancelled.store(true, Ordering::Relaxed);
            }
        }
        let _cancel = CancelOnDrop(Arc::clone(&control));
        let job = Job {
            rt: tokio::runtime::Handle::current(),
            store: Arc::clone(&self.store),
            config: self.config.clone(),
            cursor_key: self.cursor_key.clone(),
            definition: run.definition,
            request,
            limit,
            catalog: run.catalog,
            analysis: run.analysis,
            control: Arc::clone(&control),
        };
        let run = self.pool.run(move || job.run());
        // The statement checks its deadline itself; this bound only covers a thread stuck
        // outside the storage iterator.
        match tokio::time::timeout(self.config.statement_timeout + Duration::from_secs(1), run)
            .await
        {
            Ok(Ok((kind, result))) => (Some(kind), result),
            Ok(Err(e)) => (None, Err(e)),
            Err(_) => (None, Err(SqlError::Timeout)),
        }
    }
}

/// A definition's name, trimmed: 1 to 200 characters.
fn valid_name(name: &str) -> Result<&str, SqlError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(SqlError::invalid("name must be 1 to 200 characters"));
    }
    Ok(name)
}

/// What the API shows of an analysis (the AST stays on the pool thread).
#[derive(Clone, Debug)]
struct Summary {
    kind: StatementKind,
    params: Vec<ParamSpec>,
    tables: Vec<String>,
    order_by: Vec<OrderColumn>,
    keyset_unavailable: Option<String>,
    warnings: Vec<Warning>,
}

fn summarize(a: &Analysis) -> Summary {
    Summary {
        kind: a.kind,
        params: a.params.clone(),
        tables: a.tables.clone(),
        order_by: a.order_by.clone().unwrap_or_default(),
        keyset_unavailable: a.order_by.as_ref().err().cloned(),
        warnings: a.warnings.clone(),
    }
}

fn definition(record: &DefinitionRecord, s: Summary) -> Definition {
    Definition {
        id: record.id,
        project_id: record.project_id,
        name: record.name.clone(),
        sql: record.sql.clone(),
        public: record.public,
        kind: s.kind,
        params: s.params,
        order_by: s.order_by,
        keyset_unavailable: s.keyset_unavailable,
        warnings: s.warnings,
        created_at: record.created_at,
    }
}

/// A definition with what its execution needs; `analysis` is None when it is to be analysed
/// on the pool thread that runs it.
struct Prepared {
    definition: DefinitionRecord,
    catalog: Arc<Catalog>,
    analysis: Option<Arc<Analysis>>,
}

/// One execution, moved onto a pool thread.
struct Job {
    rt: tokio::runtime::Handle,
    store: Arc<dyn RowStore>,
    config: SqlConfig,
    cursor_key: Vec<u8>,
    definition: DefinitionRecord,
    request: ExecuteRequest,
    limit: u32,
    catalog: Arc<Catalog>,
    analysis: Option<Arc<Analysis>>,
    control: Arc<Control>,
}

const KEYSET_ALIAS: &str = "__keyset_";

impl Job {
    /// The statement's kind (for metrics) and its outcome; `Err` only when the analysis fails.
    fn run(self) -> Result<(StatementKind, Result<Page, SqlError>), SqlError> {
        let analysis = match &self.analysis {
            Some(a) => Arc::clone(a),
            None => Arc::new(analyze::analyze(
                &self.definition.sql,
                &self.catalog,
                &self.config.limits,
            )?),
        };
        let kind = analysis.kind;
        Ok((kind, self.execute(&analysis)))
    }

    fn execute(self, analysis: &Analysis) -> Result<Page, SqlError> {
        let values = bind_params(analysis, &self.request)?;
        let restriction = lookup::key_restriction(
            &analysis.statement,
            &values,
            &self.catalog,
            &analysis.table_uses,
        );
        let mut params: Vec<ParamLiteral> = values.into_iter().map(value_literal).collect();
        let mut statement = analysis.statement.clone();
        let fetch = u64::from(self.limit) + 1;
        let mut hint = None;
        let mut keyset_columns = 0usize;
        let mut offset = 0u64;
        if analysis.kind == StatementKind::Select {
            let Statement::Query(query) = &mut statement else {
                return Err(SqlError::Internal("select is not a query".into()));
            };
            match self.request.mode {
                CursorMode::Offset => {
                    if let Some(c) = &self.request.cursor {
                        offset = c
                            .parse::<u64>()
                            .map_err(|_| SqlError::cursor("offset cursors are decimal numbers"))?;
                    }
                    if offset > 0 {
                        query.offset = Some(Offset {
                            value: number(offset),
                            rows: OffsetRows::None,
                        });
                    }
                }
                CursorMode::Keyset => {
                    let order = analysis.order_by.clone().map_err(SqlError::cursor)?;
                    let order_exprs: Vec<Expr> = query
                        .order_by
                        .as_ref()
                        .map(|o| o.exprs.iter().map(|e| e.expr.clone()).collect())
                        .unwrap_or_default();
                    let SetExpr::Select(select) = query.body.as_mut() else {
                        return Err(SqlError::cursor("keyset paging needs a plain SELECT"));
                    };
                    for (i, e) in order_exprs.iter().enumerate() {
                        select.projection.push(SelectItem::ExprWithAlias {
                            expr: e.clone(),
                            alias: Ident::new(format!("{KEYSET_ALIAS}{i}")),
                        });
                    }
                    keyset_columns = order.len();
                    if let Some(cursor) = &self.request.cursor {
                        let values = cursor::decode(
                            &self.cursor_key,
                            cursor,
                            self.definition.id,
                            CursorMode::Keyset.name(),
                        )?;
                        if values.len() != order.len() {
                            return Err(SqlError::cursor(
                                "cursor does not match this query definition",
                            ));
                        }
                        let mut typed = Vec::new();
                        for (o, v) in order.iter().zip(&values) {
                            // The cursor is signed: a NULL in it is a NULL the page ended on.
                            let value = if v.is_null() {
                                Value::Null
                            } else {
                                json_to_value(Some(o.ty), v).map_err(|_| {
                                    SqlError::cursor("cursor does not match this query definition")
                                })?
                            };
                            typed.push(value);
                        }
                        let first = params.len() + 1;
                        let predicate = keyset_predicate(&order, &order_exprs, &typed, first);
                        select.selection = Some(match select.selection.take() {
                            Some(w) => Expr::BinaryOp {
                                left: Box::new(Expr::Nested(Box::new(w))),
                                op: BinaryOperator::And,
                                right: Box::new(Expr::Nested(Box::new(predicate))),
                            },
                            None => predicate,
                        });
                        if let [only] = order.as_slice() {
                            if let Some(index) = &only.index {
                                if analysis.table_uses.get(&only.table) == Some(&1) {
                                    hint = keys::encode_key(only.ty, &typed[0]).map(|after| {
                                        ScanHint {
                                            table: only.table.clone(),
                                            index: index.clone(),
                                            descending: only.descending,
                                            after,
                                        }
                                    });
                                }
                            }
                        }
                        // NULLs are spelled `IS NULL` in the predicate, not bound.
                        typed.retain(|v| *v != Value::Null);
                        params.extend(typed.into_iter().map(value_literal));
                    }
                }
            }
            query.limit = Some(number(fetch));
        }

        let mode = match analysis.kind {
            StatementKind::Select => WriteMode::Read,
            StatementKind::Insert => WriteMode::Insert,
            StatementKind::Update => WriteMode::Update,
            StatementKind::Delete => WriteMode::Delete,
        };
        let tables: HashMap<_, _> = (*self.catalog).clone().into_iter().collect();
        let mut adapter = RowsAdapter::new(
            self.rt.clone(),
            Arc::clone(&self.store),
            tables,
            Arc::clone(&self.control),
            hint,
            self.config.page_size,
            fetch as usize + 2,
            mode,
            RowQuota {
                max_table_rows: self.config.max_rows_per_table,
                max_project_rows: self.config.max_rows_per_project,
            },
        );
        adapter.restriction = restriction;
        let glue_statement = translate_with_params(&statement, &params)
            .map_err(|e| SqlError::invalid(format!("unsupported SQL: {e}")))?;
        let outcome = adapter
            .plan(glue_statement.into())
            .and_then(|plan| glue_execute(&mut adapter, &plan));
        let rows_read = self.control.rows_read.load(Ordering::Relaxed);
        if let Some(e) = adapter.failure.borrow_mut().take() {
            return Err(e);
        }
        let payload = outcome.map_err(|e| {
            use gluesql_core::executor::ValidateError;
            if let gluesql_core::error::Error::Validate(
                ValidateError::DuplicateEntryOnPrimaryKeyField(_)
                | ValidateError::DuplicateEntryOnUniqueField(..),
            ) = &e
            {
                return SqlError::Conflict {
                    message: "a row with this primary key exists".into(),
                };
            }
            tracing::debug!(error = %e, "sql statement failed");
            SqlError::invalid(
                "the statement could not be executed with these parameters (type mismatch or unsupported expression)",
            )
        })?;
        let warnings = analysis.warnings.clone();
        match payload {
            Payload::Select { labels, rows } => {
                let more = rows.len() as u64 > u64::from(self.limit);
                let mut out = Vec::new();
                let mut last_keys = Vec::new();
                for row in rows.into_iter().take(self.limit as usize) {
                    let mut map = Map::new();
                    last_keys.clear();
                    for (label, value) in labels.iter().zip(row) {
                        if label.starts_with(KEYSET_ALIAS) {
                            last_keys.push(keys::value_to_api(&value, false));
                            continue;
                        }
                        let json = analysis.json_labels.contains(label);
                        map.insert(label.clone(), keys::value_to_api(&value, json));
                    }
                    out.push(map);
                }
                let next_cursor = more.then(|| match self.request.mode {
                    CursorMode::Offset => (offset + u64::from(self.limit)).to_string(),
                    CursorMode::Keyset => cursor::encode(
                        &self.cursor_key,
                        self.definition.id,
                        CursorMode::Keyset.name(),
                        std::mem::take(&mut last_keys),
                    ),
                });
                debug_assert!(keyset_columns == 0 || self.request.mode == CursorMode::Keyset);
                Ok(Page {
                    rows: out,
                    next_cursor,
                    warnings,
                    affected_rows: None,
                    rows_read,
                })
            }
            Payload::Insert(n) | Payload::Update(n) | Payload::Delete(n) => Ok(Page {
                rows: Vec::new(),
                next_cursor: None,
                warnings,
                affected_rows: Some(n as u64),
                rows_read,
            }),
            _ => Err(SqlError::Internal("unexpected payload".into())),
        }
    }
}

fn number(n: u64) -> Expr {
    Expr::Value(SqlValue::Number(
        n.to_string().parse().expect("a u64 is a number"),
        false,
    ))
}

/// Rows strictly after the cursor row in ORDER BY order: `(c1 > $a) OR (c1 = $a AND c2 > $b)
/// ...` with `<` for descending columns. NULL sorts last ascending and first descending (as
/// GlueSQL sorts), so against a NULL cursor value "equal" is `IS NULL`, "after" is nothing
/// (ascending) or `IS NOT NULL` (descending), and "after" a value includes the NULLs when
/// ascending. Non-NULL cursor values are bound as `$first`, `$first+1`, ... in order.
fn keyset_predicate(order: &[OrderColumn], exprs: &[Expr], values: &[Value], first: usize) -> Expr {
    let mut slots = Vec::with_capacity(values.len());
    let mut next = first;
    for v in values {
        if *v == Value::Null {
            slots.push(None);
        } else {
            slots.push(Some(Expr::Value(SqlValue::Placeholder(format!("${next}")))));
            next += 1;
        }
    }
    let binary = |left: &Expr, op, right: Expr| Expr::BinaryOp {
        left: Box::new(left.clone()),
        op,
        right: Box::new(right),
    };
    let and = |a: Expr, b: Expr| binary(&a, BinaryOperator::And, b);
    // GlueSQL makes `x AND NULL` / `x OR NULL` NULL (false) whatever `x` is, so a comparison
    // that may meet a NULL column is wrapped in COALESCE with its truth for NULL.
    let guarded = |i: usize, cmp: Expr, if_null: bool| {
        if !order[i].nullable {
            return cmp;
        }
        let arg = |e: Expr| FunctionArg::Unnamed(FunctionArgExpr::Expr(e));
        Expr::Function(Function {
            name: ObjectName(vec![Ident::new("COALESCE")]),
            parameters: FunctionArguments::None,
            args: FunctionArguments::List(FunctionArgumentList {
                duplicate_treatment: None,
                args: vec![arg(cmp), arg(Expr::Value(SqlValue::Boolean(if_null)))],
                clauses: Vec::new(),
            }),
            filter: None,
            null_treatment: None,
            over: None,
            within_group: Vec::new(),
        })
    };
    let equal = |i: usize| match &slots[i] {
        Some(p) => guarded(i, binary(&exprs[i], BinaryOperator::Eq, p.clone()), false),
        None => Expr::IsNull(Box::new(exprs[i].clone())),
    };
    let after = |i: usize| -> Option<Expr> {
        match (&slots[i], order[i].descending) {
            (None, false) => None,
            (None, true) => Some(Expr::IsNotNull(Box::new(exprs[i].clone()))),
            // NULL sorts before every value descending, after every value ascending.
            (Some(p), true) => Some(guarded(
                i,
                binary(&exprs[i], BinaryOperator::Lt, p.clone()),
                false,
            )),
            (Some(p), false) => Some(guarded(
                i,
                binary(&exprs[i], BinaryOperator::Gt, p.clone()),
                true,
            )),
        }
    };
    let mut disjuncts = Vec::new();
    for i in 0..order.len() {
        let Some(last) = after(i) else { continue };
        let term = (0..i).map(equal).rev().fold(last, |acc, eq| and(eq, acc));
        disjuncts.push(Expr::Nested(Box::new(term)));
    }
    disjuncts
        .into_iter()
        .reduce(|a, b| binary(&a, BinaryOperator::Or, b))
        // Nothing sorts after the cursor: the last column is a unique key, so this only
        // happens when it is NULL (a LEFT JOIN's missing row) after NULLs of every column.
        .unwrap_or(Expr::Value(SqlValue::Boolean(false)))
}

fn value_literal(v: Value) -> ParamLiteral {
    match v {
        Value::Null => ParamLiteral::null(),
        Value::Bool(b) => b.into_param_literal(),
        Value::I64(n) => n.into_param_literal(),
        Value::F64(f) => f.into_param_literal(),
        Value::Str(s) => s.into_param_literal(),
        Value::Uuid(u) => Uuid::from_u128(u).into_param_literal(),
        Value::Timestamp(t) => t.into_param_literal(),
        _ => ParamLiteral::null(),
    }
}

/// A client JSON value as a typed engine value (pydantic v1 messages on failure).
fn json_to_value(ty: Option<ColumnType>, v: &Json) -> Result<Value, (&'static str, &'static str)> {
    if v.is_null() {
        return Err((
            "none is not an allowed value",
            "type_error.none.not_allowed",
        ));
    }
    Ok(match ty {
        Some(ColumnType::Text) => match v {
            Json::String(s) => Value::Str(s.clone()),
            _ => return Err(("str type expected", "type_error.str")),
        },
        Some(ColumnType::Integer) => match v.as_i64() {
            Some(n) => Value::I64(n),
            None => return Err(("value is not a valid integer", "type_error.integer")),
        },
        Some(ColumnType::Float) => match v.as_f64() {
            Some(f) if v.is_number() => Value::F64(f),
            _ => return Err(("value is not a valid float", "type_error.float")),
        },
        Some(ColumnType::Boolean) => match v {
            Json::Bool(b) => Value::Bool(*b),
            _ => return Err(("value could not be parsed to a boolean", "type_error.bool")),
        },
        Some(ColumnType::Uuid) => match v.as_str().and_then(|s| Uuid::parse_str(s).ok()) {
            Some(u) => Value::Uuid(u.as_u128()),
            None => return Err(("value is not a valid uuid", "type_error.uuid")),
        },
        Some(ColumnType::Timestamp) => match v.as_str().and_then(keys::parse_time) {
            Some(t) => Value::Timestamp(t),
            None => return Err(("invalid datetime format", "value_error.datetime")),
        },
        Some(ColumnType::Json) => Value::Str(v.to_string()),
        None => match v {
            Json::String(s) => Value::Str(s.clone()),
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => match n.as_i64() {
                Some(i) => Value::I64(i),
                None => Value::F64(n.as_f64().unwrap_or(0.0)),
            },
            _ => return Err(("value is not a valid scalar", "type_error")),
        },
    })
}

/// Binds every parameter in `$N` order; reserved ones from the caller when it has them.
fn bind_params(analysis: &Analysis, request: &ExecuteRequest) -> Result<Vec<Value>, SqlError> {
    let mut errors = Vec::new();
    let mut bound = Vec::new();
    for p in &analysis.params {
        let caller_value = match p.name.as_str() {
            "end_user_id" => request
                .caller
                .end_user_id
                .map(|u| Json::String(u.to_string())),
            "external_id" => request.caller.external_id.clone().map(Json::String),
            _ => None,
        };
        let value = caller_value
            .as_ref()
            .or_else(|| request.params.get(&p.name));
        match value {
            None => errors.push(ParamError::new(
                &p.name,
                "field required",
                "value_error.missing",
            )),
            Some(Json::Null) if p.nullable => bound.push(Value::Null),
            Some(v) => match json_to_value(p.ty, v) {
                Ok(v) => bound.push(v),
                Err((msg, kind)) => errors.push(ParamError::new(&p.name, msg, kind)),
            },
        }
    }
    for name in request.params.keys() {
        if !analysis.params.iter().any(|p| &p.name == name) {
            errors.push(ParamError::new(
                name,
                "extra fields not permitted",
                "value_error.extra",
            ));
        }
    }
    if errors.is_empty() {
        Ok(bound)
    } else {
        Err(SqlError::ParamErrors(errors))
    }
}
