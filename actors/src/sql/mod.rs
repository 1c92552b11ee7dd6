//! The simple DB (SPEC §5): app tables created with DDL, registered query definitions, and
//! their execution by GlueSQL (`gluesql-core` 0.20) over the project's rows in the
//! [`RowStore`]. Statements run on [`pool::SqlPool`], a bounded pool of its own, because
//! GlueSQL's storage traits are synchronous. See `docs/sql.md`.

pub mod analyze;
pub mod compiled;
pub mod cursor;
pub mod ddl;
pub mod error;
pub mod job;
pub mod keys;
pub mod lookup;
pub mod metrics;
pub mod pool;
pub mod storage;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value as Json};

use uuid::Uuid;

pub use analyze::{
    Catalog, OrderColumn, ParamSpec, SqlLimits, StatementKind, Warning, ORDER_BY_MISSING,
};
pub use error::{ParamError, SqlError};

use crate::store::rows::{DefinitionRecord, MetaInserted, RowStore};
use analyze::Analysis;
use job::{Job, Prepared};
use storage::Control;

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
