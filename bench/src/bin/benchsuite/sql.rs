//! Simple DB: a table filled through an INSERT definition, keyed SELECTs, and the whole table
//! paged end to end in keyset mode, on a running node of either store.

use std::time::Instant;

use commonrock_bench::proc_stats;
use serde_json::{json, Value};

use crate::calls::http;
use crate::metrics::Metrics;
use crate::server::{Creds, Env, Server};
use crate::{say, to_value, PROJECT};

/// Requests in flight while filling the `items` table.
const SQL_FILL_IN_FLIGHT: usize = 32;
/// Page size of the keyset walk (the default `SQL_MAX_ROWS`).
const SQL_PAGE: usize = 1000;

/// A keep-alive HTTP/1.1 connection (hyper) for the SQL set-up and paging calls.
struct KeepAlive {
    addr: String,
    sender: Option<hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>>,
}

impl KeepAlive {
    fn new(addr: &str) -> KeepAlive {
        KeepAlive {
            addr: addr.to_string(),
            sender: None,
        }
    }

    /// POSTs `body` (JSON) to `path`; reconnects when the connection is gone.
    async fn post(
        &mut self,
        path: &str,
        headers: &[(String, String)],
        body: String,
    ) -> Result<(u16, bytes::Bytes), String> {
        use http_body_util::BodyExt;
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = tokio::net::TcpStream::connect(&self.addr)
                .await
                .map_err(|e| format!("connect {}: {e}", self.addr))?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            let (sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .map_err(|e| e.to_string())?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.sender = Some(sender);
        }
        let sender = self.sender.as_mut().expect("connected above");
        let mut req = http::Request::post(path)
            .header(http::header::HOST, self.addr.as_str())
            .header(http::header::CONTENT_TYPE, "application/json");
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let req = req
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let answer = async {
            sender.ready().await.map_err(|e| e.to_string())?;
            let res = sender.send_request(req).await.map_err(|e| e.to_string())?;
            let status = res.status().as_u16();
            let bytes = res
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok::<_, String>((status, bytes))
        }
        .await;
        if answer.is_err() {
            self.sender = None;
        }
        answer
    }
}

/// `commonrock_sql_rows_read_total` from the node's /metrics.
fn sql_rows_read(node: &Server, c: &Creds) -> Option<f64> {
    Metrics::read(&node.addr, c)
        .ok()?
        .sum("commonrock_sql_rows_read_total", &[])
}

fn admin_post(node: &Server, c: &Creds, path: &str, body: &Value) -> Result<Value, String> {
    let auth = format!("Bearer {}", c.admin_token);
    let (status, text) = http(
        &node.addr,
        "POST",
        &format!("/admin/v1/projects/{PROJECT}/sql/{path}"),
        &[("Authorization", auth.as_str())],
        &body.to_string(),
    )?;
    if !(200..300).contains(&status) {
        return Err(format!("POST sql/{path} {body}: {status} {text}"));
    }
    serde_json::from_str(&text).map_err(|e| format!("POST sql/{path}: {e}: {text}"))
}

fn define(node: &Server, c: &Creds, name: &str, sql: &str) -> Result<String, String> {
    let v = admin_post(
        node,
        c,
        "query-definitions",
        &json!({"name": name, "sql": sql, "public": false}),
    )?;
    v["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("definition {name}: no id in {v}"))
}

/// The simple-DB scenarios on a running node; a failure is recorded in the result (`error`)
/// rather than ending the suite.
pub fn sql_phase(env: &Env, node: &Server, c: &Creds, tag: &str) -> Value {
    match sql_scenarios(env, node, c, tag) {
        Ok(v) => v,
        Err(e) => {
            say(format!("warning: {tag} sql: {e}"));
            json!({ "error": e })
        }
    }
}

fn sql_scenarios(env: &Env, node: &Server, c: &Creds, tag: &str) -> Result<Value, String> {
    let args = env.args;
    let n = args.sql_rows;
    say(format!(
        "{tag} sql: table items and three query definitions"
    ));
    admin_post(
        node,
        c,
        "tables",
        &json!({"sql": "CREATE TABLE items (id BIGINT PRIMARY KEY, owner TEXT, title TEXT)"}),
    )?;
    let insert = define(
        node,
        c,
        "bench_items_insert",
        "INSERT INTO items (id, owner, title) VALUES (:id, :owner, :title)",
    )?;
    let select = define(
        node,
        c,
        "bench_items_by_id",
        "SELECT id, owner, title FROM items WHERE id = :id",
    )?;
    let paging = define(
        node,
        c,
        "bench_items_paging",
        "SELECT id, title FROM items ORDER BY id",
    )?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let path = format!("/{PROJECT}/v1/sql/execute");
    let headers = vec![("X-API-Key".to_string(), c.api_key.clone())];

    say(format!(
        "{tag} sql: {n} inserts through sql/execute, {SQL_FILL_IN_FLIGHT} in flight"
    ));
    let cpu_before = proc_stats::cpu_seconds(&node.pid().to_string()).unwrap_or(0.0);
    let (fill, fill_s) = rt.block_on(fill(&node.addr, &path, &headers, &insert, n));
    let cpu_after = proc_stats::cpu_seconds(&node.pid().to_string()).unwrap_or(0.0);
    let (inserted, failed, first_error) = fill;
    if failed > 0 {
        say(format!(
            "warning: {tag} sql: {failed} of {n} inserts failed, first: {}",
            first_error.as_deref().unwrap_or("?")
        ));
    }
    let inserts = json!({
        "rows": n, "inserted": inserted, "failed": failed, "first_error": first_error,
        "in_flight": SQL_FILL_IN_FLIGHT, "seconds": fill_s,
        "per_s": inserted as f64 / fill_s.max(1e-9),
        "server_cpu_s": cpu_after - cpu_before,
    });

    let conns = args.connections.to_string();
    say(format!(
        "{tag} sql: keyed SELECT of one row, closed loop, {conns} connections"
    ));
    let body = json!({"query_definition_id": select, "params": {"id": (n / 2) as i64}});
    let mut a = vec![
        "--url".into(),
        format!("http://{}{path}", node.addr),
        "--header".into(),
        format!("X-API-Key: {}", c.api_key),
        "--body".into(),
        "fixed".into(),
        "--body-json".into(),
        body.to_string(),
        "--expect".into(),
        "\"title\"".into(),
        "--connections".into(),
        conns,
    ];
    a.extend(env.timing());
    let keyed = env.loadgen(node.pid(), &a)?;
    keyed.check(&format!("{tag} sql keyed select"));

    say(format!(
        "{tag} sql: keyset paging of every row, pages of {SQL_PAGE}"
    ));
    let read_before = sql_rows_read(node, c);
    let mut walk = rt.block_on(walk(&node.addr, &path, &headers, &paging, n));
    // What the node read from its store for the whole walk, per page: the fast path's bound.
    if let (Some(before), Some(after)) = (read_before, sql_rows_read(node, c)) {
        let pages = walk["pages"].as_f64().unwrap_or(0.0).max(1.0);
        walk["store_rows_read"] = json!(after - before);
        walk["store_rows_read_per_page"] = json!((after - before) / pages);
    }
    let rows = walk["rows"].as_u64().unwrap_or(0);
    if rows != n as u64 || walk["error"].is_string() || walk["out_of_order"].as_u64() != Some(0) {
        say(format!(
            "warning: {tag} sql: keyset paging returned {rows} of {n} rows: {walk}"
        ));
    }
    Ok(json!({
        "rows": n,
        "inserts": inserts,
        "keyed_select": to_value(&keyed),
        "keyset_paging": walk,
    }))
}

/// Inserts ids 0..n through the INSERT definition, `SQL_FILL_IN_FLIGHT` keep-alive connections
/// each taking the next id. Returns ((inserted, failed, first error), seconds).
async fn fill(
    addr: &str,
    path: &str,
    headers: &[(String, String)],
    definition: &str,
    n: usize,
) -> ((u64, u64, Option<String>), f64) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..SQL_FILL_IN_FLIGHT)
        .map(|_| {
            let next = next.clone();
            let (addr, path, headers, definition) = (
                addr.to_string(),
                path.to_string(),
                headers.to_vec(),
                definition.to_string(),
            );
            tokio::spawn(async move {
                let mut conn = KeepAlive::new(&addr);
                let (mut ok, mut failed, mut first) = (0u64, 0u64, None);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let body = json!({"query_definition_id": definition, "params": {
                        "id": i as i64, "owner": format!("owner-{}", i % 100),
                        "title": format!("title-{i}")}});
                    match conn.post(&path, &headers, body.to_string()).await {
                        Ok((200, _)) => ok += 1,
                        Ok((status, text)) => {
                            failed += 1;
                            first.get_or_insert_with(|| {
                                format!("{status} {}", String::from_utf8_lossy(&text))
                            });
                        }
                        Err(e) => {
                            failed += 1;
                            first.get_or_insert(e);
                        }
                    }
                }
                (ok, failed, first)
            })
        })
        .collect();
    let (mut ok, mut failed, mut first) = (0, 0, None);
    for t in tasks {
        match t.await {
            Ok((o, f, e)) => {
                ok += o;
                failed += f;
                if first.is_none() {
                    first = e;
                }
            }
            Err(e) => {
                first.get_or_insert(e.to_string());
            }
        }
    }
    ((ok, failed, first), started.elapsed().as_secs_f64())
}

/// Walks every page of the keyset definition following `next_cursor` until it is absent, on one
/// keep-alive connection; counts rows and checks that ids come back strictly increasing.
async fn walk(
    addr: &str,
    path: &str,
    headers: &[(String, String)],
    definition: &str,
    expected: usize,
) -> Value {
    let mut conn = KeepAlive::new(addr);
    let started = Instant::now();
    let (mut rows, mut pages, mut out_of_order) = (0u64, 0u64, 0u64);
    let mut last: Option<i64> = None;
    let mut cursor: Option<String> = None;
    let mut error = None;
    // More pages than the table can fill means the walk does not end.
    let max_pages = expected / SQL_PAGE + 10;
    loop {
        if pages as usize >= max_pages {
            error = Some(format!("still a next_cursor after {pages} pages"));
            break;
        }
        let mut body = json!({"query_definition_id": definition, "params": {},
            "limit": SQL_PAGE, "cursor_mode": "keyset"});
        if let Some(c) = &cursor {
            body["cursor"] = json!(c);
        }
        let page: Value = match conn.post(path, headers, body.to_string()).await {
            Ok((200, text)) => match serde_json::from_slice(&text) {
                Ok(v) => v,
                Err(e) => {
                    error = Some(format!("page {pages}: {e}"));
                    break;
                }
            },
            Ok((status, text)) => {
                error = Some(format!(
                    "page {pages}: {status} {}",
                    String::from_utf8_lossy(&text)
                ));
                break;
            }
            Err(e) => {
                error = Some(format!("page {pages}: {e}"));
                break;
            }
        };
        pages += 1;
        for row in page["rows"].as_array().map_or(&[][..], Vec::as_slice) {
            rows += 1;
            let id = row["id"].as_i64();
            if id.is_none() || last.is_some_and(|l| Some(l) >= id) {
                out_of_order += 1;
            }
            last = id.or(last);
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    json!({
        "limit": SQL_PAGE, "pages": pages, "rows": rows, "expected_rows": expected,
        "complete": rows == expected as u64 && out_of_order == 0 && error.is_none(),
        "out_of_order": out_of_order, "error": error,
        "seconds": seconds, "rows_per_s": rows as f64 / seconds.max(1e-9),
    })
}
