//! `/admin/v1/admin-users`: the people who may sign in to the portal (SPEC §10). Created by
//! a bearer token (the first one) or by another admin user; every admin user administers
//! everything.

use commonrock_actors::model::AdminUser;
use http::{Method, StatusCode};
use serde::Serialize;
use utoipa::ToSchema;

use super::{audit, ok, AdminPrincipal};
use crate::api::AppState;
use crate::http::schema::{CodedError, JsonBody, ValidationError};
use crate::http::validation::{Fields, Issue};
use crate::http::{format_time, Answer, ApiError, Code, Handled, Request};

/// An admin user as the API shows it (never the password hash or the TOTP secret).
#[derive(Serialize, ToSchema)]
pub struct AdminUserOut {
    id: uuid::Uuid,
    #[schema(example = "ops@example.com")]
    email: String,
    totp_enabled: bool,
    disabled: bool,
    created_at: String,
}

impl From<&AdminUser> for AdminUserOut {
    fn from(u: &AdminUser) -> Self {
        AdminUserOut {
            id: u.id,
            email: u.email.clone(),
            totp_enabled: u.totp.is_some(),
            disabled: u.disabled,
            created_at: format_time(u.created_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AdminUserList {
    admin_users: Vec<AdminUserOut>,
}

/// `POST /admin/v1/admin-users`.
#[derive(ToSchema)]
pub struct CreateAdminUser {
    /// Stored in lower case; unique.
    #[schema(
        min_length = 3,
        max_length = 254,
        pattern = r"^[^@:\s\x00-\x1f\x7f-\x9f]+@[^@:\s\x00-\x1f\x7f-\x9f]+$",
        example = "ops@example.com"
    )]
    pub email: String,
    /// 8–1024 characters, as end users' passwords.
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
}

/// A character of an email's local part or domain. What `email_field` accepts is what the
/// OpenAPI document's pattern says, `^[^@:\s\x00-\x1f\x7f-\x9f]+@[^@:\s\x00-\x1f\x7f-\x9f]+$`:
/// one `@` with text on both sides, no whitespace, no control character, no `:` (the address
/// becomes the label of the TOTP entry, where `:` separates the issuer).
fn email_char(c: char) -> bool {
    // `char::is_whitespace` plus U+FEFF: the JSON Schema pattern's `\s`.
    c != '@' && c != ':' && !c.is_control() && !c.is_whitespace() && c != '\u{feff}'
}

/// An address-shaped email (see `email_char`).
pub fn email_field(f: &mut Fields<'_>) -> Option<String> {
    let email = f.string("email", 3, 254)?;
    let shaped = email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && !domain.is_empty()
            && local.chars().all(email_char)
            && domain.chars().all(email_char)
    });
    if shaped {
        Some(email)
    } else {
        f.push(Issue::value_error(
            "email",
            "value is not a valid email address",
        ));
        None
    }
}

impl JsonBody for CreateAdminUser {
    fn read(f: &mut Fields<'_>, _req: &Request) -> Option<Self> {
        let email = email_field(f);
        let password = f.string("password", 8, 1024);
        Some(CreateAdminUser {
            email: email?,
            password: password?,
        })
    }
}

/// `PATCH /admin/v1/admin-users/{id}`.
#[derive(ToSchema)]
pub struct PatchAdminUser {
    /// A disabled admin user cannot sign in; their sessions end at once.
    pub disabled: bool,
}

impl JsonBody for PatchAdminUser {
    fn read(f: &mut Fields<'_>, _req: &Request) -> Option<Self> {
        let disabled = f.bool("disabled", true);
        Some(PatchAdminUser {
            disabled: disabled?,
        })
    }
}

pub async fn collection(state: &AppState, req: &Request, who: &AdminPrincipal) -> Handled {
    if req.method == Method::GET {
        let users = state.engine.admin_users().await?;
        return Answer::json(
            StatusCode::OK,
            &AdminUserList {
                admin_users: users.iter().map(AdminUserOut::from).collect(),
            },
        );
    }
    let body = CreateAdminUser::parse(req)?;
    let user = state
        .engine
        .create_admin_user(&body.email, body.password)
        .await?;
    audit(state, who, "create_admin_user", None, &user.email).await;
    Answer::json(StatusCode::CREATED, &AdminUserOut::from(&user))
}

fn parse_id(id: &str) -> Result<uuid::Uuid, ApiError> {
    id.parse().map_err(|_| ApiError::code(Code::NotFound))
}

pub async fn one(state: &AppState, req: &Request, who: &AdminPrincipal, id: &str) -> Handled {
    let id = parse_id(id)?;
    match req.method {
        Method::GET => Answer::json(
            StatusCode::OK,
            &AdminUserOut::from(&state.engine.admin_user(id).await?),
        ),
        Method::DELETE => {
            let email = state.engine.admin_user(id).await?.email;
            state.engine.delete_admin_user(id).await?;
            audit(state, who, "delete_admin_user", None, &email).await;
            ok()
        }
        _ => {
            let body = PatchAdminUser::parse(req)?;
            let user = state
                .engine
                .set_admin_user_disabled(id, body.disabled)
                .await?;
            let action = if body.disabled {
                "disable_admin_user"
            } else {
                "enable_admin_user"
            };
            audit(state, who, action, None, &user.email).await;
            Answer::json(StatusCode::OK, &AdminUserOut::from(&user))
        }
    }
}

pub async fn reset_totp(state: &AppState, who: &AdminPrincipal, id: &str) -> Handled {
    let user = state.engine.reset_admin_totp(parse_id(id)?).await?;
    audit(state, who, "reset_admin_totp", None, &user.email).await;
    Answer::json(StatusCode::OK, &AdminUserOut::from(&user))
}

/// `GET /admin/v1/admin-users`
#[utoipa::path(get, path = "/admin/v1/admin-users", tag = "portal", security(("admin" = []), ("portal" = [])),
    responses((status = 200, description = "Every admin user, oldest first", body = AdminUserList)))]
pub fn list_doc() {}

/// `POST /admin/v1/admin-users`
#[utoipa::path(post, path = "/admin/v1/admin-users", tag = "portal", security(("admin" = []), ("portal" = [])),
    request_body = CreateAdminUser,
    responses(
        (status = 201, description = "Created, without TOTP (the user enrols after signing in)", body = AdminUserOut),
        (status = 409, description = "`already_exists`: an admin user has this email", body = CodedError),
        (status = 422, description = "Invalid email or password length", body = ValidationError)))]
pub fn create_doc() {}

/// `GET /admin/v1/admin-users/{id}`
#[utoipa::path(get, path = "/admin/v1/admin-users/{id}", tag = "portal", security(("admin" = []), ("portal" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses(
        (status = 200, description = "The admin user", body = AdminUserOut),
        (status = 404, description = "`not_found`", body = CodedError)))]
pub fn get_doc() {}

/// `PATCH /admin/v1/admin-users/{id}`
#[utoipa::path(patch, path = "/admin/v1/admin-users/{id}", tag = "portal", security(("admin" = []), ("portal" = [])),
    params(("id" = uuid::Uuid, Path)), request_body = PatchAdminUser,
    responses(
        (status = 200, description = "Updated; disabling ends the user's sessions", body = AdminUserOut),
        (status = 404, description = "`not_found`", body = CodedError)))]
pub fn patch_doc() {}

/// `DELETE /admin/v1/admin-users/{id}`
#[utoipa::path(delete, path = "/admin/v1/admin-users/{id}", tag = "portal", security(("admin" = []), ("portal" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses(
        (status = 200, description = "Deleted; the user's sessions end", body = super::Done),
        (status = 404, description = "`not_found`", body = CodedError)))]
pub fn delete_doc() {}

/// `DELETE /admin/v1/admin-users/{id}/totp`
#[utoipa::path(delete, path = "/admin/v1/admin-users/{id}/totp", tag = "portal", security(("admin" = []), ("portal" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses(
        (status = 200, description = "TOTP and recovery codes removed (a lost device); the user's sessions end", body = AdminUserOut),
        (status = 404, description = "`not_found`", body = CodedError)))]
pub fn reset_totp_doc() {}
