//! The behaviour every [`PortalStore`] must have, as executable checks run by the embedded
//! store's tests and the CQL store's tests. Like `conformance`, compiled in normal builds so
//! other crates' tests can call it, and safe on a shared, non-empty store (fresh emails; the
//! audit checks look only at entries they wrote).

use std::sync::Arc;

use tokio::task::JoinSet;
use uuid::Uuid;

use super::portal::PortalStore;
use crate::model::{AdminUser, AuditActor, AuditEntry, EncryptedSecret, Inserted};

pub async fn run_all(store: Arc<dyn PortalStore>) {
    admin_user_insert_is_unique(store.as_ref()).await;
    admin_user_cas(store.as_ref()).await;
    admin_user_concurrent_cas_has_one_winner(&store).await;
    admin_user_list_and_delete(store.as_ref()).await;
    audit_lists_newest_first_in_pages(store.as_ref()).await;
}

fn user(email: &str) -> AdminUser {
    AdminUser {
        id: Uuid::now_v7(),
        email: email.to_string(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        disabled: false,
        totp: None,
        totp_pending: None,
        totp_last_step: 0,
        recovery_codes: vec![],
        created_at: 1_700_000_000,
        version: 0,
    }
}

fn fresh_email() -> String {
    format!("{}@example.com", Uuid::new_v4().simple())
}

pub async fn admin_user_insert_is_unique(store: &dyn PortalStore) {
    let email = fresh_email();
    let first = user(&email);
    assert_eq!(
        store.insert_admin_user(&first).await.unwrap(),
        Inserted::Created
    );
    let second = user(&email);
    assert_eq!(
        store.insert_admin_user(&second).await.unwrap(),
        Inserted::AlreadyExists,
        "a second admin user with the same email must be refused"
    );
    let got = store.get_admin_user(&email).await.unwrap().expect("stored");
    assert_eq!(got, first, "the first insert wins and reads back whole");
    assert!(store
        .get_admin_user(&fresh_email())
        .await
        .unwrap()
        .is_none());
}

pub async fn admin_user_cas(store: &dyn PortalStore) {
    let email = fresh_email();
    let mut u = user(&email);
    store.insert_admin_user(&u).await.unwrap();
    u.version = 1;
    u.totp_last_step = 42;
    u.recovery_codes = vec![[7u8; 32]; 10];
    u.totp = Some(EncryptedSecret {
        key_id: "k1".into(),
        nonce: [1; 12],
        ciphertext: vec![9; 36],
    });
    assert!(store.cas_admin_user(&u, 0).await.unwrap());
    assert_eq!(store.get_admin_user(&email).await.unwrap().unwrap(), u);
    let mut stale = u.clone();
    stale.version = 1;
    stale.totp_last_step = 41;
    assert!(
        !store.cas_admin_user(&stale, 0).await.unwrap(),
        "a write against an old version must fail"
    );
    assert_eq!(
        store
            .get_admin_user(&email)
            .await
            .unwrap()
            .unwrap()
            .totp_last_step,
        42
    );
    let mut gone = user(&fresh_email());
    gone.version = 1;
    assert!(
        !store.cas_admin_user(&gone, 0).await.unwrap(),
        "a CAS on a missing user must not create it"
    );
    assert!(store.get_admin_user(&gone.email).await.unwrap().is_none());
}

/// Eight writers consume the same TOTP step: exactly one may win.
pub async fn admin_user_concurrent_cas_has_one_winner(store: &Arc<dyn PortalStore>) {
    let email = fresh_email();
    let u = user(&email);
    store.insert_admin_user(&u).await.unwrap();
    let mut tasks = JoinSet::new();
    for step in 1..=8u64 {
        let store = store.clone();
        let mut next = u.clone();
        next.version = 1;
        next.totp_last_step = step;
        tasks.spawn(async move { store.cas_admin_user(&next, 0).await.unwrap() });
    }
    let mut winners = 0;
    while let Some(won) = tasks.join_next().await {
        winners += usize::from(won.unwrap());
    }
    assert_eq!(
        winners, 1,
        "concurrent compare-and-sets must have one winner"
    );
}

pub async fn admin_user_list_and_delete(store: &dyn PortalStore) {
    let a = user(&fresh_email());
    let b = user(&fresh_email());
    store.insert_admin_user(&a).await.unwrap();
    store.insert_admin_user(&b).await.unwrap();
    let listed = store.list_admin_users().await.unwrap();
    assert!(listed.contains(&a) && listed.contains(&b));
    store.delete_admin_user(&a.email).await.unwrap();
    assert!(store.get_admin_user(&a.email).await.unwrap().is_none());
    let listed = store.list_admin_users().await.unwrap();
    assert!(!listed.iter().any(|u| u.email == a.email));
    assert!(listed.contains(&b));
    // The email is free again.
    assert_eq!(
        store.insert_admin_user(&user(&a.email)).await.unwrap(),
        Inserted::Created
    );
}

pub async fn audit_lists_newest_first_in_pages(store: &dyn PortalStore) {
    let marker = Uuid::new_v4().to_string();
    // Recent: entries past the retention may be dropped by the store at any write.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut written = Vec::new();
    for i in 0..7 {
        let entry = AuditEntry {
            id: Uuid::now_v7(),
            at: now + i,
            actor: AuditActor::AdminUser {
                id: Uuid::now_v7(),
                email: "a@example.com".into(),
            },
            action: "create_project".into(),
            project: Some(format!("p{i}")),
            target: marker.clone(),
            ip: Some("10.0.0.1".into()),
            request_id: Some(format!("req{i}")),
        };
        store.append_audit(&entry).await.unwrap();
        written.push(entry);
    }
    written.reverse();
    // Page through everything newer than our first entry, three at a time, keeping ours.
    let mut mine = Vec::new();
    let mut before = None;
    loop {
        let page = store.list_audit(before, 3).await.unwrap();
        assert!(page.len() <= 3);
        assert!(
            page.windows(2).all(|w| w[0].id > w[1].id),
            "a page is newest first"
        );
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        mine.extend(page.into_iter().filter(|e| e.target == marker));
        if mine.len() == written.len() {
            break;
        }
    }
    assert_eq!(mine, written, "every entry, newest first, read back whole");
}
