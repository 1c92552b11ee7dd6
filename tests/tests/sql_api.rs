//! The simple DB over HTTP (SPEC §5, §7): admin tables and query definitions, execution from a
//! public client (Bearer end user, reserved parameters from the session) and with a secret
//! key, offset and keyset paging, injection and hostile strings, and every error of the SQL
//! surface with whole bodies. Each test has its own node and project; the store follows
//! `COMMONROCK_TEST_STORE`.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};

use commonrock_tests::reqwest::Method;
use commonrock_tests::{Answer, Node, NodeOptions, Project, ORIGIN};
use serde_json::{json, Value};

const PW: &str = "password123";
const ORDER_BY_MISSING: &str = "ORDER BY is missing; pagination may be unstable";

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

fn coded(code: &str, message: &str) -> Value {
    json!({"detail": {"code": code, "message": message}})
}

/// A signed-up end user: (access token, end user id).
async fn user(p: &Project, external_id: &str) -> (String, String) {
    let a = p.signup(external_id, PW).await;
    assert_eq!(a.status, 201, "signup: {}", a.body);
    (
        a.body["access_token"].as_str().expect("token").to_string(),
        a.body["end_user"]["id"].as_str().expect("id").to_string(),
    )
}

/// The `posts` table of the seed and its INSERT definition (secret key only).
async fn posts(node: &Node, p: &Project) -> String {
    let (s, b) = node
        .sql_table(
            &p.slug,
            "CREATE TABLE posts (id TEXT PRIMARY KEY, author_id TEXT NOT NULL, title TEXT)",
        )
        .await;
    assert_eq!(s, 201, "create table: {b}");
    node.sql_definition_id(
        &p.slug,
        "insert_post",
        "INSERT INTO posts (id, author_id, title) VALUES (:id, :author_id, :title)",
        false,
    )
    .await
}

async fn insert_post(p: &Project, def: &str, id: &str, author: &str, title: &str) {
    let a = p
        .sql_secret(json!({"query_definition_id": def,
            "params": {"id": id, "author_id": author, "title": title}}))
        .await;
    assert_eq!(a.status, 200, "insert {id}: {}", a.body);
    assert_eq!(
        a.body,
        json!({"rows": [], "affected_rows": 1, "warnings": []})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_example_runs_end_to_end() {
    let node = Node::start().await;
    let p = node.project(json!({})).await;
    let insert = posts(&node, &p).await;
    let (s, reg) = node
        .sql_definition(
            &p.slug,
            "posts_by_author",
            "SELECT id, title FROM posts WHERE author_id = :author_id",
            true,
        )
        .await;
    assert_eq!(s, 201, "{reg}");
    assert!(uuid::Uuid::parse_str(reg["id"].as_str().expect("id")).is_ok());
    assert_eq!(
        reg["warnings"],
        json!([{"code": "order_by_missing", "message": ORDER_BY_MISSING}])
    );
    let def = reg["id"].as_str().expect("id").to_string();
    insert_post(&p, &insert, "p1", "user-1", "post-1").await;
    insert_post(&p, &insert, "p2", "user-2", "post-2").await;

    let (token, _) = user(&p, "reader").await;
    let a = p
        .sql_public(
            &token,
            json!({"query_definition_id": def, "params": {"author_id": "user-1"}, "limit": 200}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.body,
        json!({"rows": [{"id": "p1", "title": "post-1"}],
               "warnings": [{"code": "order_by_missing", "message": ORDER_BY_MISSING}]})
    );
    assert_eq!(a.header("cache-control"), Some("no-store"));
    assert_eq!(a.header("access-control-allow-origin"), Some(ORIGIN));

    // A further page exists: next_cursor is the next offset, as in the seed ("200").
    insert_post(&p, &insert, "p3", "user-1", "post-3").await;
    let a = p
        .sql_public(
            &token,
            json!({"query_definition_id": def, "params": {"author_id": "user-1"}, "limit": 1}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(keys(&a.body), set(&["rows", "next_cursor", "warnings"]));
    assert_eq!(a.body["next_cursor"], "1");
    assert_eq!(a.body["rows"].as_array().map(Vec::len), Some(1));

    // The secret-key path runs the same definition.
    let a = p
        .sql_secret(json!({"query_definition_id": def, "params": {"author_id": "user-2"}}))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["rows"], json!([{"id": "p2", "title": "post-2"}]));
    assert_eq!(a.header("cache-control"), Some("no-store"));
}

/// Pages through `def` in `mode`, calling `between` after each page; returns the ids in order
/// and the cursors seen.
async fn page_through(
    p: &Project,
    def: &str,
    mode: &str,
    mut between: impl FnMut(usize) -> Vec<(i64, i64)>,
    insert: &str,
) -> (Vec<i64>, Vec<String>) {
    let mut ids = Vec::new();
    let mut cursors = Vec::new();
    let mut cursor: Option<String> = None;
    for page in 0..20 {
        let mut body = json!({"query_definition_id": def, "limit": 10, "cursor_mode": mode});
        if let Some(c) = &cursor {
            body["cursor"] = json!(c);
        }
        let a = p.sql_secret(body).await;
        assert_eq!(a.status, 200, "page {page}: {}", a.body);
        assert_eq!(a.body["warnings"], json!([]));
        for row in a.body["rows"].as_array().expect("rows") {
            ids.push(row["id"].as_i64().expect("integer id"));
        }
        match a.body.get("next_cursor") {
            None => return (ids, cursors),
            Some(c) => {
                let c = c.as_str().expect("cursor is a string").to_string();
                cursors.push(c.clone());
                cursor = Some(c);
            }
        }
        for (id, n) in between(page) {
            let a = p
                .sql_secret(json!({"query_definition_id": insert, "params": {"id": id, "n": n}}))
                .await;
            assert_eq!(a.status, 200, "insert between pages: {}", a.body);
        }
    }
    panic!("paging did not end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_and_keyset_paging_return_every_row_once() {
    let node = Node::start().await;
    let p = node.project(json!({})).await;
    let insert = items_table(&node, &p).await;
    let list = node
        .sql_definition_id(
            &p.slug,
            "items",
            "SELECT id, n FROM items ORDER BY id",
            false,
        )
        .await;
    // Ids 0, 10, …, 240: room to insert between existing rows.
    for i in 0..25i64 {
        let a = p
            .sql_secret(json!({"query_definition_id": insert, "params": {"id": i * 10, "n": i}}))
            .await;
        assert_eq!(a.status, 200, "{}", a.body);
    }
    let original: Vec<i64> = (0..25).map(|i| i * 10).collect();

    let (ids, cursors) = page_through(&p, &list, "offset", |_| Vec::new(), &insert).await;
    assert_eq!(cursors, vec!["10", "20"]);
    assert_eq!(ids, original);

    // Keyset: rows inserted before and after the cursor while paging; every original row
    // comes exactly once, in order, never a repeat.
    let mut extra = vec![vec![(5, 0), (155, 0)], vec![(-5, 0), (1000, 0)]].into_iter();
    let (ids, cursors) = page_through(
        &p,
        &list,
        "keyset",
        |_| extra.next().unwrap_or_default(),
        &insert,
    )
    .await;
    assert!(
        cursors.iter().all(|c| c.parse::<u64>().is_err()),
        "opaque: {cursors:?}"
    );
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ascending, no repeat: {ids:?}"
    );
    for id in &original {
        assert_eq!(
            ids.iter().filter(|x| *x == id).count(),
            1,
            "{id} once in {ids:?}"
        );
    }
    // Inserted after the cursor had passed them: never seen; ahead of it: seen.
    assert!(!ids.contains(&5) && !ids.contains(&-5), "{ids:?}");
    assert!(ids.contains(&155) && ids.contains(&1000), "{ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_parameters_come_from_the_session() {
    let node = Node::start().await;
    let p = node.project(json!({})).await;
    let (s, b) = node
        .sql_table(
            &p.slug,
            "CREATE TABLE notes (id TEXT PRIMARY KEY, owner UUID NOT NULL, ext TEXT NOT NULL, body TEXT)",
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let add = node
        .sql_definition_id(
            &p.slug,
            "add_note",
            "INSERT INTO notes (id, owner, ext, body) VALUES (:id, :end_user_id, :external_id, :body)",
            true,
        )
        .await;
    let mine = node
        .sql_definition_id(
            &p.slug,
            "my_notes",
            "SELECT id, body FROM notes WHERE owner = :end_user_id ORDER BY id",
            true,
        )
        .await;
    let mine_ext = node
        .sql_definition_id(
            &p.slug,
            "my_notes_ext",
            "SELECT id FROM notes WHERE ext = :external_id ORDER BY id",
            true,
        )
        .await;
    let (ta, ida) = user(&p, "alice").await;
    let (tb, idb) = user(&p, "bob").await;
    for (token, id, forged) in [(&ta, "a1", &idb), (&ta, "a2", &idb), (&tb, "b1", &ida)] {
        // The forged reserved values are ignored: the row belongs to the caller.
        let a = p
            .sql_public(
                token,
                json!({"query_definition_id": add, "params": {"id": id, "body": format!("note {id}"),
                       "end_user_id": forged, "external_id": "alice"}}),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.body["affected_rows"], 1);
    }
    let a = p
        .sql_public(
            &tb,
            json!({"query_definition_id": mine, "params": {"end_user_id": ida}}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.body,
        json!({"rows": [{"id": "b1", "body": "note b1"}], "warnings": []})
    );
    let a = p
        .sql_public(
            &tb,
            json!({"query_definition_id": mine_ext, "params": {"external_id": "alice"}}),
        )
        .await;
    assert_eq!(a.body["rows"], json!([{"id": "b1"}]), "{}", a.body);
    let a = p
        .sql_public(&ta, json!({"query_definition_id": mine}))
        .await;
    assert_eq!(
        a.body["rows"],
        json!([{"id": "a1", "body": "note a1"}, {"id": "a2", "body": "note a2"}])
    );
    // With the secret key the reserved parameters come from `params`, and are required.
    let a = p
        .sql_secret(json!({"query_definition_id": mine, "params": {"end_user_id": ida}}))
        .await;
    assert_eq!(
        a.body["rows"].as_array().map(Vec::len),
        Some(2),
        "{}",
        a.body
    );
    let a = p.sql_secret(json!({"query_definition_id": mine})).await;
    assert_eq!(a.status, 422);
    assert_eq!(
        a.body,
        json!({"detail": [{"loc": ["body", "params", "end_user_id"], "msg": "field required",
                           "type": "value_error.missing"}]})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injection_and_hostile_strings_are_plain_values() {
    let node = Node::start().await;
    let p = node.project(json!({})).await;
    let insert = posts(&node, &p).await;
    let by_author = node
        .sql_definition_id(
            &p.slug,
            "by_author",
            "SELECT id, title FROM posts WHERE author_id = :author_id ORDER BY id",
            false,
        )
        .await;
    let by_title = node
        .sql_definition_id(
            &p.slug,
            "by_title",
            "SELECT id, title FROM posts WHERE title = :title ORDER BY id",
            false,
        )
        .await;
    let all = node
        .sql_definition_id(
            &p.slug,
            "all",
            "SELECT id, author_id, title FROM posts ORDER BY id",
            false,
        )
        .await;
    insert_post(&p, &insert, "p1", "user-1", "post-1").await;
    let before = p.sql_secret(json!({"query_definition_id": all})).await;
    assert_eq!(before.status, 200, "{}", before.body);

    for attack in [
        "x' OR '1'='1",
        "user-1' OR 1=1 --",
        "x'; DROP TABLE posts; --",
        "x'); DELETE FROM posts; --",
        "' UNION SELECT id, author_id FROM posts --",
    ] {
        let a = p
            .sql_secret(json!({"query_definition_id": by_author, "params": {"author_id": attack}}))
            .await;
        assert_eq!(a.status, 200, "{attack}: {}", a.body);
        assert_eq!(a.body, json!({"rows": [], "warnings": []}), "{attack}");
    }
    let after = p.sql_secret(json!({"query_definition_id": all})).await;
    assert_eq!(after.body, before.body, "nothing changed");

    let hostile = [
        "it's",
        "a''b",
        "\"double\" quotes",
        "::author_id",
        ":title",
        "-- comment",
        "/* block */",
        "$1",
        "$1; SELECT 1",
        "line1\nline2\r\nline3",
        "tab\there",
        "back\\slash\\",
        "%_ like wildcards",
        "'); DROP TABLE posts; --",
        "ünïcödé 🦀 日本語",
        "",
    ];
    for (i, title) in hostile.iter().enumerate() {
        insert_post(&p, &insert, &format!("h{i:02}"), "hostile", title).await;
    }
    let a = p
        .sql_secret(json!({"query_definition_id": by_author, "params": {"author_id": "hostile"}}))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let expected: Vec<Value> = hostile
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"id": format!("h{i:02}"), "title": t}))
        .collect();
    assert_eq!(a.body["rows"], json!(expected));
    for (i, title) in hostile.iter().enumerate() {
        let a = p
            .sql_secret(json!({"query_definition_id": by_title, "params": {"title": title}}))
            .await;
        assert_eq!(
            a.body["rows"],
            json!([{"id": format!("h{i:02}"), "title": title}]),
            "{title:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_of_the_execute_endpoints() {
    let node = Node::start().await;
    let p = node.project(json!({})).await;
    let insert = posts(&node, &p).await;
    let listing = node
        .sql_definition_id(
            &p.slug,
            "listing",
            "SELECT id, title FROM posts ORDER BY id",
            true,
        )
        .await;
    let other = node
        .sql_definition_id(&p.slug, "other", "SELECT id FROM posts ORDER BY id", true)
        .await;
    let by_n = {
        let (s, b) = node
            .sql_table(
                &p.slug,
                "CREATE TABLE nums (id INTEGER PRIMARY KEY, flag BOOLEAN)",
            )
            .await;
        assert_eq!(s, 201, "{b}");
        node.sql_definition_id(
            &p.slug,
            "by_n",
            "SELECT id FROM nums WHERE id = :n AND flag = :flag",
            false,
        )
        .await
    };
    for i in 0..3 {
        insert_post(&p, &insert, &format!("p{i}"), "a", "t").await;
    }
    let (token, _) = user(&p, "someone").await;

    // sql_template_not_found on both paths.
    let missing = uuid::Uuid::new_v4().to_string();
    let not_found = coded("sql_template_not_found", "SQL query definition not found");
    let a = p.sql_secret(json!({"query_definition_id": missing})).await;
    assert_eq!((a.status, &a.body), (404, &not_found));
    let a = p
        .sql_public(&token, json!({"query_definition_id": missing}))
        .await;
    assert_eq!((a.status, &a.body), (404, &not_found));

    // invalid_cursor: tampered, other mode, other definition, not a number.
    let first = p
        .sql_secret(json!({"query_definition_id": listing, "limit": 1, "cursor_mode": "keyset"}))
        .await;
    assert_eq!(first.status, 200, "{}", first.body);
    let cursor = first.body["next_cursor"]
        .as_str()
        .expect("cursor")
        .to_string();
    let mut tampered = cursor.clone().into_bytes();
    let mid = tampered.len() / 2;
    tampered[mid] = if tampered[mid] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    let bad_keyset = coded(
        "invalid_cursor",
        "Invalid cursor: cursor is not valid for this query definition",
    );
    for (def, c, mode, expected) in [
        (&listing, tampered.as_str(), "keyset", &bad_keyset),
        (&other, cursor.as_str(), "keyset", &bad_keyset),
        (&listing, "10", "keyset", &bad_keyset),
        (
            &listing,
            cursor.as_str(),
            "offset",
            &coded(
                "invalid_cursor",
                "Invalid cursor: offset cursors are decimal numbers",
            ),
        ),
        (
            &listing,
            "-1",
            "offset",
            &coded(
                "invalid_cursor",
                "Invalid cursor: offset cursors are decimal numbers",
            ),
        ),
    ] {
        let a = p
            .sql_secret(
                json!({"query_definition_id": def, "limit": 1, "cursor": c, "cursor_mode": mode}),
            )
            .await;
        assert_eq!((a.status, &a.body), (400, expected), "{c} in {mode}");
    }
    // Keyset paging needs an ORDER BY ending in a unique key: the reason is in the message.
    let unordered = node
        .sql_definition_id(&p.slug, "unordered", "SELECT id FROM posts", false)
        .await;
    let a = p
        .sql_secret(json!({"query_definition_id": unordered, "cursor_mode": "keyset"}))
        .await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert_eq!(a.body["detail"]["code"], "invalid_cursor");
    let msg = a.body["detail"]["message"].as_str().expect("message");
    assert!(
        msg.starts_with("Invalid cursor: ") && msg.len() > 16,
        "{msg}"
    );

    // client_scope_denied: a non-public definition from a public client; a client without
    // the scope (before its token is even looked at).
    let denied = coded(
        "client_scope_denied",
        "Operation not allowed for this client",
    );
    let a = p
        .sql_public(
            &token,
            json!({"query_definition_id": by_n, "params": {"n": 1, "flag": true}}),
        )
        .await;
    assert_eq!((a.status, &a.body), (403, &denied));
    let (s, c) = node
        .admin(
            Method::POST,
            &format!("/projects/{}/clients", p.slug),
            Some(json!({"name": "no-sql", "allowed_origins": [ORIGIN],
                        "scopes": ["end_users:login"]})),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    let a = Answer::of(
        p.http
            .post(format!("{}/v1/public/sql/execute", p.base))
            .header("X-Client-Id", c["client_id"].as_str().expect("id"))
            .header("X-Client-Key", c["client_key"].as_str().expect("key"))
            .header("Origin", ORIGIN)
            .json(&json!({"query_definition_id": listing}))
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!((a.status, &a.body), (403, &denied));

    // Credentials come before the body: a bad body with a bad token is 401.
    let a = p.sql_public("not-a-token", json!({"limit": "x"})).await;
    assert_eq!(
        (a.status, &a.body),
        (401, &json!({"detail": "Invalid session"}))
    );
    let a = Answer::of(
        p.http
            .post(format!("{}/v1/sql/execute", p.base))
            .header("X-API-Key", "sk_wrong")
            .json(&json!({"limit": "x"}))
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(
        (a.status, &a.body),
        (401, &coded("invalid_api_key", "Invalid API key"))
    );

    // 422: body fields.
    let cases = [
        (
            json!({}),
            json!([{"loc": ["body", "query_definition_id"], "msg": "field required",
                    "type": "value_error.missing"}]),
        ),
        (
            json!({"query_definition_id": "not-a-uuid"}),
            json!([{"loc": ["body", "query_definition_id"], "msg": "value is not a valid uuid",
                    "type": "type_error.uuid"}]),
        ),
        (
            json!({"query_definition_id": listing, "params": [1], "limit": 0,
                   "cursor": 5, "cursor_mode": "page"}),
            json!([
                {"loc": ["body", "params"], "msg": "value is not a valid dict", "type": "type_error.dict"},
                {"loc": ["body", "limit"], "msg": "ensure this value is greater than or equal to 1",
                 "type": "value_error.number.not_ge", "ctx": {"limit_value": 1}},
                {"loc": ["body", "cursor"], "msg": "str type expected", "type": "type_error.str"},
                {"loc": ["body", "cursor_mode"],
                 "msg": "value is not a valid enumeration member; permitted: 'offset', 'keyset'",
                 "type": "type_error.enum", "ctx": {"enum_values": ["offset", "keyset"]}}
            ]),
        ),
        (
            json!({"query_definition_id": listing, "limit": 1001}),
            json!([{"loc": ["body", "limit"], "msg": "ensure this value is less than or equal to 1000",
                    "type": "value_error.number.not_le", "ctx": {"limit_value": 1000}}]),
        ),
        (
            json!({"query_definition_id": listing, "limit": "ten"}),
            json!([{"loc": ["body", "limit"], "msg": "value is not a valid integer",
                    "type": "type_error.integer"}]),
        ),
    ];
    for (body, detail) in cases {
        let a = p.sql_secret(body.clone()).await;
        assert_eq!(
            (a.status, &a.body),
            (422, &json!({ "detail": detail })),
            "{body}"
        );
        let a = p.sql_public(&token, body.clone()).await;
        assert_eq!(
            (a.status, &a.body),
            (422, &json!({ "detail": detail })),
            "public {body}"
        );
    }
    let a = Answer::of(
        p.http
            .post(format!("{}/v1/sql/execute", p.base))
            .header("X-API-Key", &p.secret_key)
            .header("Content-Type", "application/json")
            .body("{\"query_definition_id\": ")
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(a.status, 422);
    assert_eq!(a.body["detail"][0]["type"], "value_error.jsondecode");

    // 422: parameters (missing, unknown, wrong type), each under ["body","params",name].
    let a = p
        .sql_secret(json!({"query_definition_id": by_n, "params": {"n": "one", "x": 1}}))
        .await;
    assert_eq!(a.status, 422, "{}", a.body);
    let detail = a.body["detail"].as_array().expect("entries");
    let by_name = |name: &str| {
        detail
            .iter()
            .find(|e| e["loc"] == json!(["body", "params", name]))
            .unwrap_or_else(|| panic!("an entry for {name}: {detail:?}"))
    };
    assert_eq!(by_name("n")["type"], "type_error.integer");
    assert_eq!(by_name("n")["msg"], "value is not a valid integer");
    assert_eq!(
        by_name("flag"),
        &json!({"loc": ["body", "params", "flag"], "msg": "field required", "type": "value_error.missing"})
    );
    assert_eq!(
        by_name("x"),
        &json!({"loc": ["body", "params", "x"], "msg": "extra fields not permitted", "type": "value_error.extra"})
    );
    assert_eq!(detail.len(), 3, "{detail:?}");
    let a = p
        .sql_secret(json!({"query_definition_id": insert,
            "params": {"id": "p0", "author_id": "a", "title": "dup"}}))
        .await;
    assert_eq!(a.status, 409, "{}", a.body);
    assert_eq!(a.body["detail"]["code"], "already_exists");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn definitions_are_checked_when_registered() {
    let node = Node::start().await;
    let p = node.project(json!({})).await;
    posts(&node, &p).await;
    let invalid = |reason: &str| coded("invalid_sql", &format!("Invalid SQL: {reason}"));
    for (sql, expected) in [
        (
            "DROP TABLE posts",
            Some(invalid(
                "only SELECT, INSERT, UPDATE and DELETE statements can be registered",
            )),
        ),
        (
            "SELECT id FROM posts; SELECT title FROM posts",
            Some(invalid("exactly one statement is allowed")),
        ),
        ("SELEKT id FROM posts", None),
        ("SELECT id FROM posts WHERE author_id = $1", None),
        (
            "SELECT nope FROM posts",
            Some(invalid("unknown column nope")),
        ),
        (
            "SELECT id FROM elsewhere",
            Some(invalid("unknown table elsewhere")),
        ),
        ("SELECT id FROM posts ORDER BY id LIMIT 5", None),
    ] {
        let (s, b) = node.sql_definition(&p.slug, "bad", sql, false).await;
        assert_eq!(s, 400, "{sql}: {b}");
        assert_eq!(b["detail"]["code"], "invalid_sql", "{sql}: {b}");
        assert_eq!(keys(&b["detail"]), set(&["code", "message"]));
        let msg = b["detail"]["message"].as_str().expect("message");
        assert!(msg.starts_with("Invalid SQL: "), "{msg}");
        if let Some(expected) = expected {
            assert_eq!(b, expected, "{sql}");
        }
    }
    // sql_too_complex: subqueries nested 12 deep; a 10-way join.
    let mut nested = "SELECT id FROM posts".to_string();
    for _ in 0..12 {
        nested = format!("SELECT id FROM posts WHERE id IN ({nested})");
    }
    let mut joins = "SELECT t0.id FROM posts t0".to_string();
    for i in 1..=10 {
        joins.push_str(&format!(" JOIN posts t{i} ON t{i}.id = t0.id"));
    }
    for sql in [nested, joins] {
        let (s, b) = node.sql_definition(&p.slug, "complex", &sql, false).await;
        assert_eq!(s, 400, "{b}");
        assert_eq!(b["detail"]["code"], "sql_too_complex", "{b}");
        let msg = b["detail"]["message"].as_str().expect("message");
        assert!(msg.starts_with("SQL is too complex: "), "{msg}");
    }
    // DDL is refused in the same way at the tables endpoint.
    let (s, b) = node.sql_table(&p.slug, "SELECT 1").await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(b["detail"]["code"], "invalid_sql");
    // 422 for bad admin bodies; 409 for a taken name.
    let (s, b) = node
        .admin(
            Method::POST,
            &format!("/projects/{}/sql/query-definitions", p.slug),
            Some(json!({"name": "", "public": "yes"})),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(
        b["detail"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| e["loc"][1].as_str().unwrap_or("").to_string())
            .collect::<Vec<_>>(),
        vec!["name", "sql", "public"]
    );
    let (s, b) = node
        .sql_definition(
            &p.slug,
            "insert_post",
            "SELECT id FROM posts ORDER BY id",
            false,
        )
        .await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(b["detail"]["code"], "already_exists");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_lifecycle_of_tables_and_definitions() {
    let node = Node::start().await;
    let p = node.project(json!({})).await;
    let insert = posts(&node, &p).await;
    let slug = p.slug.clone();
    let (s, b) = node
        .sql_table(
            &slug,
            "ALTER TABLE posts ADD COLUMN score INTEGER NOT NULL DEFAULT 0",
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["name"], "posts");
    let (s, b) = node
        .admin(Method::GET, &format!("/projects/{slug}/sql/tables"), None)
        .await;
    assert_eq!(s, 200, "{b}");
    let table = &b["tables"][0];
    assert_eq!(table["name"], "posts");
    assert_eq!(table["primary_key"], "id");
    assert_eq!(table["columns"].as_array().map(Vec::len), Some(4), "{b}");

    // An index created on the table with rows, then dropped: 200 with the table without it.
    let (s, b) = node
        .sql_table(&slug, "CREATE INDEX posts_score ON posts (score)")
        .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = node.sql_table(&slug, "DROP INDEX posts_score").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["dropped_index"], "posts_score");
    assert_eq!(b["table"]["name"], "posts");
    assert!(
        b["table"]["indexes"]
            .as_array()
            .is_some_and(|i| i.iter().all(|x| x["name"] != "posts_score")),
        "{b}"
    );
    let (s, b) = node.sql_table(&slug, "DROP INDEX posts_score").await;
    assert_eq!(
        (s, b["detail"]["code"].as_str()),
        (400, Some("invalid_sql")),
        "{b}"
    );
    let (s, b) = node
        .sql_table(&slug, "DROP INDEX IF EXISTS posts_score")
        .await;
    assert_eq!(s, 200, "{b}");
    assert!(b["table"].is_null(), "{b}");

    // Register, list, show, replace (same id), then delete.
    let def = node
        .sql_definition_id(&slug, "titles", "SELECT id, title FROM posts", true)
        .await;
    let (s, b) = node
        .admin(
            Method::GET,
            &format!("/projects/{slug}/sql/query-definitions"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let names: Vec<&str> = b["query_definitions"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|d| d["name"].as_str())
        .collect();
    assert_eq!(names, vec!["insert_post", "titles"]);
    let path = format!("/projects/{slug}/sql/query-definitions/{def}");
    let (s, b) = node
        .admin(
            Method::PUT,
            &path,
            Some(
                json!({"name": "titles", "sql": "SELECT id, title FROM posts ORDER BY id",
                        "public": false}),
            ),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        (b["id"].as_str(), &b["warnings"], &b["public"]),
        (Some(def.as_str()), &json!([]), &json!(false))
    );
    let (_, shown) = node.admin(Method::GET, &path, None).await;
    assert_eq!(shown["sql"], "SELECT id, title FROM posts ORDER BY id");
    // A refused replace keeps the old definition.
    let (s, b) = node
        .admin(
            Method::PUT,
            &path,
            Some(json!({"name": "x", "sql": "DELETE"})),
        )
        .await;
    assert_eq!(s, 400, "{b}");
    let (s, b) = node
        .admin(
            Method::PUT,
            &path,
            Some(json!({"name": "insert_post", "sql": "SELECT id FROM posts ORDER BY id"})),
        )
        .await;
    assert_eq!(
        (s, &b["detail"]["code"]),
        (409, &json!("already_exists")),
        "{b}"
    );
    let (_, again) = node.admin(Method::GET, &path, None).await;
    assert_eq!(again["name"], "titles", "{again}");

    // Now private: the public client is refused.
    let (token, _) = user(&p, "u").await;
    let a = p
        .sql_public(&token, json!({"query_definition_id": def}))
        .await;
    assert_eq!(a.status, 403, "{}", a.body);

    // DROP of a used table is refused, then cascades.
    insert_post(&p, &insert, "p1", "a", "t").await;
    let table_path = format!("/projects/{slug}/sql/tables/posts");
    let (s, b) = node.admin(Method::DELETE, &table_path, None).await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(
        b,
        coded(
            "invalid_sql",
            "Invalid SQL: table posts is used by query definitions insert_post, titles; delete them first or pass cascade=true"
        )
    );
    let (s, b) = node
        .admin(Method::DELETE, &format!("{table_path}?cascade=true"), None)
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["table"], "posts");
    let deleted: BTreeSet<String> = b["deleted_query_definitions"]
        .as_array()
        .expect("ids")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    assert_eq!(deleted, [def.clone(), insert.clone()].into_iter().collect());
    let a = p.sql_secret(json!({"query_definition_id": def})).await;
    assert_eq!(
        (a.status, &a.body),
        (
            404,
            &coded("sql_template_not_found", "SQL query definition not found")
        )
    );
    let (s, b) = node.admin(Method::DELETE, &table_path, None).await;
    assert_eq!((s, &b), (404, &coded("not_found", "Not found")));
    let (_, b) = node
        .admin(Method::GET, &format!("/projects/{slug}/sql/tables"), None)
        .await;
    assert_eq!(b, json!({"tables": []}));

    // A table without users drops without cascade; a definition deletes on its own.
    let (s, _) = node
        .sql_table(&slug, "CREATE TABLE t2 (id TEXT PRIMARY KEY)")
        .await;
    assert_eq!(s, 201);
    let d2 = node
        .sql_definition_id(&slug, "t2_all", "SELECT id FROM t2 ORDER BY id", false)
        .await;
    let d2_path = format!("/projects/{slug}/sql/query-definitions/{d2}");
    let (s, b) = node.admin(Method::DELETE, &d2_path, None).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = node.admin(Method::DELETE, &d2_path, None).await;
    assert_eq!(
        (s, &b),
        (
            404,
            &coded("sql_template_not_found", "SQL query definition not found")
        )
    );
    let (s, b) = node
        .admin(
            Method::DELETE,
            &format!("/projects/{slug}/sql/tables/t2"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    // Unknown project: project_not_found.
    let (s, b) = node
        .admin(Method::GET, "/projects/nosuchproject/sql/tables", None)
        .await;
    assert_eq!(
        (s, &b),
        (404, &coded("project_not_found", "Project not found"))
    );
}

/// The table `items (id, n)` and its INSERT definition `insert_item` (returns its id).
async fn items_table(node: &Node, p: &Project) -> String {
    let (s, b) = node
        .sql_table(
            &p.slug,
            "CREATE TABLE items (id INTEGER PRIMARY KEY, n INTEGER)",
        )
        .await;
    assert_eq!(s, 201, "{b}");
    node.sql_definition_id(
        &p.slug,
        "insert_item",
        "INSERT INTO items (id, n) VALUES (:id, :n)",
        false,
    )
    .await
}

/// `items (id, n)` with rows (1, 10), (2, 20), (3, 10) and the definition `by_n`.
async fn items_by_n(node: &Node, p: &Project) -> String {
    let insert = items_table(node, p).await;
    for (id, n) in [(1, 10), (2, 20), (3, 10)] {
        let a = p
            .sql_secret(json!({"query_definition_id": insert, "params": {"id": id, "n": n}}))
            .await;
        assert_eq!(a.status, 200, "{}", a.body);
    }
    node.sql_definition_id(
        &p.slug,
        "by_n",
        "SELECT id FROM items WHERE n = :n ORDER BY id",
        false,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_a_definition_keeps_it_executable_under_its_id() {
    let node = Node::start().await;
    let p = node.project(json!({})).await;
    let slug = p.slug.clone();
    let def = items_by_n(&node, &p).await;
    node.sql_definition_id(&slug, "other", "SELECT id FROM items ORDER BY id", false)
        .await;
    let path = format!("/projects/{slug}/sql/query-definitions/{def}");
    let (_, before) = node.admin(Method::GET, &path, None).await;
    let run = || p.sql_secret(json!({"query_definition_id": def, "params": {"n": 10}}));
    let plain = json!([{"id": 1}, {"id": 3}]);
    let with_n = json!([{"id": 1, "n": 10}, {"id": 3, "n": 10}]);
    let a = run().await;
    assert_eq!((a.status, &a.body["rows"]), (200, &plain), "{}", a.body);

    // New name and text under the same id; executions follow at once.
    let v2 = "SELECT id, n FROM items WHERE n = :n ORDER BY id";
    let (s, b) = node
        .admin(
            Method::PUT,
            &path,
            Some(json!({"name": "by_n_v2", "sql": v2, "public": false})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        (b["id"].as_str(), &b["name"], &b["sql"]),
        (Some(def.as_str()), &json!("by_n_v2"), &json!(v2))
    );
    let (_, shown) = node.admin(Method::GET, &path, None).await;
    assert_eq!(shown["name"], "by_n_v2");
    assert_eq!(shown["created_at"], before["created_at"]);
    let a = run().await;
    assert_eq!((a.status, &a.body["rows"]), (200, &with_n), "{}", a.body);
    let (_, list) = node
        .admin(
            Method::GET,
            &format!("/projects/{slug}/sql/query-definitions"),
            None,
        )
        .await;
    let names: Vec<&str> = list["query_definitions"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|d| d["name"].as_str())
        .collect();
    assert_eq!(names, vec!["by_n_v2", "insert_item", "other"]);

    // A taken name: 409, and the definition is as it was.
    let (s, b) = node
        .admin(
            Method::PUT,
            &path,
            Some(json!({"name": "other", "sql": "SELECT id FROM items ORDER BY id"})),
        )
        .await;
    assert_eq!(
        (s, &b["detail"]["code"]),
        (409, &json!("already_exists")),
        "{b}"
    );
    // Invalid SQL: 400, and the definition is as it was.
    let (s, b) = node
        .admin(
            Method::PUT,
            &path,
            Some(json!({"name": "by_n_v3", "sql": "SELECT nope FROM items"})),
        )
        .await;
    assert_eq!(
        (s, &b),
        (
            400,
            &coded("invalid_sql", "Invalid SQL: unknown column nope")
        )
    );
    let (_, shown) = node.admin(Method::GET, &path, None).await;
    assert_eq!(
        (&shown["name"], &shown["sql"]),
        (&json!("by_n_v2"), &json!(v2))
    );
    let a = run().await;
    assert_eq!((a.status, &a.body["rows"]), (200, &with_n), "{}", a.body);
    // An unknown id: 404.
    let (s, b) = node
        .admin(
            Method::PUT,
            &format!(
                "/projects/{slug}/sql/query-definitions/{}",
                uuid::Uuid::now_v7()
            ),
            Some(json!({"name": "x", "sql": "SELECT id FROM items ORDER BY id"})),
        )
        .await;
    assert_eq!(
        (s, &b),
        (
            404,
            &coded("sql_template_not_found", "SQL query definition not found")
        )
    );

    // Replaced again and again (renamed, then same name) while four clients run it: never
    // a 404.
    let done = AtomicBool::new(false);
    let runner = || async {
        let mut runs = 0;
        while !done.load(Ordering::Relaxed) {
            let a = run().await;
            assert_eq!(a.status, 200, "an execution during a replace: {}", a.body);
            assert!(
                a.body["rows"] == plain || a.body["rows"] == with_n,
                "{}",
                a.body
            );
            runs += 1;
        }
        runs
    };
    let replacer = async {
        for i in 0..20 {
            let name = format!("loop_{}", i / 2);
            let sql = if i % 2 == 0 {
                "SELECT id FROM items WHERE n = :n ORDER BY id"
            } else {
                v2
            };
            let (s, b) = node
                .admin(Method::PUT, &path, Some(json!({"name": name, "sql": sql})))
                .await;
            assert_eq!(s, 200, "replace {i}: {b}");
        }
        done.store(true, Ordering::Relaxed);
    };
    let (runs, ()) = tokio::join!(
        futures_util::future::join_all((0..4).map(|_| runner())),
        replacer
    );
    assert!(runs.iter().sum::<u32>() >= 4, "{runs:?}");
    let (_, shown) = node.admin(Method::GET, &path, None).await;
    assert_eq!(
        (&shown["name"], &shown["sql"]),
        (&json!("loop_9"), &json!(v2))
    );
}

/// A node whose CREATE INDEX backfill waits briefly (statement timeout + store margin).
fn quick_backfill() -> NodeOptions {
    NodeOptions::default()
        // Room for a slow LWT on a cold CQL server, yet a wait of seconds before the backfill.
        .env("COMMONROCK_SQL_STATEMENT_TIMEOUT_MS", "3000")
        .env("COMMONROCK_SQL_STORE_MARGIN_MS", "300")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_index_on_a_table_with_rows_backfills_it() {
    let node = Node::start_with(quick_backfill()).await;
    let p = node.project(json!({})).await;
    let slug = p.slug.clone();
    let (s, b) = node
        .sql_table(
            &slug,
            "CREATE TABLE people (id INTEGER PRIMARY KEY, team TEXT, email TEXT NOT NULL)",
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let insert = node
        .sql_definition_id(
            &slug,
            "insert_person",
            "INSERT INTO people (id, team, email) VALUES (:id, :team, :email)",
            false,
        )
        .await;
    let add = |id: i64, team: &str, email: &str| {
        p.sql_secret(json!({"query_definition_id": insert,
            "params": {"id": id, "team": team, "email": email}}))
    };
    let teams = ["red", "green", "blue"];
    for i in 0..40i64 {
        let a = add(i, teams[(i % 3) as usize], &format!("p{i:02}@x")).await;
        assert_eq!(a.status, 200, "{}", a.body);
    }

    // A plain index over existing rows, then a lookup through it.
    let (s, b) = node
        .sql_table(&slug, "CREATE INDEX people_team ON people (team)")
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(
        b["indexes"],
        json!([{"name": "people_team", "column": "team", "unique": false}])
    );
    let by_team = node
        .sql_definition_id(
            &slug,
            "by_team",
            "SELECT id FROM people WHERE team = :team ORDER BY id",
            false,
        )
        .await;
    let team = |t: &'static str| {
        p.sql_secret(json!({"query_definition_id": by_team, "params": {"team": t}, "limit": 100}))
    };
    let a = team("green").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let expected: Vec<Value> = (0..40)
        .filter(|i| i % 3 == 1)
        .map(|i| json!({"id": i}))
        .collect();
    assert_eq!(a.body["rows"], json!(expected));

    // A UNIQUE index over distinct values: keyset pages walk it; a duplicate is refused.
    let (s, b) = node
        .sql_table(&slug, "CREATE UNIQUE INDEX people_email ON people (email)")
        .await;
    assert_eq!(s, 201, "{b}");
    let (s, reg) = node
        .sql_definition(
            &slug,
            "by_email",
            "SELECT id, email FROM people ORDER BY email",
            false,
        )
        .await;
    assert_eq!(s, 201, "{reg}");
    assert_eq!(reg["keyset"], true, "{reg}");
    let by_email = reg["id"].as_str().expect("id").to_string();
    let mut cursor: Option<String> = None;
    let mut seen = Vec::new();
    for _ in 0..20 {
        let mut body =
            json!({"query_definition_id": by_email, "limit": 7, "cursor_mode": "keyset"});
        if let Some(c) = &cursor {
            body["cursor"] = json!(c);
        }
        let a = p.sql_secret(body).await;
        assert_eq!(a.status, 200, "{}", a.body);
        for row in a.body["rows"].as_array().expect("rows") {
            seen.push(row["id"].as_i64().expect("id"));
        }
        cursor = a.body["next_cursor"].as_str().map(str::to_string);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen, (0..40).collect::<Vec<i64>>());
    let a = add(100, "red", "p07@x").await;
    assert_eq!(
        (a.status, &a.body["detail"]["code"]),
        (409, &json!("already_exists")),
        "{}",
        a.body
    );

    // A UNIQUE index over duplicate values: 409 naming the column; the table is unchanged.
    let (s, b) = node
        .sql_table(&slug, "CREATE UNIQUE INDEX people_team_u ON people (team)")
        .await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(b["detail"]["code"], "already_exists");
    let message = b["detail"]["message"].as_str().expect("message");
    assert!(
        message.contains("column team has duplicate values"),
        "{message}"
    );
    let (s, t) = node
        .admin(
            Method::GET,
            &format!("/projects/{slug}/sql/tables/people"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{t}");
    let names: Vec<&str> = t["indexes"]
        .as_array()
        .expect("indexes")
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert_eq!(names, vec!["people_team", "people_email"]);
    let a = add(100, "green", "new@x").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = team("green").await;
    let mut expected = expected;
    expected.push(json!({"id": 100}));
    assert_eq!(a.body["rows"], json!(expected));
}
