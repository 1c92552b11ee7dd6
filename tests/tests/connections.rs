//! Hostile connections and framing (issue 10): a flood of idle sockets, a head or body that never
//! finishes, an idle keep-alive, and oversized or malformed heads. The node keeps answering,
//! closes what it must, answers JSON with a request id wherever it parses the head, and never
//! logs a client's misbehaviour at ERROR.

use std::time::{Duration, Instant};

use commonrock_tests::reqwest::Method;
use commonrock_tests::{metric, Answer, Node, NodeOptions, ORIGIN};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn addr(node: &Node) -> String {
    node.base.trim_start_matches("http://").to_string()
}

/// Reads until the peer closes or `deadline` passes; what arrived, and whether it closed.
async fn read_until_closed(stream: &mut TcpStream, deadline: Duration) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let end = Instant::now() + deadline;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (out, false);
        }
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (out, true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (out, false),
        }
    }
}

/// One raw exchange on a fresh connection: status (0 when closed without an answer), the head
/// in lower case, and the body.
async fn exchange(node: &Node, request: &[u8]) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr(node)).await.expect("connect");
    // The node may answer and close before the whole request is written (a too-large head).
    let _ = stream.write_all(request).await;
    let (bytes, _) = read_until_closed(&mut stream, Duration::from_secs(15)).await;
    let text = String::from_utf8_lossy(&bytes).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_string())
}

fn coded(code: &str, message: &str) -> Value {
    json!({"detail": {"code": code, "message": message}})
}

/// An answer the request path gave: JSON error body and a request id.
fn assert_json_error(got: &(u16, String, String), status: u16, code: &str, message: &str) {
    let (s, head, body) = got;
    assert_eq!(*s, status, "{head}\n{body}");
    assert!(head.contains("content-type: application/json"), "{head}");
    assert!(head.contains("x-request-id: "), "{head}");
    let parsed: Value = serde_json::from_str(body.trim()).expect("a JSON body");
    assert_eq!(parsed, coded(code, message));
}

/// The connection layer does not depend on the store: these run in the first pass only. (In
/// the CQL pass every node of a test binary shares one keyspace with a secret of its own, and
/// rightly logs its neighbours as foreign nodes at ERROR.)
fn should_run(test: &str) -> bool {
    if std::env::var("COMMONROCK_TEST_STORE").as_deref() == Ok("scylla") {
        eprintln!("{test}: skipped with COMMONROCK_TEST_STORE=scylla: it ran in the first pass");
        return false;
    }
    true
}

fn error_lines(node: &Node) -> Vec<String> {
    node.logs()
        .lines()
        .filter(|l| l.contains("ERROR"))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_flood_sheds_the_oldest_idle_connections_and_health_still_answers() {
    if !should_run("an_idle_flood_sheds_the_oldest_idle_connections_and_health_still_answers") {
        return;
    }
    let node = Node::start_with(NodeOptions::default().arg("--max-connections").arg("64")).await;
    // 200 connections that never send a byte: three times the limit.
    let mut idle = Vec::new();
    for _ in 0..200 {
        if let Ok(s) = TcpStream::connect(addr(&node)).await {
            idle.push(s);
        }
    }
    let started = Instant::now();
    let h = node
        .http
        .get(node.url("/healthz"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("/healthz answers during the flood");
    assert_eq!(h.status().as_u16(), 200);
    println!(
        "/healthz answered in {:?} beside 200 idle sockets",
        started.elapsed()
    );
    // So does the admin API (here on the same listener; with --admin-listen it has its own
    // listener and its own limit).
    let (status, body) = node.admin(Method::GET, "/orgs", None).await;
    assert_eq!(status, 200, "{body}");
    let shed = metric(&node, "commonrock_http_connections_shed_total").await;
    assert!(shed >= 100.0, "idle connections shed: {shed}");
    let open = metric(&node, "commonrock_http_connections").await;
    assert!(open <= 80.0, "open connections stay near the limit: {open}");
    drop(idle);
    assert!(error_lines(&node).is_empty(), "{:?}", error_lines(&node));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heads_bodies_and_idle_keep_alives_that_stall_are_cut_off() {
    if !should_run("heads_bodies_and_idle_keep_alives_that_stall_are_cut_off") {
        return;
    }
    let node = Node::start_with(
        NodeOptions::default()
            .arg("--http-header-timeout-ms")
            .arg("500")
            .arg("--http-body-timeout-ms")
            .arg("500")
            .arg("--http-idle-timeout-ms")
            .arg("700"),
    )
    .await;
    let p = node.project(json!({})).await;

    // A head that never ends: the connection is closed, without an answer.
    let mut slow = TcpStream::connect(addr(&node)).await.expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n")
        .await
        .expect("write");
    let started = Instant::now();
    let (_, closed) = read_until_closed(&mut slow, Duration::from_secs(15)).await;
    assert!(closed, "a head that never ends is cut off");
    println!(
        "an unfinished head was closed after {:?}",
        started.elapsed()
    );

    // A body announced as 100 bytes of which 19 arrive: 408 with the JSON body.
    let host = addr(&node);
    let head = format!(
        "POST /{}/v1/sessions/introspect HTTP/1.1\r\nHost: {host}\r\nX-API-Key: {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"token\": \"cr_at_x",
        p.slug, p.secret_key
    );
    let started = Instant::now();
    let got = exchange(&node, head.as_bytes()).await;
    assert_json_error(
        &got,
        408,
        "request_timeout",
        "Request body not received in time",
    );
    println!(
        "a stalled body was answered 408 after {:?}",
        started.elapsed()
    );

    // An idle keep-alive connection is closed after its request.
    let mut kept = TcpStream::connect(addr(&node)).await.expect("connect");
    kept.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut first = [0u8; 512];
    let n = kept.read(&mut first).await.expect("an answer");
    assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));
    let started = Instant::now();
    let (_, closed) = read_until_closed(&mut kept, Duration::from_secs(15)).await;
    assert!(closed, "an idle keep-alive is closed");
    println!(
        "an idle keep-alive was closed after {:?}",
        started.elapsed()
    );
    assert!(metric(&node, "commonrock_http_connection_errors_total").await >= 1.0);
    assert!(error_lines(&node).is_empty(), "{:?}", error_lines(&node));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_malformed_heads_get_json_where_the_node_parses_them() {
    if !should_run("oversized_and_malformed_heads_get_json_where_the_node_parses_them") {
        return;
    }
    let node = Node::start().await;
    let host = addr(&node);
    let get = |target: &str, extra: &str| {
        format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n")
    };

    // Within hyper's caps the request path answers, with JSON and a request id.
    let long_uri = format!("/healthz?{}", "a".repeat(10 * 1024));
    assert_json_error(
        &exchange(&node, get(&long_uri, "").as_bytes()).await,
        414,
        "uri_too_long",
        "URI too long",
    );
    let big_header = format!("X-Big: {}\r\n", "b".repeat(20 * 1024));
    assert_json_error(
        &exchange(&node, get("/healthz", &big_header).as_bytes()).await,
        431,
        "request_header_fields_too_large",
        "Request header fields too large",
    );
    let many: String = (0..80).map(|i| format!("X-H{i}: v\r\n")).collect();
    assert_json_error(
        &exchange(&node, get("/healthz", &many).as_bytes()).await,
        431,
        "request_header_fields_too_large",
        "Request header fields too large",
    );

    // Beyond them, or malformed: hyper answers a bare status (or closes), documented in
    // docs/error-codes.md; never a 2xx, never a hang.
    let huge_header = format!("X-Huge: {}\r\n", "h".repeat(1024 * 1024));
    let huge_uri = format!("/healthz?{}", "a".repeat(100 * 1024));
    let too_many: String = (0..300).map(|i| format!("X-H{i}: v\r\n")).collect();
    let bare: Vec<(&str, Vec<u8>)> = vec![
        ("300 header lines", get("/healthz", &too_many).into_bytes()),
        ("1 MB header", get("/healthz", &huge_header).into_bytes()),
        ("100 KB URI", get(&huge_uri, "").into_bytes()),
        (
            "NUL in a header",
            format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nX-Nul: a\0b\r\n\r\n").into_bytes(),
        ),
        (
            "conflicting Content-Length",
            format!(
                "POST /healthz HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1\r\n\
                 Content-Length: 2\r\n\r\nab"
            )
            .into_bytes(),
        ),
        (
            "negative Content-Length",
            format!("POST /healthz HTTP/1.1\r\nHost: {host}\r\nContent-Length: -1\r\n\r\n")
                .into_bytes(),
        ),
        ("bad request line", b"HELLO\r\n\r\n".to_vec()),
    ];
    for (what, request) in bare {
        let (status, head, _) = exchange(&node, &request).await;
        assert!(
            status == 0 || status == 400 || status == 431 || status == 414,
            "{what}: {status} {head}"
        );
        println!(
            "{what}: {}",
            if status == 0 {
                "closed".to_string()
            } else {
                status.to_string()
            }
        );
    }
    // The node is fine and said nothing at ERROR about any of it.
    let h = node
        .http
        .get(node.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(h.status().as_u16(), 200);
    assert!(metric(&node, "commonrock_http_connection_errors_total").await >= 1.0);
    assert!(error_lines(&node).is_empty(), "{:?}", error_lines(&node));
}

/// `exchange` for a head and a body given apart (the head must be sent whole first).
async fn raw(node: &Node, head: String, body: &[u8]) -> (u16, String, String) {
    exchange(node, &[head.as_bytes(), body].concat()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framework_level_rejections_are_json_too() {
    let node = Node::start().await;
    let p = node.project(json!({})).await;
    let host = node.base.trim_start_matches("http://").to_string();
    let path = format!("/{}/v1/public/end-users/login", p.slug);

    // A chunked body over the limit has no Content-Length to refuse up front.
    let mut chunked = Vec::new();
    for _ in 0..100 {
        chunked.extend_from_slice(b"400\r\n");
        chunked.extend_from_slice(&[b' '; 1024]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         X-Client-Id: {}\r\nX-Client-Key: {}\r\nOrigin: {ORIGIN}\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        p.client_id, p.client_key
    );
    let (status, headers, body) = raw(&node, head, &chunked).await;
    assert_eq!(status, 413, "{headers}\n{body}");
    assert!(
        headers.contains("content-type: application/json"),
        "{headers}"
    );
    assert!(headers.contains("x-request-id"), "{headers}");
    // Chunked framing may wrap the body: find the JSON object inside.
    let start = body.find('{').expect("a JSON body");
    let end = body.rfind('}').expect("a JSON body");
    let parsed: Value = serde_json::from_str(&body[start..=end]).expect("JSON");
    assert_eq!(parsed, coded("payload_too_large", "Payload too large"));

    // Methods nothing routes: 405 on a known path, 404 elsewhere, JSON both.
    for (method, target, status, code, message) in [
        (
            "BREW",
            path.as_str(),
            405,
            "method_not_allowed",
            "Method not allowed",
        ),
        (
            "PATCH",
            path.as_str(),
            405,
            "method_not_allowed",
            "Method not allowed",
        ),
        ("BREW", "/nope", 404, "not_found", "Not found"),
    ] {
        let head = format!(
            "{method} {target} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\n\
             Connection: close\r\n\r\n"
        );
        let (got, headers, body) = raw(&node, head, b"").await;
        assert_eq!(got, status, "{method} {target}: {headers}\n{body}");
        assert!(
            headers.contains("content-type: application/json"),
            "{headers}"
        );
        let parsed: Value = serde_json::from_str(body.trim()).expect("JSON body");
        assert_eq!(parsed, coded(code, message));
    }
    // A query string does not change routing.
    let a = Answer::of(
        node.http
            .get(node.url("/healthz?probe=1"))
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(a.status, 200);
}

/// A client still sending an oversized body must read the 413, not a broken pipe or a reset:
/// answering and closing mid-upload loses the JSON error (seen as ~0.5 % of such requests).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_always_get_their_413_answer() {
    let node = Node::start().await;
    let p = node.project(json!({})).await;
    let big = json!({"external_id": "user-1", "password": "x".repeat(100 * 1024),
                     "device_id": "d"});
    let tasks: Vec<_> = (0..16)
        .map(|t| {
            let (p, big) = (p.clone(), big.clone());
            let unknown = node.url("/nosuchproject/v1/public/end-users/login");
            tokio::spawn(async move {
                let mut failures = Vec::new();
                for i in 0..40 {
                    let req = if (t + i) % 2 == 0 {
                        p.public(Method::POST, "/end-users/login").json(&big)
                    } else {
                        p.http.post(&unknown).json(&big)
                    };
                    match req.send().await {
                        Ok(res) => {
                            let a = Answer::of(res).await;
                            if a.status != 413
                                || a.body != coded("payload_too_large", "Payload too large")
                            {
                                failures.push(format!("{} {:?}", a.status, a.body));
                            }
                        }
                        Err(e) => failures.push(format!("{e:?}")),
                    }
                }
                failures
            })
        })
        .collect();
    let mut failures = Vec::new();
    for t in tasks {
        failures.extend(t.await.expect("task"));
    }
    assert!(
        failures.is_empty(),
        "{} of 640 oversized requests did not read their 413: {:?}",
        failures.len(),
        failures.first()
    );
}
