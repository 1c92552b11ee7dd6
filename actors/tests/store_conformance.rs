//! The embedded store against the trait-level conformance suite, plus durability across a
//! restart (drop and reopen of the same data directory).

use std::sync::Arc;

use commonrock_actors::model::{
    AdminToken, EndUser, Inserted, Org, Project, ProjectSettings, PublicClient, SecretKey, Session,
};
use commonrock_actors::store::conformance;
use commonrock_actors::store::embedded::EmbeddedStore;
use commonrock_actors::store::Store;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().expect("create temp dir");
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path()).expect("open store"));
    assert_eq!(store.kind(), "embedded");
    conformance::run_all(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_written_survives_drop_and_reopen() {
    let dir = tempfile::tempdir().expect("create temp dir");
    let now = unix_now();
    let far = unix_now() + 86_400;

    let org = Org {
        id: Uuid::new_v4(),
        slug: "acme".into(),
        name: "Acme".into(),
        created_at: now,
    };
    let project = Project {
        id: Uuid::new_v4(),
        org_id: org.id,
        slug: "acme-web".into(),
        name: "Acme Web".into(),
        settings: ProjectSettings::default(),
        maintenance: false,
        created_at: now,
    };
    let mut updated_project = project.clone();
    updated_project.maintenance = true;
    updated_project.settings.access_ttl_s = 900;
    let client = PublicClient {
        client_id: "web".into(),
        project_id: project.id,
        name: "web".into(),
        key_hash: [7; 32],
        key_prefix: "crp_web".into(),
        allowed_origins: vec!["https://acme.example".into()],
        scopes: vec!["login".into()],
        created_at: now,
        revoked_at: None,
    };
    let key = SecretKey {
        id: Uuid::new_v4(),
        project_id: project.id,
        name: "api".into(),
        key_hash: [8; 32],
        key_prefix: "crs_api".into(),
        allowed_cidrs: vec!["192.0.2.0/24".parse().expect("literal CIDR")],
        allowed_origins: Vec::new(),
        created_at: now,
        expires_at: None,
        revoked_at: None,
    };
    let token = AdminToken {
        id: Uuid::new_v4(),
        name: "ops".into(),
        token_hash: [9; 32],
        token_prefix: "cra_ops".into(),
        created_at: now,
        revoked_at: None,
    };
    let user = EndUser {
        id: Uuid::new_v4(),
        project_id: project.id,
        external_id: "alice@example.com".into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        disabled: false,
        created_at: now,
        version: 1,
    };
    let mut user_v2 = user.clone();
    user_v2.disabled = true;
    user_v2.version = 2;
    let session = Session {
        id: Uuid::new_v4(),
        project_id: project.id,
        end_user_id: user.id,
        external_id: user.external_id.clone(),
        device_id: "laptop".into(),
        user_agent: Some("curl/8".into()),
        ip: Some("192.0.2.7".into()),
        created_at: now,
        last_used_at: now,
        counter: 0,
        rotated_at: now,
        access_expires_at: far,
        prev_access_expires_at: now,
        refresh_expires_at: far,
        absolute_expires_at: far,
        key_id: "k1".into(),
        revoked_at: None,
        version: 1,
    };
    let mut session_v2 = session.clone();
    session_v2.counter = 1;
    session_v2.version = 2;

    {
        let store = EmbeddedStore::open(dir.path()).expect("open store");
        assert_eq!(
            store.insert_org(&org).await.expect("org"),
            Inserted::Created
        );
        assert_eq!(
            store.insert_project(&project).await.expect("project"),
            Inserted::Created
        );
        store
            .update_project(&updated_project)
            .await
            .expect("update project");
        store.put_client(&client).await.expect("client");
        store.put_secret_key(&key).await.expect("key");
        store.put_admin_token(&token).await.expect("token");
        store.set_flag("maintenance", true).await.expect("flag");
        assert_eq!(
            store.insert_end_user(&user).await.expect("user"),
            Inserted::Created
        );
        assert!(store.cas_end_user(&user_v2, 1).await.expect("cas user"));
        store.insert_session(&session).await.expect("session");
        assert!(store
            .cas_session(&session_v2, 1)
            .await
            .expect("cas session"));
    }

    let store = EmbeddedStore::open(dir.path()).expect("reopen store");
    store.ping().await.expect("ping");
    assert_eq!(store.list_orgs().await.expect("orgs"), vec![org]);
    assert_eq!(
        store.list_projects().await.expect("projects"),
        vec![updated_project.clone()]
    );
    assert_eq!(
        store.list_clients(project.id).await.expect("clients"),
        vec![client]
    );
    assert_eq!(
        store.list_secret_keys(project.id).await.expect("keys"),
        vec![key]
    );
    assert_eq!(
        store.list_admin_tokens().await.expect("tokens"),
        vec![token]
    );
    assert_eq!(
        store.get_flag("maintenance").await.expect("flag"),
        Some(true)
    );
    assert_eq!(
        store
            .get_end_user(project.id, "alice@example.com")
            .await
            .expect("user"),
        Some(user_v2)
    );
    assert_eq!(
        store.get_session(session.id).await.expect("session"),
        Some(session_v2.clone())
    );
    assert_eq!(
        store
            .list_user_sessions(project.id, user.id)
            .await
            .expect("user sessions"),
        vec![session_v2]
    );
    // Uniqueness survives the restart too.
    let mut clash = updated_project;
    clash.id = Uuid::new_v4();
    assert_eq!(
        store.insert_project(&clash).await.expect("project"),
        Inserted::AlreadyExists
    );
    assert_eq!(
        store.insert_end_user(&user).await.expect("user"),
        Inserted::AlreadyExists
    );
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_passes_the_portal_conformance_suite() {
    use commonrock_actors::store::portal::PortalStore;
    let dir = tempfile::tempdir().expect("create temp dir");
    let store: Arc<dyn PortalStore> =
        Arc::new(EmbeddedStore::open(dir.path()).expect("open store"));
    commonrock_actors::store::portal_conformance::run_all(store).await;
}
