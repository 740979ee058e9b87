//! Which `Host` names the proxy answers to. A proxy holding a key is a target for DNS
//! rebinding: a web page whose own name re-resolves to the proxy's address becomes "same
//! origin" with the proxy and could spend the key. So by default no DNS name is served but
//! the loopback ones: on a loopback address, localhost, 127.0.0.1 and [::1]; elsewhere also
//! the listen address itself (any IP address when listening on 0.0.0.0 or ::; an IP literal
//! cannot be rebound). `--allow-host` names the others. Without a key of its own, a proxy on
//! a non-loopback address has nothing to spend and answers any name, as before.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// The accepted host names (lower case, IPv6 without brackets); `None`: any.
#[derive(Debug, Clone)]
pub struct AllowedHosts(Option<Arc<Names>>);

#[derive(Debug)]
struct Names {
    names: Vec<String>,
    /// Any IP literal (a listener on an unspecified address is reached by any of them).
    any_ip: bool,
}

const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

impl AllowedHosts {
    /// `--allow-host` entries, else the default for `listen` (see the module). `*` allows any.
    pub fn new(flags: &[String], listen: SocketAddr, key_configured: bool) -> AllowedHosts {
        if flags.iter().any(|h| h.trim() == "*") {
            return AllowedHosts(None);
        }
        let mut any_ip = false;
        let names: Vec<String> = if flags.is_empty() {
            let ip = listen.ip();
            let mut names = LOOPBACK_NAMES.map(str::to_owned).to_vec();
            if !ip.is_loopback() {
                if !key_configured {
                    return AllowedHosts(None);
                }
                if ip.is_unspecified() {
                    any_ip = true;
                } else {
                    names.push(ip.to_string());
                }
            }
            names
        } else {
            flags
                .iter()
                .map(|h| normalise(h.trim().trim_start_matches('[').trim_end_matches(']')))
                .collect()
        };
        AllowedHosts(Some(Arc::new(Names { names, any_ip })))
    }

    /// For the start-up log line.
    pub fn describe(&self) -> String {
        match &self.0 {
            None => {
                "any (--allow-host *, or no key to protect on a non-loopback address)".to_owned()
            }
            Some(n) => format!(
                "{}{} (others get 421; --allow-host adds names)",
                n.names.join(", "),
                if n.any_ip { ", any IP address" } else { "" }
            ),
        }
    }

    fn allows(&self, host_header: &str) -> bool {
        let Some(allowed) = &self.0 else { return true };
        let host = normalise(host_name(host_header));
        let ip = host.parse::<IpAddr>().ok();
        // Any loopback address is this machine, whichever of 127.0.0.0/8 the client used.
        let loopback_ip = ip.is_some_and(|ip| ip.is_loopback());
        allowed.names.contains(&host)
            || (allowed.any_ip && ip.is_some())
            || (loopback_ip && allowed.names.iter().any(|n| n == "127.0.0.1" || n == "::1"))
    }
}

/// Lower case, without the trailing dot of a fully qualified name (`localhost.` is localhost).
fn normalise(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
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
            "this proxy does not answer to that Host name (by default, against DNS rebinding: loopback names and its own listen address only; see --allow-host)",
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
        let hosts = AllowedHosts::new(&[], LOOPBACK.parse().unwrap(), true);
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
    fn other_listeners_answer_their_address_and_loopback_names_unless_told() {
        let specific = AllowedHosts::new(&[], "192.0.2.10:8080".parse().unwrap(), true);
        for ok in [
            "192.0.2.10:8080",
            "localhost",
            "localhost.:8080",
            "127.0.0.1",
        ] {
            assert!(specific.allows(ok), "{ok}");
        }
        for bad in ["demo.example.org", "192.0.2.11", "evil.example."] {
            assert!(!specific.allows(bad), "{bad}");
        }
        let unspecified = AllowedHosts::new(&[], "0.0.0.0:8080".parse().unwrap(), true);
        assert!(unspecified.allows("203.0.113.4:8080") && unspecified.allows("[2001:db8::1]"));
        assert!(!unspecified.allows("demo.example.org"));
        let keyless = AllowedHosts::new(&[], "0.0.0.0:8080".parse().unwrap(), false);
        assert!(keyless.allows("demo.example.org"));
        let listed = AllowedHosts::new(
            &["demo.example.org".into()],
            "0.0.0.0:8080".parse().unwrap(),
            true,
        );
        assert!(listed.allows("demo.example.org:443") && listed.allows("demo.example.org."));
        assert!(!listed.allows("localhost:8080"));
        let star = AllowedHosts::new(&["*".into()], LOOPBACK.parse().unwrap(), true);
        assert!(star.allows("anything.example"));
    }
}
