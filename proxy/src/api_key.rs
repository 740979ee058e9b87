//! The NVIDIA API key. It is held in a type that cannot print it: `Debug` says `<redacted>`,
//! there is no `Display`, and the only ways out are a header value marked sensitive and the
//! redaction of text that might quote it.

use std::fmt;
use std::sync::Arc;

use florence2::{Error, ErrorCode};
use reqwest::header::HeaderValue;

/// Longest key accepted (NVIDIA's are about 70 characters).
const MAX_KEY_CHARS: usize = 512;

#[derive(Clone)]
pub struct ApiKey(Arc<str>);

impl ApiKey {
    /// Accepts a key of visible ASCII characters (what an HTTP header can carry). The error
    /// never quotes the input.
    pub fn parse(raw: &str, origin: &str) -> Result<ApiKey, Error> {
        let key = raw.trim();
        let key = key.strip_prefix("Bearer ").map(str::trim).unwrap_or(key);
        if key.is_empty() || key.len() > MAX_KEY_CHARS || !key.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(Error::new(
                ErrorCode::Unauthorized,
                format!(
                    "{origin} is not a usable API key: it must be 1 to {MAX_KEY_CHARS} visible ASCII characters (NVIDIA keys look like nvapi-…)"
                ),
            ));
        }
        Ok(ApiKey(key.into()))
    }

    /// `Bearer <key>`, marked sensitive so HTTP stacks neither log nor index it.
    pub fn authorization(&self) -> HeaderValue {
        // parse() admitted only visible ASCII, which is always a valid header value.
        let mut value = HeaderValue::from_str(&format!("Bearer {}", self.0))
            .unwrap_or_else(|_| HeaderValue::from_static("Bearer"));
        value.set_sensitive(true);
        value
    }

    /// `text` with every occurrence of the key replaced, for anything an upstream sends back.
    pub fn redact(&self, text: &str) -> String {
        text.replace(&*self.0, "<redacted>")
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_never_print() {
        let key = ApiKey::parse("  nvapi-secret-123 ", "NVIDIA_API_KEY").unwrap();
        assert_eq!(format!("{key:?}"), "ApiKey(<redacted>)");
        assert!(key.authorization().is_sensitive());
        assert_eq!(
            key.authorization().to_str().unwrap(),
            "Bearer nvapi-secret-123"
        );
        assert_eq!(key.redact("got nvapi-secret-123!"), "got <redacted>!");
        assert_eq!(
            ApiKey::parse("Bearer abc", "X-Api-Key")
                .unwrap()
                .authorization()
                .to_str()
                .unwrap(),
            "Bearer abc"
        );
    }

    #[test]
    fn bad_keys_are_refused_without_quoting_them() {
        for bad in [
            "",
            "   ",
            "nvapi-\u{e9}",
            "a b",
            "x\ny",
            &"k".repeat(MAX_KEY_CHARS + 1),
        ] {
            let err = ApiKey::parse(bad, "X-Api-Key").unwrap_err();
            assert_eq!(err.code, ErrorCode::Unauthorized);
            assert!(
                bad.trim().is_empty() || !err.message.contains(bad.trim()),
                "{}",
                err.message
            );
        }
    }
}
