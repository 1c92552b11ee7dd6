//! One execution of a query definition on a SQL pool thread: parameters bound, the statement
//! rewritten for the page (offset or keyset), planned and run by GlueSQL over the row store,
//! and its rows turned into JSON.

use std::sync::atomic::Ordering;
use std::sync::Arc;

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

use super::analyze::{self, Analysis, Catalog, OrderColumn, StatementKind};
use super::storage::{Control, RowsAdapter, ScanHint, WriteMode};
use super::{
    cursor, keys, lookup, CursorMode, ExecuteRequest, Page, ParamError, SqlConfig, SqlError,
};
use uuid::Uuid;

use crate::store::rows::{ColumnType, DefinitionRecord, RowQuota, RowStore};

/// A definition with what its execution needs; `analysis` is None when it is to be analysed
/// on the pool thread that runs it.
pub(super) struct Prepared {
    pub definition: DefinitionRecord,
    pub catalog: Arc<Catalog>,
    pub analysis: Option<Arc<Analysis>>,
}

/// One execution, moved onto a pool thread.
pub(super) struct Job {
    pub rt: tokio::runtime::Handle,
    pub store: Arc<dyn RowStore>,
    pub config: SqlConfig,
    pub cursor_key: Vec<u8>,
    pub definition: DefinitionRecord,
    pub request: ExecuteRequest,
    pub limit: u32,
    pub catalog: Arc<Catalog>,
    pub analysis: Option<Arc<Analysis>>,
    pub control: Arc<Control>,
}

const KEYSET_ALIAS: &str = "__keyset_";

impl Job {
    /// The statement's kind (for metrics) and its outcome; `Err` only when the analysis fails.
    pub(super) fn run(self) -> Result<(StatementKind, Result<Page, SqlError>), SqlError> {
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
        let mut adapter = RowsAdapter::new(
            self.rt.clone(),
            Arc::clone(&self.store),
            Arc::clone(&self.catalog),
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
