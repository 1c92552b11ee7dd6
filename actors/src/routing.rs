//! Routing keys: explicit bytes, so placement is identical on every node and release. The
//! ring places these keys on nodes and jump hashing on a node's shards.

use std::net::IpAddr;

/// A session's key: all of its reads and changes go to one owner.
pub fn session_key(id: uuid::Uuid) -> Vec<u8> {
    let mut k = Vec::with_capacity(18);
    k.extend_from_slice(b"s:");
    k.extend_from_slice(id.as_bytes());
    k
}

pub fn account_key(project_id: uuid::Uuid, external_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(19 + external_id.len());
    k.extend_from_slice(b"a:");
    k.extend_from_slice(project_id.as_bytes());
    k.push(0);
    k.extend_from_slice(external_id.as_bytes());
    k
}

/// Per-IP bucket key. Callers whose IP is unknown (an unparseable `X-Forwarded-For` from a
/// trusted proxy) share one bucket: unknown must not mean unlimited.
pub fn ip_key(project_id: uuid::Uuid, ip: Option<IpAddr>) -> Vec<u8> {
    let mut k = Vec::with_capacity(36);
    k.extend_from_slice(b"i:");
    k.extend_from_slice(project_id.as_bytes());
    match ip {
        Some(IpAddr::V4(v4)) => k.extend_from_slice(&v4.octets()),
        Some(IpAddr::V6(v6)) => k.extend_from_slice(&v6.octets()),
        None => k.extend_from_slice(b"unknown"),
    }
    k
}

pub fn credential_key(kind: u8, id: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + id.len());
    k.extend_from_slice(&[kind, b':']);
    k.extend_from_slice(id);
    k
}
