//! `/admin/v1/admin-tokens`: mint (shown once), list, revoke admin API tokens.

use commonrock_actors::tenant::{Applied, Change};
use commonrock_actors::DomainError;
use http::{Method, StatusCode};
use serde::Serialize;

use super::{audit, ok, AdminPrincipal};
use crate::api::AppState;
use crate::http::validation::{validated, Fields};
use crate::http::{format_time, Answer, ApiError, Code, Handled, Request};

#[derive(Serialize)]
struct TokenOut {
    id: uuid::Uuid,
    name: String,
    token_prefix: String,
    created_at: String,
    revoked_at: Option<String>,
}

#[derive(Serialize)]
struct TokenCreated {
    id: uuid::Uuid,
    name: String,
    token: String,
    created_at: String,
}

pub async fn collection(state: &AppState, req: &Request, who: &AdminPrincipal) -> Handled {
    if req.method == Method::GET {
        let tokens: Vec<TokenOut> = state
            .engine
            .tenants()
            .admin_token_list
            .iter()
            .map(|t| TokenOut {
                id: t.id,
                name: t.name.clone(),
                token_prefix: t.token_prefix.clone(),
                created_at: format_time(t.created_at),
                revoked_at: t.revoked_at.map(format_time),
            })
            .collect();
        return Answer::json(
            StatusCode::OK,
            &serde_json::json!({ "admin_tokens": tokens }),
        );
    }
    let body = req.json()?;
    let mut f = Fields::of(&body)?;
    let name = f.string("name", 1, 200);
    f.finish()?;
    let applied = state
        .engine
        .apply(Change::CreateAdminToken {
            name: validated(name)?,
        })
        .await?;
    let Applied::AdminToken { token, secret } = applied else {
        return Err(DomainError::Internal("unexpected apply result".into()).into());
    };
    audit(state, who, "create_admin_token", &token.name);
    Answer::json(
        StatusCode::CREATED,
        &TokenCreated {
            id: token.id,
            name: token.name,
            token: secret,
            created_at: format_time(token.created_at),
        },
    )
    .map(Answer::no_store)
}

pub async fn revoke(state: &AppState, who: &AdminPrincipal, id: &str) -> Handled {
    let id: uuid::Uuid = id.parse().map_err(|_| ApiError::code(Code::NotFound))?;
    state.engine.apply(Change::RevokeAdminToken { id }).await?;
    audit(state, who, "revoke_admin_token", &id.to_string());
    ok()
}
