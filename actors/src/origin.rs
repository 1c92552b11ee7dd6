//! Origin matching (SPEC §1): serialisations compared with scheme and host case-insensitive and
//! default ports dropped; no wildcards; custom schemes such as `app://com.example.ios` allowed.

/// `scheme://host[:port]` normalised, or None when `origin` is not an origin.
pub fn normalise(origin: &str) -> Option<String> {
    let origin = origin.trim();
    let (scheme, rest) = origin.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return None;
    }
    // An origin has no path, query or fragment (a lone trailing slash is tolerated).
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        return None;
    }
    let scheme = scheme.to_ascii_lowercase();
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || rest.starts_with('[') => {
            if p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            (h, Some(p))
        }
        _ => (rest, None),
    };
    let host = host.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => Some("80"),
        "https" => Some("443"),
        _ => None,
    };
    Some(match port {
        Some(p) if Some(p) != default_port => format!("{scheme}://{host}:{p}"),
        _ => format!("{scheme}://{host}"),
    })
}

/// True when `presented` equals the `allowed` origin under the matching rules.
pub fn matches(allowed: &str, presented: &str) -> bool {
    match (normalise(allowed), normalise(presented)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_rules() {
        assert!(matches(
            "https://app.example.com",
            "HTTPS://App.Example.com"
        ));
        assert!(matches(
            "https://app.example.com",
            "https://app.example.com:443"
        ));
        assert!(matches("http://localhost:3000", "http://localhost:3000"));
        assert!(!matches("http://localhost:3000", "http://localhost:3001"));
        assert!(!matches(
            "https://app.example.com",
            "http://app.example.com"
        ));
        assert!(matches("app://com.example.ios", "app://com.example.ios"));
        assert!(!matches("https://*.example.com", "https://a.example.com"));
        assert!(!matches("https://app.example.com", "null"));
        assert!(!matches("https://app.example.com", ""));
        assert!(normalise("https://a.com/path").is_none());
    }
}
