//! `commonrock admin seed-sessions`: the benchmark's seeding path. Creating 100,000 sessions
//! through login would cost ~19 minutes of Argon2 on two cores, so this writes sessions
//! straight into the store of a stopped node (or a CQL keyspace) and prints nothing secret
//! except into the token file it was asked to write. It is a CLI command only: production
//! cannot reach it over HTTP.

use std::io::Write;
use std::sync::Arc;

use commonrock_actors::crypto::password::PasswordPool;
use commonrock_actors::crypto::tokens::{ServerSecrets, TokenKind};
use commonrock_actors::metrics::EngineMetrics;
use commonrock_actors::model::{EndUser, Session};
use commonrock_actors::store::Store;
use futures_util::{stream, StreamExt, TryStreamExt};
use uuid::Uuid;

use crate::config::{Config, SeedArgs};

/// The password of every seeded end user (benchmarks log them in).
pub const SEEDED_PASSWORD: &str = "seeded-password-123";

pub async fn seed_sessions(args: SeedArgs) -> Result<String, String> {
    let config = Config::from_args(args.node).map_err(|e| e.to_string())?;
    let secret_file = config
        .secret_file
        .clone()
        .ok_or("--secret-file is required: the tokens must verify on the node")?;
    let secrets = ServerSecrets::load(&secret_file).map_err(|e| e.to_string())?;
    let registry = prometheus::Registry::new();
    let store = crate::server::open_store(&config, &registry)
        .await
        .map_err(|e| e.to_string())?;
    let project = store
        .list_projects()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|p| p.slug == args.project)
        .ok_or_else(|| format!("no project {:?} in this store", args.project))?;
    let users = args.users.clamp(1, args.count.max(1));

    // One Argon2 hash serves every seeded user: they share a password by design.
    let pool =
        PasswordPool::start(1, 1, EngineMetrics::unregistered()).map_err(|e| e.to_string())?;
    let hash = pool
        .hash(SEEDED_PASSWORD.to_string())
        .await
        .map_err(|e| e.to_string())?;
    let now = chrono::Utc::now().timestamp();
    let mut end_users = Vec::with_capacity(users);
    for i in 0..users {
        let external_id = format!("seed-{i}");
        let user = match store
            .get_end_user(project.id, &external_id)
            .await
            .map_err(|e| e.to_string())?
        {
            Some(u) => u,
            None => {
                let u = EndUser {
                    id: Uuid::now_v7(),
                    project_id: project.id,
                    external_id,
                    password_hash: hash.clone(),
                    disabled: false,
                    created_at: now,
                    version: 0,
                };
                store.insert_end_user(&u).await.map_err(|e| e.to_string())?;
                u
            }
        };
        end_users.push(user);
    }

    let s = &project.settings;
    let key_id = secrets.current_key_id().to_string();
    let absolute = now + i64::from(s.session_max_ttl_s);
    let sessions: Vec<Session> = (0..args.count)
        .map(|i| {
            let user = &end_users[i % users];
            Session {
                id: Uuid::now_v7(),
                project_id: project.id,
                end_user_id: user.id,
                external_id: user.external_id.clone(),
                device_id: format!("seed-device-{i}"),
                user_agent: None,
                ip: None,
                created_at: now,
                last_used_at: now,
                counter: 0,
                rotated_at: now,
                access_expires_at: (now + i64::from(s.access_ttl_s)).min(absolute),
                prev_access_expires_at: now,
                refresh_expires_at: (now + i64::from(s.refresh_ttl_s)).min(absolute),
                absolute_expires_at: absolute,
                key_id: key_id.clone(),
                revoked_at: None,
                version: 0,
            }
        })
        .collect();
    let store: Arc<dyn Store> = store;
    // Many writes in flight let the embedded store's group commit batch them.
    stream::iter(sessions.iter().map(|session| {
        let store = store.clone();
        async move { store.insert_session(session).await }
    }))
    .buffer_unordered(512)
    .try_collect::<Vec<()>>()
    .await
    .map_err(|e| e.to_string())?;

    let file = std::fs::File::create(&args.out)
        .map_err(|e| format!("cannot write {}: {e}", args.out.display()))?;
    let mut out = std::io::BufWriter::new(file);
    for session in &sessions {
        let token = secrets
            .mint(&key_id, TokenKind::Access, session.id, session.counter)
            .ok_or("the current key cannot mint")?;
        writeln!(out, "{token}").map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())?;
    Ok(format!(
        "seeded {} sessions over {users} end users (external ids seed-0.., password {SEEDED_PASSWORD:?}) \
         in project {}; access tokens in {}",
        args.count,
        project.slug,
        args.out.display()
    ))
}
