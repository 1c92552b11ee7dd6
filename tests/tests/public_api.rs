//! The seed's end-user API with exact shapes: signup, login, refresh (rotation, grace replay,
//! theft detection, device binding), logout, me, password change, own sessions, the session
//! cap, the seed's Next.js route handler, and the external_id rules (SPEC §3).

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use commonrock_tests::reqwest::Method;
use commonrock_tests::{Answer, Node, Project, ORIGIN};
use serde_json::{json, Value};

const PW: &str = "password123";

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$` → Unix seconds; panics on any other shape.
fn parse_time(v: &Value) -> i64 {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("time is a string: {v}"));
    let b = s.as_bytes();
    let digits = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18];
    assert!(
        b.len() == 20
            && digits.iter().all(|&i| b[i].is_ascii_digit())
            && b[4] == b'-'
            && b[7] == b'-'
            && b[10] == b'T'
            && b[13] == b':'
            && b[16] == b':'
            && b[19] == b'Z',
        "time {s:?} is not YYYY-MM-DDTHH:MM:SSZ"
    );
    let n = |r: std::ops::Range<usize>| s[r].parse::<i64>().expect("digits");
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Days from civil (Howard Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)
}

fn is_uuid(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| uuid::Uuid::parse_str(s).is_ok() && s.len() == 36)
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

fn request_id(a: &Answer) {
    assert!(
        a.header("x-request-id").is_some_and(|v| !v.is_empty()),
        "X-Request-Id missing: {:?}",
        a.headers
    );
}

/// A whole token response: exactly the seed's keys plus the OAuth aliases, consistent values,
/// lifetimes near `access_ttl` / `refresh_ttl`, `Cache-Control: no-store`, JSON, a request id.
fn assert_token_response(a: &Answer, status: u16, external_id: &str, access_ttl: i64) {
    assert_eq!(a.status, status, "{:?}", a.body);
    let b = &a.body;
    assert_eq!(
        keys(b),
        set(&[
            "token",
            "refresh_token",
            "end_user",
            "session_id",
            "expires_at",
            "refresh_expires_at",
            "access_token",
            "token_type",
            "expires_in",
            "user",
        ]),
        "{b}"
    );
    assert_eq!(keys(&b["end_user"]), set(&["id", "external_id"]), "{b}");
    assert!(is_uuid(&b["end_user"]["id"]), "{b}");
    assert_eq!(b["end_user"]["external_id"], external_id);
    assert_eq!(b["user"], b["end_user"]);
    assert!(is_uuid(&b["session_id"]), "{b}");
    let token = b["token"].as_str().expect("token string");
    let refresh = b["refresh_token"].as_str().expect("refresh string");
    assert!(token.len() >= 43, "token has ≥ 256 bits: {token}");
    assert!(
        refresh.len() >= 43,
        "refresh token has ≥ 256 bits: {refresh}"
    );
    assert_ne!(token, refresh);
    assert_eq!(b["access_token"], b["token"]);
    assert_eq!(b["token_type"], "Bearer");
    let expires_in = b["expires_in"].as_i64().expect("expires_in is an integer");
    assert!(
        (access_ttl - 5..=access_ttl).contains(&expires_in),
        "expires_in {expires_in} ≈ {access_ttl}"
    );
    let now = now_secs();
    let exp = parse_time(&b["expires_at"]);
    assert!(
        (exp - now - access_ttl).abs() <= 5,
        "expires_at {exp} ≈ now {now} + {access_ttl}"
    );
    let rexp = parse_time(&b["refresh_expires_at"]);
    assert!(
        (rexp - now - 30 * 86_400).abs() <= 5,
        "refresh_expires_at {rexp} ≈ now + 30 days"
    );
    assert_eq!(a.header("cache-control"), Some("no-store"));
    assert!(
        a.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{:?}",
        a.headers
    );
    request_id(a);
}

fn s(a: &Answer, field: &str) -> String {
    a.body[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {}", a.body))
        .to_string()
}

async fn send(req: commonrock_tests::reqwest::RequestBuilder) -> Answer {
    Answer::of(req.send().await.expect("request")).await
}

async fn assert_active(p: &Project, token: &str, active: bool) {
    let i = p.introspect(token).await;
    assert_eq!(i.status, 200, "{:?}", i.body);
    if active {
        assert_eq!(i.body["active"], true, "{:?}", i.body);
    } else {
        assert_eq!(i.body, json!({"active": false}));
    }
}

fn invalid_session(a: &Answer) {
    assert_eq!(a.status, 401, "{:?}", a.body);
    assert_eq!(a.body, json!({"detail": "Invalid session"}));
    assert_eq!(a.header("www-authenticate"), Some("Bearer"));
    request_id(a);
}

fn invalid_refresh(a: &Answer) {
    assert_eq!(a.status, 401, "{:?}", a.body);
    assert_eq!(a.body, json!({"detail": "Invalid refresh token"}));
    request_id(a);
}

fn invalid_credentials(a: &Answer) {
    assert_eq!(a.status, 401, "{:?}", a.body);
    assert_eq!(a.body, json!({"detail": "Invalid credentials"}));
    request_id(a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signup_login_me_logout_have_the_seed_shapes() {
    let node = Node::start().await;
    let p = node.project(json!({})).await;

    let su = p.signup("user-1", PW).await;
    assert_token_response(&su, 201, "user-1", 3600);
    let user_id = su.body["end_user"]["id"].clone();

    let dup = p.signup("user-1", "another-password").await;
    assert_eq!(dup.status, 409);
    assert_eq!(
        dup.body,
        json!({"detail": "External ID already registered"})
    );
    request_id(&dup);

    invalid_credentials(&p.login("user-1", "wrong-password").await);
    invalid_credentials(&p.login("nobody", PW).await);
    // The minimum length is a signup rule: a short password at login is just wrong.
    invalid_credentials(&p.login("user-1", "short").await);
    invalid_credentials(&p.login("user-1", "").await);

    let li = p.login("user-1", PW).await;
    assert_token_response(&li, 200, "user-1", 3600);
    assert_eq!(li.body["end_user"]["id"], user_id);
    assert_ne!(
        li.body["session_id"], su.body["session_id"],
        "login = new session"
    );
    assert_ne!(li.body["token"], su.body["token"]);

    let token = s(&li, "token");
    let me = p.me(&token).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body, json!({"id": user_id, "external_id": "user-1"}));
    request_id(&me);

    // A refresh token is not an access token.
    invalid_session(&p.me(&s(&li, "refresh_token")).await);
    invalid_session(&p.logout(&s(&li, "refresh_token")).await);
    // No or malformed Authorization.
    invalid_session(&send(p.public(Method::GET, "/end-users/me")).await);
    invalid_session(
        &send(
            p.public(Method::GET, "/end-users/me")
                .header("Authorization", "Basic abc"),
        )
        .await,
    );
    invalid_session(&p.me("cr_at_not-a-real-token").await);

    let out = p.logout(&token).await;
    assert_eq!(out.status, 200);
    assert_eq!(out.body, json!({"status": "ok"}));
    request_id(&out);
    invalid_session(&p.me(&token).await);
    assert_active(&p, &token, false).await;
    invalid_session(&p.logout(&token).await);
    // The refresh token of a logged-out session is dead too.
    invalid_refresh(&p.refresh(&s(&li, "refresh_token")).await);
    // The signup session is untouched.
    assert_active(&p, &s(&su, "token"), true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_rotates_both_tokens_and_retires_the_old_access_token() {
    let node = Node::start().await;
    let p = node.project(json!({"refresh_reuse_grace_s": 0})).await;
    let a = p.signup("user-1", PW).await;
    assert_eq!(a.status, 201);
    let b = p.refresh(&s(&a, "refresh_token")).await;
    assert_token_response(&b, 200, "user-1", 3600);
    assert_ne!(b.body["token"], a.body["token"]);
    assert_ne!(b.body["refresh_token"], a.body["refresh_token"]);
    assert_eq!(b.body["session_id"], a.body["session_id"]);
    assert_eq!(b.body["end_user"], a.body["end_user"]);
    assert_active(&p, &s(&a, "token"), false).await;
    invalid_session(&p.me(&s(&a, "token")).await);
    assert_active(&p, &s(&b, "token"), true).await;
    assert_eq!(p.me(&s(&b, "token")).await.status, 200);
    // And once more: rotation continues from the new pair.
    let c = p.refresh(&s(&b, "refresh_token")).await;
    assert_token_response(&c, 200, "user-1", 3600);
    assert_ne!(c.body["token"], b.body["token"]);
    assert_active(&p, &s(&c, "token"), true).await;
    assert_active(&p, &s(&b, "token"), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_within_the_grace_window_returns_the_identical_pair() {
    let node = Node::start().await;
    let p = node.project(json!({"refresh_reuse_grace_s": 30})).await;
    let a = p.signup("user-1", PW).await;
    assert_eq!(a.status, 201);
    let b = p.refresh(&s(&a, "refresh_token")).await;
    assert_token_response(&b, 200, "user-1", 3600);
    let again = p.refresh(&s(&a, "refresh_token")).await;
    assert_token_response(&again, 200, "user-1", 3600);
    for field in [
        "token",
        "refresh_token",
        "access_token",
        "session_id",
        "expires_at",
        "end_user",
    ] {
        assert_eq!(
            again.body[field], b.body[field],
            "{field} differs on replay"
        );
    }
    assert_active(&p, &s(&b, "token"), true).await;
    // The successor pair keeps working: the replay forked nothing.
    let c = p.refresh(&s(&b, "refresh_token")).await;
    assert_token_response(&c, 200, "user-1", 3600);
    assert_ne!(c.body["refresh_token"], b.body["refresh_token"]);
    // A is no longer the immediately previous token: presenting it now is theft.
    invalid_refresh(&p.refresh(&s(&a, "refresh_token")).await);
    assert_active(&p, &s(&c, "token"), false).await;
    invalid_refresh(&p.refresh(&s(&c, "refresh_token")).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reuse_outside_the_grace_window_revokes_the_whole_session() {
    let node = Node::start().await;
    let p = node.project(json!({"refresh_reuse_grace_s": 0})).await;
    let a = p.signup("user-1", PW).await;
    assert_eq!(a.status, 201);
    let other = p.login("user-1", PW).await;
    assert_eq!(other.status, 200);
    let b = p.refresh(&s(&a, "refresh_token")).await;
    assert_eq!(b.status, 200, "{:?}", b.body);
    invalid_refresh(&p.refresh(&s(&a, "refresh_token")).await);
    assert_active(&p, &s(&b, "token"), false).await;
    invalid_session(&p.me(&s(&b, "token")).await);
    invalid_refresh(&p.refresh(&s(&b, "refresh_token")).await);
    // Only that session: the user's other session lives on.
    assert_active(&p, &s(&other, "token"), true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_from_another_device_fails_without_revoking_the_session() {
    let node = Node::start().await;
    let p = node.project(json!({"refresh_reuse_grace_s": 0})).await;
    let a = p.signup("user-1", PW).await;
    assert_eq!(a.status, 201);
    let stolen = p
        .public_post(
            "/end-users/refresh",
            json!({"refresh_token": s(&a, "refresh_token"), "device_id": "other-device"}),
        )
        .await;
    invalid_refresh(&stolen);
    // Not theft: the session and its tokens still work from the right device.
    assert_active(&p, &s(&a, "token"), true).await;
    let b = p.refresh(&s(&a, "refresh_token")).await;
    assert_token_response(&b, 200, "user-1", 3600);
    assert_active(&p, &s(&b, "token"), true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_id_comes_from_the_body_or_the_x_device_id_header() {
    let node = Node::start().await;
    let p = node.project(json!({"refresh_reuse_grace_s": 0})).await;
    let missing = json!({"detail": [{"loc": ["body", "device_id"], "msg": "field required",
                                     "type": "value_error.missing"}]});

    let su = send(
        p.public(Method::POST, "/end-users/signup")
            .header("X-Device-Id", "hdr-device")
            .json(&json!({"external_id": "user-1", "password": PW})),
    )
    .await;
    assert_token_response(&su, 201, "user-1", 3600);

    // The session is bound to the header's device id.
    let wrong = p.refresh(&s(&su, "refresh_token")).await; // device-1
    invalid_refresh(&wrong);
    let rf = send(
        p.public(Method::POST, "/end-users/refresh")
            .header("X-Device-Id", "hdr-device")
            .json(&json!({"refresh_token": s(&su, "refresh_token")})),
    )
    .await;
    assert_token_response(&rf, 200, "user-1", 3600);
    // The body wins over the header.
    let rf2 = send(
        p.public(Method::POST, "/end-users/refresh")
            .header("X-Device-Id", "something-else")
            .json(&json!({"refresh_token": s(&rf, "refresh_token"), "device_id": "hdr-device"})),
    )
    .await;
    assert_token_response(&rf2, 200, "user-1", 3600);

    let li = send(
        p.public(Method::POST, "/end-users/login")
            .header("X-Device-Id", "hdr-device-2")
            .json(&json!({"external_id": "user-1", "password": PW})),
    )
    .await;
    assert_token_response(&li, 200, "user-1", 3600);

    for (path, body) in [
        (
            "/end-users/signup",
            json!({"external_id": "user-2", "password": PW}),
        ),
        (
            "/end-users/login",
            json!({"external_id": "user-1", "password": PW}),
        ),
        (
            "/end-users/refresh",
            json!({"refresh_token": s(&li, "refresh_token")}),
        ),
    ] {
        let a = p.public_post(path, body).await;
        assert_eq!(a.status, 422, "{path}: {:?}", a.body);
        assert_eq!(a.body, missing, "{path}");
        request_id(&a);
    }
    // The 422 signup created nothing.
    invalid_credentials(&p.login("user-2", PW).await);

    let long = send(
        p.public(Method::POST, "/end-users/login")
            .header("X-Device-Id", "d".repeat(129))
            .json(&json!({"external_id": "user-1", "password": PW})),
    )
    .await;
    assert_eq!(long.status, 422);
    assert_eq!(
        long.body,
        json!({"detail": [{"loc": ["header", "x-device-id"],
            "msg": "ensure this value has at most 128 characters",
            "type": "value_error.any_str.max_length", "ctx": {"limit_value": 128}}]})
    );
    let ok = send(
        p.public(Method::POST, "/end-users/login")
            .header("X-Device-Id", "d".repeat(128))
            .json(&json!({"external_id": "user-1", "password": PW})),
    )
    .await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_change_keeps_this_session_and_revokes_the_others() {
    let node = Node::start().await;
    let p = node.project(json!({})).await;
    let s1 = p.signup("user-1", PW).await;
    assert_eq!(s1.status, 201);
    let s2 = p.login("user-1", PW).await;
    assert_eq!(s2.status, 200);
    let t1 = s(&s1, "token");
    let change = |bearer: String, body: Value| {
        let req = p
            .public(Method::POST, "/end-users/password")
            .bearer_auth(bearer)
            .json(&body);
        async move { send(req).await }
    };

    let wrong = change(
        t1.clone(),
        json!({"current_password": "not-it-at-all", "new_password": "new-password-1"}),
    )
    .await;
    invalid_credentials(&wrong);
    let short = change(
        t1.clone(),
        json!({"current_password": PW, "new_password": "short"}),
    )
    .await;
    assert_eq!(short.status, 422);
    assert_eq!(
        short.body,
        json!({"detail": [{"loc": ["body", "new_password"],
            "msg": "ensure this value has at least 8 characters",
            "type": "value_error.any_str.min_length", "ctx": {"limit_value": 8}}]})
    );
    invalid_session(
        &change(
            "cr_at_bogus".into(),
            json!({"current_password": PW, "new_password": "new-password-1"}),
        )
        .await,
    );
    // Nothing changed yet.
    assert_active(&p, &s(&s2, "token"), true).await;

    let ok = change(
        t1.clone(),
        json!({"current_password": PW, "new_password": "new-password-1"}),
    )
    .await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    assert_eq!(ok.body, json!({"status": "ok"}));
    assert_eq!(p.me(&t1).await.status, 200, "the current session stays");
    assert_active(&p, &t1, true).await;
    assert_active(&p, &s(&s2, "token"), false).await;
    invalid_session(&p.me(&s(&s2, "token")).await);
    invalid_refresh(&p.refresh(&s(&s2, "refresh_token")).await);
    invalid_credentials(&p.login("user-1", PW).await);
    assert_token_response(
        &p.login("user-1", "new-password-1").await,
        200,
        "user-1",
        3600,
    ); // The session that changed the password keeps refreshing.
    let rf = p.refresh(&s(&s1, "refresh_token")).await;
    assert_token_response(&rf, 200, "user-1", 3600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_users_list_and_revoke_their_own_sessions() {
    let node = Node::start().await;
    let p = node.project(json!({})).await;
    let s1 = p.signup("user-1", PW).await;
    let s2 = p.login("user-1", PW).await;
    let s3 = p.login("user-1", PW).await;
    let other = p.signup("user-2", PW).await;
    for a in [&s1, &s2, &s3, &other] {
        assert!(a.status == 200 || a.status == 201, "{:?}", a.body);
    }
    let t1 = s(&s1, "token");
    let list = |t: String| {
        let req = p.public(Method::GET, "/end-users/sessions").bearer_auth(t);
        async move { send(req).await }
    };

    let l = list(t1.clone()).await;
    assert_eq!(l.status, 200, "{:?}", l.body);
    assert_eq!(keys(&l.body), set(&["sessions"]));
    let sessions = l.body["sessions"].as_array().expect("list");
    let ids: BTreeSet<String> = sessions.iter().map(|x| x["id"].to_string()).collect();
    let expected: BTreeSet<String> = [&s1, &s2, &s3]
        .iter()
        .map(|a| a.body["session_id"].to_string())
        .collect();
    assert_eq!(ids, expected, "exactly the user's own live sessions");
    let text = l.body.to_string();
    for a in [&s1, &s2, &s3] {
        assert!(
            !text.contains(&s(a, "token")),
            "no access token in the list"
        );
        assert!(!text.contains(&s(a, "refresh_token")), "no refresh token");
    }
    for x in sessions {
        for forbidden in ["token", "refresh_token", "access_token"] {
            assert!(x.get(forbidden).is_none(), "{x}");
        }
        assert!(is_uuid(&x["id"]));
        assert_eq!(x["device_id"], "device-1");
        parse_time(&x["created_at"]);
        parse_time(&x["last_used_at"]);
        parse_time(&x["expires_at"]);
        assert_eq!(x["revoked"], false);
        assert_eq!(x["current"], x["id"] == s1.body["session_id"], "{x}");
    }
    invalid_session(&list("cr_at_bogus".into()).await);

    // Revoke one: s2.
    let del = |t: String, id: String| {
        let req = p
            .public(Method::DELETE, &format!("/end-users/sessions/{id}"))
            .bearer_auth(t);
        async move { send(req).await }
    };
    let d = del(t1.clone(), s(&s2, "session_id")).await;
    assert_eq!(d.status, 200, "{:?}", d.body);
    assert_eq!(d.body, json!({"revoked": 1}));
    assert_active(&p, &s(&s2, "token"), false).await;
    // Another user's session is not ours to revoke, and stays live.
    let d = del(t1.clone(), s(&other, "session_id")).await;
    assert_eq!(d.status, 404, "{:?}", d.body);
    assert_eq!(
        d.body,
        json!({"detail": {"code": "not_found", "message": "Not found"}})
    );
    assert_active(&p, &s(&other, "token"), true).await;
    let d = del(t1.clone(), uuid::Uuid::new_v4().to_string()).await;
    assert_eq!(d.status, 404, "{:?}", d.body);
    let d = del(t1.clone(), "not-a-uuid".into()).await;
    assert_eq!(d.status, 404, "{:?}", d.body);
    let l = list(t1.clone()).await;
    assert_eq!(l.body["sessions"].as_array().expect("list").len(), 2);

    // Revoke the others: s3 goes, s1 (the caller) stays.
    let r = send(
        p.public(Method::POST, "/end-users/sessions/revoke-others")
            .bearer_auth(&t1),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body, json!({"revoked": 1}));
    assert_active(&p, &s(&s3, "token"), false).await;
    assert_active(&p, &t1, true).await;
    assert_active(&p, &s(&other, "token"), true).await;
    let l = list(t1.clone()).await;
    let only: Vec<Value> = l.body["sessions"]
        .as_array()
        .expect("list")
        .iter()
        .map(|x| x["id"].clone())
        .collect();
    assert_eq!(only, vec![s1.body["session_id"].clone()]);
    // Revoking one's own current session is a logout.
    let d = del(t1.clone(), s(&s1, "session_id")).await;
    assert_eq!(d.status, 200, "{:?}", d.body);
    assert_eq!(d.body, json!({"revoked": 1}));
    invalid_session(&p.me(&t1).await);
    assert_active(&p, &t1, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_sessions_per_user_revokes_the_oldest_first() {
    let node = Node::start().await;
    let p = node.project(json!({"max_sessions_per_user": 2})).await;
    let s1 = p.signup("user-1", PW).await;
    assert_eq!(s1.status, 201);
    let s2 = p.login("user-1", PW).await;
    assert_eq!(s2.status, 200);
    assert_active(&p, &s(&s1, "token"), true).await;
    let s3 = p.login("user-1", PW).await;
    assert_eq!(s3.status, 200);
    assert_active(&p, &s(&s1, "token"), false).await;
    invalid_refresh(&p.refresh(&s(&s1, "refresh_token")).await);
    assert_active(&p, &s(&s2, "token"), true).await;
    assert_active(&p, &s(&s3, "token"), true).await;
    let s4 = p.login("user-1", PW).await;
    assert_eq!(s4.status, 200);
    assert_active(&p, &s(&s2, "token"), false).await;
    assert_active(&p, &s(&s3, "token"), true).await;
    assert_active(&p, &s(&s4, "token"), true).await;
    // Another user's sessions do not count against this one.
    let u2 = p.signup("user-2", PW).await;
    assert_eq!(u2.status, 201);
    assert_active(&p, &s(&s3, "token"), true).await;
}

/// The seed's `app/api/login/route.ts`, replayed exactly: it POSTs the browser's body with
/// Content-Type, X-Client-Id, X-Client-Key and Origin (`?? ""`), then calls `res.json()`
/// before looking at the status and reads `access_token`, `expires_in` and `user`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_nextjs_route_handler_works_unchanged() {
    let node = Node::start().await;
    let p = node.project(json!({})).await;
    assert_eq!(p.signup("user-1", PW).await.status, 201);
    let commonrock_base = p.base.clone(); // COMMONROCK_API_BASE_URL includes the slug
    let handler = |browser_body: Value, origin: Option<&str>| {
        let req = p
            .http
            .post(format!("{commonrock_base}/v1/public/end-users/login"))
            .header("Content-Type", "application/json")
            .header("X-Client-Id", &p.client_id)
            .header("X-Client-Key", &p.client_key)
            .header("Origin", origin.unwrap_or(""))
            .body(serde_json::to_string(&browser_body).expect("JSON.stringify"));
        async move {
            let res = req.send().await.expect("fetch");
            let status = res.status().as_u16();
            let text = res.text().await.expect("body");
            let payload: Value =
                serde_json::from_str(&text).unwrap_or_else(|_| panic!("res.json() on {text:?}"));
            (status, payload)
        }
    };
    let (status, payload) = handler(
        json!({"external_id": "user-1", "password": PW, "device_id": "browser-1"}),
        Some(ORIGIN),
    )
    .await;
    assert_eq!(status, 200, "{payload}");
    let cookie = payload["access_token"].as_str().expect("access_token");
    assert_eq!(cookie, payload["token"].as_str().expect("token"));
    let max_age = payload["expires_in"].as_u64().expect("maxAge is a number");
    assert!((3595..=3600).contains(&max_age), "{max_age}");
    let user = &payload["user"];
    assert_eq!(keys(user), set(&["id", "external_id"]));
    assert_eq!(user["external_id"], "user-1");
    assert_eq!(p.me(cookie).await.status, 200);

    let (status, payload) = handler(
        json!({"external_id": "user-1", "password": "wrong-password", "device_id": "b"}),
        Some(ORIGIN),
    )
    .await;
    assert_eq!(
        (status, payload),
        (401, json!({"detail": "Invalid credentials"}))
    );
    // A request without Origin reaches CommonRock as `Origin: ""`.
    let (status, payload) = handler(
        json!({"external_id": "user-1", "password": PW, "device_id": "b"}),
        None,
    )
    .await;
    assert_eq!(
        (status, payload),
        (
            403,
            json!({"detail": {"code": "origin_required", "message": "Origin header required"}})
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_ids_are_case_sensitive_and_limited_by_characters() {
    let node = Node::start().await;
    let p = node.project(json!({})).await;
    let upper = p.signup("User-1", "upper-password").await;
    assert_token_response(&upper, 201, "User-1", 3600);
    let lower = p.signup("user-1", "lower-password").await;
    assert_token_response(&lower, 201, "user-1", 3600);
    assert_ne!(upper.body["end_user"]["id"], lower.body["end_user"]["id"]);
    invalid_credentials(&p.login("User-1", "lower-password").await);
    invalid_credentials(&p.login("USER-1", "upper-password").await);
    let li = p.login("User-1", "upper-password").await;
    assert_token_response(&li, 200, "User-1", 3600);
    assert_eq!(li.body["end_user"]["id"], upper.body["end_user"]["id"]);
    // Not normalised: a trailing space is another id.
    assert_eq!(p.signup("user-1 ", "lower-password").await.status, 201);

    let max = "x".repeat(128);
    assert_token_response(&p.signup(&max, PW).await, 201, &max, 3600);
    let too_long = p.signup(&"x".repeat(129), PW).await;
    assert_eq!(too_long.status, 422);
    assert_eq!(
        too_long.body,
        json!({"detail": [{"loc": ["body", "external_id"],
            "msg": "ensure this value has at most 128 characters",
            "type": "value_error.any_str.max_length", "ctx": {"limit_value": 128}}]})
    );
    // 128 three-byte characters: 384 bytes, still 128 characters.
    let wide = "ユ".repeat(128);
    let su = p.signup(&wide, PW).await;
    assert_token_response(&su, 201, &wide, 3600);
    let me = p.me(&s(&su, "token")).await;
    assert_eq!(
        me.body,
        json!({"id": su.body["end_user"]["id"], "external_id": wide})
    );
    assert_token_response(&p.login(&wide, PW).await, 200, &wide, 3600);
    let wide_too_long = p.signup(&"ユ".repeat(129), PW).await;
    assert_eq!(wide_too_long.status, 422);
    assert_eq!(
        wide_too_long.body["detail"][0]["ctx"],
        json!({"limit_value": 128})
    );
    // device_id: 128 characters ok, 129 not.
    let dev = |d: String| {
        p.public_post(
            "/end-users/login",
            json!({"external_id": "User-1", "password": "upper-password", "device_id": d}),
        )
    };
    assert_eq!(dev("é".repeat(128)).await.status, 200);
    let bad = dev("é".repeat(129)).await;
    assert_eq!(bad.status, 422);
    assert_eq!(
        bad.body,
        json!({"detail": [{"loc": ["body", "device_id"],
            "msg": "ensure this value has at most 128 characters",
            "type": "value_error.any_str.max_length", "ctx": {"limit_value": 128}}]})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_access_ttl_shows_in_expires_in() {
    // Guards the token response's lifetimes against a hard-coded 3600.
    let node = Node::start().await;
    let p = node.project(json!({"access_ttl_s": 120})).await;
    let su = p.signup("user-1", PW).await;
    assert_token_response(&su, 201, "user-1", 120);
    let rf = p.refresh(&s(&su, "refresh_token")).await;
    assert_token_response(&rf, 200, "user-1", 120);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_bound_to_their_project() {
    let node = Node::start().await;
    let p = node.project(json!({"refresh_reuse_grace_s": 0})).await;
    let q = node.project(json!({"refresh_reuse_grace_s": 0})).await;
    let a = p.signup("user-1", PW).await;
    assert_eq!(a.status, 201);
    let b = p.refresh(&s(&a, "refresh_token")).await;
    assert_eq!(b.status, 200);
    // Project q's public client with p's tokens: nothing works, and nothing happens to p.
    invalid_session(&q.me(&s(&b, "token")).await);
    invalid_session(&q.logout(&s(&b, "token")).await);
    invalid_refresh(&q.refresh(&s(&b, "refresh_token")).await);
    // Even a rotated (reused) token presented to another tenant must not revoke p's session.
    invalid_refresh(&q.refresh(&s(&a, "refresh_token")).await);
    let own = send(
        q.public(Method::GET, "/end-users/sessions")
            .bearer_auth(s(&b, "token")),
    )
    .await;
    invalid_session(&own);
    assert_active(&p, &s(&b, "token"), true).await;
    assert_eq!(p.me(&s(&b, "token")).await.status, 200);
    let c = p.refresh(&s(&b, "refresh_token")).await;
    assert_token_response(&c, 200, "user-1", 3600);
    // And q's own user of the same external_id is somebody else.
    let qa = q.signup("user-1", PW).await;
    assert_eq!(qa.status, 201);
    assert_ne!(qa.body["end_user"]["id"], a.body["end_user"]["id"]);
    invalid_credentials(&q.login("user-1", "not-the-password").await);
}
