//! Keyset cursors: opaque, signed, bound to one definition and mode. Layout (base64url):
//! version 1 ‖ HMAC-SHA256 (32 bytes) ‖ JSON `{"d": definition id, "m": "keyset", "v": [...]}`
//! with the last row's ORDER BY values.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

use super::error::SqlError;

const VERSION: u8 = 1;
const DOMAIN: &[u8] = b"commonrock/sql-cursor/v1";

#[derive(Serialize, Deserialize)]
struct Payload {
    d: Uuid,
    m: String,
    v: Vec<serde_json::Value>,
}

fn mac(key: &[u8], body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("hmac takes keys of any length");
    mac.update(DOMAIN);
    mac.update(body);
    mac
}

pub fn encode(key: &[u8], definition: Uuid, mode: &str, values: Vec<serde_json::Value>) -> String {
    let body = serde_json::to_vec(&Payload {
        d: definition,
        m: mode.to_owned(),
        v: values,
    })
    .expect("cursor payload serializes");
    let tag = mac(key, &body).finalize().into_bytes();
    let mut out = Vec::with_capacity(1 + tag.len() + body.len());
    out.push(VERSION);
    out.extend_from_slice(&tag);
    out.extend_from_slice(&body);
    URL_SAFE_NO_PAD.encode(out)
}

/// The ORDER BY values of a cursor made by `encode` for this definition and mode.
pub fn decode(
    key: &[u8],
    cursor: &str,
    definition: Uuid,
    mode: &str,
) -> Result<Vec<serde_json::Value>, SqlError> {
    let invalid = || SqlError::cursor("cursor is not valid for this query definition");
    if cursor.len() > 8192 {
        return Err(invalid());
    }
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    if raw.len() < 33 || raw[0] != VERSION {
        return Err(invalid());
    }
    let (tag, body) = raw[1..].split_at(32);
    mac(key, body).verify_slice(tag).map_err(|_| invalid())?;
    let payload: Payload = serde_json::from_slice(body).map_err(|_| invalid())?;
    if payload.d != definition || payload.m != mode {
        return Err(invalid());
    }
    Ok(payload.v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trips_and_rejects_tampering(n in any::<i64>(), s in ".{0,20}", flip in 0usize..64) {
            let key = b"k";
            let id = Uuid::from_u128(7);
            let values = vec![serde_json::json!(n), serde_json::json!(s)];
            let c = encode(key, id, "keyset", values.clone());
            prop_assert_eq!(decode(key, &c, id, "keyset").unwrap(), values);
            prop_assert!(decode(key, &c, Uuid::from_u128(8), "keyset").is_err());
            prop_assert!(decode(key, &c, id, "offset").is_err());
            let mut raw = URL_SAFE_NO_PAD.decode(&c).unwrap();
            let i = flip % raw.len();
            raw[i] ^= 1;
            prop_assert!(decode(key, &URL_SAFE_NO_PAD.encode(raw), id, "keyset").is_err());
        }
    }
}
