//! The portal's admin API (SPEC §10): admin users, cookie sessions with CSRF, TOTP with
//! replay protection and recovery codes, expiry, logout, the audit log, the CLI, and the page's
//! own headers. Every test speaks HTTP to a real node and handles the cookie by hand, as a
//! browser would (the cookie is `Secure`, which an HTTP client's cookie store would withhold).

use std::time::{Duration, Instant};

use commonrock_tests::reqwest::{Method, RequestBuilder};
use commonrock_tests::{Answer, Node, NodeOptions};
use serde_json::{json, Value};
use totp_rs::{Algorithm, Secret, TOTP};

const PW: &str = "correct horse battery";

async fn send(req: RequestBuilder) -> Answer {
    Answer::of(req.send().await.expect("request")).await
}

fn code(a: &Answer) -> &str {
    a.body["detail"]["code"].as_str().unwrap_or("")
}

/// A browser's view of one portal session: the cookie (updated from every `Set-Cookie`) and
/// the CSRF token kept in memory.
struct Browser<'a> {
    node: &'a Node,
    cookie: Option<String>,
    csrf: Option<String>,
}

impl<'a> Browser<'a> {
    fn new(node: &'a Node) -> Self {
        Browser {
            node,
            cookie: None,
            csrf: None,
        }
    }

    fn take_cookie(&mut self, a: &Answer) {
        for v in a.headers.get_all("set-cookie") {
            let v = v.to_str().expect("ascii cookie");
            let value = v
                .strip_prefix("cr_portal=")
                .and_then(|r| r.split(';').next())
                .expect("a cr_portal cookie");
            self.cookie = (!value.is_empty()).then(|| value.to_string());
        }
    }

    async fn login(&mut self, email: &str, password: &str, totp: Option<&str>) -> Answer {
        let mut body = json!({"email": email, "password": password});
        if let Some(c) = totp {
            body["totp_code"] = json!(c);
        }
        let a = send(
            self.node
                .http
                .post(self.node.url("/admin/v1/auth/login"))
                .json(&body),
        )
        .await;
        if a.status == 200 {
            self.take_cookie(&a);
            self.csrf = a.body["csrf_token"].as_str().map(str::to_string);
        }
        a
    }

    /// A request with the cookie, and the CSRF header unless `csrf` is false.
    async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Value>,
        csrf: bool,
    ) -> Answer {
        let mut req = self
            .node
            .http
            .request(method, self.node.url(&format!("/admin/v1{path}")));
        if let Some(c) = &self.cookie {
            req = req.header("cookie", format!("theme=dark; cr_portal={c}"));
        }
        if let (true, Some(t)) = (csrf, &self.csrf) {
            req = req.header("x-csrf-token", t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let a = send(req).await;
        self.take_cookie(&a);
        a
    }

    async fn get(&mut self, path: &str) -> Answer {
        self.call(Method::GET, path, None, false).await
    }

    async fn post(&mut self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(body), true).await
    }
}

async fn create_admin(node: &Node, email: &str) -> Value {
    let (s, b) = node
        .admin(
            Method::POST,
            "/admin-users",
            Some(json!({"email": email, "password": PW})),
        )
        .await;
    assert_eq!(s, 201, "create admin user: {b}");
    b
}

fn email() -> String {
    format!(
        "Ops-{}@Example.com",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

fn totp_at(secret_b32: &str, step: u64) -> String {
    let secret = Secret::Encoded(secret_b32.to_string())
        .to_bytes()
        .expect("base32 secret");
    let t = TOTP::new_unchecked(Algorithm::SHA1, 6, 0, 30, secret, None, String::new());
    t.generate(step * 30)
}

fn step_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        / 30
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_users_sign_in_with_a_cookie_and_writes_need_the_csrf_token() {
    let node = Node::start().await;
    let e = email();
    let created = create_admin(&node, &e).await;
    assert_eq!(
        created["email"],
        e.to_lowercase(),
        "emails are stored in lower case"
    );
    assert_eq!(created["totp_enabled"], false);
    // Emails are unique whatever their case, and must look like one.
    let (s, b) = node
        .admin(
            Method::POST,
            "/admin-users",
            Some(json!({"email": e.to_uppercase(), "password": PW})),
        )
        .await;
    assert_eq!(
        (s, b["detail"]["code"].as_str()),
        (409, Some("already_exists"))
    );
    let (s, b) = node
        .admin(
            Method::POST,
            "/admin-users",
            Some(json!({"email": "no-at-sign", "password": "short"})),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    let locs: Vec<String> = b["detail"]
        .as_array()
        .expect("issues")
        .iter()
        .map(|i| i["loc"][1].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(locs, ["email", "password"], "{b}");

    let mut browser = Browser::new(&node);
    // Wrong password and unknown email look the same: coded 401.
    for (who, pw) in [(e.as_str(), "wrong password"), ("nobody@example.com", PW)] {
        let a = browser.login(who, pw, None).await;
        assert_eq!(
            (a.status, code(&a)),
            (401, "invalid_credentials"),
            "{}",
            a.body
        );
        assert!(a.header("set-cookie").is_none());
    }
    let a = browser.login(&e, PW, None).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let cookie = a.header("set-cookie").expect("cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Secure"] {
        assert!(cookie.contains(attr), "{attr} in {cookie}");
    }
    let token = browser.cookie.clone().expect("cookie value");
    assert!(
        !a.body.to_string().contains(&token),
        "the token is in the cookie only, never in the body"
    );
    assert_eq!(a.header("cache-control"), Some("no-store"));
    assert_eq!(a.body["user"]["email"], e.to_lowercase());

    let me = browser.get("/auth/me").await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body["csrf_token"].as_str(), browser.csrf.as_deref());
    assert_eq!(me.body["user"]["email"], e.to_lowercase());

    // Reads need no CSRF token; writes do, and a wrong one is as good as none.
    assert_eq!(browser.get("/orgs").await.status, 200);
    let slug = format!("o{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let org = json!({"slug": slug, "name": "Acme"});
    let a = browser
        .call(Method::POST, "/orgs", Some(org.clone()), false)
        .await;
    assert_eq!((a.status, code(&a)), (403, "csrf_failed"), "{}", a.body);
    let real = browser.csrf.replace("x".repeat(43));
    let a = browser.post("/orgs", org.clone()).await;
    assert_eq!((a.status, code(&a)), (403, "csrf_failed"), "{}", a.body);
    browser.csrf = real;
    let a = browser.post("/orgs", org.clone()).await;
    assert_eq!(a.status, 201, "{}", a.body);
    // A bearer token needs no CSRF token (no cookie, so nothing a page could forge).
    let (s, _) = node.admin(Method::GET, "/orgs", None).await;
    assert_eq!(s, 200);
    // A forged cookie is no session.
    let mut forged = Browser::new(&node);
    forged.cookie = Some("cr_at_forged".into());
    let a = forged.get("/auth/me").await;
    assert_eq!((a.status, code(&a)), (401, "unauthorized"));

    // Logout ends the session on the server: the old cookie no longer works.
    let old = browser.cookie.clone();
    let a = browser.post("/auth/logout", json!({})).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(
        a.header("set-cookie")
            .is_some_and(|c| c.contains("Max-Age=0")),
        "logout clears the cookie"
    );
    browser.cookie = old;
    let a = browser.get("/auth/me").await;
    assert_eq!((a.status, code(&a)), (401, "unauthorized"));

    // Guessing is limited per account as for end users: attempts are counted before Argon2.
    let mut limited = None;
    for _ in 0..40 {
        let a = Browser::new(&node).login(&e, "wrong password", None).await;
        if a.status == 429 {
            limited = Some(a);
            break;
        }
        assert_eq!(code(&a), "invalid_credentials");
    }
    let a = limited.expect("429 within 40 wrong passwords");
    assert_eq!(code(&a), "rate_limited");
    assert!(a.header("retry-after").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totp_is_required_once_enrolled_and_each_code_works_once() {
    let node = Node::start().await;
    let e = email();
    create_admin(&node, &e).await;
    let mut browser = Browser::new(&node);
    assert_eq!(browser.login(&e, PW, None).await.status, 200);

    let enrol = browser.post("/auth/totp/enroll", json!({})).await;
    assert_eq!(enrol.status, 200, "{}", enrol.body);
    let secret = enrol.body["secret"].as_str().expect("secret").to_string();
    let url = enrol.body["otpauth_url"].as_str().expect("url");
    assert!(url.starts_with("otpauth://totp/CommonRock:"), "{url}");
    assert!(url.contains(&format!("secret={secret}")), "{url}");
    assert!(enrol.body["qr_svg"].as_str().expect("svg").contains("<svg"));
    assert_eq!(enrol.header("cache-control"), Some("no-store"));

    let a = browser
        .post("/auth/totp/confirm", json!({"code": "000000"}))
        .await;
    assert_eq!((a.status, code(&a)), (401, "invalid_totp"), "{}", a.body);
    let step = step_now();
    let a = browser
        .post(
            "/auth/totp/confirm",
            json!({"code": totp_at(&secret, step)}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let recovery: Vec<String> = a.body["recovery_codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().expect("code").to_string())
        .collect();
    assert_eq!(recovery.len(), 10);
    assert_eq!(a.body["user"]["totp_enabled"], true);
    let a = browser.post("/auth/totp/enroll", json!({})).await;
    assert_eq!((a.status, code(&a)), (409, "already_exists"));

    let mut other = Browser::new(&node);
    let a = other.login(&e, PW, None).await;
    assert_eq!((a.status, code(&a)), (403, "totp_required"), "{}", a.body);
    let a = other.login(&e, "wrong password", Some("123456")).await;
    assert_eq!(
        (a.status, code(&a)),
        (401, "invalid_credentials"),
        "the password first"
    );
    // The code that confirmed enrolment is spent, and so is any code of an earlier step.
    let a = other.login(&e, PW, Some(&totp_at(&secret, step))).await;
    assert_eq!(
        (a.status, code(&a)),
        (401, "invalid_totp"),
        "replay of the confirm code"
    );
    // The next step's code is accepted now (one step of clock skew), and only once.
    let next = totp_at(&secret, step + 1);
    let a = other.login(&e, PW, Some(&next)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = Browser::new(&node).login(&e, PW, Some(&next)).await;
    assert_eq!(
        (a.status, code(&a)),
        (401, "invalid_totp"),
        "a code works once"
    );

    // A recovery code works in place of a code, once, however it is typed.
    let typed = recovery[4].to_uppercase().replace('-', " ");
    let a = Browser::new(&node).login(&e, PW, Some(&typed)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = Browser::new(&node).login(&e, PW, Some(&recovery[4])).await;
    assert_eq!(
        (a.status, code(&a)),
        (401, "invalid_totp"),
        "a recovery code works once"
    );

    // An operator resets a lost authenticator: TOTP off, the user's sessions end.
    let id = a_user_id(&node, &e).await;
    let (s, b) = node
        .admin(Method::DELETE, &format!("/admin-users/{id}/totp"), None)
        .await;
    assert_eq!((s, &b["totp_enabled"]), (200, &json!(false)), "{b}");
    let a = other.get("/auth/me").await;
    assert_eq!(a.status, 401, "sessions end with the reset");
    assert_eq!(Browser::new(&node).login(&e, PW, None).await.status, 200);
    // The TOTP secret never leaves the node in the clear again.
    let (_, list) = node.admin(Method::GET, "/admin-users", None).await;
    assert!(!list.to_string().contains(&secret));
}

async fn a_user_id(node: &Node, email: &str) -> String {
    let (s, list) = node.admin(Method::GET, "/admin-users", None).await;
    assert_eq!(s, 200);
    list["admin_users"]
        .as_array()
        .expect("list")
        .iter()
        .find(|u| u["email"] == email.to_lowercase())
        .and_then(|u| u["id"].as_str())
        .expect("listed")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_and_deleted_admin_users_lose_their_sessions() {
    let node = Node::start().await;
    let e = email();
    create_admin(&node, &e).await;
    let id = a_user_id(&node, &e).await;
    let mut browser = Browser::new(&node);
    assert_eq!(browser.login(&e, PW, None).await.status, 200);
    // An admin user administers every admin user, itself included.
    let other = email();
    let a = browser
        .post("/admin-users", json!({"email": other, "password": PW}))
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let a = browser
        .call(
            Method::PATCH,
            &format!("/admin-users/{id}"),
            Some(json!({"disabled": true})),
            true,
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        browser.get("/auth/me").await.status,
        401,
        "disabling ends sessions"
    );
    let a = Browser::new(&node).login(&e, PW, None).await;
    assert_eq!((a.status, code(&a)), (401, "invalid_credentials"));
    let (s, _) = node
        .admin(
            Method::PATCH,
            &format!("/admin-users/{id}"),
            Some(json!({"disabled": false})),
        )
        .await;
    assert_eq!(s, 200);
    let mut again = Browser::new(&node);
    assert_eq!(again.login(&e, PW, None).await.status, 200);
    let (s, _) = node
        .admin(Method::DELETE, &format!("/admin-users/{id}"), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        again.get("/auth/me").await.status,
        401,
        "deleting ends sessions"
    );
    let a = Browser::new(&node).login(&e, PW, None).await;
    assert_eq!(a.status, 401);
    let (s, _) = node
        .admin(Method::GET, &format!("/admin-users/{id}"), None)
        .await;
    assert_eq!(s, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_sessions_renew_while_used_and_end_when_idle_or_too_old() {
    let node = Node::start_with(
        NodeOptions::default()
            .arg("--portal-idle-timeout-s")
            .arg("3")
            .arg("--portal-session-lifetime-s")
            .arg("8"),
    )
    .await;
    let e = email();
    create_admin(&node, &e).await;

    // Idle: a session not used for longer than the idle timeout is over.
    let mut idle = Browser::new(&node);
    assert_eq!(idle.login(&e, PW, None).await.status, 200);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let a = idle.get("/auth/me").await;
    assert_eq!(
        (a.status, code(&a)),
        (401, "unauthorized"),
        "idle session ended"
    );

    // Used every half second, a session outlives its idle timeout (each renewal hands out a
    // new cookie) until its absolute lifetime.
    let mut busy = Browser::new(&node);
    let started = Instant::now();
    assert_eq!(busy.login(&e, PW, None).await.status, 200);
    let first = busy.cookie.clone();
    let mut alive_for = Duration::ZERO;
    while started.elapsed() < Duration::from_secs(40) {
        let a = busy.get("/auth/me").await;
        if a.status != 200 {
            assert_eq!(code(&a), "unauthorized");
            break;
        }
        alive_for = started.elapsed();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        alive_for > Duration::from_secs(4),
        "renewed past the 3 s idle timeout (alive {alive_for:?})"
    );
    assert!(
        alive_for < Duration::from_secs(30),
        "ended by the 8 s lifetime (alive {alive_for:?})"
    );
    assert_ne!(busy.cookie, first, "renewal replaced the cookie");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_write_is_in_the_audit_log_with_who_where_and_the_request_id() {
    let node = Node::start().await;
    let e = email();
    create_admin(&node, &e).await;
    let mut browser = Browser::new(&node);
    assert_eq!(browser.login(&e, PW, None).await.status, 200);
    let org = format!("o{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let slug = format!("p{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let mut request_ids = Vec::new();
    for (path, body) in [
        ("/orgs".to_string(), json!({"slug": org, "name": "Org"})),
        (
            "/projects".to_string(),
            json!({"org_slug": org, "slug": slug, "name": "P"}),
        ),
        (
            format!("/projects/{slug}/clients"),
            json!({"name": "web", "allowed_origins": ["https://app.example.com"], "scopes": ["end_users:signup"]}),
        ),
        (
            format!("/projects/{slug}/api-keys"),
            json!({"name": "backend", "allowed_cidrs": ["10.0.0.0/8"]}),
        ),
    ] {
        let a = browser.post(&path, body).await;
        assert_eq!(a.status, 201, "{path}: {}", a.body);
        request_ids.push(a.header("x-request-id").expect("request id").to_string());
        // Secrets shown once never reach the log.
        for secret in ["client_key", "key"] {
            if let Some(s) = a.body[secret].as_str() {
                let (_, log) = node.admin(Method::GET, "/audit-log?limit=200", None).await;
                assert!(!log.to_string().contains(s), "{secret} in the audit log");
            }
        }
    }
    let (s, _) = node
        .admin(
            Method::PUT,
            &format!("/projects/{slug}/maintenance"),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(s, 200);

    // Other tests share the store (one keyspace per test binary on CQL): look at ours only.
    let ours = |x: &Value| {
        x["actor"]["name"] == e.to_lowercase().as_str()
            || x["target"] == e.to_lowercase().as_str()
            || x["project"] == slug.as_str()
    };
    let a = browser.get("/audit-log?limit=200").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let entries: Vec<Value> = a.body["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|x| ours(x))
        .cloned()
        .collect();
    let actions: Vec<&str> = entries
        .iter()
        .filter_map(|x| x["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "enable_maintenance",
            "create_api_key",
            "create_client",
            "create_project",
            "create_org",
            "portal_login",
            "create_admin_user",
        ],
        "newest first"
    );
    let by_user = &entries[1];
    assert_eq!(by_user["actor"]["kind"], "admin_user");
    assert_eq!(by_user["actor"]["name"], e.to_lowercase());
    assert_eq!(by_user["project"], slug.as_str());
    assert_eq!(by_user["ip"], "127.0.0.1");
    assert_eq!(by_user["request_id"], request_ids[3].as_str());
    assert_eq!(entries[0]["actor"]["kind"], "bootstrap");
    assert_eq!(entries[4]["target"], org.as_str());
    assert_eq!(entries[4]["project"], Value::Null);

    // Paging: two at a time, following next_cursor, gives the same entries in order (newer
    // entries other tests add meanwhile are above the first page's cursor).
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    while paged.len() < entries.len() {
        let path = match &cursor {
            Some(c) => format!("/audit-log?limit=2&cursor={c}"),
            None => "/audit-log?limit=2".to_string(),
        };
        let a = browser.get(&path).await;
        assert_eq!(a.status, 200, "{}", a.body);
        let page = a.body["entries"].as_array().expect("entries").clone();
        assert!(page.len() <= 2);
        paged.extend(page.into_iter().filter(|x| ours(x)));
        match a.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(paged, entries, "pages join up");
    let a = browser.get("/audit-log?cursor=not-a-cursor").await;
    assert_eq!((a.status, code(&a)), (400, "invalid_cursor"));
    let a = browser.get("/audit-log?limit=0").await;
    assert_eq!(a.status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_creates_an_admin_user_in_a_stopped_node() {
    if commonrock_tests::cql_nodes().is_some() {
        // `admin create-user` writes a stopped node's embedded store (docs/portal.md); a CQL
        // deployment creates admin users through the API, which the other tests cover.
        eprintln!("the CLI writes the embedded store: nothing to run on CQL");
        return;
    }
    let mut node = Node::start().await;
    node.stop().await;
    let e = email();
    let mut child = tokio::process::Command::new(commonrock_tests::binary())
        .args(["admin", "create-user", "--email", &e, "--data-dir"])
        .arg(node.data_dir())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("cli starts");
    use tokio::io::AsyncWriteExt;
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(format!("{PW}\n").as_bytes())
        .await
        .expect("password");
    drop(stdin);
    let out = child.wait_with_output().await.expect("cli ends");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("created admin user"));
    node.restart().await;
    let a = Browser::new(&node).login(&e, PW, None).await;
    assert_eq!(a.status, 200, "{}", a.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_the_docs_are_served_with_a_strict_content_security_policy() {
    let node = Node::start().await;
    let get = |path: &str| node.http.get(node.url(path));
    let page = send(get("/portal/")).await;
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/html")));
    let csp = page
        .header("content-security-policy")
        .expect("csp")
        .to_string();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    let html = page.body.as_str().expect("html").to_string();
    assert!(
        !html.contains("<script>") && !html.contains("<style"),
        "no inline code"
    );
    let script = html
        .split("src=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a script");
    let js = send(get(&format!("/portal/{}", script.trim_start_matches("./")))).await;
    assert_eq!(js.status, 200);
    assert!(js
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/javascript")));
    assert!(js.header("content-security-policy").is_some());

    let redirect = send(
        commonrock_tests::reqwest::Client::builder()
            .redirect(commonrock_tests::reqwest::redirect::Policy::none())
            .build()
            .expect("client")
            .get(node.url("/portal")),
    )
    .await;
    assert_eq!(
        (redirect.status, redirect.header("location")),
        (301, Some("/portal/"))
    );
    let missing = send(get("/portal/nope.js")).await;
    assert_eq!((missing.status, code(&missing)), (404, "not_found"));
    let docs = send(get("/docs/")).await;
    assert_eq!(docs.status, 200);
    let docs_csp = docs.header("content-security-policy").expect("docs csp");
    assert!(docs_csp.contains("script-src 'self'") && docs_csp.contains("frame-ancestors 'none'"));
    // A project cannot take the page's path.
    let (s, b) = node
        .admin(
            Method::POST,
            "/orgs",
            Some(json!({"slug": "portal", "name": "x"})),
        )
        .await;
    assert_eq!(s, 422, "{b}");
}
