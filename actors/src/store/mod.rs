//! The persistence port. Shaped for what the actors need and for what CQL can promise:
//! single-partition reads and writes, compare-and-set on one row, TTLs, no multi-key
//! transactions and no scans on request paths. Tenant `list_*` calls serve admin pages and
//! the tenant directory's loads; `list_user_sessions` reads one user's bounded partition
//! (the session cap at login, session lists, revoke-all).

pub mod backfill_conformance;
pub mod conformance;
pub mod embedded;
pub mod inline;
pub mod members;
pub mod portal;
pub mod portal_conformance;
pub mod rows;
pub mod rows_conformance;
pub mod timed;

use async_trait::async_trait;
use uuid::Uuid;

use crate::model::{AdminToken, EndUser, Inserted, Org, Project, PublicClient, SecretKey, Session};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store did not answer in time: the outcome of a write is unknown.
    #[error("store timed out")]
    Timeout,
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A record could not be decoded: a bug or a foreign on-disk format, never a client error.
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

/// Every write returns only after it is durable (an fsync'd commit, or a quorum write).
/// The portal's records (admin users, the audit log) are part of every store.
#[async_trait]
pub trait Store: portal::PortalStore + Send + Sync + 'static {
    /// A short name for readiness reports and metrics (`embedded`, `scylla`).
    fn kind(&self) -> &'static str;
    /// Cheap round trip proving the store answers (readiness).
    async fn ping(&self) -> Result<(), StoreError>;

    // Tenant configuration: small, loaded whole by the tenant directory at start.
    async fn insert_org(&self, org: &Org) -> Result<Inserted, StoreError>;
    async fn list_orgs(&self) -> Result<Vec<Org>, StoreError>;
    /// Unique by slug.
    async fn insert_project(&self, project: &Project) -> Result<Inserted, StoreError>;
    /// Overwrites an existing project (settings, maintenance); written only by the tenant owner.
    async fn update_project(&self, project: &Project) -> Result<(), StoreError>;
    async fn list_projects(&self) -> Result<Vec<Project>, StoreError>;
    async fn put_client(&self, client: &PublicClient) -> Result<(), StoreError>;
    async fn list_clients(&self, project_id: Uuid) -> Result<Vec<PublicClient>, StoreError>;
    async fn put_secret_key(&self, key: &SecretKey) -> Result<(), StoreError>;
    async fn list_secret_keys(&self, project_id: Uuid) -> Result<Vec<SecretKey>, StoreError>;
    async fn put_admin_token(&self, token: &AdminToken) -> Result<(), StoreError>;
    async fn list_admin_tokens(&self) -> Result<Vec<AdminToken>, StoreError>;
    /// Node-wide switches (e.g. `maintenance`).
    async fn get_flag(&self, name: &str) -> Result<Option<bool>, StoreError>;
    async fn set_flag(&self, name: &str, value: bool) -> Result<(), StoreError>;
    /// A value replaced on every tenant-configuration change, so that nodes sharing a store
    /// notice changes by polling one row instead of re-reading every tenant.
    async fn get_config_epoch(&self) -> Result<Option<Uuid>, StoreError>;
    async fn set_config_epoch(&self, epoch: Uuid) -> Result<(), StoreError>;

    // End users: one partition per (project, external_id).
    /// Insert if no user has this (project, external_id): the uniqueness guarantee of signup.
    async fn insert_end_user(&self, user: &EndUser) -> Result<Inserted, StoreError>;
    async fn get_end_user(
        &self,
        project_id: Uuid,
        external_id: &str,
    ) -> Result<Option<EndUser>, StoreError>;
    /// Writes `user` (whose `version` is already bumped) if the stored version is still
    /// `expected_version`; false when another writer got there first or the user is gone.
    async fn cas_end_user(&self, user: &EndUser, expected_version: u64)
        -> Result<bool, StoreError>;
    async fn delete_end_user(&self, project_id: Uuid, external_id: &str) -> Result<(), StoreError>;

    // Sessions: one partition per session id, plus a bounded per-user index.
    /// Inserts a new session and indexes it under its user. Expired sessions disappear by
    /// themselves after `Session::store_expires_at`.
    async fn insert_session(&self, session: &Session) -> Result<(), StoreError>;
    async fn get_session(&self, id: Uuid) -> Result<Option<Session>, StoreError>;
    /// Writes `session` if the stored version is still `expected_version`.
    async fn cas_session(
        &self,
        session: &Session,
        expected_version: u64,
    ) -> Result<bool, StoreError>;
    /// The user's sessions that have not expired (revoked ones included), oldest first.
    async fn list_user_sessions(
        &self,
        project_id: Uuid,
        end_user_id: Uuid,
    ) -> Result<Vec<Session>, StoreError>;
}
