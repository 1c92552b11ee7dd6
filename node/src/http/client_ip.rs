//! The caller's IP (SPEC §2): the TCP peer, or — only when the peer is a trusted proxy — the
//! right-most `X-Forwarded-For` entry that is not itself a trusted proxy. A forwarded header
//! that cannot be parsed makes the IP unknown, and an unknown IP fails every CIDR check.

use std::net::IpAddr;

use ipnet::IpNet;

pub fn caller_ip(
    peer: Option<IpAddr>,
    forwarded_for: Option<&str>,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let peer = peer?;
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let Some(header) = forwarded_for else {
        return Some(peer);
    };
    for entry in header.rsplit(',') {
        let ip: IpAddr = entry.trim().parse().ok()?;
        if !is_trusted(&ip) {
            return Some(ip);
        }
    }
    // Every hop is one of our proxies: the left-most one is the best we know.
    header.split(',').next().and_then(|e| e.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(s: &[&str]) -> Vec<IpNet> {
        s.iter().map(|n| n.parse().expect("valid cidr")).collect()
    }

    #[test]
    fn untrusted_peers_cannot_spoof() {
        let peer = Some("203.0.113.9".parse().expect("ip"));
        assert_eq!(
            caller_ip(peer, Some("1.2.3.4"), &nets(&["10.0.0.0/8"])),
            peer
        );
    }

    #[test]
    fn trusted_proxy_yields_rightmost_untrusted() {
        let peer = Some("10.0.0.2".parse().expect("ip"));
        let t = nets(&["10.0.0.0/8"]);
        assert_eq!(
            caller_ip(peer, Some("6.6.6.6, 1.2.3.4, 10.0.0.7"), &t),
            Some("1.2.3.4".parse().expect("ip"))
        );
        assert_eq!(caller_ip(peer, Some("garbage"), &t), None, "fails closed");
        assert_eq!(caller_ip(peer, None, &t), peer);
    }
}
