//! `loadgen`: an HTTP/1.1 load generator with keep-alive connections (one task per connection on
//! hyper's client), closed loop (each connection sends its next request when the answer is in)
//! or open loop (requests scheduled at a fixed rate; latency counted from the *intended* send
//! time, so a stalled server cannot hide its queue: coordinated omission accounted for). Bodies
//! are serialised before the clock starts. Prints one JSON `Summary`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, ValueEnum};
use commonrock_bench::{proc_stats, Latency, Summary};
use hdrhistogram::Histogram;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST};
use http::{HeaderMap, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Mutex};

#[derive(Copy, Clone, Debug, ValueEnum, PartialEq, Eq)]
enum Mode {
    Closed,
    Open,
}

#[derive(Parser, Debug)]
#[command(about = "HTTP/1.1 keep-alive load generator (closed or open loop)")]
struct Args {
    /// Full URL, e.g. http://127.0.0.1:8080/org_demo_payments/v1/sessions/introspect
    #[arg(long)]
    url: String,
    /// Extra request header `Name: value` (repeatable).
    #[arg(long = "header")]
    headers: Vec<String>,
    /// Request body: `single` ({"token":…} per token), `batch:N` ({"tokens":[N tokens]}), or
    /// `fixed` (the `--body-json` text for every request).
    #[arg(long, default_value = "single")]
    body: String,
    /// Access tokens, one a line, cycled through (single and batch bodies).
    #[arg(long)]
    tokens: Option<PathBuf>,
    /// The body of every request with `--body fixed`.
    #[arg(long)]
    body_json: Option<String>,
    #[arg(long, value_enum, default_value = "closed")]
    mode: Mode,
    /// Keep-alive connections, one task each.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Open loop: requests per second.
    #[arg(long)]
    rate: Option<f64>,
    /// Seconds measured, after the warm-up.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before measuring (not recorded).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Closed loop: send each body exactly once (one pass over the tokens), no warm-up, no
    /// duration; measures the whole pass.
    #[arg(long)]
    once: bool,
    /// Runtime worker threads of the load generator (it shares the machine with the server).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// A 2xx answer must contain this text to count as ok (e.g. `"active":true`).
    #[arg(long)]
    expect: Option<String>,
    /// Write the JSON summary here instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Per-request parts shared by every connection task.
struct Plan {
    addr: String,
    path: Uri,
    headers: HeaderMap,
    bodies: Vec<Bytes>,
    next_body: AtomicUsize,
    items_per_request: usize,
    expect: Option<Vec<u8>>,
    once: bool,
}

impl Plan {
    /// The next body in the cycle; `None` once every body was sent with `--once`.
    fn next_body(&self) -> Option<Bytes> {
        let i = self.next_body.fetch_add(1, Ordering::Relaxed);
        if self.once && i >= self.bodies.len() {
            return None;
        }
        Some(self.bodies[i % self.bodies.len()].clone())
    }

    fn request(&self, body: Bytes) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = self.path.clone();
        *req.headers_mut() = self.headers.clone();
        req
    }
}

/// What one connection task saw.
struct Tally {
    hist: Histogram<u64>,
    requests: u64,
    ok: u64,
    bad_status: BTreeMap<u16, u64>,
    unexpected_body: u64,
    errors: u64,
    late_at_end: u64,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            // 1 µs .. 10 min at 3 significant digits.
            hist: Histogram::new_with_bounds(1, 600_000_000, 3).expect("static bounds are valid"),
            requests: 0,
            ok: 0,
            bad_status: BTreeMap::new(),
            unexpected_body: 0,
            errors: 0,
            late_at_end: 0,
        }
    }

    fn record(&mut self, latency: Duration) {
        self.hist
            .saturating_record((latency.as_micros() as u64).max(1));
    }

    fn merge(&mut self, other: Tally) {
        self.hist.add(&other.hist).expect("same bounds");
        self.requests += other.requests;
        self.ok += other.ok;
        for (k, v) in other.bad_status {
            *self.bad_status.entry(k).or_default() += v;
        }
        self.unexpected_body += other.unexpected_body;
        self.errors += other.errors;
        self.late_at_end += other.late_at_end;
    }
}

enum Outcome {
    Ok,
    BadStatus(u16),
    UnexpectedBody,
}

async fn connect(addr: &str) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        // The connection ends when the sender drops or the server closes it; a failed request
        // reports the error to its task.
        let _ = conn.await;
    });
    Ok(sender)
}

/// Sends one request on `conn` (reconnecting first when it is gone) and reads the whole answer.
async fn exchange(
    plan: &Plan,
    conn: &mut Option<SendRequest<Full<Bytes>>>,
    body: Bytes,
) -> Result<Outcome, String> {
    if conn.as_ref().is_none_or(|c| c.is_closed()) {
        *conn = Some(connect(&plan.addr).await?);
    }
    let sender = conn.as_mut().expect("connected above");
    if let Err(e) = sender.ready().await {
        *conn = None;
        return Err(e.to_string());
    }
    let res = match sender.send_request(plan.request(body)).await {
        Ok(r) => r,
        Err(e) => {
            *conn = None;
            return Err(e.to_string());
        }
    };
    let status = res.status();
    let bytes = match res.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            *conn = None;
            return Err(e.to_string());
        }
    };
    if !status.is_success() {
        return Ok(Outcome::BadStatus(status.as_u16()));
    }
    if let Some(want) = &plan.expect {
        if !bytes.windows(want.len()).any(|w| w == want.as_slice()) {
            return Ok(Outcome::UnexpectedBody);
        }
    }
    Ok(Outcome::Ok)
}

fn count(tally: &mut Tally, outcome: &Result<Outcome, String>) {
    tally.requests += 1;
    match outcome {
        Ok(Outcome::Ok) => tally.ok += 1,
        Ok(Outcome::BadStatus(s)) => *tally.bad_status.entry(*s).or_default() += 1,
        Ok(Outcome::UnexpectedBody) => tally.unexpected_body += 1,
        Err(_) => tally.errors += 1,
    }
}

/// Closed loop: send, wait for the whole answer, repeat until `end`.
async fn closed_loop(plan: Arc<Plan>, measure_from: Instant, end: Option<Instant>) -> Tally {
    let mut tally = Tally::new();
    let mut conn = None;
    loop {
        if end.is_some_and(|e| Instant::now() >= e) {
            break;
        }
        let Some(body) = plan.next_body() else { break };
        let sent = Instant::now();
        let outcome = exchange(&plan, &mut conn, body).await;
        if outcome.is_err() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if sent >= measure_from {
            tally.record(sent.elapsed());
            count(&mut tally, &outcome);
        }
    }
    tally
}

/// Open loop: take the next scheduled send time from the pacer, send at (or after) it, and
/// count the latency from that intended time. Tickets still queued after `end` are not sent;
/// they are recorded with their wait so far and counted as late.
async fn open_loop(
    plan: Arc<Plan>,
    tickets: Arc<Mutex<mpsc::UnboundedReceiver<Instant>>>,
    measure_from: Instant,
    end: Instant,
) -> Tally {
    let mut tally = Tally::new();
    let mut conn = None;
    loop {
        let intended = {
            let mut rx = tickets.lock().await;
            match rx.recv().await {
                Some(t) => t,
                None => break,
            }
        };
        if Instant::now() >= end {
            if intended >= measure_from {
                tally.late_at_end += 1;
                tally.record(intended.elapsed());
            }
            continue;
        }
        let body = plan
            .next_body()
            .expect("open loop cycles through the bodies");
        let outcome = exchange(&plan, &mut conn, body).await;
        if intended >= measure_from {
            tally.record(intended.elapsed());
            count(&mut tally, &outcome);
        }
    }
    tally
}

/// The schedule of an open-loop run, on its own OS thread: nanosleep is precise to tens of
/// microseconds where tokio's timer rounds up to whole milliseconds.
fn pace(tx: mpsc::UnboundedSender<Instant>, start: Instant, end: Instant, rate: f64) {
    let interval = Duration::from_secs_f64(1.0 / rate);
    let mut next = start;
    while next < end {
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        if tx.send(next).is_err() {
            return;
        }
        next += interval;
    }
}

fn read_tokens(path: &PathBuf) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let tokens: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    if tokens.is_empty() {
        return Err(format!("{} holds no tokens", path.display()));
    }
    Ok(tokens)
}

/// Serialises every request body up front: (bodies, items per request).
fn bodies(args: &Args) -> Result<(Vec<Bytes>, usize), String> {
    if args.body == "fixed" {
        let json = args
            .body_json
            .clone()
            .ok_or("--body fixed needs --body-json")?;
        return Ok((vec![Bytes::from(json)], 1));
    }
    let tokens = read_tokens(args.tokens.as_ref().ok_or("--tokens is required")?)?;
    if args.body == "single" {
        let bodies = tokens
            .iter()
            .map(|t| Bytes::from(serde_json::json!({ "token": t }).to_string()))
            .collect();
        return Ok((bodies, 1));
    }
    let n: usize = args
        .body
        .strip_prefix("batch:")
        .and_then(|n| n.parse().ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("unknown --body {:?}", args.body))?;
    // Cycle through the tokens so every batch is full even when N does not divide the count.
    let chunks = tokens.len().div_ceil(n);
    let bodies = (0..chunks)
        .map(|c| {
            let batch: Vec<&String> = (0..n)
                .map(|j| &tokens[(c * n + j) % tokens.len()])
                .collect();
            Bytes::from(serde_json::json!({ "tokens": batch }).to_string())
        })
        .collect();
    Ok((bodies, n))
}

fn plan(args: &Args) -> Result<Plan, String> {
    let uri: Uri = args.url.parse().map_err(|e| format!("bad --url: {e}"))?;
    let authority = uri.authority().ok_or("--url needs host:port")?.clone();
    let port = authority.port_u16().unwrap_or(80);
    let addr = format!("{}:{port}", authority.host());
    let path: Uri = uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse()
        .map_err(|e| format!("bad path: {e}"))?;
    let mut headers = HeaderMap::new();
    headers.insert(
        HOST,
        HeaderValue::from_str(authority.as_str()).map_err(|e| e.to_string())?,
    );
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for h in &args.headers {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| format!("--header {h:?} is not `Name: value`"))?;
        headers.insert(
            HeaderName::from_bytes(name.trim().as_bytes()).map_err(|e| e.to_string())?,
            HeaderValue::from_str(value.trim()).map_err(|e| e.to_string())?,
        );
    }
    let (bodies, items_per_request) = bodies(args)?;
    Ok(Plan {
        addr,
        path,
        headers,
        bodies,
        next_body: AtomicUsize::new(0),
        items_per_request,
        expect: args.expect.clone().map(String::into_bytes),
        once: args.once,
    })
}

async fn run(args: &Args, plan: Arc<Plan>) -> Result<Summary, String> {
    let connections = args.connections.max(1);
    // Fail fast on an unreachable target rather than counting a run of errors.
    drop(connect(&plan.addr).await?);
    let start = Instant::now();
    let warmup = if args.once {
        Duration::ZERO
    } else {
        Duration::from_secs_f64(args.warmup)
    };
    let measure_from = start + warmup;
    let end = measure_from + Duration::from_secs_f64(args.duration);
    let mut tasks = Vec::with_capacity(connections);
    let mut pacer = None;
    match args.mode {
        Mode::Closed => {
            let end = (!args.once).then_some(end);
            for _ in 0..connections {
                tasks.push(tokio::spawn(closed_loop(plan.clone(), measure_from, end)));
            }
        }
        Mode::Open => {
            let rate = args
                .rate
                .filter(|r| *r > 0.0)
                .ok_or("--mode open needs --rate > 0")?;
            if args.once {
                return Err("--once is for the closed loop".into());
            }
            let (tx, rx) = mpsc::unbounded_channel();
            let rx = Arc::new(Mutex::new(rx));
            for _ in 0..connections {
                tasks.push(tokio::spawn(open_loop(
                    plan.clone(),
                    rx.clone(),
                    measure_from,
                    end,
                )));
            }
            pacer = Some(std::thread::spawn(move || pace(tx, start, end, rate)));
        }
    }
    let mut tally = Tally::new();
    for t in tasks {
        tally.merge(
            t.await
                .map_err(|e| format!("connection task failed: {e}"))?,
        );
    }
    if let Some(p) = pacer {
        p.join().map_err(|_| "pacer thread panicked")?;
    }
    let finished = Instant::now();
    let measured_s = if args.once {
        (finished - start).as_secs_f64()
    } else {
        args.duration
    };
    let answered = tally.requests as f64;
    Ok(Summary {
        mode: format!("{:?}", args.mode).to_lowercase(),
        body: args.body.clone(),
        connections,
        target_rate: if args.mode == Mode::Open {
            args.rate
        } else {
            None
        },
        measured_s,
        requests: tally.requests,
        ok: tally.ok,
        bad_status: tally.bad_status,
        unexpected_body: tally.unexpected_body,
        errors: tally.errors,
        late_at_end: tally.late_at_end,
        throughput_rps: answered / measured_s,
        items_per_s: answered * plan.items_per_request as f64 / measured_s,
        latency_us: Latency::of(&tally.hist),
        loadgen_cpu_s: 0.0,
        loadgen_threads: args.threads,
        wall_s: (finished - start).as_secs_f64(),
    })
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let cpu_before = proc_stats::cpu_seconds("self").unwrap_or(0.0);
    let result = plan(&args).and_then(|plan| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads.max(1))
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the runtime: {e}"))?;
        runtime.block_on(run(&args, Arc::new(plan)))
    });
    let mut summary = match result {
        Ok(s) => s,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    summary.loadgen_cpu_s = proc_stats::cpu_seconds("self").unwrap_or(0.0) - cpu_before;
    let json = serde_json::to_string_pretty(&summary).expect("a summary always serialises");
    match &args.out {
        Some(path) => {
            if let Err(e) = std::fs::write(path, json) {
                eprintln!("loadgen: cannot write {}: {e}", path.display());
                return std::process::ExitCode::FAILURE;
            }
        }
        None => println!("{json}"),
    }
    std::process::ExitCode::SUCCESS
}
