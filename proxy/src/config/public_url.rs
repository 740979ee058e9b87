//! `--public-url`: where clients reach the proxy, when that is not what their `Host` header
//! says (a TLS terminator or a path prefix in front of it). Upload URLs are built on it.

use reqwest::Url;

/// An `http(s)://host[:port][/prefix]` URL without credentials, query or fragment; the path
/// always ends in `/` so that routes join beneath it.
pub fn parse(value: &str) -> Result<Url, String> {
    let mut url = Url::parse(value.trim()).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must start with http:// or https://".to_owned());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".to_owned());
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_and_prefixes_pass_and_end_in_a_slash() {
        assert_eq!(
            parse("https://florence.example.org").unwrap().as_str(),
            "https://florence.example.org/"
        );
        assert_eq!(
            parse("http://10.0.0.5:8080/florence").unwrap().as_str(),
            "http://10.0.0.5:8080/florence/"
        );
        for bad in [
            "ftp://x.org",
            "https://u:p@x.org",
            "https://x.org/?a=1",
            "/relative",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
