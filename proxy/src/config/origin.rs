//! `--allow-origin` patterns for CORS: `scheme://host[:port]`, where the port may be `*`.

use std::fmt;
use std::str::FromStr;

use reqwest::Url;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPattern {
    scheme: String,
    host: String,
    /// `None`: any port.
    port: Option<u16>,
}

impl OriginPattern {
    /// Origins allowed when none are given: local development servers on any port.
    pub fn defaults() -> Vec<OriginPattern> {
        ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"]
            .iter()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    /// Whether the value of an `Origin` header matches.
    pub fn matches(&self, origin: &str) -> bool {
        let Ok(url) = Url::parse(origin) else {
            return false;
        };
        let Some(host) = url.host_str() else {
            return false;
        };
        url.scheme() == self.scheme
            && host.eq_ignore_ascii_case(&self.host)
            && self
                .port
                .is_none_or(|p| url.port_or_known_default() == Some(p))
    }
}

impl FromStr for OriginPattern {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (base, any_port) = match text.strip_suffix(":*") {
            Some(base) => (base, true),
            None => (text, false),
        };
        let url = Url::parse(base).map_err(|e| {
            format!(
                "{text:?} is not an origin like http://localhost:5173 or https://example.org: {e}"
            )
        })?;
        if !matches!(url.scheme(), "http" | "https")
            || url.path() != "/"
            || url.query().is_some()
            || !url.username().is_empty()
        {
            return Err(format!(
                "{text:?} is not an origin: expected scheme://host[:port] (port may be *)"
            ));
        }
        let host = url
            .host_str()
            .ok_or_else(|| format!("{text:?} has no host"))?
            .to_ascii_lowercase();
        let port = if any_port {
            None
        } else {
            url.port_or_known_default()
        };
        Ok(OriginPattern {
            scheme: url.scheme().to_owned(),
            host,
            port,
        })
    }
}

impl fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(p) => write!(f, "{}://{}:{p}", self.scheme, self.host),
            None => write!(f, "{}://{}:*", self.scheme, self.host),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_origins() {
        let any: OriginPattern = "http://localhost:*".parse().unwrap();
        assert!(any.matches("http://localhost:5173") && any.matches("http://localhost"));
        assert!(
            !any.matches("https://localhost:5173")
                && !any.matches("http://localhost.evil.com:5173")
                && !any.matches("null")
        );
        let exact: OriginPattern = "https://demo.example.org".parse().unwrap();
        assert!(
            exact.matches("https://demo.example.org")
                && exact.matches("https://demo.example.org:443")
        );
        assert!(!exact.matches("https://demo.example.org:8443"));
        let v6: OriginPattern = "http://[::1]:*".parse().unwrap();
        assert!(v6.matches("http://[::1]:8080"));
        assert_eq!(OriginPattern::defaults().len(), 3);
        for bad in ["localhost", "http://x/path", "ftp://x", "*"] {
            assert!(bad.parse::<OriginPattern>().is_err(), "{bad}");
        }
    }
}
