//! The behaviour every [`Store`] implementation must have, as executable checks: the embedded
//! store's tests run them, and so will any other backend's (ScyllaDB). Compiled in normal
//! builds on purpose so other crates' tests can call it; it uses no dev-dependencies.
//!
//! Each check exercises one behaviour and panics with a message naming the store kind and the
//! broken promise. Checks use fresh random ids and slugs, so they are independent of each other
//! and of whatever else the store holds: they can run against a shared, non-empty store.

use std::future::Future;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::task::JoinSet;
use uuid::Uuid;

use super::{Store, StoreError};
use crate::model::{
    AdminToken, EndUser, Inserted, Org, Project, ProjectSettings, PublicClient, SecretKey, Session,
    UnixSecs,
};

/// Runs every check below in turn.
pub async fn run_all(store: Arc<dyn Store>) {
    let s = store.as_ref();
    ping_answers(s).await;
    orgs_insert_if_absent_by_slug(s).await;
    projects_unique_by_slug(s).await;
    update_project_round_trip(s).await;
    clients_put_and_list_per_project(s).await;
    secret_keys_put_and_list_per_project(s).await;
    admin_tokens_put_and_list(s).await;
    flags_default_none_then_set(s).await;
    config_epoch_round_trip(s).await;
    end_user_insert_is_unique_and_case_sensitive(s).await;
    end_user_concurrent_inserts_have_one_winner(&store).await;
    end_user_cas(s).await;
    end_user_delete(s).await;
    session_round_trip(s).await;
    session_cas(s).await;
    session_concurrent_cas_has_one_winner(&store).await;
    expired_session_is_invisible(s).await;
    list_user_sessions_oldest_first_without_expired(s).await;
}

/// The configuration epoch reads back the last value written (it is shared by the whole
/// store, so only "equals what was just written" can be asserted on a shared store).
pub async fn config_epoch_round_trip(store: &dyn Store) {
    let k = store.kind();
    for _ in 0..2 {
        let epoch = Uuid::new_v4();
        ok(k, "set_config_epoch", store.set_config_epoch(epoch).await);
        assert_eq!(
            ok(k, "get_config_epoch", store.get_config_epoch().await),
            Some(epoch),
            "[{k}] get_config_epoch must return the epoch just written"
        );
    }
}

/// `ping` succeeds and `kind` is a non-empty name.
pub async fn ping_answers(store: &dyn Store) {
    let k = store.kind();
    assert!(!k.is_empty(), "store kind must be a non-empty name");
    ok(k, "ping", store.ping().await);
}

/// Orgs are insert-if-absent by slug: a second org with a taken slug is not stored.
pub async fn orgs_insert_if_absent_by_slug(store: &dyn Store) {
    let k = store.kind();
    let first = org(&unique("org"));
    let mut clash = org(&first.slug);
    clash.name = "clash".into();
    assert_eq!(
        ok(k, "insert_org", store.insert_org(&first).await),
        Inserted::Created,
        "[{k}] insert_org of a new slug must return Created"
    );
    assert_eq!(
        ok(k, "insert_org", store.insert_org(&clash).await),
        Inserted::AlreadyExists,
        "[{k}] insert_org of a taken slug must return AlreadyExists"
    );
    let other = org(&unique("org"));
    assert_eq!(
        ok(k, "insert_org", store.insert_org(&other).await),
        Inserted::Created
    );
    let listed = ok(k, "list_orgs", store.list_orgs().await);
    let with_slug: Vec<&Org> = listed.iter().filter(|o| o.slug == first.slug).collect();
    assert_eq!(
        with_slug,
        vec![&first],
        "[{k}] list_orgs must hold exactly the first org of a slug, unchanged"
    );
    assert!(
        listed.contains(&other),
        "[{k}] list_orgs must hold every inserted org"
    );
}

/// Projects are unique by slug; a retried insert of the same project is AlreadyExists too.
pub async fn projects_unique_by_slug(store: &dyn Store) {
    let k = store.kind();
    let org_id = Uuid::new_v4();
    let first = project(org_id, &unique("proj"));
    let clash = project(org_id, &first.slug);
    assert_eq!(
        ok(k, "insert_project", store.insert_project(&first).await),
        Inserted::Created,
        "[{k}] insert_project of a new slug must return Created"
    );
    assert_eq!(
        ok(k, "insert_project", store.insert_project(&clash).await),
        Inserted::AlreadyExists,
        "[{k}] insert_project of a taken slug (other id) must return AlreadyExists"
    );
    assert_eq!(
        ok(k, "insert_project", store.insert_project(&first).await),
        Inserted::AlreadyExists,
        "[{k}] re-inserting the same project must return AlreadyExists"
    );
    let other = project(org_id, &unique("proj"));
    assert_eq!(
        ok(k, "insert_project", store.insert_project(&other).await),
        Inserted::Created
    );
    let listed = ok(k, "list_projects", store.list_projects().await);
    let with_slug: Vec<&Project> = listed.iter().filter(|p| p.slug == first.slug).collect();
    assert_eq!(
        with_slug,
        vec![&first],
        "[{k}] list_projects must hold exactly the first project of a slug, unchanged"
    );
    assert!(
        listed.contains(&other),
        "[{k}] list_projects must hold every inserted project"
    );
}

/// `update_project` overwrites settings and flags, and the slug stays taken.
pub async fn update_project_round_trip(store: &dyn Store) {
    let k = store.kind();
    let original = project(Uuid::new_v4(), &unique("proj"));
    ok(k, "insert_project", store.insert_project(&original).await);
    let mut updated = original.clone();
    updated.name = "renamed".into();
    updated.maintenance = true;
    updated.settings.access_ttl_s = 600;
    updated.settings.rate_limits.per_client.burst = 7;
    ok(k, "update_project", store.update_project(&updated).await);
    let listed = ok(k, "list_projects", store.list_projects().await);
    let by_id: Vec<&Project> = listed.iter().filter(|p| p.id == original.id).collect();
    assert_eq!(
        by_id,
        vec![&updated],
        "[{k}] list_projects must return the updated project, once"
    );
    let clash = project(Uuid::new_v4(), &original.slug);
    assert_eq!(
        ok(k, "insert_project", store.insert_project(&clash).await),
        Inserted::AlreadyExists,
        "[{k}] the slug of an updated project must stay taken"
    );
}

/// Clients are listed per project only; a second put of a client overwrites it.
pub async fn clients_put_and_list_per_project(store: &dyn Store) {
    let k = store.kind();
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let mut a1 = client(a, &unique("client"));
    let a2 = client(a, &unique("client"));
    let b1 = client(b, &unique("client"));
    for c in [&a1, &a2, &b1] {
        ok(k, "put_client", store.put_client(c).await);
    }
    a1.revoked_at = Some(now() - 5);
    ok(k, "put_client", store.put_client(&a1).await);

    let mut listed = ok(k, "list_clients", store.list_clients(a).await);
    listed.sort_by(|x, y| x.client_id.cmp(&y.client_id));
    let mut expected = vec![a1, a2];
    expected.sort_by(|x, y| x.client_id.cmp(&y.client_id));
    assert_eq!(
        listed, expected,
        "[{k}] list_clients must return exactly the project's clients, latest put winning"
    );
    assert_eq!(
        ok(k, "list_clients", store.list_clients(b).await),
        vec![b1],
        "[{k}] list_clients must not mix projects"
    );
    assert!(
        ok(k, "list_clients", store.list_clients(Uuid::new_v4()).await).is_empty(),
        "[{k}] list_clients of an unknown project must be empty"
    );
}

/// Secret keys are listed per project only; a second put of a key overwrites it.
pub async fn secret_keys_put_and_list_per_project(store: &dyn Store) {
    let k = store.kind();
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let mut a1 = secret_key(a);
    let a2 = secret_key(a);
    let b1 = secret_key(b);
    for key in [&a1, &a2, &b1] {
        ok(k, "put_secret_key", store.put_secret_key(key).await);
    }
    a1.revoked_at = Some(now() - 5);
    ok(k, "put_secret_key", store.put_secret_key(&a1).await);

    let mut listed = ok(k, "list_secret_keys", store.list_secret_keys(a).await);
    listed.sort_by_key(|key| key.id);
    let mut expected = vec![a1, a2];
    expected.sort_by_key(|key| key.id);
    assert_eq!(
        listed, expected,
        "[{k}] list_secret_keys must return exactly the project's keys, latest put winning"
    );
    assert_eq!(
        ok(k, "list_secret_keys", store.list_secret_keys(b).await),
        vec![b1],
        "[{k}] list_secret_keys must not mix projects"
    );
}

/// Admin tokens round-trip; a second put (revocation) overwrites.
pub async fn admin_tokens_put_and_list(store: &dyn Store) {
    let k = store.kind();
    let mut token = AdminToken {
        id: Uuid::new_v4(),
        name: unique("token"),
        token_hash: [3; 32],
        token_prefix: "cra_test".into(),
        created_at: now(),
        revoked_at: None,
    };
    ok(k, "put_admin_token", store.put_admin_token(&token).await);
    let listed = ok(k, "list_admin_tokens", store.list_admin_tokens().await);
    assert!(
        listed.contains(&token),
        "[{k}] list_admin_tokens must return a put token unchanged"
    );
    token.revoked_at = Some(now());
    ok(k, "put_admin_token", store.put_admin_token(&token).await);
    let listed = ok(k, "list_admin_tokens", store.list_admin_tokens().await);
    let by_id: Vec<&AdminToken> = listed.iter().filter(|t| t.id == token.id).collect();
    assert_eq!(
        by_id,
        vec![&token],
        "[{k}] a second put_admin_token must overwrite the first"
    );
}

/// An unknown flag reads as None; set values read back.
pub async fn flags_default_none_then_set(store: &dyn Store) {
    let k = store.kind();
    let name = unique("flag");
    assert_eq!(
        ok(k, "get_flag", store.get_flag(&name).await),
        None,
        "[{k}] a never-set flag must read as None"
    );
    ok(k, "set_flag", store.set_flag(&name, true).await);
    assert_eq!(ok(k, "get_flag", store.get_flag(&name).await), Some(true));
    ok(k, "set_flag", store.set_flag(&name, false).await);
    assert_eq!(
        ok(k, "get_flag", store.get_flag(&name).await),
        Some(false),
        "[{k}] set_flag must overwrite"
    );
}

/// Signup uniqueness: one user per (project, external_id), compared byte for byte.
pub async fn end_user_insert_is_unique_and_case_sensitive(store: &dyn Store) {
    let k = store.kind();
    let project = Uuid::new_v4();
    let first = end_user(project, "User-1");
    assert_eq!(
        ok(
            k,
            "get_end_user",
            store.get_end_user(project, "User-1").await
        ),
        None,
        "[{k}] an unknown end user must read as None"
    );
    assert_eq!(
        ok(k, "insert_end_user", store.insert_end_user(&first).await),
        Inserted::Created
    );
    let clash = end_user(project, "User-1");
    assert_eq!(
        ok(k, "insert_end_user", store.insert_end_user(&clash).await),
        Inserted::AlreadyExists,
        "[{k}] a second user with the same external_id must be AlreadyExists"
    );
    assert_eq!(
        ok(
            k,
            "get_end_user",
            store.get_end_user(project, "User-1").await
        ),
        Some(first.clone()),
        "[{k}] AlreadyExists must leave the first user unchanged"
    );
    let lower = end_user(project, "user-1");
    assert_eq!(
        ok(k, "insert_end_user", store.insert_end_user(&lower).await),
        Inserted::Created,
        "[{k}] external ids are case-sensitive: user-1 differs from User-1"
    );
    assert_eq!(
        ok(
            k,
            "get_end_user",
            store.get_end_user(project, "user-1").await
        ),
        Some(lower)
    );
    let elsewhere = end_user(Uuid::new_v4(), "User-1");
    assert_eq!(
        ok(
            k,
            "insert_end_user",
            store.insert_end_user(&elsewhere).await
        ),
        Inserted::Created,
        "[{k}] the same external_id in another project is another user"
    );
}

/// 50 concurrent signups of one external_id: exactly one is Created, and it is the one stored.
pub async fn end_user_concurrent_inserts_have_one_winner(store: &Arc<dyn Store>) {
    let k = store.kind();
    let project = Uuid::new_v4();
    let external_id = unique("racer");
    let results = concurrently(50, |_| {
        let store = Arc::clone(store);
        let user = end_user(project, &external_id);
        async move { (user.id, store.insert_end_user(&user).await) }
    })
    .await;
    let winners: Vec<Uuid> = results
        .into_iter()
        .filter_map(|(id, r)| (ok(k, "insert_end_user", r) == Inserted::Created).then_some(id))
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "[{k}] 50 concurrent inserts of one external_id must create exactly one user"
    );
    let stored = ok(
        k,
        "get_end_user",
        store.get_end_user(project, &external_id).await,
    );
    assert_eq!(
        stored.map(|u| u.id),
        Some(winners[0]),
        "[{k}] the stored user must be the one whose insert returned Created"
    );
}

/// CAS writes only over the expected version, and never creates a user.
pub async fn end_user_cas(store: &dyn Store) {
    let k = store.kind();
    let project = Uuid::new_v4();
    let original = end_user(project, &unique("cas"));
    ok(k, "insert_end_user", store.insert_end_user(&original).await);

    let mut next = original.clone();
    next.disabled = true;
    next.version = original.version + 1;
    assert!(
        ok(
            k,
            "cas_end_user",
            store.cas_end_user(&next, original.version).await
        ),
        "[{k}] cas_end_user with the stored version must succeed"
    );
    assert_eq!(
        ok(
            k,
            "get_end_user",
            store.get_end_user(project, &original.external_id).await
        ),
        Some(next.clone())
    );

    let mut stale = original.clone();
    stale.password_hash = "$argon2id$stale".into();
    stale.version = original.version + 1;
    assert!(
        !ok(
            k,
            "cas_end_user",
            store.cas_end_user(&stale, original.version).await
        ),
        "[{k}] cas_end_user with a stale version must fail"
    );
    assert_eq!(
        ok(
            k,
            "get_end_user",
            store.get_end_user(project, &original.external_id).await
        ),
        Some(next),
        "[{k}] a failed cas_end_user must not write"
    );

    let absent = end_user(project, &unique("absent"));
    assert!(
        !ok(
            k,
            "cas_end_user",
            store.cas_end_user(&absent, absent.version).await
        ),
        "[{k}] cas_end_user of an absent user must fail"
    );
    assert_eq!(
        ok(
            k,
            "get_end_user",
            store.get_end_user(project, &absent.external_id).await
        ),
        None,
        "[{k}] cas_end_user must never create a user"
    );
}

/// Delete removes the user (deleting again is fine) and frees the external_id.
pub async fn end_user_delete(store: &dyn Store) {
    let k = store.kind();
    let project = Uuid::new_v4();
    let user = end_user(project, &unique("gone"));
    ok(k, "insert_end_user", store.insert_end_user(&user).await);
    ok(
        k,
        "delete_end_user",
        store.delete_end_user(project, &user.external_id).await,
    );
    assert_eq!(
        ok(
            k,
            "get_end_user",
            store.get_end_user(project, &user.external_id).await
        ),
        None,
        "[{k}] a deleted end user must read as None"
    );
    ok(
        k,
        "delete_end_user",
        store.delete_end_user(project, &user.external_id).await,
    );
    assert_eq!(
        ok(k, "insert_end_user", store.insert_end_user(&user).await),
        Inserted::Created,
        "[{k}] a deleted external_id must be free again"
    );
}

/// A session reads back with every field equal.
pub async fn session_round_trip(store: &dyn Store) {
    let k = store.kind();
    let t = now();
    let mut s = session(Uuid::new_v4(), Uuid::new_v4(), t - 60);
    s.user_agent = Some("Mozilla/5.0 (conformance) ünïcode".into());
    s.ip = Some("2001:db8::1".into());
    s.counter = 7;
    s.version = 9;
    assert_eq!(
        ok(k, "get_session", store.get_session(s.id).await),
        None,
        "[{k}] an unknown session must read as None"
    );
    ok(k, "insert_session", store.insert_session(&s).await);
    assert_eq!(
        ok(k, "get_session", store.get_session(s.id).await),
        Some(s.clone()),
        "[{k}] get_session must return the inserted session unchanged"
    );
    let mut revoked = session(s.project_id, s.end_user_id, t - 30);
    revoked.revoked_at = Some(t - 1);
    ok(k, "insert_session", store.insert_session(&revoked).await);
    assert_eq!(
        ok(k, "get_session", store.get_session(revoked.id).await),
        Some(revoked),
        "[{k}] a revoked (unexpired) session must still be readable"
    );
}

/// CAS on sessions: right version writes, stale fails, absent fails and creates nothing, and
/// moving the expiry keeps or hides the session accordingly.
pub async fn session_cas(store: &dyn Store) {
    let k = store.kind();
    let t = now();
    let original = session(Uuid::new_v4(), Uuid::new_v4(), t - 60);
    ok(k, "insert_session", store.insert_session(&original).await);

    let mut rotated = original.clone();
    rotated.counter += 1;
    rotated.rotated_at = t;
    rotated.last_used_at = t;
    rotated.prev_access_expires_at = original.access_expires_at;
    rotated.access_expires_at = t + 7_200;
    rotated.refresh_expires_at = t + 60 * 86_400;
    rotated.version = original.version + 1;
    assert!(
        ok(
            k,
            "cas_session",
            store.cas_session(&rotated, original.version).await
        ),
        "[{k}] cas_session with the stored version must succeed"
    );
    assert_eq!(
        ok(k, "get_session", store.get_session(original.id).await),
        Some(rotated.clone()),
        "[{k}] get_session must return what cas_session wrote"
    );

    let mut stale = original.clone();
    stale.counter += 5;
    stale.version = original.version + 1;
    assert!(
        !ok(
            k,
            "cas_session",
            store.cas_session(&stale, original.version).await
        ),
        "[{k}] cas_session with a stale version must fail"
    );
    assert_eq!(
        ok(k, "get_session", store.get_session(original.id).await),
        Some(rotated.clone()),
        "[{k}] a failed cas_session must not write"
    );

    let absent = session(Uuid::new_v4(), Uuid::new_v4(), t);
    assert!(
        !ok(
            k,
            "cas_session",
            store.cas_session(&absent, absent.version).await
        ),
        "[{k}] cas_session of an absent session must fail"
    );
    assert_eq!(
        ok(k, "get_session", store.get_session(absent.id).await),
        None,
        "[{k}] cas_session must never create a session"
    );

    // Ending a session by moving its expiry into the past hides it like any expired one.
    let mut ended = rotated.clone();
    ended.access_expires_at = t - 10;
    ended.prev_access_expires_at = t - 20;
    ended.refresh_expires_at = t - 10;
    ended.absolute_expires_at = t - 10;
    ended.version = rotated.version + 1;
    assert!(ok(
        k,
        "cas_session",
        store.cas_session(&ended, rotated.version).await
    ));
    assert_eq!(
        ok(k, "get_session", store.get_session(original.id).await),
        None,
        "[{k}] a session whose cas moved store_expires_at into the past must be invisible"
    );
}

/// 32 concurrent CAS from one version: exactly one wins, and the stored session is its write.
pub async fn session_concurrent_cas_has_one_winner(store: &Arc<dyn Store>) {
    let k = store.kind();
    let original = session(Uuid::new_v4(), Uuid::new_v4(), now() - 60);
    ok(k, "insert_session", store.insert_session(&original).await);
    let results = concurrently(32, |i| {
        let store = Arc::clone(store);
        let mut next = original.clone();
        next.counter = original.counter + 1 + i as u64;
        next.version = original.version + 1;
        async move {
            (
                next.counter,
                store.cas_session(&next, original.version).await,
            )
        }
    })
    .await;
    let winners: Vec<u64> = results
        .into_iter()
        .filter_map(|(counter, r)| ok(k, "cas_session", r).then_some(counter))
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "[{k}] 32 concurrent cas_session from one version must have exactly one winner"
    );
    let stored = ok(k, "get_session", store.get_session(original.id).await);
    assert_eq!(
        stored.map(|s| s.counter),
        Some(winners[0]),
        "[{k}] the stored session must be the winning write"
    );
}

/// A session whose `store_expires_at` has passed reads as absent, sweeper or not.
pub async fn expired_session_is_invisible(store: &dyn Store) {
    let k = store.kind();
    let t = now();
    let mut s = session(Uuid::new_v4(), Uuid::new_v4(), t - 3_600);
    expire(&mut s, t);
    assert!(s.store_expires_at() <= t);
    ok(k, "insert_session", store.insert_session(&s).await);
    assert_eq!(
        ok(k, "get_session", store.get_session(s.id).await),
        None,
        "[{k}] a session past store_expires_at must be invisible"
    );
    assert!(
        !ok(k, "cas_session", store.cas_session(&s, s.version).await),
        "[{k}] cas_session of an expired session must fail like an absent one"
    );
}

/// Only that user's sessions of that project, oldest first, revoked included, expired not.
pub async fn list_user_sessions_oldest_first_without_expired(store: &dyn Store) {
    let k = store.kind();
    let t = now();
    let (project, other_project) = (Uuid::new_v4(), Uuid::new_v4());
    let (user, other_user) = (Uuid::new_v4(), Uuid::new_v4());
    let oldest = session(project, user, t - 300);
    let mut middle = session(project, user, t - 200);
    middle.revoked_at = Some(t - 50);
    let newest = session(project, user, t - 100);
    let mut expired = session(project, user, t - 400);
    expire(&mut expired, t);
    let not_mine = session(project, other_user, t - 250);
    let other_tenant = session(other_project, user, t - 250);
    // Inserted out of order: the order must come from created_at, not insertion.
    for s in [
        &newest,
        &expired,
        &oldest,
        &not_mine,
        &middle,
        &other_tenant,
    ] {
        ok(k, "insert_session", store.insert_session(s).await);
    }
    assert_eq!(
        ok(
            k,
            "list_user_sessions",
            store.list_user_sessions(project, user).await
        ),
        vec![oldest, middle, newest],
        "[{k}] list_user_sessions must return the user's unexpired sessions, oldest first"
    );
    assert_eq!(
        ok(
            k,
            "list_user_sessions",
            store.list_user_sessions(project, other_user).await
        ),
        vec![not_mine],
        "[{k}] list_user_sessions must not mix users"
    );
    assert_eq!(
        ok(
            k,
            "list_user_sessions",
            store.list_user_sessions(other_project, user).await
        ),
        vec![other_tenant],
        "[{k}] list_user_sessions must not mix projects"
    );
    assert!(
        ok(
            k,
            "list_user_sessions",
            store.list_user_sessions(project, Uuid::new_v4()).await
        )
        .is_empty(),
        "[{k}] list_user_sessions of an unknown user must be empty"
    );
}

// ---------------------------------------------------------------------------------------------
// Fixtures and helpers.

/// Unwraps a store result, or fails the check naming the store and the call.
#[track_caller]
fn ok<T>(kind: &str, call: &str, result: Result<T, StoreError>) -> T {
    match result {
        Ok(value) => value,
        Err(e) => panic!("[{kind}] {call} failed: {e}"),
    }
}

/// Runs `n` futures as separate tasks (truly in parallel on a multi-threaded runtime) and
/// collects their outputs; a panicking task fails the check.
async fn concurrently<T, F, Fut>(n: usize, mut make: F) -> Vec<T>
where
    T: Send + 'static,
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let mut tasks = JoinSet::new();
    for i in 0..n {
        tasks.spawn(make(i));
    }
    let mut out = Vec::with_capacity(n);
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(value) => out.push(value),
            Err(e) => panic!("conformance task failed: {e}"),
        }
    }
    out
}

fn now() -> UnixSecs {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| {
        UnixSecs::try_from(d.as_secs()).unwrap_or(UnixSecs::MAX)
    })
}

fn unique(what: &str) -> String {
    format!("conformance-{what}-{}", Uuid::new_v4().simple())
}

fn org(slug: &str) -> Org {
    Org {
        id: Uuid::new_v4(),
        slug: slug.to_owned(),
        name: "Conformance Org".into(),
        created_at: now(),
    }
}

fn project(org_id: Uuid, slug: &str) -> Project {
    Project {
        id: Uuid::new_v4(),
        org_id,
        slug: slug.to_owned(),
        name: "Conformance Project".into(),
        settings: ProjectSettings::default(),
        maintenance: false,
        created_at: now(),
    }
}

fn client(project_id: Uuid, client_id: &str) -> PublicClient {
    PublicClient {
        client_id: client_id.to_owned(),
        project_id,
        name: "web".into(),
        key_hash: [1; 32],
        key_prefix: "crp_test".into(),
        allowed_origins: vec!["https://app.example.com".into()],
        scopes: vec!["login".into(), "signup".into()],
        created_at: now(),
        revoked_at: None,
    }
}

fn secret_key(project_id: Uuid) -> SecretKey {
    SecretKey {
        id: Uuid::new_v4(),
        project_id,
        name: "backend".into(),
        key_hash: [2; 32],
        key_prefix: "crs_test".into(),
        allowed_cidrs: vec![
            "10.0.0.0/8".parse().expect("literal CIDR is valid"),
            "2001:db8::/32".parse().expect("literal CIDR is valid"),
        ],
        allowed_origins: Vec::new(),
        created_at: now(),
        expires_at: Some(now() + 86_400),
        revoked_at: None,
    }
}

fn end_user(project_id: Uuid, external_id: &str) -> EndUser {
    EndUser {
        id: Uuid::new_v4(),
        project_id,
        external_id: external_id.to_owned(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        disabled: false,
        created_at: now(),
        version: 1,
    }
}

/// A live session created at `created_at`, expiring well in the future.
fn session(project_id: Uuid, end_user_id: Uuid, created_at: UnixSecs) -> Session {
    let t = now();
    Session {
        id: Uuid::new_v4(),
        project_id,
        end_user_id,
        external_id: "conformance-user".into(),
        device_id: unique("device"),
        user_agent: None,
        ip: None,
        created_at,
        last_used_at: created_at,
        counter: 0,
        rotated_at: created_at,
        access_expires_at: t + 3_600,
        prev_access_expires_at: t - 60,
        refresh_expires_at: t + 30 * 86_400,
        absolute_expires_at: t + 90 * 86_400,
        key_id: "k1".into(),
        revoked_at: None,
        version: 1,
    }
}

/// Moves every expiry of `s` into the past relative to `t`.
fn expire(s: &mut Session, t: UnixSecs) {
    s.access_expires_at = t - 120;
    s.prev_access_expires_at = t - 180;
    s.refresh_expires_at = t - 60;
    s.absolute_expires_at = t + 86_400;
}
