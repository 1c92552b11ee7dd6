//! Keyed access the planner misses. GlueSQL plans UPDATE and DELETE as a full scan of the
//! target table filtered by the WHERE clause (`executor::fetch`), whatever the condition, and
//! a SELECT with `ORDER BY pk` reads the pk order and filters it even when the WHERE pins an
//! indexed column. When the WHERE is a conjunction with `pk = value` (or `indexed_column =
//! value`), only rows with that key can satisfy it, so the storage may hand the engine just
//! those rows: the engine still evaluates the whole WHERE on each of them, so the result is
//! the same, and a keyed statement reads its rows instead of the table. An index slice of one
//! key is in pk order, so it also serves `ORDER BY pk` (see `RowsAdapter::scan_indexed_data`).

use gluesql_core::prelude::Value;
use sqlparser::ast::{
    BinaryOperator, Delete, Expr, FromTable, SetExpr, Statement, TableFactor, TableWithJoins,
    Value as SqlValue,
};

use super::analyze::Catalog;
use super::keys::encode_key;
use super::storage::{Restriction, PK_INDEX};
use crate::store::rows::{ColumnType, TableRecord};

/// The restriction a statement on one table can use, given its bound parameters (`$N` =
/// `params[N-1]`). `None` when the WHERE has no usable equality, the statement joins, or the
/// table is named elsewhere in the statement too (a subquery's scan of it must see every row).
pub fn key_restriction(
    statement: &Statement,
    params: &[Value],
    catalog: &Catalog,
    table_uses: &std::collections::HashMap<String, usize>,
) -> Option<Restriction> {
    let (target, selection) = match statement {
        Statement::Query(query) => {
            let SetExpr::Select(select) = query.body.as_ref() else {
                return None;
            };
            (single_table(&select.from)?, select.selection.as_ref()?)
        }
        Statement::Update {
            table, selection, ..
        } => (
            single_table(std::slice::from_ref(table))?,
            selection.as_ref()?,
        ),
        Statement::Delete(Delete {
            from, selection, ..
        }) => {
            let (FromTable::WithFromKeyword(tables) | FromTable::WithoutKeyword(tables)) = from;
            (single_table(tables)?, selection.as_ref()?)
        }
        _ => return None,
    };
    let (name, alias) = target;
    if table_uses.get(&name) != Some(&1) {
        return None;
    }
    let table = catalog.get(&name)?;
    let mut conjuncts = Vec::new();
    split_and(selection, &mut conjuncts);
    let mut best: Option<Restriction> = None;
    for c in conjuncts {
        let Some((column, key)) = equality(c, table, &name, alias.as_deref(), params) else {
            continue;
        };
        if column == table.primary_key {
            return Some(Restriction {
                table: name,
                index: PK_INDEX.to_owned(),
                key,
            });
        }
        if best.is_none() {
            // A building index is incomplete: only a ready one can stand for the table.
            if let Some(index) = table.ready_indexes().find(|i| i.column == column) {
                best = Some(Restriction {
                    table: name.clone(),
                    index: index.name.clone(),
                    key,
                });
            }
        }
    }
    best
}

/// (table name, alias) of a statement on exactly one plain table.
fn single_table(tables: &[TableWithJoins]) -> Option<(String, Option<String>)> {
    let [only] = tables else { return None };
    if !only.joins.is_empty() {
        return None;
    }
    let TableFactor::Table { name, alias, .. } = &only.relation else {
        return None;
    };
    let table = name.0.last()?.value.to_lowercase();
    Some((table, alias.as_ref().map(|a| a.name.value.to_lowercase())))
}

fn split_and<'e>(expr: &'e Expr, out: &mut Vec<&'e Expr>) {
    match expr {
        Expr::Nested(inner) => split_and(inner, out),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            split_and(left, out);
            split_and(right, out);
        }
        other => out.push(other),
    }
}

/// `column = value` or `value = column` on the target table, with the value's key bytes.
fn equality(
    expr: &Expr,
    table: &TableRecord,
    name: &str,
    alias: Option<&str>,
    params: &[Value],
) -> Option<(String, Vec<u8>)> {
    let Expr::BinaryOp {
        left,
        op: BinaryOperator::Eq,
        right,
    } = expr
    else {
        return None;
    };
    let (column, value) = match (
        target_column(left, name, alias),
        target_column(right, name, alias),
    ) {
        (Some(c), None) => (c, right),
        (None, Some(c)) => (c, left),
        _ => return None,
    };
    let ty = table.column(&column)?.ty;
    let value = operand(value, ty, params)?;
    Some((column, encode_key(ty, &value)?))
}

fn target_column(expr: &Expr, name: &str, alias: Option<&str>) -> Option<String> {
    match expr {
        Expr::Nested(inner) => target_column(inner, name, alias),
        Expr::Identifier(id) => Some(id.value.to_lowercase()),
        Expr::CompoundIdentifier(parts) if parts.len() == 2 => {
            let qualifier = parts[0].value.to_lowercase();
            (qualifier == name || Some(qualifier.as_str()) == alias)
                .then(|| parts[1].value.to_lowercase())
        }
        _ => None,
    }
}

/// A bound parameter or a literal, only when it already has the column's own type: then the
/// engine's `=` and our key encoding agree exactly (no coercion in between). NULL never
/// equals anything, so it is no key either. Floats are left out: `-0.0 = 0.0` holds while
/// their keys differ.
fn operand(expr: &Expr, ty: ColumnType, params: &[Value]) -> Option<Value> {
    let value = match expr {
        Expr::Nested(inner) => return operand(inner, ty, params),
        Expr::Value(SqlValue::Placeholder(p)) => {
            let n: usize = p.strip_prefix('$')?.parse().ok()?;
            params.get(n.checked_sub(1)?)?.clone()
        }
        Expr::Value(SqlValue::Number(n, _)) if ty == ColumnType::Integer => {
            Value::I64(n.to_string().parse().ok()?)
        }
        Expr::Value(SqlValue::SingleQuotedString(s)) if ty == ColumnType::Text => {
            Value::Str(s.clone())
        }
        _ => return None,
    };
    let native = matches!(
        (ty, &value),
        (ColumnType::Integer, Value::I64(_))
            | (ColumnType::Text, Value::Str(_))
            | (ColumnType::Boolean, Value::Bool(_))
            | (ColumnType::Uuid, Value::Uuid(_))
            | (ColumnType::Timestamp, Value::Timestamp(_))
    );
    native.then_some(value)
}
