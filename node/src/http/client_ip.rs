//! The caller's IP (SPEC §2): the TCP peer, or — only when the peer is a trusted proxy — the
//! right-most `X-Forwarded-For` entry that is not itself a trusted proxy. Several
//! `X-Forwarded-For` lines are one list in order (RFC 9110 §5.3): a proxy that appends its own
//! line instead of extending the client's must not let the client pick the entry that counts.
//! A forwarded header that cannot be parsed makes the IP unknown, and an unknown IP fails every
//! CIDR check. The `Forwarded` header (RFC 7239) is not read: proxies set `X-Forwarded-For`.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use ipnet::IpNet;

pub fn caller_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = peer?;
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let mut entries = Vec::new();
    for line in headers.get_all("x-forwarded-for") {
        // A line that is not text cannot be read safely: the caller is unknown.
        let line = line.to_str().ok()?;
        entries.extend(line.split(',').map(str::trim));
    }
    if entries.is_empty() {
        return Some(peer);
    }
    for entry in entries.iter().rev() {
        let ip = parse_entry(entry)?;
        if !is_trusted(&ip) {
            return Some(ip);
        }
    }
    // Every hop is one of our proxies: the left-most one is the best we know.
    entries.first().and_then(|e| parse_entry(e))
}

/// One list entry: an address, or an address with a port as some proxies write it
/// (`203.0.113.7:5123`, `[2001:db8::7]:5123`). Anything else (empty, `unknown`, obfuscated
/// identifiers) is unreadable.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            entry
                .strip_prefix('[')
                .and_then(|e| e.strip_suffix(']'))
                .and_then(|e| e.parse().ok())
        })
        .map(|ip: IpAddr| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(s: &[&str]) -> Vec<IpNet> {
        s.iter().map(|n| n.parse().expect("valid cidr")).collect()
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().expect("ip"))
    }

    fn xff(lines: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for l in lines {
            h.append("x-forwarded-for", l.parse().expect("header value"));
        }
        h
    }

    #[test]
    fn untrusted_peers_cannot_spoof() {
        let peer = ip("203.0.113.9");
        let t = nets(&["10.0.0.0/8"]);
        assert_eq!(caller_ip(peer, &xff(&["1.2.3.4"]), &t), peer);
        assert_eq!(caller_ip(peer, &xff(&["1.2.3.4", "5.6.7.8"]), &t), peer);
    }

    #[test]
    fn trusted_proxy_yields_rightmost_untrusted() {
        let peer = ip("10.0.0.2");
        let t = nets(&["10.0.0.0/8"]);
        let cases: &[(&[&str], Option<IpAddr>)] = &[
            (&["6.6.6.6, 1.2.3.4, 10.0.0.7"], ip("1.2.3.4")),
            (&["1.2.3.4"], ip("1.2.3.4")),
            (&[" 1.2.3.4 ,10.0.0.7 "], ip("1.2.3.4")),
            // Every hop is ours: the left-most is the best we know.
            (&["10.0.0.9, 10.0.0.7"], ip("10.0.0.9")),
            // Ports as some proxies write them; IPv4-mapped IPv6 is the IPv4 caller.
            (&["1.2.3.4:5123"], ip("1.2.3.4")),
            (&["[2001:db8::7]:5123"], ip("2001:db8::7")),
            (&["[2001:db8::7]"], ip("2001:db8::7")),
            (&["::ffff:1.2.3.4"], ip("1.2.3.4")),
            // Unreadable entries fail closed, wherever they are right of the client.
            (&["garbage"], None),
            (&["1.2.3.4, unknown"], None),
            (&["1.2.3.4,"], None),
            // An unreadable entry left of the client does not matter: it is not trusted anyway.
            (&["garbage, 1.2.3.4"], ip("1.2.3.4")),
        ];
        for (lines, want) in cases {
            assert_eq!(caller_ip(peer, &xff(lines), &t), *want, "{lines:?}");
        }
        assert_eq!(caller_ip(peer, &HeaderMap::new(), &t), peer);
    }

    /// Several lines are one list: the client cannot pick its address by sending a first line
    /// when a proxy appends its own line.
    #[test]
    fn several_header_lines_are_one_list() {
        let peer = ip("127.0.0.1");
        let t = nets(&["127.0.0.0/8"]);
        assert_eq!(
            caller_ip(peer, &xff(&["10.1.2.3", "8.8.8.8"]), &t),
            ip("8.8.8.8")
        );
        assert_eq!(
            caller_ip(peer, &xff(&["10.1.2.3", "8.8.8.8, 127.0.0.5"]), &t),
            ip("8.8.8.8")
        );
        assert_eq!(caller_ip(peer, &xff(&["10.1.2.3", "bad"]), &t), None);
    }

    #[test]
    fn a_line_that_is_not_text_makes_the_caller_unknown() {
        let peer = ip("127.0.0.1");
        let mut h = HeaderMap::new();
        h.append(
            "x-forwarded-for",
            http::HeaderValue::from_bytes(b"1.2.3.4\xff").expect("opaque bytes"),
        );
        assert_eq!(caller_ip(peer, &h, &nets(&["127.0.0.0/8"])), None);
    }
}
