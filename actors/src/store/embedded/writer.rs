//! The writer thread of the embedded store: one thread group-commits every write queued
//! meanwhile into a single fsync'd transaction, each op computing its outcome inside it.

use super::*;

// ---------------------------------------------------------------------------------------------
// The writer thread.

pub(super) enum WriteOp {
    Portal(PortalOp),
    InsertOrg(Org),
    InsertProject(Project),
    UpdateProject(Project),
    PutClient(PublicClient),
    PutSecretKey(SecretKey),
    PutAdminToken(AdminToken),
    SetFlag(String, bool),
    SetConfigEpoch(Uuid),
    InsertEndUser(EndUser),
    CasEndUser(EndUser, u64),
    /// The end-user key.
    DeleteEndUser(Vec<u8>),
    InsertSession(Session),
    CasSession(Session, u64),
    SweepExpired {
        now: UnixSecs,
        limit: usize,
    },
    CreateSqlTable(TableRecord, u64),
    UpdateSqlTable(TableRecord, u64),
    DeleteSqlTable(Uuid, String),
    PurgeSqlRows(TableKey, usize),
    InsertDefinition(DefinitionRecord, u64),
    DeleteDefinition(Uuid, Uuid),
    ReplaceDefinition(DefinitionRecord),
    InsertRow(RowInsert),
    UpdateRow(RowUpdate),
    DeleteRow(RowDelete),
    PutIndexEntry {
        table: TableKey,
        addr: RowAddr,
        row: Vec<u8>,
        entry: IndexEntry,
    },
    RemoveIndexEntry {
        table: TableKey,
        addr: RowAddr,
        row: Option<Vec<u8>>,
        entry: IndexEntry,
    },
    PurgeIndex {
        table: TableKey,
        index: String,
        limit: usize,
    },
}

/// What one op computed inside its batch; delivered only once the batch has committed.
#[derive(Debug)]
pub(super) enum Outcome {
    Done,
    Inserted(Inserted),
    Swapped(bool),
    Swept(SweptBatch),
    Meta(MetaInserted),
    Replaced(MetaReplaced),
    Row(RowWritten),
    Count(u64),
}

#[derive(Debug, Default)]
pub(super) struct SweptBatch {
    /// Expiry entries looked at; fewer than the limit means the backlog is done.
    pub(super) scanned: usize,
    pub(super) sessions: u64,
    pub(super) index_entries: u64,
}

pub(super) struct Job {
    pub(super) op: WriteOp,
    pub(super) reply: oneshot::Sender<Result<Outcome, StoreError>>,
}

pub(super) fn writer_loop(db: &Database, queue: &Receiver<Job>, commits: &AtomicU64) {
    // Ends when every sender is gone, i.e. the store was dropped.
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        // Whatever queued up during the previous fsync rides along in this commit.
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        run_batch(db, batch, commits);
    }
}

/// Why a batch did not commit.
pub(super) enum BatchFailure {
    /// Op `index` failed on its own (a record that does not decode): retry the rest without it.
    Op(usize, StoreError),
    /// The transaction itself failed: nobody's write committed.
    All(StoreError),
}

/// Applies `jobs` in order in one transaction, commits once, then answers every job. A job
/// hears `Ok` only if its write is in a committed transaction.
pub(super) fn run_batch(db: &Database, mut jobs: Vec<Job>, commits: &AtomicU64) {
    while !jobs.is_empty() {
        match apply_and_commit(db, &jobs) {
            Ok(outcomes) => {
                commits.fetch_add(1, Ordering::Relaxed);
                for (job, outcome) in jobs.into_iter().zip(outcomes) {
                    // A caller that stopped waiting still had its write committed; nothing to do.
                    let _ = job.reply.send(Ok(outcome));
                }
                return;
            }
            Err(BatchFailure::Op(index, error)) => {
                let job = jobs.remove(index);
                let _ = job.reply.send(Err(error));
            }
            Err(BatchFailure::All(error)) => {
                tracing::error!(error = %error, ops = jobs.len(), "store write batch failed");
                for job in jobs {
                    let _ = job.reply.send(Err(same_error(&error)));
                }
                return;
            }
        }
    }
}

pub(super) fn apply_and_commit(db: &Database, jobs: &[Job]) -> Result<Vec<Outcome>, BatchFailure> {
    let mut txn = db
        .begin_write()
        .ctx("begin write")
        .map_err(BatchFailure::All)?;
    // The whole point of the store: acknowledged means fsync'd.
    txn.set_durability(Durability::Immediate);
    let applied = apply_all(&txn, jobs);
    match applied {
        Ok(outcomes) => {
            txn.commit().ctx("commit").map_err(BatchFailure::All)?;
            Ok(outcomes)
        }
        Err(failure) => {
            if let Err(e) = txn.abort() {
                tracing::warn!(error = %e, "aborting a failed store write batch");
            }
            Err(failure)
        }
    }
}

pub(super) fn apply_all(
    txn: &WriteTransaction,
    jobs: &[Job],
) -> Result<Vec<Outcome>, BatchFailure> {
    let mut tables = WriteTables::open(txn).map_err(BatchFailure::All)?;
    let now = unix_now();
    let mut outcomes = Vec::with_capacity(jobs.len());
    for (index, job) in jobs.iter().enumerate() {
        match tables.apply(&job.op, now) {
            Ok(outcome) => outcomes.push(outcome),
            // Corruption is confined to one record: the other ops of the batch can still commit.
            Err(e @ StoreError::Corrupt(_)) => return Err(BatchFailure::Op(index, e)),
            Err(e) => return Err(BatchFailure::All(e)),
        }
    }
    Ok(outcomes)
}

/// Every table, opened once per batch.
pub(super) struct WriteTables<'txn> {
    pub(super) orgs: Table<'txn, Bytes, Bytes>,
    pub(super) projects: Table<'txn, Bytes, Bytes>,
    pub(super) project_slugs: Table<'txn, Bytes, Bytes>,
    pub(super) clients: Table<'txn, Bytes, Bytes>,
    pub(super) secret_keys: Table<'txn, Bytes, Bytes>,
    pub(super) admin_tokens: Table<'txn, Bytes, Bytes>,
    pub(super) flags: Table<'txn, Bytes, Bytes>,
    pub(super) end_users: Table<'txn, Bytes, Bytes>,
    pub(super) sessions: Table<'txn, Bytes, Bytes>,
    pub(super) user_sessions: Table<'txn, Bytes, ()>,
    pub(super) session_expiry: Table<'txn, Bytes, ()>,
    pub(super) sql_tables: Table<'txn, Bytes, Bytes>,
    pub(super) sql_definitions: Table<'txn, Bytes, Bytes>,
    pub(super) sql_rows: Table<'txn, Bytes, Bytes>,
    pub(super) sql_index: Table<'txn, Bytes, ()>,
    pub(super) sql_counts: Table<'txn, Bytes, u64>,
    pub(super) admin_users: Table<'txn, Bytes, Bytes>,
    pub(super) audit_log: Table<'txn, Bytes, Bytes>,
}

impl<'txn> WriteTables<'txn> {
    pub(super) fn open(txn: &'txn WriteTransaction) -> Result<Self, StoreError> {
        Ok(WriteTables {
            orgs: txn.open_table(ORGS).ctx("open orgs")?,
            projects: txn.open_table(PROJECTS).ctx("open projects")?,
            project_slugs: txn.open_table(PROJECT_SLUGS).ctx("open project slugs")?,
            clients: txn.open_table(CLIENTS).ctx("open clients")?,
            secret_keys: txn.open_table(SECRET_KEYS).ctx("open secret keys")?,
            admin_tokens: txn.open_table(ADMIN_TOKENS).ctx("open admin tokens")?,
            flags: txn.open_table(FLAGS).ctx("open flags")?,
            end_users: txn.open_table(END_USERS).ctx("open end users")?,
            sessions: txn.open_table(SESSIONS).ctx("open sessions")?,
            user_sessions: txn.open_table(USER_SESSIONS).ctx("open user sessions")?,
            session_expiry: txn.open_table(SESSION_EXPIRY).ctx("open session expiry")?,
            sql_tables: txn.open_table(SQL_TABLES).ctx("open sql tables")?,
            sql_definitions: txn
                .open_table(SQL_DEFINITIONS)
                .ctx("open sql definitions")?,
            sql_rows: txn.open_table(SQL_ROWS).ctx("open sql rows")?,
            sql_index: txn.open_table(SQL_INDEX).ctx("open sql index")?,
            sql_counts: txn.open_table(SQL_COUNTS).ctx("open sql counts")?,
            admin_users: txn.open_table(ADMIN_USERS).ctx("open admin users")?,
            audit_log: txn.open_table(AUDIT_LOG).ctx("open audit log")?,
        })
    }

    pub(super) fn apply(&mut self, op: &WriteOp, now: UnixSecs) -> Result<Outcome, StoreError> {
        match op {
            WriteOp::Portal(op) => self.apply_portal(op, now),
            WriteOp::InsertOrg(org) => {
                let key = org.slug.as_bytes();
                if self.orgs.get(key).ctx("read org")?.is_some() {
                    return Ok(Outcome::Inserted(Inserted::AlreadyExists));
                }
                put(&mut self.orgs, key, org, "org")?;
                Ok(Outcome::Inserted(Inserted::Created))
            }
            WriteOp::InsertProject(project) => {
                let slug = project.slug.as_bytes();
                let id = project.id.as_bytes();
                if self
                    .project_slugs
                    .get(slug)
                    .ctx("read project slug")?
                    .is_some()
                    || self
                        .projects
                        .get(id.as_slice())
                        .ctx("read project")?
                        .is_some()
                {
                    return Ok(Outcome::Inserted(Inserted::AlreadyExists));
                }
                put(&mut self.projects, id, project, "project")?;
                self.project_slugs
                    .insert(slug, id.as_slice())
                    .ctx("write project slug")?;
                Ok(Outcome::Inserted(Inserted::Created))
            }
            WriteOp::UpdateProject(project) => {
                let slug = project.slug.as_bytes();
                let id = project.id.as_bytes();
                put(&mut self.projects, id, project, "project")?;
                // A slug stays with the project that claimed it first; an update only claims
                // a slug nobody holds (so the index never points two slugs' owners at once).
                if self
                    .project_slugs
                    .get(slug)
                    .ctx("read project slug")?
                    .is_none()
                {
                    self.project_slugs
                        .insert(slug, id.as_slice())
                        .ctx("write project slug")?;
                }
                Ok(Outcome::Done)
            }
            WriteOp::PutClient(client) => {
                let key = [
                    client.project_id.as_bytes().as_slice(),
                    client.client_id.as_bytes(),
                ]
                .concat();
                put(&mut self.clients, &key, client, "client")?;
                Ok(Outcome::Done)
            }
            WriteOp::PutSecretKey(key) => {
                let k = [key.project_id.as_bytes().as_slice(), key.id.as_bytes()].concat();
                put(&mut self.secret_keys, &k, key, "secret key")?;
                Ok(Outcome::Done)
            }
            WriteOp::PutAdminToken(token) => {
                put(
                    &mut self.admin_tokens,
                    token.id.as_bytes(),
                    token,
                    "admin token",
                )?;
                Ok(Outcome::Done)
            }
            WriteOp::SetFlag(name, value) => {
                put(&mut self.flags, name.as_bytes(), value, "flag")?;
                Ok(Outcome::Done)
            }
            WriteOp::SetConfigEpoch(epoch) => {
                put(&mut self.flags, CONFIG_EPOCH_KEY, epoch, "config epoch")?;
                Ok(Outcome::Done)
            }
            WriteOp::InsertEndUser(user) => {
                let key = end_user_key(user.project_id, &user.external_id);
                if self
                    .end_users
                    .get(key.as_slice())
                    .ctx("read end user")?
                    .is_some()
                {
                    return Ok(Outcome::Inserted(Inserted::AlreadyExists));
                }
                put(&mut self.end_users, &key, user, "end user")?;
                Ok(Outcome::Inserted(Inserted::Created))
            }
            WriteOp::CasEndUser(user, expected) => {
                let key = end_user_key(user.project_id, &user.external_id);
                let Some(stored) = get_owned(&self.end_users, &key, "end user")? else {
                    return Ok(Outcome::Swapped(false));
                };
                let stored: EndUser = decode(&stored, "end user")?;
                if stored.version != *expected {
                    return Ok(Outcome::Swapped(false));
                }
                put(&mut self.end_users, &key, user, "end user")?;
                Ok(Outcome::Swapped(true))
            }
            WriteOp::DeleteEndUser(key) => {
                self.end_users
                    .remove(key.as_slice())
                    .ctx("delete end user")?;
                Ok(Outcome::Done)
            }
            WriteOp::InsertSession(session) => {
                // Re-inserting an id must not leave the old row's index entries behind.
                if let Some(old) = get_owned(&self.sessions, session.id.as_bytes(), "session")? {
                    let old: Session = decode(&old, "session")?;
                    self.unindex_session(&old)?;
                }
                put(
                    &mut self.sessions,
                    session.id.as_bytes(),
                    session,
                    "session",
                )?;
                self.user_sessions
                    .insert(user_session_key(session).as_slice(), ())
                    .ctx("write user session index")?;
                self.session_expiry
                    .insert(expiry_key(session).as_slice(), ())
                    .ctx("write session expiry index")?;
                Ok(Outcome::Done)
            }
            WriteOp::CasSession(session, expected) => {
                let id = session.id.as_bytes();
                let Some(stored) = get_owned(&self.sessions, id, "session")? else {
                    return Ok(Outcome::Swapped(false));
                };
                let stored: Session = decode(&stored, "session")?;
                // An expired row counts as absent, exactly as readers see it.
                if stored.version != *expected || stored.store_expires_at() <= now {
                    return Ok(Outcome::Swapped(false));
                }
                put(&mut self.sessions, id, session, "session")?;
                let (old_user, new_user) = (user_session_key(&stored), user_session_key(session));
                if old_user != new_user {
                    self.user_sessions
                        .remove(old_user.as_slice())
                        .ctx("move user session index")?;
                    self.user_sessions
                        .insert(new_user.as_slice(), ())
                        .ctx("move user session index")?;
                }
                let (old_expiry, new_expiry) = (expiry_key(&stored), expiry_key(session));
                if old_expiry != new_expiry {
                    self.session_expiry
                        .remove(old_expiry.as_slice())
                        .ctx("move session expiry index")?;
                    self.session_expiry
                        .insert(new_expiry.as_slice(), ())
                        .ctx("move session expiry index")?;
                }
                Ok(Outcome::Swapped(true))
            }
            WriteOp::SweepExpired { now, limit } => self.sweep(*now, *limit).map(Outcome::Swept),
            WriteOp::CreateSqlTable(table, max) => self.create_sql_table(table, *max),
            WriteOp::UpdateSqlTable(table, expected) => self.update_sql_table(table, *expected),
            WriteOp::DeleteSqlTable(project, name) => {
                let key = sql_table_key(*project, name);
                let removed = self
                    .sql_tables
                    .remove(key.as_slice())
                    .ctx("delete sql table")?;
                Ok(Outcome::Swapped(removed.is_some()))
            }
            WriteOp::PurgeSqlRows(table, limit) => self.purge_sql_rows(*table, *limit),
            WriteOp::InsertDefinition(definition, max) => self.insert_definition(definition, *max),
            WriteOp::DeleteDefinition(project, id) => {
                let key = [project.as_bytes().as_slice(), id.as_bytes()].concat();
                let removed = self
                    .sql_definitions
                    .remove(key.as_slice())
                    .ctx("delete sql definition")?;
                Ok(Outcome::Swapped(removed.is_some()))
            }
            WriteOp::ReplaceDefinition(definition) => {
                self.replace_definition(definition).map(Outcome::Replaced)
            }
            WriteOp::InsertRow(insert) => self.insert_row(insert).map(Outcome::Row),
            WriteOp::UpdateRow(update) => self.update_row(update).map(Outcome::Row),
            WriteOp::DeleteRow(delete) => self.delete_row(delete).map(Outcome::Row),
            WriteOp::PutIndexEntry {
                table,
                addr,
                row,
                entry,
            } => self
                .put_index_entry(*table, addr, row, entry)
                .map(Outcome::Row),
            WriteOp::RemoveIndexEntry {
                table,
                addr,
                row,
                entry,
            } => self
                .remove_index_entry(*table, addr, row.as_deref(), entry)
                .map(Outcome::Row),
            WriteOp::PurgeIndex {
                table,
                index,
                limit,
            } => {
                let prefix = index_prefix(*table, index);
                let keys = keys_with_prefix(&self.sql_index, &prefix, *limit, "index entries")?;
                for key in &keys {
                    self.sql_index
                        .remove(key.as_slice())
                        .ctx("purge index entry")?;
                }
                Ok(Outcome::Count(keys.len() as u64))
            }
        }
    }

    pub(super) fn unindex_session(&mut self, session: &Session) -> Result<(), StoreError> {
        self.user_sessions
            .remove(user_session_key(session).as_slice())
            .ctx("remove user session index")?;
        self.session_expiry
            .remove(expiry_key(session).as_slice())
            .ctx("remove session expiry index")?;
        Ok(())
    }

    pub(super) fn sweep(&mut self, now: UnixSecs, limit: usize) -> Result<SweptBatch, StoreError> {
        // Expiry keys sort by time, so everything due is the range below `now + 1`.
        let end = time_key(now.saturating_add(1));
        let due = self
            .session_expiry
            .range::<&[u8]>(..end.as_slice())
            .ctx("scan session expiry")?
            .take(limit)
            .map(|entry| entry.map(|(key, _)| key.value().to_vec()))
            .collect::<Result<Vec<_>, _>>()
            .ctx("scan session expiry")?;
        let mut batch = SweptBatch {
            scanned: due.len(),
            ..SweptBatch::default()
        };
        for key in &due {
            self.session_expiry
                .remove(key.as_slice())
                .ctx("remove session expiry index")?;
            batch.index_entries += 1;
            let Some(id) = trailing_uuid(key) else {
                continue;
            };
            let Some(bytes) = get_owned(&self.sessions, id.as_bytes(), "session")? else {
                continue;
            };
            match decode::<Session>(&bytes, "session") {
                // Only delete what is really expired: a stale entry may belong to a session
                // whose expiry was since extended (its current entry sorts later).
                Ok(session) if session.store_expires_at() <= now => {
                    self.sessions
                        .remove(id.as_bytes().as_slice())
                        .ctx("delete session")?;
                    if self
                        .user_sessions
                        .remove(user_session_key(&session).as_slice())
                        .ctx("remove user session index")?
                        .is_some()
                    {
                        batch.index_entries += 1;
                    }
                    batch.sessions += 1;
                }
                Ok(_) => {}
                // Dropping the expiry entry keeps the sweeper from spinning on it; the row
                // itself is left for an operator to look at.
                Err(e) => {
                    tracing::warn!(session = %id, error = %e, "undecodable session left in place")
                }
            }
        }
        Ok(batch)
    }
}
