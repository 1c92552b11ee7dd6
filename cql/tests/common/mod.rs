//! Shared by the CQL test binaries: where the test server is.

/// Contact points of the CQL test server (`COMMONROCK_TEST_CQL_NODES`).
pub fn nodes() -> Vec<String> {
    let nodes = std::env::var("COMMONROCK_TEST_CQL_NODES").expect(
        "the CQL store tests need a CQL server: run `scripts/check`, or \
         `eval \"$(scripts/cql-server start)\"` before `cargo test`",
    );
    nodes.split(',').map(str::to_string).collect()
}
