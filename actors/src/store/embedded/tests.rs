use super::*;
use redb::ReadableTableMetadata;

fn user(project_id: Uuid, external_id: &str) -> EndUser {
    EndUser {
        id: Uuid::new_v4(),
        project_id,
        external_id: external_id.to_owned(),
        password_hash: "$argon2id$test".into(),
        disabled: false,
        created_at: 1_700_000_000,
        version: 1,
    }
}

fn session(project_id: Uuid, end_user_id: Uuid, created_at: i64, expires: i64) -> Session {
    Session {
        id: Uuid::new_v4(),
        project_id,
        end_user_id,
        external_id: "u".into(),
        device_id: "d".into(),
        user_agent: None,
        ip: None,
        created_at,
        last_used_at: created_at,
        counter: 0,
        rotated_at: created_at,
        access_expires_at: expires,
        prev_access_expires_at: expires,
        refresh_expires_at: expires,
        absolute_expires_at: expires,
        key_id: "k1".into(),
        revoked_at: None,
        version: 1,
    }
}

fn table_len(store: &EmbeddedStore, table: TableDefinition<Bytes, ()>) -> u64 {
    let txn = store.db.begin_read().expect("test read txn");
    txn.open_table(table)
        .expect("test open table")
        .len()
        .expect("test table len")
}

fn sessions_len(store: &EmbeddedStore) -> u64 {
    let txn = store.db.begin_read().expect("test read txn");
    txn.open_table(SESSIONS)
        .expect("test open table")
        .len()
        .expect("test table len")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_batches_concurrent_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(EmbeddedStore::open(dir.path()).expect("open"));
    let project = Uuid::new_v4();
    let before = store.commits();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200 {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            store
                .insert_end_user(&user(project, &format!("u{i}")))
                .await
        });
    }
    while let Some(result) = tasks.join_next().await {
        let inserted = result.expect("task").expect("insert");
        assert_eq!(inserted, Inserted::Created);
    }
    let commits = store.commits() - before;
    assert!(
        commits < 200,
        "200 concurrent writes took {commits} commits: no batching"
    );
    for i in 0..200 {
        let found = store
            .get_end_user(project, &format!("u{i}"))
            .await
            .expect("get");
        assert!(found.is_some(), "user u{i} acknowledged but not stored");
    }
}

#[tokio::test]
async fn reopen_after_drop_sees_the_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let project = Uuid::new_v4();
    let u = user(project, "kept");
    {
        let store = EmbeddedStore::open(dir.path()).expect("open");
        assert_eq!(
            store.insert_end_user(&u).await.expect("insert"),
            Inserted::Created
        );
        store.set_flag("maintenance", true).await.expect("flag");
    }
    let store = EmbeddedStore::open(dir.path()).expect("reopen");
    assert_eq!(
        store.get_end_user(project, "kept").await.expect("get"),
        Some(u)
    );
    assert_eq!(
        store.get_flag("maintenance").await.expect("flag"),
        Some(true)
    );
}

#[tokio::test]
async fn second_open_of_the_same_dir_fails_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _first = EmbeddedStore::open(dir.path()).expect("open");
    match EmbeddedStore::open(dir.path()) {
        Err(StoreError::Unavailable(msg)) => {
            assert!(msg.contains("already open"), "unclear message: {msg}")
        }
        other => panic!("second open must be refused, got {other:?}"),
    }
}

#[test]
fn other_format_version_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(EmbeddedStore::open(dir.path()).expect("open"));
    {
        let db = Database::create(dir.path().join(FILE_NAME)).expect("raw open");
        let txn = db.begin_write().expect("txn");
        txn.open_table(META)
            .expect("meta")
            .insert(FORMAT_VERSION_KEY, 2)
            .expect("write version");
        txn.commit().expect("commit");
    }
    match EmbeddedStore::open(dir.path()) {
        Err(StoreError::Unavailable(msg)) => {
            assert!(msg.contains("format version 2"), "unclear message: {msg}")
        }
        other => panic!("version 2 must be refused, got {other:?}"),
    }
}

#[test]
fn foreign_redb_file_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let db = Database::create(dir.path().join(FILE_NAME)).expect("raw open");
        let txn = db.begin_write().expect("txn");
        let def: TableDefinition<&str, &str> = TableDefinition::new("something_else");
        txn.open_table(def)
            .expect("table")
            .insert("a", "b")
            .expect("write");
        txn.commit().expect("commit");
    }
    match EmbeddedStore::open(dir.path()) {
        Err(StoreError::Unavailable(msg)) => {
            assert!(
                msg.contains("not a commonrock store"),
                "unclear message: {msg}"
            )
        }
        other => panic!("foreign file must be refused, got {other:?}"),
    }
}

#[tokio::test]
async fn sweeper_removes_expired_sessions_and_their_index_entries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::open(dir.path()).expect("open");
    let now = unix_now();
    let (project, user_id) = (Uuid::new_v4(), Uuid::new_v4());
    let live = session(project, user_id, now - 10, now + 3600);
    for s in [
        session(project, user_id, now - 30, now - 5),
        session(project, user_id, now - 20, now - 1),
        live.clone(),
    ] {
        store.insert_session(&s).await.expect("insert");
    }
    assert_eq!(sessions_len(&store), 3);

    let stats = store.sweep_expired(now).await.expect("sweep");
    assert_eq!(stats.sessions, 2);
    assert_eq!(stats.index_entries, 4);
    assert_eq!(sessions_len(&store), 1);
    assert_eq!(table_len(&store, USER_SESSIONS), 1);
    assert_eq!(table_len(&store, SESSION_EXPIRY), 1);
    assert_eq!(
        store.get_session(live.id).await.expect("get"),
        Some(live.clone())
    );
    assert_eq!(
        store
            .list_user_sessions(project, user_id)
            .await
            .expect("list"),
        vec![live]
    );
    // Nothing left to do.
    assert_eq!(store.sweep_expired(now).await.expect("sweep").sessions, 0);
}

#[tokio::test]
async fn sweep_works_through_a_backlog_in_bounded_batches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(EmbeddedStore::open(dir.path()).expect("open"));
    let now = unix_now();
    let project = Uuid::new_v4();
    let count = SWEEP_BATCH + 10;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..count {
        let store = Arc::clone(&store);
        let s = session(project, Uuid::new_v4(), now - 100, now - 1 - i as i64 % 7);
        tasks.spawn(async move { store.insert_session(&s).await });
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("task").expect("insert");
    }
    let stats = store.sweep_expired(now).await.expect("sweep");
    assert_eq!(stats.sessions, count as u64);
    assert_eq!(stats.batches, 2);
    assert_eq!(sessions_len(&store), 0);
    assert_eq!(table_len(&store, USER_SESSIONS), 0);
    assert_eq!(table_len(&store, SESSION_EXPIRY), 0);
}

#[tokio::test]
async fn cas_session_moves_the_expiry_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::open(dir.path()).expect("open");
    let now = unix_now();
    let s = session(Uuid::new_v4(), Uuid::new_v4(), now, now + 60);
    store.insert_session(&s).await.expect("insert");
    let mut extended = s.clone();
    extended.refresh_expires_at = now + 7200;
    extended.absolute_expires_at = now + 7200;
    extended.version = 2;
    assert!(store.cas_session(&extended, 1).await.expect("cas"));
    assert_eq!(table_len(&store, SESSION_EXPIRY), 1);
    // The sweep at the old expiry must keep it; the one after the new expiry removes it.
    assert_eq!(
        store.sweep_expired(now + 60).await.expect("sweep").sessions,
        0
    );
    assert_eq!(
        store
            .sweep_expired(now + 7200)
            .await
            .expect("sweep")
            .sessions,
        1
    );
    assert_eq!(table_len(&store, SESSION_EXPIRY), 0);
}

#[tokio::test]
async fn spawned_sweeper_runs_and_stops_with_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(EmbeddedStore::open(dir.path()).expect("open"));
    let now = unix_now();
    let expired = session(Uuid::new_v4(), Uuid::new_v4(), now - 10, now - 1);
    store.insert_session(&expired).await.expect("insert");
    let sweeper = store.spawn_sweeper(Duration::from_millis(10));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while sessions_len(&store) > 0 {
        assert!(tokio::time::Instant::now() < deadline, "sweeper never ran");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(store);
    tokio::time::timeout(Duration::from_secs(5), sweeper)
        .await
        .expect("sweeper must stop once the store is dropped")
        .expect("sweeper task");
}

#[tokio::test]
async fn a_corrupt_record_fails_only_its_own_op() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::open(dir.path()).expect("open");
    let project = Uuid::new_v4();
    let broken = user(project, "broken");
    {
        let txn = store.db.begin_write().expect("txn");
        txn.open_table(END_USERS)
            .expect("table")
            .insert(
                end_user_key(project, "broken").as_slice(),
                &b"{not json"[..],
            )
            .expect("write");
        txn.commit().expect("commit");
    }
    // Drive one batch directly so the three ops certainly share a transaction.
    let mut replies = Vec::new();
    let jobs = [
        WriteOp::InsertEndUser(user(project, "a")),
        WriteOp::CasEndUser(broken, 1),
        WriteOp::InsertEndUser(user(project, "b")),
    ]
    .into_iter()
    .map(|op| {
        let (reply, rx) = oneshot::channel();
        replies.push(rx);
        Job { op, reply }
    })
    .collect();
    run_batch(&store.db, jobs, &store.commits);
    let mut outcomes = Vec::new();
    for rx in replies {
        outcomes.push(rx.await.expect("reply"));
    }
    assert!(matches!(
        outcomes[0],
        Ok(Outcome::Inserted(Inserted::Created))
    ));
    assert!(
        matches!(outcomes[1], Err(StoreError::Corrupt(_))),
        "{:?}",
        outcomes[1]
    );
    assert!(matches!(
        outcomes[2],
        Ok(Outcome::Inserted(Inserted::Created))
    ));
    assert!(store
        .get_end_user(project, "a")
        .await
        .expect("get")
        .is_some());
    assert!(store
        .get_end_user(project, "b")
        .await
        .expect("get")
        .is_some());
}
