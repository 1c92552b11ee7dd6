//! Random credentials (client keys, secret keys, admin tokens) and the only form in which they
//! are kept: a SHA-256 hash. High-entropy secrets need a fast hash, not Argon2.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Fills `buf` from the operating system's CSPRNG.
pub fn fill_random(buf: &mut [u8]) {
    // The OS RNG failing is unrecoverable for an auth service: issuing predictable secrets
    // would be worse than stopping.
    getrandom::fill(buf).expect("operating system random source unavailable");
}

/// `prefix` followed by `bytes` random bytes in base64url (no padding).
pub fn random_credential(prefix: &str, bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    fill_random(&mut buf);
    let mut out = String::with_capacity(prefix.len() + bytes * 4 / 3 + 2);
    out.push_str(prefix);
    URL_SAFE_NO_PAD.encode_string(&buf, &mut out);
    out
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Constant-time equality of two byte strings (lengths are not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// The non-secret start of a credential shown in lists: its kind prefix plus 4 characters.
pub fn display_prefix(credential: &str, kind_prefix: &str) -> String {
    credential
        .chars()
        .take(kind_prefix.chars().count() + 4)
        .collect()
}

pub const CLIENT_ID_PREFIX: &str = "pk_live_";
pub const CLIENT_KEY_PREFIX: &str = "pk_live_";
pub const SECRET_KEY_PREFIX: &str = "sk_live_";
pub const ADMIN_TOKEN_PREFIX: &str = "cr_admin_";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_long_and_distinct() {
        let a = random_credential(SECRET_KEY_PREFIX, 32);
        let b = random_credential(SECRET_KEY_PREFIX, 32);
        assert_ne!(a, b);
        assert!(a.starts_with("sk_live_"));
        assert_eq!(a.len(), 8 + 43);
        assert_eq!(display_prefix(&a, SECRET_KEY_PREFIX).len(), 12);
    }

    #[test]
    fn ct_eq_compares_content() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
