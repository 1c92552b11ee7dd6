//! [`PortalStore`] on the embedded store: admin users keyed by email, the audit log keyed by
//! its time-ordered id. Writes go through the same group-committing writer as everything else.

use async_trait::async_trait;
use redb::{ReadableTable, TableDefinition};
use uuid::Uuid;

use super::writer::{Outcome, WriteOp, WriteTables};
use super::{decode, get_owned, list_all, put, Bytes, Ctx, EmbeddedStore};
use crate::model::{AdminUser, AuditEntry, Inserted, UnixSecs, AUDIT_RETENTION_S};
use crate::store::portal::{PortalStore, MAX_AUDIT_PAGE};
use crate::store::StoreError;

/// normalised email -> AdminUser
pub(super) const ADMIN_USERS: TableDefinition<Bytes, Bytes> = TableDefinition::new("admin_users");
/// entry id (UUIDv7, so byte order is time order) -> AuditEntry
pub(super) const AUDIT_LOG: TableDefinition<Bytes, Bytes> = TableDefinition::new("audit_log");

/// Expired audit entries one append removes: the log trims itself as it grows, so it needs no
/// sweeper of its own.
const AUDIT_TRIM_PER_APPEND: usize = 8;

pub(super) enum PortalOp {
    InsertAdminUser(AdminUser),
    CasAdminUser(AdminUser, u64),
    DeleteAdminUser(String),
    AppendAudit(AuditEntry),
}

impl WriteTables<'_> {
    pub(super) fn apply_portal(
        &mut self,
        op: &PortalOp,
        now: UnixSecs,
    ) -> Result<Outcome, StoreError> {
        match op {
            PortalOp::InsertAdminUser(user) => {
                let key = user.email.as_bytes();
                if self.admin_users.get(key).ctx("read admin user")?.is_some() {
                    return Ok(Outcome::Inserted(Inserted::AlreadyExists));
                }
                put(&mut self.admin_users, key, user, "admin user")?;
                Ok(Outcome::Inserted(Inserted::Created))
            }
            PortalOp::CasAdminUser(user, expected) => {
                let key = user.email.as_bytes();
                let Some(stored) = get_owned(&self.admin_users, key, "admin user")? else {
                    return Ok(Outcome::Swapped(false));
                };
                let stored: AdminUser = decode(&stored, "admin user")?;
                if stored.version != *expected || stored.id != user.id {
                    return Ok(Outcome::Swapped(false));
                }
                put(&mut self.admin_users, key, user, "admin user")?;
                Ok(Outcome::Swapped(true))
            }
            PortalOp::DeleteAdminUser(email) => {
                self.admin_users
                    .remove(email.as_bytes())
                    .ctx("delete admin user")?;
                Ok(Outcome::Done)
            }
            PortalOp::AppendAudit(entry) => {
                put(
                    &mut self.audit_log,
                    entry.id.as_bytes(),
                    entry,
                    "audit entry",
                )?;
                self.trim_audit(now)?;
                Ok(Outcome::Done)
            }
        }
    }

    fn trim_audit(&mut self, now: UnixSecs) -> Result<(), StoreError> {
        let mut expired = Vec::new();
        for entry in self.audit_log.iter().ctx("scan audit log")? {
            let (key, value) = entry.ctx("scan audit log")?;
            let e: AuditEntry = decode(value.value(), "audit entry")?;
            if e.at + AUDIT_RETENTION_S > now || expired.len() == AUDIT_TRIM_PER_APPEND {
                break;
            }
            expired.push(key.value().to_vec());
        }
        for key in expired {
            self.audit_log
                .remove(key.as_slice())
                .ctx("trim audit log")?;
        }
        Ok(())
    }
}

#[async_trait]
impl PortalStore for EmbeddedStore {
    async fn insert_admin_user(&self, user: &AdminUser) -> Result<Inserted, StoreError> {
        self.write_inserted(
            WriteOp::Portal(PortalOp::InsertAdminUser(user.clone())),
            "insert admin user",
        )
        .await
    }

    async fn get_admin_user(&self, email: &str) -> Result<Option<AdminUser>, StoreError> {
        let email = email.to_owned();
        self.read(move |txn| super::get_one(txn, ADMIN_USERS, email.as_bytes(), "admin user"))
            .await
    }

    async fn list_admin_users(&self) -> Result<Vec<AdminUser>, StoreError> {
        self.read(|txn| list_all(txn, ADMIN_USERS, "admin user"))
            .await
    }

    async fn cas_admin_user(
        &self,
        user: &AdminUser,
        expected_version: u64,
    ) -> Result<bool, StoreError> {
        self.write_swapped(
            WriteOp::Portal(PortalOp::CasAdminUser(user.clone(), expected_version)),
            "cas admin user",
        )
        .await
    }

    async fn delete_admin_user(&self, email: &str) -> Result<(), StoreError> {
        self.write_unit(
            WriteOp::Portal(PortalOp::DeleteAdminUser(email.to_owned())),
            "delete admin user",
        )
        .await
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.write_unit(
            WriteOp::Portal(PortalOp::AppendAudit(entry.clone())),
            "append audit entry",
        )
        .await
    }

    async fn list_audit(
        &self,
        before: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let limit = limit.clamp(1, MAX_AUDIT_PAGE);
        self.read(move |txn| {
            let table = txn.open_table(AUDIT_LOG).ctx("open audit log")?;
            let upper = before.map(|b| *b.as_bytes());
            let range = match &upper {
                Some(b) => table.range::<&[u8]>(..b.as_slice()),
                None => table.range::<&[u8]>(..),
            }
            .ctx("scan audit log")?;
            let mut out = Vec::with_capacity(limit);
            for entry in range.rev() {
                let (_, value) = entry.ctx("scan audit log")?;
                out.push(decode(value.value(), "audit entry")?);
                if out.len() == limit {
                    break;
                }
            }
            Ok(out)
        })
        .await
    }
}
