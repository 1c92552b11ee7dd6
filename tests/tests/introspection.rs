//! Introspection with a secret key (SPEC §4): the exact active answer, `{"active":false}` and
//! nothing else for every inactive case, `Cache-Control: no-store`, tenant isolation, and the
//! batch endpoint's order, bound and validation.

use std::collections::BTreeSet;
use std::time::Duration;

use commonrock_tests::reqwest::RequestBuilder;
use commonrock_tests::{eventually, Answer, Node, Project};
use serde_json::{json, Value};

const PW: &str = "password123";

async fn send(req: RequestBuilder) -> Answer {
    Answer::of(req.send().await.expect("request")).await
}

fn introspect_raw(p: &Project, body: Value) -> RequestBuilder {
    p.http
        .post(format!("{}/v1/sessions/introspect", p.base))
        .header("X-API-Key", &p.secret_key)
        .json(&body)
}

fn batch_raw(p: &Project, body: Value) -> RequestBuilder {
    p.http
        .post(format!("{}/v1/sessions/introspect/batch", p.base))
        .header("X-API-Key", &p.secret_key)
        .json(&body)
}

fn s(a: &Answer, field: &str) -> String {
    a.body[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {}", a.body))
        .to_string()
}

/// What introspection must answer for an active token issued by `issued`.
fn active_of(p: &Project, issued: &Answer) -> Value {
    json!({
        "active": true,
        "project_id": p.project_id,
        "end_user_id": issued.body["end_user"]["id"],
        "session_id": issued.body["session_id"],
        "expires_at": issued.body["expires_at"],
    })
}

#[track_caller]
fn expect_introspection(a: &Answer, body: Value) {
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.body, body);
    assert_eq!(
        a.header("cache-control"),
        Some("no-store"),
        "{:?}",
        a.headers
    );
    assert!(
        a.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{:?}",
        a.headers
    );
    assert!(a.header("x-request-id").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_and_inactive_answers_are_exact() {
    let node = Node::start().await;
    let p = node.project(json!({})).await;
    let su = p.signup("user-1", PW).await;
    assert_eq!(su.status, 201, "{:?}", su.body);
    let token = s(&su, "token");

    let a = p.introspect(&token).await;
    expect_introspection(&a, active_of(&p, &su));
    let keys: BTreeSet<&str> = a
        .body
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "active",
            "end_user_id",
            "expires_at",
            "project_id",
            "session_id"
        ])
    );
    // `required_scopes` is accepted and ignored.
    expect_introspection(
        &send(introspect_raw(
            &p,
            json!({"token": token, "required_scopes": ["anything:at_all", "admin"]}),
        ))
        .await,
        active_of(&p, &su),
    );
    expect_introspection(
        &send(introspect_raw(
            &p,
            json!({"token": token, "required_scopes": []}),
        ))
        .await,
        active_of(&p, &su),
    );
    // Unknown fields are ignored.
    expect_introspection(
        &send(introspect_raw(&p, json!({"token": token, "extra": 1}))).await,
        active_of(&p, &su),
    );

    let inactive = json!({"active": false});
    let mut tampered = token.clone();
    let last = tampered.pop().expect("non-empty");
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    for bad in [
        "",
        "garbage",
        "cr_at_",
        "cr_at_garbage",
        "Bearer x",
        &tampered,
        &s(&su, "refresh_token"),
        &"x".repeat(4096),
    ] {
        expect_introspection(&p.introspect(bad).await, inactive.clone());
    }
    expect_introspection(&send(introspect_raw(&p, json!({}))).await, inactive.clone());
    expect_introspection(
        &send(introspect_raw(&p, json!({"token": null}))).await,
        inactive.clone(),
    );

    // Revoked: logout makes it inactive at once on this node.
    assert_eq!(p.logout(&token).await.status, 200);
    expect_introspection(&p.introspect(&token).await, inactive.clone());

    // Validation: a token that is not a string is a 422, not a silent false.
    let a = send(introspect_raw(&p, json!({"token": 5}))).await;
    assert_eq!(a.status, 422, "{:?}", a.body);
    assert_eq!(
        a.body,
        json!({"detail": [{"loc": ["body", "token"], "msg": "str type expected",
                           "type": "type_error.str"}]})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_tokens_are_inactive() {
    let node = Node::start().await;
    let p = node.project(json!({"access_ttl_s": 1})).await;
    let su = p.signup("user-1", PW).await;
    assert_eq!(su.status, 201, "{:?}", su.body);
    assert!(su.body["expires_in"].as_i64().expect("int") <= 1);
    let token = s(&su, "token");
    let inactive = eventually(Duration::from_secs(4), || async {
        let a = p.introspect(&token).await;
        (a.body["active"] == false).then_some(a)
    })
    .await
    .expect("a 1 s access token expires within 4 s");
    expect_introspection(&inactive, json!({"active": false}));
    assert_eq!(p.me(&token).await.status, 401);
    // The session itself lives on: a refresh issues a fresh, active access token.
    let rf = p.refresh(&s(&su, "refresh_token")).await;
    assert_eq!(rf.status, 200, "{:?}", rf.body);
    let a = p.introspect(&s(&rf, "token")).await;
    // It may already have expired on a slow machine, but never with another shape.
    if a.body["active"] == true {
        expect_introspection(&a, active_of(&p, &rf));
    } else {
        expect_introspection(&a, json!({"active": false}));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projects_never_see_each_others_tokens() {
    let node = Node::start().await;
    let a = node.project(json!({})).await;
    let b = node.project(json!({})).await;
    let sa = a.signup("user-1", PW).await;
    let sb = b.signup("user-1", PW).await;
    assert_eq!((sa.status, sb.status), (201, 201));
    let (ta, tb) = (s(&sa, "token"), s(&sb, "token"));
    expect_introspection(&a.introspect(&ta).await, active_of(&a, &sa));
    expect_introspection(&b.introspect(&tb).await, active_of(&b, &sb));
    // B's key on B's slug with A's token: inactive, however valid it is in A.
    expect_introspection(&b.introspect(&ta).await, json!({"active": false}));
    expect_introspection(&a.introspect(&tb).await, json!({"active": false}));
    let r = b.introspect_batch(&[ta.clone(), tb.clone()]).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        json!({"results": [{"active": false}, active_of(&b, &sb)]})
    );
    // B's key on A's slug: refused outright.
    let cross = Project {
        secret_key: b.secret_key.clone(),
        ..a.clone()
    };
    let r = cross.introspect(&ta).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.body,
        json!({"detail": {"code": "invalid_api_key", "message": "Invalid API key"}})
    );
    // Same external_id in two projects: two distinct users.
    assert_ne!(sa.body["end_user"]["id"], sb.body["end_user"]["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_keeps_order_and_enforces_its_bound() {
    let node = Node::start().await;
    let p = node.project(json!({})).await;
    let s1 = p.signup("user-1", PW).await;
    let s2 = p.signup("user-2", PW).await;
    let gone = p.login("user-1", PW).await;
    assert_eq!((s1.status, s2.status, gone.status), (201, 201, 200));
    assert_eq!(p.logout(&s(&gone, "token")).await.status, 200);
    let (t1, t2) = (s(&s1, "token"), s(&s2, "token"));
    let off = json!({"active": false});

    let tokens = vec![
        t1.clone(),
        "garbage".to_string(),
        t2.clone(),
        s(&gone, "token"),
        String::new(),
        t1.clone(),
        s(&s1, "refresh_token"),
    ];
    let r = p.introspect_batch(&tokens).await;
    expect_introspection(
        &r,
        json!({"results": [
            active_of(&p, &s1), off, active_of(&p, &s2), off, off, active_of(&p, &s1), off
        ]}),
    );
    expect_introspection(&p.introspect_batch(&[]).await, json!({"results": []}));

    // 1000 tokens: accepted, answered in order.
    let mut many: Vec<String> = (0..1000)
        .map(|i| format!("cr_at_{i:04}_not_a_real_token_but_about_as_long_as_one_is"))
        .collect();
    many[0] = t1.clone();
    many[500] = t2.clone();
    many[999] = t1.clone();
    let r = p.introspect_batch(&many).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let results = r.body["results"].as_array().expect("results");
    assert_eq!(results.len(), 1000);
    for (i, res) in results.iter().enumerate() {
        let want = match i {
            0 | 999 => active_of(&p, &s1),
            500 => active_of(&p, &s2),
            _ => off.clone(),
        };
        assert_eq!(res, &want, "result {i}");
    }

    many.push(t2.clone());
    let r = p.introspect_batch(&many).await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    assert_eq!(
        r.body,
        json!({"detail": [{"loc": ["body", "tokens"],
            "msg": "ensure this value has at most 1000 items",
            "type": "value_error.list.max_items", "ctx": {"limit_value": 1000}}]})
    );

    let r = send(batch_raw(&p, json!({}))).await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.body,
        json!({"detail": [{"loc": ["body", "tokens"], "msg": "field required",
                           "type": "value_error.missing"}]})
    );
    let r = send(batch_raw(&p, json!({"tokens": t1}))).await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.body,
        json!({"detail": [{"loc": ["body", "tokens"], "msg": "value is not a valid list",
                           "type": "type_error.list"}]})
    );
    let r = send(batch_raw(&p, json!({"tokens": [t1, 7]}))).await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.body,
        json!({"detail": [{"loc": ["body", "tokens", 1], "msg": "str type expected",
                           "type": "type_error.str"}]})
    );
    // `required_scopes` is accepted on the batch too.
    let r = send(batch_raw(
        &p,
        json!({"tokens": [t2], "required_scopes": ["x"]}),
    ))
    .await;
    expect_introspection(&r, json!({"results": [active_of(&p, &s2)]}));
}
