//! Which URLs handed back by NVCF the proxy may contact: presigned upload URLs and 302 result
//! locations. They are NVCF's to choose (S3 and the like), but a hostile or broken answer must
//! not turn the proxy into a way to reach the proxy's own network.

use std::net::IpAddr;

use florence2::{Error, ErrorCode, Result};
use reqwest::Url;

#[derive(Debug, Clone)]
pub struct HandoffPolicy {
    /// The configured upstream origins: always allowed, whatever their scheme.
    upstreams: Vec<Url>,
    /// `--handoff-host` entries; empty means any public https host name.
    hosts: Vec<String>,
}

impl HandoffPolicy {
    pub fn new(upstreams: Vec<Url>, hosts: &[String]) -> HandoffPolicy {
        let hosts = hosts
            .iter()
            .map(|h| {
                h.trim()
                    .trim_start_matches('.')
                    .trim_end_matches('.')
                    .to_ascii_lowercase()
            })
            .filter(|h| !h.is_empty())
            .collect();
        HandoffPolicy { upstreams, hosts }
    }

    /// Accepts `url` (for `what`, e.g. "the result location") or says why not.
    pub fn check(&self, url: &Url, what: &str) -> Result<()> {
        if self.upstreams.iter().any(|u| same_origin(u, url)) {
            return Ok(());
        }
        let refuse = |why: String| {
            Err(Error::new(
                ErrorCode::Upstream,
                format!("refusing to follow {what}: {why}"),
            ))
        };
        let host = url.host_str().unwrap_or("");
        if url.scheme() != "https" {
            return refuse(format!(
                "{}:// to {host} is neither https nor a configured upstream",
                url.scheme()
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return refuse(format!("the URL to {host} carries credentials"));
        }
        match url.host() {
            Some(url::Host::Domain(domain)) => {
                // `localhost.` is localhost: a fully qualified name's trailing dot is dropped
                // before any comparison. Where the name resolves is judged when connecting
                // (`resolve::PublicOnly`).
                let domain = domain.trim_end_matches('.').to_ascii_lowercase();
                if domain.parse::<IpAddr>().is_ok() {
                    return refuse(format!("{domain} is an IP address, not a host name"));
                }
                if domain == "localhost" || domain.ends_with(".localhost") || !domain.contains('.')
                {
                    return refuse(format!("{domain} is a local name"));
                }
                if !self.hosts.is_empty()
                    && !self
                        .hosts
                        .iter()
                        .any(|h| domain == *h || domain.ends_with(&format!(".{h}")))
                {
                    return refuse(format!("{domain} is not among the --handoff-host entries"));
                }
                Ok(())
            }
            Some(url::Host::Ipv4(ip)) => refuse(format!(
                "{} is an IP address, not a host name",
                IpAddr::V4(ip)
            )),
            Some(url::Host::Ipv6(ip)) => refuse(format!(
                "{} is an IP address, not a host name",
                IpAddr::V6(ip)
            )),
            None => refuse("it has no host".to_owned()),
        }
    }
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host() == b.host()
        && a.port_or_known_default() == b.port_or_known_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn upstreams_and_public_https_hosts_pass() {
        let p = HandoffPolicy::new(vec![url("http://127.0.0.1:9000")], &[]);
        assert!(
            p.check(&url("http://127.0.0.1:9000/s3/results/x?sig=1"), "x")
                .is_ok()
        );
        assert!(
            p.check(
                &url("https://nvcf-assets.s3.us-west-2.amazonaws.com/a?X-Amz-Signature=1"),
                "x"
            )
            .is_ok()
        );
        for bad in [
            "http://127.0.0.1:9001/evil",
            "https://127.0.0.1:9000/",
            "https://[::1]/",
            "https://10.0.0.5/",
            "http://example.org/",
            "https://localhost/",
            "https://localhost./",
            "https://LocalHost../",
            "https://a.localhost./",
            "https://intranet./",
            "https://127.0.0.1./",
            "https://intranet/",
            "https://u:p@example.org/",
            "file:///etc/passwd",
        ] {
            assert_eq!(
                p.check(&url(bad), "x").unwrap_err().code,
                ErrorCode::Upstream,
                "{bad}"
            );
        }
    }

    #[test]
    fn handoff_hosts_restrict_to_their_domains() {
        let p = HandoffPolicy::new(vec![], &["amazonaws.com".into()]);
        assert!(p.check(&url("https://b.s3.amazonaws.com/k"), "x").is_ok());
        assert!(p.check(&url("https://amazonaws.com/k"), "x").is_ok());
        assert!(p.check(&url("https://b.s3.amazonaws.com./k"), "x").is_ok());
        assert!(p.check(&url("https://evilamazonaws.com/k"), "x").is_err());
        assert!(p.check(&url("https://example.org/k"), "x").is_err());
    }
}
