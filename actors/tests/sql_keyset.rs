//! Keyset paging end to end on a real embedded store: concurrent inserts, NULL ORDER BY
//! values, joins.

mod support;

use commonrock_actors::sql::{CursorMode, ExecuteRequest, SqlError};
use serde_json::{json, Map, Value};
use support::fixture;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyset_paging_with_concurrent_inserts_and_bounded_reads() {
    let f = fixture();
    f.ddl("CREATE TABLE events (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, body TEXT)")
        .await;
    for i in 0..200 {
        f.exec(
            "INSERT INTO events (id, seq, body) VALUES (:id, :seq, :body)",
            json!({"id": i, "seq": i * 10, "body": "x"}),
        )
        .await;
    }
    let def = f
        .engine
        .register_definition(
            f.project,
            "events",
            "SELECT id, seq FROM events ORDER BY seq",
            true,
        )
        .await
        .unwrap();
    assert!(def.keyset_unavailable.is_none());
    let mut cursor = None;
    let mut seen = Vec::new();
    let mut next_new = 10_000;
    loop {
        let page = f
            .engine
            .execute(
                &def,
                ExecuteRequest {
                    limit: Some(10),
                    cursor: cursor.clone(),
                    mode: CursorMode::Keyset,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert!(
            page.rows_read <= 10 + 4,
            "a keyset page read {} rows",
            page.rows_read
        );
        seen.extend(page.rows.iter().map(|r| r["seq"].as_i64().unwrap()));
        // Inserts between pages: before the cursor, after it, and in between existing rows.
        for seq in [
            -5 - next_new,
            5 + next_new * 10,
            3 + (seen.len() as i64) * 10,
        ] {
            let _ = f
                .run(
                    "INSERT INTO events (id, seq, body) VALUES (:id, :seq, :body)",
                    json!({"id": next_new, "seq": seq, "body": "new"}),
                    None,
                    None,
                    CursorMode::Offset,
                )
                .await;
            next_new += 1;
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
        if seen.len() > 2000 {
            panic!("paging does not end");
        }
    }
    let original: Vec<i64> = (0..200).map(|i| i * 10).collect();
    for s in &original {
        assert_eq!(seen.iter().filter(|x| *x == s).count(), 1, "seq {s}");
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), seen.len(), "no row repeated");
    // Tampered cursor, other mode, other definition.
    let page = f
        .engine
        .execute(
            &def,
            ExecuteRequest {
                limit: Some(5),
                mode: CursorMode::Keyset,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let c = page.next_cursor.unwrap();
    let mut tampered = c.clone();
    tampered.push('A');
    for (cursor, mode) in [
        (tampered, CursorMode::Keyset),
        (c.clone(), CursorMode::Offset),
    ] {
        let r = f
            .engine
            .execute(
                &def,
                ExecuteRequest {
                    cursor: Some(cursor),
                    mode,
                    ..Default::default()
                },
            )
            .await;
        assert!(matches!(r, Err(SqlError::InvalidCursor { .. })), "{r:?}");
    }
    let other = f
        .engine
        .register_definition(
            f.project,
            "other",
            "SELECT id, seq FROM events ORDER BY seq",
            true,
        )
        .await
        .unwrap();
    let r = f
        .engine
        .execute(
            &other,
            ExecuteRequest {
                cursor: Some(c),
                mode: CursorMode::Keyset,
                ..Default::default()
            },
        )
        .await;
    assert!(matches!(r, Err(SqlError::InvalidCursor { .. })));
    // ORDER BY without a unique key: keyset refused with a reason.
    let loose = f
        .engine
        .register_definition(
            f.project,
            "loose",
            "SELECT id FROM events ORDER BY body",
            true,
        )
        .await
        .unwrap();
    let r = f
        .engine
        .execute(
            &loose,
            ExecuteRequest {
                mode: CursorMode::Keyset,
                ..Default::default()
            },
        )
        .await;
    match r {
        Err(SqlError::InvalidCursor { message }) => assert!(message.contains("unique")),
        other => panic!("{other:?}"),
    }
}

/// NULLs sort last ascending and first descending, whether the engine sorts or reads an
/// index, and keyset paging resumes after a NULL ORDER BY value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyset_paging_across_null_order_by_values() {
    let f = fixture();
    f.ddl("CREATE TABLE tasks (id INTEGER PRIMARY KEY, due INTEGER, title TEXT)")
        .await;
    f.ddl("CREATE INDEX tasks_due ON tasks (due)").await;
    let mut expected: Vec<(Option<i64>, i64)> = Vec::new();
    for id in 0..23i64 {
        // Every third row has no due date; the others share dates in pairs.
        let due = (id % 3 != 0).then_some(id / 2);
        f.exec(
            "INSERT INTO tasks (id, due, title) VALUES (:id, :due, 't')",
            json!({"id": id, "due": due}),
        )
        .await;
        expected.push((due, id));
    }
    // Ascending: values in order, NULLs last (as GlueSQL sorts `Key::None` last).
    expected.sort_by(|a, b| match (a.0, b.0) {
        (None, None) => a.1.cmp(&b.1),
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (Some(_), None) => std::cmp::Ordering::Less,
        (Some(x), Some(y)) => x.cmp(&y).then(a.1.cmp(&b.1)),
    });
    let pairs = |rows: &[Map<String, Value>]| -> Vec<(Option<i64>, i64)> {
        rows.iter()
            .map(|r| (r["due"].as_i64(), r["id"].as_i64().unwrap()))
            .collect()
    };
    for limit in [1, 2, 5] {
        let rows = f
            .keyset_all("SELECT id, due FROM tasks ORDER BY due, id", limit)
            .await;
        assert_eq!(pairs(&rows), expected, "ascending, limit {limit}");
        let rows = f
            .keyset_all(
                "SELECT id, due FROM tasks ORDER BY due DESC, id DESC",
                limit,
            )
            .await;
        let mut reversed = expected.clone();
        reversed.reverse();
        assert_eq!(pairs(&rows), reversed, "descending, limit {limit}");
    }
    // The index read for a one-column ORDER BY gives the same order as the engine's sort.
    let page = f
        .exec("SELECT id, due FROM tasks ORDER BY due", json!({}))
        .await;
    let dues: Vec<Option<i64>> = pairs(&page.rows).into_iter().map(|p| p.0).collect();
    let want: Vec<Option<i64>> = expected.iter().map(|p| p.0).collect();
    assert_eq!(dues, want);
    let page = f
        .exec("SELECT id, due FROM tasks ORDER BY due DESC", json!({}))
        .await;
    let dues: Vec<Option<i64>> = pairs(&page.rows).into_iter().map(|p| p.0).collect();
    let mut want_desc = want.clone();
    want_desc.reverse();
    assert_eq!(dues, want_desc);
    // `null` binds only where it is stored into a nullable column; compared, it never matches,
    // and a NOT NULL column cannot take it: 422 on the parameter.
    for (sql, p) in [
        (
            "SELECT id FROM tasks WHERE due = :d ORDER BY id",
            json!({"d": null}),
        ),
        (
            "INSERT INTO tasks (id, due, title) VALUES (:id, 1, 't')",
            json!({"id": null}),
        ),
    ] {
        let r = f.run(sql, p, None, None, CursorMode::Offset).await;
        assert!(
            matches!(&r, Err(SqlError::ParamErrors(e)) if e[0].kind == "type_error.none.not_allowed"),
            "{sql}: {r:?}"
        );
    }
    // A nullable UNIQUE column is no tiebreaker (two rows may both hold NULL).
    f.ddl("CREATE TABLE codes (id INTEGER PRIMARY KEY, code TEXT UNIQUE)")
        .await;
    let def = f
        .engine
        .register_definition(
            f.project,
            "codes",
            "SELECT id FROM codes ORDER BY code",
            true,
        )
        .await
        .unwrap();
    assert!(def.keyset_unavailable.unwrap().contains("NOT NULL UNIQUE"));
}

/// Over a join, keyset paging needs a unique key of every joined table in the ORDER BY; with
/// them every result row (LEFT JOIN's made-up NULL rows too) comes exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyset_paging_over_joins() {
    let f = fixture();
    f.ddl("CREATE TABLE authors (id INTEGER PRIMARY KEY, name TEXT)")
        .await;
    f.ddl("CREATE TABLE books (id INTEGER PRIMARY KEY, author_id INTEGER, title TEXT)")
        .await;
    for a in 0..6 {
        f.exec(
            "INSERT INTO authors (id, name) VALUES (:id, :name)",
            json!({"id": a, "name": format!("a{a}")}),
        )
        .await;
    }
    let mut inner = Vec::new();
    for b in 0..17i64 {
        // Authors 4 and 5 have no books; author 0 has many.
        let author = if b < 7 { 0 } else { b % 4 };
        f.exec(
            "INSERT INTO books (id, author_id, title) VALUES (:id, :a, 't')",
            json!({"id": b, "a": author}),
        )
        .await;
        inner.push((author, Some(b)));
    }
    let one_side = f
        .engine
        .register_definition(
            f.project,
            "one_side",
            "SELECT a.id AS aid, b.id AS bid FROM authors a JOIN books b ON b.author_id = a.id ORDER BY a.id",
            true,
        )
        .await
        .unwrap();
    let why = one_side.keyset_unavailable.unwrap();
    assert!(why.contains("every table"), "{why}");
    let pairs = |rows: &[Map<String, Value>]| -> Vec<(i64, Option<i64>)> {
        rows.iter()
            .map(|r| (r["aid"].as_i64().unwrap(), r["bid"].as_i64()))
            .collect()
    };
    inner.sort();
    for limit in [1, 3, 4] {
        let rows = f
            .keyset_all(
                "SELECT a.id AS aid, b.id AS bid FROM authors a JOIN books b ON b.author_id = a.id ORDER BY a.id, b.id",
                limit,
            )
            .await;
        assert_eq!(pairs(&rows), inner, "inner join, limit {limit}");
    }
    let mut outer = inner.clone();
    outer.push((4, None));
    outer.push((5, None));
    outer.sort_by(|x, y| {
        x.0.cmp(&y.0).then(match (x.1, y.1) {
            (Some(p), Some(q)) => p.cmp(&q),
            (None, None) => std::cmp::Ordering::Equal,
            (None, _) => std::cmp::Ordering::Greater,
            (_, None) => std::cmp::Ordering::Less,
        })
    });
    for limit in [1, 2, 5] {
        let rows = f
            .keyset_all(
                "SELECT a.id AS aid, b.id AS bid FROM authors a LEFT JOIN books b ON b.author_id = a.id ORDER BY a.id, b.id",
                limit,
            )
            .await;
        assert_eq!(pairs(&rows), outer, "left join, limit {limit}");
    }
}
