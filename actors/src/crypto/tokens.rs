//! Session tokens. A token is `cr_at_` / `cr_rt_` + base64url(version ‖ session id ‖ counter ‖
//! MAC), MAC = HMAC-SHA256(server secret, kind ‖ session id ‖ counter). Nothing about a token
//! is stored: the session keeps only its counter, so the successor handed out during the
//! reuse grace window is derived again, byte-identical, after a restart and on any node. The
//! session id is the non-secret routing part; the 256-bit MAC is the secret.

use std::collections::HashMap;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use super::secrets::{ct_eq, fill_random};

pub const ACCESS_PREFIX: &str = "cr_at_";
pub const REFRESH_PREFIX: &str = "cr_rt_";
const FORMAT_VERSION: u8 = 1;
const BODY_LEN: usize = 1 + 16 + 8 + 32;
/// Domain separation so a MAC computed here is never valid for another purpose.
const MAC_CONTEXT: &[u8] = b"commonrock/session-token/v1";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    fn prefix(self) -> &'static str {
        match self {
            TokenKind::Access => ACCESS_PREFIX,
            TokenKind::Refresh => REFRESH_PREFIX,
        }
    }
    fn tag(self) -> u8 {
        match self {
            TokenKind::Access => b'a',
            TokenKind::Refresh => b'r',
        }
    }
}

/// A token taken apart but not yet verified: only `verify` against the session's key tells
/// whether it is genuine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParsedToken {
    pub kind: TokenKind,
    pub session_id: Uuid,
    pub counter: u64,
    mac: [u8; 32],
}

/// Parses without any secret: cheap rejection of garbage, the wrong kind, or a wrong length.
pub fn parse(token: &str, kind: TokenKind) -> Option<ParsedToken> {
    let body = token.strip_prefix(kind.prefix())?;
    let mut raw = [0u8; BODY_LEN];
    // A correct body is exactly 76 base64 characters; refuse anything else before decoding.
    if body.len() != 76 {
        return None;
    }
    let n = URL_SAFE_NO_PAD.decode_slice(body, &mut raw).ok()?;
    if n != BODY_LEN || raw[0] != FORMAT_VERSION {
        return None;
    }
    let session_id = Uuid::from_slice(&raw[1..17]).ok()?;
    let counter = u64::from_be_bytes(raw[17..25].try_into().ok()?);
    let mac: [u8; 32] = raw[25..].try_into().ok()?;
    Some(ParsedToken {
        kind,
        session_id,
        counter,
        mac,
    })
}

/// The server secrets: the current one mints, every listed one still verifies (rotation).
#[derive(Clone)]
pub struct ServerSecrets {
    current: String,
    /// Keyed HMAC states: cloning one skips the two key-schedule compressions per token.
    keys: HashMap<String, Hmac<Sha256>>,
}

impl std::fmt::Debug for ServerSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("ServerSecrets")
            .field("current", &self.current)
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    #[error("cannot read secret file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "secret file line {line}: expected `<key id>=<base64url secret of at least 32 bytes>`"
    )]
    Malformed { line: usize },
    #[error("secret file has no key")]
    Empty,
}

impl ServerSecrets {
    /// Parses `kid=base64url` lines; the first key is the current one. `#` starts a comment.
    pub fn parse(text: &str) -> Result<Self, SecretFileError> {
        let mut current = None;
        let mut keys = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let malformed = SecretFileError::Malformed { line: i + 1 };
            let (kid, b64) = line.split_once('=').ok_or(malformed)?;
            let kid = kid.trim();
            let key = URL_SAFE_NO_PAD
                .decode(b64.trim())
                .map_err(|_| SecretFileError::Malformed { line: i + 1 })?;
            if kid.is_empty() || key.len() < 32 {
                return Err(SecretFileError::Malformed { line: i + 1 });
            }
            current.get_or_insert_with(|| kid.to_string());
            let mac = <Hmac<Sha256> as Mac>::new_from_slice(&key)
                .map_err(|_| SecretFileError::Malformed { line: i + 1 })?;
            keys.insert(kid.to_string(), mac);
        }
        let current = current.ok_or(SecretFileError::Empty)?;
        Ok(Self { current, keys })
    }

    pub fn load(path: &Path) -> Result<Self, SecretFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| SecretFileError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// A fresh file body with one random 32-byte key (for `serve --dev` and operators).
    pub fn generate_file_text() -> String {
        let mut key = [0u8; 32];
        fill_random(&mut key);
        let mut kid = [0u8; 4];
        fill_random(&mut kid);
        format!(
            "# commonrock server secret: the first key mints tokens, all keys verify them\nk{}={}\n",
            URL_SAFE_NO_PAD.encode(kid),
            URL_SAFE_NO_PAD.encode(key)
        )
    }

    pub fn current_key_id(&self) -> &str {
        &self.current
    }

    /// A 32-byte key for another purpose (e.g. signing SQL cursors), derived from the current
    /// key: HMAC-SHA256(current key, "commonrock/derived-key/v1" ‖ `context`). Every node with
    /// the same secret file derives the same key; a new current key derives a new one.
    pub fn derive_key(&self, context: &[u8]) -> [u8; 32] {
        self.derive_key_with(&self.current, context)
            .expect("the current key is one of the keys")
    }

    /// [`Self::derive_key`] under the key `key_id`, for data that records which key protected
    /// it (so it stays readable after a rotation); None if that key is no longer configured.
    pub fn derive_key_with(&self, key_id: &str, context: &[u8]) -> Option<[u8; 32]> {
        let mut mac = self.keys.get(key_id)?.clone();
        mac.update(b"commonrock/derived-key/v1");
        mac.update(context);
        Some(mac.finalize().into_bytes().into())
    }

    fn mac(
        &self,
        key_id: &str,
        kind: TokenKind,
        session_id: Uuid,
        counter: u64,
    ) -> Option<[u8; 32]> {
        let mut mac = self.keys.get(key_id)?.clone();
        mac.update(MAC_CONTEXT);
        mac.update(&[kind.tag()]);
        mac.update(session_id.as_bytes());
        mac.update(&counter.to_be_bytes());
        Some(mac.finalize().into_bytes().into())
    }

    /// Derives the token of `kind` for a session at `counter`; None if the key id is unknown.
    pub fn mint(
        &self,
        key_id: &str,
        kind: TokenKind,
        session_id: Uuid,
        counter: u64,
    ) -> Option<String> {
        let mac = self.mac(key_id, kind, session_id, counter)?;
        let mut raw = [0u8; BODY_LEN];
        raw[0] = FORMAT_VERSION;
        raw[1..17].copy_from_slice(session_id.as_bytes());
        raw[17..25].copy_from_slice(&counter.to_be_bytes());
        raw[25..].copy_from_slice(&mac);
        let mut out = String::with_capacity(6 + 76);
        out.push_str(kind.prefix());
        URL_SAFE_NO_PAD.encode_string(raw, &mut out);
        Some(out)
    }

    /// The id of the key that minted `token`, if any of ours did. Run before any lookup so a
    /// forged token never costs a shard hop or a store read.
    pub fn verify_any(&self, token: &ParsedToken) -> Option<&str> {
        if self.verify(&self.current, token) {
            return Some(&self.current);
        }
        self.keys
            .keys()
            .find(|kid| **kid != self.current && self.verify(kid, token))
            .map(String::as_str)
    }

    /// True when `token` was minted by us with `key_id` (constant-time MAC comparison).
    pub fn verify(&self, key_id: &str, token: &ParsedToken) -> bool {
        match self.mac(key_id, token.kind, token.session_id, token.counter) {
            Some(expected) => ct_eq(&expected, &token.mac),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> ServerSecrets {
        ServerSecrets::parse(&ServerSecrets::generate_file_text()).expect("generated file parses")
    }

    #[test]
    fn derived_keys_depend_on_context_and_secret() {
        let s = secrets();
        assert_eq!(s.derive_key(b"a"), s.derive_key(b"a"));
        assert_ne!(s.derive_key(b"a"), s.derive_key(b"b"));
        assert_ne!(s.derive_key(b"a"), secrets().derive_key(b"a"));
    }

    #[test]
    fn minted_tokens_round_trip_and_verify() {
        let s = secrets();
        let kid = s.current_key_id().to_string();
        let sid = Uuid::new_v4();
        let t = s.mint(&kid, TokenKind::Access, sid, 7).expect("known key");
        assert!(t.starts_with(ACCESS_PREFIX));
        let p = parse(&t, TokenKind::Access).expect("parses");
        assert_eq!((p.session_id, p.counter), (sid, 7));
        assert!(s.verify(&kid, &p));
        // Deterministic: the same inputs give the same token (grace replay after restart).
        assert_eq!(Some(t), s.mint(&kid, TokenKind::Access, sid, 7));
    }

    #[test]
    fn kinds_and_secrets_do_not_mix() {
        let s = secrets();
        let kid = s.current_key_id().to_string();
        let sid = Uuid::new_v4();
        let rt = s.mint(&kid, TokenKind::Refresh, sid, 1).expect("known key");
        assert!(parse(&rt, TokenKind::Access).is_none());
        let mut p = parse(&rt, TokenKind::Refresh).expect("parses");
        p.kind = TokenKind::Access;
        assert!(!s.verify(&kid, &p), "a refresh MAC is not an access MAC");
        let other = secrets();
        let p = parse(&rt, TokenKind::Refresh).expect("parses");
        assert!(!other.verify(other.current_key_id(), &p));
    }

    #[test]
    fn garbage_is_rejected_without_panic() {
        for t in ["", "cr_at_", "cr_at_!!!!", "cr_at_AAAA", &"x".repeat(5000)] {
            assert!(parse(t, TokenKind::Access).is_none());
        }
    }

    #[test]
    fn secret_file_errors_are_clear() {
        assert!(matches!(
            ServerSecrets::parse("# nothing\n"),
            Err(SecretFileError::Empty)
        ));
        assert!(matches!(
            ServerSecrets::parse("k1=c2hvcnQ\n"),
            Err(SecretFileError::Malformed { line: 1 })
        ));
    }
}
