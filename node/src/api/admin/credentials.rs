//! Public clients and secret keys of a project: create (the secret is shown once), list (a
//! non-secret prefix, created and last-used times), revoke. Two live keys allow rotation.

use std::sync::atomic::Ordering;

use commonrock_actors::tenant::{Applied, Change};
use commonrock_actors::{origin, DomainError};
use http::{Method, StatusCode};
use ipnet::IpNet;
use serde::Serialize;

use super::{audit, ok, project, AdminPrincipal};
use crate::api::public::SCOPES;
use crate::api::AppState;
use crate::http::validation::{validated, Fields, Issue};
use crate::http::{format_time, Answer, ApiError, Code, Handled, Request};

fn time_or_none(t: i64) -> Option<String> {
    (t > 0).then(|| format_time(t))
}

fn origins_field(f: &mut Fields<'_>, name: &str) -> Option<Vec<String>> {
    let list = f.string_list(name, false, 100, 512).unwrap_or_default();
    let mut out = Vec::with_capacity(list.len());
    for o in list {
        match origin::normalise(&o) {
            Some(n) => out.push(n),
            None => {
                f.push(Issue::value_error(name, format!("not an origin: {o}")));
                return None;
            }
        }
    }
    Some(out)
}

#[derive(Serialize)]
struct ClientCreated {
    client_id: String,
    client_key: String,
    name: String,
    allowed_origins: Vec<String>,
    scopes: Vec<String>,
    created_at: String,
}

#[derive(Serialize)]
struct ClientOut {
    client_id: String,
    name: String,
    key_prefix: String,
    allowed_origins: Vec<String>,
    scopes: Vec<String>,
    created_at: String,
    last_used_at: Option<String>,
    revoked_at: Option<String>,
}

pub async fn clients(state: &AppState, req: &Request, who: &AdminPrincipal, slug: &str) -> Handled {
    let view = project(state, slug)?;
    if req.method == Method::GET {
        let mut list: Vec<_> = view.clients.values().collect();
        list.sort_by_key(|c| (c.record.created_at, c.record.client_id.clone()));
        let clients: Vec<ClientOut> = list
            .into_iter()
            .map(|c| ClientOut {
                client_id: c.record.client_id.clone(),
                name: c.record.name.clone(),
                key_prefix: c.record.key_prefix.clone(),
                allowed_origins: c.record.allowed_origins.clone(),
                scopes: c.record.scopes.clone(),
                created_at: format_time(c.record.created_at),
                last_used_at: time_or_none(c.last_used.load(Ordering::Relaxed)),
                revoked_at: c.record.revoked_at.map(format_time),
            })
            .collect();
        return Answer::json(StatusCode::OK, &serde_json::json!({ "clients": clients }));
    }
    let body = req.json()?;
    let mut f = Fields::of(&body)?;
    let name = f.string("name", 1, 200);
    let origins = origins_field(&mut f, "allowed_origins");
    let scopes = f.string_list("scopes", true, 16, 64);
    f.finish()?;
    let scopes = validated(scopes)?;
    if scopes.iter().any(|s| !SCOPES.contains(&s.as_str())) {
        return Err(ApiError::code(Code::InvalidPublicScopes));
    }
    let applied = state
        .engine
        .apply(Change::CreateClient {
            slug: slug.to_string(),
            name: validated(name)?,
            allowed_origins: validated(origins)?,
            scopes,
        })
        .await?;
    let Applied::Client { client, key } = applied else {
        return Err(DomainError::Internal("unexpected apply result".into()).into());
    };
    audit(state, who, "create_client", slug);
    Answer::json(
        StatusCode::CREATED,
        &ClientCreated {
            client_id: client.client_id,
            client_key: key,
            name: client.name,
            allowed_origins: client.allowed_origins,
            scopes: client.scopes,
            created_at: format_time(client.created_at),
        },
    )
    .map(Answer::no_store)
}

pub async fn revoke_client(
    state: &AppState,
    who: &AdminPrincipal,
    slug: &str,
    id: &str,
) -> Handled {
    state
        .engine
        .apply(Change::RevokeClient {
            slug: slug.to_string(),
            client_id: id.to_string(),
        })
        .await?;
    audit(state, who, "revoke_client", slug);
    ok()
}

#[derive(Serialize)]
struct KeyCreated {
    id: uuid::Uuid,
    key: String,
    name: String,
    key_prefix: String,
    allowed_cidrs: Vec<IpNet>,
    allowed_origins: Vec<String>,
    created_at: String,
    expires_at: Option<String>,
}

#[derive(Serialize)]
struct KeyOut {
    id: uuid::Uuid,
    name: String,
    key_prefix: String,
    allowed_cidrs: Vec<IpNet>,
    allowed_origins: Vec<String>,
    created_at: String,
    expires_at: Option<String>,
    last_used_at: Option<String>,
    revoked_at: Option<String>,
}

pub async fn api_keys(
    state: &AppState,
    req: &Request,
    who: &AdminPrincipal,
    slug: &str,
) -> Handled {
    let view = project(state, slug)?;
    if req.method == Method::GET {
        let keys: Vec<KeyOut> = view
            .keys
            .iter()
            .map(|k| KeyOut {
                id: k.record.id,
                name: k.record.name.clone(),
                key_prefix: k.record.key_prefix.clone(),
                allowed_cidrs: k.record.allowed_cidrs.clone(),
                allowed_origins: k.record.allowed_origins.clone(),
                created_at: format_time(k.record.created_at),
                expires_at: k.record.expires_at.map(format_time),
                last_used_at: time_or_none(k.last_used.load(Ordering::Relaxed)),
                revoked_at: k.record.revoked_at.map(format_time),
            })
            .collect();
        return Answer::json(StatusCode::OK, &serde_json::json!({ "api_keys": keys }));
    }
    let body = req.json()?;
    let mut f = Fields::of(&body)?;
    let name = f.string("name", 1, 200);
    let cidrs = f
        .string_list("allowed_cidrs", false, 100, 64)
        .unwrap_or_default();
    let mut nets = Vec::with_capacity(cidrs.len());
    for c in &cidrs {
        // A bare address means just that host.
        let parsed = c
            .parse::<IpNet>()
            .or_else(|_| c.parse::<std::net::IpAddr>().map(IpNet::from));
        match parsed {
            Ok(n) => nets.push(n),
            Err(_) => f.push(Issue::value_error(
                "allowed_cidrs",
                format!("not a CIDR: {c}"),
            )),
        }
    }
    let origins = origins_field(&mut f, "allowed_origins");
    let expires_at = f.opt_string("expires_at", 64);
    f.finish()?;
    let expires_at = match expires_at {
        None => None,
        Some(t) => Some(
            chrono::DateTime::parse_from_rfc3339(&t)
                .map_err(|_| {
                    ApiError::validation(vec![Issue::value_error(
                        "expires_at",
                        "expected an RFC 3339 time such as 2026-02-04T13:00:00Z",
                    )])
                })?
                .timestamp(),
        ),
    };
    let applied = state
        .engine
        .apply(Change::CreateSecretKey {
            slug: slug.to_string(),
            name: validated(name)?,
            allowed_cidrs: nets,
            allowed_origins: validated(origins)?,
            expires_at,
        })
        .await?;
    let Applied::SecretKey { key, secret } = applied else {
        return Err(DomainError::Internal("unexpected apply result".into()).into());
    };
    audit(state, who, "create_api_key", slug);
    Answer::json(
        StatusCode::CREATED,
        &KeyCreated {
            id: key.id,
            key: secret,
            name: key.name,
            key_prefix: key.key_prefix,
            allowed_cidrs: key.allowed_cidrs,
            allowed_origins: key.allowed_origins,
            created_at: format_time(key.created_at),
            expires_at: key.expires_at.map(format_time),
        },
    )
    .map(Answer::no_store)
}

pub async fn revoke_api_key(
    state: &AppState,
    who: &AdminPrincipal,
    slug: &str,
    id: &str,
) -> Handled {
    let id: uuid::Uuid = id.parse().map_err(|_| ApiError::code(Code::NotFound))?;
    state
        .engine
        .apply(Change::RevokeSecretKey {
            slug: slug.to_string(),
            id,
        })
        .await?;
    audit(state, who, "revoke_api_key", slug);
    ok()
}
