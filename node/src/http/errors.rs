//! Every error body the API can answer, in the three shapes of SPEC §6, and the one mapping
//! from domain errors to them. Nothing else in the node writes an error body.

use std::time::Duration;

use bytes::Bytes;
use commonrock_actors::sql::SqlError;
use commonrock_actors::DomainError;
use http::StatusCode;
use serde_json::{json, Value};

use super::issue::Issue;

/// Coded errors: `{"detail":{"code":…,"message":…}}`. The table is `docs/error-codes.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    InvalidCredentials,
    TotpRequired,
    InvalidTotp,
    ProjectNotFound,
    InvalidCursor,
    InvalidSql,
    SqlTooComplex,
    MissingApiKey,
    InvalidApiKey,
    RestrictionsRequired,
    OriginRequired,
    OriginDenied,
    IpDenied,
    InvalidPublicScopes,
    SqlTemplateNotFound,
    MaintenanceMode,
    CsrfFailed,
    RateLimited,
    ClientScopeDenied,
    ServiceUnavailable,
    NotFound,
    MethodNotAllowed,
    PayloadTooLarge,
    UriTooLong,
    HeaderFieldsTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
    AlreadyExists,
    Unauthorized,
    SqlQuotaExceeded,
    InternalError,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidCredentials => "invalid_credentials",
            Code::TotpRequired => "totp_required",
            Code::InvalidTotp => "invalid_totp",
            Code::ProjectNotFound => "project_not_found",
            Code::InvalidCursor => "invalid_cursor",
            Code::InvalidSql => "invalid_sql",
            Code::SqlTooComplex => "sql_too_complex",
            Code::MissingApiKey => "missing_api_key",
            Code::InvalidApiKey => "invalid_api_key",
            Code::RestrictionsRequired => "restrictions_required",
            Code::OriginRequired => "origin_required",
            Code::OriginDenied => "origin_denied",
            Code::IpDenied => "ip_denied",
            Code::InvalidPublicScopes => "invalid_public_scopes",
            Code::SqlTemplateNotFound => "sql_template_not_found",
            Code::MaintenanceMode => "maintenance_mode",
            Code::CsrfFailed => "csrf_failed",
            Code::RateLimited => "rate_limited",
            Code::ClientScopeDenied => "client_scope_denied",
            Code::ServiceUnavailable => "service_unavailable",
            Code::NotFound => "not_found",
            Code::MethodNotAllowed => "method_not_allowed",
            Code::PayloadTooLarge => "payload_too_large",
            Code::UriTooLong => "uri_too_long",
            Code::HeaderFieldsTooLarge => "request_header_fields_too_large",
            Code::RequestTimeout => "request_timeout",
            Code::UnsupportedMediaType => "unsupported_media_type",
            Code::AlreadyExists => "already_exists",
            Code::Unauthorized => "unauthorized",
            Code::SqlQuotaExceeded => "sql_quota_exceeded",
            Code::InternalError => "internal_error",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Code::InvalidCredentials
            | Code::InvalidTotp
            | Code::MissingApiKey
            | Code::InvalidApiKey
            | Code::Unauthorized => StatusCode::UNAUTHORIZED,
            Code::TotpRequired
            | Code::RestrictionsRequired
            | Code::OriginRequired
            | Code::OriginDenied
            | Code::IpDenied
            | Code::CsrfFailed
            | Code::ClientScopeDenied
            | Code::SqlQuotaExceeded => StatusCode::FORBIDDEN,
            Code::ProjectNotFound | Code::SqlTemplateNotFound | Code::NotFound => {
                StatusCode::NOT_FOUND
            }
            Code::InvalidCursor
            | Code::InvalidSql
            | Code::SqlTooComplex
            | Code::InvalidPublicScopes => StatusCode::BAD_REQUEST,
            Code::MaintenanceMode | Code::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Code::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Code::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Code::UriTooLong => StatusCode::URI_TOO_LONG,
            Code::HeaderFieldsTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Code::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Code::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Code::AlreadyExists => StatusCode::CONFLICT,
            Code::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The fixed message of each code (exact where the seed gives one).
    pub fn message(self) -> &'static str {
        match self {
            Code::InvalidCredentials => "Invalid credentials",
            Code::TotpRequired => "TOTP code required",
            Code::InvalidTotp => "Invalid TOTP code",
            Code::ProjectNotFound => "Project not found",
            Code::InvalidCursor => "Invalid cursor",
            Code::InvalidSql => "Invalid SQL",
            Code::SqlTooComplex => "SQL is too complex",
            Code::MissingApiKey => "API key required",
            Code::InvalidApiKey => "Invalid API key",
            Code::RestrictionsRequired => "API key has no IP or origin restriction",
            Code::OriginRequired => "Origin header required",
            Code::OriginDenied => "Origin not allowed",
            Code::IpDenied => "IP address not allowed",
            Code::InvalidPublicScopes => "Invalid public scopes",
            Code::SqlTemplateNotFound => "SQL query definition not found",
            Code::MaintenanceMode => "Service under maintenance",
            Code::CsrfFailed => "CSRF verification failed",
            Code::RateLimited => "Rate limit exceeded",
            Code::ClientScopeDenied => "Operation not allowed for this client",
            Code::ServiceUnavailable => "Service temporarily unavailable",
            Code::NotFound => "Not found",
            Code::MethodNotAllowed => "Method not allowed",
            Code::PayloadTooLarge => "Payload too large",
            Code::UriTooLong => "URI too long",
            Code::HeaderFieldsTooLarge => "Request header fields too large",
            Code::RequestTimeout => "Request body not received in time",
            Code::UnsupportedMediaType => "Content-Type must be application/json",
            Code::AlreadyExists => "Already exists",
            Code::Unauthorized => "Unauthorized",
            Code::SqlQuotaExceeded => "SQL quota exceeded",
            Code::InternalError => "Internal server error",
        }
    }

    pub const ALL: [Code; 31] = [
        Code::InvalidCredentials,
        Code::TotpRequired,
        Code::InvalidTotp,
        Code::ProjectNotFound,
        Code::InvalidCursor,
        Code::InvalidSql,
        Code::SqlTooComplex,
        Code::MissingApiKey,
        Code::InvalidApiKey,
        Code::RestrictionsRequired,
        Code::OriginRequired,
        Code::OriginDenied,
        Code::IpDenied,
        Code::InvalidPublicScopes,
        Code::SqlTemplateNotFound,
        Code::MaintenanceMode,
        Code::CsrfFailed,
        Code::RateLimited,
        Code::ClientScopeDenied,
        Code::ServiceUnavailable,
        Code::NotFound,
        Code::MethodNotAllowed,
        Code::PayloadTooLarge,
        Code::UriTooLong,
        Code::HeaderFieldsTooLarge,
        Code::RequestTimeout,
        Code::UnsupportedMediaType,
        Code::AlreadyExists,
        Code::Unauthorized,
        Code::SqlQuotaExceeded,
        Code::InternalError,
    ];
}

/// An error answer: status, body, and the headers some errors carry.
#[derive(Clone, Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: Value,
    pub retry_after: Option<u64>,
    /// 401 on a Bearer endpoint: `WWW-Authenticate: Bearer`.
    pub bearer_challenge: bool,
    /// 405: the methods the route answers, for the `Allow` header (RFC 9110 §15.5.6).
    pub allow: Option<String>,
}

impl ApiError {
    pub fn code(code: Code) -> Self {
        let retry_after = match code {
            Code::RateLimited | Code::ServiceUnavailable => Some(1),
            Code::MaintenanceMode => Some(30),
            _ => None,
        };
        ApiError {
            status: code.status(),
            body: json!({"detail": {"code": code.as_str(), "message": code.message()}}),
            retry_after,
            bearer_challenge: false,
            allow: None,
        }
    }

    /// A 405 for a route that answers `allowed`.
    pub fn method_not_allowed(allowed: &[http::Method]) -> Self {
        let list: Vec<&str> = allowed.iter().map(http::Method::as_str).collect();
        ApiError {
            allow: Some(list.join(", ")),
            ..ApiError::code(Code::MethodNotAllowed)
        }
    }

    pub fn retry_after(mut self, d: Duration) -> Self {
        self.retry_after = Some(d.as_secs().max(1));
        self
    }

    /// The seed's plain shape: `{"detail":"…"}`.
    pub fn plain(status: StatusCode, detail: &'static str) -> Self {
        ApiError {
            status,
            body: json!({ "detail": detail }),
            retry_after: None,
            bearer_challenge: false,
            allow: None,
        }
    }

    pub fn invalid_session() -> Self {
        let mut e = Self::plain(StatusCode::UNAUTHORIZED, "Invalid session");
        e.bearer_challenge = true;
        e
    }

    pub fn validation(issues: Vec<Issue>) -> Self {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: json!({ "detail": issues }),
            retry_after: None,
            bearer_challenge: false,
            allow: None,
        }
    }

    /// A coded error whose message is the code's fixed sentence followed by `: ` and `detail`
    /// (a reason written for the caller, never engine internals).
    pub fn code_with_reason(code: Code, detail: &str) -> Self {
        let mut e = ApiError::code(code);
        let detail = detail.trim();
        if !detail.is_empty() {
            e.body = json!({"detail": {
                "code": code.as_str(),
                "message": format!("{}: {detail}", code.message()),
            }});
        }
        e
    }

    pub fn body_bytes(&self) -> Bytes {
        Bytes::from(self.body.to_string())
    }
}

impl From<Code> for ApiError {
    fn from(code: Code) -> Self {
        ApiError::code(code)
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::InvalidCredentials => {
                ApiError::plain(StatusCode::UNAUTHORIZED, "Invalid credentials")
            }
            DomainError::TotpRequired => ApiError::code(Code::TotpRequired),
            DomainError::InvalidTotp => ApiError::code(Code::InvalidTotp),
            DomainError::ExternalIdTaken => {
                ApiError::plain(StatusCode::CONFLICT, "External ID already registered")
            }
            DomainError::InvalidRefreshToken => {
                ApiError::plain(StatusCode::UNAUTHORIZED, "Invalid refresh token")
            }
            DomainError::InvalidSession => ApiError::invalid_session(),
            DomainError::RateLimited { retry_after, .. } => {
                ApiError::code(Code::RateLimited).retry_after(retry_after)
            }
            DomainError::Unavailable {
                reason,
                retry_after,
            } => {
                tracing::warn!(reason, "answering 503");
                ApiError::code(Code::ServiceUnavailable).retry_after(retry_after)
            }
            DomainError::Maintenance => ApiError::code(Code::MaintenanceMode),
            DomainError::NotFound("project") => ApiError::code(Code::ProjectNotFound),
            DomainError::NotFound(_) => ApiError::code(Code::NotFound),
            DomainError::AlreadyExists(_) => ApiError::code(Code::AlreadyExists),
            DomainError::InvalidPublicScopes => ApiError::code(Code::InvalidPublicScopes),
            DomainError::InvalidField { field, message } => {
                ApiError::validation(vec![Issue::value_error(field, message)])
            }
            DomainError::Internal(detail) => {
                // The detail goes to the log only: a response never carries internals.
                tracing::error!(error = %detail, "internal error");
                ApiError::code(Code::InternalError)
            }
        }
    }
}

/// The simple DB's errors (SPEC §5, §6). The engine's messages name only the caller's own
/// tables, columns and parameters, so invalid_sql / sql_too_complex / invalid_cursor /
/// already_exists / sql_quota_exceeded carry them after the fixed sentence; timeouts, store
/// trouble and bugs answer with the fixed sentence only and the detail goes to the log.
impl From<SqlError> for ApiError {
    fn from(e: SqlError) -> Self {
        match e {
            SqlError::InvalidSql { message } => {
                ApiError::code_with_reason(Code::InvalidSql, &message)
            }
            SqlError::TooComplex { message } => {
                ApiError::code_with_reason(Code::SqlTooComplex, &message)
            }
            SqlError::TemplateNotFound => ApiError::code(Code::SqlTemplateNotFound),
            SqlError::NotPublic => ApiError::code(Code::ClientScopeDenied),
            SqlError::InvalidCursor { message } => {
                ApiError::code_with_reason(Code::InvalidCursor, &message)
            }
            SqlError::ParamErrors(errors) => ApiError::validation(
                errors
                    .into_iter()
                    .map(|p| Issue::param(&p.name, p.msg, &p.kind))
                    .collect(),
            ),
            SqlError::Conflict { message } => {
                ApiError::code_with_reason(Code::AlreadyExists, &message)
            }
            SqlError::Quota { message } => {
                ApiError::code_with_reason(Code::SqlQuotaExceeded, &message)
            }
            SqlError::Timeout => {
                tracing::warn!(reason = "sql statement timed out", "answering 503");
                ApiError::code(Code::ServiceUnavailable)
            }
            SqlError::Unavailable(reason) => {
                tracing::warn!(reason, "answering 503");
                ApiError::code(Code::ServiceUnavailable)
            }
            SqlError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error in the sql engine");
                ApiError::code(Code::InternalError)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_distinct_name_and_the_seed_messages() {
        let mut names: Vec<_> = Code::ALL.iter().map(|c| c.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Code::ALL.len());
        assert_eq!(Code::InvalidApiKey.message(), "Invalid API key");
        assert_eq!(
            Code::ClientScopeDenied.message(),
            "Operation not allowed for this client"
        );
        assert_eq!(Code::RateLimited.message(), "Rate limit exceeded");
        assert_eq!(Code::ProjectNotFound.message(), "Project not found");
    }

    #[test]
    fn sql_errors_map_to_their_codes_without_internals() {
        use commonrock_actors::sql::ParamError;
        let e = ApiError::from(SqlError::invalid("exactly one statement is allowed"));
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            e.body,
            json!({"detail":{"code":"invalid_sql","message":"Invalid SQL: exactly one statement is allowed"}})
        );
        let e = ApiError::from(SqlError::TemplateNotFound);
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        assert_eq!(
            e.body,
            json!({"detail":{"code":"sql_template_not_found","message":"SQL query definition not found"}})
        );
        let e = ApiError::from(SqlError::ParamErrors(vec![ParamError::new(
            "author_id",
            "field required",
            "value_error.missing",
        )]));
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            e.body,
            json!({"detail":[{"loc":["body","params","author_id"],"msg":"field required","type":"value_error.missing"}]})
        );
        let e = ApiError::from(SqlError::Quota {
            message: "too many rows".into(),
        });
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        assert_eq!(e.body["detail"]["code"], "sql_quota_exceeded");
        assert_eq!(
            ApiError::from(SqlError::Conflict {
                message: "x".into()
            })
            .status,
            StatusCode::CONFLICT
        );
        for e in [
            SqlError::Timeout,
            SqlError::Unavailable("store node 3 down".into()),
        ] {
            let e = ApiError::from(e);
            assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(e.retry_after, Some(1));
            assert_eq!(
                e.body,
                json!({"detail":{"code":"service_unavailable","message":"Service temporarily unavailable"}})
            );
        }
        let e = ApiError::from(SqlError::Internal("gluesql panicked at foo.rs".into()));
        assert_eq!(
            e.body,
            json!({"detail":{"code":"internal_error","message":"Internal server error"}})
        );
    }

    #[test]
    fn rate_limited_carries_retry_after() {
        let e = ApiError::from(DomainError::RateLimited {
            limit: "x",
            retry_after: Duration::from_secs(7),
        });
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(e.retry_after, Some(7));
        assert_eq!(
            e.body,
            json!({"detail":{"code":"rate_limited","message":"Rate limit exceeded"}})
        );
    }
}
