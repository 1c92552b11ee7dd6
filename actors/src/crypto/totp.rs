//! Second factor for admin users (SPEC §10): TOTP codes (RFC 6238: SHA-1, 6 digits, 30 s,
//! one step of clock skew either way) by `totp-rs`, the enrolment QR code as SVG by `qrcode`,
//! the secret encrypted at rest (ChaCha20-Poly1305 under a key derived from the server secret)
//! and one-time recovery codes kept only as SHA-256 hashes.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use totp_rs::{Algorithm, Secret, TOTP};
use uuid::Uuid;

use super::secrets::{ct_eq, fill_random, sha256};
use super::tokens::ServerSecrets;
use crate::model::{EncryptedSecret, UnixSecs};

pub const STEP_S: u64 = 30;
const DIGITS: usize = 6;
/// Steps of clock skew accepted either way.
const SKEW: u64 = 1;
/// 160 bits, as RFC 4226 recommends for HMAC-SHA-1.
const SECRET_BYTES: usize = 20;
pub const RECOVERY_CODES: usize = 10;
/// Shown as three groups of four base32 letters: 60 bits each.
const RECOVERY_GROUPS: usize = 3;
const ISSUER: &str = "CommonRock";
const KEY_CONTEXT: &[u8] = b"portal/totp-secret/v1";

/// A fresh random secret.
pub fn new_secret() -> Vec<u8> {
    let mut secret = vec![0u8; SECRET_BYTES];
    fill_random(&mut secret);
    secret
}

fn totp(secret: &[u8], account: &str) -> Option<TOTP> {
    TOTP::new(
        Algorithm::SHA1,
        DIGITS,
        // totp-rs's own skew is not used: steps are checked one by one below, to know which
        // one matched (replay protection records it).
        0,
        STEP_S,
        secret.to_vec(),
        Some(ISSUER.to_string()),
        account.to_string(),
    )
    .ok()
}

/// What an authenticator app needs: the base32 secret, the `otpauth://` URL and its QR code.
pub struct Enrolment {
    pub secret_base32: String,
    pub otpauth_url: String,
    pub qr_svg: String,
}

/// None when `account` cannot be a TOTP label (it contains a `:`).
pub fn enrolment(secret: &[u8], account: &str) -> Option<Enrolment> {
    let totp = totp(secret, account)?;
    let url = totp.get_url();
    let qr = qrcode::QrCode::new(url.as_bytes()).ok()?;
    let svg = qr
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    Some(Enrolment {
        secret_base32: Secret::Raw(secret.to_vec()).to_encoded().to_string(),
        otpauth_url: url,
        qr_svg: svg,
    })
}

/// The step `code` is valid for at `now` (within the skew), if it is later than `last_step`:
/// a code is accepted once, and never one older than the last accepted.
pub fn matching_step(secret: &[u8], code: &str, now: UnixSecs, last_step: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let totp = totp(secret, "x")?;
    let current = u64::try_from(now).ok()? / STEP_S;
    let mut found = None;
    // Every candidate is computed and compared, so the time taken does not say which matched.
    for step in current.saturating_sub(SKEW)..=current + SKEW {
        let expected = totp.generate(step * STEP_S);
        if ct_eq(expected.as_bytes(), code.as_bytes()) && step > last_step {
            found = Some(step);
        }
    }
    found
}

fn cipher(secrets: &ServerSecrets, key_id: &str) -> Option<ChaCha20Poly1305> {
    let key = secrets.derive_key_with(key_id, KEY_CONTEXT)?;
    Some(ChaCha20Poly1305::new(Key::from_slice(&key)))
}

/// Encrypts a TOTP secret for `user` under the current server key; the user id is bound as
/// associated data, so a ciphertext copied to another user's record does not decrypt. None
/// only if the cipher refuses (it does not for a message this short).
pub fn encrypt(secrets: &ServerSecrets, user: Uuid, secret: &[u8]) -> Option<EncryptedSecret> {
    let key_id = secrets.current_key_id().to_string();
    let mut nonce = [0u8; 12];
    fill_random(&mut nonce);
    let ciphertext = cipher(secrets, &key_id)?
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: secret,
                aad: user.as_bytes(),
            },
        )
        .ok()?;
    Some(EncryptedSecret {
        key_id,
        nonce,
        ciphertext,
    })
}

/// None when the key that encrypted it is gone from the secret file, or the record was
/// tampered with.
pub fn decrypt(secrets: &ServerSecrets, user: Uuid, sealed: &EncryptedSecret) -> Option<Vec<u8>> {
    cipher(secrets, &sealed.key_id)?
        .decrypt(
            Nonce::from_slice(&sealed.nonce),
            Payload {
                msg: &sealed.ciphertext,
                aad: user.as_bytes(),
            },
        )
        .ok()
}

/// Ten fresh recovery codes (`abcd-efgh-ijkl`) and the hashes to store.
pub fn recovery_codes() -> (Vec<String>, Vec<[u8; 32]>) {
    const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut codes = Vec::with_capacity(RECOVERY_CODES);
    let mut hashes = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        let mut raw = [0u8; 4 * RECOVERY_GROUPS];
        fill_random(&mut raw);
        let letters: Vec<char> = raw
            .iter()
            .map(|b| ALPHABET[usize::from(b & 31)] as char)
            .collect();
        let code = letters
            .chunks(4)
            .map(|c| c.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join("-");
        hashes.push(recovery_hash(&code));
        codes.push(code);
    }
    (codes, hashes)
}

/// The stored form of a recovery code: case, spaces and dashes do not matter.
pub fn recovery_hash(code: &str) -> [u8; 32] {
    let normal: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    sha256(normal.as_bytes())
}

/// The index of the unused recovery code `code` in `stored`, compared in constant time.
pub fn find_recovery_code(stored: &[[u8; 32]], code: &str) -> Option<usize> {
    let hash = recovery_hash(code);
    let mut found = None;
    for (i, h) in stored.iter().enumerate() {
        if ct_eq(h, &hash) {
            found = Some(i);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> ServerSecrets {
        ServerSecrets::parse(&ServerSecrets::generate_file_text()).unwrap()
    }

    #[test]
    fn rfc6238_sha1_vector() {
        // RFC 6238 appendix B: the ASCII key "12345678901234567890", T = 59 s → 94287082
        // (8 digits); the 6-digit code is its last six.
        let secret = b"12345678901234567890";
        let t = totp(secret, "a@example.com").unwrap();
        assert_eq!(t.generate(59), "287082");
        assert_eq!(matching_step(secret, "287082", 59, 0), Some(1));
        // One step of skew either way, never two.
        assert_eq!(matching_step(secret, "287082", 89, 0), Some(1));
        assert_eq!(matching_step(secret, "287082", 30 * 3 + 5, 0), None);
    }

    #[test]
    fn a_code_is_refused_at_or_before_the_last_step() {
        let secret = new_secret();
        let t = totp(&secret, "x").unwrap();
        let now = 1_700_000_000i64;
        let code = t.generate(now as u64);
        let step = now as u64 / STEP_S;
        assert_eq!(matching_step(&secret, &code, now, step - 1), Some(step));
        assert_eq!(matching_step(&secret, &code, now, step), None);
        assert_eq!(matching_step(&secret, "12345", now, 0), None);
        assert_eq!(matching_step(&secret, "abcdef", now, 0), None);
    }

    #[test]
    fn secrets_round_trip_only_for_their_user_and_key() {
        let s = secrets();
        let user = Uuid::new_v4();
        let secret = new_secret();
        let sealed = encrypt(&s, user, &secret).expect("encrypts");
        assert_ne!(sealed.ciphertext[..20], secret[..]);
        assert_eq!(decrypt(&s, user, &sealed).unwrap(), secret);
        assert!(decrypt(&s, Uuid::new_v4(), &sealed).is_none());
        assert!(decrypt(&secrets(), user, &sealed).is_none());
        let mut tampered = sealed.clone();
        tampered.ciphertext[0] ^= 1;
        assert!(decrypt(&s, user, &tampered).is_none());
    }

    #[test]
    fn enrolment_has_a_url_and_an_svg() {
        let e = enrolment(&new_secret(), "a@example.com").unwrap();
        assert!(e
            .otpauth_url
            .starts_with("otpauth://totp/CommonRock:a%40example.com?"));
        assert!(e
            .otpauth_url
            .contains(&format!("secret={}", e.secret_base32)));
        assert!(e.qr_svg.contains("<svg"));
        assert_eq!(e.secret_base32.len(), 32);
    }

    #[test]
    fn recovery_codes_match_once_whatever_the_formatting() {
        let (codes, hashes) = recovery_codes();
        assert_eq!(codes.len(), 10);
        assert_eq!(find_recovery_code(&hashes, &codes[3]), Some(3));
        assert_eq!(
            find_recovery_code(&hashes, &codes[3].to_uppercase().replace('-', " ")),
            Some(3)
        );
        assert_eq!(find_recovery_code(&hashes, "aaaa-bbbb-cccc"), None);
    }
}
