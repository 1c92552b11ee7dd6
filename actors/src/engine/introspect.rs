//! Introspection: is this access token active, and whose is it? The hot path: a parse, one
//! HMAC, and one shard round trip per token (batched per shard), no store write ever.

use std::collections::HashMap;

use uuid::Uuid;

use super::{now, session_key, Engine};
use crate::crypto::tokens::{self, ParsedToken, TokenKind};
use crate::error::DomainError;
use crate::model::{SessionState, UnixSecs};
use crate::shard::ShardMessage;
use crate::tenant::ProjectView;

/// An active access token: its session and when this token expires.
#[derive(Clone, Debug)]
pub struct Active {
    pub session: SessionState,
    pub expires_at: UnixSecs,
}

/// When the token of `parsed` stops being active, if it is active now.
fn active_until(
    s: &SessionState,
    parsed: &ParsedToken,
    kid: &str,
    project: &ProjectView,
    now: UnixSecs,
) -> Option<UnixSecs> {
    if s.project_id != project.project.id
        || &*s.key_id != kid
        || s.revoked
        || now >= s.absolute_expires_at
    {
        return None;
    }
    if parsed.counter == s.counter && now < s.access_expires_at {
        return Some(s.access_expires_at);
    }
    // The previous access token stays active during the same grace window as its refresh token.
    let grace = i64::from(project.project.settings.refresh_reuse_grace_s);
    if grace > 0
        && parsed.counter + 1 == s.counter
        && now < s.rotated_at + grace
        && now < s.prev_access_expires_at
    {
        return Some(s.prev_access_expires_at);
    }
    None
}

impl Engine {
    fn verified<'a>(&'a self, token: &str) -> Option<(ParsedToken, &'a str)> {
        let parsed = tokens::parse(token, TokenKind::Access)?;
        let kid = self.secrets.verify_any(&parsed)?;
        Some((parsed, kid))
    }

    pub async fn introspect(
        &self,
        project: &ProjectView,
        token: &str,
    ) -> Result<Option<Active>, DomainError> {
        self.active(project, token, false).await
    }

    /// The active session of an access token; `with_user` also fetches its external id.
    pub(super) async fn active(
        &self,
        project: &ProjectView,
        token: &str,
        with_user: bool,
    ) -> Result<Option<Active>, DomainError> {
        let Some((parsed, kid)) = self.verified(token) else {
            return Ok(None);
        };
        let Some(session) = self.get_session(parsed.session_id, with_user).await? else {
            return Ok(None);
        };
        Ok(
            active_until(&session, &parsed, kid, project, now()).map(|expires_at| Active {
                session,
                expires_at,
            }),
        )
    }

    /// Answers in request order; tokens are grouped per owner shard, one call per shard.
    pub async fn introspect_batch<T: AsRef<str>>(
        &self,
        project: &ProjectView,
        tokens: &[T],
    ) -> Result<Vec<Option<Active>>, DomainError> {
        let mut out: Vec<Option<Active>> = vec![None; tokens.len()];
        let mut per_shard: HashMap<usize, Vec<(usize, ParsedToken, &str)>> = HashMap::new();
        for (i, t) in tokens.iter().enumerate() {
            if let Some((parsed, kid)) = self.verified(t.as_ref()) {
                let shard = self.shard_for(&session_key(parsed.session_id))?;
                per_shard.entry(shard).or_default().push((i, parsed, kid));
            }
        }
        let calls = per_shard.into_iter().map(|(shard, items)| async move {
            let session_ids: Vec<Uuid> = items.iter().map(|(_, p, _)| p.session_id).collect();
            let sessions = self
                .shards
                .call(shard, |reply| ShardMessage::GetMany { session_ids, reply })
                .await??;
            Ok::<_, DomainError>((items, sessions))
        });
        let now = now();
        for result in futures_util::future::join_all(calls).await {
            let (items, sessions) = result?;
            for ((i, parsed, kid), session) in items.into_iter().zip(sessions) {
                if let Some(session) = session {
                    out[i] = active_until(&session, &parsed, kid, project, now).map(|expires_at| {
                        Active {
                            session,
                            expires_at,
                        }
                    });
                }
            }
        }
        Ok(out)
    }
}
