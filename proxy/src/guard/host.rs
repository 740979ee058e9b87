//! Which `Host` names the proxy answers to. A proxy on loopback holding a key is a target for
//! DNS rebinding: a web page whose own name re-resolves to 127.0.0.1 becomes "same origin" with
//! the proxy and could spend the key. So on a loopback address only loopback names are served
//! (any port); elsewhere any name, unless `--allow-host` lists them.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// The accepted host names (lower case, IPv6 without brackets); `None`: any.
#[derive(Debug, Clone)]
pub struct AllowedHosts(Option<Arc<[String]>>);

impl AllowedHosts {
    /// `--allow-host` entries, else the default for `listen`. `*` allows any.
    pub fn new(flags: &[String], listen: SocketAddr) -> AllowedHosts {
        if flags.iter().any(|h| h.trim() == "*") {
            return AllowedHosts(None);
        }
        let names: Vec<String> = if flags.is_empty() {
            if !listen.ip().is_loopback() {
                return AllowedHosts(None);
            }
            ["localhost", "127.0.0.1", "::1"]
                .map(str::to_owned)
                .to_vec()
        } else {
            flags
                .iter()
                .map(|h| {
                    h.trim()
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .to_ascii_lowercase()
                })
                .collect()
        };
        AllowedHosts(Some(names.into()))
    }

    fn allows(&self, host_header: &str) -> bool {
        let Some(names) = &self.0 else { return true };
        let host = host_name(host_header).to_ascii_lowercase();
        // Any loopback address is this machine, whichever of 127.0.0.0/8 the client used.
        let loopback_ip = host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        names.contains(&host)
            || (loopback_ip && names.iter().any(|n| n == "127.0.0.1" || n == "::1"))
    }
}

/// The name part of a `Host` value: `[::1]:8080` → `::1`, `localhost:8080` → `localhost`.
fn host_name(value: &str) -> &str {
    if let Some(rest) = value.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    value.rsplit_once(':').map_or(value, |(name, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            name
        } else {
            value
        }
    })
}

pub async fn check(State(allowed): State<AllowedHosts>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    match host {
        Some(host) if allowed.allows(host) => next.run(request).await,
        None if allowed.0.is_none() => next.run(request).await,
        _ => ApiError::refused(
            StatusCode::MISDIRECTED_REQUEST,
            "this proxy does not answer to that Host name (on loopback it answers to localhost, 127.0.0.1 and [::1]; see --allow-host)",
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOOPBACK: &str = "127.0.0.1:8080";

    #[test]
    fn loopback_listeners_answer_loopback_names_only() {
        let hosts = AllowedHosts::new(&[], LOOPBACK.parse().unwrap());
        for ok in [
            "localhost:8080",
            "127.0.0.1:9",
            "[::1]:80",
            "LOCALHOST",
            "127.1.2.3:8080",
        ] {
            assert!(hosts.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example:8080",
            "localhost.evil.example",
            "10.0.0.1:8080",
            "",
            "[::2]:80",
        ] {
            assert!(!hosts.allows(bad), "{bad}");
        }
    }

    #[test]
    fn other_listeners_answer_any_name_unless_told() {
        let any = AllowedHosts::new(&[], "0.0.0.0:8080".parse().unwrap());
        assert!(any.allows("demo.example.org"));
        let listed = AllowedHosts::new(
            &["demo.example.org".into()],
            "0.0.0.0:8080".parse().unwrap(),
        );
        assert!(listed.allows("demo.example.org:443") && !listed.allows("localhost:8080"));
        let star = AllowedHosts::new(&["*".into()], LOOPBACK.parse().unwrap());
        assert!(star.allows("anything.example"));
    }
}
