//! The portal's persistence port (SPEC §10): admin users and the audit log. Every store
//! implements it (it is a supertrait of [`super::Store`]); both are small and read only by
//! admin paths, never by the tenant hot paths.

use async_trait::async_trait;
use uuid::Uuid;

use super::StoreError;
use crate::model::{AdminUser, AuditEntry, Inserted};

/// Most audit entries one `list_audit` call returns.
pub const MAX_AUDIT_PAGE: usize = 200;

#[async_trait]
pub trait PortalStore: Send + Sync + 'static {
    /// Insert if no admin user has this (normalised) email: what makes emails unique.
    async fn insert_admin_user(&self, user: &AdminUser) -> Result<Inserted, StoreError>;
    async fn get_admin_user(&self, email: &str) -> Result<Option<AdminUser>, StoreError>;
    /// Every admin user, in no particular order (there are few).
    async fn list_admin_users(&self) -> Result<Vec<AdminUser>, StoreError>;
    /// Writes `user` (whose `version` is already bumped) if the stored version is still
    /// `expected_version`; false when another writer got there first or the user is gone.
    async fn cas_admin_user(
        &self,
        user: &AdminUser,
        expected_version: u64,
    ) -> Result<bool, StoreError>;
    async fn delete_admin_user(&self, email: &str) -> Result<(), StoreError>;

    /// Appends an entry; it disappears by itself after `AUDIT_RETENTION_S`.
    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;
    /// Newest first: up to `limit` (at most [`MAX_AUDIT_PAGE`]) entries whose id is below
    /// `before` (all when None).
    async fn list_audit(
        &self,
        before: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError>;
}
