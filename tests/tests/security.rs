//! Secrets stay secret (SPEC §2 "stored only as hashes and shown once", §3 "only hashes are
//! stored", §6 "no response ever carries … a password hash"): with every log level on, no
//! token, password, client key, secret key, admin token or server secret appears in the logs
//! or anywhere in the node's directory — except the server-secret file itself.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use commonrock_tests::reqwest::Method;
use commonrock_tests::{Answer, Node, NodeOptions, Project};
use serde_json::{json, Value};

/// A secret and the byte strings that would betray it: its text, and where it has one, the
/// raw random bytes behind its base64 (a leak of the decoded form is a leak too).
struct Secret {
    what: String,
    needles: Vec<Vec<u8>>,
}

fn b64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .ok()
}

/// `prefix` is the credential's non-secret kind prefix; `None` for plain text (passwords).
fn secret(what: impl Into<String>, text: &str, prefix: Option<&str>) -> Secret {
    assert!(text.len() >= 16, "a secret worth looking for: {text:?}");
    let mut needles = vec![text.as_bytes().to_vec()];
    if let Some(raw) = prefix.and_then(|p| text.strip_prefix(p)).and_then(b64) {
        if raw.len() >= 16 {
            needles.push(raw);
        }
    }
    Secret {
        what: what.into(),
        needles,
    }
}

/// A session token: its text, and its 256-bit MAC (the secret part) raw and in base64.
fn token(what: &str, t: &str) -> Secret {
    let body = t
        .strip_prefix("cr_at_")
        .or_else(|| t.strip_prefix("cr_rt_"))
        .unwrap_or_else(|| panic!("{what} has no token prefix: {t}"));
    let mut needles = vec![t.as_bytes().to_vec(), body.as_bytes().to_vec()];
    if let Some(raw) = b64(body) {
        // version ‖ session id ‖ counter ‖ MAC: the last 32 bytes are the secret.
        if raw.len() >= 32 {
            needles.push(raw[raw.len() - 32..].to_vec());
        }
    }
    // Characters 34.. of the body encode MAC bits only.
    if body.len() > 40 {
        needles.push(body.as_bytes()[body.len() - 40..].to_vec());
    }
    Secret {
        what: what.into(),
        needles,
    }
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let first = needle[0];
    haystack
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == first)
        .any(|(i, _)| haystack[i..].starts_with(needle))
}

/// Every response body the test saw, for the "never a password hash" check.
#[derive(Default)]
struct Seen {
    bodies: Vec<String>,
}

impl Seen {
    fn keep(&mut self, a: Answer) -> Answer {
        self.bodies.push(a.body.to_string());
        a
    }
}

fn assert_no_hash(text: &str, where_: &str) {
    let lower = text.to_lowercase();
    assert!(
        !lower.contains("argon2"),
        "{where_} mentions argon2: {text}"
    );
    assert!(
        !lower.contains("$v=19$"),
        "{where_} holds a PHC hash: {text}"
    );
    assert!(
        !lower.contains("password"),
        "{where_} mentions a password: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_logs_or_disk_and_no_response_carries_a_hash() {
    let mut node = Node::start_with(NodeOptions::default().rust_log("trace")).await;
    let mut secrets = Vec::new();
    let mut seen = Seen::default();
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let pw1 = format!("Pw1-signup-{tag}");
    let pw2 = format!("Pw2-changed-{tag}");
    let pw3 = format!("Pw3-admin-set-{tag}");
    let pw_wrong = format!("Pw4-wrong-guess-{tag}");
    let pw_bad_json = format!("Pw5-in-bad-json-{tag}");
    for (what, pw) in [
        ("signup password", &pw1),
        ("changed password", &pw2),
        ("admin-set password", &pw3),
        ("wrong password", &pw_wrong),
        ("password in malformed JSON", &pw_bad_json),
    ] {
        secrets.push(secret(what, pw, None));
    }
    secrets.push(secret("admin token", &node.admin_token, Some("admintest_")));
    let server_secret = std::fs::read_to_string(node.dir.join("secret")).expect("secret file");
    for line in server_secret.lines().filter(|l| !l.trim().is_empty()) {
        let (_, value) = line.split_once('=').expect("kid=value");
        secrets.push(secret("server secret", value.trim(), Some("")));
    }

    let p = node.project(json!({})).await;
    secrets.push(secret("client key", &p.client_key, Some("pk_live_")));
    secrets.push(secret("secret key", &p.secret_key, Some("sk_live_")));

    // signup, login (right and wrong), refresh, me, introspect, batch introspect.
    let s = seen.keep(p.signup("alice", &pw1).await);
    assert_eq!(s.status, 201, "{:?}", s.body);
    let l = seen.keep(p.login("alice", &pw1).await);
    assert_eq!(l.status, 200, "{:?}", l.body);
    assert_eq!(seen.keep(p.login("alice", &pw_wrong).await).status, 401);
    let r = seen.keep(
        p.refresh(l.body["refresh_token"].as_str().expect("rt"))
            .await,
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    for (what, a) in [("signup", &s), ("login", &l), ("refresh", &r)] {
        for field in ["token", "refresh_token"] {
            let t = a.body[field].as_str().expect("token");
            secrets.push(token(&format!("{what} {field}"), t));
        }
    }
    let access = r.body["token"].as_str().expect("token").to_string();
    assert_eq!(seen.keep(p.me(&access).await).status, 200);
    let i = seen.keep(p.introspect(&access).await);
    assert_eq!(i.body["active"], true, "{:?}", i.body);
    let tokens: Vec<String> = [&s, &l, &r]
        .iter()
        .flat_map(|a| {
            [
                a.body["token"].as_str().expect("t").to_string(),
                a.body["refresh_token"].as_str().expect("t").to_string(),
            ]
        })
        .collect();
    let b = seen.keep(p.introspect_batch(&tokens).await);
    assert_eq!(b.status, 200, "{:?}", b.body);
    // A refresh token sent as a Bearer, and a malformed body holding a password.
    let refresh_as_bearer = r.body["refresh_token"].as_str().expect("rt");
    assert_eq!(seen.keep(p.me(refresh_as_bearer).await).status, 401);
    let bad = seen.keep(
        Answer::of(
            p.public(Method::POST, "/end-users/login")
                .header("Content-Type", "application/json")
                .body(format!(
                    r#"{{"external_id":"alice","password":"{pw_bad_json}""#
                ))
                .send()
                .await
                .expect("request"),
        )
        .await,
    );
    assert_eq!(bad.status, 422, "{:?}", bad.body);
    // Password change through the public API, then by an admin.
    let change = seen.keep(
        Answer::of(
            p.public(Method::POST, "/end-users/password")
                .bearer_auth(&access)
                .json(&json!({"current_password": pw1, "new_password": pw2}))
                .send()
                .await
                .expect("request"),
        )
        .await,
    );
    assert_eq!(change.status, 200, "{:?}", change.body);
    let (st, body) = node
        .admin(
            Method::PUT,
            &format!("/projects/{}/end-users/alice/password", p.slug),
            Some(json!({"password": pw3})),
        )
        .await;
    assert!((200..300).contains(&st), "{st} {body}");
    seen.bodies.push(body.to_string());

    // Admin: a second client and a second key, both used once.
    let (st, c) = node
        .admin(
            Method::POST,
            &format!("/projects/{}/clients", p.slug),
            Some(
                json!({"name": "mobile", "allowed_origins": [commonrock_tests::ORIGIN],
                        "scopes": ["end_users:login"]}),
            ),
        )
        .await;
    assert_eq!(st, 201, "{c}");
    let (st, k) = node
        .admin(
            Method::POST,
            &format!("/projects/{}/api-keys", p.slug),
            Some(json!({"name": "worker", "allowed_cidrs": ["127.0.0.1/32"]})),
        )
        .await;
    assert_eq!(st, 201, "{k}");
    let client_key2 = c["client_key"].as_str().expect("client_key").to_string();
    let secret_key2 = k["key"].as_str().expect("key").to_string();
    secrets.push(secret("second client key", &client_key2, Some("pk_live_")));
    secrets.push(secret("second secret key", &secret_key2, Some("sk_live_")));
    let p2 = Project {
        client_id: c["client_id"].as_str().expect("client_id").into(),
        client_key: client_key2.clone(),
        secret_key: secret_key2.clone(),
        ..p.clone()
    };
    let l2 = seen.keep(p2.login("alice", &pw3).await);
    assert_eq!(l2.status, 200, "{:?}", l2.body);
    let t2 = l2.body["token"].as_str().expect("token").to_string();
    secrets.push(token("second-client login token", &t2));
    secrets.push(token(
        "second-client login refresh token",
        l2.body["refresh_token"].as_str().expect("rt"),
    ));
    assert_eq!(
        seen.keep(p2.introspect(&t2).await).body["active"],
        true,
        "the new key works"
    );

    // Lists show prefixes, never keys.
    for (list, field, keys) in [
        ("clients", "key_prefix", vec![&p.client_key, &client_key2]),
        ("api-keys", "key_prefix", vec![&p.secret_key, &secret_key2]),
    ] {
        let (st, body) = node
            .admin(Method::GET, &format!("/projects/{}/{list}", p.slug), None)
            .await;
        assert_eq!(st, 200, "{body}");
        let text = body.to_string();
        let items: Vec<&Value> = match &body {
            Value::Array(a) => a.iter().collect(),
            Value::Object(o) => o
                .values()
                .find_map(Value::as_array)
                .map(|a| a.iter().collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        assert_eq!(items.len(), 2, "{list}: {body}");
        for key in keys {
            assert!(!text.contains(key.as_str()), "{list} lists a key: {text}");
            let raw = key
                .strip_prefix("pk_live_")
                .or_else(|| key.strip_prefix("sk_live_"))
                .expect("key body");
            assert!(!text.contains(raw), "{list} lists a key body: {text}");
            assert!(
                items.iter().any(|it| it[field]
                    .as_str()
                    .is_some_and(|pre| pre.len() < key.len() && key.starts_with(pre))),
                "{list} shows no prefix of {}…: {text}",
                &key[..12]
            );
        }
        assert_no_hash(&text, list);
        seen.bodies.push(text);
    }
    let (st, user) = node
        .admin(
            Method::GET,
            &format!("/projects/{}/end-users/alice", p.slug),
            None,
        )
        .await;
    assert_eq!(st, 200, "{user}");
    assert_eq!(user["external_id"], "alice");
    let (st, sessions) = node
        .admin(
            Method::GET,
            &format!("/projects/{}/end-users/alice/sessions", p.slug),
            None,
        )
        .await;
    assert_eq!(st, 200, "{sessions}");
    seen.bodies.push(user.to_string());
    seen.bodies.push(sessions.to_string());

    for body in &seen.bodies {
        assert_no_hash(body, "a response");
    }

    let status = node.stop().await;
    assert!(status.success(), "{status:?}");

    let logs = node.logs();
    // The scan proves something only if the requests were logged at the verbose levels.
    assert!(
        logs.contains(" DEBUG ") && logs.contains("/{slug}/v1/public/end-users/refresh"),
        "verbose request logging is missing; the scan would prove little:\n{logs}"
    );
    let mut files = Vec::new();
    files_under(&node.dir, &mut files);
    let secret_file = node.dir.join("secret");
    let files: Vec<PathBuf> = files.into_iter().filter(|f| *f != secret_file).collect();
    // On the CQL store the data lives in the cluster: tests/cql_store.rs reads every column
    // of every table for the same secrets. Here the logs (and any local file) are scanned.
    let embedded = commonrock_tests::cql_nodes().is_none();
    assert!(
        !embedded || files.iter().any(|f| f.starts_with(node.data_dir())),
        "no store files found under {}",
        node.data_dir().display()
    );
    // Positive controls: the search finds what is meant to be there.
    let secret_bytes = std::fs::read(&secret_file).expect("secret file");
    let server = secrets
        .iter()
        .find(|s| s.what == "server secret")
        .expect("server secret");
    assert!(contains(&secret_bytes, &server.needles[0]));
    let store_has_slug = files
        .iter()
        .filter(|f| f.starts_with(node.data_dir()))
        .any(|f| contains(&std::fs::read(f).expect("store file"), p.slug.as_bytes()));
    assert!(
        !embedded || store_has_slug,
        "the store files hold no plain slug: the scan reads them wrongly"
    );
    let mut leaks = Vec::new();
    let mut scanned = 0usize;
    for f in &files {
        let bytes = std::fs::read(f).expect("readable file");
        scanned += bytes.len();
        for s in &secrets {
            if s.needles.iter().any(|n| contains(&bytes, n)) {
                leaks.push(format!("{} in {}", s.what, f.display()));
            }
        }
    }
    for s in &secrets {
        if s.needles.iter().any(|n| contains(logs.as_bytes(), n)) {
            leaks.push(format!("{} in the logs", s.what));
        }
    }
    println!(
        "scanned {} files ({scanned} bytes) and {} log bytes for {} secrets",
        files.len(),
        logs.len(),
        secrets.len()
    );
    assert!(leaks.is_empty(), "secrets leaked: {leaks:#?}");
}
