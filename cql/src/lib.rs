//! The ScyllaDB store: the `Store` port implemented on the `scylla` driver, with the schema
//! (`schema/*.cql`) and the migrations applied at start. It speaks only CQL that both
//! ScyllaDB and Apache Cassandra accept (CI tests against Cassandra 5.0).

pub mod members;
pub mod migrate;
pub mod options;
pub mod portal;
pub mod row_counts;
pub mod rows;
pub mod store;

pub use options::{CqlOptions, Replication};
pub use store::CqlStore;
