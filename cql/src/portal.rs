//! `PortalStore` on ScyllaDB (schema version 4): admin users by email, written only by
//! lightweight transactions, and the audit log in 30-day buckets, written plainly with a TTL.

use async_trait::async_trait;
use commonrock_actors::model::{AdminUser, AuditEntry, Inserted};
use commonrock_actors::store::portal::{PortalStore, MAX_AUDIT_PAGE};
use commonrock_actors::store::StoreError;
use scylla::client::session::Session as CqlSession;
use scylla::statement::prepared::PreparedStatement;
use uuid::Uuid;

use crate::store::{decode, encode, prep, unavailable, CqlStore};

/// Seconds per audit bucket (30 days); the table's TTL (400 days) bounds a listing to
/// `AUDIT_BUCKETS` buckets.
const AUDIT_BUCKET_S: i64 = 2_592_000;
const AUDIT_BUCKETS: i32 = 15;

pub struct PortalStatements {
    insert_user: PreparedStatement,
    get_user: PreparedStatement,
    list_users: PreparedStatement,
    cas_user: PreparedStatement,
    delete_user: PreparedStatement,
    append_audit: PreparedStatement,
    audit_page: PreparedStatement,
    audit_page_before: PreparedStatement,
}

pub(crate) async fn prepare(
    session: &CqlSession,
    ks: &str,
) -> Result<PortalStatements, StoreError> {
    Ok(PortalStatements {
        insert_user: prep(
            session,
            format!(
                "INSERT INTO {ks}.admin_users (email, version, data) VALUES (?, ?, ?) \
                 IF NOT EXISTS"
            ),
            false,
        )
        .await?,
        get_user: prep(
            session,
            format!("SELECT data FROM {ks}.admin_users WHERE email = ?"),
            true,
        )
        .await?,
        list_users: prep(session, format!("SELECT data FROM {ks}.admin_users"), true).await?,
        cas_user: prep(
            session,
            format!(
                "UPDATE {ks}.admin_users SET version = ?, data = ? WHERE email = ? \
                 IF version = ?"
            ),
            false,
        )
        .await?,
        delete_user: prep(
            session,
            format!("DELETE FROM {ks}.admin_users WHERE email = ? IF EXISTS"),
            false,
        )
        .await?,
        append_audit: prep(
            session,
            format!("INSERT INTO {ks}.audit_log (bucket, id, data) VALUES (?, ?, ?)"),
            true,
        )
        .await?,
        audit_page: prep(
            session,
            format!("SELECT data FROM {ks}.audit_log WHERE bucket = ? LIMIT ?"),
            true,
        )
        .await?,
        audit_page_before: prep(
            session,
            format!("SELECT data FROM {ks}.audit_log WHERE bucket = ? AND id < ? LIMIT ?"),
            true,
        )
        .await?,
    })
}

/// The bucket of a UUIDv7 id: its millisecond timestamp, in 30-day steps.
fn bucket_of(id: Uuid) -> i32 {
    let ms = id.as_u128() >> 80;
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    i32::try_from(secs / AUDIT_BUCKET_S).unwrap_or(i32::MAX)
}

fn version_column(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Corrupt(format!("admin user version {v}")))
}

#[async_trait]
impl PortalStore for CqlStore {
    async fn insert_admin_user(&self, user: &AdminUser) -> Result<Inserted, StoreError> {
        let ok = self
            .conditional(
                "insert_admin_user",
                &self.portal.insert_user,
                (&user.email, version_column(user.version)?, encode(user)?),
            )
            .await?;
        Ok(if ok {
            Inserted::Created
        } else {
            Inserted::AlreadyExists
        })
    }

    async fn get_admin_user(&self, email: &str) -> Result<Option<AdminUser>, StoreError> {
        self.one_document(&self.portal.get_user, (email,), "admin user")
            .await
    }

    async fn list_admin_users(&self) -> Result<Vec<AdminUser>, StoreError> {
        self.all_documents(&self.portal.list_users, (), "admin user")
            .await
    }

    async fn cas_admin_user(
        &self,
        user: &AdminUser,
        expected_version: u64,
    ) -> Result<bool, StoreError> {
        self.conditional(
            "cas_admin_user",
            &self.portal.cas_user,
            (
                version_column(user.version)?,
                encode(user)?,
                &user.email,
                version_column(expected_version)?,
            ),
        )
        .await
    }

    async fn delete_admin_user(&self, email: &str) -> Result<(), StoreError> {
        self.conditional("delete_admin_user", &self.portal.delete_user, (email,))
            .await
            .map(|_| ())
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.run(
            &self.portal.append_audit,
            (
                bucket_of(entry.id),
                entry.id.as_bytes().as_slice(),
                encode(entry)?,
            ),
        )
        .await
        .map(|_| ())
    }

    async fn list_audit(
        &self,
        before: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let limit = limit.clamp(1, MAX_AUDIT_PAGE);
        let start = bucket_of(before.unwrap_or_else(Uuid::now_v7));
        let mut out: Vec<AuditEntry> = Vec::with_capacity(limit);
        for bucket in (start.saturating_sub(AUDIT_BUCKETS - 1)..=start).rev() {
            let want = (limit - out.len()) as i32;
            let result = match before.filter(|_| bucket == start) {
                Some(b) => {
                    self.run(
                        &self.portal.audit_page_before,
                        (bucket, b.as_bytes().as_slice(), want),
                    )
                    .await?
                }
                None => self.run(&self.portal.audit_page, (bucket, want)).await?,
            };
            let rows = result.into_rows_result().map_err(unavailable)?;
            for row in rows
                .rows::<(Option<String>,)>()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?
            {
                let (data,) = row.map_err(|e| StoreError::Corrupt(e.to_string()))?;
                if let Some(data) = data {
                    out.push(decode(&data, "audit entry")?);
                }
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }
}
