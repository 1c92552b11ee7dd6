//! `forward_cost`: what one node-to-node forward costs on loopback, per client candidate.
//!
//! A tiny owner server (parse a ~120-byte JSON request, answer a ~150-byte JSON reply, about
//! 1 µs of work) runs on its own tokio runtime; the client runs on another. Each candidate sends
//! a fixed number of requests after a warm-up, closed loop, with 1 or 32 in flight (32 tasks,
//! each waiting for its answer before sending the next), and the runs are repeated in rotated
//! order. Latency is per request, from just before the send to the last byte of the reply; CPU
//! is the whole process's (client + server) per request, read from `/proc/self/stat`.
//!
//! Candidates: (a) hyper-util's legacy pooled `Client`, HTTP/1.1 keep-alive, TCP_NODELAY;
//! (b) the same client with `http2_only` (h2c prior knowledge, one multiplexed connection);
//! (c) reqwest (hyper underneath, its own pool, HTTP/1.1 here); (d) the floor, a raw
//! length-prefixed exchange of the same bytes over one TcpStream per in-flight slot.
//!
//! `cargo run -p commonrock-bench --release --bin forward_cost`

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use commonrock_bench::proc_stats;
use hdrhistogram::Histogram;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Parser, Debug, Clone)]
#[command(about = "Latency and throughput of one node-to-node forward, per client candidate")]
struct Args {
    /// Measured requests per run.
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Unmeasured requests per run before the measured ones (same client, same in-flight).
    #[arg(long, default_value_t = 2_000)]
    warmup: usize,
    /// Times every candidate is run; the table shows the median run and the range.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Requests in flight for the concurrent runs.
    #[arg(long, default_value_t = 32)]
    inflight: usize,
    /// Worker threads of the server's runtime.
    #[arg(long, default_value_t = 1)]
    server_threads: usize,
    /// Worker threads of the client's runtime.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Minimum owner work per request, in nanoseconds (parsing and building the JSON count).
    #[arg(long, default_value_t = 1_000)]
    work_ns: u64,
}

const PATH: &str = "/cluster/v1/owner";

/// The forwarded call: an introspection of one session, as an owner node would receive it.
fn request_body() -> Bytes {
    let body = serde_json::json!({
        "op": "introspect",
        "key": "session:01890a5d-ac96-774b-bcce-b302099a8057",
        "request_id": "a1b2c3d4",
        "deadline_ms": 1_796_300_000_000u64,
    });
    Bytes::from(serde_json::to_vec(&body).expect("serialisable"))
}

#[derive(serde::Deserialize)]
struct Call<'a> {
    #[allow(dead_code)]
    op: &'a str,
    key: &'a str,
    request_id: &'a str,
    #[allow(dead_code)]
    deadline_ms: u64,
}

#[derive(serde::Serialize)]
struct Reply<'a> {
    key: &'a str,
    active: bool,
    sub: &'a str,
    exp: u64,
    scope: &'a str,
    request_id: &'a str,
}

/// The owner's work: parse the call, build the answer, and spin up to `work` in all.
fn owner_work(body: &[u8], work: Duration) -> Option<Bytes> {
    let started = Instant::now();
    let call: Call<'_> = serde_json::from_slice(body).ok()?;
    let reply = serde_json::to_vec(&Reply {
        key: call.key,
        active: true,
        sub: "usr_01890a5d",
        exp: 1_796_300_900,
        scope: "openid profile",
        request_id: call.request_id,
    })
    .ok()?;
    while started.elapsed() < work {
        std::hint::spin_loop();
    }
    Some(Bytes::from(reply))
}

/// One server for every HTTP candidate: hyper-util's auto builder answers HTTP/1.1 and h2c
/// (prior knowledge) on the same port, so the server side is identical across candidates.
async fn serve_http(listener: TcpListener, work: Duration) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| async move {
                let response = match request.into_body().collect().await {
                    Ok(body) => match owner_work(&body.to_bytes(), work) {
                        Some(reply) => Response::builder()
                            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                            .body(Full::new(reply)),
                        None => Response::builder()
                            .status(StatusCode::BAD_REQUEST)
                            .body(Full::new(Bytes::new())),
                    },
                    Err(_) => Response::builder()
                        .status(StatusCode::BAD_REQUEST)
                        .body(Full::new(Bytes::new())),
                };
                Ok::<_, Infallible>(response.expect("valid response parts"))
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The floor: a u32 big-endian length, then the bytes, each way.
async fn serve_raw(listener: TcpListener, work: Duration) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let mut body = Vec::new();
            let mut out = Vec::new();
            loop {
                let Ok(len) = stream.read_u32().await else {
                    return;
                };
                body.resize(len as usize, 0);
                if stream.read_exact(&mut body).await.is_err() {
                    return;
                }
                let Some(reply) = owner_work(&body, work) else {
                    return;
                };
                out.clear();
                out.extend_from_slice(&(reply.len() as u32).to_be_bytes());
                out.extend_from_slice(&reply);
                if stream.write_all(&out).await.is_err() {
                    return;
                }
            }
        });
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Candidate {
    Hyper1,
    Hyper2,
    Reqwest,
    Raw,
}

impl Candidate {
    fn label(self) -> &'static str {
        match self {
            Candidate::Hyper1 => "(a) hyper-util Client, HTTP/1.1 keep-alive",
            Candidate::Hyper2 => "(b) hyper-util Client, HTTP/2 (h2c prior knowledge)",
            Candidate::Reqwest => "(c) reqwest 0.12, HTTP/1.1",
            Candidate::Raw => "(d) raw TcpStream, length-prefixed",
        }
    }
}

/// One in-flight slot's way of sending: HTTP clients are shared (cheap clones of one pool),
/// the raw floor owns one connection per slot. At most `--inflight` of them exist, so the size
/// of the largest variant does not matter, and boxing it would add a hop to the measured path.
#[allow(clippy::large_enum_variant)]
enum Sender {
    Hyper(Client<HttpConnector, Full<Bytes>>, Uri),
    Reqwest(reqwest::Client, String),
    Raw(TcpStream, Vec<u8>),
}

impl Sender {
    /// Sends the call and reads the whole answer; its length on success.
    async fn send(&mut self, body: &Bytes) -> Result<usize, String> {
        match self {
            Sender::Hyper(client, uri) => {
                let request = Request::post(uri.clone())
                    .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                    .body(Full::new(body.clone()))
                    .map_err(|e| e.to_string())?;
                let response = client.request(request).await.map_err(|e| e.to_string())?;
                if response.status() != StatusCode::OK {
                    return Err(format!("status {}", response.status()));
                }
                let reply = response
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(reply.to_bytes().len())
            }
            Sender::Reqwest(client, url) => {
                let response = client
                    .post(url.as_str())
                    .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                    .body(body.clone())
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                if response.status() != StatusCode::OK {
                    return Err(format!("status {}", response.status()));
                }
                Ok(response.bytes().await.map_err(|e| e.to_string())?.len())
            }
            Sender::Raw(stream, buffer) => {
                buffer.clear();
                buffer.extend_from_slice(&(body.len() as u32).to_be_bytes());
                buffer.extend_from_slice(body);
                stream.write_all(buffer).await.map_err(|e| e.to_string())?;
                let len = stream.read_u32().await.map_err(|e| e.to_string())? as usize;
                buffer.resize(len, 0);
                stream.read_exact(buffer).await.map_err(|e| e.to_string())?;
                Ok(len)
            }
        }
    }
}

/// A fresh client (or fresh connections) for one run, one `Sender` per in-flight slot.
async fn senders(
    candidate: Candidate,
    http: SocketAddr,
    raw: SocketAddr,
    inflight: usize,
) -> Result<Vec<Sender>, String> {
    let uri: Uri = format!("http://{http}{PATH}")
        .parse()
        .map_err(|e: http::uri::InvalidUri| e.to_string())?;
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let mut builder = Client::builder(TokioExecutor::new());
    builder
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(256);
    match candidate {
        Candidate::Hyper1 | Candidate::Hyper2 => {
            if candidate == Candidate::Hyper2 {
                builder.http2_only(true);
            }
            let client = builder.build(connector);
            Ok((0..inflight)
                .map(|_| Sender::Hyper(client.clone(), uri.clone()))
                .collect())
        }
        Candidate::Reqwest => {
            let client = reqwest::Client::builder()
                .tcp_nodelay(true)
                .pool_idle_timeout(Duration::from_secs(60))
                .pool_max_idle_per_host(256)
                .build()
                .map_err(|e| e.to_string())?;
            Ok((0..inflight)
                .map(|_| Sender::Reqwest(client.clone(), uri.to_string()))
                .collect())
        }
        Candidate::Raw => {
            let mut out = Vec::with_capacity(inflight);
            for _ in 0..inflight {
                let stream = TcpStream::connect(raw).await.map_err(|e| e.to_string())?;
                stream.set_nodelay(true).map_err(|e| e.to_string())?;
                out.push(Sender::Raw(stream, Vec::with_capacity(256)));
            }
            Ok(out)
        }
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// Sends `total` requests from all slots at once (closed loop); latencies in ns.
async fn drive(
    senders: Vec<Sender>,
    total: usize,
    body: &Bytes,
) -> Result<(Vec<Sender>, Histogram<u64>), String> {
    let remaining = Arc::new(AtomicUsize::new(total));
    let mut tasks = Vec::with_capacity(senders.len());
    for mut sender in senders {
        let remaining = remaining.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = histogram();
            while remaining
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
            {
                let started = Instant::now();
                let len = sender.send(&body).await?;
                let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
                latencies.saturating_record(nanos);
                if len == 0 {
                    return Err("empty reply".to_string());
                }
            }
            Ok::<_, String>((sender, latencies))
        }));
    }
    let mut merged = histogram();
    let mut senders = Vec::with_capacity(tasks.len());
    for task in tasks {
        let (sender, latencies) = task.await.map_err(|e| e.to_string())??;
        merged.add(&latencies).map_err(|e| e.to_string())?;
        senders.push(sender);
    }
    Ok((senders, merged))
}

#[derive(Clone, Debug)]
struct Run {
    p50_us: f64,
    p99_us: f64,
    per_s: f64,
    cpu_us: f64,
}

async fn run(
    candidate: Candidate,
    inflight: usize,
    args: &Args,
    http: SocketAddr,
    raw: SocketAddr,
) -> Result<Run, String> {
    let body = request_body();
    let slots = senders(candidate, http, raw, inflight).await?;
    let (slots, _) = drive(slots, args.warmup, &body).await?;
    let cpu_before = proc_stats::cpu_seconds("self").unwrap_or(0.0);
    let started = Instant::now();
    let (_, latencies) = drive(slots, args.requests, &body).await?;
    let wall = started.elapsed().as_secs_f64();
    let cpu = proc_stats::cpu_seconds("self").unwrap_or(0.0) - cpu_before;
    Ok(Run {
        p50_us: latencies.value_at_quantile(0.50) as f64 / 1_000.0,
        p99_us: latencies.value_at_quantile(0.99) as f64 / 1_000.0,
        per_s: args.requests as f64 / wall,
        cpu_us: cpu / args.requests as f64 * 1e6,
    })
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn runtime(threads: usize, name: &str) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name(name)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn main() -> Result<(), String> {
    let args = Args::parse();
    let work = Duration::from_nanos(args.work_ns);
    let body = request_body();

    // What the owner's work costs by itself, for comparison with the forward.
    let reply_len = owner_work(&body, work).map_or(0, |r| r.len());
    let calibration = 100_000;
    let started = Instant::now();
    for _ in 0..calibration {
        std::hint::black_box(owner_work(std::hint::black_box(&body), work));
    }
    let work_us = started.elapsed().as_secs_f64() / calibration as f64 * 1e6;

    let server = runtime(args.server_threads, "owner-server");
    let (http, raw) = server.block_on(async {
        let http = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let raw = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let addrs = (
            http.local_addr().map_err(|e| e.to_string())?,
            raw.local_addr().map_err(|e| e.to_string())?,
        );
        tokio::spawn(serve_http(http, work));
        tokio::spawn(serve_raw(raw, work));
        Ok::<_, String>(addrs)
    })?;
    let client = runtime(args.client_threads, "forwarder");

    let machine = proc_stats::machine();
    eprintln!(
        "{} cores ({}), kernel {}, load {}; request {} B, reply {} B, owner work {:.2} µs; \
         {} requests after {} warm-up, {} rounds; server {} thread(s), client {} thread(s)",
        machine.cores,
        machine.cpu_model,
        machine.kernel,
        proc_stats::loadavg(),
        body.len(),
        reply_len,
        work_us,
        args.requests,
        args.warmup,
        args.rounds,
        args.server_threads,
        args.client_threads,
    );

    let mut cases = Vec::new();
    for candidate in [
        Candidate::Hyper1,
        Candidate::Hyper2,
        Candidate::Reqwest,
        Candidate::Raw,
    ] {
        cases.push((candidate, 1));
        cases.push((candidate, args.inflight));
    }
    let mut results: Vec<Vec<Run>> = vec![Vec::new(); cases.len()];
    for round in 0..args.rounds {
        // Rotate the order each round so no candidate always runs first or last.
        for step in 0..cases.len() {
            let index = (step + round * 3) % cases.len();
            let (candidate, inflight) = cases[index];
            let run_args = args.clone();
            let outcome = client.block_on(async {
                // Inside a task, so the driver runs on the client's worker like a handler would.
                let args = run_args;
                tokio::spawn(async move { run(candidate, inflight, &args, http, raw).await })
                    .await
                    .map_err(|e| e.to_string())?
            })?;
            eprintln!(
                "round {} {:<52} in flight {:>2}: p50 {:>7.1} µs  p99 {:>7.1} µs  {:>8.0}/s  \
                 cpu {:>5.1} µs/req",
                round + 1,
                candidate.label(),
                inflight,
                outcome.p50_us,
                outcome.p99_us,
                outcome.per_s,
                outcome.cpu_us
            );
            results[index].push(outcome);
        }
    }

    println!(
        "| client | in flight | p50 µs | p99 µs | requests/s | CPU µs/request (client + server) |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for ((candidate, inflight), runs) in cases.iter().zip(&results) {
        let column = |pick: fn(&Run) -> f64| {
            let mut values: Vec<f64> = runs.iter().map(pick).collect();
            let mid = median(&mut values);
            (mid, values[0], values[values.len() - 1])
        };
        let (p50, p50_lo, p50_hi) = column(|r| r.p50_us);
        let (p99, ..) = column(|r| r.p99_us);
        let (per_s, per_s_lo, per_s_hi) = column(|r| r.per_s);
        let (cpu, ..) = column(|r| r.cpu_us);
        println!(
            "| {} | {inflight} | {p50:.1} ({p50_lo:.1}–{p50_hi:.1}) | {p99:.1} | {per_s:.0} \
             ({per_s_lo:.0}–{per_s_hi:.0}) | {cpu:.1} |",
            candidate.label()
        );
    }
    println!(
        "\nmedian of {} runs (range in brackets); {} measured requests per run after {} \
         warm-up; owner work {work_us:.2} µs per request",
        args.rounds, args.requests, args.warmup
    );
    drop(client);
    server.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}
