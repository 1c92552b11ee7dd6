//! The admin API (SPEC §7) and the operations endpoints: orgs, projects and settings, clients
//! and secret keys (shown once, listed by prefix, revocable, rotatable), maintenance switches
//! (per project and node-wide, stored across restarts), end users and their sessions, admin
//! tokens, CORS, and /healthz, /readyz, /metrics, /openapi.json, /docs.

use std::collections::BTreeSet;
use std::time::Duration;

use commonrock_tests::reqwest::{Method, RequestBuilder};
use commonrock_tests::{eventually, Answer, Node, NodeOptions, Project, ORIGIN};
use serde_json::{json, Value};

const PW: &str = "password123";

async fn send(req: RequestBuilder) -> Answer {
    Answer::of(req.send().await.expect("request")).await
}

fn s(a: &Answer, field: &str) -> String {
    a.body[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {}", a.body))
        .to_string()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// `YYYY-MM-DDTHH:MM:SSZ`, exactly.
fn is_time(v: &Value) -> bool {
    v.as_str().is_some_and(|t| {
        let b = t.as_bytes();
        b.len() == 20
            && b.iter().enumerate().all(|(i, c)| match i {
                4 | 7 => *c == b'-',
                10 => *c == b'T',
                13 | 16 => *c == b':',
                19 => *c == b'Z',
                _ => c.is_ascii_digit(),
            })
    })
}

async fn admin_with(
    node: &Node,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Answer {
    let mut r = node
        .http
        .request(method, node.url(&format!("/admin/v1{path}")))
        .bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    send(r).await
}

async fn admin(node: &Node, method: Method, path: &str, body: Option<Value>) -> Answer {
    admin_with(node, &node.admin_token, method, path, body).await
}

/// The same project seen through a node's current address (after a restart).
fn rebased(node: &Node, p: &Project) -> Project {
    Project {
        base: node.url(&format!("/{}", p.slug)),
        ..p.clone()
    }
}

/// A line logged while a request is served carries its request id and route template.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_written_during_a_request_name_its_id_and_route() {
    let node = Node::start().await;
    let org = format!("org-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let id = format!("trace-{}", uuid::Uuid::new_v4().simple());
    let a = send(
        node.http
            .post(node.url("/admin/v1/orgs"))
            .bearer_auth(&node.admin_token)
            .header("X-Request-Id", &id)
            .json(&json!({"slug": org, "name": "Acme"})),
    )
    .await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    let wanted = format!("request_id={id} route=/admin/v1/orgs");
    let found = eventually(Duration::from_secs(10), || async {
        node.logs()
            .lines()
            .any(|l| l.contains("admin action") && l.contains(&wanted))
            .then_some(())
    })
    .await;
    assert!(found.is_some(), "no line with {wanted}:\n{}", node.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orgs_and_projects_are_created_listed_and_patched() {
    let node = Node::start().await;
    let org = format!("org-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let a = admin(
        &node,
        Method::POST,
        "/orgs",
        Some(json!({"slug": org, "name": "Acme"})),
    )
    .await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    assert_eq!(keys(&a.body), set(&["id", "slug", "name", "created_at"]));
    assert_eq!(
        (&a.body["slug"], &a.body["name"]),
        (&json!(org), &json!("Acme"))
    );
    assert!(is_time(&a.body["created_at"]), "{}", a.body);
    let l = admin(&node, Method::GET, "/orgs", None).await;
    assert_eq!(l.status, 200);
    let listed: Vec<&Value> = l.body["orgs"]
        .as_array()
        .expect("orgs")
        .iter()
        .filter(|o| o["slug"] == json!(org))
        .collect();
    assert_eq!(listed, vec![&a.body], "the list shows the org as created");

    let slug = format!("proj-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let c = admin(
        &node,
        Method::POST,
        "/projects",
        Some(json!({"org_slug": org, "slug": slug, "name": "Payments"})),
    )
    .await;
    assert_eq!(c.status, 201, "{:?}", c.body);
    assert_eq!(
        keys(&c.body),
        set(&[
            "id",
            "org_slug",
            "slug",
            "name",
            "settings",
            "maintenance",
            "created_at"
        ])
    );
    assert_eq!(c.body["org_slug"], json!(org));
    assert_eq!(c.body["maintenance"], false);
    let settings = &c.body["settings"];
    assert_eq!(settings["access_ttl_s"], 3600);
    assert_eq!(settings["refresh_ttl_s"], 30 * 86_400);
    assert_eq!(settings["refresh_reuse_grace_s"], 10);
    assert_eq!(settings["session_max_ttl_s"], 90 * 86_400);
    assert_eq!(settings["max_sessions_per_user"], 100);
    assert!(
        settings["rate_limits"].is_object(),
        "the login rate limits are settings: {settings}"
    );
    let g = admin(&node, Method::GET, &format!("/projects/{slug}"), None).await;
    assert_eq!(g.status, 200);
    assert_eq!(g.body, c.body);
    let l = admin(&node, Method::GET, "/projects", None).await;
    assert!(
        l.body["projects"]
            .as_array()
            .expect("projects")
            .contains(&c.body),
        "{}",
        l.body
    );

    // Creating with settings merges them into the defaults.
    let slug2 = format!("{slug}-b");
    let c2 = admin(
        &node,
        Method::POST,
        "/projects",
        Some(json!({"org_slug": org, "slug": slug2, "name": "B",
                    "settings": {"refresh_reuse_grace_s": 0}})),
    )
    .await;
    assert_eq!(c2.status, 201, "{:?}", c2.body);
    assert_eq!(c2.body["settings"]["refresh_reuse_grace_s"], 0);
    assert_eq!(c2.body["settings"]["access_ttl_s"], 3600);
    let bad = admin(
        &node,
        Method::POST,
        "/projects",
        Some(json!({"org_slug": "no-such-org", "slug": format!("{slug}-c"), "name": "C"})),
    )
    .await;
    assert_eq!(bad.status, 404, "{:?}", bad.body);

    // PATCH settings: one key changes, the others stay.
    let p = node.project(json!({})).await;
    let before = admin(&node, Method::GET, &format!("/projects/{}", p.slug), None).await;
    let patched = admin(
        &node,
        Method::PATCH,
        &format!("/projects/{}", p.slug),
        Some(json!({"settings": {"access_ttl_s": 600}})),
    )
    .await;
    assert_eq!(patched.status, 200, "{:?}", patched.body);
    let mut expected = before.body.clone();
    expected["settings"]["access_ttl_s"] = json!(600);
    assert_eq!(patched.body, expected);
    let su = eventually(Duration::from_secs(2), || async {
        let a = p
            .signup(&format!("u{}", uuid::Uuid::new_v4().simple()), PW)
            .await;
        (a.body["expires_in"].as_i64().is_some_and(|e| e <= 600)).then_some(a)
    })
    .await
    .expect("new tokens follow the new access_ttl_s");
    let expires_in = su.body["expires_in"].as_i64().expect("int");
    assert!((595..=600).contains(&expires_in), "{expires_in}");
    assert_eq!(p.introspect(&s(&su, "token")).await.body["active"], true);

    // A nested patch merges too.
    let nested = admin(
        &node,
        Method::PATCH,
        &format!("/projects/{}", p.slug),
        Some(json!({"settings": {"rate_limits": {"per_client": {"burst": 9000, "per_minute": 90000}}}})),
    )
    .await;
    assert_eq!(nested.status, 200, "{:?}", nested.body);
    assert_eq!(nested.body["settings"]["access_ttl_s"], 600);
    assert_eq!(
        nested.body["settings"]["rate_limits"]["per_client"],
        json!({"burst": 9000, "per_minute": 90000})
    );
    assert_eq!(
        nested.body["settings"]["rate_limits"]["login_per_account"],
        before.body["settings"]["rate_limits"]["login_per_account"]
    );

    // Unknown or inconsistent settings are refused, and nothing changes.
    for bad in [
        json!({"settings": {"acess_ttl_s": 60}}),
        json!({"settings": {"rate_limits": {"login_per_acount": {"burst": 1, "per_minute": 1}}}}),
        json!({"settings": {"access_ttl_s": "sixty"}}),
        json!({"settings": {"access_ttl_s": 0}}),
        json!({}),
    ] {
        let r = admin(
            &node,
            Method::PATCH,
            &format!("/projects/{}", p.slug),
            Some(bad.clone()),
        )
        .await;
        assert_eq!(r.status, 422, "{bad}: {:?}", r.body);
        let issues = r.body["detail"].as_array().expect("validation list");
        assert!(!issues.is_empty());
        for i in issues {
            assert_eq!(i["loc"][0], "body", "{i}");
            assert!(i["msg"].is_string() && i["type"].is_string(), "{i}");
        }
    }
    let after = admin(&node, Method::GET, &format!("/projects/{}", p.slug), None).await;
    assert_eq!(after.body, nested.body);
    let r = admin(
        &node,
        Method::PATCH,
        "/projects/nosuchproject",
        Some(json!({"settings": {}})),
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.body,
        json!({"detail": {"code": "project_not_found", "message": "Project not found"}})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_are_shown_once_listed_by_prefix_and_revocable() {
    let node = Node::start().await;
    let p = node.project(json!({})).await;
    let c = admin(
        &node,
        Method::POST,
        &format!("/projects/{}/clients", p.slug),
        Some(json!({"name": "ios", "allowed_origins": ["app://com.example.ios", "HTTPS://Web.Example.com:443"],
                    "scopes": ["end_users:login", "end_users:me"]})),
    )
    .await;
    assert_eq!(c.status, 201, "{:?}", c.body);
    let client_id = s(&c, "client_id");
    let client_key = s(&c, "client_key");
    assert!(client_id.starts_with("pk_live_"), "{client_id}");
    assert!(client_key.starts_with("pk_live_"), "{client_key}");
    assert!(
        client_key.len() >= "pk_live_".len() + 43,
        "≥ 32 random bytes"
    );
    assert_ne!(client_id, client_key);
    assert_eq!(c.body["scopes"], json!(["end_users:login", "end_users:me"]));
    assert!(is_time(&c.body["created_at"]));

    let clients_path = format!("/projects/{}/clients", p.slug);
    let list = || admin(&node, Method::GET, &clients_path, None);
    let l = list().await;
    assert_eq!(l.status, 200, "{:?}", l.body);
    let text = l.body.to_string();
    assert!(!text.contains(&client_key), "the key is never listed");
    assert!(!text.contains(&p.client_key), "the key is never listed");
    let entry = l.body["clients"]
        .as_array()
        .expect("clients")
        .iter()
        .find(|x| x["client_id"] == json!(client_id))
        .expect("listed")
        .clone();
    for k in ["key_prefix", "created_at", "last_used_at"] {
        assert!(entry.get(k).is_some(), "{k} in {entry}");
    }
    assert!(entry.get("client_key").is_none() && entry.get("key_hash").is_none());
    let prefix = entry["key_prefix"].as_str().expect("prefix");
    assert!(
        client_key.starts_with(prefix) && prefix.len() < client_key.len() / 2,
        "a short, non-secret prefix: {prefix}"
    );
    assert!(is_time(&entry["created_at"]));
    assert_eq!(entry["last_used_at"], Value::Null, "never used yet");

    let ios = Project {
        client_id: client_id.clone(),
        client_key: client_key.clone(),
        ..p.clone()
    };
    assert_eq!(p.signup("user-1", PW).await.status, 201);
    let login = || {
        send(
            ios.http
                .post(format!("{}/v1/public/end-users/login", ios.base))
                .header("X-Client-Id", &client_id)
                .header("X-Client-Key", &client_key)
                .header("Origin", "app://com.example.ios")
                .json(&json!({"external_id": "user-1", "password": PW, "device_id": "phone"})),
        )
    };
    assert_eq!(login().await.status, 200);
    let used = eventually(Duration::from_secs(2), || async {
        let l = list().await;
        let e = l.body["clients"]
            .as_array()?
            .iter()
            .find(|x| x["client_id"] == json!(client_id))?
            .clone();
        is_time(&e["last_used_at"]).then_some(e)
    })
    .await
    .expect("last_used_at is set once the client is used");
    assert_eq!(used["revoked_at"], Value::Null);

    let d = admin(
        &node,
        Method::DELETE,
        &format!("/projects/{}/clients/{client_id}", p.slug),
        None,
    )
    .await;
    assert_eq!(d.status, 200, "{:?}", d.body);
    let refused = eventually(Duration::from_secs(2), || async {
        let a = login().await;
        (a.status == 401).then_some(a)
    })
    .await
    .expect("a revoked client fails within the revocation bound");
    assert_eq!(
        refused.body,
        json!({"detail": {"code": "invalid_credentials", "message": "Invalid credentials"}})
    );
    let l = list().await;
    let entry = l.body["clients"]
        .as_array()
        .expect("clients")
        .iter()
        .find(|x| x["client_id"] == json!(client_id))
        .cloned();
    if let Some(e) = entry {
        assert!(
            is_time(&e["revoked_at"]),
            "a listed revoked client says so: {e}"
        );
    }
    // The project's other client still works.
    assert_eq!(p.login("user-1", PW).await.status, 200);
    let a = admin(
        &node,
        Method::DELETE,
        &format!("/projects/{}/clients/pk_live_nosuchclient", p.slug),
        None,
    )
    .await;
    assert_eq!(a.status, 404, "{:?}", a.body);
    assert_eq!(
        a.body,
        json!({"detail": {"code": "not_found", "message": "Not found"}})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_live_secret_keys_allow_rotation() {
    let node = Node::start().await;
    let p = node.project(json!({})).await;
    let su = p.signup("user-1", PW).await;
    let token = s(&su, "token");
    let k = admin(
        &node,
        Method::POST,
        &format!("/projects/{}/api-keys", p.slug),
        Some(json!({"name": "backend-v2", "allowed_cidrs": ["127.0.0.0/8"]})),
    )
    .await;
    assert_eq!(k.status, 201, "{:?}", k.body);
    let new_key = s(&k, "key");
    assert!(new_key.starts_with("sk_live_"), "{new_key}");
    assert!(new_key.len() >= "sk_live_".len() + 43);
    assert!(k.body["id"].as_str().is_some());
    let newer = Project {
        secret_key: new_key.clone(),
        ..p.clone()
    };
    // Both keys live at once.
    assert_eq!(p.introspect(&token).await.body["active"], true);
    assert_eq!(newer.introspect(&token).await.body["active"], true);

    let l = admin(
        &node,
        Method::GET,
        &format!("/projects/{}/api-keys", p.slug),
        None,
    )
    .await;
    assert_eq!(l.status, 200, "{:?}", l.body);
    let text = l.body.to_string();
    assert!(!text.contains(&new_key) && !text.contains(&p.secret_key));
    let listed = l.body["api_keys"].as_array().expect("api_keys");
    assert_eq!(listed.len(), 2);
    let mut old_id = None;
    for e in listed {
        assert!(e.get("key").is_none());
        let prefix = e["key_prefix"].as_str().expect("prefix");
        assert!(prefix.len() < 20, "{prefix}");
        assert!(is_time(&e["created_at"]));
        assert!(is_time(&e["last_used_at"]), "both keys were used: {e}");
        if p.secret_key.starts_with(prefix) && !new_key.starts_with(prefix) {
            old_id = e["id"].as_str().map(str::to_string);
        }
    }
    let old_id = old_id.expect("the old key is identifiable by its prefix");
    assert_ne!(old_id, s(&k, "id"));

    let d = admin(
        &node,
        Method::DELETE,
        &format!("/projects/{}/api-keys/{old_id}", p.slug),
        None,
    )
    .await;
    assert_eq!(d.status, 200, "{:?}", d.body);
    let refused = eventually(Duration::from_secs(2), || async {
        let a = p.introspect(&token).await;
        (a.status == 401).then_some(a)
    })
    .await
    .expect("the revoked key stops working");
    assert_eq!(
        refused.body,
        json!({"detail": {"code": "invalid_api_key", "message": "Invalid API key"}})
    );
    let a = newer.introspect(&token).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["active"], true);
    let a = admin(
        &node,
        Method::DELETE,
        &format!("/projects/{}/api-keys/not-a-uuid", p.slug),
        None,
    )
    .await;
    assert_eq!(a.status, 404);
}

/// Every tenant endpoint of `p` answers 503 maintenance_mode with Retry-After.
async fn assert_in_maintenance(p: &Project, token: &str, refresh: &str) {
    let want =
        json!({"detail": {"code": "maintenance_mode", "message": "Service under maintenance"}});
    let answers = vec![
        ("signup", p.signup("someone-new", PW).await),
        ("login", p.login("user-1", PW).await),
        ("refresh", p.refresh(refresh).await),
        ("me", p.me(token).await),
        ("logout", p.logout(token).await),
        ("introspect", p.introspect(token).await),
        ("batch", p.introspect_batch(&[token.to_string()]).await),
        (
            "sessions",
            send(
                p.public(Method::GET, "/end-users/sessions")
                    .bearer_auth(token),
            )
            .await,
        ),
        (
            "bad credentials",
            send(
                p.http
                    .post(format!("{}/v1/sessions/introspect", p.base))
                    .json(&json!({"token": token})),
            )
            .await,
        ),
    ];
    for (what, a) in answers {
        assert_eq!(a.status, 503, "{what}: {:?}", a.body);
        assert_eq!(a.body, want, "{what}");
        let retry = a
            .header("retry-after")
            .unwrap_or_else(|| panic!("{what}: Retry-After"));
        assert!(
            retry.parse::<u64>().is_ok_and(|n| n >= 1),
            "{what}: {retry}"
        );
        assert!(
            a.header("content-type")
                .is_some_and(|c| c.starts_with("application/json")),
            "{what}"
        );
    }
}

async fn assert_serving(p: &Project, token: &str) {
    let a = p.introspect(token).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.body["active"], true);
    assert_eq!(p.me(token).await.status, 200);
}

async fn assert_ops_up(node: &Node) {
    for path in ["/healthz", "/readyz", "/metrics", "/admin/v1/orgs"] {
        let a = send(node.http.get(node.url(path)).bearer_auth(&node.admin_token)).await;
        assert_eq!(a.status, 200, "{path} stays up: {:?}", a.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn project_maintenance_blocks_only_that_project_and_survives_restart() {
    let mut node = Node::start().await;
    let p = node.project(json!({})).await;
    let q = node.project(json!({})).await;
    let sp = p.signup("user-1", PW).await;
    let sq = q.signup("user-1", PW).await;
    let path = format!("/projects/{}/maintenance", p.slug);

    let g = admin(&node, Method::GET, &path, None).await;
    assert_eq!((g.status, g.body), (200, json!({"enabled": false})));
    let on = admin(&node, Method::PUT, &path, Some(json!({"enabled": true}))).await;
    assert_eq!((on.status, on.body), (200, json!({"enabled": true})));
    let g = admin(&node, Method::GET, &path, None).await;
    assert_eq!(g.body, json!({"enabled": true}));
    let g = admin(&node, Method::GET, &format!("/projects/{}", p.slug), None).await;
    assert_eq!(g.body["maintenance"], true);

    assert_in_maintenance(&p, &s(&sp, "token"), &s(&sp, "refresh_token")).await;
    assert_serving(&q, &s(&sq, "token")).await;
    assert_ops_up(&node).await;

    node.restart().await;
    let (p, q) = (rebased(&node, &p), rebased(&node, &q));
    assert_in_maintenance(&p, &s(&sp, "token"), &s(&sp, "refresh_token")).await;
    assert_serving(&q, &s(&sq, "token")).await;
    assert_ops_up(&node).await;

    let off = admin(&node, Method::PUT, &path, Some(json!({"enabled": false}))).await;
    assert_eq!((off.status, off.body), (200, json!({"enabled": false})));
    // Nothing was lost or changed while the project was closed.
    assert_serving(&p, &s(&sp, "token")).await;
    let bad = admin(&node, Method::PUT, &path, Some(json!({"enabled": "yes"}))).await;
    assert_eq!(bad.status, 422, "{:?}", bad.body);
    let bad = admin(&node, Method::PUT, &path, Some(json!({}))).await;
    assert_eq!(bad.status, 422, "{:?}", bad.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_wide_maintenance_blocks_every_project_and_survives_restart() {
    // The switch is stored per store: on a shared CQL keyspace it would stop the other tests
    // of this binary, so this test gets a keyspace of its own.
    let opts = match commonrock_tests::cql_nodes() {
        Some(nodes) => NodeOptions::default().cql(
            nodes,
            format!("{}_maintenance", commonrock_tests::test_keyspace()),
        ),
        None => NodeOptions::default(),
    };
    let mut node = Node::start_with(opts).await;
    let p = node.project(json!({})).await;
    let q = node.project(json!({})).await;
    let sp = p.signup("user-1", PW).await;
    let sq = q.signup("user-1", PW).await;
    let on = admin(
        &node,
        Method::PUT,
        "/maintenance",
        Some(json!({"enabled": true})),
    )
    .await;
    assert_eq!((on.status, on.body), (200, json!({"enabled": true})));
    let g = admin(&node, Method::GET, "/maintenance", None).await;
    assert_eq!((g.status, g.body), (200, json!({"enabled": true})));
    assert_in_maintenance(&p, &s(&sp, "token"), &s(&sp, "refresh_token")).await;
    assert_in_maintenance(&q, &s(&sq, "token"), &s(&sq, "refresh_token")).await;
    // Node-wide maintenance comes before the slug check.
    let unknown = Project {
        base: node.url("/nosuchproject"),
        ..p.clone()
    };
    let a = unknown.login("user-1", PW).await;
    assert_eq!(a.status, 503, "{:?}", a.body);
    assert_ops_up(&node).await;
    // The admin API keeps working, also for writes.
    let r = admin(
        &node,
        Method::GET,
        &format!("/projects/{}/end-users/user-1", p.slug),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    node.restart().await;
    let (p, q) = (rebased(&node, &p), rebased(&node, &q));
    assert_in_maintenance(&p, &s(&sp, "token"), &s(&sp, "refresh_token")).await;
    assert_in_maintenance(&q, &s(&sq, "token"), &s(&sq, "refresh_token")).await;
    assert_ops_up(&node).await;

    let off = admin(
        &node,
        Method::PUT,
        "/maintenance",
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!((off.status, off.body), (200, json!({"enabled": false})));
    assert_serving(&p, &s(&sp, "token")).await;
    assert_serving(&q, &s(&sq, "token")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_manage_end_users_and_their_sessions() {
    let node = Node::start().await;
    let p = node.project(json!({})).await;
    let su = p.signup("user-1", PW).await;
    assert_eq!(su.status, 201);
    let user = |ext: &str| format!("/projects/{}/end-users/{ext}", p.slug);

    let g = admin(&node, Method::GET, &user("user-1"), None).await;
    assert_eq!(g.status, 200, "{:?}", g.body);
    assert_eq!(
        keys(&g.body),
        set(&["id", "external_id", "disabled", "created_at"])
    );
    assert_eq!(g.body["id"], su.body["end_user"]["id"]);
    assert_eq!(g.body["external_id"], "user-1");
    assert_eq!(g.body["disabled"], false);
    assert!(is_time(&g.body["created_at"]));
    // Not the password hash, not anything secret.
    assert!(!g.body.to_string().contains("argon2"));
    // Case-sensitive here too.
    assert_eq!(
        admin(&node, Method::GET, &user("USER-1"), None)
            .await
            .status,
        404
    );

    // Disable: login fails, live tokens stop.
    let second = p.login("user-1", PW).await;
    let d = admin(
        &node,
        Method::PATCH,
        &user("user-1"),
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(d.status, 200, "{:?}", d.body);
    assert_eq!(d.body["disabled"], true);
    assert_eq!(d.body["id"], g.body["id"]);
    let l = p.login("user-1", PW).await;
    assert_eq!(
        (l.status, l.body),
        (401, json!({"detail": "Invalid credentials"}))
    );
    for t in [s(&su, "token"), s(&second, "token")] {
        let off = eventually(Duration::from_secs(2), || async {
            (p.introspect(&t).await.body == json!({"active": false})).then_some(())
        })
        .await;
        assert!(off.is_some(), "a disabled user's tokens are inactive");
        assert_eq!(p.me(&t).await.status, 401);
    }
    assert_eq!(p.refresh(&s(&second, "refresh_token")).await.status, 401);
    let e = admin(
        &node,
        Method::PATCH,
        &user("user-1"),
        Some(json!({"disabled": false})),
    )
    .await;
    assert_eq!((e.status, &e.body["disabled"]), (200, &json!(false)));
    let back = p.login("user-1", PW).await;
    assert_eq!(back.status, 200, "{:?}", back.body);
    let bad = admin(&node, Method::PATCH, &user("user-1"), Some(json!({}))).await;
    assert_eq!(bad.status, 422);

    // Set a password.
    let r = admin(
        &node,
        Method::PUT,
        &format!("{}/password", user("user-1")),
        Some(json!({"password": "admin-set-pw"})),
    )
    .await;
    assert_eq!((r.status, r.body), (200, json!({"status": "ok"})));
    assert_eq!(p.login("user-1", PW).await.status, 401);
    let fresh = p.login("user-1", "admin-set-pw").await;
    assert_eq!(fresh.status, 200, "{:?}", fresh.body);
    // An admin reset signs the user out everywhere (the old password may be compromised).
    assert_eq!(
        p.introspect(&s(&back, "token")).await.body,
        json!({"active": false})
    );
    let r = admin(
        &node,
        Method::PUT,
        &format!("{}/password", user("user-1")),
        Some(json!({"password": "short"})),
    )
    .await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.body["detail"][0]["type"],
        "value_error.any_str.min_length"
    );
    let r = admin(
        &node,
        Method::PUT,
        &format!("{}/password", user("nobody")),
        Some(json!({"password": "long-enough"})),
    )
    .await;
    assert_eq!(r.status, 404);

    // Sessions: list, revoke one, revoke all.
    let third = p.login("user-1", "admin-set-pw").await;
    let fourth = p.login("user-1", "admin-set-pw").await;
    let list = admin(
        &node,
        Method::GET,
        &format!("{}/sessions", user("user-1")),
        None,
    )
    .await;
    assert_eq!(list.status, 200, "{:?}", list.body);
    let ids: BTreeSet<String> = list.body["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|x| x["id"].as_str().expect("id").to_string())
        .collect();
    let live: BTreeSet<String> = [&fresh, &third, &fourth]
        .iter()
        .map(|a| s(a, "session_id"))
        .collect();
    assert_eq!(ids, live, "exactly the live sessions");
    for a in [&fresh, &third, &fourth] {
        assert!(!list.body.to_string().contains(&s(a, "token")));
    }
    let one = admin(
        &node,
        Method::DELETE,
        &format!("/projects/{}/sessions/{}", p.slug, s(&fresh, "session_id")),
        None,
    )
    .await;
    assert_eq!((one.status, one.body), (200, json!({"revoked": 1})));
    assert_eq!(
        p.introspect(&s(&fresh, "token")).await.body,
        json!({"active": false})
    );
    assert_eq!(p.introspect(&s(&third, "token")).await.body["active"], true);
    let all = admin(
        &node,
        Method::DELETE,
        &format!("{}/sessions", user("user-1")),
        None,
    )
    .await;
    assert_eq!((all.status, all.body), (200, json!({"revoked": 2})));
    for a in [&third, &fourth] {
        assert_eq!(
            p.introspect(&s(a, "token")).await.body,
            json!({"active": false})
        );
        assert_eq!(p.refresh(&s(a, "refresh_token")).await.status, 401);
    }
    let list = admin(
        &node,
        Method::GET,
        &format!("{}/sessions", user("user-1")),
        None,
    )
    .await;
    assert_eq!(list.body, json!({"sessions": []}));
    // Another project's session id is not found through this project.
    let other = node.project(json!({})).await;
    let os = other.signup("user-1", PW).await;
    let r = admin(
        &node,
        Method::DELETE,
        &format!("/projects/{}/sessions/{}", p.slug, s(&os, "session_id")),
        None,
    )
    .await;
    assert_eq!(r.status, 404, "{:?}", r.body);
    assert_eq!(
        other.introspect(&s(&os, "token")).await.body["active"],
        true
    );

    // Delete cascades; the external_id becomes free again.
    let live = p.login("user-1", "admin-set-pw").await;
    let del = admin(&node, Method::DELETE, &user("user-1"), None).await;
    assert_eq!((del.status, del.body), (200, json!({"status": "ok"})));
    assert_eq!(
        p.introspect(&s(&live, "token")).await.body,
        json!({"active": false})
    );
    assert_eq!(p.me(&s(&live, "token")).await.status, 401);
    assert_eq!(p.refresh(&s(&live, "refresh_token")).await.status, 401);
    assert_eq!(p.login("user-1", "admin-set-pw").await.status, 401);
    assert_eq!(
        admin(&node, Method::GET, &user("user-1"), None)
            .await
            .status,
        404
    );
    let again = p.signup("user-1", "brand-new-pw").await;
    assert_eq!(again.status, 201, "{:?}", again.body);
    assert_ne!(again.body["end_user"]["id"], su.body["end_user"]["id"]);
    assert_eq!(
        p.introspect(&s(&live, "token")).await.body,
        json!({"active": false})
    );
    assert_eq!(
        admin(&node, Method::DELETE, &user("nobody"), None)
            .await
            .status,
        404
    );

    // External ids with reserved characters are percent-encoded in the path.
    let odd = "team/ü 1?x#y";
    assert_eq!(p.signup(odd, PW).await.status, 201);
    let encoded = "team%2F%C3%BC%201%3Fx%23y";
    let g = admin(&node, Method::GET, &user(encoded), None).await;
    assert_eq!(g.status, 200, "{:?}", g.body);
    assert_eq!(g.body["external_id"], odd);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minted_admin_tokens_work_until_revoked() {
    let node = Node::start().await;
    let c = admin(
        &node,
        Method::POST,
        "/admin-tokens",
        Some(json!({"name": "ci"})),
    )
    .await;
    assert_eq!(c.status, 201, "{:?}", c.body);
    let token = s(&c, "token");
    let id = s(&c, "id");
    assert!(token.len() >= 43);
    assert_eq!(c.body["name"], "ci");
    let a = admin_with(&node, &token, Method::GET, "/orgs", None).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    // It can do real work, not only read.
    let org = format!("o{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let a = admin_with(
        &node,
        &token,
        Method::POST,
        "/orgs",
        Some(json!({"slug": org, "name": "by token"})),
    )
    .await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    let l = admin(&node, Method::GET, "/admin-tokens", None).await;
    assert_eq!(l.status, 200);
    assert!(!l.body.to_string().contains(&token), "never listed");
    let entry = l.body["admin_tokens"]
        .as_array()
        .expect("list")
        .iter()
        .find(|t| t["id"] == json!(id))
        .expect("listed")
        .clone();
    assert_eq!(entry["name"], "ci");
    assert!(token.starts_with(entry["token_prefix"].as_str().expect("prefix")));

    let second = admin(
        &node,
        Method::POST,
        "/admin-tokens",
        Some(json!({"name": "two"})),
    )
    .await;
    let d = admin(&node, Method::DELETE, &format!("/admin-tokens/{id}"), None).await;
    assert_eq!((d.status, d.body), (200, json!({"status": "ok"})));
    let refused = eventually(Duration::from_secs(2), || async {
        let a = admin_with(&node, &token, Method::GET, "/orgs", None).await;
        (a.status == 401).then_some(a)
    })
    .await
    .expect("a revoked admin token stops working");
    assert_eq!(
        refused.body,
        json!({"detail": {"code": "unauthorized", "message": "Unauthorized"}})
    );
    assert_eq!(refused.header("www-authenticate"), Some("Bearer"));
    // Revoking one leaves the others.
    let a = admin_with(&node, &s(&second, "token"), Method::GET, "/orgs", None).await;
    assert_eq!(a.status, 200);
    let bad = admin(&node, Method::POST, "/admin-tokens", Some(json!({}))).await;
    assert_eq!(bad.status, 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_preflight_and_actual_responses() {
    let node = Node::start().await;
    let p = node.project(json!({})).await;
    let preflight = |origin: &str, path: &str| {
        send(
            node.http
                .request(Method::OPTIONS, format!("{}/v1/public{path}", p.base))
                .header("Origin", origin)
                .header("Access-Control-Request-Method", "POST")
                .header(
                    "Access-Control-Request-Headers",
                    "content-type, x-client-id, x-client-key",
                ),
        )
    };
    for (origin, path) in [
        (ORIGIN, "/end-users/login"),
        (ORIGIN, "/end-users/sessions/revoke-others"),
        ("app://com.example.ios", "/end-users/me"),
    ] {
        let a = preflight(origin, path).await;
        assert_eq!(a.status, 204, "{origin} {path}: {:?}", a.body);
        assert_eq!(a.body, json!(""), "a preflight has no body");
        assert_eq!(a.header("access-control-allow-origin"), Some(origin));
        let methods = a.header("access-control-allow-methods").expect("methods");
        for m in ["GET", "POST", "DELETE"] {
            assert!(methods.contains(m), "{methods}");
        }
        assert_eq!(
            a.header("access-control-allow-headers"),
            Some("Content-Type, Authorization, X-Client-Id, X-Client-Key, X-Device-Id")
        );
        let max_age = a.header("access-control-max-age").expect("max-age");
        assert!(max_age.parse::<u64>().is_ok_and(|n| n > 0), "{max_age}");
        let vary: Vec<&str> = a
            .headers
            .get_all("vary")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        assert!(
            vary.iter().any(|v| v
                .split(',')
                .any(|x| x.trim().eq_ignore_ascii_case("origin"))),
            "{vary:?}"
        );
        assert!(a.header("access-control-allow-credentials").is_none());
        assert!(a.header("x-request-id").is_some());
    }
    let no_cors = |a: &Answer| {
        let leaked: Vec<String> = a
            .headers
            .keys()
            .map(|k| k.as_str().to_string())
            .filter(|k| k.starts_with("access-control-"))
            .collect();
        assert!(leaked.is_empty(), "no CORS headers: {leaked:?}");
    };
    for evil in ["https://evil.example.com", "null", "http://app.example.com"] {
        let a = preflight(evil, "/end-users/login").await;
        no_cors(&a);
    }
    // An origin allowed only by another project's client is not allowed here.
    let other = node.project(json!({})).await;
    let _ = admin(
        &node,
        Method::POST,
        &format!("/projects/{}/clients", other.slug),
        Some(
            json!({"name": "x", "allowed_origins": ["https://other.example.org"],
                    "scopes": ["end_users:login"]}),
        ),
    )
    .await;
    no_cors(&preflight("https://other.example.org", "/end-users/login").await);

    // Actual responses, errors included, echo an allowed Origin.
    let ok = p.signup("user-1", PW).await;
    assert_eq!(ok.status, 201);
    assert_eq!(ok.header("access-control-allow-origin"), Some(ORIGIN));
    let bad = Project {
        client_key: "pk_live_wrong".into(),
        ..p.clone()
    };
    let err = bad.login("user-1", PW).await;
    assert_eq!(err.status, 401);
    assert_eq!(err.header("access-control-allow-origin"), Some(ORIGIN));
    let me = p.me("cr_at_bogus").await;
    assert_eq!(me.status, 401);
    assert_eq!(me.header("access-control-allow-origin"), Some(ORIGIN));
    let expose = me
        .header("access-control-expose-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        expose.contains("www-authenticate") && expose.contains("x-request-id"),
        "a browser can read the challenge and request id: {expose:?}"
    );
    for a in [&ok, &err, &me] {
        let vary: String = a
            .headers
            .get_all("vary")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        assert!(vary.to_ascii_lowercase().contains("origin"), "{vary}");
    }
    // A disallowed origin gets its 403, without CORS headers.
    let denied = send(
        node.http
            .post(format!("{}/v1/public/end-users/login", p.base))
            .header("X-Client-Id", &p.client_id)
            .header("X-Client-Key", &p.client_key)
            .header("Origin", "https://evil.example.com")
            .json(&json!({"external_id": "user-1", "password": PW, "device_id": "d"})),
    )
    .await;
    assert_eq!(denied.status, 403);
    no_cors(&denied);
    // Introspection is server-to-server: no CORS there.
    let i = send(
        node.http
            .post(format!("{}/v1/sessions/introspect", p.base))
            .header("X-API-Key", &p.secret_key)
            .header("Origin", ORIGIN)
            .json(&json!({"token": "x"})),
    )
    .await;
    assert_eq!(i.status, 200);
    no_cors(&i);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_endpoints() {
    let node = Node::start().await;
    let h = send(node.http.get(node.url("/healthz"))).await;
    assert_eq!(h.status, 200, "{:?}", h.body);
    assert!(h.header("x-request-id").is_some());
    // A caller's own request id is kept, so traces join up across services.
    let h = send(
        node.http
            .get(node.url("/healthz"))
            .header("X-Request-Id", "trace-abc-123"),
    )
    .await;
    assert_eq!(h.header("x-request-id"), Some("trace-abc-123"));
    let r = send(node.http.get(node.url("/readyz"))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["store"]["reachable"], true, "{}", r.body);

    // Some traffic, then the counter shows it.
    let p = node.project(json!({})).await;
    assert_eq!(p.signup("user-1", PW).await.status, 201);
    let m = node
        .http
        .get(node.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(m.status().as_u16(), 200);
    let ct = m
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(ct.starts_with("text/plain"), "{ct}");
    let text = m.text().await.expect("text");
    assert!(text.contains("commonrock_http_requests_total"), "{text}");
    assert!(commonrock_tests::metric(&node, "commonrock_http_requests_total").await >= 1.0);
    // Labels are route templates, never raw paths with slugs or ids.
    assert!(!text.contains(&p.slug), "no per-tenant label cardinality");

    let o = send(node.http.get(node.url("/openapi.json"))).await;
    assert_eq!(o.status, 200);
    assert!(o.header("content-type").is_some_and(|c| c.contains("json")));
    assert!(
        o.body["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with('3')),
        "{}",
        o.body["openapi"]
    );
    let paths = o.body["paths"].as_object().expect("paths");
    for path in [
        "/{slug}/v1/public/end-users/login",
        "/{slug}/v1/public/end-users/signup",
        "/{slug}/v1/public/end-users/refresh",
        "/{slug}/v1/sessions/introspect",
    ] {
        assert!(paths.contains_key(path), "{path} in the OpenAPI document");
    }

    let d = node.http.get(node.url("/docs")).send().await.expect("docs");
    assert_eq!(d.status().as_u16(), 200, "{}", d.url());
    let ct = d
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(ct.starts_with("text/html"), "{ct}");
    let html = d.text().await.expect("html");
    assert!(html.to_ascii_lowercase().contains("<html"), "{html}");
}
