//! The row-store conformance suite on the embedded store.

use std::sync::Arc;

use commonrock_actors::store::embedded::EmbeddedStore;
use commonrock_actors::store::rows::RowStore;
use commonrock_actors::store::rows_conformance;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_passes_the_row_store_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn RowStore> = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    rows_conformance::run_all(store).await;
}
