//! End-user flows: signup, login, refresh with rotation and the reuse grace window, logout,
//! session listing and revocation, password change.

use std::net::IpAddr;

use uuid::Uuid;

use super::{account_key, now, Engine};
use crate::crypto::tokens::{self, TokenKind};
use crate::error::DomainError;
use crate::model::{EndUser, Inserted, Session, SessionState};
use crate::owner::{OwnerCall, OwnerReply, Placement};
use crate::ratelimit::LimitCheck;
use crate::shard::{RefreshOutcome, RefreshRequest, ShardMessage};
use crate::tenant::ProjectView;

/// Revocations in flight at once for an operation over all of a user's sessions.
const USER_WIDE_CONCURRENCY: usize = 16;

/// Who is calling, as far as the HTTP layer could tell.
#[derive(Clone, Debug, Default)]
pub struct Caller {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

pub struct Credentials {
    pub external_id: String,
    pub password: String,
    pub device_id: String,
}

/// Whose a new session is: the user's id and the name sessions show (`external_id`).
#[derive(Clone, Copy)]
pub(super) struct SessionOwner<'a> {
    pub id: Uuid,
    pub name: &'a str,
}

impl<'a> From<&'a EndUser> for SessionOwner<'a> {
    fn from(u: &'a EndUser) -> Self {
        SessionOwner {
            id: u.id,
            name: &u.external_id,
        }
    }
}

/// A session with the pair of tokens derived for its current counter.
pub struct Issued {
    pub access_token: String,
    pub refresh_token: String,
    pub session: Box<Session>,
}

impl Engine {
    fn issue(&self, session: Box<Session>) -> Result<Issued, DomainError> {
        let mint = |kind| {
            self.secrets
                .mint(&session.key_id, kind, session.id, session.counter)
                .ok_or_else(|| DomainError::Internal("session key id no longer configured".into()))
        };
        Ok(Issued {
            access_token: mint(TokenKind::Access)?,
            refresh_token: mint(TokenKind::Refresh)?,
            session,
        })
    }

    /// A new session of `user` (an end user, or an admin user of the portal's project).
    pub(super) async fn create_session(
        &self,
        project: &ProjectView,
        user: SessionOwner<'_>,
        device_id: String,
        caller: &Caller,
    ) -> Result<Issued, DomainError> {
        let now = now();
        let s = &project.project.settings;
        let absolute = now + i64::from(s.session_max_ttl_s);
        let session = Session {
            // Time-ordered: the store lists a user's sessions by (created_at, id), and
            // created_at has whole seconds, so a random id would make "oldest first" (the
            // session cap) arbitrary among sessions created within the same second.
            id: Uuid::now_v7(),
            project_id: project.project.id,
            end_user_id: user.id,
            external_id: user.name.to_string(),
            device_id,
            user_agent: caller.user_agent.clone(),
            ip: caller.ip.map(|ip| ip.to_string()),
            created_at: now,
            last_used_at: now,
            counter: 0,
            rotated_at: now,
            access_expires_at: (now + i64::from(s.access_ttl_s)).min(absolute),
            prev_access_expires_at: now,
            refresh_expires_at: (now + i64::from(s.refresh_ttl_s)).min(absolute),
            absolute_expires_at: absolute,
            key_id: self.secrets.current_key_id().to_string(),
            revoked_at: None,
            version: 0,
        };
        let session_id = session.id;
        let record = Box::new(session);
        // Durable before anyone sees a token of it; then the owner shard caches it when it is
        // here (another owner loads it from the store on first use).
        self.store.insert_session(&record).await?;
        if let Placement::Local(shard) = self
            .router
            .place(&super::session_key(session_id), self.shards.len())
        {
            self.shards.cast(
                shard,
                ShardMessage::Cache {
                    session: record.clone(),
                },
            );
        }
        self.enforce_session_cap(project, user.id, session_id, now)
            .await?;
        self.issue(record)
    }

    /// Revokes the oldest live sessions beyond the project's per-user cap; never `new`, the
    /// session being handed out right now.
    ///
    /// Concurrent logins of one user (on any nodes) cannot leave more than the cap: each one's
    /// session is durable before it lists, and the store's reads see completed writes, so of
    /// two logins the one that lists later sees the other's session and counts it. What the
    /// race can cost is order: a login may revoke a session newer than its own.
    async fn enforce_session_cap(
        &self,
        project: &ProjectView,
        end_user_id: Uuid,
        new: Uuid,
        now: i64,
    ) -> Result<(), DomainError> {
        let max = project.project.settings.max_sessions_per_user.max(1) as usize;
        let older: Vec<Session> = self
            .store
            .list_user_sessions(project.project.id, end_user_id)
            .await?
            .into_iter()
            .filter(|s| s.is_live(now) && s.id != new)
            .collect();
        let excess = (older.len() + 1).saturating_sub(max);
        let ids: Vec<Uuid> = older[..excess.min(older.len())]
            .iter()
            .map(|s| s.id)
            .collect();
        self.revoke_all(&ids, now).await?;
        Ok(())
    }

    pub async fn signup(
        &self,
        project: &ProjectView,
        creds: Credentials,
        caller: &Caller,
    ) -> Result<Issued, DomainError> {
        let pid = project.project.id;
        // Cheap refusal before spending Argon2 on an id that is certainly taken; the
        // conditional insert below is what guarantees uniqueness.
        if self
            .store
            .get_end_user(pid, &creds.external_id)
            .await?
            .is_some()
        {
            return Err(DomainError::ExternalIdTaken);
        }
        let password_hash = self.passwords.hash(creds.password).await?;
        let user = EndUser {
            id: Uuid::now_v7(),
            project_id: pid,
            external_id: creds.external_id,
            password_hash,
            disabled: false,
            created_at: now(),
            version: 0,
        };
        match self.store.insert_end_user(&user).await? {
            Inserted::Created => {}
            Inserted::AlreadyExists => return Err(DomainError::ExternalIdTaken),
        }
        self.create_session(project, (&user).into(), creds.device_id, caller)
            .await
    }

    pub async fn login(
        &self,
        project: &ProjectView,
        creds: Credentials,
        caller: &Caller,
    ) -> Result<Issued, DomainError> {
        self.check_login_limits(project, &creds.external_id, caller)
            .await?;
        let pid = project.project.id;
        let user = self.store.get_end_user(pid, &creds.external_id).await?;
        let ok = self
            .passwords
            .verify(
                creds.password,
                user.as_ref().map(|u| u.password_hash.clone()),
            )
            .await?;
        match user {
            Some(user) if ok && !user.disabled => {
                self.create_session(project, (&user).into(), creds.device_id, caller)
                    .await
            }
            _ => Err(DomainError::InvalidCredentials),
        }
    }

    /// Counts a login attempt for `account` of `project` against its per-account limits,
    /// before any Argon2 work, so a parallel burst cannot slip through.
    pub(super) async fn check_login_limits(
        &self,
        project: &ProjectView,
        account_name: &str,
        caller: &Caller,
    ) -> Result<(), DomainError> {
        let pid = project.project.id;
        let limits = &project.project.settings.rate_limits;
        let account = account_key(pid, account_name);
        // Attempts are counted before Argon2, so a parallel burst cannot slip through.
        let mut per_ip_key = [b"lai:".as_slice(), &account, b"\0"].concat();
        match caller.ip {
            Some(ip) => per_ip_key.extend_from_slice(ip.to_string().as_bytes()),
            // Unknown callers share one bucket: unknown must not mean unlimited.
            None => per_ip_key.extend_from_slice(b"unknown"),
        }
        let checks = vec![
            LimitCheck {
                name: "login_per_account_ip",
                key: per_ip_key,
                limit: limits.login_per_account_ip,
            },
            LimitCheck {
                name: "login_per_account",
                key: [b"la:".as_slice(), &account].concat(),
                limit: limits.login_per_account,
            },
        ];
        if let Err(e) = self.check_limits(&account, checks).await {
            if matches!(e, DomainError::RateLimited { .. }) {
                self.security_event("login_locked_out");
                tracing::warn!(project = %project.project.slug, "login attempts over limit");
            }
            return Err(e);
        }
        Ok(())
    }

    pub async fn refresh(
        &self,
        project: &ProjectView,
        refresh_token: &str,
        device_id: String,
        caller: &Caller,
    ) -> Result<Issued, DomainError> {
        let parsed = tokens::parse(refresh_token, TokenKind::Refresh)
            .ok_or(DomainError::InvalidRefreshToken)?;
        let kid = self
            .secrets
            .verify_any(&parsed)
            .ok_or(DomainError::InvalidRefreshToken)?
            .to_string();
        let s = &project.project.settings;
        let request = RefreshRequest {
            session_id: parsed.session_id,
            project_id: project.project.id,
            counter: parsed.counter,
            device_id,
            ip: caller.ip.map(|ip| ip.to_string()),
            user_agent: caller.user_agent.clone(),
            access_ttl_s: s.access_ttl_s,
            refresh_ttl_s: s.refresh_ttl_s,
            grace_s: s.refresh_reuse_grace_s,
            now: now(),
        };
        let outcome: RefreshOutcome = match self
            .owner(
                &super::session_key(parsed.session_id),
                OwnerCall::Refresh(Box::new(request)),
            )
            .await?
        {
            OwnerReply::Refresh(o) => o.into(),
            _ => return Err(super::owner::mismatch()),
        };
        match outcome {
            RefreshOutcome::Rotated(session) | RefreshOutcome::Replayed(session) => {
                if session.key_id != kid {
                    return Err(DomainError::InvalidRefreshToken);
                }
                self.issue(session)
            }
            RefreshOutcome::TheftDetected => {
                self.security_event("refresh_token_reuse");
                tracing::warn!(
                    project = %project.project.slug,
                    session_id = %parsed.session_id,
                    "refresh token reused outside the grace window: session revoked"
                );
                Err(DomainError::InvalidRefreshToken)
            }
        }
    }

    /// The live session behind an access token of this project, or `InvalidSession`.
    pub async fn authenticate(
        &self,
        project: &ProjectView,
        access_token: &str,
    ) -> Result<SessionState, DomainError> {
        match self.active(project, access_token, true).await? {
            Some(active) => Ok(active.session),
            None => Err(DomainError::InvalidSession),
        }
    }

    async fn revoke(&self, session_id: Uuid, now: i64) -> Result<bool, DomainError> {
        match self
            .owner(
                &super::session_key(session_id),
                OwnerCall::Revoke { session_id, now },
            )
            .await?
        {
            OwnerReply::Revoked(r) => Ok(r),
            _ => Err(super::owner::mismatch()),
        }
    }

    /// Revokes sessions that have different owners, a bounded number at once (one user's
    /// hundred sessions must not flood the owners' mailboxes); answers how many were live, only
    /// once every owner has applied its part.
    pub(super) async fn revoke_all(&self, ids: &[Uuid], now: i64) -> Result<usize, DomainError> {
        let mut n = 0;
        for chunk in ids.chunks(USER_WIDE_CONCURRENCY) {
            let revoked =
                futures_util::future::try_join_all(chunk.iter().map(|id| self.revoke(*id, now)))
                    .await?;
            n += revoked.into_iter().filter(|r| *r).count();
        }
        Ok(n)
    }

    pub async fn logout(
        &self,
        project: &ProjectView,
        access_token: &str,
    ) -> Result<(), DomainError> {
        let session = self.authenticate(project, access_token).await?;
        self.revoke(session.id, now()).await?;
        self.security_event("session_revoked");
        Ok(())
    }

    /// The user's sessions that have not expired, oldest first (revoked ones included).
    pub async fn user_sessions(
        &self,
        project_id: Uuid,
        end_user_id: Uuid,
    ) -> Result<Vec<Session>, DomainError> {
        Ok(self
            .store
            .list_user_sessions(project_id, end_user_id)
            .await?)
    }

    /// Revokes one session of this project; false when it does not exist here or was not live.
    /// `owner` restricts it to one end user's sessions.
    pub async fn revoke_session(
        &self,
        project_id: Uuid,
        session_id: Uuid,
        owner: Option<Uuid>,
    ) -> Result<bool, DomainError> {
        let Some(s) = self.get_session(session_id, false, 0).await? else {
            return Ok(false);
        };
        if s.project_id != project_id || owner.is_some_and(|o| o != s.end_user_id) {
            return Ok(false);
        }
        let revoked = self.revoke(session_id, now()).await?;
        if revoked {
            self.security_event("session_revoked");
        }
        Ok(revoked)
    }

    /// Revokes every live session of a user except `keep`; answers how many.
    pub async fn revoke_user_sessions(
        &self,
        project_id: Uuid,
        end_user_id: Uuid,
        keep: Option<Uuid>,
    ) -> Result<usize, DomainError> {
        let now = now();
        let live: Vec<Uuid> = self
            .store
            .list_user_sessions(project_id, end_user_id)
            .await?
            .into_iter()
            .filter(|s| Some(s.id) != keep && s.is_live(now))
            .map(|s| s.id)
            .collect();
        let n = self.revoke_all(&live, now).await?;
        if n > 0 {
            self.security_event("session_revoked");
        }
        Ok(n)
    }

    /// Checks the current password, stores the new hash, revokes the user's other sessions.
    pub async fn change_password(
        &self,
        project: &ProjectView,
        session: &SessionState,
        current_password: String,
        new_password: String,
    ) -> Result<(), DomainError> {
        let pid = project.project.id;
        let user = self
            .store
            .get_end_user(pid, &session.external_id)
            .await?
            .filter(|u| u.id == session.end_user_id)
            .ok_or(DomainError::InvalidSession)?;
        if !self
            .passwords
            .verify(current_password, Some(user.password_hash.clone()))
            .await?
        {
            return Err(DomainError::InvalidCredentials);
        }
        self.set_password_hash(user, new_password).await?;
        self.revoke_user_sessions(pid, session.end_user_id, Some(session.id))
            .await?;
        Ok(())
    }

    pub(super) async fn set_password_hash(
        &self,
        mut user: EndUser,
        new_password: String,
    ) -> Result<(), DomainError> {
        let expected = user.version;
        user.password_hash = self.passwords.hash(new_password).await?;
        user.version += 1;
        if !self.store.cas_end_user(&user, expected).await? {
            // Someone changed the user meanwhile (another password change, disable, delete):
            // refuse rather than silently overwrite their change.
            return Err(DomainError::unavailable("end user changed concurrently"));
        }
        Ok(())
    }
}
