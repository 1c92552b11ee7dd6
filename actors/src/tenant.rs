//! The tenant directory: the one owner of tenant configuration (orgs, projects and their
//! settings, public clients, secret keys, admin tokens, maintenance switches). It applies each
//! change to the store first, then publishes a new immutable snapshot that request paths
//! read without a message hop.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use ipnet::IpNet;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use uuid::Uuid;

use crate::crypto::secrets::{
    display_prefix, random_credential, sha256, ADMIN_TOKEN_PREFIX, CLIENT_ID_PREFIX,
    CLIENT_KEY_PREFIX, SECRET_KEY_PREFIX,
};
use crate::error::DomainError;
use crate::model::{
    AdminToken, Inserted, Org, Project, ProjectSettings, PublicClient, SecretKey, UnixSecs,
};
use crate::store::Store;

pub const GLOBAL_MAINTENANCE_FLAG: &str = "maintenance";

/// A public client plus its in-memory last use (not durable by design: it would put a write
/// on every request).
#[derive(Debug)]
pub struct ClientEntry {
    pub record: PublicClient,
    pub last_used: AtomicI64,
}

#[derive(Debug)]
pub struct KeyEntry {
    pub record: SecretKey,
    pub last_used: AtomicI64,
}

impl KeyEntry {
    pub fn touch(&self, now: UnixSecs) {
        self.last_used.store(now, Ordering::Relaxed);
    }
}

impl ClientEntry {
    pub fn touch(&self, now: UnixSecs) {
        self.last_used.store(now, Ordering::Relaxed);
    }
}

#[derive(Debug)]
pub struct ProjectView {
    pub project: Project,
    pub org_slug: String,
    /// Every client by id, revoked ones included (lists show them).
    pub clients: HashMap<String, Arc<ClientEntry>>,
    /// Every secret key, revoked ones included, oldest first.
    pub keys: Vec<Arc<KeyEntry>>,
}

impl ProjectView {
    /// True when a live public client of this project allows `origin` (CORS preflight).
    pub fn any_client_allows(&self, origin: &str) -> bool {
        self.clients.values().any(|c| {
            c.record.revoked_at.is_none()
                && c.record
                    .allowed_origins
                    .iter()
                    .any(|o| crate::origin::matches(o, origin))
        })
    }
}

#[derive(Clone, Debug, Default)]
pub struct TenantSnapshot {
    pub maintenance: bool,
    pub orgs: HashMap<String, Org>,
    pub projects: HashMap<String, Arc<ProjectView>>,
    /// Live secret keys of every project by SHA-256 of the key.
    pub secret_keys: HashMap<[u8; 32], Arc<KeyEntry>>,
    /// Live admin tokens by SHA-256 of the token.
    pub admin_tokens: HashMap<[u8; 32], AdminToken>,
    pub admin_token_list: Vec<AdminToken>,
    /// The configuration epoch this snapshot reflects: it changes with every change on any
    /// node, so caches of other configuration (the SQL engine's compiled definitions) key on it.
    pub epoch: Option<Uuid>,
}

impl TenantSnapshot {
    pub fn project(&self, slug: &str) -> Option<&Arc<ProjectView>> {
        self.projects.get(slug)
    }
}

/// A change to tenant configuration; validated by the caller, applied by the directory.
#[derive(Debug)]
pub enum Change {
    CreateOrg {
        slug: String,
        name: String,
    },
    CreateProject {
        org_slug: String,
        slug: String,
        name: String,
        settings: ProjectSettings,
    },
    UpdateSettings {
        slug: String,
        settings: ProjectSettings,
    },
    SetProjectMaintenance {
        slug: String,
        enabled: bool,
    },
    SetGlobalMaintenance {
        enabled: bool,
    },
    CreateClient {
        slug: String,
        name: String,
        allowed_origins: Vec<String>,
        scopes: Vec<String>,
    },
    RevokeClient {
        slug: String,
        client_id: String,
    },
    CreateSecretKey {
        slug: String,
        name: String,
        allowed_cidrs: Vec<IpNet>,
        allowed_origins: Vec<String>,
        expires_at: Option<UnixSecs>,
    },
    /// The simple DB's tables or query definitions changed (they live in the row store): moves
    /// the epoch so that every node drops its compiled definitions.
    SqlSchemaChanged,
    RevokeSecretKey {
        slug: String,
        id: Uuid,
    },
    CreateAdminToken {
        name: String,
    },
    RevokeAdminToken {
        id: Uuid,
    },
}

/// What a change produced; secrets appear here once and are never stored.
#[derive(Debug)]
pub enum Applied {
    Org(Org),
    Project(Project),
    Client { client: PublicClient, key: String },
    SecretKey { key: SecretKey, secret: String },
    AdminToken { token: AdminToken, secret: String },
    Done,
}

pub enum TenantMessage {
    Apply {
        change: Change,
        now: UnixSecs,
        reply: RpcReplyPort<Result<Applied, DomainError>>,
    },
    /// Re-reads everything from the store (start-up, or after another node changed it).
    Reload {
        reply: RpcReplyPort<Result<(), DomainError>>,
    },
    /// Reloads if another node changed tenant configuration (its epoch moved).
    Poll,
    /// Fault injection (only reachable when the node enables it): panics mid-request.
    Crash { reply: RpcReplyPort<()> },
}

pub struct TenantDirectory;

pub struct TenantArgs {
    pub store: Arc<dyn Store>,
    pub snapshot: Arc<ArcSwap<TenantSnapshot>>,
}

pub struct TenantState {
    store: Arc<dyn Store>,
    snapshot: Arc<ArcSwap<TenantSnapshot>>,
    /// The configuration epoch the snapshot reflects.
    epoch: Option<Uuid>,
}

/// What part of the snapshot a change invalidates.
enum Refresh {
    /// Nothing of the snapshot changed (only the epoch moves).
    Nothing,
    Orgs,
    Project(Project),
    Maintenance(bool),
    AdminTokens,
}

/// Loads all tenant configuration: a scan, but only at start-up and reload, never per request.
pub async fn load_snapshot(
    store: &dyn Store,
    previous: &TenantSnapshot,
) -> Result<TenantSnapshot, DomainError> {
    let mut snap = TenantSnapshot {
        maintenance: store
            .get_flag(GLOBAL_MAINTENANCE_FLAG)
            .await?
            .unwrap_or(false),
        ..Default::default()
    };
    let orgs = store.list_orgs().await?;
    let org_slugs: HashMap<Uuid, String> = orgs.iter().map(|o| (o.id, o.slug.clone())).collect();
    for org in orgs {
        snap.orgs.insert(org.slug.clone(), org);
    }
    for project in store.list_projects().await? {
        let clients = store.list_clients(project.id).await?;
        let keys = store.list_secret_keys(project.id).await?;
        let old = previous.projects.get(&project.slug);
        let view = build_view(project, &org_slugs, clients, keys, old.map(|v| v.as_ref()));
        for k in &view.keys {
            if k.record.revoked_at.is_none() {
                snap.secret_keys.insert(k.record.key_hash, k.clone());
            }
        }
        snap.projects
            .insert(view.project.slug.clone(), Arc::new(view));
    }
    let mut tokens = store.list_admin_tokens().await?;
    tokens.sort_by_key(|t| t.created_at);
    for t in &tokens {
        if t.revoked_at.is_none() {
            snap.admin_tokens.insert(t.token_hash, t.clone());
        }
    }
    snap.admin_token_list = tokens;
    Ok(snap)
}

fn build_view(
    project: Project,
    org_slugs: &HashMap<Uuid, String>,
    clients: Vec<PublicClient>,
    mut keys: Vec<SecretKey>,
    old: Option<&ProjectView>,
) -> ProjectView {
    keys.sort_by_key(|k| k.created_at);
    let last_client = |id: &str| {
        old.and_then(|v| v.clients.get(id))
            .map_or(0, |c| c.last_used.load(Ordering::Relaxed))
    };
    let last_key = |id: Uuid| {
        old.and_then(|v| v.keys.iter().find(|k| k.record.id == id))
            .map_or(0, |k| k.last_used.load(Ordering::Relaxed))
    };
    ProjectView {
        org_slug: org_slugs.get(&project.org_id).cloned().unwrap_or_default(),
        clients: clients
            .into_iter()
            .map(|c| {
                let entry = ClientEntry {
                    last_used: AtomicI64::new(last_client(&c.client_id)),
                    record: c,
                };
                (entry.record.client_id.clone(), Arc::new(entry))
            })
            .collect(),
        keys: keys
            .into_iter()
            .map(|k| {
                Arc::new(KeyEntry {
                    last_used: AtomicI64::new(last_key(k.id)),
                    record: k,
                })
            })
            .collect(),
        project,
    }
}

impl TenantState {
    fn current(&self) -> Arc<TenantSnapshot> {
        self.snapshot.load_full()
    }

    fn project(&self, slug: &str) -> Result<Arc<ProjectView>, DomainError> {
        self.current()
            .projects
            .get(slug)
            .cloned()
            .ok_or(DomainError::NotFound("project"))
    }

    async fn reload(&mut self) -> Result<(), DomainError> {
        // Read the epoch first: a change landing during the load moves it again, and the next
        // poll reloads.
        let epoch = self.store.get_config_epoch().await?;
        let prev = self.current();
        let mut next = load_snapshot(self.store.as_ref(), &prev).await?;
        next.epoch = epoch;
        self.snapshot.store(Arc::new(next));
        self.epoch = epoch;
        Ok(())
    }

    async fn poll(&mut self) -> Result<(), DomainError> {
        if self.store.get_config_epoch().await? != self.epoch {
            tracing::debug!("tenant configuration changed elsewhere: reloading");
            self.reload().await?;
        }
        Ok(())
    }

    /// Publishes a snapshot with just the changed part re-read from the store.
    async fn refresh(&mut self, what: Refresh) -> Result<(), DomainError> {
        let mut next = (*self.current()).clone();
        next.epoch = self.epoch;
        match what {
            Refresh::Nothing => {}
            Refresh::Orgs => {
                next.orgs = self
                    .store
                    .list_orgs()
                    .await?
                    .into_iter()
                    .map(|o| (o.slug.clone(), o))
                    .collect();
            }
            Refresh::Maintenance(on) => next.maintenance = on,
            Refresh::AdminTokens => {
                let mut tokens = self.store.list_admin_tokens().await?;
                tokens.sort_by_key(|t| t.created_at);
                next.admin_tokens = tokens
                    .iter()
                    .filter(|t| t.revoked_at.is_none())
                    .map(|t| (t.token_hash, t.clone()))
                    .collect();
                next.admin_token_list = tokens;
            }
            Refresh::Project(project) => {
                let clients = self.store.list_clients(project.id).await?;
                let keys = self.store.list_secret_keys(project.id).await?;
                let org_slugs: HashMap<Uuid, String> =
                    next.orgs.values().map(|o| (o.id, o.slug.clone())).collect();
                let old = next.projects.get(&project.slug).cloned();
                let view = build_view(project, &org_slugs, clients, keys, old.as_deref());
                next.secret_keys
                    .retain(|_, k| k.record.project_id != view.project.id);
                for k in &view.keys {
                    if k.record.revoked_at.is_none() {
                        next.secret_keys.insert(k.record.key_hash, k.clone());
                    }
                }
                next.projects
                    .insert(view.project.slug.clone(), Arc::new(view));
            }
        }
        self.snapshot.store(Arc::new(next));
        Ok(())
    }

    async fn apply(&mut self, change: Change, now: UnixSecs) -> Result<Applied, DomainError> {
        let (applied, refresh) = self.write(change, now).await?;
        // Other nodes sharing the store notice the new epoch on their next poll.
        let epoch = Uuid::new_v4();
        self.store.set_config_epoch(epoch).await?;
        self.epoch = Some(epoch);
        self.refresh(refresh).await?;
        Ok(applied)
    }

    /// Writes one change to the store; answers what it produced and what to re-read.
    async fn write(
        &mut self,
        change: Change,
        now: UnixSecs,
    ) -> Result<(Applied, Refresh), DomainError> {
        Ok(match change {
            Change::CreateOrg { slug, name } => {
                let org = Org {
                    id: Uuid::now_v7(),
                    slug,
                    name,
                    created_at: now,
                };
                match self.store.insert_org(&org).await? {
                    Inserted::Created => (Applied::Org(org), Refresh::Orgs),
                    Inserted::AlreadyExists => return Err(DomainError::AlreadyExists("org")),
                }
            }
            Change::CreateProject {
                org_slug,
                slug,
                name,
                settings,
            } => {
                let org = self
                    .current()
                    .orgs
                    .get(&org_slug)
                    .cloned()
                    .ok_or(DomainError::NotFound("org"))?;
                let project = Project {
                    id: Uuid::now_v7(),
                    org_id: org.id,
                    slug,
                    name,
                    settings,
                    maintenance: false,
                    created_at: now,
                };
                match self.store.insert_project(&project).await? {
                    Inserted::Created => {
                        (Applied::Project(project.clone()), Refresh::Project(project))
                    }
                    Inserted::AlreadyExists => return Err(DomainError::AlreadyExists("project")),
                }
            }
            Change::UpdateSettings { slug, settings } => {
                let mut project = self.project(&slug)?.project.clone();
                project.settings = settings;
                self.store.update_project(&project).await?;
                (Applied::Project(project.clone()), Refresh::Project(project))
            }
            Change::SetProjectMaintenance { slug, enabled } => {
                let mut project = self.project(&slug)?.project.clone();
                project.maintenance = enabled;
                self.store.update_project(&project).await?;
                (Applied::Project(project.clone()), Refresh::Project(project))
            }
            Change::SetGlobalMaintenance { enabled } => {
                self.store
                    .set_flag(GLOBAL_MAINTENANCE_FLAG, enabled)
                    .await?;
                (Applied::Done, Refresh::Maintenance(enabled))
            }
            Change::CreateClient {
                slug,
                name,
                allowed_origins,
                scopes,
            } => {
                let project = self.project(&slug)?;
                let key = random_credential(CLIENT_KEY_PREFIX, 32);
                let client = PublicClient {
                    client_id: random_credential(CLIENT_ID_PREFIX, 16),
                    project_id: project.project.id,
                    name,
                    key_hash: sha256(key.as_bytes()),
                    key_prefix: display_prefix(&key, CLIENT_KEY_PREFIX),
                    allowed_origins,
                    scopes,
                    created_at: now,
                    revoked_at: None,
                };
                self.store.put_client(&client).await?;
                (
                    Applied::Client { client, key },
                    Refresh::Project(project.project.clone()),
                )
            }
            Change::RevokeClient { slug, client_id } => {
                let project = self.project(&slug)?;
                let entry = project
                    .clients
                    .get(&client_id)
                    .ok_or(DomainError::NotFound("client"))?;
                if entry.record.revoked_at.is_none() {
                    let mut client = entry.record.clone();
                    client.revoked_at = Some(now);
                    self.store.put_client(&client).await?;
                }
                (Applied::Done, Refresh::Project(project.project.clone()))
            }
            Change::CreateSecretKey {
                slug,
                name,
                allowed_cidrs,
                allowed_origins,
                expires_at,
            } => {
                let project = self.project(&slug)?;
                let secret = random_credential(SECRET_KEY_PREFIX, 32);
                let key = SecretKey {
                    id: Uuid::now_v7(),
                    project_id: project.project.id,
                    name,
                    key_hash: sha256(secret.as_bytes()),
                    key_prefix: display_prefix(&secret, SECRET_KEY_PREFIX),
                    allowed_cidrs,
                    allowed_origins,
                    created_at: now,
                    expires_at,
                    revoked_at: None,
                };
                self.store.put_secret_key(&key).await?;
                (
                    Applied::SecretKey { key, secret },
                    Refresh::Project(project.project.clone()),
                )
            }
            Change::RevokeSecretKey { slug, id } => {
                let project = self.project(&slug)?;
                let entry = project
                    .keys
                    .iter()
                    .find(|k| k.record.id == id)
                    .ok_or(DomainError::NotFound("api key"))?;
                if entry.record.revoked_at.is_none() {
                    let mut key = entry.record.clone();
                    key.revoked_at = Some(now);
                    self.store.put_secret_key(&key).await?;
                }
                (Applied::Done, Refresh::Project(project.project.clone()))
            }
            Change::CreateAdminToken { name } => {
                let secret = random_credential(ADMIN_TOKEN_PREFIX, 32);
                let token = AdminToken {
                    id: Uuid::now_v7(),
                    name,
                    token_hash: sha256(secret.as_bytes()),
                    token_prefix: display_prefix(&secret, ADMIN_TOKEN_PREFIX),
                    created_at: now,
                    revoked_at: None,
                };
                self.store.put_admin_token(&token).await?;
                (Applied::AdminToken { token, secret }, Refresh::AdminTokens)
            }
            Change::SqlSchemaChanged => (Applied::Done, Refresh::Nothing),
            Change::RevokeAdminToken { id } => {
                let mut token = self
                    .current()
                    .admin_token_list
                    .iter()
                    .find(|t| t.id == id)
                    .cloned()
                    .ok_or(DomainError::NotFound("admin token"))?;
                if token.revoked_at.is_none() {
                    token.revoked_at = Some(now);
                    self.store.put_admin_token(&token).await?;
                }
                (Applied::Done, Refresh::AdminTokens)
            }
        })
    }
}

impl Actor for TenantDirectory {
    type Msg = TenantMessage;
    type State = TenantState;
    type Arguments = TenantArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: TenantArgs,
    ) -> Result<TenantState, ActorProcessingErr> {
        let mut state = TenantState {
            store: args.store,
            snapshot: args.snapshot,
            epoch: None,
        };
        state
            .reload()
            .await
            .map_err(|e| format!("cannot load tenants: {e}"))?;
        Ok(state)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: TenantMessage,
        state: &mut TenantState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            TenantMessage::Apply { change, now, reply } => {
                let out = state.apply(change, now).await;
                if reply.send(out).is_err() {
                    tracing::debug!("tenant reply dropped: caller gone");
                }
            }
            TenantMessage::Reload { reply } => {
                let out = state.reload().await;
                let _ = reply.send(out);
            }
            TenantMessage::Crash { reply } => {
                // The caller sees what a caller of a crashed directory sees: no answer.
                let _keep = reply;
                panic!("fault injection: tenant directory crash requested");
            }
            TenantMessage::Poll => {
                // A failed poll (store briefly away) is retried by the next one.
                if let Err(e) = state.poll().await {
                    tracing::debug!(error = %e, "tenant poll failed");
                }
            }
        }
        Ok(())
    }
}
