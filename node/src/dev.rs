//! `serve --dev`: the demo tenant the seed's curl examples use, so they run as written. Each
//! start revokes the previous demo credentials and prints fresh ones once (secrets are stored
//! only as hashes, so earlier ones cannot be shown again).

use commonrock_actors::tenant::{Applied, Change};
use commonrock_actors::{DomainError, Engine};

pub const DEMO_ORG: &str = "demo";
pub const DEMO_PROJECT: &str = "org_demo_payments";
const DEMO_NAME: &str = "demo";

pub struct DemoCredentials {
    pub client_id: String,
    pub client_key: String,
    pub secret_key: String,
    pub admin_token: Option<String>,
}

pub async fn bootstrap(
    engine: &Engine,
    mint_admin_token: bool,
) -> Result<DemoCredentials, DomainError> {
    let snapshot = engine.tenants().clone();
    if !snapshot.orgs.contains_key(DEMO_ORG) {
        engine
            .apply(Change::CreateOrg {
                slug: DEMO_ORG.into(),
                name: "Demo".into(),
            })
            .await?;
    }
    match snapshot.project(DEMO_PROJECT) {
        None => {
            engine
                .apply(Change::CreateProject {
                    org_slug: DEMO_ORG.into(),
                    slug: DEMO_PROJECT.into(),
                    name: "Demo payments".into(),
                    settings: Default::default(),
                })
                .await?;
        }
        Some(view) => {
            for c in view.clients.values() {
                if c.record.name == DEMO_NAME && c.record.revoked_at.is_none() {
                    engine
                        .apply(Change::RevokeClient {
                            slug: DEMO_PROJECT.into(),
                            client_id: c.record.client_id.clone(),
                        })
                        .await?;
                }
            }
            for k in &view.keys {
                if k.record.name == DEMO_NAME && k.record.revoked_at.is_none() {
                    engine
                        .apply(Change::RevokeSecretKey {
                            slug: DEMO_PROJECT.into(),
                            id: k.record.id,
                        })
                        .await?;
                }
            }
        }
    }
    let client = engine
        .apply(Change::CreateClient {
            slug: DEMO_PROJECT.into(),
            name: DEMO_NAME.into(),
            allowed_origins: vec![
                "https://app.example.com".into(),
                "http://localhost:3000".into(),
            ],
            scopes: crate::api::public::SCOPES
                .iter()
                .map(|s| s.to_string())
                .collect(),
        })
        .await?;
    let key = engine
        .apply(Change::CreateSecretKey {
            slug: DEMO_PROJECT.into(),
            name: DEMO_NAME.into(),
            allowed_cidrs: vec!["127.0.0.1/32"
                .parse()
                .map_err(|_| DomainError::Internal("cidr".into()))?],
            allowed_origins: vec![],
            expires_at: None,
        })
        .await?;
    let admin_token = if mint_admin_token {
        for t in &snapshot.admin_token_list {
            if t.name == DEMO_NAME && t.revoked_at.is_none() {
                engine.apply(Change::RevokeAdminToken { id: t.id }).await?;
            }
        }
        match engine
            .apply(Change::CreateAdminToken {
                name: DEMO_NAME.into(),
            })
            .await?
        {
            Applied::AdminToken { secret, .. } => Some(secret),
            _ => None,
        }
    } else {
        None
    };
    match (client, key) {
        (Applied::Client { client, key }, Applied::SecretKey { secret, .. }) => {
            Ok(DemoCredentials {
                client_id: client.client_id,
                client_key: key,
                secret_key: secret,
                admin_token,
            })
        }
        _ => Err(DomainError::Internal("unexpected apply result".into())),
    }
}

/// The one-time banner (stdout, never the log stream).
pub fn banner(base: &str, c: &DemoCredentials) -> String {
    let admin = c
        .admin_token
        .as_deref()
        .map(|t| format!("  admin token:     {t}\n"))
        .unwrap_or_default();
    format!(
        "\n=== CommonRock dev mode: demo credentials (shown once) ===\n\
         \x20 project base URL: {base}/{DEMO_PROJECT}\n\
         \x20 X-Client-Id:      {}\n\
         \x20 X-Client-Key:     {}\n\
         \x20 X-API-Key:        {}   (from 127.0.0.1 only)\n\
         {admin}\
         \x20 allowed origins:  https://app.example.com, http://localhost:3000\n\
         \x20 portal:           {base}/portal/   (first create an admin user: docs/portal.md)\n\
         ===========================================================\n",
        c.client_id, c.client_key, c.secret_key
    )
}
