//! `/admin/v1/admin-tokens`: mint (shown once), list, revoke admin API tokens.

use commonrock_actors::tenant::{Applied, Change};
use commonrock_actors::DomainError;
use http::{Method, StatusCode};
use serde::Serialize;
use utoipa::ToSchema;

use super::{audit, ok, AdminPrincipal};
use crate::api::AppState;
use crate::http::schema::{CodedError, JsonBody};
use crate::http::validation::Fields;
use crate::http::{format_time, Answer, ApiError, Code, Handled, Request};

#[derive(Serialize, ToSchema)]
pub struct TokenOut {
    id: uuid::Uuid,
    name: String,
    token_prefix: String,
    created_at: String,
    revoked_at: Option<String>,
}

/// A new admin token: `token` is shown this once.
#[derive(Serialize, ToSchema)]
pub struct TokenCreated {
    id: uuid::Uuid,
    name: String,
    token: String,
    created_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct TokenList {
    admin_tokens: Vec<TokenOut>,
}

/// `POST /admin/v1/admin-tokens`.
#[derive(ToSchema)]
pub struct CreateAdminToken {
    #[schema(min_length = 1, max_length = 200, example = "ci")]
    pub name: String,
}

impl JsonBody for CreateAdminToken {
    fn read(f: &mut Fields<'_>, _req: &Request) -> Option<Self> {
        let name = f.string("name", 1, 200);
        Some(CreateAdminToken { name: name? })
    }
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
            &TokenList {
                admin_tokens: tokens,
            },
        );
    }
    let body = CreateAdminToken::parse(req)?;
    let applied = state
        .engine
        .apply(Change::CreateAdminToken { name: body.name })
        .await?;
    let Applied::AdminToken { token, secret } = applied else {
        return Err(DomainError::Internal("unexpected apply result".into()).into());
    };
    audit(
        state,
        who,
        "create_admin_token",
        None,
        &token.id.to_string(),
    )
    .await;
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
    audit(state, who, "revoke_admin_token", None, &id.to_string()).await;
    ok()
}

/// `GET /admin/v1/admin-tokens`
#[utoipa::path(get, path = "/admin/v1/admin-tokens", tag = "admin", security(("admin" = []), ("portal" = [])),
    responses((status = 200, description = "Stored admin tokens (not the bootstrap one), with a prefix", body = TokenList)))]
pub fn list_doc() {}

/// `POST /admin/v1/admin-tokens`
#[utoipa::path(post, path = "/admin/v1/admin-tokens", tag = "admin", security(("admin" = []), ("portal" = [])),
    request_body = CreateAdminToken,
    responses((status = 201, description = "Minted; `token` is shown this once", body = TokenCreated,
        headers(("Cache-Control" = String, description = "`no-store`")))))]
pub fn create_doc() {}

/// `DELETE /admin/v1/admin-tokens/{id}`
#[utoipa::path(delete, path = "/admin/v1/admin-tokens/{id}", tag = "admin", security(("admin" = []), ("portal" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses(
        (status = 200, description = "Revoked", body = super::Done),
        (status = 404, description = "`not_found`: no such token", body = CodedError)))]
pub fn revoke_doc() {}
