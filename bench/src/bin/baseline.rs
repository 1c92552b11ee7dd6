//! `baseline`: what the HTTP stack alone can do, measured beside the node in the same run. The
//! same warp 0.4 and serde_json, the same runtime (tokio multi-thread, one worker per core), the
//! same request and answer bodies and answer headers as the node's active introspection, and
//! behind them an in-memory map lookup of SHA-256(token) and nothing else. Frozen: change it
//! only when the node's answer shape changes, or every earlier ratio loses its meaning.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use clap::Parser;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, PRAGMA, VARY};
use http::{Response, StatusCode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use warp::Filter;

#[derive(Parser, Debug)]
#[command(about = "Baseline introspection server: warp + a SHA-256 map lookup")]
struct Args {
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Access tokens, one a line; each answers active.
    #[arg(long)]
    tokens: PathBuf,
}

/// The node's active answer, field for field (`node/src/api/introspection.rs`).
#[derive(Serialize, Clone)]
struct IntrospectionResult {
    active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    project_id: Option<uuid::Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_user_id: Option<uuid::Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_id: Option<uuid::Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<String>,
}

const INACTIVE: IntrospectionResult = IntrospectionResult {
    active: false,
    project_id: None,
    end_user_id: None,
    session_id: None,
    expires_at: None,
};

#[derive(Deserialize)]
struct IntrospectBody {
    token: Option<String>,
    #[allow(dead_code)]
    required_scopes: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct BatchBody {
    tokens: Vec<String>,
}

#[derive(Serialize)]
struct BatchResult<'a> {
    results: Vec<&'a IntrospectionResult>,
}

type Sessions = HashMap<[u8; 32], IntrospectionResult>;

fn lookup<'a>(sessions: &'a Sessions, token: &str) -> &'a IntrospectionResult {
    let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    sessions.get(&hash).unwrap_or(&INACTIVE)
}

/// The node's headers on an introspection answer, with a request id of the same length (the
/// node makes one per request; here it is fixed, since generating it is the node's own work).
fn reply(status: StatusCode, body: Vec<u8>) -> Response<Bytes> {
    let mut res = Response::new(Bytes::from(body));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(
        "x-request-id",
        HeaderValue::from_static("0190f1a2b3c47d8e9f0a1b2c3d4e5f60"),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(VARY, HeaderValue::from_static("Origin"));
    res
}

fn invalid() -> Response<Bytes> {
    reply(
        StatusCode::UNPROCESSABLE_ENTITY,
        br#"{"detail":[{"loc":["body"],"msg":"invalid body","type":"value_error"}]}"#.to_vec(),
    )
}

fn introspect(sessions: &Sessions, body: &[u8]) -> Response<Bytes> {
    let Ok(body) = serde_json::from_slice::<IntrospectBody>(body) else {
        return invalid();
    };
    let answer = body
        .token
        .as_deref()
        .map_or(&INACTIVE, |t| lookup(sessions, t));
    reply(
        StatusCode::OK,
        serde_json::to_vec(answer).expect("answers serialise"),
    )
}

fn introspect_batch(sessions: &Sessions, body: &[u8]) -> Response<Bytes> {
    let Ok(body) = serde_json::from_slice::<BatchBody>(body) else {
        return invalid();
    };
    if body.tokens.is_empty() || body.tokens.len() > 1000 {
        return invalid();
    }
    let results = body.tokens.iter().map(|t| lookup(sessions, t)).collect();
    reply(
        StatusCode::OK,
        serde_json::to_vec(&BatchResult { results }).expect("answers serialise"),
    )
}

/// One fixed active answer per token: ids derived from its hash, one project, an hour ahead.
fn load(path: &PathBuf) -> Result<Sessions, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let project_id = uuid::Uuid::from_u128(0x0190_f1a2_b3c4_7d8e_9f0a_1b2c_3d4e_5f60);
    let expires_at = (chrono::Utc::now() + chrono::Duration::hours(1))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let mut sessions = HashMap::new();
    for token in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let id = |i: usize| {
            let mut b = [0u8; 16];
            b.copy_from_slice(&hash[i..i + 16]);
            uuid::Builder::from_random_bytes(b).into_uuid()
        };
        sessions.insert(
            hash,
            IntrospectionResult {
                active: true,
                project_id: Some(project_id),
                end_user_id: Some(id(0)),
                session_id: Some(id(16)),
                expires_at: Some(expires_at.clone()),
            },
        );
    }
    Ok(sessions)
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let sessions = match load(&args.tokens) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("baseline: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // The node's runtime: multi-thread, default worker count (one per core).
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("baseline: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let single = {
            let sessions = sessions.clone();
            warp::post()
                .and(warp::path!(String / "v1" / "sessions" / "introspect"))
                .and(warp::body::content_length_limit(64 * 1024))
                .and(warp::body::bytes())
                .map(move |_slug: String, body: Bytes| introspect(&sessions, &body))
        };
        let batch = warp::post()
            .and(warp::path!(
                String / "v1" / "sessions" / "introspect" / "batch"
            ))
            .and(warp::body::content_length_limit(256 * 1024))
            .and(warp::body::bytes())
            .map(move |_slug: String, body: Bytes| introspect_batch(&sessions, &body));
        let listener = match tokio::net::TcpListener::bind(args.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("baseline: cannot bind {}: {e}", args.listen);
                return std::process::ExitCode::FAILURE;
            }
        };
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        println!("baseline listening on http://{addr}");
        warp::serve(single.or(batch)).incoming(listener).run().await;
        std::process::ExitCode::SUCCESS
    })
}
