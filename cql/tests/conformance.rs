//! The `Store` conformance suite against a real CQL server (`scripts/cql-server start`, which
//! `scripts/check` runs): the same checks the embedded store passes.

use std::sync::Arc;

use commonrock_actors::store::{conformance, Store};
use commonrock_cql::{CqlOptions, CqlStore};

mod common;

use common::nodes;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql_store_passes_the_conformance_suite() {
    let opts = CqlOptions::new(nodes(), "cr_cql_conformance_v2");
    let store = CqlStore::connect(&opts, &prometheus::Registry::new())
        .await
        .expect("connects and migrates");
    let store: Arc<dyn Store> = Arc::new(store);
    conformance::run_all(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_idempotent_and_nodes_may_start_together() {
    let opts = CqlOptions::new(nodes(), "cr_cql_migrations_v2");
    // Two stores migrating the same keyspace at once: the lock serialises them and both end
    // up with the same, complete schema.
    let registry = prometheus::Registry::new();
    let (a, b) = tokio::join!(
        CqlStore::connect(&opts, &registry),
        CqlStore::connect(&opts, &registry)
    );
    let a = a.expect("first node migrates");
    b.expect("second node migrates");
    let again = CqlStore::connect(&opts, &registry)
        .await
        .expect("a third start finds nothing to do");
    again.ping().await.expect("ping");
    let rows = a
        .session()
        .query_unpaged(
            "SELECT version FROM cr_cql_migrations_v2.schema_migrations",
            (),
        )
        .await
        .expect("read migrations")
        .into_rows_result()
        .expect("rows");
    assert_eq!(
        rows.rows_num(),
        commonrock_cql::migrate::MIGRATIONS.len(),
        "each migration recorded once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql_store_passes_the_portal_conformance_suite() {
    use commonrock_actors::store::portal::PortalStore;
    let opts = CqlOptions::new(nodes(), "cr_cql_portal_conformance");
    let store = CqlStore::connect(&opts, &prometheus::Registry::new())
        .await
        .expect("connects and migrates");
    let store: Arc<dyn PortalStore> = Arc::new(store);
    commonrock_actors::store::portal_conformance::run_all(store).await;
}
