//! The SQL engine end to end on a real embedded store in a tempdir.

mod support;

use std::time::Duration;

use commonrock_actors::sql::{
    Caller, CursorMode, ExecuteRequest, SqlConfig, SqlError, StatementKind, ORDER_BY_MISSING,
};
use serde_json::json;
use support::{fixture, fixture_with, params};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_example_select_with_order_by_missing_warning() {
    let f = fixture();
    f.posts().await;
    for (id, author) in [("p1", "user-1"), ("p2", "user-2"), ("p3", "user-1")] {
        let page = f
            .exec(
                "INSERT INTO posts (id, author_id, title) VALUES (:id, :author, :title)",
                json!({"id": id, "author": author, "title": format!("post-{id}")}),
            )
            .await;
        assert_eq!(page.affected_rows, Some(1));
        assert!(page.rows.is_empty());
    }
    let def = f
        .engine
        .register_definition(
            f.project,
            "by_author",
            "SELECT id, title FROM posts WHERE author_id = :author_id",
            true,
        )
        .await
        .unwrap();
    assert_eq!(def.kind, StatementKind::Select);
    assert_eq!(def.params.len(), 1);
    assert_eq!(def.params[0].name, "author_id");
    assert_eq!(def.warnings[0].code, "order_by_missing");
    assert_eq!(def.warnings[0].message, ORDER_BY_MISSING);
    let page = f
        .engine
        .execute(
            &def,
            ExecuteRequest {
                params: params(json!({"author_id": "user-1"})),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut ids: Vec<_> = page.rows.iter().map(|r| r["id"].clone()).collect();
    ids.sort_by_key(|v| v.to_string());
    assert_eq!(ids, vec![json!("p1"), json!("p3")]);
    assert_eq!(page.rows[0].len(), 2);
    assert_eq!(page.warnings[0].message, ORDER_BY_MISSING);
    assert!(page.next_cursor.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_rejects_bad_definitions() {
    let f = fixture();
    f.posts().await;
    f.ddl("CREATE TABLE t (id INTEGER PRIMARY KEY, x INTEGER)")
        .await;
    let reg = |sql: String| {
        let f = &f;
        async move {
            f.engine
                .register_definition(
                    f.project,
                    &format!("d{}", Uuid::now_v7().simple()),
                    &sql,
                    false,
                )
                .await
        }
    };
    for bad in [
        "DROP TABLE posts",
        "SELECT 1; SELECT 2",
        "garbage garbage",
        "CREATE TABLE x (id INT PRIMARY KEY)",
        "SELECT id FROM nope",
        "SELECT nope FROM posts",
        "SELECT id FROM other_schema.posts",
        "SELECT id FROM posts ORDER BY id LIMIT 10",
        "SELECT id FROM posts OFFSET 5",
        "SELECT id, id FROM posts",
        "SELECT * FROM posts JOIN t ON posts.n = t.id",
        "SELECT id FROM posts WHERE id = $1",
        "SELECT a.id FROM posts a CROSS JOIN posts b",
    ] {
        match reg(bad.to_owned()).await {
            Err(SqlError::InvalidSql { .. }) => {}
            other => panic!("{bad}: expected invalid_sql, got {other:?}"),
        }
    }
    // 12 nested subqueries.
    let mut nested = "SELECT id FROM t".to_owned();
    for _ in 0..12 {
        nested = format!("SELECT id FROM t WHERE id IN ({nested})");
    }
    assert!(matches!(
        reg(nested).await,
        Err(SqlError::TooComplex { .. })
    ));
    // 10 joins.
    let mut joined = "SELECT t0.id AS a FROM t t0".to_owned();
    for i in 1..=10 {
        joined.push_str(&format!(" JOIN t t{i} ON t{i}.id = t0.id"));
    }
    assert!(matches!(
        reg(joined).await,
        Err(SqlError::TooComplex { .. })
    ));
    // Deep parentheses never overflow the stack.
    let deep = format!("SELECT {}1{} FROM t", "(".repeat(5000), ")".repeat(5000));
    assert!(matches!(reg(deep).await, Err(SqlError::TooComplex { .. })));
    let long_chain = format!("SELECT id FROM t WHERE x = {}", vec!["1"; 3000].join(" + "));
    assert!(matches!(
        reg(long_chain).await,
        Err(SqlError::TooComplex { .. })
    ));
    // Accepted: joins within the limit, aggregates, DML.
    reg("SELECT p.id, t.x FROM posts p JOIN t ON t.id = p.n ORDER BY p.id".into())
        .await
        .unwrap();
    reg("SELECT author_id, COUNT(*) AS c FROM posts GROUP BY author_id ORDER BY author_id".into())
        .await
        .unwrap();
    reg("UPDATE posts SET title = :t WHERE id = :id".into())
        .await
        .unwrap();
    reg("DELETE FROM posts WHERE author_id = :a".into())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_paging_by_ten() {
    let f = fixture();
    f.ddl("CREATE TABLE items (id INTEGER PRIMARY KEY, label TEXT)")
        .await;
    for i in 0..25 {
        f.exec(
            "INSERT INTO items (id, label) VALUES (:id, :label)",
            json!({"id": i, "label": format!("item-{i}")}),
        )
        .await;
    }
    let def = f
        .engine
        .register_definition(
            f.project,
            "all",
            "SELECT id, label FROM items ORDER BY id",
            true,
        )
        .await
        .unwrap();
    let mut cursor = None;
    let mut seen = Vec::new();
    let mut cursors = Vec::new();
    loop {
        let page = f
            .engine
            .execute(
                &def,
                ExecuteRequest {
                    limit: Some(10),
                    cursor: cursor.clone(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        seen.extend(page.rows.iter().map(|r| r["id"].as_i64().unwrap()));
        match page.next_cursor {
            Some(c) => {
                cursors.push(c.clone());
                cursor = Some(c);
            }
            None => break,
        }
    }
    assert_eq!(cursors, vec!["10".to_owned(), "20".to_owned()]);
    assert_eq!(seen, (0..25).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_params_override_client_values() {
    let f = fixture();
    f.ddl("CREATE TABLE notes (id INTEGER PRIMARY KEY, owner UUID NOT NULL, body TEXT)")
        .await;
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    for (i, owner) in [(1, alice), (2, bob), (3, alice)] {
        f.exec(
            "INSERT INTO notes (id, owner, body) VALUES (:id, :owner, :body)",
            json!({"id": i, "owner": owner.to_string(), "body": "b"}),
        )
        .await;
    }
    let def = f
        .engine
        .register_definition(
            f.project,
            "mine",
            "SELECT id FROM notes WHERE owner = :end_user_id ORDER BY id",
            true,
        )
        .await
        .unwrap();
    assert!(def.params[0].reserved);
    let page = f
        .engine
        .execute(
            &def,
            ExecuteRequest {
                params: params(json!({"end_user_id": bob.to_string()})),
                caller: Caller {
                    end_user_id: Some(alice),
                    external_id: None,
                },
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let ids: Vec<_> = page.rows.iter().map(|r| r["id"].clone()).collect();
    assert_eq!(ids, vec![json!(1), json!(3)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn param_errors_are_pydantic_shaped() {
    let f = fixture();
    f.posts().await;
    let r = f
        .run(
            "SELECT id FROM posts WHERE n = :n AND author_id = :a ORDER BY id",
            json!({"n": "not a number", "zzz": 1}),
            None,
            None,
            CursorMode::Offset,
        )
        .await;
    let Err(SqlError::ParamErrors(errors)) = r else {
        panic!("{r:?}")
    };
    let find = |n: &str| errors.iter().find(|e| e.name == n).unwrap().clone();
    assert_eq!(find("n").kind, "type_error.integer");
    assert_eq!(find("a").msg, "field required");
    assert_eq!(find("a").kind, "value_error.missing");
    assert_eq!(find("zzz").kind, "value_error.extra");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_strings_round_trip_and_injection_changes_nothing() {
    let f = fixture();
    f.posts().await;
    let hostile = [
        "it's",
        "'; DROP TABLE posts; --",
        "a::text",
        "-- comment",
        "$1",
        ":author_id",
        "line\nbreak\r\n",
        "\"quoted\"",
        "back\\slash",
        "' OR '1'='1",
    ];
    for (i, s) in hostile.iter().enumerate() {
        f.exec(
            "INSERT INTO posts (id, author_id, title, meta) VALUES (:id, :a, :t, :m)",
            json!({"id": format!("h{i}"), "a": s, "t": s, "m": {"s": s, "list": [1, 2]}}),
        )
        .await;
    }
    let page = f
        .exec(
            "SELECT id, title, author_id, meta FROM posts ORDER BY id",
            json!({}),
        )
        .await;
    assert_eq!(page.rows.len(), hostile.len());
    for row in &page.rows {
        let i: usize = row["id"].as_str().unwrap()[1..].parse().unwrap();
        assert_eq!(row["title"], json!(hostile[i]));
        assert_eq!(row["author_id"], json!(hostile[i]));
        assert_eq!(row["meta"], json!({"s": hostile[i], "list": [1, 2]}));
    }
    // Injection attempts as values find nothing and change nothing.
    for attack in ["' OR '1'='1", "x' OR 1=1 --", "1; DELETE FROM posts"] {
        let page = f
            .exec(
                "SELECT id FROM posts WHERE id = :id ORDER BY id",
                json!({"id": attack}),
            )
            .await;
        assert!(page.rows.is_empty());
        let page = f
            .exec("DELETE FROM posts WHERE id = :id", json!({"id": attack}))
            .await;
        assert_eq!(page.affected_rows, Some(0));
    }
    let page = f.exec("SELECT id FROM posts ORDER BY id", json!({})).await;
    assert_eq!(page.rows.len(), hostile.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn types_map_to_json() {
    let f = fixture();
    f.ddl("CREATE TABLE v (id UUID PRIMARY KEY, i BIGINT, d DOUBLE, b BOOLEAN, t TIMESTAMP, j JSON, s TEXT)")
        .await;
    let id = Uuid::new_v4();
    f.exec(
        "INSERT INTO v (id, i, d, b, t, j, s) VALUES (:id, :i, :d, :b, :t, :j, :s)",
        json!({"id": id.to_string(), "i": 42, "d": 1.5, "b": true, "t": "2026-02-04T13:00:00Z", "j": [1, {"a": null}], "s": "x"}),
    )
    .await;
    let page = f.exec("SELECT * FROM v ORDER BY id", json!({})).await;
    let row = &page.rows[0];
    assert_eq!(row["id"], json!(id.to_string()));
    assert_eq!(row["i"], json!(42));
    assert_eq!(row["d"], json!(1.5));
    assert_eq!(row["b"], json!(true));
    assert_eq!(row["t"], json!("2026-02-04T13:00:00Z"));
    assert_eq!(row["j"], json!([1, {"a": null}]));
    assert_eq!(row["s"], json!("x"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dml_update_delete_unique_and_duplicate_pk() {
    let f = fixture();
    f.ddl("CREATE TABLE u (id INTEGER PRIMARY KEY, email TEXT UNIQUE, n INTEGER)")
        .await;
    let ins = "INSERT INTO u (id, email, n) VALUES (:id, :e, :n)";
    f.exec(ins, json!({"id": 1, "e": "a@x", "n": 1})).await;
    f.exec(ins, json!({"id": 2, "e": "b@x", "n": 2})).await;
    let dup = f
        .run(
            ins,
            json!({"id": 1, "e": "c@x", "n": 3}),
            None,
            None,
            CursorMode::Offset,
        )
        .await;
    assert!(matches!(dup, Err(SqlError::Conflict { .. })), "{dup:?}");
    let dup = f
        .run(
            ins,
            json!({"id": 3, "e": "a@x", "n": 3}),
            None,
            None,
            CursorMode::Offset,
        )
        .await;
    assert!(matches!(dup, Err(SqlError::Conflict { .. })), "{dup:?}");
    let page = f
        .exec(
            "UPDATE u SET email = :e WHERE id = :id",
            json!({"id": 2, "e": "bb@x"}),
        )
        .await;
    assert_eq!(page.affected_rows, Some(1));
    // The old unique value is free again, the new one is taken.
    f.exec(ins, json!({"id": 4, "e": "b@x", "n": 4})).await;
    let page = f
        .exec(
            "SELECT id FROM u WHERE email = :e ORDER BY id",
            json!({"e": "bb@x"}),
        )
        .await;
    assert_eq!(page.rows[0]["id"], json!(2));
    let page = f.exec("DELETE FROM u WHERE n >= :n", json!({"n": 2})).await;
    assert_eq!(page.affected_rows, Some(2));
    let page = f.exec("SELECT COUNT(*) AS c FROM u", json!({})).await;
    assert_eq!(page.rows[0]["c"], json!(1));
    // ADD COLUMN: old rows read the default.
    f.ddl("ALTER TABLE u ADD COLUMN tier TEXT NOT NULL DEFAULT 'free'")
        .await;
    let page = f
        .exec("SELECT id, tier FROM u ORDER BY id", json!({}))
        .await;
    assert_eq!(page.rows[0]["tier"], json!("free"));
}

/// UPDATE and DELETE with a key equality read only the rows with that key (GlueSQL alone
/// would scan the table), and still evaluate the rest of the WHERE clause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_update_and_delete_read_only_their_rows() {
    let f = fixture();
    f.ddl("CREATE TABLE notes (id INTEGER PRIMARY KEY, owner TEXT, tag TEXT, body TEXT)")
        .await;
    f.ddl("CREATE INDEX notes_tag ON notes (tag)").await;
    for i in 0..300 {
        f.exec(
            "INSERT INTO notes (id, owner, tag, body) VALUES (:id, :owner, :tag, 'b')",
            json!({"id": i, "owner": format!("u{}", i % 2), "tag": format!("t{}", i % 100)}),
        )
        .await;
    }
    // pk equality plus another condition that holds: one row read, one row changed.
    let page = f
        .exec(
            "UPDATE notes SET body = :body WHERE id = :id AND owner = :owner",
            json!({"id": 7, "owner": "u1", "body": "new"}),
        )
        .await;
    assert_eq!(page.affected_rows, Some(1));
    assert_eq!(
        page.rows_read, 1,
        "a keyed UPDATE read {} rows",
        page.rows_read
    );
    // ... and one that does not: nothing changes (the WHERE is still evaluated).
    let page = f
        .exec(
            "UPDATE notes SET body = :body WHERE (owner = :owner) AND notes.id = :id",
            json!({"id": 8, "owner": "u1", "body": "stolen"}),
        )
        .await;
    assert_eq!(page.affected_rows, Some(0));
    assert!(page.rows_read <= 1);
    // A literal key works too; a missing key reads nothing.
    let page = f.exec("DELETE FROM notes WHERE 9 = id", json!({})).await;
    assert_eq!((page.affected_rows, page.rows_read), (Some(1), 1));
    let page = f
        .exec("DELETE FROM notes WHERE id = :id", json!({"id": 100_000}))
        .await;
    assert_eq!((page.affected_rows, page.rows_read), (Some(0), 0));
    // An indexed column: the three rows with that tag.
    let page = f
        .exec(
            "UPDATE notes SET body = 'tagged' WHERE tag = :tag",
            json!({"tag": "t42"}),
        )
        .await;
    assert_eq!(page.affected_rows, Some(3));
    assert!(
        page.rows_read <= 3,
        "an indexed UPDATE read {} rows",
        page.rows_read
    );
    // OR is no restriction: the table is scanned and both rows go.
    let page = f
        .exec(
            "DELETE FROM notes WHERE id = :a OR id = :b",
            json!({"a": 10, "b": 11}),
        )
        .await;
    assert_eq!(page.affected_rows, Some(2));
    assert!(page.rows_read >= 290);
    // A subquery on the same table sees every row.
    let page = f
        .exec(
            "DELETE FROM notes WHERE id = :id AND id IN (SELECT id FROM notes WHERE tag = 't12')",
            json!({"id": 12}),
        )
        .await;
    assert_eq!(page.affected_rows, Some(1));
    let page = f
        .exec(
            "SELECT id, body FROM notes WHERE id = :a OR id = :b OR id = :c OR id = :d ORDER BY id",
            json!({"a": 7, "b": 8, "c": 142, "d": 9}),
        )
        .await;
    let got: Vec<(i64, String)> = page
        .rows
        .iter()
        .map(|r| {
            (
                r["id"].as_i64().unwrap(),
                r["body"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![(7, "new".into()), (8, "b".into()), (142, "tagged".into())]
    );
}

/// `WHERE owner = :o ORDER BY id` (the owner-restricted listing) reads the owner's index slice,
/// which is in pk order, instead of the whole table in pk order: a keyset page reads about
/// its limit, ascending and descending, and every row of the owner comes once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_listing_pages_read_about_their_limit() {
    let f = fixture();
    f.ddl("CREATE TABLE docs (id INTEGER PRIMARY KEY, owner TEXT NOT NULL, title TEXT)")
        .await;
    f.ddl("CREATE INDEX docs_owner ON docs (owner)").await;
    for i in 0..400 {
        f.exec(
            "INSERT INTO docs (id, owner, title) VALUES (:id, :owner, 'x')",
            json!({"id": i, "owner": format!("u{}", i % 4)}),
        )
        .await;
    }
    for (order, descending) in [("id", false), ("id DESC", true)] {
        let def = f
            .engine
            .register_definition(
                f.project,
                &format!("mine {order}"),
                &format!("SELECT id FROM docs WHERE owner = :owner ORDER BY {order}"),
                true,
            )
            .await
            .unwrap();
        let mut ids = Vec::new();
        for page in f.keyset_pages(&def, json!({"owner": "u1"}), 10).await {
            assert!(
                page.rows_read <= 10 + 4,
                "{order}: a page read {} rows",
                page.rows_read
            );
            ids.extend(page.rows.iter().map(|r| r["id"].as_i64().unwrap()));
        }
        let mut want: Vec<i64> = (0..400).filter(|i| i % 4 == 1).collect();
        if descending {
            want.reverse();
        }
        assert_eq!(ids, want, "{order}");
    }
}

/// DROP INDEX: readers stop using the index at once, its entries go, definitions keep running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_index_removes_it_and_definitions_keep_working() {
    use commonrock_actors::sql::ddl::DdlOutcome;
    let f = fixture();
    f.ddl("CREATE TABLE a (id INTEGER PRIMARY KEY, tag TEXT)")
        .await;
    f.ddl("CREATE TABLE b (id INTEGER PRIMARY KEY, tag TEXT)")
        .await;
    f.ddl("CREATE INDEX by_tag ON a (tag)").await;
    f.ddl("CREATE INDEX by_tag ON b (tag)").await;
    for i in 0..50 {
        f.exec(
            "INSERT INTO a (id, tag) VALUES (:id, :tag)",
            json!({"id": i, "tag": format!("t{}", i % 10)}),
        )
        .await;
    }
    let by_tag = "SELECT id FROM a WHERE tag = :tag ORDER BY id";
    let page = f.exec(by_tag, json!({"tag": "t3"})).await;
    assert_eq!(page.rows.len(), 5);
    assert_eq!(page.rows_read, 5, "the index serves the lookup");
    // Unqualified and on two tables: ambiguous.
    let r = f.engine.execute_ddl(f.project, "DROP INDEX by_tag").await;
    assert!(
        matches!(&r, Err(SqlError::InvalidSql { message }) if message.contains("a.by_tag")),
        "{r:?}"
    );
    match f.engine.execute_ddl(f.project, "DROP INDEX a.by_tag").await {
        Ok(DdlOutcome::IndexDropped {
            index,
            table: Some(t),
        }) => {
            assert_eq!(index, "by_tag");
            assert!(t.indexes.is_empty());
        }
        other => panic!("{other:?}"),
    }
    let page = f.exec(by_tag, json!({"tag": "t3"})).await;
    assert_eq!(page.rows.len(), 5, "same answer without the index");
    assert_eq!(page.rows_read, 50, "now a scan");
    let table = f
        .engine
        .store()
        .get_table(f.project, "a")
        .await
        .unwrap()
        .unwrap();
    let entries = f
        .engine
        .store()
        .scan_index(
            table.key(),
            "by_tag",
            &commonrock_actors::store::rows::IndexRange::all(),
            100,
            false,
        )
        .await
        .unwrap();
    assert!(entries.is_empty(), "entries purged: {entries:?}");
    // b's index is now the only one of that name.
    f.ddl("DROP INDEX by_tag").await;
    assert!(matches!(
        f.engine
            .execute_ddl(f.project, "DROP INDEX IF EXISTS by_tag")
            .await,
        Ok(DdlOutcome::IndexDropped { table: None, .. })
    ));
    let r = f.engine.execute_ddl(f.project, "DROP INDEX by_tag").await;
    assert!(matches!(&r, Err(SqlError::InvalidSql { .. })), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_table_refused_while_used_then_cascades() {
    let f = fixture();
    f.posts().await;
    let def = f
        .engine
        .register_definition(f.project, "q", "SELECT id FROM posts ORDER BY id", true)
        .await
        .unwrap();
    let r = f.engine.execute_ddl(f.project, "DROP TABLE posts").await;
    assert!(matches!(r, Err(SqlError::InvalidSql { .. })), "{r:?}");
    f.engine
        .execute_ddl(f.project, "DROP TABLE posts CASCADE")
        .await
        .unwrap();
    let r = f.engine.get_definition(f.project, def.id).await;
    assert!(matches!(r, Err(SqlError::TemplateNotFound)));
    // Another project cannot see the first one's tables.
    let other = Uuid::now_v7();
    f.ddl("CREATE TABLE secret (id INTEGER PRIMARY KEY)").await;
    let r = f
        .engine
        .register_definition(other, "x", "SELECT id FROM secret", true)
        .await;
    assert!(matches!(r, Err(SqlError::InvalidSql { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runaway_query_times_out_and_frees_its_thread() {
    let config = SqlConfig {
        statement_timeout: Duration::from_millis(700),
        threads: 1,
        max_rows_read: u64::MAX,
        max_bytes_read: u64::MAX,
        ..SqlConfig::default()
    };
    let f = fixture_with(config);
    f.ddl("CREATE TABLE a (id INTEGER PRIMARY KEY)").await;
    f.ddl("CREATE TABLE b (id INTEGER PRIMARY KEY)").await;
    for t in ["a", "b"] {
        let def = f
            .engine
            .register_definition(
                f.project,
                &format!("ins_{t}"),
                &format!("INSERT INTO {t} (id) VALUES (:id)"),
                true,
            )
            .await
            .unwrap();
        // Two writers, not more: the engine has one thread and a 700 ms statement deadline, and
        // an insert waiting behind seven others (each an fsync) missed it on a loaded machine.
        let mut handles = Vec::new();
        for chunk in 0..2 {
            let def = def.clone();
            let engine = &f.engine;
            handles.push(async move {
                for i in (chunk * 1000)..((chunk + 1) * 1000) {
                    engine
                        .execute(
                            &def,
                            ExecuteRequest {
                                params: params(json!({"id": i})),
                                ..Default::default()
                            },
                        )
                        .await
                        .unwrap();
                }
            });
        }
        futures_util::future::join_all(handles).await;
    }
    let started = std::time::Instant::now();
    let r = f
        .run(
            "SELECT a.id AS x, b.id AS y FROM a JOIN b ON 1 = 1 ORDER BY x",
            json!({}),
            Some(10),
            None,
            CursorMode::Offset,
        )
        .await;
    assert!(matches!(r, Err(SqlError::Timeout)), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // The one pool thread is free again for the next statement.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(f.engine.busy_threads(), 0);
    let page = f
        .exec("SELECT id FROM a WHERE id = :id", json!({"id": 7}))
        .await;
    assert_eq!(page.rows.len(), 1);
}
