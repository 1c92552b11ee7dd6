//! A decorator that gives every store call a deadline and a latency sample. A timed-out
//! write is an unknown outcome: it surfaces as `StoreError::Timeout` (503), never success.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use uuid::Uuid;

use super::portal::PortalStore;
use super::{Store, StoreError};
use crate::metrics::EngineMetrics;
use crate::model::{
    AdminToken, AdminUser, AuditEntry, EndUser, Inserted, Org, Project, PublicClient, SecretKey,
    Session,
};

pub struct TimedStore {
    inner: Arc<dyn Store>,
    timeout: Duration,
    metrics: EngineMetrics,
}

impl TimedStore {
    pub fn new(inner: Arc<dyn Store>, timeout: Duration, metrics: EngineMetrics) -> Self {
        Self {
            inner,
            timeout,
            metrics,
        }
    }

    async fn timed<T>(
        &self,
        op: &'static str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let out = match tokio::time::timeout(self.timeout, call).await {
            Ok(out) => out,
            Err(_) => Err(StoreError::Timeout),
        };
        self.metrics
            .store_seconds
            .with_label_values(&[op])
            .observe(started.elapsed().as_secs_f64());
        if let Err(e) = &out {
            let kind = match e {
                StoreError::Timeout => "timeout",
                StoreError::Unavailable(_) => "unavailable",
                StoreError::Corrupt(_) => "corrupt",
            };
            self.metrics
                .store_errors
                .with_label_values(&[op, kind])
                .inc();
            tracing::warn!(op, error = %e, "store call failed");
        }
        out
    }
}

#[async_trait]
impl Store for TimedStore {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.timed("ping", self.inner.ping()).await
    }
    async fn insert_org(&self, org: &Org) -> Result<Inserted, StoreError> {
        self.timed("insert_org", self.inner.insert_org(org)).await
    }
    async fn list_orgs(&self) -> Result<Vec<Org>, StoreError> {
        self.timed("list_orgs", self.inner.list_orgs()).await
    }
    async fn insert_project(&self, p: &Project) -> Result<Inserted, StoreError> {
        self.timed("insert_project", self.inner.insert_project(p))
            .await
    }
    async fn update_project(&self, p: &Project) -> Result<(), StoreError> {
        self.timed("update_project", self.inner.update_project(p))
            .await
    }
    async fn list_projects(&self) -> Result<Vec<Project>, StoreError> {
        self.timed("list_projects", self.inner.list_projects())
            .await
    }
    async fn put_client(&self, c: &PublicClient) -> Result<(), StoreError> {
        self.timed("put_client", self.inner.put_client(c)).await
    }
    async fn list_clients(&self, project_id: Uuid) -> Result<Vec<PublicClient>, StoreError> {
        self.timed("list_clients", self.inner.list_clients(project_id))
            .await
    }
    async fn put_secret_key(&self, k: &SecretKey) -> Result<(), StoreError> {
        self.timed("put_secret_key", self.inner.put_secret_key(k))
            .await
    }
    async fn list_secret_keys(&self, project_id: Uuid) -> Result<Vec<SecretKey>, StoreError> {
        self.timed("list_secret_keys", self.inner.list_secret_keys(project_id))
            .await
    }
    async fn put_admin_token(&self, t: &AdminToken) -> Result<(), StoreError> {
        self.timed("put_admin_token", self.inner.put_admin_token(t))
            .await
    }
    async fn list_admin_tokens(&self) -> Result<Vec<AdminToken>, StoreError> {
        self.timed("list_admin_tokens", self.inner.list_admin_tokens())
            .await
    }
    async fn get_flag(&self, name: &str) -> Result<Option<bool>, StoreError> {
        self.timed("get_flag", self.inner.get_flag(name)).await
    }
    async fn set_flag(&self, name: &str, value: bool) -> Result<(), StoreError> {
        self.timed("set_flag", self.inner.set_flag(name, value))
            .await
    }
    async fn get_config_epoch(&self) -> Result<Option<Uuid>, StoreError> {
        self.timed("get_config_epoch", self.inner.get_config_epoch())
            .await
    }
    async fn set_config_epoch(&self, epoch: Uuid) -> Result<(), StoreError> {
        self.timed("set_config_epoch", self.inner.set_config_epoch(epoch))
            .await
    }
    async fn insert_end_user(&self, u: &EndUser) -> Result<Inserted, StoreError> {
        self.timed("insert_end_user", self.inner.insert_end_user(u))
            .await
    }
    async fn get_end_user(
        &self,
        project_id: Uuid,
        external_id: &str,
    ) -> Result<Option<EndUser>, StoreError> {
        self.timed(
            "get_end_user",
            self.inner.get_end_user(project_id, external_id),
        )
        .await
    }
    async fn cas_end_user(&self, u: &EndUser, expected: u64) -> Result<bool, StoreError> {
        self.timed("cas_end_user", self.inner.cas_end_user(u, expected))
            .await
    }
    async fn delete_end_user(&self, project_id: Uuid, external_id: &str) -> Result<(), StoreError> {
        self.timed(
            "delete_end_user",
            self.inner.delete_end_user(project_id, external_id),
        )
        .await
    }
    async fn insert_session(&self, s: &Session) -> Result<(), StoreError> {
        self.timed("insert_session", self.inner.insert_session(s))
            .await
    }
    async fn get_session(&self, id: Uuid) -> Result<Option<Session>, StoreError> {
        self.timed("get_session", self.inner.get_session(id)).await
    }
    async fn cas_session(&self, s: &Session, expected: u64) -> Result<bool, StoreError> {
        self.timed("cas_session", self.inner.cas_session(s, expected))
            .await
    }
    async fn list_user_sessions(
        &self,
        project_id: Uuid,
        end_user_id: Uuid,
    ) -> Result<Vec<Session>, StoreError> {
        self.timed(
            "list_user_sessions",
            self.inner.list_user_sessions(project_id, end_user_id),
        )
        .await
    }
}

#[async_trait]
impl PortalStore for TimedStore {
    async fn insert_admin_user(&self, user: &AdminUser) -> Result<Inserted, StoreError> {
        self.timed("insert_admin_user", self.inner.insert_admin_user(user))
            .await
    }
    async fn get_admin_user(&self, email: &str) -> Result<Option<AdminUser>, StoreError> {
        self.timed("get_admin_user", self.inner.get_admin_user(email))
            .await
    }
    async fn list_admin_users(&self) -> Result<Vec<AdminUser>, StoreError> {
        self.timed("list_admin_users", self.inner.list_admin_users())
            .await
    }
    async fn cas_admin_user(&self, user: &AdminUser, expected: u64) -> Result<bool, StoreError> {
        self.timed("cas_admin_user", self.inner.cas_admin_user(user, expected))
            .await
    }
    async fn delete_admin_user(&self, email: &str) -> Result<(), StoreError> {
        self.timed("delete_admin_user", self.inner.delete_admin_user(email))
            .await
    }
    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.timed("append_audit", self.inner.append_audit(entry))
            .await
    }
    async fn list_audit(
        &self,
        before: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        self.timed("list_audit", self.inner.list_audit(before, limit))
            .await
    }
}
