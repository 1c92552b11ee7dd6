//! The SQL engine tests' fixture: an engine on a real embedded store in a tempdir. Each test
//! file uses part of it.
#![allow(dead_code)]

use std::sync::Arc;

use commonrock_actors::sql::{Caller, CursorMode, ExecuteRequest, SqlConfig, SqlEngine, SqlError};
use commonrock_actors::store::embedded::EmbeddedStore;
use commonrock_actors::store::rows::RowStore;
use serde_json::{json, Map, Value};
use uuid::Uuid;

pub struct Fixture {
    pub engine: SqlEngine,
    pub project: Uuid,
    _dir: tempfile::TempDir,
}

pub fn fixture_with(config: SqlConfig) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn RowStore> = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let engine = SqlEngine::new(
        store,
        config,
        b"test-cursor-key",
        &prometheus::Registry::new(),
    )
    .unwrap();
    Fixture {
        engine,
        project: Uuid::now_v7(),
        _dir: dir,
    }
}

pub fn fixture() -> Fixture {
    fixture_with(SqlConfig::default())
}

pub fn params(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

impl Fixture {
    pub async fn ddl(&self, sql: &str) {
        self.engine.execute_ddl(self.project, sql).await.unwrap();
    }

    pub async fn run(
        &self,
        sql: &str,
        p: Value,
        limit: Option<u32>,
        cursor: Option<String>,
        mode: CursorMode,
    ) -> Result<commonrock_actors::sql::Page, SqlError> {
        let name = format!("d{}", Uuid::now_v7().simple());
        let def = self
            .engine
            .register_definition(self.project, &name, sql, true)
            .await?;
        self.engine
            .execute(
                &def,
                ExecuteRequest {
                    params: params(p),
                    caller: Caller::default(),
                    limit,
                    cursor,
                    mode,
                },
            )
            .await
    }

    pub async fn exec(&self, sql: &str, p: Value) -> commonrock_actors::sql::Page {
        self.run(sql, p, None, None, CursorMode::Offset)
            .await
            .unwrap()
    }

    /// Every page of a definition in keyset mode (`limit` rows a page).
    pub async fn keyset_pages(
        &self,
        def: &commonrock_actors::sql::Definition,
        p: Value,
        limit: u32,
    ) -> Vec<commonrock_actors::sql::Page> {
        let mut pages = Vec::new();
        let mut cursor = None;
        for _ in 0..1000 {
            let page = self
                .engine
                .execute(
                    def,
                    ExecuteRequest {
                        params: params(p.clone()),
                        limit: Some(limit),
                        cursor: cursor.take(),
                        mode: CursorMode::Keyset,
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            assert!(page.rows.len() <= limit as usize);
            cursor = page.next_cursor.clone();
            pages.push(page);
            if cursor.is_none() {
                return pages;
            }
        }
        panic!("keyset paging of {} does not end", def.sql);
    }

    /// Every row of a definition, page after page in keyset mode (`limit` rows a page).
    pub async fn keyset_all(&self, sql: &str, limit: u32) -> Vec<Map<String, Value>> {
        let name = format!("k{}", Uuid::now_v7().simple());
        let def = self
            .engine
            .register_definition(self.project, &name, sql, true)
            .await
            .unwrap();
        assert_eq!(def.keyset_unavailable, None, "{sql}");
        self.keyset_pages(&def, json!({}), limit)
            .await
            .into_iter()
            .flat_map(|p| p.rows)
            .collect()
    }

    pub async fn posts(&self) {
        self.ddl("CREATE TABLE posts (id TEXT PRIMARY KEY, author_id TEXT NOT NULL, title TEXT, n INTEGER, created_at TIMESTAMP, meta JSON)")
            .await;
    }
}
