//! The SQL engine's error type: one variant per API error code, so the node maps it in one
//! place. Messages are written for the project's developer: they name only the caller's own
//! tables, columns and parameters, never engine internals or another project's objects.

use crate::store::StoreError;

/// One problem with one parameter, in pydantic v1's vocabulary (SPEC §6): answered as a 422
/// entry `{"loc":["body","params",name],"msg":msg,"type":type}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamError {
    pub name: String,
    pub msg: String,
    pub kind: String,
}

impl ParamError {
    pub fn new(name: &str, msg: &str, kind: &str) -> Self {
        ParamError {
            name: name.to_owned(),
            msg: msg.to_owned(),
            kind: kind.to_owned(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SqlError {
    /// 400 `invalid_sql`.
    #[error("invalid sql: {message}")]
    InvalidSql { message: String },
    /// 400 `sql_too_complex`.
    #[error("sql too complex: {message}")]
    TooComplex { message: String },
    /// 404 `sql_template_not_found`.
    #[error("query definition not found")]
    TemplateNotFound,
    /// A public client asked for a definition not registered `public` (403
    /// `client_scope_denied`).
    #[error("query definition is not public")]
    NotPublic,
    /// 400 `invalid_cursor`.
    #[error("invalid cursor: {message}")]
    InvalidCursor { message: String },
    /// 422 with one entry per parameter.
    #[error("invalid parameters")]
    ParamErrors(Vec<ParamError>),
    /// The statement ran past its deadline (503 `service_unavailable` with `Retry-After`, or a
    /// 400 if the lead prefers to blame the statement; see docs/sql.md).
    #[error("statement timed out")]
    Timeout,
    /// A project quota (tables, definitions, rows) or a per-statement cap (rows read, bytes).
    #[error("quota exceeded: {message}")]
    Quota { message: String },
    /// A primary key or UNIQUE value is taken, or a table / definition name exists (409
    /// `already_exists`).
    #[error("conflict: {message}")]
    Conflict { message: String },
    /// Store down or timed out, SQL pool full (503 `service_unavailable`).
    #[error("sql engine unavailable: {0}")]
    Unavailable(String),
    /// A bug; logged with detail, answered as a generic 500.
    #[error("internal error: {0}")]
    Internal(String),
}

impl SqlError {
    pub fn invalid(message: impl Into<String>) -> Self {
        SqlError::InvalidSql {
            message: message.into(),
        }
    }

    pub fn too_complex(message: impl Into<String>) -> Self {
        SqlError::TooComplex {
            message: message.into(),
        }
    }

    pub fn cursor(message: impl Into<String>) -> Self {
        SqlError::InvalidCursor {
            message: message.into(),
        }
    }

    /// The API error code of this error (SPEC §6 table).
    pub fn code(&self) -> &'static str {
        match self {
            SqlError::InvalidSql { .. } => "invalid_sql",
            SqlError::TooComplex { .. } => "sql_too_complex",
            SqlError::TemplateNotFound => "sql_template_not_found",
            SqlError::NotPublic => "client_scope_denied",
            SqlError::InvalidCursor { .. } => "invalid_cursor",
            SqlError::ParamErrors(_) => "validation_error",
            SqlError::Timeout | SqlError::Unavailable(_) => "service_unavailable",
            SqlError::Quota { .. } => "sql_quota_exceeded",
            SqlError::Conflict { .. } => "already_exists",
            SqlError::Internal(_) => "internal_error",
        }
    }
}

impl From<StoreError> for SqlError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Timeout => SqlError::Unavailable("store timed out".into()),
            StoreError::Unavailable(m) => SqlError::Unavailable(m),
            StoreError::Corrupt(m) => SqlError::Internal(format!("corrupt record: {m}")),
        }
    }
}
