//! Configuration: flags, then `COMMONROCK_*` environment variables (clap reads both), then an
//! optional TOML file, then defaults. Validated once at start with messages that name the
//! setting. The names of SPEC §8's table are fixed: deployment scripts depend on them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use commonrock_cluster::forward::tls::TlsFiles;
use ipnet::IpNet;
use serde::Deserialize;

#[derive(Parser, Debug)]
#[command(
    name = "commonrock",
    version,
    about = "Authentication, sessions and a simple database as a service"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a node.
    Serve(Box<ServeArgs>),
    /// Offline admin helpers (run while the node is stopped: the embedded store is exclusive).
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Server-secret helpers.
    #[command(subcommand)]
    Secret(SecretCommand),
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Mint an admin API token into the store and print it once.
    MintToken {
        /// Data directory of the stopped node (its embedded store).
        #[arg(long, env = "COMMONROCK_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
        /// A name for the token, shown in `GET /admin/v1/admin-tokens`.
        #[arg(long, default_value = "cli")]
        name: String,
    },
    /// Create a portal admin user in a STOPPED node's embedded store; the password is read
    /// from standard input (one line). A running node takes `POST /admin/v1/admin-users`.
    CreateUser {
        /// Data directory of the stopped node (its embedded store).
        #[arg(long, env = "COMMONROCK_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
        /// The admin user's email (stored in lower case).
        #[arg(long)]
        email: String,
    },
    /// Benchmark seeding: write N live sessions straight into the store of a STOPPED node
    /// (or a CQL keyspace) and their access tokens to a file. Never reachable over HTTP.
    SeedSessions(Box<SeedArgs>),
}

#[derive(Args, Debug)]
pub struct SeedArgs {
    /// Slug of an existing project.
    #[arg(long)]
    pub project: String,
    #[arg(long, default_value_t = 100_000)]
    pub count: usize,
    /// End users the sessions are spread over (created if absent).
    #[arg(long, default_value_t = 1_000)]
    pub users: usize,
    /// File receiving one access token per line.
    #[arg(long)]
    pub out: PathBuf,
    /// Store and secret settings, exactly as for `serve`.
    #[command(flatten)]
    pub node: ServeArgs,
}

#[derive(Subcommand, Debug)]
pub enum SecretCommand {
    /// Write a new server-secret file (refuses to overwrite one).
    Generate {
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    Embedded,
    Scylla,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Args, Debug, Default)]
pub struct ServeArgs {
    /// Demo mode: generates a server secret if none is given, creates the demo org, project,
    /// public client and secret key, and prints their credentials once.
    #[arg(long)]
    pub dev: bool,
    /// TOML file with any of the settings below (flags and environment win over it).
    #[arg(long, env = "COMMONROCK_CONFIG")]
    pub config: Option<PathBuf>,
    #[arg(long, env = "COMMONROCK_LISTEN")]
    pub listen: Option<SocketAddr>,
    #[arg(long, env = "COMMONROCK_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    #[arg(long, env = "COMMONROCK_STORE")]
    pub store: Option<StoreKind>,
    #[arg(long, env = "COMMONROCK_SCYLLA_NODES")]
    pub scylla_nodes: Option<String>,
    #[arg(long, env = "COMMONROCK_KEYSPACE")]
    pub keyspace: Option<String>,
    /// Keyspace replication when the node creates it: `SimpleStrategy:1` or
    /// `NetworkTopologyStrategy:dc1=3[,dc2=3]`.
    #[arg(long, env = "COMMONROCK_REPLICATION")]
    pub replication: Option<String>,
    /// Consistency of CQL reads and writes (LWTs use the matching serial consistency).
    #[arg(long, env = "COMMONROCK_CONSISTENCY")]
    pub consistency: Option<String>,
    #[arg(long, env = "COMMONROCK_SECRET_FILE")]
    pub secret_file: Option<PathBuf>,
    /// Comma-separated CIDRs of load balancers whose X-Forwarded-For is believed.
    #[arg(long, env = "COMMONROCK_TRUSTED_PROXIES")]
    pub trusted_proxies: Option<String>,
    /// Serve the admin API and /metrics on this address instead of the main listener.
    #[arg(long, env = "COMMONROCK_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,
    /// Comma-separated CIDRs allowed to call the admin API and /metrics.
    #[arg(long, env = "COMMONROCK_ADMIN_CIDRS")]
    pub admin_cidrs: Option<String>,
    /// This node's id on the ring (default: its advertised cluster address). Keep it across
    /// restarts so a restarted node rejoins with the same share of keys.
    #[arg(long, env = "COMMONROCK_NODE_ID")]
    pub node_id: Option<String>,
    /// Node-to-node listener of a cluster node (`--store scylla`) [default: 127.0.0.1:0, an
    /// ephemeral port]. Never serves the public or admin API; keep it on a private network.
    #[arg(long, env = "COMMONROCK_CLUSTER_LISTEN")]
    pub cluster_listen: Option<SocketAddr>,
    /// Address peers dial for this node's cluster listener [default: the bound cluster-listen
    /// address; required when that is a wildcard address].
    #[arg(long, env = "COMMONROCK_ADVERTISE")]
    pub advertise: Option<String>,
    /// Lease of this node's ownership in milliseconds: a node that cannot renew its heartbeat
    /// within it stops answering as owner; peers take its keys over after lease + poll
    /// [default: 4000].
    #[arg(long, env = "COMMONROCK_CLUSTER_LEASE_MS")]
    pub cluster_lease_ms: Option<u64>,
    /// How often the membership is read and the heartbeat renewed, in milliseconds
    /// [default: 250].
    #[arg(long, env = "COMMONROCK_CLUSTER_POLL_MS")]
    pub cluster_poll_ms: Option<u64>,
    /// PEM certificate chain of this node for the cluster channel (mutual TLS; with
    /// --cluster-tls-key and --cluster-tls-ca, all three or none) [default: none, the channel
    /// is plain HTTP authenticated by the server secret].
    #[arg(long, env = "COMMONROCK_CLUSTER_TLS_CERT")]
    pub cluster_tls_cert: Option<PathBuf>,
    /// PEM private key of --cluster-tls-cert (PKCS#8, RSA or SEC1 EC) [default: none].
    #[arg(long, env = "COMMONROCK_CLUSTER_TLS_KEY")]
    pub cluster_tls_key: Option<PathBuf>,
    /// PEM CA bundle that signs every node's cluster certificate; peers are accepted only with
    /// a certificate it signed [default: none].
    #[arg(long, env = "COMMONROCK_CLUSTER_TLS_CA")]
    pub cluster_tls_ca: Option<PathBuf>,
    /// Session shard actors on this node (default: 4 per core).
    #[arg(long, env = "COMMONROCK_SHARDS")]
    pub shards: Option<usize>,
    /// Sessions cached on this node across all shards.
    #[arg(long, env = "COMMONROCK_SESSION_CACHE")]
    pub session_cache: Option<usize>,
    /// Argon2 worker threads (at most one per core).
    #[arg(long, env = "COMMONROCK_ARGON2_THREADS")]
    pub argon2_threads: Option<usize>,
    /// Argon2 jobs allowed to wait; beyond it requests get 503 at once.
    #[arg(long, env = "COMMONROCK_ARGON2_QUEUE")]
    pub argon2_queue: Option<usize>,
    /// Deadline of one store call in milliseconds.
    #[arg(long, env = "COMMONROCK_STORE_TIMEOUT_MS")]
    pub store_timeout_ms: Option<u64>,
    /// Deadline of one SQL statement (sql/execute) in milliseconds.
    #[arg(long, env = "COMMONROCK_SQL_STATEMENT_TIMEOUT_MS")]
    pub sql_statement_timeout_ms: Option<u64>,
    /// How long a store call may outlive its statement's deadline, in milliseconds: CREATE
    /// INDEX on a table with rows waits statement timeout + this before its backfill.
    #[arg(long, env = "COMMONROCK_SQL_STORE_MARGIN_MS")]
    pub sql_store_margin_ms: Option<u64>,
    /// Threads that run SQL statements. A statement holds its thread while it waits for the
    /// store, so ScyllaDB, a network round trip per read, needs many more than the embedded
    /// store, whose reads are local [default: one per core on the embedded store, 32 on
    /// ScyllaDB]
    #[arg(long, env = "COMMONROCK_SQL_THREADS")]
    pub sql_threads: Option<usize>,
    #[arg(long, env = "COMMONROCK_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// How long /readyz is red before the listeners close on SIGTERM (load balancers need a
    /// health-check interval or two to stop routing here).
    #[arg(long, env = "COMMONROCK_SHUTDOWN_DELAY_MS")]
    pub shutdown_delay_ms: Option<u64>,
    /// Time from a request's first byte until its head (request line and headers) is complete,
    /// in milliseconds; a slower client is disconnected [default: 10000].
    #[arg(long, env = "COMMONROCK_HTTP_HEADER_TIMEOUT_MS")]
    pub http_header_timeout_ms: Option<u64>,
    /// Time a request body may take to arrive in full, in milliseconds; then 408
    /// `request_timeout` [default: 30000].
    #[arg(long, env = "COMMONROCK_HTTP_BODY_TIMEOUT_MS")]
    pub http_body_timeout_ms: Option<u64>,
    /// An idle keep-alive connection is closed after this many milliseconds; keep it above the
    /// load balancer's upstream keep-alive (nginx: 60 s) so the balancer closes first
    /// [default: 75000].
    #[arg(long, env = "COMMONROCK_HTTP_IDLE_TIMEOUT_MS")]
    pub http_idle_timeout_ms: Option<u64>,
    /// A portal session ends after this many seconds without a request [default: 1800].
    #[arg(long, env = "COMMONROCK_PORTAL_IDLE_TIMEOUT_S")]
    pub portal_idle_timeout_s: Option<u32>,
    /// A portal session ends this many seconds after sign-in however busy [default: 43200].
    #[arg(long, env = "COMMONROCK_PORTAL_SESSION_LIFETIME_S")]
    pub portal_session_lifetime_s: Option<u32>,
    /// Open connections per listener; at the limit the longest-idle connection is closed to
    /// make room. Capped below the open-files limit, which the node raises to its hard limit
    /// at start [default: 10000].
    #[arg(long, env = "COMMONROCK_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// One `info` line per request (request id, method, route template, status, time); `off`
    /// leaves only the metrics [default: on].
    #[arg(long, env = "COMMONROCK_ACCESS_LOG", value_parser = clap::builder::BoolishValueParser::new())]
    pub access_log: Option<bool>,
    /// Enables fault-injection admin routes. For tests only; never in production.
    // Boolish: the variable is set as `=1` (or yes/on/true); clap's default bool parser
    // accepts only true/false and refused to start the node on `=1`.
    #[arg(
        long,
        env = "COMMONROCK_FAULT_INJECTION",
        hide = true,
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub fault_injection: bool,
}

/// The TOML file's keys: the flag names with underscores.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    store: Option<StoreKind>,
    scylla_nodes: Option<String>,
    keyspace: Option<String>,
    replication: Option<String>,
    consistency: Option<String>,
    secret_file: Option<PathBuf>,
    trusted_proxies: Option<String>,
    admin_listen: Option<SocketAddr>,
    admin_cidrs: Option<String>,
    node_id: Option<String>,
    cluster_listen: Option<SocketAddr>,
    advertise: Option<String>,
    cluster_lease_ms: Option<u64>,
    cluster_poll_ms: Option<u64>,
    cluster_tls_cert: Option<PathBuf>,
    cluster_tls_key: Option<PathBuf>,
    cluster_tls_ca: Option<PathBuf>,
    shards: Option<usize>,
    session_cache: Option<usize>,
    argon2_threads: Option<usize>,
    argon2_queue: Option<usize>,
    store_timeout_ms: Option<u64>,
    sql_statement_timeout_ms: Option<u64>,
    sql_store_margin_ms: Option<u64>,
    sql_threads: Option<usize>,
    log_format: Option<LogFormat>,
    shutdown_delay_ms: Option<u64>,
    sql_max_rows: Option<u32>,
    http_header_timeout_ms: Option<u64>,
    http_body_timeout_ms: Option<u64>,
    http_idle_timeout_ms: Option<u64>,
    max_connections: Option<usize>,
    access_log: Option<bool>,
    portal_idle_timeout_s: Option<u32>,
    portal_session_lifetime_s: Option<u32>,
}

/// The validated settings a node runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub dev: bool,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub store: StoreKind,
    pub scylla_nodes: Vec<String>,
    pub keyspace: String,
    pub replication: commonrock_cql::Replication,
    pub consistency: commonrock_cql::options::Consistency,
    pub secret_file: Option<PathBuf>,
    pub trusted_proxies: Vec<IpNet>,
    pub admin_listen: Option<SocketAddr>,
    pub admin_cidrs: Vec<IpNet>,
    pub node_id: Option<String>,
    pub cluster_listen: SocketAddr,
    pub advertise: Option<String>,
    pub cluster_lease: Duration,
    pub cluster_poll: Duration,
    /// `--cluster-tls-cert/-key/-ca`: the cluster channel is mutual TLS when set.
    pub cluster_tls: Option<TlsFiles>,
    pub shards: usize,
    pub session_cache: usize,
    pub argon2_threads: usize,
    pub argon2_queue: usize,
    pub store_timeout: Duration,
    pub log_format: LogFormat,
    pub shutdown_delay: Duration,
    pub http_header_timeout: Duration,
    pub http_body_timeout: Duration,
    pub http_idle_timeout: Duration,
    pub max_connections: usize,
    pub access_log: bool,
    pub portal_idle_timeout_s: u32,
    pub portal_session_lifetime_s: u32,
    pub fault_injection: bool,
    /// `COMMONROCK_ADMIN_TOKEN`: the bootstrap admin token (kept only to hash it at start).
    pub admin_token: Option<String>,
    /// `SQL_MAX_ROWS`: the largest page a SQL execution may ask for.
    pub sql_max_rows: u32,
    pub sql_statement_timeout: Duration,
    pub sql_store_margin: Duration,
    pub sql_threads: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("invalid setting {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
}

fn invalid(name: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        reason: reason.into(),
    }
}

fn cidr_list(name: &'static str, value: Option<String>) -> Result<Vec<IpNet>, ConfigError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| invalid(name, format!("{s:?} is not a CIDR")))
        })
        .collect()
}

/// The cluster TLS files: all three or none, so a node is never half-configured (a
/// certificate without the CA would trust nobody, a CA without a certificate would be refused).
fn cluster_tls(
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    ca: Option<PathBuf>,
) -> Result<Option<TlsFiles>, ConfigError> {
    match (cert, key, ca) {
        (None, None, None) => Ok(None),
        (Some(cert), Some(key), Some(ca)) => Ok(Some(TlsFiles { cert, key, ca })),
        (cert, key, ca) => {
            let flags = [
                ("--cluster-tls-cert", cert.is_some()),
                ("--cluster-tls-key", key.is_some()),
                ("--cluster-tls-ca", ca.is_some()),
            ];
            let named = |given: bool| -> Vec<&'static str> {
                flags.iter().filter(|f| f.1 == given).map(|f| f.0).collect()
            };
            let (missing, given) = (named(false), named(true));
            let also = match missing.get(1) {
                Some(other) => format!(" (and so is {other})"),
                None => String::new(),
            };
            Err(invalid(
                missing.first().copied().unwrap_or("--cluster-tls-cert"),
                format!(
                    "required with {}{also}: give --cluster-tls-cert, --cluster-tls-key and \
                     --cluster-tls-ca together, or none of them for a plain cluster channel",
                    given.join(" and ")
                ),
            ))
        }
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let err = |reason: String| ConfigError::File {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    toml::from_str(&text).map_err(|e| err(e.to_string()))
}

impl Config {
    pub fn from_args(args: ServeArgs) -> Result<Config, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let sql_max_rows = match std::env::var("SQL_MAX_ROWS") {
            Ok(v) => v
                .trim()
                .parse::<u32>()
                .map_err(|_| invalid("SQL_MAX_ROWS", format!("{v:?} is not a number")))?,
            Err(_) => file.sql_max_rows.unwrap_or(1000),
        };
        if !(1..=100_000).contains(&sql_max_rows) {
            return Err(invalid("SQL_MAX_ROWS", "must be between 1 and 100000"));
        }
        let admin_token = std::env::var("COMMONROCK_ADMIN_TOKEN")
            .ok()
            .filter(|t| !t.is_empty());
        if admin_token.as_ref().is_some_and(|t| t.len() < 32) {
            return Err(invalid(
                "COMMONROCK_ADMIN_TOKEN",
                "must be at least 32 characters (use `commonrock admin mint-token` or a random string)",
            ));
        }
        let store_timeout = Duration::from_millis(
            args.store_timeout_ms
                .or(file.store_timeout_ms)
                .unwrap_or(2000),
        );
        let cluster_tls = cluster_tls(
            args.cluster_tls_cert.or(file.cluster_tls_cert),
            args.cluster_tls_key.or(file.cluster_tls_key),
            args.cluster_tls_ca.or(file.cluster_tls_ca),
        )?;
        let config = Config {
            dev: args.dev,
            listen: args
                .listen
                .or(file.listen)
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080))),
            data_dir: args
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("./data")),
            store: args.store.or(file.store).unwrap_or(StoreKind::Embedded),
            scylla_nodes: args
                .scylla_nodes
                .or(file.scylla_nodes)
                .unwrap_or_else(|| "127.0.0.1:9042".into())
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            keyspace: args
                .keyspace
                .or(file.keyspace)
                .unwrap_or_else(|| "commonrock".into()),
            replication: commonrock_cql::Replication::parse(
                &args
                    .replication
                    .or(file.replication)
                    .unwrap_or_else(|| "SimpleStrategy:1".into()),
            )
            .map_err(|e| invalid("--replication", e))?,
            consistency: commonrock_cql::options::parse_consistency(
                &args
                    .consistency
                    .or(file.consistency)
                    .unwrap_or_else(|| "LOCAL_QUORUM".into()),
            )
            .map_err(|e| invalid("--consistency", e))?,
            secret_file: args.secret_file.or(file.secret_file),
            trusted_proxies: cidr_list(
                "--trusted-proxies",
                args.trusted_proxies.or(file.trusted_proxies),
            )?,
            admin_listen: args.admin_listen.or(file.admin_listen),
            admin_cidrs: cidr_list("--admin-cidrs", args.admin_cidrs.or(file.admin_cidrs))?,
            node_id: args.node_id.or(file.node_id),
            cluster_listen: args
                .cluster_listen
                .or(file.cluster_listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0))),
            advertise: args.advertise.or(file.advertise),
            cluster_lease: Duration::from_millis(
                args.cluster_lease_ms
                    .or(file.cluster_lease_ms)
                    .unwrap_or(4000),
            ),
            cluster_poll: Duration::from_millis(
                args.cluster_poll_ms.or(file.cluster_poll_ms).unwrap_or(250),
            ),
            cluster_tls,
            shards: args.shards.or(file.shards).unwrap_or(cores * 4),
            session_cache: args
                .session_cache
                .or(file.session_cache)
                .unwrap_or(1_000_000),
            argon2_threads: args.argon2_threads.or(file.argon2_threads).unwrap_or(cores),
            argon2_queue: args.argon2_queue.or(file.argon2_queue).unwrap_or(4096),
            store_timeout,
            log_format: args
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Text),
            shutdown_delay: Duration::from_millis(
                args.shutdown_delay_ms
                    .or(file.shutdown_delay_ms)
                    .unwrap_or(1000),
            ),
            http_header_timeout: Duration::from_millis(
                args.http_header_timeout_ms
                    .or(file.http_header_timeout_ms)
                    .unwrap_or(10_000),
            ),
            http_body_timeout: Duration::from_millis(
                args.http_body_timeout_ms
                    .or(file.http_body_timeout_ms)
                    .unwrap_or(30_000),
            ),
            http_idle_timeout: Duration::from_millis(
                args.http_idle_timeout_ms
                    .or(file.http_idle_timeout_ms)
                    .unwrap_or(75_000),
            ),
            max_connections: args
                .max_connections
                .or(file.max_connections)
                .unwrap_or(10_000),
            access_log: args.access_log.or(file.access_log).unwrap_or(true),
            portal_idle_timeout_s: args
                .portal_idle_timeout_s
                .or(file.portal_idle_timeout_s)
                .unwrap_or(1800),
            portal_session_lifetime_s: args
                .portal_session_lifetime_s
                .or(file.portal_session_lifetime_s)
                .unwrap_or(43_200),
            fault_injection: args.fault_injection,
            admin_token,
            sql_max_rows,
            sql_statement_timeout: Duration::from_millis(
                args.sql_statement_timeout_ms
                    .or(file.sql_statement_timeout_ms)
                    .unwrap_or(5000),
            ),
            sql_store_margin: match args.sql_store_margin_ms.or(file.sql_store_margin_ms) {
                Some(ms) => Duration::from_millis(ms),
                // Past the statement's deadline a store call in flight still runs up to the
                // store timeout; one more second covers the client's own retries and clocks.
                None => store_timeout.max(Duration::from_secs(2)) + Duration::from_secs(1),
            },
            sql_threads: args.sql_threads.or(file.sql_threads).unwrap_or(
                match args.store.or(file.store).unwrap_or(StoreKind::Embedded) {
                    StoreKind::Scylla => 32,
                    StoreKind::Embedded => cores,
                },
            ),
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.secret_file.is_none() && !self.dev {
            return Err(invalid(
                "--secret-file",
                "required unless --dev (create one with `commonrock secret generate --out <path>`)",
            ));
        }
        if self.cluster_poll < Duration::from_millis(20)
            || self.cluster_poll > Duration::from_secs(5)
        {
            return Err(invalid("--cluster-poll-ms", "must be between 20 and 5000"));
        }
        if self.cluster_lease < self.cluster_poll * 4
            || self.cluster_lease > Duration::from_secs(60)
        {
            return Err(invalid(
                "--cluster-lease-ms",
                "must be at least 4 polls (--cluster-poll-ms) and at most 60000",
            ));
        }
        if self.advertise.is_none() && self.cluster_listen.ip().is_unspecified() {
            return Err(invalid(
                "--advertise",
                "required when --cluster-listen is a wildcard address: give the host:port peers dial",
            ));
        }
        for (name, value) in [
            ("--http-header-timeout-ms", self.http_header_timeout),
            ("--http-body-timeout-ms", self.http_body_timeout),
            ("--http-idle-timeout-ms", self.http_idle_timeout),
        ] {
            if value < Duration::from_millis(100) || value > Duration::from_secs(3600) {
                return Err(invalid(name, "must be between 100 and 3600000"));
            }
        }
        if !(2..=86_400).contains(&self.portal_idle_timeout_s) {
            return Err(invalid(
                "--portal-idle-timeout-s",
                "must be between 2 and 86400",
            ));
        }
        if self.portal_session_lifetime_s < self.portal_idle_timeout_s
            || self.portal_session_lifetime_s > 30 * 86_400
        {
            return Err(invalid(
                "--portal-session-lifetime-s",
                "must be at least --portal-idle-timeout-s and at most 2592000 (30 days)",
            ));
        }
        if !(16..=1_000_000).contains(&self.max_connections) {
            return Err(invalid(
                "--max-connections",
                "must be between 16 and 1000000",
            ));
        }
        if self.shutdown_delay > Duration::from_secs(300) {
            return Err(invalid("--shutdown-delay-ms", "must be at most 300000"));
        }
        if !(1..=1024).contains(&self.shards) {
            return Err(invalid("--shards", "must be between 1 and 1024"));
        }
        if !(1..=1024).contains(&self.sql_threads) {
            return Err(invalid("--sql-threads", "must be between 1 and 1024"));
        }
        if self.argon2_threads == 0 {
            return Err(invalid("--argon2-threads", "must be at least 1"));
        }
        if !(1..=1_000_000).contains(&self.argon2_queue) {
            return Err(invalid("--argon2-queue", "must be between 1 and 1000000"));
        }
        if self.session_cache == 0 {
            return Err(invalid("--session-cache", "must be at least 1"));
        }
        if self.store_timeout.is_zero() || self.store_timeout > Duration::from_secs(60) {
            return Err(invalid("--store-timeout-ms", "must be between 1 and 60000"));
        }
        if self.sql_statement_timeout < Duration::from_millis(100)
            || self.sql_statement_timeout > Duration::from_secs(600)
        {
            return Err(invalid(
                "--sql-statement-timeout-ms",
                "must be between 100 and 600000",
            ));
        }
        if self.sql_store_margin > Duration::from_secs(600) {
            return Err(invalid("--sql-store-margin-ms", "must be at most 600000"));
        }
        let ks = &self.keyspace;
        if ks.is_empty()
            || ks.len() > 48
            || !ks.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(invalid(
                "--keyspace",
                "must be 1-48 letters, digits or underscores",
            ));
        }
        if self.store == StoreKind::Scylla && self.scylla_nodes.is_empty() {
            return Err(invalid("--scylla-nodes", "needs at least one host:port"));
        }
        if self.store != StoreKind::Scylla && self.cluster_tls.is_some() {
            return Err(invalid(
                "--cluster-tls-cert",
                "only a cluster node (--store scylla) has a cluster channel: remove \
                 --cluster-tls-cert, --cluster-tls-key and --cluster-tls-ca, or add --store scylla",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_file_is_required_outside_dev() {
        let e = Config::from_args(ServeArgs::default()).expect_err("no secret");
        assert!(e.to_string().contains("--secret-file"));
        let c = Config::from_args(ServeArgs {
            dev: true,
            ..Default::default()
        })
        .expect("dev needs no secret file");
        assert_eq!(c.listen, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.keyspace, "commonrock");
    }

    #[test]
    fn a_toml_file_fills_what_flags_leave_open() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("commonrock.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9999\"\nkeyspace = \"from_file\"\nshards = 3\n",
        )
        .expect("write");
        let c = Config::from_args(ServeArgs {
            dev: true,
            config: Some(path.clone()),
            keyspace: Some("from_flag".into()),
            ..Default::default()
        })
        .expect("valid");
        assert_eq!(c.listen, SocketAddr::from(([127, 0, 0, 1], 9999)));
        assert_eq!(c.keyspace, "from_flag", "flags win over the file");
        assert_eq!(c.shards, 3);
        std::fs::write(&path, "lisen = \"x\"\n").expect("write");
        let e = Config::from_args(ServeArgs {
            dev: true,
            config: Some(path),
            ..Default::default()
        })
        .expect_err("unknown key");
        assert!(e.to_string().contains("lisen"), "{e}");
    }

    #[test]
    fn sql_timeouts_default_and_validate() {
        let dev = || ServeArgs {
            dev: true,
            ..Default::default()
        };
        let c = Config::from_args(dev()).expect("defaults");
        assert_eq!(c.sql_statement_timeout, Duration::from_secs(5));
        assert_eq!(c.sql_store_margin, Duration::from_secs(3));
        let c = Config::from_args(ServeArgs {
            store_timeout_ms: Some(5000),
            sql_statement_timeout_ms: Some(1500),
            ..dev()
        })
        .expect("valid");
        assert_eq!(c.sql_statement_timeout, Duration::from_millis(1500));
        assert_eq!(
            c.sql_store_margin,
            Duration::from_secs(6),
            "store timeout + 1 s"
        );
        let c = Config::from_args(ServeArgs {
            sql_store_margin_ms: Some(250),
            ..dev()
        })
        .expect("valid");
        assert_eq!(c.sql_store_margin, Duration::from_millis(250));
        let e = Config::from_args(ServeArgs {
            sql_statement_timeout_ms: Some(50),
            ..dev()
        })
        .expect_err("too short");
        assert!(e.to_string().contains("--sql-statement-timeout-ms"), "{e}");
    }

    #[test]
    fn bad_cidrs_are_named() {
        let e = Config::from_args(ServeArgs {
            dev: true,
            trusted_proxies: Some("10.0.0.0/8, nope".into()),
            ..Default::default()
        })
        .expect_err("bad cidr");
        assert!(e.to_string().contains("--trusted-proxies"));
        assert!(e.to_string().contains("nope"));
    }

    #[test]
    fn cluster_tls_takes_all_three_files_on_a_cluster_node() {
        let cluster = || ServeArgs {
            dev: true,
            store: Some(StoreKind::Scylla),
            ..Default::default()
        };
        let c = Config::from_args(cluster()).expect("no TLS");
        assert_eq!(c.cluster_tls, None);
        let c = Config::from_args(ServeArgs {
            cluster_tls_cert: Some("n.crt".into()),
            cluster_tls_key: Some("n.key".into()),
            cluster_tls_ca: Some("ca.crt".into()),
            ..cluster()
        })
        .expect("all three");
        assert_eq!(
            c.cluster_tls,
            Some(TlsFiles {
                cert: "n.crt".into(),
                key: "n.key".into(),
                ca: "ca.crt".into()
            })
        );

        let e = Config::from_args(ServeArgs {
            cluster_tls_cert: Some("n.crt".into()),
            cluster_tls_ca: Some("ca.crt".into()),
            ..cluster()
        })
        .expect_err("no key")
        .to_string();
        assert!(
            e.starts_with("invalid setting --cluster-tls-key: required with --cluster-tls-cert and --cluster-tls-ca"),
            "{e}"
        );
        let e = Config::from_args(ServeArgs {
            cluster_tls_ca: Some("ca.crt".into()),
            ..cluster()
        })
        .expect_err("only the CA")
        .to_string();
        assert!(
            e.starts_with("invalid setting --cluster-tls-cert: required with --cluster-tls-ca (and so is --cluster-tls-key)"),
            "{e}"
        );

        let e = Config::from_args(ServeArgs {
            dev: true,
            cluster_tls_cert: Some("n.crt".into()),
            cluster_tls_key: Some("n.key".into()),
            cluster_tls_ca: Some("ca.crt".into()),
            ..Default::default()
        })
        .expect_err("embedded has no cluster channel")
        .to_string();
        assert!(e.contains("--store scylla"), "{e}");

        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("commonrock.toml");
        std::fs::write(
            &path,
            "store = \"scylla\"\ncluster_tls_cert = \"/etc/n.crt\"\ncluster_tls_key = \"/etc/n.key\"\ncluster_tls_ca = \"/etc/ca.crt\"\n",
        )
        .expect("write");
        let c = Config::from_args(ServeArgs {
            dev: true,
            config: Some(path),
            ..Default::default()
        })
        .expect("from the file");
        assert_eq!(
            c.cluster_tls.map(|t| t.ca),
            Some(PathBuf::from("/etc/ca.crt"))
        );
    }
}
