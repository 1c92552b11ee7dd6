//! The HTTP plumbing shared by every route: the request as handlers see it, JSON answers
//! with the security headers, caller-IP extraction, CORS, and body validation.

pub mod client_ip;
pub mod conn;
pub mod errors;
pub mod issue;
pub mod schema;
pub mod validation;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue};
use http::{Method, StatusCode};
use serde::Serialize;
use std::net::IpAddr;

pub use errors::{ApiError, Code};

/// A request once routed and read: handlers never touch warp.
pub struct Request {
    pub method: Method,
    pub path: String,
    /// The raw query string without `?` (empty when there is none).
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The caller as far as the trusted-proxy rules allow us to know; None fails closed.
    pub ip: Option<IpAddr>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `Origin`, with an empty value or `null` treated as absent (SPEC §2).
    pub fn origin(&self) -> Option<&str> {
        self.header("origin")
            .map(str::trim)
            .filter(|o| !o.is_empty() && !o.eq_ignore_ascii_case("null"))
    }

    /// The token of `Authorization: Bearer <token>`, if well-formed.
    pub fn bearer(&self) -> Option<&str> {
        let v = self.header("authorization")?;
        let (scheme, token) = v.split_once(' ')?;
        let token = token.trim();
        (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
    }

    /// The percent-decoded value of the first `name=value` pair of the query string.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |x: &str| {
                percent_encoding::percent_decode_str(&x.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (decode(k) == name).then(|| decode(v))
        })
    }

    pub fn user_agent(&self) -> Option<String> {
        self.header("user-agent")
            .map(|ua| ua.chars().take(256).collect())
    }
}

/// A successful answer before the common headers are added.
pub struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
    pub headers: HeaderMap,
    /// Tokens or introspection results: never cached by anyone.
    pub no_store: bool,
}

impl Answer {
    pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Result<Answer, ApiError> {
        let body = serde_json::to_vec(value)
            .map_err(|e| ApiError::from(commonrock_actors::DomainError::Internal(e.to_string())))?;
        Ok(Answer {
            status,
            body: Bytes::from(body),
            headers: HeaderMap::new(),
            no_store: false,
        })
    }

    pub fn no_store(mut self) -> Self {
        self.no_store = true;
        self
    }

    pub fn empty(status: StatusCode) -> Answer {
        Answer {
            status,
            body: Bytes::new(),
            headers: HeaderMap::new(),
            no_store: false,
        }
    }

    pub fn with_header(mut self, name: http::header::HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }
}

impl From<ApiError> for Answer {
    fn from(e: ApiError) -> Self {
        let mut headers = HeaderMap::new();
        if let Some(secs) = e.retry_after {
            headers.insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(v) = e
            .allow
            .as_deref()
            .and_then(|a| HeaderValue::from_str(a).ok())
        {
            headers.insert(http::header::ALLOW, v);
        }
        if e.bearer_challenge {
            headers.insert(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer"),
            );
        }
        Answer {
            status: e.status,
            body: e.body_bytes(),
            headers,
            no_store: false,
        }
    }
}

pub type Handled = Result<Answer, ApiError>;

impl Request {
    /// The body as JSON. A body sent as something other than JSON is 415; an empty or
    /// malformed one is the 422 validation shape.
    pub fn json(&self) -> Result<serde_json::Value, ApiError> {
        self.check_content_type()?;
        validation::parse_json(&self.body)
    }

    /// 415 for a body sent as something other than JSON.
    pub fn check_content_type(&self) -> Result<(), ApiError> {
        if let Some(ct) = self.header("content-type") {
            let mime = ct.split(';').next().unwrap_or("").trim();
            let is_json = mime.eq_ignore_ascii_case("application/json")
                || (mime.len() > 5 && mime[mime.len() - 5..].eq_ignore_ascii_case("+json"));
            if !is_json && !self.body.is_empty() {
                return Err(ApiError::code(Code::UnsupportedMediaType));
            }
        }
        Ok(())
    }
}

/// `2026-02-04T13:00:00Z`: UTC, whole seconds, exactly as the seed writes times.
pub fn format_time(secs: i64) -> String {
    use chrono::{Datelike, Timelike};
    // Digits written by hand: `format!` (and chrono's `format`, which parses its pattern on
    // every call) showed in the introspection profile, one time per active token.
    let t = chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default();
    let year = t.year();
    if !(0..=9999).contains(&year) {
        return t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    }
    let mut out = *b"0000-00-00T00:00:00Z";
    let mut put = |at: usize, width: usize, mut n: u32| {
        for i in (at..at + width).rev() {
            out[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    put(0, 4, year as u32);
    put(5, 2, t.month());
    put(8, 2, t.day());
    put(11, 2, t.hour());
    put(14, 2, t.minute());
    put(17, 2, t.second());
    out.iter().map(|&b| char::from(b)).collect()
}

#[cfg(test)]
mod tests {
    use super::format_time;

    #[test]
    fn times_are_written_as_the_seed_writes_them() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_time(1_770_210_000), "2026-02-04T13:00:00Z");
        assert_eq!(format_time(253_402_300_799), "9999-12-31T23:59:59Z");
        assert_eq!(format_time(1_709_251_199), "2024-02-29T23:59:59Z");
    }
}
