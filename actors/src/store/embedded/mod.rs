//! The single-node [`Store`] on redb: crash-safe because a write is acknowledged only after an
//! fsync'd commit (`Durability::Immediate`), and fast because one writer thread group-commits
//! every write queued meanwhile into a single transaction, so N concurrent writes cost one fsync.
//!
//! Backup and restore: all state lives in the one file `commonrock.redb` in the data directory.
//! A consistent backup is a copy of that file taken while the node is stopped (while it runs the
//! file is locked and changing underneath a copy); restoring is putting such a copy back in place
//! before starting the node. Nothing else in the directory is needed.
//!
//! Layout: values are serde_json, keys are explicit bytes (UUIDs as their 16 bytes, times as
//! order-preserving big-endian), so per-project and per-user listings are range scans of a prefix.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use crossbeam_channel::{Receiver, Sender};
use redb::{
    CommitError, Database, DatabaseError, Durability, ReadTransaction, ReadableTable, StorageError,
    Table, TableDefinition, TableError, TransactionError, WriteTransaction,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::rows::{
    DefinitionRecord, IndexBound, IndexEntry, IndexRange, MetaInserted, MetaReplaced, PkRange,
    RowAddr, RowDelete, RowInsert, RowStore, RowUpdate, RowWritten, StoredRow, TableKey,
    TableRecord,
};
use super::{Store, StoreError};
use crate::model::{
    AdminToken, EndUser, Inserted, Org, Project, PublicClient, SecretKey, Session, UnixSecs,
};

/// Name of the database file inside the data directory.
pub const FILE_NAME: &str = "commonrock.redb";
/// On-disk layout version recorded in the `meta` table; bumped by any incompatible change to
/// tables, keys or value encodings. A file with another version is refused, never reinterpreted.
pub const FORMAT_VERSION: u64 = 1;

/// Most writes folded into one transaction: bounds the latency a batch adds to its first op.
const MAX_BATCH: usize = 256;
/// redb's own page cache.
const PAGE_CACHE_BYTES: usize = 64 * 1024 * 1024;
/// Expiry-index entries one sweep op handles, so a big backlog never makes one huge transaction
/// that would delay user writes queued behind it.
const SWEEP_BATCH: usize = 512;

type Bytes = &'static [u8];

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const FORMAT_VERSION_KEY: &str = "format_version";
/// Lives in the flags table under a name no flag can have (flag names are ASCII words).
const CONFIG_EPOCH_KEY: &[u8] = b"\0config_epoch";
/// slug -> Org
const ORGS: TableDefinition<Bytes, Bytes> = TableDefinition::new("orgs");
/// project id -> Project
const PROJECTS: TableDefinition<Bytes, Bytes> = TableDefinition::new("projects");
/// slug -> project id (16 bytes): what makes slugs unique.
const PROJECT_SLUGS: TableDefinition<Bytes, Bytes> = TableDefinition::new("project_slugs");
/// project id ‖ client_id -> PublicClient
const CLIENTS: TableDefinition<Bytes, Bytes> = TableDefinition::new("clients");
/// project id ‖ key id -> SecretKey
const SECRET_KEYS: TableDefinition<Bytes, Bytes> = TableDefinition::new("secret_keys");
/// token id -> AdminToken
const ADMIN_TOKENS: TableDefinition<Bytes, Bytes> = TableDefinition::new("admin_tokens");
/// flag name -> bool
const FLAGS: TableDefinition<Bytes, Bytes> = TableDefinition::new("flags");
/// project id ‖ 0x00 ‖ external_id bytes -> EndUser
const END_USERS: TableDefinition<Bytes, Bytes> = TableDefinition::new("end_users");
/// session id -> Session
const SESSIONS: TableDefinition<Bytes, Bytes> = TableDefinition::new("sessions");
/// project id ‖ end user id ‖ created_at ‖ session id -> (): a user's sessions, oldest first.
const USER_SESSIONS: TableDefinition<Bytes, ()> = TableDefinition::new("user_sessions");
/// store_expires_at ‖ session id -> (): what the sweeper scans.
const SESSION_EXPIRY: TableDefinition<Bytes, ()> = TableDefinition::new("session_expiry");
/// project id ‖ table name -> TableRecord (the simple DB's app tables)
const SQL_TABLES: TableDefinition<Bytes, Bytes> = TableDefinition::new("sql_tables");
/// project id ‖ definition id -> DefinitionRecord
const SQL_DEFINITIONS: TableDefinition<Bytes, Bytes> = TableDefinition::new("sql_definitions");
/// project id ‖ table id ‖ bucket (u32 BE) ‖ pk bytes -> row value
const SQL_ROWS: TableDefinition<Bytes, Bytes> = TableDefinition::new("sql_rows");
/// project id ‖ table id ‖ name length (u8) ‖ index name ‖ escaped key ‖ 0x00 0x00 ‖ pk -> ():
/// the escaping makes (key, pk) order equal byte order for any key bytes.
const SQL_INDEX: TableDefinition<Bytes, ()> = TableDefinition::new("sql_index");
/// project id ‖ table id -> rows in the table; project id -> rows in the project.
const SQL_COUNTS: TableDefinition<Bytes, u64> = TableDefinition::new("sql_counts");

mod portal;
mod rows;
mod writer;
use portal::{PortalOp, ADMIN_USERS, AUDIT_LOG};
use rows::*;
use writer::*;

/// Counts of one [`EmbeddedStore::sweep_expired`] run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepStats {
    /// Expired sessions deleted.
    pub sessions: u64,
    /// Index entries (expiry and per-user) removed, stale ones included.
    pub index_entries: u64,
    /// Write ops (bounded batches) the sweep took.
    pub batches: u64,
}

/// The redb-backed store of a single node. Cheap to share behind an `Arc`; dropping it stops
/// the writer thread (after its current batch) and releases the file lock.
pub struct EmbeddedStore {
    db: Arc<Database>,
    path: PathBuf,
    // Both are `Option` only so `Drop` can close the queue and then join the thread.
    writes: Option<Sender<Job>>,
    writer: Option<std::thread::JoinHandle<()>>,
    commits: Arc<AtomicU64>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("path", &self.path)
            .field("commits", &self.commits())
            .finish_non_exhaustive()
    }
}

impl EmbeddedStore {
    /// Opens (creating if needed) `dir/commonrock.redb`. Fails with `Unavailable` when another
    /// process already has it open, or when the file was written by an incompatible format.
    pub fn open(dir: &Path) -> Result<EmbeddedStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot create data directory {}: {e}",
                dir.display()
            ))
        })?;
        let path = dir.join(FILE_NAME);
        // redb caches up to 1 GiB of pages by default; the node's memory belongs to its session
        // caches first, and the OS page cache still holds the file.
        let db = Database::builder()
            .set_cache_size(PAGE_CACHE_BYTES)
            .create(&path)
            .map_err(|e| open_error(&path, e))?;
        init_schema(&db, &path)?;
        let db = Arc::new(db);
        // Unbounded so a caller never blocks an executor thread on `send`; back-pressure comes
        // from every caller awaiting its own reply.
        let (writes, queue) = crossbeam_channel::unbounded();
        let commits = Arc::new(AtomicU64::new(0));
        let writer = std::thread::Builder::new()
            .name("commonrock-store-writer".into())
            .spawn({
                let db = Arc::clone(&db);
                let commits = Arc::clone(&commits);
                move || writer_loop(&db, &queue, &commits)
            })
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot start the store writer thread: {e}"))
            })?;
        tracing::debug!(path = %path.display(), "embedded store open");
        Ok(EmbeddedStore {
            db,
            path,
            writes: Some(writes),
            writer: Some(writer),
            commits,
        })
    }

    /// The database file: what to copy (node stopped) for a backup.
    pub fn file_path(&self) -> &Path {
        &self.path
    }

    /// Write transactions committed since open. Under concurrency it grows slower than the
    /// number of writes: that difference is the group commit (exported as a metric, asserted by
    /// tests).
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Deletes sessions whose `store_expires_at() <= now`, with their index entries, in bounded
    /// batches through the writer so user writes interleave with a large backlog.
    pub async fn sweep_expired(&self, now: UnixSecs) -> Result<SweepStats, StoreError> {
        let mut stats = SweepStats::default();
        loop {
            let batch = match self
                .write(WriteOp::SweepExpired {
                    now,
                    limit: SWEEP_BATCH,
                })
                .await?
            {
                Outcome::Swept(batch) => batch,
                other => return Err(mismatch("sweep", &other)),
            };
            stats.batches += 1;
            stats.sessions += batch.sessions;
            stats.index_entries += batch.index_entries;
            if batch.scanned < SWEEP_BATCH {
                return Ok(stats);
            }
        }
    }

    /// Runs [`Self::sweep_expired`] now and then every `every` until the store is dropped (the
    /// task holds only a weak reference, so it never keeps the store open). Errors are logged
    /// and retried next period.
    pub fn spawn_sweeper(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let store = Arc::downgrade(self);
        // `interval` panics on a zero period.
        let every = every.max(Duration::from_millis(1));
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let Some(store) = store.upgrade() else {
                    tracing::debug!("store dropped, session sweeper stops");
                    return;
                };
                match store.sweep_expired(unix_now()).await {
                    Ok(stats) => tracing::debug!(
                        sessions = stats.sessions,
                        index_entries = stats.index_entries,
                        batches = stats.batches,
                        "swept expired sessions"
                    ),
                    Err(e) => {
                        tracing::warn!(error = %e, "session sweep failed, retrying next period")
                    }
                }
            }
        })
    }

    /// Queues one write for the writer thread and waits until its batch has committed.
    async fn write(&self, op: WriteOp) -> Result<Outcome, StoreError> {
        let (reply, outcome) = oneshot::channel();
        let writes = self.writes.as_ref().ok_or_else(writer_stopped)?;
        writes
            .send(Job { op, reply })
            .map_err(|_| writer_stopped())?;
        outcome.await.map_err(|_| writer_stopped())?
    }

    /// Runs `read` in a read transaction on the blocking pool: redb reads are synchronous file
    /// I/O, and MVCC means they never wait for the writer. A thread that may block (a SQL
    /// pool thread, `store::inline`) runs it in place.
    async fn read<T, F>(&self, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&ReadTransaction) -> Result<T, StoreError> + Send + 'static,
    {
        if crate::store::inline::inline_reads_allowed() {
            let txn = self.db.begin_read().ctx("begin read")?;
            return read(&txn);
        }
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || {
            let txn = db.begin_read().ctx("begin read")?;
            read(&txn)
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("store read task failed: {e}")))?
    }

    async fn write_unit(&self, op: WriteOp, what: &str) -> Result<(), StoreError> {
        match self.write(op).await? {
            Outcome::Done => Ok(()),
            other => Err(mismatch(what, &other)),
        }
    }

    async fn write_inserted(&self, op: WriteOp, what: &str) -> Result<Inserted, StoreError> {
        match self.write(op).await? {
            Outcome::Inserted(inserted) => Ok(inserted),
            other => Err(mismatch(what, &other)),
        }
    }

    async fn write_swapped(&self, op: WriteOp, what: &str) -> Result<bool, StoreError> {
        match self.write(op).await? {
            Outcome::Swapped(swapped) => Ok(swapped),
            other => Err(mismatch(what, &other)),
        }
    }
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        // Closing the queue ends the writer loop; joining means the file lock is released when
        // drop returns, so the same directory can be reopened at once. The wait is at most the
        // batch in progress (one commit).
        drop(self.writes.take());
        if let Some(writer) = self.writer.take() {
            if writer.join().is_err() {
                tracing::error!("store writer thread panicked");
            }
        }
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    fn kind(&self) -> &'static str {
        "embedded"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|txn| {
            let meta = txn.open_table(META).ctx("open meta")?;
            meta.get(FORMAT_VERSION_KEY).ctx("read format version")?;
            Ok(())
        })
        .await
    }

    async fn insert_org(&self, org: &Org) -> Result<Inserted, StoreError> {
        self.write_inserted(WriteOp::InsertOrg(org.clone()), "insert org")
            .await
    }

    async fn list_orgs(&self) -> Result<Vec<Org>, StoreError> {
        self.read(|txn| list_all(txn, ORGS, "org")).await
    }

    async fn insert_project(&self, project: &Project) -> Result<Inserted, StoreError> {
        self.write_inserted(WriteOp::InsertProject(project.clone()), "insert project")
            .await
    }

    async fn update_project(&self, project: &Project) -> Result<(), StoreError> {
        self.write_unit(WriteOp::UpdateProject(project.clone()), "update project")
            .await
    }

    async fn list_projects(&self) -> Result<Vec<Project>, StoreError> {
        self.read(|txn| list_all(txn, PROJECTS, "project")).await
    }

    async fn put_client(&self, client: &PublicClient) -> Result<(), StoreError> {
        self.write_unit(WriteOp::PutClient(client.clone()), "put client")
            .await
    }

    async fn list_clients(&self, project_id: Uuid) -> Result<Vec<PublicClient>, StoreError> {
        self.read(move |txn| list_prefix(txn, CLIENTS, project_id.as_bytes(), "client"))
            .await
    }

    async fn put_secret_key(&self, key: &SecretKey) -> Result<(), StoreError> {
        self.write_unit(WriteOp::PutSecretKey(key.clone()), "put secret key")
            .await
    }

    async fn list_secret_keys(&self, project_id: Uuid) -> Result<Vec<SecretKey>, StoreError> {
        self.read(move |txn| list_prefix(txn, SECRET_KEYS, project_id.as_bytes(), "secret key"))
            .await
    }

    async fn put_admin_token(&self, token: &AdminToken) -> Result<(), StoreError> {
        self.write_unit(WriteOp::PutAdminToken(token.clone()), "put admin token")
            .await
    }

    async fn list_admin_tokens(&self) -> Result<Vec<AdminToken>, StoreError> {
        self.read(|txn| list_all(txn, ADMIN_TOKENS, "admin token"))
            .await
    }

    async fn get_flag(&self, name: &str) -> Result<Option<bool>, StoreError> {
        let name = name.to_owned();
        self.read(move |txn| get_one(txn, FLAGS, name.as_bytes(), "flag"))
            .await
    }

    async fn set_flag(&self, name: &str, value: bool) -> Result<(), StoreError> {
        self.write_unit(WriteOp::SetFlag(name.to_owned(), value), "set flag")
            .await
    }

    async fn get_config_epoch(&self) -> Result<Option<Uuid>, StoreError> {
        self.read(move |txn| get_one(txn, FLAGS, CONFIG_EPOCH_KEY, "config epoch"))
            .await
    }

    async fn set_config_epoch(&self, epoch: Uuid) -> Result<(), StoreError> {
        self.write_unit(WriteOp::SetConfigEpoch(epoch), "set config epoch")
            .await
    }

    async fn insert_end_user(&self, user: &EndUser) -> Result<Inserted, StoreError> {
        self.write_inserted(WriteOp::InsertEndUser(user.clone()), "insert end user")
            .await
    }

    async fn get_end_user(
        &self,
        project_id: Uuid,
        external_id: &str,
    ) -> Result<Option<EndUser>, StoreError> {
        let key = end_user_key(project_id, external_id);
        self.read(move |txn| get_one(txn, END_USERS, &key, "end user"))
            .await
    }

    async fn cas_end_user(
        &self,
        user: &EndUser,
        expected_version: u64,
    ) -> Result<bool, StoreError> {
        self.write_swapped(
            WriteOp::CasEndUser(user.clone(), expected_version),
            "cas end user",
        )
        .await
    }

    async fn delete_end_user(&self, project_id: Uuid, external_id: &str) -> Result<(), StoreError> {
        self.write_unit(
            WriteOp::DeleteEndUser(end_user_key(project_id, external_id)),
            "delete end user",
        )
        .await
    }

    async fn insert_session(&self, session: &Session) -> Result<(), StoreError> {
        self.write_unit(WriteOp::InsertSession(session.clone()), "insert session")
            .await
    }

    async fn get_session(&self, id: Uuid) -> Result<Option<Session>, StoreError> {
        self.read(move |txn| {
            let session: Option<Session> = get_one(txn, SESSIONS, id.as_bytes(), "session")?;
            // TTL semantics: an expired row is gone for readers even before the sweeper runs.
            Ok(session.filter(|s| s.store_expires_at() > unix_now()))
        })
        .await
    }

    async fn cas_session(
        &self,
        session: &Session,
        expected_version: u64,
    ) -> Result<bool, StoreError> {
        self.write_swapped(
            WriteOp::CasSession(session.clone(), expected_version),
            "cas session",
        )
        .await
    }

    async fn list_user_sessions(
        &self,
        project_id: Uuid,
        end_user_id: Uuid,
    ) -> Result<Vec<Session>, StoreError> {
        self.read(move |txn| {
            let now = unix_now();
            let prefix = [project_id.as_bytes().as_slice(), end_user_id.as_bytes()].concat();
            let index = txn.open_table(USER_SESSIONS).ctx("open user sessions")?;
            let sessions = txn.open_table(SESSIONS).ctx("open sessions")?;
            let mut found = Vec::new();
            for entry in index
                .range::<&[u8]>(prefix.as_slice()..)
                .ctx("scan user sessions")?
            {
                let (key, _) = entry.ctx("scan user sessions")?;
                let key = key.value();
                if !key.starts_with(&prefix) {
                    break;
                }
                let Some(id) = trailing_uuid(key) else {
                    return Err(StoreError::Corrupt("short user session index key".into()));
                };
                // A stale entry (session swept or moved) is skipped, not an error.
                let Some(bytes) = sessions.get(id.as_bytes().as_slice()).ctx("read session")?
                else {
                    continue;
                };
                let session: Session = decode(bytes.value(), "session")?;
                if session.store_expires_at() > now
                    && session.project_id == project_id
                    && session.end_user_id == end_user_id
                {
                    found.push(session);
                }
            }
            Ok(found)
        })
        .await
    }
}

// ---------------------------------------------------------------------------------------------
// The simple DB's rows (the `RowStore` port): writes inside the writer's transaction.

fn open_error(path: &Path, e: DatabaseError) -> StoreError {
    match e {
        DatabaseError::DatabaseAlreadyOpen => StoreError::Unavailable(format!(
            "{} is already open by another process (one node per data directory)",
            path.display()
        )),
        DatabaseError::UpgradeRequired(version) => StoreError::Unavailable(format!(
            "{} uses redb file format {version}, which needs an offline upgrade",
            path.display()
        )),
        DatabaseError::Storage(StorageError::Corrupted(msg)) => {
            StoreError::Corrupt(format!("{}: {msg}", path.display()))
        }
        other => StoreError::Unavailable(format!("cannot open {}: {other}", path.display())),
    }
}

/// Checks (or, for a new file, records) the format version and creates every table, so reads
/// never meet a missing table.
fn init_schema(db: &Database, path: &Path) -> Result<(), StoreError> {
    let mut txn = db.begin_write().ctx("begin write")?;
    txn.set_durability(Durability::Immediate);
    let checked = check_format(&txn, path).and_then(|()| {
        for table in [
            ORGS,
            PROJECTS,
            PROJECT_SLUGS,
            CLIENTS,
            SECRET_KEYS,
            ADMIN_TOKENS,
            FLAGS,
            END_USERS,
            SESSIONS,
        ] {
            txn.open_table(table).ctx("create table")?;
        }
        for table in [SQL_TABLES, SQL_DEFINITIONS, SQL_ROWS] {
            txn.open_table(table).ctx("create table")?;
        }
        for table in [USER_SESSIONS, SESSION_EXPIRY, SQL_INDEX] {
            txn.open_table(table).ctx("create table")?;
        }
        txn.open_table(SQL_COUNTS).ctx("create table")?;
        for table in [ADMIN_USERS, AUDIT_LOG] {
            txn.open_table(table).ctx("create table")?;
        }
        Ok(())
    });
    match checked {
        Ok(()) => txn.commit().ctx("commit schema"),
        Err(e) => {
            // Leave a refused file exactly as it was.
            if let Err(abort) = txn.abort() {
                tracing::warn!(error = %abort, "aborting schema check");
            }
            Err(e)
        }
    }
}

fn check_format(txn: &WriteTransaction, path: &Path) -> Result<(), StoreError> {
    let has_tables = txn.list_tables().ctx("list tables")?.next().is_some();
    let mut meta = txn.open_table(META).ctx("open meta")?;
    let version = meta
        .get(FORMAT_VERSION_KEY)
        .ctx("read format version")?
        .map(|v| v.value());
    match version {
        Some(FORMAT_VERSION) => Ok(()),
        Some(other) => Err(StoreError::Unavailable(format!(
            "{} has on-disk format version {other}, this build only reads version {FORMAT_VERSION}",
            path.display()
        ))),
        // Tables without a version: some other program's redb file, not ours to adopt.
        None if has_tables => Err(StoreError::Unavailable(format!(
            "{} is not a commonrock store (no format version)",
            path.display()
        ))),
        None => {
            meta.insert(FORMAT_VERSION_KEY, FORMAT_VERSION)
                .ctx("write format version")?;
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Keys, values and errors.

/// i64 seconds as 8 bytes whose byte order is numeric order (sign bit flipped, big-endian), so
/// negative times, however unlikely, still sort first.
fn time_key(t: UnixSecs) -> [u8; 8] {
    ((t as u64) ^ (1 << 63)).to_be_bytes()
}

/// The separator keeps `(project, external_id)` unambiguous for any external_id bytes.
fn end_user_key(project_id: Uuid, external_id: &str) -> Vec<u8> {
    [project_id.as_bytes(), &[0u8][..], external_id.as_bytes()].concat()
}

fn user_session_key(s: &Session) -> Vec<u8> {
    [
        s.project_id.as_bytes().as_slice(),
        s.end_user_id.as_bytes(),
        &time_key(s.created_at),
        s.id.as_bytes(),
    ]
    .concat()
}

fn expiry_key(s: &Session) -> Vec<u8> {
    [&time_key(s.store_expires_at())[..], s.id.as_bytes()].concat()
}

/// The session id every index key ends with.
fn trailing_uuid(key: &[u8]) -> Option<Uuid> {
    let start = key.len().checked_sub(16)?;
    Uuid::from_slice(&key[start..]).ok()
}

fn unix_now() -> UnixSecs {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| {
        UnixSecs::try_from(d.as_secs()).unwrap_or(UnixSecs::MAX)
    })
}

fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("{what} record: {e}")))
}

fn put<T: Serialize>(
    table: &mut Table<'_, Bytes, Bytes>,
    key: &[u8],
    value: &T,
    what: &str,
) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(value)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode {what}: {e}")))?;
    table
        .insert(key, bytes.as_slice())
        .ctx(&format!("write {what}"))?;
    Ok(())
}

/// Copies a value out so the table can be written next.
fn get_owned(
    table: &Table<'_, Bytes, Bytes>,
    key: &[u8],
    what: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(table
        .get(key)
        .ctx(&format!("read {what}"))?
        .map(|v| v.value().to_vec()))
}

fn get_one<T: DeserializeOwned>(
    txn: &ReadTransaction,
    table: TableDefinition<Bytes, Bytes>,
    key: &[u8],
    what: &str,
) -> Result<Option<T>, StoreError> {
    let table = txn.open_table(table).ctx(&format!("open {what}s"))?;
    let value = table.get(key).ctx(&format!("read {what}"))?;
    value.map(|v| decode(v.value(), what)).transpose()
}

fn list_all<T: DeserializeOwned>(
    txn: &ReadTransaction,
    table: TableDefinition<Bytes, Bytes>,
    what: &str,
) -> Result<Vec<T>, StoreError> {
    let table = txn.open_table(table).ctx(&format!("open {what}s"))?;
    let mut out = Vec::new();
    for entry in table.iter().ctx(&format!("scan {what}s"))? {
        let (_, value) = entry.ctx(&format!("scan {what}s"))?;
        out.push(decode(value.value(), what)?);
    }
    Ok(out)
}

fn list_prefix<T: DeserializeOwned>(
    txn: &ReadTransaction,
    table: TableDefinition<Bytes, Bytes>,
    prefix: &[u8],
    what: &str,
) -> Result<Vec<T>, StoreError> {
    let table = txn.open_table(table).ctx(&format!("open {what}s"))?;
    let mut out = Vec::new();
    for entry in table
        .range::<&[u8]>(prefix..)
        .ctx(&format!("scan {what}s"))?
    {
        let (key, value) = entry.ctx(&format!("scan {what}s"))?;
        if !key.value().starts_with(prefix) {
            break;
        }
        out.push(decode(value.value(), what)?);
    }
    Ok(out)
}

fn writer_stopped() -> StoreError {
    StoreError::Unavailable("store writer stopped".into())
}

fn mismatch(what: &str, outcome: &Outcome) -> StoreError {
    StoreError::Unavailable(format!(
        "store writer answered {what} with {outcome:?} (bug)"
    ))
}

/// `StoreError` is not `Clone`; a failed batch owes each op its own copy.
fn same_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::Timeout => StoreError::Timeout,
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::Corrupt(m) => StoreError::Corrupt(m.clone()),
    }
}

/// redb's error types, mapped with a lowercase note of what was being done.
trait IntoStoreError: std::fmt::Display {
    fn into_store_error(self, what: &str) -> StoreError;
}

impl IntoStoreError for StorageError {
    fn into_store_error(self, what: &str) -> StoreError {
        match self {
            StorageError::Corrupted(msg) => StoreError::Corrupt(format!("{what}: {msg}")),
            other => StoreError::Unavailable(format!("{what}: {other}")),
        }
    }
}

impl IntoStoreError for TableError {
    fn into_store_error(self, what: &str) -> StoreError {
        match self {
            TableError::Storage(e) => e.into_store_error(what),
            // Every table is created at open with these types: anything else is a foreign file.
            e @ (TableError::TableDoesNotExist(_)
            | TableError::TableTypeMismatch { .. }
            | TableError::TypeDefinitionChanged { .. }
            | TableError::TableIsMultimap(_)) => StoreError::Corrupt(format!("{what}: {e}")),
            other => StoreError::Unavailable(format!("{what}: {other}")),
        }
    }
}

impl IntoStoreError for TransactionError {
    fn into_store_error(self, what: &str) -> StoreError {
        match self {
            TransactionError::Storage(e) => e.into_store_error(what),
            other => StoreError::Unavailable(format!("{what}: {other}")),
        }
    }
}

impl IntoStoreError for CommitError {
    fn into_store_error(self, what: &str) -> StoreError {
        match self {
            CommitError::Storage(e) => e.into_store_error(what),
            other => StoreError::Unavailable(format!("{what}: {other}")),
        }
    }
}

trait Ctx<T> {
    fn ctx(self, what: &str) -> Result<T, StoreError>;
}

impl<T, E: IntoStoreError> Ctx<T> for Result<T, E> {
    fn ctx(self, what: &str) -> Result<T, StoreError> {
        self.map_err(|e| e.into_store_error(what))
    }
}

#[cfg(test)]
mod tests;
