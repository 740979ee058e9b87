//! What the proxy's `GET /healthz` means for a person about to run a task: said before the
//! first run fails, plainly.

use serde::Deserialize;

/// The parts of the proxy's health answer the page uses.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// `nvidia` or `local` (the proxy runs the model itself: no key needed, every task).
    #[serde(default)]
    pub backend: Option<String>,
    #[serde(default)]
    pub key_configured: bool,
    #[serde(default)]
    pub request_keys_accepted: bool,
    #[serde(default)]
    pub upstream: Option<Upstream>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Upstream {
    #[serde(default)]
    pub url: String,
    pub reachable: bool,
    #[serde(default)]
    pub detail: Option<String>,
}

/// One line of the health banner.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// `NO_PROXY`, `NO_KEY` or `UPSTREAM_DOWN` (the banner line carries it as `data-code`).
    pub code: &'static str,
    pub text: String,
}

/// The notices for a health answer (`Err` with why there was none), given whether the person
/// entered a key and where the proxy is.
pub fn notices(health: Result<&Health, &str>, own_key: bool, proxy: &str) -> Vec<Notice> {
    let health = match health {
        Ok(h) => h,
        Err(why) => {
            return vec![Notice {
                code: "NO_PROXY",
                text: format!(
                    "No florence2 proxy answers at {proxy} ({why}). Start one with cargo xtask demo, or set the proxy URL in Settings."
                ),
            }];
        }
    };
    let mut out = Vec::new();
    let local = health.backend.as_deref() == Some("local");
    if !local && !health.key_configured && !own_key {
        let text = if health.request_keys_accepted {
            "The proxy has no NVIDIA API key, so runs will be refused. Set NVIDIA_API_KEY and restart cargo xtask demo, or enter your own key in Settings."
        } else {
            "The proxy has no NVIDIA API key, so runs will be refused. Set NVIDIA_API_KEY where it runs and restart it."
        };
        out.push(Notice {
            code: "NO_KEY",
            text: text.into(),
        });
    }
    if let Some(up) = health.upstream.as_ref().filter(|u| !u.reachable) {
        let why = up
            .detail
            .as_deref()
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        out.push(Notice {
            code: "UPSTREAM_DOWN",
            text: format!("The proxy cannot reach NVIDIA's endpoint {}{why}. Runs will fail until it is reachable again.", up.url),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Health {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_healthy_proxy_says_nothing() {
        let h = parse(
            r#"{"ok":true,"version":"0.1.0","backend":"nvidia","keyConfigured":true,"requestKeysAccepted":false,"upstream":{"url":"https://ai.api.nvidia.com","reachable":true,"detail":null,"checkedSecsAgo":3}}"#,
        );
        assert_eq!(notices(Ok(&h), false, "here"), []);
    }

    #[test]
    fn no_key_and_no_upstream_are_said_plainly() {
        let h = parse(
            r#"{"keyConfigured":false,"requestKeysAccepted":true,"upstream":{"url":"https://ai.api.nvidia.com","reachable":false,"detail":"dns error"}}"#,
        );
        let n = notices(Ok(&h), false, "here");
        assert_eq!(
            n.iter().map(|n| n.code).collect::<Vec<_>>(),
            ["NO_KEY", "UPSTREAM_DOWN"]
        );
        assert!(n[0].text.contains("enter your own key in Settings"));
        assert!(n[1].text.contains("https://ai.api.nvidia.com: dns error"));
        let n = notices(Ok(&h), true, "here");
        assert_eq!(
            n.iter().map(|n| n.code).collect::<Vec<_>>(),
            ["UPSTREAM_DOWN"],
            "an own key answers the first"
        );
    }

    #[test]
    fn the_local_model_needs_no_key() {
        let h = parse(
            r#"{"ok":true,"backend":"local","keyConfigured":false,"requestKeysAccepted":false,"upstream":null,"model":{"name":"Florence-2-base"}}"#,
        );
        assert_eq!(notices(Ok(&h), false, "here"), []);
        assert_eq!(h.backend.as_deref(), Some("local"));
    }

    #[test]
    fn no_proxy_at_all() {
        let n = notices(Err("HTTP 404"), false, "http://example.org");
        assert_eq!(n[0].code, "NO_PROXY");
        assert!(n[0].text.contains("http://example.org (HTTP 404)"));
    }
}
