//! `Store` on ScyllaDB. Statements are prepared once at start with explicit consistency
//! (LOCAL_QUORUM by default) and LOCAL_SERIAL for lightweight transactions, which are used
//! only where a race would lose data: external_id uniqueness, slug uniqueness, and the
//! compare-and-set of users and sessions. A conditional statement's answer is read by the
//! `[applied]` column only (ScyllaDB returns the old row beside it, Cassandra only on failure).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use commonrock_actors::model::{
    AdminToken, EndUser, Inserted, Org, Project, PublicClient, SecretKey, Session, UnixSecs,
};
use commonrock_actors::store::{Store, StoreError};
use futures_util::TryStreamExt;
use prometheus::{IntCounterVec, Opts, Registry};
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session as CqlSession;
use scylla::client::session_builder::SessionBuilder;
use scylla::errors::ExecutionError;
use scylla::response::query_result::QueryResult;
use scylla::serialize::row::SerializeRow;
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::{Consistency, SerialConsistency};
use scylla::value::CqlValue;
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

use crate::migrate::{self, ServerKind};
use crate::options::CqlOptions;

const EPOCH_ROW: &str = "\u{0}config_epoch";

/// Every statement the store runs, prepared once.
struct Statements {
    ping: PreparedStatement,
    insert_org: PreparedStatement,
    list_orgs: PreparedStatement,
    claim_slug: PreparedStatement,
    get_slug: PreparedStatement,
    put_project: PreparedStatement,
    get_project: PreparedStatement,
    list_projects: PreparedStatement,
    put_client: PreparedStatement,
    list_clients: PreparedStatement,
    put_key: PreparedStatement,
    list_keys: PreparedStatement,
    put_admin_token: PreparedStatement,
    list_admin_tokens: PreparedStatement,
    get_flag: PreparedStatement,
    set_flag: PreparedStatement,
    get_epoch: PreparedStatement,
    set_epoch: PreparedStatement,
    insert_user: PreparedStatement,
    get_user: PreparedStatement,
    cas_user: PreparedStatement,
    delete_user: PreparedStatement,
    insert_session: PreparedStatement,
    get_session: PreparedStatement,
    cas_session: PreparedStatement,
    index_session: PreparedStatement,
    unindex_session: PreparedStatement,
    list_user_sessions: PreparedStatement,
}

pub struct CqlStore {
    pub(crate) session: CqlSession,
    st: Statements,
    /// The simple DB's statements (`RowStore`, in `rows.rs`).
    pub(crate) rows: crate::rows::RowStatements,
    /// The membership statements (`MemberStore`, in `members.rs`).
    pub(crate) members: crate::members::MemberStatements,
    /// The portal's statements (`PortalStore`, in `portal.rs`).
    pub(crate) portal: crate::portal::PortalStatements,
    /// Row counts for the quotas between counter reads (`row_counts.rs`).
    pub(crate) row_counts: crate::row_counts::RowCounts,
    server: ServerKind,
    lwt: IntCounterVec,
}

pub(crate) fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// A timeout is an unknown outcome and must surface as such; everything else the driver
/// reports means the store could not be reached or refused the request.
pub(crate) fn exec_error(e: ExecutionError) -> StoreError {
    use scylla::errors::{DbError, RequestAttemptError};
    match e {
        ExecutionError::RequestTimeout(_) => StoreError::Timeout,
        // The server's own timeouts ("not enough nodes responded in time", and a lightweight
        // transaction's contention or commit timeout): the write may have been applied.
        ExecutionError::LastAttemptError(RequestAttemptError::DbError(
            DbError::WriteTimeout { .. } | DbError::ReadTimeout { .. },
            _,
        )) => StoreError::Timeout,
        other => {
            let text = other.to_string();
            if text.contains("imeout") {
                StoreError::Timeout
            } else {
                StoreError::Unavailable(text)
            }
        }
    }
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn decode<T: DeserializeOwned>(text: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// The `[applied]` column of a conditional statement's answer.
pub fn applied(result: QueryResult) -> Result<bool, StoreError> {
    let rows = result.into_rows_result().map_err(unavailable)?;
    let (index, _) = rows
        .column_specs()
        .get_by_name("[applied]")
        .ok_or_else(|| StoreError::Corrupt("conditional answer without [applied]".into()))?;
    let row = rows
        .rows::<scylla::value::Row>()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?
        .next()
        .ok_or_else(|| StoreError::Corrupt("conditional answer without a row".into()))?
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(matches!(
        row.columns.get(index),
        Some(Some(CqlValue::Boolean(true)))
    ))
}

/// Seconds a row must live to outlast `expires_at` (at least 1: TTL 0 means forever).
fn ttl_until(expires_at: UnixSecs) -> i32 {
    let now = chrono_now();
    (expires_at - now).clamp(1, i64::from(i32::MAX)) as i32
}

fn chrono_now() -> UnixSecs {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl CqlStore {
    /// Connects, applies migrations and prepares every statement.
    pub async fn connect(opts: &CqlOptions, registry: &Registry) -> Result<CqlStore, StoreError> {
        let profile = ExecutionProfile::builder()
            .consistency(opts.consistency)
            .serial_consistency(Some(serial_for(opts.consistency)))
            .request_timeout(Some(opts.request_timeout))
            .build();
        let session = SessionBuilder::new()
            .known_nodes(&opts.nodes)
            .connection_timeout(opts.connect_timeout)
            .default_execution_profile_handle(profile.into_handle())
            .build()
            .await
            .map_err(|e| unavailable(format!("cannot connect to {:?}: {e}", opts.nodes)))?;
        let server = migrate::migrate(&session, opts)
            .await
            .map_err(StoreError::Unavailable)?;
        let st = prepare_all(&session, &opts.keyspace).await?;
        let rows = crate::rows::prepare(&session, &opts.keyspace).await?;
        let members = crate::members::prepare(&session, &opts.keyspace).await?;
        let portal = crate::portal::prepare(&session, &opts.keyspace).await?;
        let lwt = IntCounterVec::new(
            Opts::new(
                "commonrock_store_lwt_total",
                "lightweight transactions by operation and whether they applied (not applied = contention or conflict)",
            ),
            &["op", "applied"],
        )
        .map_err(unavailable)?;
        // Several stores in one process (tests) share no registry; a clash is not fatal.
        let _ = registry.register(Box::new(lwt.clone()));
        tracing::info!(keyspace = %opts.keyspace, server = ?server, "cql store ready");
        Ok(CqlStore {
            session,
            st,
            rows,
            members,
            portal,
            row_counts: Default::default(),
            server,
            lwt,
        })
    }

    pub fn server(&self) -> ServerKind {
        self.server
    }

    /// The driver session, for tests and tools that inspect tables directly.
    pub fn session(&self) -> &CqlSession {
        &self.session
    }

    pub(crate) async fn run(
        &self,
        statement: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<QueryResult, StoreError> {
        self.session
            .execute_unpaged(statement, values)
            .await
            .map_err(exec_error)
    }

    pub(crate) async fn conditional(
        &self,
        op: &'static str,
        statement: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<bool, StoreError> {
        let ok = applied(self.run(statement, values).await?)?;
        self.count_lwt(op, ok);
        Ok(ok)
    }

    /// Counts one lightweight transaction (statement or conditional batch) in the metric.
    pub(crate) fn count_lwt(&self, op: &'static str, ok: bool) {
        self.lwt
            .with_label_values(&[op, if ok { "true" } else { "false" }])
            .inc();
    }

    /// The single `data` column of at most one row.
    pub(crate) async fn one_document<T: DeserializeOwned>(
        &self,
        statement: &PreparedStatement,
        values: impl SerializeRow,
        what: &str,
    ) -> Result<Option<T>, StoreError> {
        let rows = self
            .run(statement, values)
            .await?
            .into_rows_result()
            .map_err(unavailable)?;
        let row = rows
            .maybe_first_row::<(Option<String>,)>()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        match row {
            Some((Some(text),)) => decode(&text, what).map(Some),
            _ => Ok(None),
        }
    }

    async fn project_missing(&self, id: Uuid) -> Result<bool, StoreError> {
        let doc: Option<Project> = self
            .one_document(&self.st.get_project, (id,), "project")
            .await?;
        Ok(doc.is_none())
    }

    /// Every `data` document a (possibly multi-page) query returns.
    pub(crate) async fn all_documents<T: DeserializeOwned>(
        &self,
        statement: &PreparedStatement,
        values: impl SerializeRow,
        what: &str,
    ) -> Result<Vec<T>, StoreError> {
        let pager = self
            .session
            .execute_iter(statement.clone(), values)
            .await
            .map_err(unavailable)?;
        let rows: Vec<(Option<String>,)> = pager
            .rows_stream::<(Option<String>,)>()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?
            .try_collect()
            .await
            .map_err(unavailable)?;
        rows.into_iter()
            .filter_map(|(d,)| d)
            .map(|d| decode(&d, what))
            .collect()
    }
}

/// Prepares `cql`; only statements that may safely run twice are marked idempotent.
pub(crate) async fn prep(
    session: &CqlSession,
    cql: String,
    idempotent: bool,
) -> Result<PreparedStatement, StoreError> {
    let mut p = session
        .prepare(cql.as_str())
        .await
        .map_err(|e| unavailable(format!("cannot prepare {cql}: {e}")))?;
    // Only statements that may safely run twice are retried by the driver: a retried
    // conditional write that had applied would answer "not applied".
    p.set_is_idempotent(idempotent);
    Ok(p)
}

/// LWTs stay in the local datacenter when the plain consistency does.
fn serial_for(c: Consistency) -> SerialConsistency {
    match c {
        Consistency::Quorum | Consistency::All | Consistency::EachQuorum => {
            SerialConsistency::Serial
        }
        _ => SerialConsistency::LocalSerial,
    }
}

async fn prepare_all(session: &CqlSession, ks: &str) -> Result<Statements, StoreError> {
    let prepare = |cql: String, idempotent: bool| async move {
        let mut p = session
            .prepare(cql.as_str())
            .await
            .map_err(|e| unavailable(format!("cannot prepare {cql}: {e}")))?;
        // Only statements that may safely run twice are retried by the driver.
        p.set_is_idempotent(idempotent);
        p.set_page_size(1000);
        Ok::<_, StoreError>(p)
    };
    Ok(Statements {
        ping: prepare("SELECT release_version FROM system.local".into(), true).await?,
        insert_org: prepare(
            format!("INSERT INTO {ks}.orgs (slug, data) VALUES (?, ?) IF NOT EXISTS"),
            false,
        )
        .await?,
        list_orgs: prepare(format!("SELECT data FROM {ks}.orgs"), true).await?,
        claim_slug: prepare(
            format!("INSERT INTO {ks}.project_slugs (slug, id) VALUES (?, ?) IF NOT EXISTS"),
            false,
        )
        .await?,
        get_slug: prepare(
            format!("SELECT id FROM {ks}.project_slugs WHERE slug = ?"),
            true,
        )
        .await?,
        put_project: prepare(
            format!("INSERT INTO {ks}.projects (id, data) VALUES (?, ?)"),
            true,
        )
        .await?,
        get_project: prepare(format!("SELECT data FROM {ks}.projects WHERE id = ?"), true).await?,
        list_projects: prepare(format!("SELECT data FROM {ks}.projects"), true).await?,
        put_client: prepare(
            format!("INSERT INTO {ks}.clients (project_id, client_id, data) VALUES (?, ?, ?)"),
            true,
        )
        .await?,
        list_clients: prepare(
            format!("SELECT data FROM {ks}.clients WHERE project_id = ?"),
            true,
        )
        .await?,
        put_key: prepare(
            format!("INSERT INTO {ks}.secret_keys (project_id, id, data) VALUES (?, ?, ?)"),
            true,
        )
        .await?,
        list_keys: prepare(
            format!("SELECT data FROM {ks}.secret_keys WHERE project_id = ?"),
            true,
        )
        .await?,
        put_admin_token: prepare(
            format!("INSERT INTO {ks}.admin_tokens (id, data) VALUES (?, ?)"),
            true,
        )
        .await?,
        list_admin_tokens: prepare(format!("SELECT data FROM {ks}.admin_tokens"), true).await?,
        get_flag: prepare(format!("SELECT value FROM {ks}.flags WHERE name = ?"), true).await?,
        set_flag: prepare(
            format!("UPDATE {ks}.flags SET value = ? WHERE name = ?"),
            true,
        )
        .await?,
        get_epoch: prepare(format!("SELECT epoch FROM {ks}.flags WHERE name = ?"), true).await?,
        set_epoch: prepare(
            format!("UPDATE {ks}.flags SET epoch = ? WHERE name = ?"),
            true,
        )
        .await?,
        insert_user: prepare(
            format!(
                "INSERT INTO {ks}.end_users (project_id, external_id, version, data) \
                 VALUES (?, ?, ?, ?) IF NOT EXISTS"
            ),
            false,
        )
        .await?,
        get_user: prepare(
            format!("SELECT data FROM {ks}.end_users WHERE project_id = ? AND external_id = ?"),
            true,
        )
        .await?,
        cas_user: prepare(
            format!(
                "UPDATE {ks}.end_users SET version = ?, data = ? \
                 WHERE project_id = ? AND external_id = ? IF version = ?"
            ),
            false,
        )
        .await?,
        delete_user: prepare(
            format!(
                "DELETE FROM {ks}.end_users WHERE project_id = ? AND external_id = ? IF EXISTS"
            ),
            false,
        )
        .await?,
        insert_session: prepare(
            format!(
                "INSERT INTO {ks}.sessions (id, version, expires_at, data) VALUES (?, ?, ?, ?) \
                 IF NOT EXISTS USING TTL ?"
            ),
            false,
        )
        .await?,
        get_session: prepare(format!("SELECT data FROM {ks}.sessions WHERE id = ?"), true).await?,
        cas_session: prepare(
            format!(
                "UPDATE {ks}.sessions USING TTL ? SET version = ?, expires_at = ?, data = ? \
                 WHERE id = ? IF version = ? AND expires_at > ?"
            ),
            false,
        )
        .await?,
        index_session: prepare(
            format!(
                "INSERT INTO {ks}.user_sessions (project_id, end_user_id, created_at, session_id) \
                 VALUES (?, ?, ?, ?) USING TTL ?"
            ),
            true,
        )
        .await?,
        unindex_session: prepare(
            format!(
                "DELETE FROM {ks}.user_sessions WHERE project_id = ? AND end_user_id = ? \
                 AND created_at = ? AND session_id = ?"
            ),
            true,
        )
        .await?,
        list_user_sessions: prepare(
            format!(
                "SELECT session_id FROM {ks}.user_sessions \
                 WHERE project_id = ? AND end_user_id = ?"
            ),
            true,
        )
        .await?,
    })
}

#[async_trait]
impl Store for CqlStore {
    fn kind(&self) -> &'static str {
        "scylla"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.run(&self.st.ping, ()).await.map(|_| ())
    }

    async fn insert_org(&self, org: &Org) -> Result<Inserted, StoreError> {
        let ok = self
            .conditional("insert_org", &self.st.insert_org, (&org.slug, encode(org)?))
            .await?;
        Ok(if ok {
            Inserted::Created
        } else {
            Inserted::AlreadyExists
        })
    }

    async fn list_orgs(&self) -> Result<Vec<Org>, StoreError> {
        self.all_documents(&self.st.list_orgs, (), "org").await
    }

    async fn insert_project(&self, project: &Project) -> Result<Inserted, StoreError> {
        let claimed = self
            .conditional(
                "claim_slug",
                &self.st.claim_slug,
                (&project.slug, project.id),
            )
            .await?;
        if !claimed {
            // The slug is taken. If it is taken by this very project (a retry after an
            // unknown outcome), make sure the project row exists, but still answer
            // AlreadyExists: the contract is insert-if-absent.
            let holder = self
                .run(&self.st.get_slug, (&project.slug,))
                .await?
                .into_rows_result()
                .map_err(unavailable)?
                .maybe_first_row::<(Option<Uuid>,)>()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if holder == Some((Some(project.id),)) && self.project_missing(project.id).await? {
                self.run(&self.st.put_project, (project.id, encode(project)?))
                    .await?;
            }
            return Ok(Inserted::AlreadyExists);
        }
        self.run(&self.st.put_project, (project.id, encode(project)?))
            .await?;
        Ok(Inserted::Created)
    }

    async fn update_project(&self, project: &Project) -> Result<(), StoreError> {
        self.run(&self.st.put_project, (project.id, encode(project)?))
            .await
            .map(|_| ())
    }

    async fn list_projects(&self) -> Result<Vec<Project>, StoreError> {
        self.all_documents(&self.st.list_projects, (), "project")
            .await
    }

    async fn put_client(&self, c: &PublicClient) -> Result<(), StoreError> {
        self.run(
            &self.st.put_client,
            (c.project_id, &c.client_id, encode(c)?),
        )
        .await
        .map(|_| ())
    }

    async fn list_clients(&self, project_id: Uuid) -> Result<Vec<PublicClient>, StoreError> {
        self.all_documents(&self.st.list_clients, (project_id,), "client")
            .await
    }

    async fn put_secret_key(&self, k: &SecretKey) -> Result<(), StoreError> {
        self.run(&self.st.put_key, (k.project_id, k.id, encode(k)?))
            .await
            .map(|_| ())
    }

    async fn list_secret_keys(&self, project_id: Uuid) -> Result<Vec<SecretKey>, StoreError> {
        self.all_documents(&self.st.list_keys, (project_id,), "secret key")
            .await
    }

    async fn put_admin_token(&self, t: &AdminToken) -> Result<(), StoreError> {
        self.run(&self.st.put_admin_token, (t.id, encode(t)?))
            .await
            .map(|_| ())
    }

    async fn list_admin_tokens(&self) -> Result<Vec<AdminToken>, StoreError> {
        self.all_documents(&self.st.list_admin_tokens, (), "admin token")
            .await
    }

    async fn get_flag(&self, name: &str) -> Result<Option<bool>, StoreError> {
        let row = self
            .run(&self.st.get_flag, (name,))
            .await?
            .into_rows_result()
            .map_err(unavailable)?
            .maybe_first_row::<(Option<bool>,)>()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(row.and_then(|(v,)| v))
    }

    async fn set_flag(&self, name: &str, value: bool) -> Result<(), StoreError> {
        self.run(&self.st.set_flag, (value, name)).await.map(|_| ())
    }

    async fn get_config_epoch(&self) -> Result<Option<Uuid>, StoreError> {
        let row = self
            .run(&self.st.get_epoch, (EPOCH_ROW,))
            .await?
            .into_rows_result()
            .map_err(unavailable)?
            .maybe_first_row::<(Option<Uuid>,)>()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(row.and_then(|(v,)| v))
    }

    async fn set_config_epoch(&self, epoch: Uuid) -> Result<(), StoreError> {
        self.run(&self.st.set_epoch, (epoch, EPOCH_ROW))
            .await
            .map(|_| ())
    }

    async fn insert_end_user(&self, u: &EndUser) -> Result<Inserted, StoreError> {
        let ok = self
            .conditional(
                "insert_end_user",
                &self.st.insert_user,
                (u.project_id, &u.external_id, u.version as i64, encode(u)?),
            )
            .await?;
        Ok(if ok {
            Inserted::Created
        } else {
            Inserted::AlreadyExists
        })
    }

    async fn get_end_user(
        &self,
        project_id: Uuid,
        external_id: &str,
    ) -> Result<Option<EndUser>, StoreError> {
        self.one_document(&self.st.get_user, (project_id, external_id), "end user")
            .await
    }

    async fn cas_end_user(&self, u: &EndUser, expected: u64) -> Result<bool, StoreError> {
        self.conditional(
            "cas_end_user",
            &self.st.cas_user,
            (
                u.version as i64,
                encode(u)?,
                u.project_id,
                &u.external_id,
                expected as i64,
            ),
        )
        .await
    }

    async fn delete_end_user(&self, project_id: Uuid, external_id: &str) -> Result<(), StoreError> {
        self.conditional(
            "delete_end_user",
            &self.st.delete_user,
            (project_id, external_id),
        )
        .await
        .map(|_| ())
    }

    async fn insert_session(&self, s: &Session) -> Result<(), StoreError> {
        if s.store_expires_at() <= chrono_now() {
            // Already expired: invisible from the start, so there is nothing to keep.
            return Ok(());
        }
        let ok = self
            .conditional(
                "insert_session",
                &self.st.insert_session,
                (
                    s.id,
                    s.version as i64,
                    s.store_expires_at(),
                    encode(s)?,
                    ttl_until(s.store_expires_at()),
                ),
            )
            .await?;
        if !ok {
            return Err(StoreError::Corrupt(format!(
                "session id {} already used",
                s.id
            )));
        }
        // A session never outlives its absolute deadline, so neither does its index entry.
        self.run(
            &self.st.index_session,
            (
                s.project_id,
                s.end_user_id,
                s.created_at,
                s.id,
                ttl_until(s.absolute_expires_at.max(s.store_expires_at())),
            ),
        )
        .await
        .map(|_| ())
    }

    async fn get_session(&self, id: Uuid) -> Result<Option<Session>, StoreError> {
        let s: Option<Session> = self
            .one_document(&self.st.get_session, (id,), "session")
            .await?;
        // TTLs have whole-second granularity: hide a session the moment it expires.
        Ok(s.filter(|s| s.store_expires_at() > chrono_now()))
    }

    async fn cas_session(&self, s: &Session, expected: u64) -> Result<bool, StoreError> {
        let ok = self
            .conditional(
                "cas_session",
                &self.st.cas_session,
                (
                    ttl_until(s.store_expires_at()),
                    s.version as i64,
                    s.store_expires_at(),
                    encode(s)?,
                    s.id,
                    expected as i64,
                    chrono_now(),
                ),
            )
            .await?;
        if ok && s.revoked_at.is_some() {
            // Revoked sessions leave the user's index, which keeps that partition bounded
            // by the live-session cap.
            self.run(
                &self.st.unindex_session,
                (s.project_id, s.end_user_id, s.created_at, s.id),
            )
            .await?;
        }
        Ok(ok)
    }

    async fn list_user_sessions(
        &self,
        project_id: Uuid,
        end_user_id: Uuid,
    ) -> Result<Vec<Session>, StoreError> {
        let pager = self
            .session
            .execute_iter(
                self.st.list_user_sessions.clone(),
                (project_id, end_user_id),
            )
            .await
            .map_err(unavailable)?;
        let ids: Vec<(Uuid,)> = pager
            .rows_stream::<(Uuid,)>()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?
            .try_collect()
            .await
            .map_err(unavailable)?;
        let sessions =
            futures_util::future::try_join_all(ids.iter().map(|(id,)| self.get_session(*id)))
                .await?;
        Ok(sessions.into_iter().flatten().collect())
    }
}

/// Waits until a CQL server answers at `nodes` (for tools and tests).
pub async fn wait_until_reachable(nodes: &[String], timeout: Duration) -> Result<(), String> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match SessionBuilder::new().known_nodes(nodes).build().await {
            Ok(_) => return Ok(()),
            Err(e) if std::time::Instant::now() > deadline => return Err(e.to_string()),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// Lets the engine share one connection pool across tests of a process.
pub type SharedCqlStore = Arc<CqlStore>;
