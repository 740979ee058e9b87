//! The settings a person may change, and the part of them kept in localStorage. The API key
//! is deliberately not a field here: it lives only in memory, so it cannot be persisted by
//! accident.

use florence2::image_prep::DEFAULT_MAX_BASE64_CHARS;
use serde::{Deserialize, Serialize};

/// The localStorage key.
pub const STORAGE_KEY: &str = "florence2-demo/settings";

/// Bounds of the inline-size limit: below the lower one no photo fits; above the upper one the
/// request passes the endpoint's 5 MB body limit.
pub const INLINE_LIMIT_RANGE: (usize, usize) = (20_000, 5_000_000);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Settings {
    /// The proxy's URL; empty means this page's own origin.
    pub proxy_url: String,
    /// Images whose base64 is longer are uploaded as assets.
    pub max_base64_chars: usize,
    /// The task picked last, so a reload keeps it.
    pub task: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            proxy_url: String::new(),
            max_base64_chars: DEFAULT_MAX_BASE64_CHARS,
            task: "<CAPTION>".into(),
        }
    }
}

impl Settings {
    /// What was stored, or the defaults for whatever is missing, damaged or out of range.
    pub fn from_stored(json: Option<&str>) -> Settings {
        let mut s: Settings = json
            .and_then(|j| serde_json::from_str(j).ok())
            .unwrap_or_default();
        if parse_inline_limit(&s.max_base64_chars.to_string()).is_err() {
            s.max_base64_chars = DEFAULT_MAX_BASE64_CHARS;
        }
        s
    }

    /// The proxy as people read it.
    pub fn proxy_name(&self) -> String {
        if self.proxy_url.is_empty() {
            "this page's server".to_owned()
        } else {
            self.proxy_url.clone()
        }
    }

    pub fn to_stored(&self) -> String {
        // Serialising plain strings and numbers to JSON cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The inline-size limit as typed (base64 characters; `_`, `,` and spaces allowed).
pub fn parse_inline_limit(text: &str) -> Result<usize, String> {
    let digits: String = text
        .chars()
        .filter(|c| !matches!(c, '_' | ',' | ' '))
        .collect();
    let (lo, hi) = INLINE_LIMIT_RANGE;
    match digits.parse::<usize>() {
        Ok(n) if (lo..=hi).contains(&n) => Ok(n),
        _ => Err(format!(
            "The inline-size limit is a whole number of base64 characters from {lo} to {hi} (the endpoint's default is {DEFAULT_MAX_BASE64_CHARS})."
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_survives_damage() {
        let s = Settings {
            proxy_url: "http://127.0.0.1:9000".into(),
            max_base64_chars: 90_000,
            task: "<OD>".into(),
        };
        assert_eq!(Settings::from_stored(Some(&s.to_stored())), s);
        assert_eq!(Settings::from_stored(None), Settings::default());
        assert_eq!(
            Settings::from_stored(Some("{not json")),
            Settings::default()
        );
        let partial = Settings::from_stored(Some(r#"{"proxyUrl":"/api","maxBase64Chars":1}"#));
        assert_eq!(
            partial,
            Settings {
                proxy_url: "/api".into(),
                ..Settings::default()
            },
            "out of range falls back"
        );
    }

    #[test]
    fn the_proxy_has_a_name_even_when_it_is_this_page_s_server() {
        assert_eq!(Settings::default().proxy_name(), "this page's server");
        assert_eq!(
            Settings {
                proxy_url: "http://10.0.0.2:8080".into(),
                ..Settings::default()
            }
            .proxy_name(),
            "http://10.0.0.2:8080"
        );
    }

    #[test]
    fn no_secret_is_ever_stored() {
        let stored = Settings::default().to_stored();
        assert!(!stored.to_lowercase().contains("key"), "{stored}");
    }

    #[test]
    fn inline_limits_are_checked() {
        assert_eq!(parse_inline_limit("180000"), Ok(180_000));
        assert_eq!(parse_inline_limit(" 180,000 "), Ok(180_000));
        assert_eq!(parse_inline_limit("1_000_000"), Ok(1_000_000));
        for bad in ["", "abc", "-5", "100", "99999999", "1.5"] {
            assert!(parse_inline_limit(bad).is_err(), "{bad}");
        }
    }
}
