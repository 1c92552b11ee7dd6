//! Every error code reachable without the portal and SQL, each with its exact whole body and
//! status; the 422 shapes of SPEC §6 verbatim; the order of checks on a tenant request; and
//! that an error is always JSON, never plain text from the HTTP framework.

use std::time::Duration;

use commonrock_tests::reqwest::{Method, RequestBuilder};
use commonrock_tests::{eventually, Answer, Node, Project, ORIGIN};
use serde_json::{json, Value};

const PW: &str = "password123";

fn coded(code: &str, message: &str) -> Value {
    json!({"detail": {"code": code, "message": message}})
}

async fn send(req: RequestBuilder) -> Answer {
    Answer::of(req.send().await.expect("request")).await
}

/// Status and whole body, served as JSON with a request id.
#[track_caller]
fn expect(a: &Answer, status: u16, body: Value) {
    assert_eq!(a.status, status, "body {:?}", a.body);
    assert_eq!(a.body, body);
    assert!(
        a.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "error responses are JSON: {:?}",
        a.headers
    );
    assert!(a.header("x-request-id").is_some(), "{:?}", a.headers);
}

fn validation(issues: Value) -> Value {
    json!({ "detail": issues })
}

fn signup_body(external_id: &str) -> Value {
    json!({"external_id": external_id, "password": PW, "device_id": "device-1"})
}

/// A raw public-client request with explicit headers (None leaves a header out).
fn public_req(
    p: &Project,
    method: Method,
    path: &str,
    client_id: Option<&str>,
    client_key: Option<&str>,
    origin: Option<&str>,
) -> RequestBuilder {
    let mut r = p
        .http
        .request(method, format!("{}/v1/public{path}", p.base));
    if let Some(v) = client_id {
        r = r.header("X-Client-Id", v);
    }
    if let Some(v) = client_key {
        r = r.header("X-Client-Key", v);
    }
    if let Some(v) = origin {
        r = r.header("Origin", v);
    }
    r
}

fn introspect_req(p: &Project, key: Option<&str>) -> RequestBuilder {
    let mut r = p.http.post(format!("{}/v1/sessions/introspect", p.base));
    if let Some(k) = key {
        r = r.header("X-API-Key", k);
    }
    r.json(&json!({"token": "cr_at_whatever"}))
}

async fn create_key(node: &Node, slug: &str, body: Value) -> (String, String) {
    let (s, k) = node
        .admin(
            Method::POST,
            &format!("/projects/{slug}/api-keys"),
            Some(body),
        )
        .await;
    assert_eq!(s, 201, "{k}");
    (
        k["id"].as_str().expect("id").to_string(),
        k["key"].as_str().expect("key").to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_client_authentication_errors_in_order() {
    let node = Node::start().await;
    let p = node.project(json!({})).await;
    let q = node.project(json!({})).await;
    let invalid = coded("invalid_credentials", "Invalid credentials");
    let body = signup_body("user-1");
    let post = |id: Option<&str>, key: Option<&str>, origin: Option<&str>| {
        public_req(&p, Method::POST, "/end-users/signup", id, key, origin).json(&body)
    };
    let cid = p.client_id.as_str();
    let ckey = p.client_key.as_str();

    expect(
        &send(post(None, None, Some(ORIGIN))).await,
        401,
        invalid.clone(),
    );
    expect(
        &send(post(None, Some(ckey), Some(ORIGIN))).await,
        401,
        invalid.clone(),
    );
    expect(
        &send(post(Some(cid), None, Some(ORIGIN))).await,
        401,
        invalid.clone(),
    );
    expect(
        &send(post(Some(cid), Some("pk_live_wrong"), Some(ORIGIN))).await,
        401,
        invalid.clone(),
    );
    expect(
        &send(post(Some("pk_live_unknown"), Some(ckey), Some(ORIGIN))).await,
        401,
        invalid.clone(),
    );
    // Another project's client, with its own valid key: not a client of this project.
    expect(
        &send(post(Some(&q.client_id), Some(&q.client_key), Some(ORIGIN))).await,
        401,
        invalid.clone(),
    );
    // Bad credentials win over a missing Origin (401 is checked first).
    expect(
        &send(post(Some(cid), Some("nope"), None)).await,
        401,
        invalid.clone(),
    );

    let required = coded("origin_required", "Origin header required");
    expect(
        &send(post(Some(cid), Some(ckey), None)).await,
        403,
        required.clone(),
    );
    expect(
        &send(post(Some(cid), Some(ckey), Some(""))).await,
        403,
        required.clone(),
    );
    expect(
        &send(post(Some(cid), Some(ckey), Some("null"))).await,
        403,
        required.clone(),
    );
    let denied = coded("origin_denied", "Origin not allowed");
    for bad in [
        "https://evil.example.com",
        "http://app.example.com",
        "https://app.example.com:8443",
        "https://app.example.com.evil.com",
    ] {
        expect(
            &send(post(Some(cid), Some(ckey), Some(bad))).await,
            403,
            denied.clone(),
        );
    }
    // Nothing was created by any of the refused requests.
    assert_eq!(p.login("user-1", PW).await.status, 401);
    // Matching is on the serialisation: case-insensitive scheme/host, default port dropped.
    let a = send(post(
        Some(cid),
        Some(ckey),
        Some("HTTPS://App.Example.COM:443"),
    ))
    .await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    let a = send(
        public_req(
            &p,
            Method::POST,
            "/end-users/login",
            Some(cid),
            Some(ckey),
            Some("app://com.example.ios"),
        )
        .json(&body),
    )
    .await;
    assert_eq!(a.status, 200, "native-app origin: {:?}", a.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_scopes_and_revoked_clients() {
    let node = Node::start().await;
    let p = node.project(json!({})).await;
    let (s, c) = node
        .admin(
            Method::POST,
            &format!("/projects/{}/clients", p.slug),
            Some(json!({"name": "login-only", "allowed_origins": [ORIGIN],
                        "scopes": ["end_users:login"]})),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    let login_only = Project {
        client_id: c["client_id"].as_str().expect("id").into(),
        client_key: c["client_key"].as_str().expect("key").into(),
        ..p.clone()
    };
    let denied = coded(
        "client_scope_denied",
        "Operation not allowed for this client",
    );
    expect(&login_only.signup("user-1", PW).await, 403, denied.clone());
    expect(&login_only.refresh("cr_rt_x").await, 403, denied.clone());
    expect(&login_only.me("cr_at_x").await, 403, denied.clone());
    expect(&login_only.logout("cr_at_x").await, 403, denied.clone());
    // Scope is checked after the Origin.
    expect(
        &send(
            public_req(
                &login_only,
                Method::POST,
                "/end-users/signup",
                Some(&login_only.client_id),
                Some(&login_only.client_key),
                Some("https://evil.example.com"),
            )
            .json(&signup_body("user-1")),
        )
        .await,
        403,
        coded("origin_denied", "Origin not allowed"),
    );
    assert_eq!(p.signup("user-1", PW).await.status, 201);
    assert_eq!(login_only.login("user-1", PW).await.status, 200);

    let (s, b) = node
        .admin(
            Method::DELETE,
            &format!("/projects/{}/clients/{}", p.slug, login_only.client_id),
            None,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let revoked = eventually(Duration::from_secs(2), || async {
        let a = login_only.login("user-1", PW).await;
        (a.status == 401).then_some(a)
    })
    .await
    .expect("a revoked client stops authenticating within the revocation bound");
    expect(
        &revoked,
        401,
        coded("invalid_credentials", "Invalid credentials"),
    );
    // The project's other client is unaffected.
    assert_eq!(p.login("user-1", PW).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_key_authentication_errors_in_order() {
    let node = Node::start().await;
    let p = node.project(json!({})).await;
    let q = node.project(json!({})).await;
    expect(
        &send(introspect_req(&p, None)).await,
        401,
        coded("missing_api_key", "API key required"),
    );
    expect(
        &send(introspect_req(&p, Some(""))).await,
        401,
        coded("missing_api_key", "API key required"),
    );
    let invalid = coded("invalid_api_key", "Invalid API key");
    expect(
        &send(introspect_req(&p, Some("sk_live_unknown"))).await,
        401,
        invalid.clone(),
    );
    expect(
        &send(introspect_req(&p, Some(&q.secret_key))).await,
        401,
        invalid.clone(),
    );
    // A secret key is not a client key and vice versa.
    expect(
        &send(introspect_req(&p, Some(&p.client_key))).await,
        401,
        invalid.clone(),
    );

    let (_, unrestricted) = create_key(&node, &p.slug, json!({"name": "open"})).await;
    expect(
        &send(introspect_req(&p, Some(&unrestricted))).await,
        403,
        coded(
            "restrictions_required",
            "API key has no IP or origin restriction",
        ),
    );
    let (_, elsewhere) = create_key(
        &node,
        &p.slug,
        json!({"name": "vpc", "allowed_cidrs": ["10.0.0.0/8"]}),
    )
    .await;
    expect(
        &send(introspect_req(&p, Some(&elsewhere))).await,
        403,
        coded("ip_denied", "IP address not allowed"),
    );
    // X-Forwarded-For from an untrusted peer is ignored: no way around the IP check.
    expect(
        &send(introspect_req(&p, Some(&elsewhere)).header("X-Forwarded-For", "10.1.2.3")).await,
        403,
        coded("ip_denied", "IP address not allowed"),
    );

    let (_, by_origin) = create_key(
        &node,
        &p.slug,
        json!({"name": "web", "allowed_origins": [ORIGIN]}),
    )
    .await;
    let required = coded("origin_required", "Origin header required");
    expect(
        &send(introspect_req(&p, Some(&by_origin))).await,
        403,
        required.clone(),
    );
    expect(
        &send(introspect_req(&p, Some(&by_origin)).header("Origin", "")).await,
        403,
        required.clone(),
    );
    expect(
        &send(introspect_req(&p, Some(&by_origin)).header("Origin", "null")).await,
        403,
        required,
    );
    expect(
        &send(introspect_req(&p, Some(&by_origin)).header("Origin", "https://evil.example.com"))
            .await,
        403,
        coded("origin_denied", "Origin not allowed"),
    );
    let ok = send(introspect_req(&p, Some(&by_origin)).header("Origin", ORIGIN)).await;
    expect(&ok, 200, json!({"active": false}));

    // Both restrictions: the IP is checked before the Origin.
    let (_, both) = create_key(
        &node,
        &p.slug,
        json!({"name": "both", "allowed_cidrs": ["10.0.0.0/8"], "allowed_origins": [ORIGIN]}),
    )
    .await;
    expect(
        &send(introspect_req(&p, Some(&both))).await,
        403,
        coded("ip_denied", "IP address not allowed"),
    );

    let (id, revoked) = create_key(
        &node,
        &p.slug,
        json!({"name": "old", "allowed_cidrs": ["127.0.0.1/32"]}),
    )
    .await;
    expect(
        &send(introspect_req(&p, Some(&revoked))).await,
        200,
        json!({"active": false}),
    );
    let (s, b) = node
        .admin(
            Method::DELETE,
            &format!("/projects/{}/api-keys/{id}", p.slug),
            None,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let a = eventually(Duration::from_secs(2), || async {
        let a = send(introspect_req(&p, Some(&revoked))).await;
        (a.status == 401).then_some(a)
    })
    .await
    .expect("a revoked key stops working within the revocation bound");
    expect(&a, 401, invalid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_size_and_media_type_errors() {
    let node = Node::start().await;
    let p = node.project(json!({})).await;
    let http = &node.http;
    let not_found = coded("not_found", "Not found");
    for path in ["/nope", "/", "/admin", "/x/v1/public", "/healthz/x"] {
        expect(
            &send(http.get(node.url(path))).await,
            404,
            not_found.clone(),
        );
    }
    expect(
        &send(
            p.public(Method::POST, "/end-users/unknown")
                .json(&json!({})),
        )
        .await,
        404,
        not_found.clone(),
    );
    // A wrong method on an unknown path is still 404, not 405.
    expect(
        &send(http.delete(node.url("/nope/v1/whatever"))).await,
        404,
        not_found.clone(),
    );
    let not_allowed = coded("method_not_allowed", "Method not allowed");
    expect(
        &send(p.public(Method::GET, "/end-users/login")).await,
        405,
        not_allowed.clone(),
    );
    expect(
        &send(p.public(Method::POST, "/end-users/me")).await,
        405,
        not_allowed.clone(),
    );
    expect(
        &send(http.get(format!("{}/v1/sessions/introspect", p.base))).await,
        405,
        not_allowed.clone(),
    );
    // The route is resolved before the slug: 405 even for an unknown project.
    expect(
        &send(http.get(node.url("/nosuchproject/v1/public/end-users/login"))).await,
        405,
        not_allowed.clone(),
    );
    let healthz = send(http.post(node.url("/healthz"))).await;
    expect(&healthz, 405, not_allowed);
    // Every 405 says what the route answers (RFC 9110 §15.5.6).
    assert_eq!(healthz.header("allow"), Some("GET"));
    let login = send(p.public(Method::GET, "/end-users/login")).await;
    assert_eq!(login.header("allow"), Some("POST, OPTIONS"));

    let missing = coded("project_not_found", "Project not found");
    let unknown = Project {
        base: node.url("/nosuchproject"),
        ..p.clone()
    };
    expect(&unknown.signup("user-1", PW).await, 404, missing.clone());
    expect(&unknown.introspect("cr_at_x").await, 404, missing.clone());
    // The slug is checked before the credentials.
    expect(
        &send(
            http.post(node.url("/nosuchproject/v1/public/end-users/login"))
                .json(&signup_body("u")),
        )
        .await,
        404,
        missing.clone(),
    );

    let too_large = coded("payload_too_large", "Payload too large");
    let big = json!({"external_id": "user-1", "password": "x".repeat(100 * 1024),
                     "device_id": "d"});
    expect(
        &p.public_post("/end-users/login", big.clone()).await,
        413,
        too_large.clone(),
    );
    // Size is checked before the slug and before the credentials.
    expect(
        &send(
            http.post(node.url("/nosuchproject/v1/public/end-users/login"))
                .json(&big),
        )
        .await,
        413,
        too_large.clone(),
    );
    expect(
        &send(
            http.post(format!("{}/v1/sessions/introspect", p.base))
                .json(&json!({"token": "x".repeat(100 * 1024)})),
        )
        .await,
        413,
        too_large,
    );

    let unsupported = coded(
        "unsupported_media_type",
        "Content-Type must be application/json",
    );
    let plain = send(
        p.public(Method::POST, "/end-users/login")
            .header("Content-Type", "text/plain")
            .body(signup_body("user-1").to_string()),
    )
    .await;
    expect(&plain, 415, unsupported.clone());
    let form = send(
        p.public(Method::POST, "/end-users/signup")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("external_id=a&password=b"),
    )
    .await;
    expect(&form, 415, unsupported);
    // `application/json; charset=utf-8` is JSON.
    let charset = send(
        p.public(Method::POST, "/end-users/signup")
            .header("Content-Type", "application/json; charset=utf-8")
            .body(signup_body("user-1").to_string()),
    )
    .await;
    assert_eq!(charset.status, 201, "{:?}", charset.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_order_credentials_before_body() {
    let node = Node::start().await;
    let p = node.project(json!({})).await;
    let invalid = coded("invalid_credentials", "Invalid credentials");
    // Malformed JSON with a bad client key → 401, not 422.
    let a = send(
        public_req(
            &p,
            Method::POST,
            "/end-users/login",
            Some(&p.client_id),
            Some("bad"),
            Some(ORIGIN),
        )
        .header("Content-Type", "application/json")
        .body("{not json"),
    )
    .await;
    expect(&a, 401, invalid.clone());
    // Missing X-Client-* with an invalid body → 401.
    let a = send(
        public_req(
            &p,
            Method::POST,
            "/end-users/signup",
            None,
            None,
            Some(ORIGIN),
        )
        .json(&json!({"external_id": 5})),
    )
    .await;
    expect(&a, 401, invalid.clone());
    // A wrong content type with no credentials → 401 (credentials first).
    let a = send(
        public_req(
            &p,
            Method::POST,
            "/end-users/signup",
            None,
            None,
            Some(ORIGIN),
        )
        .header("Content-Type", "text/plain")
        .body("hello"),
    )
    .await;
    expect(&a, 401, invalid);
    // Malformed body with a bad secret key → 401; with none → 401 missing_api_key.
    let a = send(
        p.http
            .post(format!("{}/v1/sessions/introspect", p.base))
            .header("X-API-Key", "sk_live_bad")
            .header("Content-Type", "application/json")
            .body("{{{"),
    )
    .await;
    expect(&a, 401, coded("invalid_api_key", "Invalid API key"));
    let a = send(
        p.http
            .post(format!("{}/v1/sessions/introspect/batch", p.base))
            .header("Content-Type", "application/json")
            .body("[]"),
    )
    .await;
    expect(&a, 401, coded("missing_api_key", "API key required"));
    // A missing Bearer with a valid client → the seed's plain 401, with the challenge.
    let a = send(p.public(Method::POST, "/end-users/logout")).await;
    expect(&a, 401, json!({"detail": "Invalid session"}));
    assert_eq!(a.header("www-authenticate"), Some("Bearer"));
    let a = send(
        p.public(Method::GET, "/end-users/me")
            .header("Authorization", "Bearer"),
    )
    .await;
    expect(&a, 401, json!({"detail": "Invalid session"}));
    assert_eq!(a.header("www-authenticate"), Some("Bearer"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_errors_have_the_pydantic_v1_shapes() {
    let node = Node::start().await;
    let p = node.project(json!({})).await;
    let signup = |body: Value| p.public_post("/end-users/signup", body);

    expect(
        &signup(json!({"password": PW, "device_id": "d"})).await,
        422,
        validation(
            json!([{"loc": ["body", "external_id"], "msg": "field required",
                           "type": "value_error.missing"}]),
        ),
    );
    expect(
        &signup(json!({"external_id": 5, "password": PW, "device_id": "d"})).await,
        422,
        validation(
            json!([{"loc": ["body", "external_id"], "msg": "str type expected",
                           "type": "type_error.str"}]),
        ),
    );
    expect(
        &signup(json!({"external_id": ["a"], "password": PW, "device_id": "d"})).await,
        422,
        validation(
            json!([{"loc": ["body", "external_id"], "msg": "str type expected",
                           "type": "type_error.str"}]),
        ),
    );
    expect(
        &signup(json!({"external_id": null, "password": PW, "device_id": "d"})).await,
        422,
        validation(json!([{"loc": ["body", "external_id"],
                           "msg": "none is not an allowed value",
                           "type": "type_error.none.not_allowed"}])),
    );
    expect(
        &signup(json!({"external_id": "x".repeat(129), "password": PW, "device_id": "d"})).await,
        422,
        validation(json!([{"loc": ["body", "external_id"],
                           "msg": "ensure this value has at most 128 characters",
                           "type": "value_error.any_str.max_length",
                           "ctx": {"limit_value": 128}}])),
    );
    expect(
        &signup(json!({"external_id": "", "password": PW, "device_id": "d"})).await,
        422,
        validation(json!([{"loc": ["body", "external_id"],
                           "msg": "ensure this value has at least 1 characters",
                           "type": "value_error.any_str.min_length",
                           "ctx": {"limit_value": 1}}])),
    );
    expect(
        &signup(json!({"external_id": "u", "password": "1234567", "device_id": "d"})).await,
        422,
        validation(json!([{"loc": ["body", "password"],
                           "msg": "ensure this value has at least 8 characters",
                           "type": "value_error.any_str.min_length",
                           "ctx": {"limit_value": 8}}])),
    );
    expect(
        &signup(json!({"external_id": "u", "password": "p".repeat(1025), "device_id": "d"})).await,
        422,
        validation(json!([{"loc": ["body", "password"],
                           "msg": "ensure this value has at most 1024 characters",
                           "type": "value_error.any_str.max_length",
                           "ctx": {"limit_value": 1024}}])),
    );
    // Eight characters of any width are eight characters.
    assert_eq!(
        signup(json!({"external_id": "wide", "password": "パスワード八文字", "device_id": "d"}))
            .await
            .status,
        201
    );

    // One entry per problem.
    let several = signup(json!({"external_id": 5, "password": "short",
                                "device_id": "d".repeat(129), "unknown": true}))
    .await;
    assert_eq!(several.status, 422);
    let mut issues = several.body["detail"].as_array().expect("list").clone();
    issues.sort_by_key(|i| i["loc"].to_string());
    assert_eq!(
        Value::Array(issues),
        json!([
            {"loc": ["body", "device_id"], "msg": "ensure this value has at most 128 characters",
             "type": "value_error.any_str.max_length", "ctx": {"limit_value": 128}},
            {"loc": ["body", "external_id"], "msg": "str type expected", "type": "type_error.str"},
            {"loc": ["body", "password"], "msg": "ensure this value has at least 8 characters",
             "type": "value_error.any_str.min_length", "ctx": {"limit_value": 8}},
        ])
    );
    let all_missing = signup(json!({})).await;
    assert_eq!(all_missing.status, 422);
    let mut locs: Vec<String> = all_missing.body["detail"]
        .as_array()
        .expect("list")
        .iter()
        .map(|i| {
            assert_eq!(i["msg"], "field required");
            assert_eq!(i["type"], "value_error.missing");
            i["loc"].to_string()
        })
        .collect();
    locs.sort();
    assert_eq!(
        locs,
        vec![
            r#"["body","device_id"]"#,
            r#"["body","external_id"]"#,
            r#"["body","password"]"#
        ]
    );

    // Bad JSON: the character (not byte) offset, as Python's JSONDecodeError.pos.
    let bad = send(
        p.public(Method::POST, "/end-users/signup")
            .header("Content-Type", "application/json")
            .body(r#"{"external_id": "é", }"#),
    )
    .await;
    assert_eq!(bad.status, 422, "{:?}", bad.body);
    let issues = bad.body["detail"].as_array().expect("list");
    assert_eq!(issues.len(), 1, "{:?}", bad.body);
    assert_eq!(issues[0]["loc"], json!(["body", 21]));
    assert_eq!(issues[0]["type"], "value_error.jsondecode");
    assert!(issues[0]["msg"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(
        !bad.body.to_string().contains("external_id"),
        "the body is never echoed"
    );
    for broken in ["{", "not json", "{\"a\":1}}", "\u{0}"] {
        let a = send(
            p.public(Method::POST, "/end-users/login")
                .header("Content-Type", "application/json")
                .body(broken),
        )
        .await;
        assert_eq!(a.status, 422, "{broken:?}: {:?}", a.body);
        let d = &a.body["detail"][0];
        assert_eq!(d["type"], "value_error.jsondecode", "{broken:?}");
        assert_eq!(d["loc"][0], "body");
        assert!(d["loc"][1].is_u64(), "{broken:?}: {d}");
    }
    // A body that is JSON but not an object.
    for non_object in [json!([1, 2]), json!("text"), json!(42), json!(null)] {
        expect(
            &p.public_post("/end-users/login", non_object.clone()).await,
            422,
            validation(json!([{"loc": ["body"], "msg": "value is not a valid dict",
                               "type": "type_error.dict"}])),
        );
    }
    // Introspection too: serde would read an array as the body's fields in order, so
    // `["<token>"]` once answered `active: true`.
    let token = p.signup("dict-check", "password123").await.body["access_token"]
        .as_str()
        .expect("access token")
        .to_string();
    for (path, non_object) in [
        ("/v1/sessions/introspect", json!([token])),
        ("/v1/sessions/introspect", json!([null, null])),
        ("/v1/sessions/introspect/batch", json!([[token]])),
        ("/v1/sessions/introspect/batch", json!([])),
    ] {
        let a = send(
            p.http
                .post(format!("{}{path}", p.base))
                .header("X-API-Key", &p.secret_key)
                .json(&non_object),
        )
        .await;
        expect(
            &a,
            422,
            validation(json!([{"loc": ["body"], "msg": "value is not a valid dict",
                               "type": "type_error.dict"}])),
        );
    }
    // An empty body is a missing one.
    expect(
        &send(
            p.public(Method::POST, "/end-users/login")
                .header("Content-Type", "application/json"),
        )
        .await,
        422,
        validation(json!([{"loc": ["body"], "msg": "field required",
                           "type": "value_error.missing"}])),
    );
    // Login's password has no minimum, but still a type.
    expect(
        &p.public_post(
            "/end-users/login",
            json!({"external_id": "u", "password": 12345678, "device_id": "d"}),
        )
        .await,
        422,
        validation(
            json!([{"loc": ["body", "password"], "msg": "str type expected",
                           "type": "type_error.str"}]),
        ),
    );
    expect(
        &p.public_post("/end-users/refresh", json!({"device_id": "d"}))
            .await,
        422,
        validation(
            json!([{"loc": ["body", "refresh_token"], "msg": "field required",
                           "type": "value_error.missing"}]),
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_errors() {
    let node = Node::start().await;
    let p = node.project(json!({})).await;
    let http = &node.http;
    let unauthorized = coded("unauthorized", "Unauthorized");
    for req in [
        http.get(node.url("/admin/v1/orgs")),
        http.get(node.url("/admin/v1/orgs")).bearer_auth("wrong"),
        http.get(node.url("/admin/v1/orgs"))
            .header("Authorization", format!("Basic {}", node.admin_token)),
        http.post(node.url("/admin/v1/orgs"))
            .json(&json!({"slug": "oabc", "name": "x"})),
    ] {
        let a = send(req).await;
        expect(&a, 401, unauthorized.clone());
        assert_eq!(a.header("www-authenticate"), Some("Bearer"));
    }
    // Unauthenticated callers learn nothing about which resources exist.
    let a = send(http.get(node.url(&format!("/admin/v1/projects/{}", p.slug)))).await;
    expect(&a, 401, unauthorized);

    let admin = |method: Method, path: &str, body: Option<Value>| {
        let mut r = http
            .request(method, node.url(&format!("/admin/v1{path}")))
            .bearer_auth(&node.admin_token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        send(r)
    };
    expect(
        &admin(
            Method::POST,
            &format!("/projects/{}/clients", p.slug),
            Some(json!({"name": "x", "allowed_origins": [ORIGIN], "scopes": ["admin"]})),
        )
        .await,
        400,
        coded("invalid_public_scopes", "Invalid public scopes"),
    );
    expect(
        &admin(
            Method::POST,
            &format!("/projects/{}/clients", p.slug),
            Some(json!({"name": "x", "allowed_origins": [ORIGIN],
                        "scopes": ["end_users:login", "end_users:delete"]})),
        )
        .await,
        400,
        coded("invalid_public_scopes", "Invalid public scopes"),
    );
    let exists = coded("already_exists", "Already exists");
    let org = format!("o{}", p.slug);
    expect(
        &admin(
            Method::POST,
            "/orgs",
            Some(json!({"slug": org, "name": "again"})),
        )
        .await,
        409,
        exists.clone(),
    );
    expect(
        &admin(
            Method::POST,
            "/projects",
            Some(json!({"org_slug": org, "slug": p.slug, "name": "again"})),
        )
        .await,
        409,
        exists,
    );
    expect(
        &admin(Method::GET, "/projects/nosuchproject", None).await,
        404,
        coded("project_not_found", "Project not found"),
    );
    expect(
        &admin(Method::GET, "/nothing-here", None).await,
        404,
        coded("not_found", "Not found"),
    );
    expect(
        &admin(Method::DELETE, "/orgs", None).await,
        405,
        coded("method_not_allowed", "Method not allowed"),
    );
    expect(
        &admin(
            Method::GET,
            &format!("/projects/{}/end-users/nobody", p.slug),
            None,
        )
        .await,
        404,
        coded("not_found", "Not found"),
    );
    expect(
        &admin(
            Method::DELETE,
            &format!("/projects/{}/sessions/{}", p.slug, uuid::Uuid::new_v4()),
            None,
        )
        .await,
        404,
        coded("not_found", "Not found"),
    );
    expect(
        &admin(
            Method::POST,
            "/orgs",
            Some(json!({"slug": "Bad Slug!", "name": "x"})),
        )
        .await,
        422,
        validation(json!([{"loc": ["body", "slug"],
                           "msg": "slug must match ^[a-z0-9][a-z0-9_-]{2,63}$",
                           "type": "value_error"}])),
    );
    expect(
        &admin(Method::POST, "/orgs", Some(json!({"name": "x"}))).await,
        422,
        validation(json!([{"loc": ["body", "slug"], "msg": "field required",
                           "type": "value_error.missing"}])),
    );
}
