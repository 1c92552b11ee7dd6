//! The engine's one error type. The node maps each variant to the seed's exact body and
//! status in one place (`node/src/http/errors.rs`).

use std::time::Duration;

use crate::crypto::password::PoolError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum DomainError {
    /// End-user login failed (wrong password, unknown or disabled user).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// An admin user with TOTP logged in without a code.
    #[error("totp code required")]
    TotpRequired,
    /// A wrong, expired or already used TOTP or recovery code.
    #[error("invalid totp code")]
    InvalidTotp,
    #[error("external id already registered")]
    ExternalIdTaken,
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    /// A missing, malformed, expired or revoked access token on a Bearer endpoint.
    #[error("invalid session")]
    InvalidSession,
    #[error("rate limited by {limit}")]
    RateLimited {
        limit: &'static str,
        retry_after: Duration,
    },
    /// Store timeout, crashed shard, full Argon2 queue, a key owned by an unreachable node.
    #[error("service unavailable: {reason}")]
    Unavailable {
        reason: &'static str,
        retry_after: Duration,
    },
    #[error("project maintenance")]
    Maintenance,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0} already exists")]
    AlreadyExists(&'static str),
    #[error("invalid public scopes")]
    InvalidPublicScopes,
    /// An admin request that is well-formed JSON but semantically wrong (bad CIDR, slug, ...).
    #[error("invalid field {field}: {message}")]
    InvalidField {
        field: &'static str,
        message: String,
    },
    /// A bug or an unexpected store state; logged with detail, answered as a generic 500.
    #[error("internal error: {0}")]
    Internal(String),
}

impl DomainError {
    pub fn unavailable(reason: &'static str) -> Self {
        DomainError::Unavailable {
            reason,
            retry_after: Duration::from_secs(1),
        }
    }
}

impl From<StoreError> for DomainError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Timeout => DomainError::unavailable("store timeout"),
            StoreError::Unavailable(_) => DomainError::unavailable("store unavailable"),
            StoreError::Corrupt(detail) => DomainError::Internal(detail),
        }
    }
}

impl From<PoolError> for DomainError {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::Busy => DomainError::unavailable("password pool full"),
            PoolError::Stopped => DomainError::unavailable("password pool stopped"),
            PoolError::Hash => DomainError::Internal("password hashing failed".into()),
        }
    }
}
