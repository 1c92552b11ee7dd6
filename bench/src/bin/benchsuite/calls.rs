//! A tiny HTTP/1.1 client for the set-up calls (one request per connection), and the admin and
//! public calls the suite makes with it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{json, Value};

use crate::server::{Creds, Server};
use crate::{ORIGIN, PROJECT};

pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).map_err(|e| e.to_string())?;
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no HTTP answer from {addr}"))?;
    let body = resp
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_string());
    Ok((status, body))
}

fn public_headers(c: &Creds) -> Vec<(&str, &str)> {
    vec![
        ("Origin", ORIGIN),
        ("X-Client-Id", c.client_id.as_str()),
        ("X-Client-Key", c.client_key.as_str()),
    ]
}

/// Lifts the per-account and per-IP login limits (a storm from one IP on one account is the
/// point), through the admin API as an operator would.
pub fn lift_login_limits(node: &Server, c: &Creds) -> Result<(), String> {
    let off = json!({"burst": 0, "per_minute": 0});
    let body = json!({"settings": {"rate_limits": {
        "login_per_account_ip": off, "login_per_account": off, "login_per_ip": off}}});
    let auth = format!("Bearer {}", c.admin_token);
    let (status, text) = http(
        &node.addr,
        "PATCH",
        &format!("/admin/v1/projects/{PROJECT}"),
        &[("Authorization", auth.as_str())],
        &body.to_string(),
    )?;
    if status != 200 {
        return Err(format!("lifting login limits: {status} {text}"));
    }
    Ok(())
}

pub fn signup(
    node: &Server,
    c: &Creds,
    external_id: &str,
    password: &str,
) -> Result<Option<String>, String> {
    let body = json!({"external_id": external_id, "password": password, "device_id": "bench"});
    let (status, text) = http(
        &node.addr,
        "POST",
        &format!("/{PROJECT}/v1/public/end-users/signup"),
        &public_headers(c),
        &body.to_string(),
    )?;
    match status {
        201 => {
            let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
            Ok(v["token"].as_str().map(str::to_string))
        }
        409 => Ok(None),
        _ => Err(format!("signup {external_id}: {status} {text}")),
    }
}

/// `GET path` with the admin token; the body of a 200 answer.
pub fn admin_get(addr: &str, c: &Creds, path: &str) -> Result<String, String> {
    let auth = format!("Bearer {}", c.admin_token);
    let (status, text) = http(addr, "GET", path, &[("Authorization", auth.as_str())], "")?;
    if status != 200 {
        return Err(format!("GET {path} on {addr}: {status} {text}"));
    }
    Ok(text)
}
