//! Upstream base URLs: an `https://host[:port]` origin, or plain `http://` on loopback only
//! (the emulator in tests) — the key must never cross a network in clear text.

use std::net::IpAddr;

use reqwest::Url;

/// Parses an upstream origin for clap: no credentials, path, query or fragment.
pub fn parse(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("an upstream URL may not carry credentials".to_owned());
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{text:?}: give the origin only, like https://ai.api.nvidia.com (no path, query or fragment)"
        ));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(format!(
            "{text:?}: plain http:// is allowed only for loopback hosts (127.0.0.1, ::1, localhost), e.g. the emulator in tests"
        )),
        other => Err(format!(
            "{text:?}: unsupported scheme {other:?}; use https://"
        )),
    }
}

/// Whether the URL's host is this machine.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_http_only_on_loopback() {
        assert!(parse("https://ai.api.nvidia.com").is_ok());
        assert!(parse("https://api.nvcf.nvidia.com/").is_ok());
        assert!(parse("http://127.0.0.1:9000").is_ok());
        assert!(parse("http://[::1]:9000").is_ok());
        assert!(parse("http://localhost:9000").is_ok());
        for bad in [
            "http://ai.api.nvidia.com",
            "http://10.0.0.1:80",
            "ftp://x",
            "https://u:p@x",
            "https://x/v1",
            "https://x/?a",
            "nope",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
