//! The portal's sign-in (SPEC §10): `POST /admin/v1/auth/login` sets the `cr_portal` session
//! cookie and answers the CSRF token; `me`, `logout`, and TOTP enrolment for the signed-in
//! admin user.

use commonrock_actors::engine::portal::PortalSession;
use commonrock_actors::model::{AdminUser, SessionState};
use commonrock_actors::DomainError;
use http::header::SET_COOKIE;
use http::{HeaderValue, StatusCode};
use serde::Serialize;
use utoipa::ToSchema;

use super::admin_users::AdminUserOut;
use super::{audit, ok, AdminPrincipal};
use crate::api::public::caller;
use crate::api::AppState;
use crate::http::schema::{CodedError, JsonBody, ValidationError};
use crate::http::validation::Fields;
use crate::http::{format_time, Answer, ApiError, Code, Handled, Request};

/// The portal session cookie's name.
pub const COOKIE: &str = "cr_portal";

/// `POST /admin/v1/auth/login`.
#[derive(ToSchema)]
pub struct Login {
    #[schema(min_length = 1, max_length = 254, example = "ops@example.com")]
    pub email: String,
    #[schema(min_length = 1, max_length = 1024)]
    pub password: String,
    /// The authenticator's 6-digit code, or one of the recovery codes; needed once TOTP is on.
    #[schema(max_length = 64, example = "123456")]
    pub totp_code: Option<String>,
}

impl JsonBody for Login {
    fn read(f: &mut Fields<'_>, _req: &Request) -> Option<Self> {
        let email = f.string("email", 1, 254);
        let password = f.string("password", 1, 1024);
        let totp_code = f.opt_string("totp_code", 64);
        Some(Login {
            email: email?,
            password: password?,
            totp_code,
        })
    }
}

/// `POST /admin/v1/auth/totp/confirm`.
#[derive(ToSchema)]
pub struct ConfirmTotp {
    /// A current code of the secret `enroll` handed out.
    #[schema(min_length = 1, max_length = 16, example = "123456")]
    pub code: String,
}

impl JsonBody for ConfirmTotp {
    fn read(f: &mut Fields<'_>, _req: &Request) -> Option<Self> {
        let code = f.string("code", 1, 16);
        Some(ConfirmTotp { code: code? })
    }
}

/// A signed-in portal session: send `csrf_token` as `X-CSRF-Token` on every write.
#[derive(Serialize, ToSchema)]
pub struct SignedIn {
    csrf_token: String,
    user: AdminUserOut,
}

#[derive(Serialize, ToSchema)]
pub struct SessionTimes {
    created_at: String,
    /// Without a request before this, the session ends (idle timeout, 30 min).
    idle_expires_at: String,
    /// The session ends at this time however busy (12 h after login).
    expires_at: String,
}

/// `GET /admin/v1/auth/me`.
#[derive(Serialize, ToSchema)]
pub struct Me {
    csrf_token: String,
    user: AdminUserOut,
    session: SessionTimes,
}

/// What an authenticator app needs; shown once (the secret is stored encrypted).
#[derive(Serialize, ToSchema)]
pub struct Enrolment {
    #[schema(example = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")]
    secret: String,
    #[schema(example = "otpauth://totp/CommonRock:ops%40example.com?secret=…&issuer=CommonRock")]
    otpauth_url: String,
    /// The `otpauth_url` as a QR code (an SVG document).
    qr_svg: String,
}

/// TOTP is on; the ten recovery codes are shown this once.
#[derive(Serialize, ToSchema)]
pub struct Confirmed {
    recovery_codes: Vec<String>,
    user: AdminUserOut,
}

/// The `cr_portal` cookie's value, if the request has one.
pub fn session_cookie(req: &Request) -> Option<&str> {
    req.headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

/// `Set-Cookie` for `token`: a browser-session cookie (gone when the browser closes), sent
/// only to this host, never to scripts, never cross-site, and only over HTTPS unless the node
/// runs `--dev` on loopback.
pub fn cookie(state: &AppState, token: &str) -> HeaderValue {
    let secure = if state.cookie_secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("cr_portal=; Path=/"))
}

fn clear_cookie(state: &AppState) -> HeaderValue {
    let secure = if state.cookie_secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("cr_portal=; Path=/; Max-Age=0"))
}

fn portal_session(who: &AdminPrincipal) -> Result<&PortalSession, ApiError> {
    // These endpoints are about the signed-in person; a bearer token has none.
    who.session().ok_or_else(|| {
        ApiError::code_with_reason(
            Code::Unauthorized,
            "this endpoint needs a portal session: sign in with POST /admin/v1/auth/login",
        )
    })
}

fn csrf(state: &AppState, session: &PortalSession) -> Result<String, ApiError> {
    state
        .engine
        .csrf_token(&session.session)
        .ok_or_else(|| DomainError::Internal("session key id no longer configured".into()).into())
}

pub async fn login(state: &AppState, req: &Request) -> Handled {
    let body = Login::parse(req)?;
    let (user, issued) = state
        .engine
        .portal_login(
            &body.email,
            body.password,
            body.totp_code.as_deref(),
            &caller(req),
        )
        .await
        .map_err(|e| match e {
            // The admin API's errors are coded (SPEC §10), unlike the end users' plain one.
            DomainError::InvalidCredentials => ApiError::code(Code::InvalidCredentials),
            other => other.into(),
        })?;
    let session = SessionState::of(&issued.session, issued.session.key_id.as_str().into());
    let csrf_token = state
        .engine
        .csrf_token(&session)
        .ok_or_else(|| ApiError::from(DomainError::Internal("no csrf key".into())))?;
    let who = AdminPrincipal {
        actor: super::Actor::User(Box::new(PortalSession {
            session,
            renewed: None,
        })),
        ip: req.ip,
    };
    audit(state, &who, "portal_login", None, &user.email).await;
    Ok(Answer::json(
        StatusCode::OK,
        &SignedIn {
            csrf_token,
            user: AdminUserOut::from(&user),
        },
    )?
    .no_store()
    .with_header(SET_COOKIE, cookie(state, &issued.access_token)))
}

pub async fn logout(state: &AppState, who: &AdminPrincipal) -> Handled {
    let session = portal_session(who)?;
    state.engine.portal_logout(&session.session).await?;
    audit(state, who, "portal_logout", None, session.email()).await;
    Ok(ok()?.with_header(SET_COOKIE, clear_cookie(state)))
}

async fn current_user(state: &AppState, session: &PortalSession) -> Result<AdminUser, ApiError> {
    Ok(state.engine.admin_user(session.user_id()).await?)
}

pub async fn me(state: &AppState, who: &AdminPrincipal) -> Handled {
    let session = portal_session(who)?;
    let user = current_user(state, session).await?;
    let s = &session.session;
    Answer::json(
        StatusCode::OK,
        &Me {
            csrf_token: csrf(state, session)?,
            user: AdminUserOut::from(&user),
            session: SessionTimes {
                created_at: format_time(
                    s.absolute_expires_at - i64::from(state.engine.portal_lifetime_s()),
                ),
                idle_expires_at: format_time(s.access_expires_at),
                expires_at: format_time(s.absolute_expires_at),
            },
        },
    )
    .map(Answer::no_store)
}

pub async fn totp_enroll(state: &AppState, req: &Request, who: &AdminPrincipal) -> Handled {
    let session = portal_session(who)?;
    // The body is empty or `{}`; anything else that is not JSON is still refused as such.
    if !req.body.is_empty() {
        req.json()?;
    }
    let e = state.engine.totp_enroll(session.email()).await?;
    audit(state, who, "totp_enroll", None, session.email()).await;
    Answer::json(
        StatusCode::OK,
        &Enrolment {
            secret: e.secret,
            otpauth_url: e.otpauth_url,
            qr_svg: e.qr_svg,
        },
    )
    .map(Answer::no_store)
}

pub async fn totp_confirm(state: &AppState, req: &Request, who: &AdminPrincipal) -> Handled {
    let session = portal_session(who)?;
    let body = ConfirmTotp::parse(req)?;
    let (user, codes) = state
        .engine
        .totp_confirm(session.email(), &body.code)
        .await?;
    audit(state, who, "totp_enabled", None, session.email()).await;
    Answer::json(
        StatusCode::OK,
        &Confirmed {
            recovery_codes: codes,
            user: AdminUserOut::from(&user),
        },
    )
    .map(Answer::no_store)
}

/// `POST /admin/v1/auth/login`
#[utoipa::path(post, path = "/admin/v1/auth/login", tag = "portal",
    request_body = Login,
    responses(
        (status = 200, description = "Signed in: the `cr_portal` cookie is set (HttpOnly, SameSite=Strict, Secure unless `--dev` on loopback)", body = SignedIn,
            headers(("Set-Cookie" = String, description = "`cr_portal=…; Path=/; HttpOnly; SameSite=Strict; Secure`"))),
        (status = 401, description = "`invalid_credentials` (wrong password, unknown or disabled user) or `invalid_totp` (wrong or already used code)", body = CodedError),
        (status = 403, description = "`totp_required`: TOTP is on and no `totp_code` was sent", body = CodedError),
        (status = 422, description = "Malformed body", body = ValidationError),
        (status = 429, description = "`rate_limited`: too many attempts for this account", body = CodedError)))]
pub fn login_doc() {}

/// `POST /admin/v1/auth/logout`
#[utoipa::path(post, path = "/admin/v1/auth/logout", tag = "portal", security(("portal" = [])),
    responses(
        (status = 200, description = "Signed out: the session is revoked and the cookie cleared", body = super::Done),
        (status = 401, description = "`unauthorized`: no live session", body = CodedError),
        (status = 403, description = "`csrf_failed`: `X-CSRF-Token` missing or wrong", body = CodedError)))]
pub fn logout_doc() {}

/// `GET /admin/v1/auth/me`
#[utoipa::path(get, path = "/admin/v1/auth/me", tag = "portal", security(("portal" = [])),
    responses(
        (status = 200, description = "The signed-in admin user, the session's CSRF token and its expiry", body = Me),
        (status = 401, description = "`unauthorized`: no live session", body = CodedError)))]
pub fn me_doc() {}

/// `POST /admin/v1/auth/totp/enroll`
#[utoipa::path(post, path = "/admin/v1/auth/totp/enroll", tag = "portal", security(("portal" = [])),
    responses(
        (status = 200, description = "A new secret, pending until confirmed", body = Enrolment),
        (status = 409, description = "`already_exists`: TOTP is already on", body = CodedError)))]
pub fn enroll_doc() {}

/// `POST /admin/v1/auth/totp/confirm`
#[utoipa::path(post, path = "/admin/v1/auth/totp/confirm", tag = "portal", security(("portal" = [])),
    request_body = ConfirmTotp,
    responses(
        (status = 200, description = "TOTP is on; ten one-time recovery codes, shown once", body = Confirmed),
        (status = 401, description = "`invalid_totp`: wrong code, or no enrolment pending", body = CodedError),
        (status = 409, description = "`already_exists`: TOTP is already on", body = CodedError)))]
pub fn confirm_doc() {}
