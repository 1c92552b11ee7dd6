//! `/openapi.json` documents every route of the route table with exactly the methods the node
//! answers: a new route, or a new method on a route, without a document fails here. The route
//! templates are read from `node/src/api/routes.rs`; the methods from the node itself (the
//! `Allow` header of a 405).

use std::collections::{BTreeMap, BTreeSet};

use commonrock_tests::reqwest::{Method, StatusCode};
use commonrock_tests::Node;

const ROUTES: &str = include_str!("../../node/src/api/routes.rs");

/// Test-only routes, not part of the API, which the document leaves out on purpose: fault
/// injection for the supervision tests (404 unless COMMONROCK_FAULT_INJECTION is set).
const UNDOCUMENTED_PREFIX: &str = "/admin/v1/debug/";

/// Every route template of the route table (string literals that start with `/`), without its
/// tests.
fn templates() -> BTreeSet<String> {
    let code = ROUTES.split("#[cfg(test)]").next().unwrap_or(ROUTES);
    code.split('"')
        .skip(1)
        .step_by(2)
        .filter(|lit| lit.starts_with('/') && !lit.ends_with('/'))
        .map(str::to_string)
        .collect()
}

/// The paths the document gives for a template, and a concrete path that resolves to it.
fn documented_as(template: &str) -> (Vec<String>, String) {
    match template {
        // The Swagger UI page and its assets.
        "/docs/*" => (
            vec!["/docs/".into(), "/docs/{file}".into()],
            "/docs/x".into(),
        ),
        // The portal page and its assets.
        "/portal/*" => (
            vec!["/portal/".into(), "/portal/{file}".into()],
            "/portal/x".into(),
        ),
        t => {
            let concrete = t
                .split('/')
                .map(|seg| if seg.starts_with('{') { "p1x" } else { seg })
                .collect::<Vec<_>>()
                .join("/");
            (vec![t.to_string()], concrete)
        }
    }
}

fn methods(item: &serde_json::Value) -> BTreeSet<String> {
    item.as_object()
        .into_iter()
        .flat_map(|m| m.keys())
        .filter(|k| {
            [
                "get", "put", "post", "delete", "options", "head", "patch", "trace",
            ]
            .contains(&k.as_str())
        })
        .map(|k| k.to_ascii_uppercase())
        .collect()
}

#[tokio::test]
async fn every_route_is_documented_with_its_methods() {
    let node = Node::start().await;
    let res = node
        .http
        .get(node.url("/openapi.json"))
        .send()
        .await
        .expect("openapi.json");
    assert_eq!(res.status(), StatusCode::OK);
    let doc: serde_json::Value = res.json().await.expect("json document");
    let paths = doc["paths"].as_object().expect("paths");
    let templates = templates();
    assert!(
        templates.len() > 30,
        "the route table was read: {templates:?}"
    );

    let purge = Method::from_bytes(b"PURGE").expect("method");
    let mut covered = BTreeSet::new();
    let mut problems = Vec::new();
    for template in &templates {
        if template.starts_with(UNDOCUMENTED_PREFIX) {
            continue;
        }
        if template == "/{slug}/v1/public/*" {
            // The CORS preflight: every public path documents OPTIONS.
            for (path, item) in paths {
                if path.starts_with("/{slug}/v1/public/") && item.get("options").is_none() {
                    problems.push(format!("{path}: no OPTIONS (preflight) documented"));
                }
            }
            continue;
        }
        let (documented, concrete) = documented_as(template);
        // A method no route answers: the node names the route's methods in `Allow`.
        let res = node
            .http
            .request(purge.clone(), node.url(&concrete))
            .send()
            .await
            .expect("request");
        assert_eq!(
            res.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{concrete} resolves to {template}"
        );
        let allow: BTreeSet<String> = res
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .split(',')
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty())
            .collect();
        for path in documented {
            match paths.get(&path) {
                None => problems.push(format!("{path} (route {template}) is not documented")),
                Some(item) => {
                    let documented = methods(item);
                    if documented != allow {
                        problems.push(format!(
                            "{path}: documents {documented:?}, the node answers {allow:?}"
                        ));
                    }
                }
            }
            covered.insert(path);
        }
    }
    for path in paths.keys() {
        // `/docs` (the redirect to `/docs/`) is its own template too.
        if !covered.contains(path) {
            problems.push(format!("{path} is documented but no route has it"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // Every operation documents its error answers, not only its success.
    let mut statuses = BTreeMap::new();
    for (path, item) in paths {
        for (method, op) in item.as_object().into_iter().flatten() {
            if let Some(responses) = op["responses"].as_object() {
                statuses.insert(
                    format!("{} {path}", method.to_ascii_uppercase()),
                    responses.keys().cloned().collect::<BTreeSet<_>>(),
                );
            }
        }
    }
    for (op, codes) in &statuses {
        if op.starts_with("GET /docs") || op.starts_with("GET /openapi.json") {
            continue;
        }
        assert!(
            codes.iter().any(|c| c.starts_with('4')),
            "{op} documents no 4xx: {codes:?}"
        );
    }
}
