//! Introspection: is this access token active, and whose is it? The hot path: a parse, one
//! HMAC, and one shard round trip per token (batched per shard), no store write ever.

use std::collections::HashMap;

use uuid::Uuid;

use super::{now, session_key, Engine};
use crate::crypto::tokens::{self, ParsedToken, TokenKind};
use crate::error::DomainError;
use crate::model::{SessionState, UnixSecs};
use crate::owner::{OwnerCall, OwnerError, OwnerReply, Placement};
use crate::tenant::ProjectView;

/// Why one owner's group of a batch has no answer.
enum Group {
    /// The node asked no longer owns the keys at this epoch: place them again.
    Moved(u64),
    Failed(DomainError),
}

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
        let Some(session) = self
            .get_session(parsed.session_id, with_user, parsed.counter)
            .await?
        else {
            return Ok(None);
        };
        Ok(
            active_until(&session, &parsed, kid, project, now()).map(|expires_at| Active {
                session,
                expires_at,
            }),
        )
    }

    /// Answers in request order; tokens are grouped per owner (a local shard or another
    /// node), one call per owner, all in parallel.
    pub async fn introspect_batch<T: AsRef<str>>(
        &self,
        project: &ProjectView,
        tokens: &[T],
    ) -> Result<Vec<Option<Active>>, DomainError> {
        let mut out: Vec<Option<Active>> = vec![None; tokens.len()];
        let verified: Vec<(usize, ParsedToken, &str)> = tokens
            .iter()
            .enumerate()
            .filter_map(|(i, t)| self.verified(t.as_ref()).map(|(p, kid)| (i, p, kid)))
            .collect();
        let wanted: Vec<(Uuid, u64)> = verified
            .iter()
            .map(|(_, p, _)| (p.session_id, p.counter))
            .collect();
        let sessions = self.sessions_of(&wanted).await?;
        let now = now();
        for ((i, parsed, kid), session) in verified.into_iter().zip(sessions) {
            if let Some(session) = session {
                out[i] =
                    active_until(&session, &parsed, kid, project, now).map(|expires_at| Active {
                        session,
                        expires_at,
                    });
            }
        }
        Ok(out)
    }

    /// Sessions by id (with the presented counters), in input order: one owner call per
    /// owner, in parallel; a group whose owner moved is placed again once.
    async fn sessions_of(
        &self,
        wanted: &[(Uuid, u64)],
    ) -> Result<Vec<Option<SessionState>>, DomainError> {
        let mut out: Vec<Option<SessionState>> = vec![None; wanted.len()];
        let mut todo: Vec<usize> = (0..wanted.len()).collect();
        for attempt in 0..2 {
            let mut groups: HashMap<Placement, Vec<usize>> = HashMap::new();
            for &i in &todo {
                let place = self
                    .router
                    .place(&session_key(wanted[i].0), self.shards.len());
                groups.entry(place).or_default().push(i);
            }
            let calls = groups.into_iter().map(|(place, items)| async move {
                let sessions: Vec<(Uuid, u64)> = items.iter().map(|&i| wanted[i]).collect();
                let key = session_key(sessions[0].0);
                let call = OwnerCall::GetMany { sessions };
                let reply = match place {
                    // A local group goes through `owner` too, for its ownership checks.
                    Placement::Local(_) | Placement::Pending => {
                        self.owner(&key, call).await.map_err(Group::Failed)
                    }
                    Placement::Remote(node) => match self.forward(&node, &call).await {
                        Err(OwnerError::NotOwner { epoch }) => Err(Group::Moved(epoch)),
                        other => other.map_err(|e| Group::Failed(e.into())),
                    },
                    Placement::Unavailable => Err(Group::Failed(DomainError::unavailable(
                        "no node owns the key",
                    ))),
                };
                (items, reply)
            });
            let mut moved = Vec::new();
            let mut newest = 0;
            for (items, reply) in futures_util::future::join_all(calls).await {
                match reply {
                    Ok(OwnerReply::Sessions(found)) if found.len() == items.len() => {
                        for (i, s) in items.into_iter().zip(found) {
                            out[i] = s;
                        }
                    }
                    Ok(_) => return Err(super::owner::mismatch()),
                    Err(Group::Moved(epoch)) if attempt == 0 => {
                        newest = newest.max(epoch);
                        moved.extend(items);
                    }
                    Err(Group::Moved(_)) => {
                        return Err(DomainError::unavailable("ownership is moving"))
                    }
                    Err(Group::Failed(e)) => return Err(e),
                }
            }
            if moved.is_empty() {
                return Ok(out);
            }
            self.router
                .refresh(newest.max(self.router.epoch() + 1))
                .await;
            todo = moved;
        }
        Err(DomainError::unavailable("ownership is moving"))
    }
}
