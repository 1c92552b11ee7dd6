//! The ScyllaDB implementation of the engine's `Store` port: CQL schema files, migrations and
//! prepared statements on the `scylla` driver, passing the same conformance suite as the
//! embedded store. It lands with issue 3; until then this crate is empty and `--store scylla`
//! is refused at start.
