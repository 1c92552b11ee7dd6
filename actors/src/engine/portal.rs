//! The portal's people (SPEC §10): admin users with Argon2id passwords and TOTP, their cookie
//! sessions, and the audit log of admin actions.
//!
//! A portal session is an ordinary session of a project that exists only here (the portal
//! project: never in the tenant directory, so no tenant endpoint can reach it), owned by the
//! admin user. So it is stored, cached, revoked and forwarded across a cluster exactly as an
//! end user's session, and its cookie holds an access token like any other: hashed nowhere,
//! derived from the server secret. The idle timeout is the access token's lifetime, renewed by
//! rotating the session at most once a minute while it is used; the absolute one is the
//! session's hard end.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use super::sessions::{Caller, Issued, SessionOwner};
use super::{now, Engine};
use crate::crypto::tokens::{self, TokenKind};
use crate::crypto::totp;
use crate::error::DomainError;
use crate::model::{AdminUser, AuditEntry, Inserted, Project, ProjectSettings, SessionState};
use crate::tenant::ProjectView;

/// The id of the portal's own project ("commonrockportal" in ASCII); real projects have
/// random ids.
pub const PORTAL_PROJECT_ID: Uuid = Uuid::from_u128(0x636f_6d6d_6f6e_726f_636b_706f_7274_616c);
/// A portal session ends after this long without a request.
pub const IDLE_TIMEOUT_S: u32 = 30 * 60;
/// ... and this long after login, however busy.
pub const ABSOLUTE_TIMEOUT_S: u32 = 12 * 3600;
/// A session used again after a thirtieth of its idle timeout (a minute by default) gets a
/// fresh token: one store write a minute at most.
const RENEW_DIVISOR: i64 = 30;
/// How many live portal sessions one admin user may have.
const MAX_SESSIONS: u32 = 20;
/// Conditional writes retried when another node changed the same admin user meanwhile.
const CAS_ATTEMPTS: usize = 5;

/// The portal's project: its settings are the portal's session rules (`idle_s` without a
/// request, `lifetime_s` after sign-in).
pub fn portal_project(idle_s: u32, lifetime_s: u32) -> ProjectView {
    ProjectView {
        project: Project {
            id: PORTAL_PROJECT_ID,
            org_id: Uuid::nil(),
            slug: String::new(),
            name: "portal".into(),
            settings: ProjectSettings {
                access_ttl_s: idle_s,
                refresh_ttl_s: idle_s,
                // Requests a page makes at once may each try to renew: the later ones within
                // this window get the same successor instead of tripping theft detection.
                refresh_reuse_grace_s: 120,
                session_max_ttl_s: lifetime_s.max(idle_s),
                max_sessions_per_user: MAX_SESSIONS,
                rate_limits: Default::default(),
            },
            maintenance: false,
            created_at: 0,
        },
        org_slug: String::new(),
        clients: Default::default(),
        keys: Default::default(),
    }
}

/// Emails are compared after trimming and lower-casing.
pub fn normalise_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// A live portal session, as a cookie authenticated it.
#[derive(Clone, Debug)]
pub struct PortalSession {
    pub session: SessionState,
    /// A new token for the cookie when this request renewed the session.
    pub renewed: Option<String>,
}

impl PortalSession {
    pub fn user_id(&self) -> Uuid {
        self.session.end_user_id
    }

    pub fn email(&self) -> &str {
        &self.session.external_id
    }
}

/// A TOTP enrolment to show once.
pub struct TotpEnrolment {
    pub secret: String,
    pub otpauth_url: String,
    pub qr_svg: String,
}

impl Engine {
    pub async fn create_admin_user(
        &self,
        email: &str,
        password: String,
    ) -> Result<AdminUser, DomainError> {
        let email = normalise_email(email);
        if self.store.get_admin_user(&email).await?.is_some() {
            return Err(DomainError::AlreadyExists("admin user"));
        }
        let user = AdminUser {
            id: Uuid::now_v7(),
            email,
            password_hash: self.passwords.hash(password).await?,
            disabled: false,
            totp: None,
            totp_pending: None,
            totp_last_step: 0,
            recovery_codes: vec![],
            created_at: now(),
            version: 0,
        };
        match self.store.insert_admin_user(&user).await? {
            Inserted::Created => Ok(user),
            Inserted::AlreadyExists => Err(DomainError::AlreadyExists("admin user")),
        }
    }

    /// Every admin user, oldest first.
    pub async fn admin_users(&self) -> Result<Vec<AdminUser>, DomainError> {
        let mut users = self.store.list_admin_users().await?;
        users.sort_by_key(|u| (u.created_at, u.id));
        Ok(users)
    }

    pub async fn admin_user(&self, id: Uuid) -> Result<AdminUser, DomainError> {
        self.store
            .list_admin_users()
            .await?
            .into_iter()
            .find(|u| u.id == id)
            .ok_or(DomainError::NotFound("admin user"))
    }

    /// Applies `change` to the admin user by compare-and-set, re-reading and retrying when
    /// another writer got there first. `change` may refuse (its error is returned as is).
    async fn update_admin_user<T>(
        &self,
        email: &str,
        mut change: impl FnMut(&mut AdminUser) -> Result<T, DomainError>,
    ) -> Result<(AdminUser, T), DomainError> {
        for _ in 0..CAS_ATTEMPTS {
            let mut user = self
                .store
                .get_admin_user(email)
                .await?
                .ok_or(DomainError::NotFound("admin user"))?;
            let expected = user.version;
            let out = change(&mut user)?;
            user.version += 1;
            if self.store.cas_admin_user(&user, expected).await? {
                return Ok((user, out));
            }
        }
        Err(DomainError::unavailable("admin user changed concurrently"))
    }

    /// Disabling also ends every portal session of the user.
    pub async fn set_admin_user_disabled(
        &self,
        id: Uuid,
        disabled: bool,
    ) -> Result<AdminUser, DomainError> {
        let email = self.admin_user(id).await?.email;
        let (user, ()) = self
            .update_admin_user(&email, |u| {
                u.disabled = disabled;
                Ok(())
            })
            .await?;
        if disabled {
            self.end_portal_sessions(user.id).await?;
        }
        Ok(user)
    }

    pub async fn delete_admin_user(&self, id: Uuid) -> Result<(), DomainError> {
        let user = self.admin_user(id).await?;
        self.store.delete_admin_user(&user.email).await?;
        self.end_portal_sessions(user.id).await?;
        Ok(())
    }

    /// Turns TOTP off for a user who lost the device and the recovery codes (another admin
    /// or a token does this); their sessions end, so the next login is with the password.
    pub async fn reset_admin_totp(&self, id: Uuid) -> Result<AdminUser, DomainError> {
        let email = self.admin_user(id).await?.email;
        let (user, ()) = self
            .update_admin_user(&email, |u| {
                u.totp = None;
                u.totp_pending = None;
                u.recovery_codes.clear();
                Ok(())
            })
            .await?;
        self.end_portal_sessions(user.id).await?;
        Ok(user)
    }

    async fn end_portal_sessions(&self, admin_user_id: Uuid) -> Result<(), DomainError> {
        self.revoke_user_sessions(PORTAL_PROJECT_ID, admin_user_id, None)
            .await?;
        Ok(())
    }

    /// Password, then (when enrolled) a TOTP or recovery code, then a new portal session.
    /// Attempts count against the login limits before any Argon2 work; wrong codes count too.
    pub async fn portal_login(
        &self,
        email: &str,
        password: String,
        code: Option<&str>,
        caller: &Caller,
    ) -> Result<(AdminUser, Issued), DomainError> {
        let project = &self.portal;
        let email = normalise_email(email);
        // As for end users: attempts per caller IP over every account, then per account.
        let route = crate::routing::ip_key(PORTAL_PROJECT_ID, caller.ip);
        let per_ip = crate::ratelimit::LimitCheck {
            name: "login_per_ip",
            key: [b"login_per_ip".as_slice(), &route].concat(),
            limit: project.project.settings.rate_limits.login_per_ip,
        };
        self.check_limits(&route, vec![per_ip]).await?;
        if let Err(e) = self.check_login_limits(project, &email, caller).await {
            if matches!(e, DomainError::RateLimited { .. }) {
                tracing::warn!("portal login attempts over limit");
            }
            return Err(e);
        }
        let user = self.store.get_admin_user(&email).await?;
        let ok = self
            .passwords
            .verify(password, user.as_ref().map(|u| u.password_hash.clone()))
            .await?;
        let user = match user {
            Some(user) if ok && !user.disabled => user,
            _ => return Err(DomainError::InvalidCredentials),
        };
        let user = if user.totp.is_some() {
            let code = code
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .ok_or(DomainError::TotpRequired)?;
            self.consume_second_factor(&user.email, code).await?
        } else {
            user
        };
        let issued = self
            .create_session(
                project,
                SessionOwner {
                    id: user.id,
                    name: &user.email,
                },
                "portal".into(),
                caller,
            )
            .await?;
        self.security_event("portal_login");
        Ok((user, issued))
    }

    /// Accepts `code` once: a TOTP code of a step later than the last accepted one, or an
    /// unused recovery code. The conditional write is what makes "once" hold across nodes.
    async fn consume_second_factor(
        &self,
        email: &str,
        code: &str,
    ) -> Result<AdminUser, DomainError> {
        let now = now();
        let (user, ()) = self
            .update_admin_user(email, |u| {
                let sealed = u.totp.as_ref().ok_or(DomainError::InvalidTotp)?;
                let secret = totp::decrypt(&self.secrets, u.id, sealed).ok_or_else(|| {
                    DomainError::Internal("TOTP secret does not decrypt with any server key".into())
                })?;
                if let Some(step) = totp::matching_step(&secret, code, now, u.totp_last_step) {
                    u.totp_last_step = step;
                    return Ok(());
                }
                match totp::find_recovery_code(&u.recovery_codes, code) {
                    Some(i) => {
                        u.recovery_codes.remove(i);
                        Ok(())
                    }
                    None => Err(DomainError::InvalidTotp),
                }
            })
            .await?;
        Ok(user)
    }

    /// The live portal session behind a cookie's token, renewed when it is over a minute old.
    pub async fn portal_session(
        &self,
        token: &str,
        caller: &Caller,
    ) -> Result<PortalSession, DomainError> {
        let project = &self.portal;
        let session = self.authenticate(project, token).await?;
        let parsed = tokens::parse(token, TokenKind::Access).ok_or(DomainError::InvalidSession)?;
        let now = now();
        let idle = i64::from(project.project.settings.access_ttl_s);
        let age = idle - (session.access_expires_at - now);
        let renewed = if parsed.counter < session.counter {
            // A request that raced a renewal: hand out the current token again.
            self.mint(&session, TokenKind::Access)
        } else if age >= (idle / RENEW_DIVISOR).max(1)
            && session.access_expires_at < session.absolute_expires_at
        {
            let refresh = self
                .mint(&session, TokenKind::Refresh)
                .ok_or(DomainError::InvalidSession)?;
            let issued = self
                .refresh(project, &refresh, "portal".into(), caller)
                .await
                .map_err(|e| match e {
                    DomainError::InvalidRefreshToken => DomainError::InvalidSession,
                    other => other,
                })?;
            Some(issued.access_token)
        } else {
            None
        };
        Ok(PortalSession { session, renewed })
    }

    /// The absolute lifetime of a portal session, in seconds.
    pub fn portal_lifetime_s(&self) -> u32 {
        self.portal.project.settings.session_max_ttl_s
    }

    fn mint(&self, s: &SessionState, kind: TokenKind) -> Option<String> {
        self.secrets.mint(&s.key_id, kind, s.id, s.counter)
    }

    /// Ends a portal session (logout).
    pub async fn portal_logout(&self, session: &SessionState) -> Result<(), DomainError> {
        self.revoke_session(PORTAL_PROJECT_ID, session.id, Some(session.end_user_id))
            .await?;
        Ok(())
    }

    /// The session's CSRF token: an HMAC of its id under a key derived from the server key
    /// that minted it. Nothing to store, the same on every node, and useless without the
    /// cookie's session.
    pub fn csrf_token(&self, session: &SessionState) -> Option<String> {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine as _;
        let key = self
            .secrets
            .derive_key_with(&session.key_id, b"portal/csrf/v1")?;
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).ok()?;
        mac.update(session.id.as_bytes());
        Some(URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    /// Starts (or restarts) enrolment: a new secret, kept pending until a code confirms it.
    pub async fn totp_enroll(&self, email: &str) -> Result<TotpEnrolment, DomainError> {
        let secret = totp::new_secret();
        let enrolment = totp::enrolment(&secret, email).ok_or(DomainError::Internal(
            "email is not a valid TOTP label".into(),
        ))?;
        self.update_admin_user(email, |u| {
            if u.totp.is_some() {
                return Err(DomainError::AlreadyExists("totp"));
            }
            let sealed = totp::encrypt(&self.secrets, u.id, &secret)
                .ok_or_else(|| DomainError::Internal("TOTP secret encryption failed".into()))?;
            u.totp_pending = Some(sealed);
            Ok(())
        })
        .await?;
        Ok(TotpEnrolment {
            secret: enrolment.secret_base32,
            otpauth_url: enrolment.otpauth_url,
            qr_svg: enrolment.qr_svg,
        })
    }

    /// Turns TOTP on with a code from the pending secret; answers the ten recovery codes,
    /// shown this once (only their hashes are kept).
    pub async fn totp_confirm(
        &self,
        email: &str,
        code: &str,
    ) -> Result<(AdminUser, Vec<String>), DomainError> {
        let now = now();
        let (codes, hashes) = totp::recovery_codes();
        let (user, ()) = self
            .update_admin_user(email, |u| {
                if u.totp.is_some() {
                    return Err(DomainError::AlreadyExists("totp"));
                }
                let sealed = u.totp_pending.as_ref().ok_or(DomainError::InvalidTotp)?;
                let secret =
                    totp::decrypt(&self.secrets, u.id, sealed).ok_or(DomainError::InvalidTotp)?;
                let step = totp::matching_step(&secret, code, now, u.totp_last_step)
                    .ok_or(DomainError::InvalidTotp)?;
                u.totp = u.totp_pending.take();
                u.totp_last_step = step;
                u.recovery_codes = hashes.clone();
                Ok(())
            })
            .await?;
        self.security_event("totp_enabled");
        Ok((user, codes))
    }

    /// Records an admin action. An action already done is not undone when its entry cannot
    /// be written: the failure is logged and counted instead.
    pub async fn record_audit(&self, entry: AuditEntry) {
        if let Err(e) = self.store.append_audit(&entry).await {
            self.metrics
                .security_events
                .with_label_values(&["audit_write_failed"])
                .inc();
            tracing::error!(error = %e, action = %entry.action, "audit entry not written");
        }
    }

    /// Newest first, `limit` entries older than `before`.
    pub async fn audit_log(
        &self,
        before: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, DomainError> {
        Ok(self.store.list_audit(before, limit).await?)
    }
}
