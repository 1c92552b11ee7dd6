//! The cluster key: derived from the server secret, so only nodes sharing `--secret-file` can
//! call each other, and a non-secret fingerprint of it that names the ring in the store.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Context strings of the derived keys (changing one splits every running cluster).
pub const KEY_CONTEXT: &[u8] = b"commonrock/cluster-key/v1";
pub const FINGERPRINT_CONTEXT: &[u8] = b"commonrock/cluster-fingerprint/v1";

/// How far a call's sender clock may be from the receiver's before it is refused as a replay.
pub const MAX_SKEW_MS: i64 = 5 * 60 * 1000;

#[derive(Clone)]
pub struct ClusterKey {
    mac: HmacSha256,
}

impl std::fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterKey(..)")
    }
}

impl ClusterKey {
    pub fn new(key: [u8; 32]) -> Self {
        ClusterKey {
            mac: HmacSha256::new_from_slice(&key).expect("HMAC takes keys of any length"),
        }
    }

    /// MAC of a request body.
    pub fn sign(&self, body: &[u8]) -> String {
        let mut mac = self.mac.clone();
        mac.update(b"call\0");
        mac.update(body);
        hex(&mac.finalize().into_bytes())
    }

    /// MAC of an answer, bound to the request it answers.
    pub fn sign_answer(&self, request_mac: &str, body: &[u8]) -> String {
        let mut mac = self.mac.clone();
        mac.update(b"answer\0");
        mac.update(request_mac.as_bytes());
        mac.update(body);
        hex(&mac.finalize().into_bytes())
    }

    /// Constant-time check of a request MAC.
    pub fn verify(&self, body: &[u8], presented: &str) -> bool {
        let mut mac = self.mac.clone();
        mac.update(b"call\0");
        mac.update(body);
        unhex(presented).is_some_and(|p| mac.verify_slice(&p).is_ok())
    }

    /// Constant-time check of an answer MAC.
    pub fn verify_answer(&self, request_mac: &str, body: &[u8], presented: &str) -> bool {
        let mut mac = self.mac.clone();
        mac.update(b"answer\0");
        mac.update(request_mac.as_bytes());
        mac.update(body);
        unhex(presented).is_some_and(|p| mac.verify_slice(&p).is_ok())
    }
}

/// A short non-secret name for a derived fingerprint key (published in heartbeats).
pub fn fingerprint(key: [u8; 32]) -> String {
    hex(&key[..8])
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    text.as_bytes()
        .chunks(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_verify_only_with_the_same_key_and_body() {
        let a = ClusterKey::new([1; 32]);
        let b = ClusterKey::new([2; 32]);
        let mac = a.sign(b"body");
        assert!(a.verify(b"body", &mac));
        assert!(!a.verify(b"bodz", &mac));
        assert!(!b.verify(b"body", &mac));
        assert!(!a.verify(b"body", "zz"));
        assert!(!a.verify(b"body", ""));
        let answer = a.sign_answer(&mac, b"reply");
        assert!(a.verify_answer(&mac, b"reply", &answer));
        assert!(!a.verify_answer(&a.sign(b"other"), b"reply", &answer));
        assert!(
            !a.verify(b"reply", &answer),
            "an answer MAC is not a call MAC"
        );
    }
}
