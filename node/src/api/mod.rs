//! Request dispatch in the order SPEC §6 fixes: route (404/405) → body size (413) → node-wide
//! maintenance → slug (404) → project maintenance → the endpoint's own credentials, limits,
//! validation and operation. Every answer leaves through `finish`, which adds the common
//! headers, so no response can miss them.

pub mod admin;
pub mod introspection;
pub mod ops;
pub mod portal;
pub mod public;
pub mod routes;
pub mod sql;

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use commonrock_actors::owner::{RequestContext, REQUEST};
use commonrock_actors::tenant::ProjectView;
use commonrock_actors::Engine;
use futures_util::{Stream, StreamExt};
use http::header::{HeaderMap, HeaderValue, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use http::{Method, Response, StatusCode};
use ipnet::IpNet;

use crate::http::client_ip::caller_ip;
use crate::http::{Answer, ApiError, Code, Handled, Request};
use crate::metrics::HttpMetrics;
use routes::{Resolved, Target};

/// Largest body any endpoint accepts; batch introspection (1000 tokens) needs the most.
const MAX_BODY: usize = 256 * 1024;
/// Everything else is small JSON.
const MAX_SMALL_BODY: usize = 64 * 1024;
/// Longest request target (path and query) answered: beyond it 414 `uri_too_long`.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Header budget of a request: more lines or bytes answer 431
/// `request_header_fields_too_large` with the JSON body. hyper's own caps sit above these
/// (`http::conn`), so only heads past those get hyper's bare answer.
pub const MAX_HEADER_LINES: usize = 64;
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// An oversized body up to this size is still read (and dropped) before the 413 goes out: a
/// server that answers and closes while the client is still writing makes the client see a
/// broken pipe or a reset instead of the JSON error. Beyond it, refusing at once is cheaper.
const DRAIN_LIMIT: usize = 1024 * 1024;

/// Which listener a request arrived on. With `--admin-listen` the admin API and /metrics
/// live only on the admin listener, and tenant paths only on the main one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    /// One listener serves everything.
    All,
    Main,
    Admin,
}

impl Surface {
    fn serves(self, target: &Target) -> bool {
        let admin_only = matches!(
            target,
            Target::Admin(_) | Target::Metrics | Target::Portal(_) | Target::PortalRedirect
        );
        let shared = matches!(target, Target::Healthz | Target::Readyz);
        match self {
            Surface::All => true,
            Surface::Main => !admin_only,
            Surface::Admin => admin_only || shared,
        }
    }
}

/// What every handler can reach.
pub struct AppState {
    pub engine: Arc<Engine>,
    pub metrics: HttpMetrics,
    pub registry: prometheus::Registry,
    pub trusted_proxies: Vec<IpNet>,
    /// SHA-256 of `COMMONROCK_ADMIN_TOKEN`, if set.
    pub bootstrap_admin_hash: Option<[u8; 32]>,
    /// Admin API and /metrics only from these networks (empty: from anywhere).
    pub admin_cidrs: Vec<IpNet>,
    /// Fault-injection routes (tests only): off in production.
    pub fault_injection: bool,
    /// False while starting and once shutdown begins: /readyz goes red first.
    pub ready: AtomicBool,
    pub openapi_json: Bytes,
    /// The simple DB on the node's store; None while the store has no row storage.
    pub sql: Option<Arc<commonrock_actors::sql::SqlEngine>>,
    /// This node's view of the cluster (a cluster of one on the embedded store).
    pub membership: Arc<commonrock_cluster::Membership>,
    /// How long a request body may take to arrive in full (`--http-body-timeout-ms`).
    pub body_timeout: std::time::Duration,
    /// One `info` line per request (`--access-log`).
    pub access_log: bool,
    /// The portal cookie's `Secure` attribute: off only for `serve --dev` on loopback.
    pub cookie_secure: bool,
}

impl AppState {
    /// Accepting traffic and joined to the ring (owning its share, epoch settled, not fenced).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && self.membership.joined()
    }
}

fn body_limit(target: &Target) -> usize {
    match target {
        Target::Introspect { batch: true, .. } => MAX_BODY,
        _ => MAX_SMALL_BODY,
    }
}

/// Reads at most `limit` bytes; None when the body is larger (drained up to `DRAIN_LIMIT`).
async fn read_body<S, B, E>(stream: S, limit: usize) -> Result<Option<Bytes>, E>
where
    S: Stream<Item = Result<B, E>>,
    B: Buf,
{
    let mut stream = std::pin::pin!(stream);
    let mut out = BytesMut::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let mut chunk = match chunk {
            Ok(c) => c,
            // Already too large: the answer is 413 whatever went wrong afterwards.
            Err(_) if seen > limit => return Ok(None),
            Err(e) => return Err(e),
        };
        seen = seen.saturating_add(chunk.remaining());
        if seen > limit {
            if seen > DRAIN_LIMIT {
                return Ok(None);
            }
            // Keep nothing of a body that will be refused.
            out = BytesMut::new();
            continue;
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            out.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok((seen <= limit).then(|| out.freeze()))
}

fn request_id(headers: &HeaderMap) -> String {
    // Keep a caller's id when it is short and printable, so traces join up across services.
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(new_request_id)
}

/// The head's size budget, checked before routing so that even an oversized request gets the
/// JSON error body and a request id.
fn check_head(path: &str, query: &str, headers: &HeaderMap) -> Result<(), ApiError> {
    if path.len() + query.len() + 1 > MAX_URI_BYTES {
        return Err(ApiError::code(Code::UriTooLong));
    }
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if headers.len() > MAX_HEADER_LINES || bytes > MAX_HEADER_BYTES {
        return Err(ApiError::code(Code::HeaderFieldsTooLarge));
    }
    Ok(())
}

/// A random per-process prefix and a counter under a keyed permutation: unique across nodes and
/// restarts without a `getrandom` system call per request (a random UUID each cost ~2 % of
/// introspection), and the counter stays hidden (a plain one tells any caller how many
/// requests the node served).
fn new_request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static PREFIX: OnceLock<(u64, std::hash::RandomState)> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let (prefix, key) = PREFIX.get_or_init(|| {
        let mut b = [0u8; 8];
        commonrock_actors::crypto::secrets::fill_random(&mut b);
        (u64::from_le_bytes(b), std::hash::RandomState::new())
    });
    let n = permute(key, COUNTER.fetch_add(1, Ordering::Relaxed));
    let value = (u128::from(*prefix) << 64) | u128::from(n);
    // 32 lower-case hex digits, without `format!`'s machinery (this runs per request).
    (0..32)
        .rev()
        .map(|i| char::from(b"0123456789abcdef"[((value >> (i * 4)) & 0xf) as usize]))
        .collect()
}

/// A four-round Feistel network over 64 bits whose round function is SipHash under a random
/// per-process key: a bijection (distinct counters give distinct ids) that cannot be undone
/// without the key.
fn permute(key: &std::hash::RandomState, n: u64) -> u64 {
    use std::hash::BuildHasher;
    let (mut left, mut right) = ((n >> 32) as u32, n as u32);
    for round in 0u8..4 {
        let f = key.hash_one((round, right)) as u32;
        (left, right) = (right, left ^ f);
    }
    (u64::from(left) << 32) | u64::from(right)
}

/// The whole request path, from warp's pieces to a finished response.
/// The head of a request as the HTTP server hands it over; the body follows as a stream.
pub struct Incoming {
    pub method: Method,
    pub path: String,
    /// The raw query string, empty when there is none.
    pub query: String,
    pub headers: HeaderMap,
    /// The TCP peer.
    pub peer: Option<IpAddr>,
}

pub async fn handle<S, B>(
    state: Arc<AppState>,
    surface: Surface,
    head: Incoming,
    body: S,
) -> Response<Bytes>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let Incoming {
        method,
        path,
        query,
        headers,
        peer,
    } = head;
    let started = Instant::now();
    let rid = request_id(&headers);
    let ip = caller_ip(peer, &headers, &state.trusted_proxies);
    let resolved = check_head(&path, &query, &headers)
        .and_then(|()| routes::resolve(&method, &path))
        .and_then(|r| {
            if surface.serves(&r.target) {
                Ok(r)
            } else {
                Err(ApiError::code(Code::NotFound))
            }
        });
    let (template, answer, cors_origin) = match resolved {
        Err(e) => ("unmatched", Answer::from(e), None),
        Ok(resolved) => {
            let template = resolved.template;
            let head = Incoming {
                method: method.clone(),
                path,
                query,
                headers,
                peer: ip,
            };
            // Every event logged while handling carries the request id and route template
            // (never the path: it can hold ids a log has no business keeping); `logs` reads
            // them from here. Boxed once: the request's future is several KiB, and every
            // layer above (warp, hyper, the connection) would otherwise copy it whole.
            let context = RequestContext {
                id: rid.as_str().into(),
                route: template,
            };
            let (answer, cors) = REQUEST
                .scope(context, Box::pin(route(&state, resolved, head, body)))
                .await;
            (template, answer, cors)
        }
    };
    let status = answer.status;
    let response = finish(answer, &rid, cors_origin.as_deref());
    state.metrics.observe(template, status, started.elapsed());
    // The access log: one line per request unless turned off (`--access-log off`): writing it
    // costs more than answering an introspection, and metrics carry the counts either way.
    if state.access_log {
        tracing::info!(
            request_id = %rid,
            method = %method,
            route = template,
            status = status.as_u16(),
            micros = started.elapsed().as_micros() as u64,
            "request"
        );
    }
    response
}

/// `head.peer` here is already the caller IP (trusted-proxy rules applied).
async fn route<S, B>(
    state: &Arc<AppState>,
    resolved: Resolved,
    head: Incoming,
    body: S,
) -> (Answer, Option<String>)
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let Incoming {
        method,
        path,
        query,
        headers,
        peer: ip,
    } = head;
    let limit = body_limit(&resolved.target);
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > DRAIN_LIMIT as u64) {
        return (ApiError::code(Code::PayloadTooLarge).into(), None);
    }
    // A small body has usually arrived with its head: read it without arming a timer (one
    // timer-wheel insert and removal per request otherwise).
    let mut reading = std::pin::pin!(read_body(body, limit));
    let read = match futures_util::FutureExt::now_or_never(reading.as_mut()) {
        Some(done) => Ok(done),
        None => tokio::time::timeout(state.body_timeout, reading).await,
    };
    let body = match read {
        Ok(Ok(Some(b))) => b,
        Ok(Ok(None)) => return (ApiError::code(Code::PayloadTooLarge).into(), None),
        // A body announced and never sent in full must not hold the request (and its
        // connection) forever.
        Err(_elapsed) => return (ApiError::code(Code::RequestTimeout).into(), None),
        // The client went away or sent a broken chunked body: a client error, not ours.
        Ok(Err(_)) => {
            return (
                ApiError::validation(vec![crate::http::validation::Issue::missing(vec![
                    serde_json::json!("body"),
                ])])
                .into(),
                None,
            )
        }
    };
    let req = Request {
        method,
        path,
        query,
        headers,
        body,
        ip,
    };
    match resolved.target {
        Target::Healthz => (ops::healthz(), None),
        Target::Readyz => (Box::pin(ops::readyz(state)).await, None),
        Target::Metrics => (
            unwrap(admin::guard_network(state, &req).and_then(|()| ops::metrics(state))),
            None,
        ),
        Target::OpenApi => (ops::openapi(state), None),
        Target::Docs(tail) => (
            portal::page_headers(ops::docs(&tail), portal::DOCS_CSP),
            None,
        ),
        Target::Portal(path) => (
            unwrap(admin::guard_network(state, &req).map(|()| portal::file(&path))),
            None,
        ),
        Target::PortalRedirect => (portal::redirect(), None),
        Target::DocsRedirect => (ops::docs_redirect(), None),
        // Boxed: the admin handlers' futures are large, and every request's future would
        // otherwise be as large as the largest of them (copied whole as it is moved).
        Target::Admin(target) => (
            unwrap(Box::pin(admin::dispatch(state, &req, target)).await),
            None,
        ),
        tenant => tenant_route(state, &req, tenant).await,
    }
}

fn unwrap(h: Handled) -> Answer {
    h.unwrap_or_else(Answer::from)
}

/// Tenant routes: maintenance and slug checks, then the endpoint; CORS on public paths.
async fn tenant_route(
    state: &Arc<AppState>,
    req: &Request,
    target: Target,
) -> (Answer, Option<String>) {
    let tenants = state.engine.tenants();
    let is_public = matches!(
        target,
        Target::Preflight { .. }
            | Target::EndUsers { .. }
            | Target::OwnSessions { .. }
            | Target::SqlExecute { public: true, .. }
    );
    let slug = target.slug().unwrap_or_default();
    let project = tenants.project(slug).cloned();
    // Browsers must be able to read even error answers, so CORS is decided up front.
    let cors = match (&project, req.origin()) {
        (Some(p), Some(origin)) if is_public && p.any_client_allows(origin) => {
            Some(origin.to_string())
        }
        _ => None,
    };
    if let Target::Preflight { .. } = target {
        let answer = match &project {
            None => ApiError::code(Code::ProjectNotFound).into(),
            Some(_) => public::preflight(cors.is_some()),
        };
        return (answer, cors);
    }
    let maintenance = tenants.maintenance;
    drop(tenants);
    let answer = if maintenance {
        ApiError::code(Code::MaintenanceMode).into()
    } else {
        match project {
            None => ApiError::code(Code::ProjectNotFound).into(),
            Some(p) if p.project.maintenance => ApiError::code(Code::MaintenanceMode).into(),
            Some(p) => unwrap(endpoint(state, req, &p, target).await),
        }
    };
    (answer, cors)
}

async fn endpoint(
    state: &Arc<AppState>,
    req: &Request,
    project: &Arc<ProjectView>,
    target: Target,
) -> Handled {
    match target {
        // Boxed, like the admin handlers: only introspection, the hot path, runs inline.
        Target::EndUsers { action, .. } => {
            Box::pin(public::end_users::handle(state, req, project, action)).await
        }
        Target::OwnSessions { action, .. } => {
            Box::pin(public::sessions::handle(state, req, project, action)).await
        }
        Target::Introspect { batch, .. } => introspection::handle(state, req, project, batch).await,
        Target::SqlExecute { public, .. } => {
            Box::pin(sql::execute(state, req, project, public)).await
        }
        _ => Err(ApiError::code(Code::NotFound)),
    }
}

/// Adds the headers every response carries and turns an answer into an HTTP response.
fn finish(answer: Answer, request_id: &str, cors_origin: Option<&str>) -> Response<Bytes> {
    let has_body = !answer.body.is_empty();
    let mut res = Response::new(answer.body);
    *res.status_mut() = answer.status;
    let h = res.headers_mut();
    *h = answer.headers;
    if has_body && !h.contains_key(CONTENT_TYPE) {
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    if answer.no_store {
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(http::header::PRAGMA, HeaderValue::from_static("no-cache"));
    }
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-request-id", v);
    }
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    if let Some(origin) = cors_origin.and_then(|o| HeaderValue::from_str(o).ok()) {
        h.insert(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(
            http::header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("X-Request-Id, Retry-After, WWW-Authenticate"),
        );
    }
    // Responses vary by Origin on every public path, allowed or not, so caches keep them apart.
    h.append(http::header::VARY, HeaderValue::from_static("Origin"));
    if answer.status == StatusCode::NO_CONTENT {
        *res.body_mut() = Bytes::new();
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_id_counters_are_permuted_without_collisions() {
        let key = std::hash::RandomState::new();
        let ids: std::collections::HashSet<u64> = (0..100_000).map(|n| permute(&key, n)).collect();
        assert_eq!(ids.len(), 100_000, "a bijection");
        // Consecutive counters do not give neighbouring ids.
        let (a, b) = (permute(&key, 41), permute(&key, 42));
        assert!(a.abs_diff(b) > 1 << 20, "{a:x} {b:x}");
        let id = new_request_id();
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(new_request_id(), id);
    }
}
