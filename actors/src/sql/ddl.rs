//! Table DDL of the admin API: CREATE TABLE, CREATE \[UNIQUE\] INDEX, ALTER TABLE ... ADD
//! COLUMN, DROP TABLE. Parsed with the engine's sqlparser; applied to the row store's metadata
//! (GlueSQL never runs DDL: tables live in the store, per project). An index created over
//! existing rows is filled by `ddl/backfill.rs`.

mod backfill;

use std::sync::Arc;

use sqlparser::ast::{
    AlterTableOperation, ColumnDef, ColumnOption, CreateIndex, CreateTable, DataType, Expr,
    ObjectName, ObjectType, Statement, TableConstraint, TimezoneInfo,
};
use uuid::Uuid;

use super::analyze::parse_one;
use super::error::SqlError;
use super::keys::value_to_stored;
use super::SqlEngine;
use crate::store::rows::{ColumnSpec, ColumnType, IndexSpec, MetaInserted, TableRecord};

/// What a DDL statement did.
#[derive(Clone, Debug, PartialEq)]
pub enum DdlOutcome {
    Created(TableRecord),
    Altered(TableRecord),
    /// Definitions deleted along with the table (DROP TABLE ... CASCADE).
    Dropped {
        table: String,
        definitions: Vec<Uuid>,
    },
    /// DROP INDEX: the table as it is now (`None`: DROP INDEX IF EXISTS found no such index).
    IndexDropped {
        index: String,
        table: Option<TableRecord>,
    },
}

fn ident_name(name: &ObjectName) -> Result<String, SqlError> {
    match name.0.as_slice() {
        [one] => {
            let n = if one.quote_style.is_some() {
                one.value.clone()
            } else {
                one.value.to_lowercase()
            };
            check_identifier(&n)?;
            Ok(n)
        }
        _ => Err(SqlError::invalid("table names are not schema-qualified")),
    }
}

fn check_identifier(n: &str) -> Result<(), SqlError> {
    let ok = !n.is_empty()
        && n.len() <= 63
        && !n.starts_with("__")
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !n.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(SqlError::invalid(format!(
            "{n:?} is not a valid name: lowercase letters, digits and underscores, not starting with a digit or __"
        )))
    }
}

fn column_type(t: &DataType) -> Result<ColumnType, SqlError> {
    Ok(match t {
        DataType::Text | DataType::Varchar(_) | DataType::String(_) | DataType::CharVarying(_) => {
            ColumnType::Text
        }
        DataType::Int(_) | DataType::Integer(_) | DataType::BigInt(_) | DataType::Int64
        | DataType::Int8(_) => ColumnType::Integer,
        DataType::Float(_) | DataType::Double | DataType::DoublePrecision | DataType::Real
        | DataType::Float64 | DataType::Float8 => ColumnType::Float,
        DataType::Boolean | DataType::Bool => ColumnType::Boolean,
        DataType::Uuid => ColumnType::Uuid,
        DataType::Timestamp(_, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone) => {
            ColumnType::Timestamp
        }
        DataType::JSON | DataType::JSONB => ColumnType::Json,
        other => {
            return Err(SqlError::invalid(format!(
                "unsupported column type {other}: use TEXT, INTEGER, BIGINT, FLOAT, DOUBLE, BOOLEAN, UUID, TIMESTAMP or JSON"
            )))
        }
    })
}

/// A column and whether it is the primary key / UNIQUE.
fn column_spec(def: &ColumnDef) -> Result<(ColumnSpec, bool, bool), SqlError> {
    let name = if def.name.quote_style.is_some() {
        def.name.value.clone()
    } else {
        def.name.value.to_lowercase()
    };
    check_identifier(&name)?;
    let ty = column_type(&def.data_type)?;
    let mut nullable = true;
    let mut primary = false;
    let mut unique = false;
    let mut default = None;
    for option in &def.options {
        match &option.option {
            ColumnOption::Null => {}
            ColumnOption::NotNull => nullable = false,
            ColumnOption::Unique { is_primary, .. } => {
                if *is_primary {
                    primary = true;
                    nullable = false;
                } else {
                    unique = true;
                }
            }
            ColumnOption::Default(expr) => default = Some(default_value(ty, expr)?),
            _ => {
                return Err(SqlError::invalid(format!(
                    "unsupported option on column {name}: {}",
                    option.option
                )))
            }
        }
    }
    Ok((
        ColumnSpec {
            name,
            ty,
            nullable,
            default,
        },
        primary,
        unique,
    ))
}

/// DEFAULT takes a literal only (no functions: the default is stored once, not evaluated).
fn default_value(ty: ColumnType, expr: &Expr) -> Result<serde_json::Value, SqlError> {
    use gluesql_core::data::Value;
    use sqlparser::ast::{UnaryOperator, Value as V};
    let bad = || SqlError::invalid("DEFAULT must be a literal of the column's type");
    let value = match expr {
        Expr::Value(V::Number(n, _)) => match n.to_string().parse::<i64>() {
            Ok(i) => Value::I64(i),
            Err(_) => Value::F64(n.to_string().parse().map_err(|_| bad())?),
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match expr.as_ref() {
            Expr::Value(V::Number(n, _)) => match n.to_string().parse::<i64>() {
                Ok(i) => Value::I64(-i),
                Err(_) => Value::F64(-n.to_string().parse::<f64>().map_err(|_| bad())?),
            },
            _ => return Err(bad()),
        },
        Expr::Value(V::SingleQuotedString(s)) => Value::Str(s.clone()),
        Expr::Value(V::Boolean(b)) => Value::Bool(*b),
        Expr::Value(V::Null) => Value::Null,
        _ => return Err(bad()),
    };
    value_to_stored(ty, &value).map_err(|_| bad())
}

impl SqlEngine {
    /// Applies one DDL statement to the project's tables.
    pub async fn execute_ddl(&self, project_id: Uuid, sql: &str) -> Result<DdlOutcome, SqlError> {
        let out = self.run_ddl(project_id, sql).await;
        // Whatever the outcome (a failed statement may have changed a table half-way).
        self.schema_changed().await;
        out
    }

    async fn run_ddl(&self, project_id: Uuid, sql: &str) -> Result<DdlOutcome, SqlError> {
        let limits = self.config().limits.clone();
        let text = sql.to_owned();
        // Parsing recurses: it runs on the SQL pool's big stacks, never on a runtime worker.
        let statement = self.pool.run(move || parse_one(&text, &limits)).await?;
        match statement {
            Statement::CreateTable(create) => self.create_table(project_id, &create).await,
            Statement::CreateIndex(create) => self.create_index(project_id, &create).await,
            Statement::AlterTable {
                name, operations, ..
            } => {
                let table = ident_name(&name)?;
                let [AlterTableOperation::AddColumn {
                    column_def,
                    if_not_exists,
                    ..
                }] = operations.as_slice()
                else {
                    return Err(SqlError::invalid("ALTER TABLE supports ADD COLUMN only"));
                };
                self.add_column(project_id, &table, column_def, *if_not_exists)
                    .await
            }
            Statement::Drop {
                object_type: ObjectType::Table,
                names,
                cascade,
                if_exists,
                ..
            } => {
                let [name] = names.as_slice() else {
                    return Err(SqlError::invalid("DROP TABLE takes one table"));
                };
                let table = ident_name(name)?;
                match self.drop_table(project_id, &table, cascade).await {
                    Err(SqlError::InvalidSql { .. }) if if_exists => Ok(DdlOutcome::Dropped {
                        table,
                        definitions: Vec::new(),
                    }),
                    other => other,
                }
            }
            Statement::Drop {
                object_type: ObjectType::Index,
                names,
                if_exists,
                ..
            } => {
                let [name] = names.as_slice() else {
                    return Err(SqlError::invalid("DROP INDEX takes one index"));
                };
                self.drop_index(project_id, name, if_exists).await
            }
            _ => Err(SqlError::invalid(
                "expected CREATE TABLE, CREATE INDEX, ALTER TABLE ... ADD COLUMN, DROP INDEX or DROP TABLE",
            )),
        }
    }

    async fn create_table(
        &self,
        project_id: Uuid,
        create: &CreateTable,
    ) -> Result<DdlOutcome, SqlError> {
        let name = ident_name(&create.name)?;
        if create.query.is_some() {
            return Err(SqlError::invalid(
                "CREATE TABLE ... AS SELECT is not supported",
            ));
        }
        let mut columns = Vec::new();
        let mut primary = Vec::new();
        let mut uniques = Vec::new();
        for def in &create.columns {
            let (spec, is_pk, is_unique) = column_spec(def)?;
            if columns.iter().any(|c: &ColumnSpec| c.name == spec.name) {
                return Err(SqlError::invalid(format!("duplicate column {}", spec.name)));
            }
            if is_pk {
                primary.push(spec.name.clone());
            }
            if is_unique {
                uniques.push(spec.name.clone());
            }
            columns.push(spec);
        }
        for constraint in &create.constraints {
            match constraint {
                TableConstraint::PrimaryKey { columns: cols, .. } => {
                    primary.extend(cols.iter().map(|c| c.value.to_lowercase()))
                }
                TableConstraint::Unique { columns: cols, .. } if cols.len() == 1 => {
                    uniques.push(cols[0].value.to_lowercase())
                }
                _ => return Err(SqlError::invalid("unsupported table constraint")),
            }
        }
        let [pk] = primary.as_slice() else {
            return Err(SqlError::invalid(
                "a table needs exactly one PRIMARY KEY column",
            ));
        };
        let pk_spec = columns
            .iter_mut()
            .find(|c| &c.name == pk)
            .ok_or_else(|| SqlError::invalid(format!("unknown column {pk}")))?;
        if matches!(pk_spec.ty, ColumnType::Json | ColumnType::Float) {
            return Err(SqlError::invalid("a primary key cannot be JSON or FLOAT"));
        }
        pk_spec.nullable = false;
        let mut indexes = Vec::new();
        for u in uniques {
            let col = columns
                .iter()
                .find(|c| c.name == u)
                .ok_or_else(|| SqlError::invalid(format!("unknown column {u}")))?;
            if col.ty == ColumnType::Json {
                return Err(SqlError::invalid("JSON columns cannot be indexed"));
            }
            if &u != pk {
                indexes.push(IndexSpec {
                    name: format!("{name}_{u}_key"),
                    column: u,
                    unique: true,
                    building: false,
                });
            }
        }
        let record = TableRecord {
            project_id,
            id: Uuid::now_v7(),
            name: name.clone(),
            columns,
            primary_key: pk.clone(),
            indexes,
            buckets: self.config().buckets,
            version: 1,
            created_at: chrono::Utc::now().timestamp(),
        };
        match self
            .store()
            .create_table(&record, self.config().max_tables_per_project)
            .await?
        {
            MetaInserted::Created => Ok(DdlOutcome::Created(record)),
            MetaInserted::AlreadyExists if create.if_not_exists => {
                let existing = self.store().get_table(project_id, &name).await?;
                existing
                    .map(DdlOutcome::Created)
                    .ok_or_else(|| SqlError::Unavailable("table vanished".into()))
            }
            MetaInserted::AlreadyExists => Err(SqlError::Conflict {
                message: format!("table {name} exists"),
            }),
            MetaInserted::QuotaExceeded => Err(SqlError::Quota {
                message: format!(
                    "a project holds at most {} tables",
                    self.config().max_tables_per_project
                ),
            }),
        }
    }

    async fn existing_table(&self, project_id: Uuid, name: &str) -> Result<TableRecord, SqlError> {
        self.store()
            .get_table(project_id, name)
            .await?
            .ok_or_else(|| SqlError::invalid(format!("unknown table {name}")))
    }

    /// CREATE [UNIQUE] INDEX. On an empty table the index is ready at once; otherwise it is
    /// declared `building` and backfilled (see `ddl/backfill.rs`), which takes at least
    /// `statement_timeout + store_call_margin`. The same statement run again after a backfill
    /// that died midway resumes it.
    async fn create_index(
        &self,
        project_id: Uuid,
        create: &CreateIndex,
    ) -> Result<DdlOutcome, SqlError> {
        let table_name = ident_name(&create.table_name)?;
        let [column] = create.columns.as_slice() else {
            return Err(SqlError::invalid("an index covers exactly one column"));
        };
        let Expr::Identifier(column) = &column.expr else {
            return Err(SqlError::invalid("an index covers exactly one column"));
        };
        let column = column.value.to_lowercase();
        let name = match &create.name {
            Some(n) => ident_name(n)?,
            None => format!("{table_name}_{column}_idx"),
        };
        let mut table = self.existing_table(project_id, &table_name).await?;
        let spec = table
            .column(&column)
            .ok_or_else(|| SqlError::invalid(format!("unknown column {column}")))?;
        if spec.ty == ColumnType::Json {
            return Err(SqlError::invalid("JSON columns cannot be indexed"));
        }
        if let Some(existing) = table.indexes.iter().find(|i| i.name == name) {
            if existing.building {
                // Declared by a CREATE INDEX whose backfill did not finish: resume it.
                if existing.column != column || existing.unique != create.unique {
                    return Err(SqlError::Conflict {
                        message: format!("index {name} is being built with another definition"),
                    });
                }
                let index = existing.clone();
                return self.backfill(table, index).await;
            }
            if create.if_not_exists {
                return Ok(DdlOutcome::Altered(table));
            }
            return Err(SqlError::Conflict {
                message: format!("index {name} exists"),
            });
        }
        let mut index = IndexSpec {
            name,
            column,
            unique: create.unique,
            building: false,
        };
        if self.store().count_rows(table.key()).await? == 0 {
            table.indexes.push(index);
            return self.save_table(table).await;
        }
        // Entries left by an earlier index of this name (a purge cut short) would pass for
        // this one's: nobody maintains that name now, so they can go before it is declared.
        backfill::purge_index(self.store().as_ref(), table.key(), &index).await?;
        index.building = true;
        table.indexes.push(index.clone());
        let table = self.store_table(table).await?;
        self.backfill(table, index).await
    }

    /// Runs the backfill in a task of its own, so a client that goes away does not cut it
    /// short.
    async fn backfill(&self, table: TableRecord, index: IndexSpec) -> Result<DdlOutcome, SqlError> {
        // Every statement that may have read the table without the new index has ended: those
        // that started before the declaration (statement timeout + store margin), and those
        // on other nodes that ran on compiled definitions until they saw the change.
        let settle = self.config().statement_timeout
            + self.config().store_call_margin
            + self.config().compiled_staleness;
        let task = tokio::spawn(backfill::build_index(
            Arc::clone(self.store()),
            table,
            index,
            settle,
            self.config().page_size,
        ));
        let table = task
            .await
            .map_err(|e| SqlError::Internal(format!("index backfill task: {e}")))??;
        Ok(DdlOutcome::Altered(table))
    }

    async fn add_column(
        &self,
        project_id: Uuid,
        table_name: &str,
        def: &ColumnDef,
        if_not_exists: bool,
    ) -> Result<DdlOutcome, SqlError> {
        let (spec, primary, unique) = column_spec(def)?;
        if primary || unique {
            return Err(SqlError::invalid(
                "ADD COLUMN cannot add a PRIMARY KEY or UNIQUE column",
            ));
        }
        if !spec.nullable && spec.default.is_none() {
            return Err(SqlError::invalid(
                "a NOT NULL column added later needs a DEFAULT",
            ));
        }
        let mut table = self.existing_table(project_id, table_name).await?;
        if table.column(&spec.name).is_some() {
            if if_not_exists {
                return Ok(DdlOutcome::Altered(table));
            }
            return Err(SqlError::Conflict {
                message: format!("column {} exists", spec.name),
            });
        }
        // Old rows are not rewritten: a missing cell reads as the default.
        table.columns.push(spec);
        self.save_table(table).await
    }

    async fn save_table(&self, table: TableRecord) -> Result<DdlOutcome, SqlError> {
        self.store_table(table).await.map(DdlOutcome::Altered)
    }

    /// Writes a changed record over the version it was read at.
    async fn store_table(&self, mut table: TableRecord) -> Result<TableRecord, SqlError> {
        let expected = table.version;
        table.version += 1;
        if self.store().update_table(&table, expected).await? {
            // At once, not when the statement ends: an index declared `building` must be
            // maintained by every write from now on (the backfill waits out the stale ones).
            self.schema_changed().await;
            Ok(table)
        } else {
            Err(SqlError::Conflict {
                message: format!("table {} changed concurrently; retry", table.name),
            })
        }
    }

    /// Refuses while definitions use the table, unless `cascade` (then deletes them). Rows
    /// are purged in bounded batches after the metadata is gone.
    pub async fn drop_table(
        &self,
        project_id: Uuid,
        name: &str,
        cascade: bool,
    ) -> Result<DdlOutcome, SqlError> {
        let out = self.drop_table_now(project_id, name, cascade).await;
        self.schema_changed().await;
        out
    }

    async fn drop_table_now(
        &self,
        project_id: Uuid,
        name: &str,
        cascade: bool,
    ) -> Result<DdlOutcome, SqlError> {
        let table = self.existing_table(project_id, name).await?;
        let users: Vec<_> = self
            .store()
            .list_definitions(project_id)
            .await?
            .into_iter()
            .filter(|d| d.tables.iter().any(|t| t == name))
            .collect();
        if !users.is_empty() && !cascade {
            let names: Vec<&str> = users.iter().map(|d| d.name.as_str()).collect();
            return Err(SqlError::invalid(format!(
                "table {name} is used by query definitions {}; drop them first or use DROP TABLE ... CASCADE",
                names.join(", ")
            )));
        }
        let mut dropped = Vec::new();
        for d in users {
            self.store().delete_definition(project_id, d.id).await?;
            dropped.push(d.id);
        }
        self.store().delete_table(project_id, name).await?;
        while self
            .store()
            .purge_rows(table.key(), table.buckets, 1000)
            .await?
            > 0
        {}
        // Backfilled entries are not listed beside their rows (CQL purges by those lists).
        for index in &table.indexes {
            backfill::purge_index(self.store().as_ref(), table.key(), index).await?;
        }
        Ok(DdlOutcome::Dropped {
            table: name.to_owned(),
            definitions: dropped,
        })
    }

    /// DROP INDEX [IF EXISTS] name | table.name. Index names are unique per table only, so an
    /// unqualified name must belong to exactly one table of the project. Definitions keep
    /// working: their plans and keyset eligibility are recomputed at every execution.
    async fn drop_index(
        &self,
        project_id: Uuid,
        name: &ObjectName,
        if_exists: bool,
    ) -> Result<DdlOutcome, SqlError> {
        let (table_name, index_name) = match name.0.as_slice() {
            [index] => (None, index.value.to_lowercase()),
            [table, index] => (Some(table.value.to_lowercase()), index.value.to_lowercase()),
            _ => return Err(SqlError::invalid("DROP INDEX takes index or table.index")),
        };
        let holders: Vec<TableRecord> = self
            .store()
            .list_tables(project_id)
            .await?
            .into_iter()
            .filter(|t| table_name.as_ref().is_none_or(|n| *n == t.name))
            .filter(|t| t.indexes.iter().any(|i| i.name == index_name))
            .collect();
        let table = match holders.as_slice() {
            [one] => one.clone(),
            [] if if_exists => {
                return Ok(DdlOutcome::IndexDropped {
                    index: index_name,
                    table: None,
                })
            }
            [] => return Err(SqlError::invalid(format!("unknown index {index_name}"))),
            many => {
                let names: Vec<String> = many
                    .iter()
                    .map(|t| format!("{}.{index_name}", t.name))
                    .collect();
                return Err(SqlError::invalid(format!(
                    "index {index_name} exists on several tables: drop {}",
                    names.join(" or ")
                )));
            }
        };
        let spec = table
            .indexes
            .iter()
            .find(|i| i.name == index_name)
            .cloned()
            .ok_or_else(|| SqlError::Internal("index vanished".into()))?;
        match backfill::remove_index(self.store().as_ref(), &table, &spec).await? {
            Some(table) => Ok(DdlOutcome::IndexDropped {
                index: index_name,
                table: Some(table),
            }),
            None => Err(SqlError::Conflict {
                message: format!("table {} changed concurrently; retry", table.name),
            }),
        }
    }

    pub async fn list_tables(&self, project_id: Uuid) -> Result<Vec<TableRecord>, SqlError> {
        Ok(self.store().list_tables(project_id).await?)
    }
}
