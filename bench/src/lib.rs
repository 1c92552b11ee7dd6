//! The bench suite: a load generator for the seed flow and batch introspection, a baseline
//! server measured in the same run, and the reports behind `docs/benchmarks.md`. It lands with
//! the bench issue; until then this crate is empty.
