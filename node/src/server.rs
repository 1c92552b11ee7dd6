//! Starting and stopping a node. `main` parses configuration and calls `run`; tests call the
//! binary, which reports the address it bound (port 0 works).

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use commonrock_actors::crypto::secrets::sha256;
use commonrock_actors::crypto::tokens::ServerSecrets;
use commonrock_actors::metrics::EngineMetrics;
use commonrock_actors::owner::{Forwarder, NoPeers};
use commonrock_actors::sql::{SqlConfig, SqlEngine};
use commonrock_actors::store::embedded::EmbeddedStore;
use commonrock_actors::store::members::MemberStore;
use commonrock_actors::store::rows::RowStore;
use commonrock_actors::store::Store;
use commonrock_actors::{Engine, EngineConfig};
use commonrock_cluster::forward::auth::{self, ClusterKey};
use commonrock_cluster::forward::client::HttpForwarder;
use commonrock_cluster::forward::tls::ClusterTls;
use commonrock_cluster::worker::{self, ClusterMetrics, WorkerConfig, WorkerHandle};
use commonrock_cluster::{Membership, NodeId, DEFAULT_VNODES};
use tokio::net::TcpListener;
use warp::Filter;

use crate::api::{self, AppState, Surface};
use crate::config::{Config, StoreKind};
use crate::http::conn::{self, ConnConfig, Peer};
use crate::metrics::{ConnMetrics, HttpMetrics};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Secret(String),
    #[error("cannot open store: {0}")]
    Store(String),
    #[error("cannot listen on {addr}: {reason}")]
    Bind { addr: SocketAddr, reason: String },
    #[error("{0}")]
    Engine(String),
    #[error("{0}")]
    ClusterTls(String),
}

/// Where `--dev` keeps its generated secret: beside the data directory, never inside it, so
/// a copy of the store cannot mint tokens.
fn dev_secret_path(data_dir: &Path) -> PathBuf {
    let mut name = data_dir
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "data".into());
    name.push(".dev-secret");
    data_dir.with_file_name(name)
}

fn load_secrets(config: &Config) -> Result<ServerSecrets, StartError> {
    let path = match &config.secret_file {
        Some(p) => p.clone(),
        None => {
            let p = dev_secret_path(&config.data_dir);
            if !p.exists() {
                write_private(&p, &ServerSecrets::generate_file_text()).map_err(|e| {
                    StartError::Secret(format!("cannot write {}: {e}", p.display()))
                })?;
                tracing::info!(path = %p.display(), "generated a dev server secret");
            }
            p
        }
    };
    ServerSecrets::load(&path).map_err(|e| StartError::Secret(e.to_string()))
}

/// Writes a file readable by its owner only.
pub fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut f = opts.open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

pub async fn open_store(
    config: &Config,
    registry: &prometheus::Registry,
) -> Result<Arc<dyn Store>, StartError> {
    Ok(open_stores(config, registry).await?.store)
}

/// The store, the same store as the simple DB's row storage when it has one, and as the
/// cluster's membership tables when it is shared by several nodes.
pub struct Stores {
    pub store: Arc<dyn Store>,
    pub rows: Option<Arc<dyn RowStore>>,
    pub members: Option<Arc<dyn MemberStore>>,
}

pub async fn open_stores(
    config: &Config,
    registry: &prometheus::Registry,
) -> Result<Stores, StartError> {
    match config.store {
        StoreKind::Embedded => {
            let dir = config.data_dir.clone();
            let store = tokio::task::spawn_blocking(move || EmbeddedStore::open(&dir))
                .await
                .map_err(|e| StartError::Store(e.to_string()))?
                .map_err(|e| StartError::Store(e.to_string()))?;
            let store = Arc::new(store);
            store.spawn_sweeper(Duration::from_secs(60));
            let rows: Arc<dyn RowStore> = store.clone();
            Ok(Stores {
                store,
                rows: Some(rows),
                members: None,
            })
        }
        StoreKind::Scylla => {
            let opts = commonrock_cql::CqlOptions {
                nodes: config.scylla_nodes.clone(),
                keyspace: config.keyspace.clone(),
                replication: config.replication.clone(),
                consistency: config.consistency,
                request_timeout: config.store_timeout,
                connect_timeout: Duration::from_secs(5),
            };
            let store = commonrock_cql::CqlStore::connect(&opts, registry)
                .await
                .map_err(|e| StartError::Store(e.to_string()))?;
            let store = Arc::new(store);
            let rows: Arc<dyn RowStore> = store.clone();
            let members: Arc<dyn MemberStore> = store.clone();
            Ok(Stores {
                store,
                rows: Some(rows),
                members: Some(members),
            })
        }
    }
}

/// A cluster node's parts before the engine exists: its listener, identity and membership.
struct ClusterParts {
    listener: TcpListener,
    members: Arc<dyn MemberStore>,
    worker: WorkerConfig,
    key: ClusterKey,
    /// Mutual TLS on the cluster channel, when `--cluster-tls-*` are given.
    tls: Option<ClusterTls>,
}

async fn cluster_parts(
    config: &Config,
    members: Arc<dyn MemberStore>,
    secrets: &ServerSecrets,
) -> Result<ClusterParts, StartError> {
    let listener = bind(config.cluster_listen).await?;
    let bound = listener.local_addr().map_err(|e| StartError::Bind {
        addr: config.cluster_listen,
        reason: e.to_string(),
    })?;
    let advertise = config
        .advertise
        .clone()
        .unwrap_or_else(|| bound.to_string());
    // Loaded once the advertised address is known: the certificate must name its host, or
    // every peer would refuse this node.
    let tls = match &config.cluster_tls {
        Some(files) => Some(
            ClusterTls::load(files, &advertise)
                .map_err(|e| StartError::ClusterTls(e.to_string()))?,
        ),
        None => None,
    };
    let fingerprint = auth::fingerprint(secrets.derive_key(auth::FINGERPRINT_CONTEXT));
    Ok(ClusterParts {
        listener,
        members,
        tls,
        key: ClusterKey::new(secrets.derive_key(auth::KEY_CONTEXT)),
        worker: WorkerConfig {
            node_id: config.node_id.clone().unwrap_or_else(|| advertise.clone()),
            advertise,
            cluster: format!("c{fingerprint}"),
            fingerprint,
            lease: config.cluster_lease,
            poll: config.cluster_poll,
            vnodes: DEFAULT_VNODES,
        },
    })
}

/// Context of the key that signs keyset cursors (derived from the server secret, so every node
/// sharing the secret file accepts every other node's cursors).
const SQL_CURSOR_KEY_CONTEXT: &[u8] = b"commonrock/sql-cursor-key/v1";

/// hyper's read buffer and header-line cap: only heads beyond these get hyper's bare 431 and a
/// closed connection; the request path answers smaller violations of its tighter budgets
/// (`api::MAX_URI_BYTES`, `api::MAX_HEADER_BYTES`, `api::MAX_HEADER_LINES`) with JSON. Small
/// enough that a flood of unterminated heads costs little memory (64 KiB per connection).
/// 100 lines is the array hyper keeps on the stack; a larger cap made it allocate and fill
/// one of that size for every request (2 % of an introspection's CPU).
const MAX_HEAD_BYTES: usize = 64 * 1024;
const MAX_HEAD_LINES: usize = 100;

/// The simple DB's engine on the node's row store.
fn start_sql(
    config: &Config,
    rows: Arc<dyn RowStore>,
    secrets: &ServerSecrets,
    registry: &prometheus::Registry,
) -> Result<SqlEngine, StartError> {
    let sql_config = SqlConfig {
        max_rows: config.sql_max_rows,
        default_limit: SqlConfig::default().default_limit.min(config.sql_max_rows),
        statement_timeout: config.sql_statement_timeout,
        store_call_margin: config.sql_store_margin,
        threads: config.sql_threads,
        ..SqlConfig::default()
    };
    let key = secrets.derive_key(SQL_CURSOR_KEY_CONTEXT);
    SqlEngine::new(rows, sql_config, &key, registry)
        .map_err(|e| StartError::Engine(format!("cannot start the sql engine: {e}")))
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr).await.map_err(|e| StartError::Bind {
        addr,
        reason: e.to_string(),
    })
}

fn serve(
    state: Arc<AppState>,
    surface: Surface,
    listener: TcpListener,
    limits: ConnConfig,
    metrics: ConnMetrics,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    // `warp::query::raw()` rejects a request without a query string: fall back to "".
    let query = warp::filters::query::raw()
        .or(warp::any().map(String::new))
        .unify();
    let filter = warp::method()
        .and(warp::path::full())
        .and(query)
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<Peer>())
        .and(warp::body::stream())
        .then(
            move |method,
                  path: warp::path::FullPath,
                  query: String,
                  headers,
                  peer: Option<Peer>,
                  body| {
                let state = state.clone();
                async move {
                    let head = api::Incoming {
                        method,
                        path: path.as_str().to_string(),
                        query,
                        headers,
                        peer: peer.map(|p| p.0.ip()),
                    };
                    api::handle(state, surface, head, body).await
                }
            },
        )
        .map(|r: http::Response<Bytes>| r);
    let label = match surface {
        Surface::Admin => "admin",
        Surface::Main | Surface::All => "main",
    };
    tokio::spawn(conn::serve(listener, filter, limits, metrics, label, stop))
}

/// Raises the soft open-files limit to the hard one (as servers do) and returns the connection
/// limit per listener that leaves room for the store, the cluster channel and files.
fn connection_limit(configured: usize, listeners: usize) -> usize {
    const RESERVED: u64 = 256;
    let soft = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read or raise the open-files limit");
            return configured;
        }
    };
    let room = (soft.saturating_sub(RESERVED) / listeners.max(1) as u64).max(16);
    let limit = configured.min(usize::try_from(room).unwrap_or(usize::MAX));
    if limit < configured {
        tracing::warn!(
            open_files = soft,
            max_connections = limit,
            "the open-files limit caps --max-connections; raise `ulimit -n` to allow more"
        );
    }
    limit
}

/// Runs a node until `shutdown` resolves, then stops in order: not ready (for
/// `--shutdown-delay-ms`) → drain HTTP (bounded) → stop actors; the store closes when the
/// last reference drops, after its writer committed what it had.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), StartError> {
    let secrets = load_secrets(&config)?;
    let registry = prometheus::Registry::new();
    let Stores {
        store,
        rows,
        members,
    } = open_stores(&config, &registry).await?;
    let sql = match rows {
        Some(rows) => Some(Arc::new(start_sql(&config, rows, &secrets, &registry)?)),
        None => {
            tracing::warn!(
                store = store.kind(),
                "this store has no row storage yet: the SQL routes answer 503"
            );
            None
        }
    };
    let engine_metrics =
        EngineMetrics::new(&registry).map_err(|e| StartError::Engine(e.to_string()))?;
    let conn_metrics = ConnMetrics::new(&registry)
        .map_err(|e| StartError::Engine(format!("cannot register metrics: {e}")))?;
    let http_metrics =
        HttpMetrics::new(&registry).map_err(|e| StartError::Engine(e.to_string()))?;
    let listener = bind(config.listen).await?;
    let addr = listener.local_addr().map_err(|e| StartError::Bind {
        addr: config.listen,
        reason: e.to_string(),
    })?;
    let cluster = match members {
        Some(m) => Some(cluster_parts(&config, m, &secrets).await?),
        None => None,
    };
    let (node_id, membership, forwarder): (String, Arc<Membership>, Arc<dyn Forwarder>) =
        match &cluster {
            Some(c) => {
                let id = c.worker.node_id.clone();
                let m = Arc::new(Membership::joining(
                    NodeId::new(id.clone()),
                    c.worker.vnodes,
                    c.worker.poll,
                ));
                let f = HttpForwarder::new(
                    m.clone(),
                    c.key.clone(),
                    config.store_timeout * 2,
                    c.tls.as_ref().map(|t| t.client.clone()),
                );
                (id, m, Arc::new(f))
            }
            None => {
                let id = config.node_id.clone().unwrap_or_else(|| addr.to_string());
                let m = Arc::new(Membership::single(NodeId::new(id.clone())));
                (id, m, Arc::new(NoPeers))
            }
        };
    let engine = Engine::start(
        EngineConfig {
            shards: config.shards,
            session_cache: config.session_cache,
            argon2_threads: config.argon2_threads,
            argon2_queue: config.argon2_queue,
            store_timeout: config.store_timeout,
            // A shard handler may make two store calls in a row (a session and its index).
            call_timeout: config.store_timeout * 2 + Duration::from_millis(500),
            portal_idle_s: config.portal_idle_timeout_s,
            portal_lifetime_s: config.portal_session_lifetime_s,
        },
        store,
        secrets,
        membership.clone(),
        forwarder,
        engine_metrics,
    )
    .await
    .map_err(|e| StartError::Engine(e.to_string()))?;
    if let Some(sql) = &sql {
        sql.set_announcer(engine.clone());
    }
    let admin_listener = match config.admin_listen {
        Some(a) => Some(bind(a).await?),
        None => None,
    };
    let state = Arc::new(AppState {
        engine: engine.clone(),
        metrics: http_metrics,
        registry,
        trusted_proxies: config.trusted_proxies.clone(),
        bootstrap_admin_hash: config.admin_token.as_ref().map(|t| sha256(t.as_bytes())),
        admin_cidrs: config.admin_cidrs.clone(),
        fault_injection: config.fault_injection,
        body_timeout: config.http_body_timeout,
        access_log: config.access_log,
        // A browser keeps a `Secure` cookie only from https (or localhost), so plain-HTTP
        // development on loopback is the one place it is left out.
        cookie_secure: !(config.dev && addr.ip().is_loopback()),
        ready: false.into(),
        openapi_json: Bytes::from(crate::openapi::document()),
        sql,
        membership: membership.clone(),
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut cluster_worker: Option<WorkerHandle> = None;
    let mut cluster_server = None;
    if let Some(c) = cluster {
        let cluster_addr = c.listener.local_addr().ok();
        let metrics =
            ClusterMetrics::new(&state.registry).map_err(|e| StartError::Engine(e.to_string()))?;
        let on_change = {
            let engine = engine.clone();
            Arc::new(move || engine.ownership_changed())
        };
        cluster_server = Some(tokio::spawn(commonrock_cluster::forward::server::serve(
            c.listener,
            engine.clone(),
            c.key,
            c.tls.as_ref().map(|t| t.server.clone()),
            stop_rx.clone(),
        )));
        let handle = worker::start(
            c.members,
            membership.clone(),
            c.worker.clone(),
            metrics,
            on_change,
        )
        .await
        .map_err(|e| StartError::Engine(e.to_string()))?;
        cluster_worker = Some(handle);
        if let Some(a) = cluster_addr {
            println!("commonrock cluster listening on {a}");
        }
        tracing::info!(node_id = %c.worker.node_id, advertise = %c.worker.advertise, tls = c.tls.is_some(), "joining the cluster");
    }
    if config.dev {
        let creds = crate::dev::bootstrap(&engine, config.admin_token.is_none())
            .await
            .map_err(|e| StartError::Engine(e.to_string()))?;
        print!("{}", crate::dev::banner(&format!("http://{addr}"), &creds));
    }
    let (main_surface, admin_addr) = match &admin_listener {
        Some(l) => (Surface::Main, l.local_addr().ok()),
        None => (Surface::All, None),
    };
    let limits = ConnConfig {
        max_connections: connection_limit(
            config.max_connections,
            1 + usize::from(admin_listener.is_some()),
        ),
        header_timeout: config.http_header_timeout,
        idle_timeout: config.http_idle_timeout,
        max_head_bytes: MAX_HEAD_BYTES,
        max_headers: MAX_HEAD_LINES,
    };
    let mut servers = vec![serve(
        state.clone(),
        main_surface,
        listener,
        limits.clone(),
        conn_metrics.clone(),
        stop_rx.clone(),
    )];
    if let Some(l) = admin_listener {
        servers.push(serve(
            state.clone(),
            Surface::Admin,
            l,
            limits,
            conn_metrics,
            stop_rx.clone(),
        ));
    }
    let ticker = {
        let engine = engine.clone();
        tokio::spawn(async move {
            // Tenant configuration is polled every second (the revocation bound for clients
            // and keys changed on another node); shard housekeeping runs every fifth tick.
            let mut every = tokio::time::interval(Duration::from_secs(1));
            let mut n: u64 = 0;
            loop {
                every.tick().await;
                engine.poll_tenants();
                n += 1;
                if n.is_multiple_of(5) {
                    engine.tick();
                }
            }
        })
    };
    if cluster_worker.is_some() {
        // Announce the node only once it owns its share: until then its keys would wait or
        // answer 503. Bounded: a store that is slow to answer leaves /readyz red instead.
        let joined = membership
            .wait_for(Duration::from_secs(30), |m| m.joined())
            .await;
        if !joined {
            tracing::warn!(
                "not joined to the ring after 30 s; serving, /readyz stays red until it is"
            );
        }
    }
    state.ready.store(true, Ordering::Release);
    // The harness and operators read this line to learn the bound address (port 0 works).
    println!("commonrock listening on http://{addr}");
    if let Some(a) = admin_addr {
        println!("commonrock admin listening on http://{a}");
    }
    tracing::info!(%addr, node_id, store = engine.store_kind(), sql_max_rows = config.sql_max_rows, "node ready");

    shutdown.await;
    // Not ready first, while still serving, so the load balancer stops sending new requests
    // before the listeners close; then drain in-flight requests (bounded); then the actors.
    tracing::info!(
        delay_ms = config.shutdown_delay.as_millis() as u64,
        "shutting down: not ready"
    );
    state.ready.store(false, Ordering::Release);
    if let Some(w) = &cluster_worker {
        // Leave while still serving: peers stop routing here before the listeners close.
        let left = w.leave(Duration::from_secs(15)).await;
        tracing::info!(left, "left the ring");
    }
    tokio::time::sleep(config.shutdown_delay).await;
    tracing::info!("draining requests");
    let _ = stop_tx.send(true);
    for mut s in servers {
        if tokio::time::timeout(Duration::from_secs(10), &mut s)
            .await
            .is_err()
        {
            tracing::warn!("drain timed out; closing remaining connections");
            s.abort();
        }
    }
    ticker.abort();
    if let Some(s) = cluster_server {
        let _ = tokio::time::timeout(Duration::from_secs(5), s).await;
    }
    if let Some(w) = cluster_worker {
        w.stop().await;
    }
    engine.stop();
    tracing::info!("stopped");
    Ok(())
}

/// SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
