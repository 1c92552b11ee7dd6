//! Versioned, idempotent schema migrations applied at start. Nodes starting together take a
//! lock (a lightweight transaction with a TTL, so a node dying mid-migration cannot wedge the
//! others) and wait for schema agreement after every DDL statement.

use std::time::{Duration, Instant};

use scylla::client::session::Session;
use uuid::Uuid;

use crate::options::CqlOptions;
use crate::store::applied;

pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub cql: &'static str,
}

/// Every migration, oldest first. Never edit a released one: add the next.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        cql: include_str!("../schema/001_initial.cql"),
    },
    Migration {
        version: 2,
        name: "sql_rows",
        cql: include_str!("../schema/002_sql_rows.cql"),
    },
    Migration {
        version: 3,
        name: "cluster",
        cql: include_str!("../schema/003_cluster.cql"),
    },
    Migration {
        version: 4,
        name: "portal",
        cql: include_str!("../schema/004_portal.cql"),
    },
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    Scylla,
    Cassandra,
}

/// ScyllaDB has tables Cassandra lacks; asking the schema is a plain read on both.
pub async fn detect(session: &Session) -> Result<ServerKind, String> {
    let res = session
        .query_unpaged(
            "SELECT table_name FROM system_schema.tables \
             WHERE keyspace_name = 'system' AND table_name = 'scylla_local'",
            (),
        )
        .await
        .map_err(|e| format!("cannot read the schema: {e}"))?;
    let rows = res
        .into_rows_result()
        .map_err(|e| format!("cannot read the schema: {e}"))?;
    Ok(if rows.rows_num() > 0 {
        ServerKind::Scylla
    } else {
        ServerKind::Cassandra
    })
}

/// The statements of a migration file: comments dropped, split on `;`.
pub fn statements(cql: &str, keyspace: &str) -> Vec<String> {
    let without_comments: String = cql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    without_comments
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.replace("{keyspace}", keyspace))
        .collect()
}

/// Deadline of one schema statement. Schema changes are serialised cluster-wide and can wait
/// behind others (another node's migration, a keyspace being dropped), far beyond the 2 s of a
/// request: a node that gave up after 2 s would fail its start for nothing.
const DDL_TIMEOUT: Duration = Duration::from_secs(60);

async fn ddl(session: &Session, cql: &str) -> Result<(), String> {
    let mut statement = scylla::statement::unprepared::Statement::new(cql);
    statement.set_request_timeout(Some(DDL_TIMEOUT));
    session
        .query_unpaged(statement, ())
        .await
        .map_err(|e| format!("schema statement failed: {e}: {cql}"))?;
    session
        .await_schema_agreement()
        .await
        .map_err(|e| format!("no schema agreement: {e}"))?;
    Ok(())
}

/// Creates the keyspace if needed and applies every migration not yet recorded.
pub async fn migrate(session: &Session, opts: &CqlOptions) -> Result<ServerKind, String> {
    let kind = detect(session).await?;
    let ks = &opts.keyspace;
    // New ScyllaDB keyspaces use tablets, which do not support lightweight transactions; the
    // option that turns them off is unknown to Cassandra, so it depends on the server.
    let tablets = match kind {
        ServerKind::Scylla => " AND tablets = {'enabled': false}",
        ServerKind::Cassandra => "",
    };
    ddl(
        session,
        &format!(
            "CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {}{tablets}",
            opts.replication.cql()
        ),
    )
    .await?;
    ddl(
        session,
        &format!(
            "CREATE TABLE IF NOT EXISTS {ks}.schema_migrations \
             (version int PRIMARY KEY, name text, applied_at timestamp)"
        ),
    )
    .await?;
    ddl(
        session,
        &format!("CREATE TABLE IF NOT EXISTS {ks}.schema_lock (id int PRIMARY KEY, owner uuid)"),
    )
    .await?;

    let owner = Uuid::new_v4();
    let lock = format!(
        "INSERT INTO {ks}.schema_lock (id, owner) VALUES (1, ?) IF NOT EXISTS USING TTL 300"
    );
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let res = session
            .query_unpaged(lock.as_str(), (owner,))
            .await
            .map_err(|e| format!("cannot take the migration lock: {e}"))?;
        if applied(res).map_err(|e| e.to_string())? {
            break;
        }
        if Instant::now() > deadline {
            return Err("another node holds the migration lock for over 300 s".into());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let outcome = apply_pending(session, ks).await;
    let release = session
        .query_unpaged(
            format!("DELETE FROM {ks}.schema_lock WHERE id = 1 IF owner = ?"),
            (owner,),
        )
        .await;
    if let Err(e) = release {
        // The lock's TTL frees it anyway.
        tracing::warn!(error = %e, "cannot release the migration lock");
    }
    outcome.map(|()| kind)
}

async fn apply_pending(session: &Session, ks: &str) -> Result<(), String> {
    let res = session
        .query_unpaged(format!("SELECT version FROM {ks}.schema_migrations"), ())
        .await
        .map_err(|e| format!("cannot read applied migrations: {e}"))?;
    let rows = res.into_rows_result().map_err(|e| e.to_string())?;
    let done: Vec<i32> = rows
        .rows::<(i32,)>()
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok)
        .map(|(v,)| v)
        .collect();
    for m in MIGRATIONS.iter().filter(|m| !done.contains(&m.version)) {
        tracing::info!(
            version = m.version,
            name = m.name,
            "applying schema migration"
        );
        for stmt in statements(m.cql, ks) {
            ddl(session, &stmt).await?;
        }
        session
            .query_unpaged(
                format!(
                    "INSERT INTO {ks}.schema_migrations (version, name, applied_at) \
                     VALUES (?, ?, toTimestamp(now()))"
                ),
                (m.version, m.name),
            )
            .await
            .map_err(|e| format!("cannot record migration {}: {e}", m.version))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_files_split_into_qualified_statements() {
        let stmts = statements(MIGRATIONS[0].cql, "ks_test");
        assert!(stmts.len() >= 9, "{} statements", stmts.len());
        let rows = statements(MIGRATIONS[1].cql, "ks_test");
        assert_eq!(rows.len(), 8, "{rows:?}");
        let cluster = statements(MIGRATIONS[2].cql, "ks_test");
        assert_eq!(cluster.len(), 2, "{cluster:?}");
        let portal = statements(MIGRATIONS[3].cql, "ks_test");
        assert_eq!(portal.len(), 2, "{portal:?}");
        for s in stmts.iter().chain(&rows).chain(&cluster).chain(&portal) {
            assert!(s.starts_with("CREATE TABLE IF NOT EXISTS ks_test."), "{s}");
            assert!(!s.contains("{keyspace}"));
            assert!(!s.contains("ALLOW FILTERING"));
        }
        let versions: Vec<i32> = MIGRATIONS.iter().map(|m| m.version).collect();
        let mut sorted = versions.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(versions, sorted, "versions ascend without gaps or repeats");
    }
}
