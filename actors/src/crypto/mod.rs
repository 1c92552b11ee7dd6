//! Secrets and tokens: random credentials and their hashes, session tokens derived from the
//! server secret, and the bounded Argon2id pool for passwords.

pub mod password;
pub mod secrets;
pub mod tokens;
pub mod totp;
