//! Registration-time analysis of a definition, with the same sqlparser (0.52) and dialect the
//! engine executes, so one parsed statement serves validation and execution: input bounds
//! checked on tokens before any recursion, one statement of an allowed kind, complexity limits,
//! tables and columns of the caller's project only, named placeholders rewritten to positional
//! ones in the AST, parameter types inferred from the columns they meet.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::ControlFlow;

use sqlparser::ast::{
    AssignmentTarget, Delete, Expr, FromTable, GroupByExpr, Ident, Insert, ObjectName, Query,
    Select, SelectItem, SetExpr, Statement, TableFactor, TableWithJoins, Value as SqlValue, Visit,
    VisitMut, Visitor, VisitorMut,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Token, Tokenizer};

use super::error::SqlError;
use crate::store::rows::{ColumnType, TableRecord};

/// The dialect GlueSQL parses with.
pub const DIALECT: PostgreSqlDialect = PostgreSqlDialect {};

/// The seed's exact warning.
pub const ORDER_BY_MISSING: &str = "ORDER BY is missing; pagination may be unstable";

/// Parameters bound from the caller's session, never from the client (public path).
pub const RESERVED_PARAMS: [&str; 2] = ["end_user_id", "external_id"];

/// Complexity limits (SPEC §5 defaults).
#[derive(Clone, Debug)]
pub struct SqlLimits {
    pub max_sql_bytes: usize,
    pub max_joins: usize,
    pub max_subquery_depth: usize,
    pub max_expr_nodes: usize,
    /// Parenthesis / parser nesting admitted before the parser runs.
    pub max_nesting: usize,
}

impl Default for SqlLimits {
    fn default() -> Self {
        SqlLimits {
            max_sql_bytes: 16 * 1024,
            max_joins: 8,
            max_subquery_depth: 8,
            max_expr_nodes: 1000,
            max_nesting: 64,
        }
    }
}

/// The project's tables by (lowercase) name.
pub type Catalog = HashMap<String, TableRecord>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatementKind {
    Select,
    Insert,
    Update,
    Delete,
}

impl StatementKind {
    pub fn name(self) -> &'static str {
        match self {
            StatementKind::Select => "select",
            StatementKind::Insert => "insert",
            StatementKind::Update => "update",
            StatementKind::Delete => "delete",
        }
    }
}

/// A parameter's type: a column type, or `None` (any JSON scalar) when no column constrains it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ParamSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: Option<ColumnType>,
    pub reserved: bool,
    /// Whether `null` is accepted: only for a parameter written into nullable columns only
    /// (INSERT values, UPDATE SET); elsewhere a NULL never matches, so it is refused (422).
    pub nullable: bool,
}

/// One ORDER BY item resolved to a column.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct OrderColumn {
    pub table: String,
    pub column: String,
    #[serde(rename = "type")]
    pub ty: ColumnType,
    pub descending: bool,
    /// Primary key or a NOT NULL column with a UNIQUE index of its table.
    pub unique: bool,
    /// Whether the column can hold NULL (which sorts last ascending, as in GlueSQL).
    #[serde(skip)]
    pub nullable: bool,
    /// Name of the index ordering this column ("__pk" for the primary key), if any.
    #[serde(skip)]
    pub index: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Warning {
    pub code: String,
    pub message: String,
}

/// Everything execution needs, derived from the text against the current tables.
#[derive(Clone, Debug)]
pub struct Analysis {
    /// With `$N` placeholders (N = position in `params` + 1) and lowercase identifiers.
    pub statement: Statement,
    pub kind: StatementKind,
    pub params: Vec<ParamSpec>,
    pub tables: Vec<String>,
    /// Resolved ORDER BY (SELECT only); `Err` says why keyset paging cannot work.
    pub order_by: Result<Vec<OrderColumn>, String>,
    pub has_order_by: bool,
    pub warnings: Vec<Warning>,
    /// Output labels whose values are JSON columns (parsed back to JSON on output).
    pub json_labels: HashSet<String>,
    /// How many times each table is named (the storage fast paths need exactly once).
    pub table_uses: HashMap<String, usize>,
}

/// Token-level bounds, then the parser with a recursion limit. The parser's frames are large
/// in debug builds: run it on a pool thread or via [`analyze_on_big_stack`], not on a 2 MiB
/// runtime worker.
pub fn parse_one(sql: &str, limits: &SqlLimits) -> Result<Statement, SqlError> {
    if sql.len() > limits.max_sql_bytes {
        return Err(SqlError::too_complex(format!(
            "statement is longer than {} bytes",
            limits.max_sql_bytes
        )));
    }
    let tokens = Tokenizer::new(&DIALECT, sql)
        .tokenize()
        .map_err(|e| SqlError::invalid(format!("cannot tokenize: {}", e.message)))?;
    let mut depth = 0usize;
    let mut significant = 0usize;
    for t in &tokens {
        match t {
            Token::LParen | Token::LBracket | Token::LBrace => {
                depth += 1;
                if depth > limits.max_nesting {
                    return Err(SqlError::too_complex(format!(
                        "nesting deeper than {} levels",
                        limits.max_nesting
                    )));
                }
            }
            Token::RParen | Token::RBracket | Token::RBrace => depth = depth.saturating_sub(1),
            Token::Whitespace(_) => continue,
            _ => {}
        }
        significant += 1;
    }
    // Every expression node needs at least one token, most need fewer than four.
    if significant > limits.max_expr_nodes.saturating_mul(4) + 64 {
        return Err(SqlError::too_complex(format!(
            "more than {} expression nodes",
            limits.max_expr_nodes
        )));
    }
    let statements = Parser::new(&DIALECT)
        .with_recursion_limit(limits.max_nesting)
        .with_tokens(tokens)
        .parse_statements()
        .map_err(|e| match e {
            ParserError::RecursionLimitExceeded => {
                SqlError::too_complex("statement is nested too deeply")
            }
            ParserError::ParserError(m) | ParserError::TokenizerError(m) => {
                SqlError::invalid(format!("cannot parse: {m}"))
            }
        })?;
    let mut statements = statements.into_iter();
    match (statements.next(), statements.next()) {
        (Some(s), None) => Ok(s),
        (None, _) => Err(SqlError::invalid("no statement")),
        (Some(_), Some(_)) => Err(SqlError::invalid("exactly one statement is allowed")),
    }
}

/// Parses and analyses a definition. Runs the parser and walks the tree: call it on a thread
/// with a large stack (the SQL pool, or [`analyze_on_big_stack`]).
pub fn analyze(sql: &str, catalog: &Catalog, limits: &SqlLimits) -> Result<Analysis, SqlError> {
    let mut statement = parse_one(sql, limits)?;
    let kind = match &statement {
        Statement::Query(_) => StatementKind::Select,
        Statement::Insert(_) => StatementKind::Insert,
        Statement::Update { .. } => StatementKind::Update,
        Statement::Delete(_) => StatementKind::Delete,
        _ => {
            return Err(SqlError::invalid(
                "only SELECT, INSERT, UPDATE and DELETE statements can be registered",
            ))
        }
    };
    reject_unsupported_clauses(&statement)?;

    // Pass 1 (read only): complexity, tables and aliases, parameter types.
    let mut survey = Survey::new(catalog, limits);
    if let ControlFlow::Break(e) = Visit::visit(&statement, &mut survey) {
        return Err(e);
    }
    let subquery_depth = match kind {
        StatementKind::Select | StatementKind::Insert => survey.max_query_depth.saturating_sub(1),
        _ => survey.max_query_depth,
    };
    if subquery_depth > limits.max_subquery_depth {
        return Err(SqlError::too_complex(format!(
            "subqueries nested deeper than {}",
            limits.max_subquery_depth
        )));
    }
    if survey.joins > limits.max_joins {
        return Err(SqlError::too_complex(format!(
            "more than {} joins",
            limits.max_joins
        )));
    }
    for name in survey.table_uses.keys() {
        if !catalog.contains_key(name) {
            return Err(SqlError::invalid(format!("unknown table {name}")));
        }
    }
    match &statement {
        Statement::Insert(insert) => survey.insert_params(insert)?,
        Statement::Update {
            table, assignments, ..
        } => {
            let target = table_name_of(table).unwrap_or_default();
            for a in assignments {
                let AssignmentTarget::ColumnName(col) = &a.target else {
                    return Err(SqlError::invalid("tuple assignments are not supported"));
                };
                let col = last_lower(col);
                let record = catalog.get(&target);
                let mut spec = record
                    .and_then(|t| t.column(&col))
                    .cloned()
                    .ok_or_else(|| SqlError::invalid(format!("unknown column {col}")))?;
                spec.nullable &= record.is_some_and(|t| t.primary_key != col);
                if let Some(p) = placeholder_name(&a.value) {
                    survey.note_param(&p, Some(spec.ty))?;
                    survey.note_write(&p, &spec);
                }
            }
        }
        _ => {}
    }

    // Pass 2 (rewrite): lowercase identifiers, check columns, `:name` → `$N`.
    let mut rewrite = Rewrite {
        survey: &survey,
        catalog,
        order: Vec::new(),
        output_aliases: HashSet::new(),
        error: None,
    };
    let _ = VisitMut::visit(&mut statement, &mut rewrite);
    if let Some(e) = rewrite.error {
        return Err(e);
    }
    let params: Vec<ParamSpec> = rewrite
        .order
        .iter()
        .map(|name| {
            let reserved = RESERVED_PARAMS.contains(&name.as_str());
            let inferred = survey.param_types.get(name).copied().flatten();
            let ty = match (inferred, name.as_str()) {
                (Some(t), _) => Some(t),
                (None, "end_user_id") => Some(ColumnType::Uuid),
                (None, "external_id") => Some(ColumnType::Text),
                (None, _) => None,
            };
            ParamSpec {
                name: name.clone(),
                ty,
                reserved,
                nullable: !reserved && survey.written.get(name).copied().unwrap_or(false),
            }
        })
        .collect();

    let mut warnings = Vec::new();
    let mut order_by = Err("keyset paging needs a SELECT with ORDER BY".to_owned());
    let mut has_order_by = false;
    let mut json_labels = HashSet::new();
    if let Statement::Query(query) = &statement {
        if query.limit.is_some() || query.offset.is_some() || query.fetch.is_some() {
            return Err(SqlError::invalid(
                "a registered SELECT must not have LIMIT or OFFSET: paging is per request",
            ));
        }
        let labels = output_labels(query, catalog, &mut json_labels)?;
        let mut seen = HashSet::new();
        for l in &labels {
            if !seen.insert(l.as_str()) {
                return Err(SqlError::invalid(format!(
                    "duplicate output column name {l}: give one an alias"
                )));
            }
        }
        has_order_by = query.order_by.as_ref().is_some_and(|o| !o.exprs.is_empty());
        if has_order_by {
            order_by = resolve_order_by(query, catalog);
        } else {
            warnings.push(Warning {
                code: "order_by_missing".into(),
                message: ORDER_BY_MISSING.into(),
            });
        }
    }
    // What GlueSQL cannot run is refused now, not at the first execution.
    let nulls = vec![gluesql_core::translate::ParamLiteral::null(); params.len()];
    gluesql_core::translate::translate_with_params(&statement, &nulls)
        .map_err(|e| SqlError::invalid(format!("unsupported SQL: {e}")))?;
    let mut tables: Vec<String> = survey.table_uses.keys().cloned().collect();
    tables.sort();
    Ok(Analysis {
        statement,
        kind,
        params,
        tables,
        order_by,
        has_order_by,
        warnings,
        json_labels,
        table_uses: survey.table_uses.into_iter().collect(),
    })
}

/// [`analyze`] on a short-lived thread with a large stack, for callers on ordinary threads
/// (registration outside the pool, tests).
pub fn analyze_on_big_stack(
    sql: &str,
    catalog: &Catalog,
    limits: &SqlLimits,
) -> Result<Analysis, SqlError> {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(32 * 1024 * 1024)
            .spawn_scoped(s, || analyze(sql, catalog, limits))
            .map_err(|e| SqlError::Internal(format!("cannot start analysis thread: {e}")))?
            .join()
            .map_err(|_| SqlError::Internal("sql analysis panicked".into()))?
    })
}

fn reject_unsupported_clauses(statement: &Statement) -> Result<(), SqlError> {
    match statement {
        Statement::Insert(Insert {
            returning, on, or, ..
        }) if returning.is_some() || on.is_some() || or.is_some() => Err(SqlError::invalid(
            "INSERT with RETURNING or ON CONFLICT is not supported",
        )),
        Statement::Update {
            returning, from, ..
        } if returning.is_some() || from.is_some() => Err(SqlError::invalid(
            "UPDATE with FROM or RETURNING is not supported",
        )),
        Statement::Delete(Delete {
            returning,
            using,
            limit,
            order_by,
            ..
        }) if returning.is_some() || using.is_some() || limit.is_some() || !order_by.is_empty() => {
            Err(SqlError::invalid(
                "DELETE with USING, RETURNING, ORDER BY or LIMIT is not supported",
            ))
        }
        _ => Ok(()),
    }
}

fn lower(ident: &Ident) -> String {
    ident.value.to_lowercase()
}

fn last_lower(name: &ObjectName) -> String {
    name.0.last().map(lower).unwrap_or_default()
}

fn table_name_of(t: &TableWithJoins) -> Option<String> {
    match &t.relation {
        TableFactor::Table { name, .. } => Some(last_lower(name)),
        _ => None,
    }
}

fn placeholder_name(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Value(SqlValue::Placeholder(p)) => Some(p.clone()),
        Expr::Nested(e) => placeholder_name(e),
        _ => None,
    }
}

struct Survey<'a> {
    catalog: &'a Catalog,
    limits: &'a SqlLimits,
    query_depth: usize,
    max_query_depth: usize,
    expr_nodes: usize,
    joins: usize,
    table_uses: BTreeMap<String, usize>,
    /// alias → table name (None for a derived table's alias).
    aliases: HashMap<String, Option<String>>,
    has_derived: bool,
    /// `:name` (with the colon) → type (None: unconstrained so far).
    param_types: HashMap<String, Option<ColumnType>>,
    /// Parameter name (no colon) → whether every column it is written into is nullable.
    written: HashMap<String, bool>,
}

impl<'a> Survey<'a> {
    fn new(catalog: &'a Catalog, limits: &'a SqlLimits) -> Self {
        Survey {
            catalog,
            limits,
            query_depth: 0,
            max_query_depth: 0,
            expr_nodes: 0,
            joins: 0,
            table_uses: BTreeMap::new(),
            aliases: HashMap::new(),
            has_derived: false,
            param_types: HashMap::new(),
            written: HashMap::new(),
        }
    }

    /// A parameter stored into a column: nullable while every such column is.
    fn note_write(&mut self, placeholder: &str, column: &crate::store::rows::ColumnSpec) {
        if let Some(name) = placeholder.strip_prefix(':') {
            let nullable = self.written.entry(name.to_owned()).or_insert(true);
            *nullable &= column.nullable;
        }
    }

    fn note_param(&mut self, placeholder: &str, ty: Option<ColumnType>) -> Result<(), SqlError> {
        let Some(name) = placeholder.strip_prefix(':') else {
            return Err(SqlError::invalid(
                "use named parameters (:name); positional placeholders are not allowed",
            ));
        };
        let slot = self.param_types.entry(name.to_owned()).or_insert(None);
        match (*slot, ty) {
            (_, None) => {}
            (None, Some(t)) => *slot = Some(t),
            (Some(a), Some(b)) if a == b => {}
            // Integer and float compare fine: bind the wider one.
            (Some(ColumnType::Integer), Some(ColumnType::Float)) => *slot = Some(ColumnType::Float),
            (Some(ColumnType::Float), Some(ColumnType::Integer)) => {}
            (Some(a), Some(b)) => {
                return Err(SqlError::invalid(format!(
                    "parameter :{name} is used as both {} and {}",
                    a.name(),
                    b.name()
                )))
            }
        }
        Ok(())
    }

    /// The type of a column reference, if it resolves to exactly one known column.
    fn column_type(&self, expr: &Expr) -> Option<ColumnType> {
        match expr {
            Expr::Nested(e) => self.column_type(e),
            Expr::Identifier(id) => {
                let col = lower(id);
                let mut found = self
                    .table_uses
                    .keys()
                    .filter_map(|t| self.catalog.get(t)?.column(&col).map(|c| c.ty));
                found.next()
            }
            Expr::CompoundIdentifier(parts) if parts.len() == 2 => {
                let q = lower(&parts[0]);
                let table = match self.aliases.get(&q) {
                    Some(Some(t)) => t.clone(),
                    Some(None) => return None,
                    None => q,
                };
                self.catalog
                    .get(&table)?
                    .column(&lower(&parts[1]))
                    .map(|c| c.ty)
            }
            _ => None,
        }
    }

    fn infer_pair(&mut self, a: &Expr, b: &Expr) -> Result<(), SqlError> {
        if let Some(p) = placeholder_name(b) {
            let ty = self.column_type(a);
            self.note_param(&p, ty)?;
        }
        if let Some(p) = placeholder_name(a) {
            let ty = self.column_type(b);
            self.note_param(&p, ty)?;
        }
        Ok(())
    }

    fn insert_params(&mut self, insert: &Insert) -> Result<(), SqlError> {
        let table = last_lower(&insert.table_name);
        let record = self
            .catalog
            .get(&table)
            .ok_or_else(|| SqlError::invalid(format!("unknown table {table}")))?;
        let columns: Vec<String> = if insert.columns.is_empty() {
            record.columns.iter().map(|c| c.name.clone()).collect()
        } else {
            insert.columns.iter().map(lower).collect()
        };
        let mut specs = Vec::new();
        for c in &columns {
            let spec = record
                .column(c)
                .ok_or_else(|| SqlError::invalid(format!("unknown column {c}")))?;
            // The pk is NOT NULL whatever its declaration says.
            let mut spec = spec.clone();
            spec.nullable &= spec.name != record.primary_key;
            specs.push(spec);
        }
        if let Some(source) = &insert.source {
            if let SetExpr::Values(values) = source.body.as_ref() {
                for row in &values.rows {
                    if row.len() != columns.len() {
                        return Err(SqlError::invalid(
                            "INSERT has a different number of values and columns",
                        ));
                    }
                    for (v, spec) in row.iter().zip(&specs) {
                        if let Some(p) = placeholder_name(v) {
                            self.note_param(&p, Some(spec.ty))?;
                            self.note_write(&p, spec);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn count_joins(&mut self, body: &SetExpr, depth: usize) -> ControlFlow<SqlError> {
        if depth > self.limits.max_nesting {
            return ControlFlow::Break(SqlError::too_complex("set operations nested too deeply"));
        }
        match body {
            SetExpr::Select(select) => {
                self.joins += select.from.len().saturating_sub(1)
                    + select.from.iter().map(|t| t.joins.len()).sum::<usize>();
            }
            SetExpr::SetOperation { left, right, .. } => {
                self.count_joins(left, depth + 1)?;
                self.count_joins(right, depth + 1)?;
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

impl Visitor for Survey<'_> {
    type Break = SqlError;

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<SqlError> {
        self.query_depth += 1;
        self.max_query_depth = self.max_query_depth.max(self.query_depth);
        if self.query_depth > self.limits.max_subquery_depth + 1 {
            return ControlFlow::Break(SqlError::too_complex(format!(
                "subqueries nested deeper than {}",
                self.limits.max_subquery_depth
            )));
        }
        if query.with.is_some() {
            return ControlFlow::Break(SqlError::invalid("WITH is not supported"));
        }
        self.count_joins(&query.body, 0)?;
        if self.joins > self.limits.max_joins {
            return ControlFlow::Break(SqlError::too_complex(format!(
                "more than {} joins",
                self.limits.max_joins
            )));
        }
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<SqlError> {
        self.query_depth -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<SqlError> {
        if relation.0.len() != 1 {
            // Schema-qualified names could only reach outside the project: never allowed, and
            // the answer does not say whether such a thing exists.
            return ControlFlow::Break(SqlError::invalid(format!("unknown table {relation}")));
        }
        *self.table_uses.entry(last_lower(relation)).or_insert(0) += 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<SqlError> {
        match factor {
            TableFactor::Table { name, alias, .. } => {
                if let Some(alias) = alias {
                    self.aliases
                        .insert(lower(&alias.name), Some(last_lower(name)));
                }
            }
            TableFactor::Derived { alias, .. } => {
                self.has_derived = true;
                if let Some(alias) = alias {
                    self.aliases.insert(lower(&alias.name), None);
                }
            }
            TableFactor::NestedJoin { .. } => {}
            _ => {
                return ControlFlow::Break(SqlError::invalid(
                    "only tables, subqueries and joins may appear in FROM",
                ))
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<SqlError> {
        self.expr_nodes += 1;
        if self.expr_nodes > self.limits.max_expr_nodes {
            return ControlFlow::Break(SqlError::too_complex(format!(
                "more than {} expression nodes",
                self.limits.max_expr_nodes
            )));
        }
        let inferred = match expr {
            Expr::BinaryOp { left, right, .. } => self.infer_pair(left, right),
            Expr::InList { expr, list, .. } => {
                list.iter().try_for_each(|e| self.infer_pair(expr, e))
            }
            Expr::Between {
                expr, low, high, ..
            } => self
                .infer_pair(expr, low)
                .and_then(|()| self.infer_pair(expr, high)),
            Expr::Like { expr, pattern, .. } | Expr::ILike { expr, pattern, .. } => {
                self.infer_pair(expr, pattern)
            }
            Expr::Value(SqlValue::Placeholder(p)) => self.note_param(p, None),
            _ => Ok(()),
        };
        match inferred {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => ControlFlow::Break(e),
        }
    }
}

struct Rewrite<'a> {
    survey: &'a Survey<'a>,
    catalog: &'a Catalog,
    /// Parameter names in `$N` order.
    order: Vec<String>,
    /// `AS` names of SELECT items, which ORDER BY may reference.
    output_aliases: HashSet<String>,
    error: Option<SqlError>,
}

impl Rewrite<'_> {
    fn fail(&mut self, e: SqlError) -> ControlFlow<()> {
        self.error = Some(e);
        ControlFlow::Break(())
    }

    fn known_column(&self, col: &str) -> bool {
        self.survey
            .table_uses
            .keys()
            .any(|t| self.catalog.get(t).is_some_and(|t| t.column(col).is_some()))
    }
}

fn lower_ident(id: &mut Ident) {
    if id.quote_style.is_none() {
        id.value = id.value.to_lowercase();
    }
}

impl VisitorMut for Rewrite<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let SetExpr::Select(select) = query.body.as_mut() {
            lower_select_aliases(select, &mut self.output_aliases);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &mut ObjectName) -> ControlFlow<()> {
        relation.0.iter_mut().for_each(lower_ident);
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table {
            alias: Some(alias), ..
        }
        | TableFactor::Derived {
            alias: Some(alias), ..
        } = factor
        {
            lower_ident(&mut alias.name);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_statement(&mut self, statement: &mut Statement) -> ControlFlow<()> {
        match statement {
            Statement::Insert(insert) => insert.columns.iter_mut().for_each(lower_ident),
            Statement::Update { assignments, .. } => {
                for a in assignments {
                    if let AssignmentTarget::ColumnName(name) = &mut a.target {
                        name.0.iter_mut().for_each(lower_ident);
                    }
                }
            }
            Statement::Delete(Delete { from, .. }) => {
                let (FromTable::WithFromKeyword(tables) | FromTable::WithoutKeyword(tables)) = from;
                for t in tables {
                    if let TableFactor::Table { name, .. } = &mut t.relation {
                        name.0.iter_mut().for_each(lower_ident);
                    }
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        match expr {
            Expr::Value(SqlValue::Placeholder(p)) => {
                let Some(name) = p.strip_prefix(':').map(str::to_owned) else {
                    return self.fail(SqlError::invalid(
                        "use named parameters (:name); positional placeholders are not allowed",
                    ));
                };
                if name.is_empty()
                    || name.len() > 64
                    || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    return self.fail(SqlError::invalid(
                        "parameter names are letters, digits and underscores",
                    ));
                }
                let index = match self.order.iter().position(|n| *n == name) {
                    Some(i) => i,
                    None => {
                        self.order.push(name);
                        self.order.len() - 1
                    }
                };
                *p = format!("${}", index + 1);
            }
            Expr::Identifier(id) => {
                lower_ident(id);
                let col = id.value.clone();
                if !self.survey.has_derived
                    && !self.known_column(&col)
                    && !self.survey.aliases.contains_key(&col)
                    && !self.output_aliases.contains(&col)
                {
                    return self.fail(SqlError::invalid(format!("unknown column {col}")));
                }
            }
            Expr::CompoundIdentifier(parts) => {
                parts.iter_mut().for_each(lower_ident);
                if parts.len() != 2 {
                    return self.fail(SqlError::invalid(format!(
                        "unknown column {}",
                        parts
                            .iter()
                            .map(|p| p.value.as_str())
                            .collect::<Vec<_>>()
                            .join(".")
                    )));
                }
                let (q, col) = (parts[0].value.clone(), parts[1].value.clone());
                let table = match self.survey.aliases.get(&q) {
                    Some(Some(t)) => Some(t.clone()),
                    Some(None) => None,
                    None if self.survey.table_uses.contains_key(&q) => Some(q.clone()),
                    None => return self.fail(SqlError::invalid(format!("unknown table {q}"))),
                };
                if let Some(table) = table {
                    if self
                        .catalog
                        .get(&table)
                        .and_then(|t| t.column(&col))
                        .is_none()
                    {
                        return self.fail(SqlError::invalid(format!("unknown column {q}.{col}")));
                    }
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

fn lower_select_aliases(select: &mut Select, aliases: &mut HashSet<String>) {
    for item in &mut select.projection {
        if let SelectItem::ExprWithAlias { alias, .. } = item {
            lower_ident(alias);
            aliases.insert(alias.value.clone());
        }
    }
}

/// Output labels as GlueSQL names them, with wildcards expanded.
fn output_labels(
    query: &Query,
    catalog: &Catalog,
    json_labels: &mut HashSet<String>,
) -> Result<Vec<String>, SqlError> {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return Ok(Vec::new());
    };
    let mut from_tables: Vec<(String, Option<String>)> = Vec::new();
    for t in &select.from {
        for factor in std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)) {
            if let TableFactor::Table { name, alias, .. } = factor {
                from_tables.push((
                    last_lower(name),
                    alias.as_ref().map(|a| a.name.value.clone()),
                ));
            }
        }
    }
    let json_of = |table: &str, col: &str| {
        catalog
            .get(table)
            .and_then(|t| t.column(col))
            .is_some_and(|c| c.ty == ColumnType::Json)
    };
    let resolve_table = |q: &str| -> Option<String> {
        from_tables
            .iter()
            .find(|(t, a)| a.as_deref() == Some(q) || (a.is_none() && t == q))
            .map(|(t, _)| t.clone())
    };
    let mut labels = Vec::new();
    for item in &select.projection {
        match item {
            SelectItem::Wildcard(_) => {
                for (t, _) in &from_tables {
                    if let Some(record) = catalog.get(t) {
                        for c in &record.columns {
                            if c.ty == ColumnType::Json {
                                json_labels.insert(c.name.clone());
                            }
                            labels.push(c.name.clone());
                        }
                    }
                }
            }
            SelectItem::QualifiedWildcard(name, _) => {
                let q = last_lower(name);
                if let Some(record) = resolve_table(&q).and_then(|t| catalog.get(&t)) {
                    for c in &record.columns {
                        if c.ty == ColumnType::Json {
                            json_labels.insert(c.name.clone());
                        }
                        labels.push(c.name.clone());
                    }
                }
            }
            SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } => {
                let (label, json) = match expr {
                    Expr::Identifier(id) => (
                        id.value.clone(),
                        from_tables.iter().any(|(t, _)| json_of(t, &id.value)),
                    ),
                    Expr::CompoundIdentifier(parts) if parts.len() == 2 => (
                        parts[1].value.clone(),
                        resolve_table(&parts[0].value)
                            .is_some_and(|t| json_of(&t, &parts[1].value)),
                    ),
                    other => (other.to_string(), false),
                };
                let label = match item {
                    SelectItem::ExprWithAlias { alias, .. } => alias.value.clone(),
                    _ => label,
                };
                if json {
                    json_labels.insert(label.clone());
                }
                labels.push(label);
            }
        }
    }
    Ok(labels)
}

/// One table of the top-level FROM: what its columns are qualified with, and its name.
struct FromItem {
    qualifier: String,
    table: String,
}

/// The plain tables of the top-level SELECT's FROM (joins included); a derived table or any
/// other factor makes keyset paging unavailable, with the reason.
fn from_items(select: &Select) -> Result<Vec<FromItem>, String> {
    let mut items = Vec::new();
    let mut factors = Vec::new();
    for t in &select.from {
        factors.push(&t.relation);
        factors.extend(t.joins.iter().map(|j| &j.relation));
    }
    for factor in factors {
        let TableFactor::Table { name, alias, .. } = factor else {
            return Err("keyset paging needs FROM to name plain tables (no subquery)".into());
        };
        let table = last_lower(name);
        items.push(FromItem {
            qualifier: alias
                .as_ref()
                .map_or_else(|| table.clone(), |a| lower(&a.name)),
            table,
        });
    }
    Ok(items)
}

/// The ORDER BY of a keyset-pageable SELECT, resolved to columns of its FROM tables. The
/// tuple must identify a result row: it ends in a unique key, and it holds a unique key of
/// every table in FROM (a join repeats a table's row once per matching row of the other, so
/// one table's key alone is not unique in the result). A unique key is the primary key or a
/// NOT NULL column with a UNIQUE index (NULLs are not unique-checked, so two rows may share
/// one).
fn resolve_order_by(query: &Query, catalog: &Catalog) -> Result<Vec<OrderColumn>, String> {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return Err("keyset paging needs a plain SELECT (no UNION)".into());
    };
    if select.distinct.is_some()
        || select.having.is_some()
        || !matches!(&select.group_by, GroupByExpr::Expressions(e, _) if e.is_empty())
    {
        return Err("keyset paging is not available with DISTINCT, GROUP BY or HAVING".into());
    }
    let Some(order_by) = &query.order_by else {
        return Err("keyset paging needs ORDER BY".into());
    };
    let items = from_items(select)?;
    let mut out = Vec::new();
    let mut keyed = vec![false; items.len()];
    for item in &order_by.exprs {
        let (at, column) = match &item.expr {
            Expr::Identifier(id) => {
                let owners: Vec<usize> = (0..items.len())
                    .filter(|i| {
                        catalog
                            .get(&items[*i].table)
                            .is_some_and(|r| r.column(&id.value).is_some())
                    })
                    .collect();
                match owners.as_slice() {
                    [one] => (*one, id.value.clone()),
                    _ => {
                        return Err(format!(
                            "ORDER BY {} must name exactly one table's column for keyset paging",
                            id.value
                        ))
                    }
                }
            }
            Expr::CompoundIdentifier(parts) if parts.len() == 2 => {
                let at = items
                    .iter()
                    .position(|i| i.qualifier == parts[0].value)
                    .ok_or_else(|| {
                        format!(
                            "keyset paging needs ORDER BY columns of the FROM tables ({} is not one)",
                            parts[0].value
                        )
                    })?;
                (at, parts[1].value.clone())
            }
            _ => return Err("keyset paging needs ORDER BY plain columns".into()),
        };
        let table = items[at].table.clone();
        let record = catalog
            .get(&table)
            .ok_or_else(|| format!("unknown table {table}"))?;
        let spec = record
            .column(&column)
            .ok_or_else(|| format!("unknown column {column}"))?;
        let index = if record.primary_key == column {
            Some("__pk".to_owned())
        } else {
            // A building index is incomplete: no fast path through it yet.
            record
                .ready_indexes()
                .find(|i| i.column == column)
                .map(|i| i.name.clone())
        };
        let unique = record.primary_key == column
            || (!spec.nullable
                && record
                    .ready_indexes()
                    .any(|i| i.column == column && i.unique));
        keyed[at] |= unique;
        out.push(OrderColumn {
            table,
            column,
            ty: spec.ty,
            descending: item.asc == Some(false),
            unique,
            // A joined table's columns are NULL in rows an outer join made up.
            nullable: items.len() > 1 || (spec.nullable && record.primary_key != spec.name),
            index,
        });
    }
    if !out.last().is_some_and(|last| last.unique) {
        return Err("keyset paging needs ORDER BY to end in a unique key (the primary key or a NOT NULL UNIQUE column)".into());
    }
    if let Some(i) = keyed.iter().position(|k| !k) {
        return Err(format!(
            "keyset paging over a join needs ORDER BY to hold a unique key of every table: add {}'s primary key",
            items[i].qualifier
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn catalog() -> Catalog {
        Catalog::new()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn validator_never_panics_on_arbitrary_input(s in "\\PC{0,300}") {
            let _ = analyze_on_big_stack(&s, &catalog(), &SqlLimits::default());
        }

        #[test]
        fn validator_never_panics_on_deep_nesting(depth in 0usize..20_000, op in prop::sample::select(vec!["(", "((", "-(", "NOT ("])) {
            let sql = format!("SELECT {}1{} FROM t", op.repeat(depth), ")".repeat(depth));
            let r = analyze_on_big_stack(&sql, &catalog(), &SqlLimits::default());
            if depth > 64 {
                prop_assert!(r.is_err());
            }
        }

        #[test]
        fn validator_never_panics_on_sql_like_input(parts in prop::collection::vec(prop::sample::select(vec![
            "SELECT", "*", "FROM", "t", "WHERE", "(", ")", ":a", "=", "AND", "OR", "1", "'x'", ",", "JOIN", "ON", "IN", "ORDER BY", "id", ";", "--", "::", "$1",
        ]), 0..200)) {
            let _ = analyze_on_big_stack(&parts.join(" "), &catalog(), &SqlLimits::default());
        }
    }
}
