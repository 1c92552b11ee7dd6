//! Behaviour every [`RowStore`] must show (embedded today, CQL next). Public async fns plus
//! [`run_all`], like `store::conformance`; each test uses fresh project ids.

use std::ops::Bound;
use std::sync::Arc;

use uuid::Uuid;

use super::rows::{
    ColumnSpec, ColumnType, DefinitionRecord, IndexBound, IndexEntry, IndexRange, MetaInserted,
    MetaReplaced, PkRange, RowAddr, RowDelete, RowInsert, RowQuota, RowStore, RowUpdate,
    RowWritten, TableKey, TableRecord,
};

fn table(project_id: Uuid, name: &str) -> TableRecord {
    TableRecord {
        project_id,
        id: Uuid::now_v7(),
        name: name.to_owned(),
        columns: vec![ColumnSpec {
            name: "id".into(),
            ty: ColumnType::Integer,
            nullable: false,
            default: None,
        }],
        primary_key: "id".into(),
        indexes: Vec::new(),
        buckets: 4,
        version: 1,
        created_at: 0,
    }
}

const QUOTA: RowQuota = RowQuota {
    max_table_rows: 1000,
    max_project_rows: 1000,
};

fn insert(
    t: TableKey,
    bucket: u32,
    pk: &[u8],
    value: &[u8],
    entries: Vec<IndexEntry>,
) -> RowInsert {
    RowInsert {
        table: t,
        addr: RowAddr {
            bucket,
            pk: pk.to_vec(),
        },
        value: value.to_vec(),
        index_entries: entries,
        quota: QUOTA,
    }
}

fn entry(index: &str, key: &[u8], unique: bool) -> IndexEntry {
    IndexEntry {
        index: index.into(),
        key: key.to_vec(),
        unique,
    }
}

/// Tables: unique names per project, quota, compare-and-set updates, per-project isolation.
pub async fn tables_metadata(store: &dyn RowStore) {
    let (p, q) = (Uuid::now_v7(), Uuid::now_v7());
    let t = table(p, "posts");
    assert_eq!(
        store.create_table(&t, 2).await.unwrap(),
        MetaInserted::Created
    );
    assert_eq!(
        store.create_table(&table(p, "posts"), 2).await.unwrap(),
        MetaInserted::AlreadyExists
    );
    assert_eq!(
        store.create_table(&table(q, "posts"), 2).await.unwrap(),
        MetaInserted::Created
    );
    assert_eq!(
        store.create_table(&table(p, "b"), 2).await.unwrap(),
        MetaInserted::Created
    );
    assert_eq!(
        store.create_table(&table(p, "c"), 2).await.unwrap(),
        MetaInserted::QuotaExceeded
    );
    assert_eq!(store.get_table(p, "posts").await.unwrap().unwrap(), t);
    assert!(store.get_table(p, "nope").await.unwrap().is_none());
    assert_eq!(store.list_tables(p).await.unwrap().len(), 2);
    let mut changed = t.clone();
    changed.version = 2;
    assert!(store.update_table(&changed, 1).await.unwrap());
    assert!(!store.update_table(&changed, 1).await.unwrap());
    assert!(store.delete_table(p, "posts").await.unwrap());
    assert!(!store.delete_table(p, "posts").await.unwrap());
    assert!(store.get_table(q, "posts").await.unwrap().is_some());
}

/// Definitions: unique names per project, quota, delete.
pub async fn definitions_metadata(store: &dyn RowStore) {
    let p = Uuid::now_v7();
    let d = |name: &str| DefinitionRecord {
        project_id: p,
        id: Uuid::now_v7(),
        name: name.into(),
        sql: "SELECT 1".into(),
        public: false,
        tables: vec!["t".into()],
        created_at: 0,
    };
    let a = d("a");
    assert_eq!(
        store.insert_definition(&a, 2).await.unwrap(),
        MetaInserted::Created
    );
    assert_eq!(
        store.insert_definition(&d("a"), 2).await.unwrap(),
        MetaInserted::AlreadyExists
    );
    assert_eq!(
        store.insert_definition(&d("b"), 2).await.unwrap(),
        MetaInserted::Created
    );
    assert_eq!(
        store.insert_definition(&d("c"), 2).await.unwrap(),
        MetaInserted::QuotaExceeded
    );
    assert_eq!(store.get_definition(p, a.id).await.unwrap().unwrap(), a);
    assert!(store
        .get_definition(Uuid::now_v7(), a.id)
        .await
        .unwrap()
        .is_none());
    assert!(store.delete_definition(p, a.id).await.unwrap());
    assert_eq!(store.list_definitions(p).await.unwrap().len(), 1);
}

/// Replace under the same id: same name, a free name (the old one is freed), a taken name
/// (refused, nothing changes), an unknown id.
pub async fn definitions_replace(store: &dyn RowStore) {
    let p = Uuid::now_v7();
    let d = |name: &str, sql: &str| DefinitionRecord {
        project_id: p,
        id: Uuid::now_v7(),
        name: name.into(),
        sql: sql.into(),
        public: false,
        tables: vec!["t".into()],
        created_at: 7,
    };
    let a = d("a", "SELECT 1");
    let b = d("b", "SELECT 2");
    for x in [&a, &b] {
        assert_eq!(
            store.insert_definition(x, 10).await.unwrap(),
            MetaInserted::Created
        );
    }
    let mut same_name = a.clone();
    same_name.sql = "SELECT 3".into();
    same_name.public = true;
    assert_eq!(
        store.replace_definition(&same_name).await.unwrap(),
        MetaReplaced::Replaced
    );
    assert_eq!(
        store.get_definition(p, a.id).await.unwrap().unwrap(),
        same_name
    );
    let mut taken = same_name.clone();
    taken.name = "b".into();
    taken.sql = "SELECT 4".into();
    assert_eq!(
        store.replace_definition(&taken).await.unwrap(),
        MetaReplaced::NameTaken
    );
    assert_eq!(
        store.get_definition(p, a.id).await.unwrap().unwrap(),
        same_name,
        "a refused replace changes nothing"
    );
    assert_eq!(store.get_definition(p, b.id).await.unwrap().unwrap(), b);
    let mut renamed = same_name.clone();
    renamed.name = "c".into();
    renamed.sql = "SELECT 5".into();
    assert_eq!(
        store.replace_definition(&renamed).await.unwrap(),
        MetaReplaced::Replaced
    );
    assert_eq!(
        store.get_definition(p, a.id).await.unwrap().unwrap(),
        renamed
    );
    let mut names: Vec<String> = store
        .list_definitions(p)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    names.sort();
    assert_eq!(names, vec!["b", "c"]);
    // Renamed back and forth: the id keeps leading to the record.
    let mut back = renamed.clone();
    back.name = "a".into();
    assert_eq!(
        store.replace_definition(&back).await.unwrap(),
        MetaReplaced::Replaced
    );
    assert_eq!(store.get_definition(p, a.id).await.unwrap().unwrap(), back);
    assert_eq!(
        store.replace_definition(&renamed).await.unwrap(),
        MetaReplaced::Replaced
    );
    // The old name is free for another definition.
    assert_eq!(
        store
            .insert_definition(&d("a", "SELECT 6"), 10)
            .await
            .unwrap(),
        MetaInserted::Created
    );
    assert_eq!(
        store.replace_definition(&d("x", "SELECT 7")).await.unwrap(),
        MetaReplaced::NotFound
    );
    let mut elsewhere = renamed.clone();
    elsewhere.project_id = Uuid::now_v7();
    assert_eq!(
        store.replace_definition(&elsewhere).await.unwrap(),
        MetaReplaced::NotFound
    );
    assert!(store.delete_definition(p, a.id).await.unwrap());
    assert!(store.get_definition(p, a.id).await.unwrap().is_none());
    assert_eq!(
        store.replace_definition(&renamed).await.unwrap(),
        MetaReplaced::NotFound
    );
}

/// Rows: conditional insert, ordered bucket slices both ways, CAS update and delete, counts.
pub async fn rows_insert_scan_update_delete(store: &dyn RowStore) {
    let t = table(Uuid::now_v7(), "r").key();
    for i in 0u8..10 {
        let r = store
            .insert_row(&insert(t, 1, &[i], &[i, i], Vec::new()))
            .await
            .unwrap();
        assert_eq!(r, RowWritten::Done);
    }
    assert_eq!(
        store
            .insert_row(&insert(t, 1, &[3], b"x", Vec::new()))
            .await
            .unwrap(),
        RowWritten::Conflict
    );
    assert_eq!(store.count_rows(t).await.unwrap(), 10);
    let rows = store
        .scan_bucket(
            t,
            1,
            &PkRange {
                lower: Bound::Excluded(vec![2]),
                upper: Bound::Included(vec![6]),
            },
            100,
            false,
        )
        .await
        .unwrap();
    assert_eq!(
        rows.iter().map(|r| r.pk[0]).collect::<Vec<_>>(),
        vec![3, 4, 5, 6]
    );
    let rows = store
        .scan_bucket(t, 1, &PkRange::all(), 3, true)
        .await
        .unwrap();
    assert_eq!(
        rows.iter().map(|r| r.pk[0]).collect::<Vec<_>>(),
        vec![9, 8, 7]
    );
    assert!(store
        .scan_bucket(t, 2, &PkRange::all(), 10, false)
        .await
        .unwrap()
        .is_empty());
    let got = store
        .get_rows(
            t,
            &[
                RowAddr {
                    bucket: 1,
                    pk: vec![4],
                },
                RowAddr {
                    bucket: 0,
                    pk: vec![4],
                },
            ],
        )
        .await
        .unwrap();
    assert_eq!(got, vec![Some(vec![4, 4]), None]);
    let update = RowUpdate {
        table: t,
        addr: RowAddr {
            bucket: 1,
            pk: vec![4],
        },
        expected: vec![4, 4],
        value: b"new".to_vec(),
        old_entries: Vec::new(),
        new_entries: Vec::new(),
    };
    assert_eq!(store.update_row(&update).await.unwrap(), RowWritten::Done);
    assert_eq!(
        store.update_row(&update).await.unwrap(),
        RowWritten::Conflict
    );
    let delete = RowDelete {
        table: t,
        addr: RowAddr {
            bucket: 1,
            pk: vec![4],
        },
        expected: b"new".to_vec(),
        entries: Vec::new(),
    };
    assert_eq!(store.delete_row(&delete).await.unwrap(), RowWritten::Done);
    assert_eq!(
        store.delete_row(&delete).await.unwrap(),
        RowWritten::Conflict
    );
    assert_eq!(store.count_rows(t).await.unwrap(), 9);
}

/// Index entries: written with their row, ordered by (key, pk) for any key bytes, bounded
/// slices, unique violations, moved by updates, removed by deletes.
pub async fn index_entries_and_unique(store: &dyn RowStore) {
    let t = table(Uuid::now_v7(), "i").key();
    let keys: [&[u8]; 5] = [b"a", b"a\0", b"a\0b", b"b", b""];
    for (i, k) in keys.iter().enumerate() {
        let r = store
            .insert_row(&insert(
                t,
                0,
                &[i as u8],
                b"v",
                vec![entry("by_k", k, false), entry("uniq", &[i as u8], true)],
            ))
            .await
            .unwrap();
        assert_eq!(r, RowWritten::Done);
    }
    let dup = store
        .insert_row(&insert(t, 0, &[9], b"v", vec![entry("by_k", b"a", false)]))
        .await
        .unwrap();
    assert_eq!(dup, RowWritten::Done, "a non-unique key may repeat");
    let all = store
        .scan_index(t, "by_k", &IndexRange::all(), 100, false)
        .await
        .unwrap();
    let expected: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b"".to_vec(), vec![4]),
        (b"a".to_vec(), vec![0]),
        (b"a".to_vec(), vec![9]),
        (b"a\0".to_vec(), vec![1]),
        (b"a\0b".to_vec(), vec![2]),
        (b"b".to_vec(), vec![3]),
    ];
    assert_eq!(all, expected);
    let mut reversed = expected.clone();
    reversed.reverse();
    assert_eq!(
        store
            .scan_index(t, "by_k", &IndexRange::all(), 100, true)
            .await
            .unwrap(),
        reversed
    );
    let eq_a = IndexRange {
        lower: IndexBound::Key {
            key: b"a".to_vec(),
            inclusive: true,
        },
        upper: IndexBound::Key {
            key: b"a".to_vec(),
            inclusive: true,
        },
    };
    assert_eq!(
        store
            .scan_index(t, "by_k", &eq_a, 100, false)
            .await
            .unwrap(),
        expected[1..3].to_vec()
    );
    let after = IndexRange {
        lower: IndexBound::Entry {
            key: b"a".to_vec(),
            pk: vec![0],
        },
        upper: IndexBound::Key {
            key: b"b".to_vec(),
            inclusive: false,
        },
    };
    assert_eq!(
        store
            .scan_index(t, "by_k", &after, 100, false)
            .await
            .unwrap(),
        expected[2..5].to_vec()
    );
    let gt_a = IndexRange {
        lower: IndexBound::Key {
            key: b"a".to_vec(),
            inclusive: false,
        },
        upper: IndexBound::Unbounded,
    };
    assert_eq!(
        store.scan_index(t, "by_k", &gt_a, 2, false).await.unwrap(),
        expected[3..5].to_vec()
    );
    // Unique: another row may not take key [1]; the same row keeps it through an update.
    let taken = store
        .insert_row(&insert(t, 0, &[7], b"v", vec![entry("uniq", &[1], true)]))
        .await
        .unwrap();
    assert_eq!(
        taken,
        RowWritten::UniqueViolation {
            index: "uniq".into()
        }
    );
    let moved = store
        .update_row(&RowUpdate {
            table: t,
            addr: RowAddr {
                bucket: 0,
                pk: vec![1],
            },
            expected: b"v".to_vec(),
            value: b"w".to_vec(),
            old_entries: vec![entry("by_k", b"a\0", false), entry("uniq", &[1], true)],
            new_entries: vec![entry("by_k", b"z", false), entry("uniq", &[1], true)],
        })
        .await
        .unwrap();
    assert_eq!(moved, RowWritten::Done);
    let all = store
        .scan_index(t, "by_k", &IndexRange::all(), 100, false)
        .await
        .unwrap();
    assert_eq!(all.last().unwrap(), &(b"z".to_vec(), vec![1]));
    assert!(!all.contains(&(b"a\0".to_vec(), vec![1])));
    store
        .delete_row(&RowDelete {
            table: t,
            addr: RowAddr {
                bucket: 0,
                pk: vec![1],
            },
            expected: b"w".to_vec(),
            entries: vec![entry("by_k", b"z", false), entry("uniq", &[1], true)],
        })
        .await
        .unwrap();
    let free = store
        .insert_row(&insert(t, 0, &[7], b"v", vec![entry("uniq", &[1], true)]))
        .await
        .unwrap();
    assert_eq!(free, RowWritten::Done);
}

/// Quotas per table and project; purge of a dropped table's rows and entries.
pub async fn quota_and_purge(store: &dyn RowStore) {
    let t = table(Uuid::now_v7(), "q").key();
    let mut ins = insert(t, 0, &[0], b"v", vec![entry("k", b"x", false)]);
    ins.quota.max_table_rows = 2;
    for i in 0u8..2 {
        ins.addr.pk = vec![i];
        assert_eq!(store.insert_row(&ins).await.unwrap(), RowWritten::Done);
    }
    ins.addr.pk = vec![2];
    assert_eq!(
        store.insert_row(&ins).await.unwrap(),
        RowWritten::QuotaExceeded
    );
    let mut total = 0;
    loop {
        let n = store.purge_rows(t, 4, 1).await.unwrap();
        if n == 0 {
            break;
        }
        total += n;
    }
    assert!(total >= 2);
    assert!(store
        .scan_bucket(t, 0, &PkRange::all(), 10, false)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .scan_index(t, "k", &IndexRange::all(), 10, false)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.count_rows(t).await.unwrap(), 0);
}

fn addr(pk: &[u8]) -> RowAddr {
    RowAddr {
        bucket: 0,
        pk: pk.to_vec(),
    }
}

/// Backfill of an index declared over existing rows: entries written only for the row value
/// they were computed from, idempotent, UNIQUE keys checked against other rows, taken back
/// exactly, moved by later row writes, purged with their UNIQUE claims.
pub async fn index_backfill(store: &dyn RowStore) {
    let t = table(Uuid::now_v7(), "b").key();
    // Rows written before the index existed: no entries of "late" / "late_u".
    for (pk, value) in [(b"1", b"a"), (b"2", b"b"), (b"3", b"a")] {
        let r = store
            .insert_row(&insert(t, 0, pk, value, Vec::new()))
            .await
            .unwrap();
        assert_eq!(r, RowWritten::Done);
    }
    let late = |key: &[u8]| entry("late", key, false);
    let scan = |index: &'static str| async move {
        store
            .scan_index(t, index, &IndexRange::all(), 100, false)
            .await
            .unwrap()
    };
    for (pk, value) in [(b"1", b"a"), (b"2", b"b"), (b"3", b"a")] {
        for _ in 0..2 {
            assert_eq!(
                store
                    .put_index_entry(t, &addr(pk), value, &late(value))
                    .await
                    .unwrap(),
                RowWritten::Done,
                "put, and put again (idempotent)"
            );
        }
    }
    assert_eq!(
        scan("late").await,
        vec![
            (b"a".to_vec(), b"1".to_vec()),
            (b"a".to_vec(), b"3".to_vec()),
            (b"b".to_vec(), b"2".to_vec()),
        ]
    );
    // Computed from a value the row no longer has, or for an absent row: refused.
    assert_eq!(
        store
            .put_index_entry(t, &addr(b"1"), b"old", &late(b"old"))
            .await
            .unwrap(),
        RowWritten::Conflict
    );
    assert_eq!(
        store
            .put_index_entry(t, &addr(b"9"), b"a", &late(b"a"))
            .await
            .unwrap(),
        RowWritten::Conflict
    );
    // UNIQUE: the first row takes "a", the second is refused, the first again is fine.
    let uniq = |key: &[u8]| entry("late_u", key, true);
    assert_eq!(
        store
            .put_index_entry(t, &addr(b"1"), b"a", &uniq(b"a"))
            .await
            .unwrap(),
        RowWritten::Done
    );
    assert_eq!(
        store
            .put_index_entry(t, &addr(b"3"), b"a", &uniq(b"a"))
            .await
            .unwrap(),
        RowWritten::UniqueViolation {
            index: "late_u".into()
        }
    );
    assert_eq!(
        store
            .put_index_entry(t, &addr(b"1"), b"a", &uniq(b"a"))
            .await
            .unwrap(),
        RowWritten::Done
    );
    // A writer that knows the index moves row 1 from "a" to "c": entries and claim follow.
    let moved = store
        .update_row(&RowUpdate {
            table: t,
            addr: addr(b"1"),
            expected: b"a".to_vec(),
            value: b"c".to_vec(),
            old_entries: vec![late(b"a"), uniq(b"a")],
            new_entries: vec![late(b"c"), uniq(b"c")],
        })
        .await
        .unwrap();
    assert_eq!(moved, RowWritten::Done);
    assert_eq!(
        scan("late").await,
        vec![
            (b"a".to_vec(), b"3".to_vec()),
            (b"b".to_vec(), b"2".to_vec()),
            (b"c".to_vec(), b"1".to_vec()),
        ]
    );
    assert_eq!(scan("late_u").await, vec![(b"c".to_vec(), b"1".to_vec())]);
    // Row 3 takes "a" now; then its entries are taken back as if it had moved to "d".
    assert_eq!(
        store
            .put_index_entry(t, &addr(b"3"), b"a", &uniq(b"a"))
            .await
            .unwrap(),
        RowWritten::Done
    );
    let to_d = RowUpdate {
        table: t,
        addr: addr(b"3"),
        expected: b"a".to_vec(),
        value: b"d".to_vec(),
        old_entries: Vec::new(),
        new_entries: Vec::new(),
    };
    assert_eq!(store.update_row(&to_d).await.unwrap(), RowWritten::Done);
    for (row, e) in [(b"a", late(b"a")), (b"a", uniq(b"a"))] {
        assert_eq!(
            store
                .remove_index_entry(t, &addr(b"3"), Some(row), &e)
                .await
                .unwrap(),
            RowWritten::Conflict,
            "the row is not the value the caller saw"
        );
    }
    assert_eq!(
        store
            .remove_index_entry(t, &addr(b"3"), None, &late(b"a"))
            .await
            .unwrap(),
        RowWritten::Conflict,
        "the row exists"
    );
    for e in [late(b"a"), uniq(b"a")] {
        assert_eq!(
            store
                .remove_index_entry(t, &addr(b"3"), Some(b"d"), &e)
                .await
                .unwrap(),
            RowWritten::Done
        );
    }
    assert_eq!(
        scan("late").await,
        vec![
            (b"b".to_vec(), b"2".to_vec()),
            (b"c".to_vec(), b"1".to_vec()),
        ],
        "exactly (key, pk) removed"
    );
    assert_eq!(scan("late_u").await, vec![(b"c".to_vec(), b"1".to_vec())]);
    // "a" is free again for another row.
    let taker = store
        .insert_row(&insert(t, 0, b"4", b"a", vec![uniq(b"a")]))
        .await
        .unwrap();
    assert_eq!(taker, RowWritten::Done);
    // A row deleted after its put: the delete takes its entries, and taking them back with
    // `None` (the row is absent) is harmless.
    assert_eq!(
        store
            .put_index_entry(t, &addr(b"2"), b"b", &uniq(b"b"))
            .await
            .unwrap(),
        RowWritten::Done
    );
    let gone = store
        .delete_row(&RowDelete {
            table: t,
            addr: addr(b"2"),
            expected: b"b".to_vec(),
            entries: vec![late(b"b"), uniq(b"b")],
        })
        .await
        .unwrap();
    assert_eq!(gone, RowWritten::Done);
    assert_eq!(
        store
            .remove_index_entry(t, &addr(b"2"), None, &uniq(b"b"))
            .await
            .unwrap(),
        RowWritten::Done
    );
    assert_eq!(
        store
            .insert_row(&insert(t, 0, b"5", b"b", vec![uniq(b"b")]))
            .await
            .unwrap(),
        RowWritten::Done,
        "the vanished row's UNIQUE key is free"
    );
    // Purge one index in batches of one; the other index is untouched.
    let mut total = 0;
    loop {
        let n = store.purge_index(t, "late_u", true, 1).await.unwrap();
        if n == 0 {
            break;
        }
        assert_eq!(n, 1);
        total += n;
    }
    assert_eq!(total, 3);
    assert!(scan("late_u").await.is_empty());
    assert_eq!(scan("late").await, vec![(b"c".to_vec(), b"1".to_vec())]);
    assert_eq!(
        store
            .insert_row(&insert(t, 0, b"6", b"c", vec![uniq(b"c")]))
            .await
            .unwrap(),
        RowWritten::Done,
        "purged UNIQUE keys are free"
    );
    assert_eq!(store.purge_index(t, "nothing", false, 10).await.unwrap(), 0);
}

/// Concurrent inserts of one pk: exactly one wins.
pub async fn concurrent_inserts_one_winner(store: Arc<dyn RowStore>) {
    let t = table(Uuid::now_v7(), "c").key();
    let mut tasks = Vec::new();
    for i in 0u8..16 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            store
                .insert_row(&insert(t, 0, b"same", &[i], Vec::new()))
                .await
                .unwrap()
        }));
    }
    let mut done = 0;
    for task in tasks {
        if task.await.unwrap() == RowWritten::Done {
            done += 1;
        }
    }
    assert_eq!(done, 1);
}

/// Concurrent creations of tables and definitions at the quota never leave more than the
/// quota (on CQL all of a burst may be refused while the others are still deciding; a creation
/// after the burst gets the room that is left).
pub async fn concurrent_creations_respect_quotas(store: Arc<dyn RowStore>) {
    const MAX: u64 = 3;
    let p = Uuid::now_v7();
    let mut tables = Vec::new();
    let mut definitions = Vec::new();
    for i in 0..12 {
        let s = Arc::clone(&store);
        tables.push(tokio::spawn(async move {
            s.create_table(&table(p, &format!("t{i}")), MAX)
                .await
                .unwrap()
        }));
        let s = Arc::clone(&store);
        definitions.push(tokio::spawn(async move {
            let d = DefinitionRecord {
                project_id: p,
                id: Uuid::now_v7(),
                name: format!("d{i}"),
                sql: "SELECT 1".into(),
                public: false,
                tables: Vec::new(),
                created_at: 0,
            };
            s.insert_definition(&d, MAX).await.unwrap()
        }));
    }
    let mut created = (0u64, 0u64);
    for t in tables {
        let outcome = t.await.unwrap();
        assert_ne!(outcome, MetaInserted::AlreadyExists);
        created.0 += u64::from(outcome == MetaInserted::Created);
    }
    for d in definitions {
        let outcome = d.await.unwrap();
        assert_ne!(outcome, MetaInserted::AlreadyExists);
        created.1 += u64::from(outcome == MetaInserted::Created);
    }
    let listed = (
        store.list_tables(p).await.unwrap().len() as u64,
        store.list_definitions(p).await.unwrap().len() as u64,
    );
    assert_eq!(listed, created, "what was answered Created is what stayed");
    assert!(created.0 <= MAX && created.1 <= MAX, "{created:?}");
    if created.0 < MAX {
        let after = store.create_table(&table(p, "after"), MAX).await.unwrap();
        assert_eq!(after, MetaInserted::Created);
    }
}

pub async fn run_all(store: Arc<dyn RowStore>) {
    tables_metadata(store.as_ref()).await;
    definitions_metadata(store.as_ref()).await;
    definitions_replace(store.as_ref()).await;
    rows_insert_scan_update_delete(store.as_ref()).await;
    index_entries_and_unique(store.as_ref()).await;
    quota_and_purge(store.as_ref()).await;
    index_backfill(store.as_ref()).await;
    concurrent_creations_respect_quotas(Arc::clone(&store)).await;
    concurrent_inserts_one_winner(store).await;
}
