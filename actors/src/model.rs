//! The records CommonRock persists: tenants (orgs, projects, clients, keys), end users and
//! sessions. Times are whole Unix seconds (the API renders them as `...Z` with no fraction).

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Unix time in whole seconds.
pub type UnixSecs = i64;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Org {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub created_at: UnixSecs,
}

/// Per-project knobs; every field has a default so old records and partial PATCHes work.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProjectSettings {
    pub access_ttl_s: u32,
    pub refresh_ttl_s: u32,
    /// How long the immediately previous refresh token still returns the already issued
    /// successor; 0 makes refresh tokens strictly single-use.
    pub refresh_reuse_grace_s: u32,
    /// Absolute bound on a session however often it is refreshed.
    pub session_max_ttl_s: u32,
    pub max_sessions_per_user: u32,
    pub rate_limits: RateLimits,
}

impl Default for ProjectSettings {
    fn default() -> Self {
        Self {
            access_ttl_s: 3600,
            refresh_ttl_s: 30 * 86_400,
            refresh_reuse_grace_s: 10,
            session_max_ttl_s: 90 * 86_400,
            max_sessions_per_user: 100,
            rate_limits: RateLimits::default(),
        }
    }
}

/// A token bucket: `burst` requests at once, refilled at `per_minute`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    pub burst: u32,
    pub per_minute: u32,
}

impl Limit {
    pub const fn new(burst: u32, per_minute: u32) -> Self {
        Self { burst, per_minute }
    }
}

/// Named limits of a project. Defaults let 200 parallel signups from one IP through and trip
/// within 20 wrong passwords for one account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    /// Login attempts per (project, external_id, caller IP): the strict one.
    pub login_per_account_ip: Limit,
    /// Login attempts per (project, external_id) from any IP.
    pub login_per_account: Limit,
    /// Login attempts per (project, caller IP) for any account.
    pub login_per_ip: Limit,
    /// Signups per (project, caller IP).
    pub signup_per_ip: Limit,
    /// Requests per (project, caller IP) on public endpoints, checked before `per_client` so
    /// one address cannot drain an app's whole client budget (IPv6 callers per /64).
    pub public_per_ip: Limit,
    /// Requests per public client.
    pub per_client: Limit,
    /// Requests per secret key.
    pub per_secret_key: Limit,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            login_per_account_ip: Limit::new(10, 10),
            login_per_account: Limit::new(20, 30),
            login_per_ip: Limit::new(300, 300),
            signup_per_ip: Limit::new(300, 300),
            public_per_ip: Limit::new(1_000, 6_000),
            per_client: Limit::new(5_000, 60_000),
            per_secret_key: Limit::new(1_000_000, 60_000_000),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    pub id: Uuid,
    pub org_id: Uuid,
    pub slug: String,
    pub name: String,
    pub settings: ProjectSettings,
    pub maintenance: bool,
    pub created_at: UnixSecs,
}

/// A browser or native app's credentials. The key is stored only as a SHA-256 hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicClient {
    pub client_id: String,
    pub project_id: Uuid,
    pub name: String,
    pub key_hash: [u8; 32],
    /// Non-secret start of the key, shown in lists so a developer can tell keys apart.
    pub key_prefix: String,
    pub allowed_origins: Vec<String>,
    pub scopes: Vec<String>,
    pub created_at: UnixSecs,
    pub revoked_at: Option<UnixSecs>,
}

/// A backend's secret key. Stored only as a SHA-256 hash; looked up by that hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretKey {
    pub id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    pub key_hash: [u8; 32],
    pub key_prefix: String,
    pub allowed_cidrs: Vec<IpNet>,
    pub allowed_origins: Vec<String>,
    pub created_at: UnixSecs,
    pub expires_at: Option<UnixSecs>,
    pub revoked_at: Option<UnixSecs>,
}

/// An admin API bearer token (minted by the CLI or the API); stored only as a hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminToken {
    pub id: Uuid,
    pub name: String,
    pub token_hash: [u8; 32],
    pub token_prefix: String,
    pub created_at: UnixSecs,
    pub revoked_at: Option<UnixSecs>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndUser {
    pub id: Uuid,
    pub project_id: Uuid,
    /// Compared byte for byte: case-sensitive, never normalised.
    pub external_id: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    pub disabled: bool,
    pub created_at: UnixSecs,
    /// Bumped by every conditional update so concurrent writers cannot overwrite each other.
    pub version: u64,
}

/// One login's state: O(1) whatever the number of rotations. Tokens are never stored; they
/// are derived from the server secret, the session id and `counter` (see `crypto::tokens`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: Uuid,
    pub project_id: Uuid,
    pub end_user_id: Uuid,
    pub external_id: String,
    pub device_id: String,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub created_at: UnixSecs,
    pub last_used_at: UnixSecs,
    /// Rotation counter: the live tokens are the ones derived for this value.
    pub counter: u64,
    /// When `counter` last moved; the previous tokens stay usable until this + grace.
    pub rotated_at: UnixSecs,
    /// Expiry of the access token derived for `counter`.
    pub access_expires_at: UnixSecs,
    /// Expiry of the previous access token, which stays active during the grace window.
    pub prev_access_expires_at: UnixSecs,
    pub refresh_expires_at: UnixSecs,
    /// Hard end of the session however often it is refreshed.
    pub absolute_expires_at: UnixSecs,
    /// Key id of the server secret the tokens were derived with.
    pub key_id: String,
    pub revoked_at: Option<UnixSecs>,
    pub version: u64,
}

impl Session {
    /// When the store may forget this session: nothing about it matters after that.
    pub fn store_expires_at(&self) -> UnixSecs {
        expiry(
            self.access_expires_at,
            self.refresh_expires_at,
            self.absolute_expires_at,
        )
    }

    pub fn is_live(&self, now: UnixSecs) -> bool {
        self.revoked_at.is_none() && now < self.refresh_expires_at && now < self.absolute_expires_at
    }
}

/// Outcome of an insert-if-absent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inserted {
    Created,
    AlreadyExists,
}

/// What request paths need of a session, handed out by its shard by value. `external_id` is
/// filled only for Bearer paths that show the user; introspection leaves it empty (an empty
/// `Box<str>` allocates nothing). It is also what an owner node answers for a session, so the
/// same value serves a local call and a forwarded one (serialised only when it crosses).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionState {
    pub id: Uuid,
    pub project_id: Uuid,
    pub end_user_id: Uuid,
    pub external_id: Box<str>,
    /// Shared by every session minted with the same server key.
    pub key_id: std::sync::Arc<str>,
    pub counter: u64,
    pub rotated_at: UnixSecs,
    pub access_expires_at: UnixSecs,
    pub prev_access_expires_at: UnixSecs,
    pub refresh_expires_at: UnixSecs,
    pub absolute_expires_at: UnixSecs,
    pub revoked: bool,
}

impl SessionState {
    pub fn of(s: &Session, key_id: std::sync::Arc<str>) -> Self {
        SessionState {
            id: s.id,
            project_id: s.project_id,
            end_user_id: s.end_user_id,
            external_id: s.external_id.as_str().into(),
            key_id,
            counter: s.counter,
            rotated_at: s.rotated_at,
            access_expires_at: s.access_expires_at,
            prev_access_expires_at: s.prev_access_expires_at,
            refresh_expires_at: s.refresh_expires_at,
            absolute_expires_at: s.absolute_expires_at,
            revoked: s.revoked_at.is_some(),
        }
    }

    /// When a cache may forget it: the same instant the store does.
    pub fn expires_at(&self) -> UnixSecs {
        expiry(
            self.access_expires_at,
            self.refresh_expires_at,
            self.absolute_expires_at,
        )
    }
}

/// The later of the access and refresh expiry, bounded by the absolute one (but never before
/// the access token it already handed out).
pub fn expiry(access: UnixSecs, refresh: UnixSecs, absolute: UnixSecs) -> UnixSecs {
    refresh.max(access).min(absolute.max(access))
}

/// A person who runs projects through the portal (SPEC §10). Unique by `email`, which is
/// stored normalised (trimmed, lower case). Every change is a compare-and-set on `version`, so
/// a TOTP step or a recovery code is consumed once however many nodes race for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminUser {
    pub id: Uuid,
    pub email: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    pub disabled: bool,
    /// The confirmed TOTP secret; logins need a code while it is set.
    pub totp: Option<EncryptedSecret>,
    /// A secret handed out by enrolment and not yet confirmed with a code.
    pub totp_pending: Option<EncryptedSecret>,
    /// The last 30-second step a code was accepted for: a code of this step or an earlier one
    /// is refused (replay).
    pub totp_last_step: u64,
    /// SHA-256 of each unused recovery code.
    pub recovery_codes: Vec<[u8; 32]>,
    pub created_at: UnixSecs,
    pub version: u64,
}

/// A secret encrypted (ChaCha20-Poly1305) under a key derived from the server key `key_id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptedSecret {
    pub key_id: String,
    pub nonce: [u8; 12],
    pub ciphertext: Vec<u8>,
}

/// Who made an admin change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AuditActor {
    /// `COMMONROCK_ADMIN_TOKEN`.
    Bootstrap,
    AdminToken {
        id: Uuid,
    },
    AdminUser {
        id: Uuid,
        email: String,
    },
}

/// One admin action, kept for [`AUDIT_RETENTION_S`]. Never carries a secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Time-ordered (UUIDv7): the log lists newest first by id.
    pub id: Uuid,
    pub at: UnixSecs,
    pub actor: AuditActor,
    pub action: String,
    /// The project's slug, for actions on one project.
    pub project: Option<String>,
    /// What was acted on (a slug, a client id, a key id, an email): never a secret.
    pub target: String,
    pub ip: Option<String>,
    pub request_id: Option<String>,
}

/// How long the audit log keeps an entry: a little over a year.
pub const AUDIT_RETENTION_S: i64 = 400 * 86_400;
