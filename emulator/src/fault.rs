//! Scripted faults: how a test makes the emulator misbehave the way NVCF can.
//!
//! A fault comes from (first match wins) the `X-Emulator-Fault` header of the request itself,
//! the front of the queue filled by `POST /_emulator/faults` (one entry per invoke or
//! asset-create request), or the `--fault` flag (every such request, or the first
//! `--fault-times N`). The header and the flag use the same text form,
//! `chain=2; redirect; status=429; retry-after=1`; the queue takes the JSON form
//! `{"chain": 2, "redirect": true}`.

use serde::{Deserialize, Serialize};

/// The request header that scripts a fault for that one request.
pub const FAULT_HEADER: &str = "x-emulator-fault";

/// What to do differently for one request. The default is the faithful happy path.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Fault {
    /// Sleep this long before answering (a slow upstream).
    pub delay_ms: u64,
    /// Answer with this HTTP status and an RFC 7807 problem instead of working.
    pub status: Option<u16>,
    /// The `Retry-After` value sent with `status: 429` (default `1`; `none` sends none).
    pub retry_after: Option<String>,
    /// Answer `202 Accepted` this many times (the invoke, then status polls) before the result.
    pub chain: u32,
    /// Deliver the result as a `302` to a presigned-like download URL on the emulator.
    pub redirect: bool,
    /// Deliver the result as a `302` to exactly this URL (a forged `Location`).
    pub location: Option<String>,
    /// Asset creation hands back this upload URL (a forged presigned URL).
    pub upload_url: Option<String>,
    /// Cut the ZIP in half.
    pub truncate: bool,
    /// Answer the result with this content type and a body of that type instead of the ZIP.
    pub content_type: Option<String>,
    /// Answer 500 with a problem whose detail quotes the `Authorization` header received
    /// (a hostile upstream, to test that the proxy redacts its key).
    pub echo_key: bool,
    /// Use this `NVCF-REQID` for a `202` (a hostile request id).
    pub req_id: Option<String>,
}

impl Fault {
    /// Parses the text form `key=value; flag; …` (`,` also separates).
    pub fn parse(spec: &str) -> Result<Fault, String> {
        let mut fault = Fault::default();
        for item in spec
            .split([';', ','])
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let (key, value) = match item.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (item, None),
            };
            let need = |what: &str| {
                value
                    .map(str::to_owned)
                    .ok_or_else(|| format!("fault `{key}` needs a value ({what})"))
            };
            let number = |what: &str| -> Result<u64, String> {
                need(what)?
                    .parse()
                    .map_err(|_| format!("fault `{key}` takes a whole number ({what})"))
            };
            match key {
                "delay-ms" => fault.delay_ms = number("milliseconds")?,
                "status" => {
                    let status = number("an HTTP status")?;
                    if !(100..=599).contains(&status) {
                        return Err(format!("fault `status={status}` is not an HTTP status"));
                    }
                    fault.status = Some(status as u16);
                }
                "retry-after" => fault.retry_after = Some(need("seconds, an HTTP date or `none`")?),
                "chain" => {
                    fault.chain = u32::try_from(number("how many 202 answers")?)
                        .map_err(|_| "fault `chain` is too large".to_owned())?
                }
                "redirect" => fault.redirect = true,
                "location" => fault.location = Some(need("a URL")?),
                "upload-url" => fault.upload_url = Some(need("a URL")?),
                "truncate" => fault.truncate = true,
                "content-type" => fault.content_type = Some(need("a media type")?),
                "echo-key" => fault.echo_key = true,
                "req-id" => fault.req_id = Some(need("a request id")?),
                other => {
                    return Err(format!(
                        "unknown fault `{other}`; known: delay-ms, status, retry-after, chain, redirect, location, upload-url, truncate, content-type, echo-key, req-id"
                    ));
                }
            }
        }
        Ok(fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_parses_every_key() {
        let f = Fault::parse("delay-ms=5; status=429, retry-after=2; chain=3; redirect; location=http://x/y; upload-url=http://u/; truncate; content-type=text/html; echo-key; req-id=../x").unwrap();
        assert_eq!(
            f,
            Fault {
                delay_ms: 5,
                status: Some(429),
                retry_after: Some("2".into()),
                chain: 3,
                redirect: true,
                location: Some("http://x/y".into()),
                upload_url: Some("http://u/".into()),
                truncate: true,
                content_type: Some("text/html".into()),
                echo_key: true,
                req_id: Some("../x".into()),
            }
        );
        assert_eq!(Fault::parse("").unwrap(), Fault::default());
    }

    #[test]
    fn mistakes_are_reported() {
        for bad in [
            "nope",
            "status=abc",
            "status=99",
            "chain",
            "delay-ms=-1",
            "location",
        ] {
            assert!(Fault::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_form_is_camel_case_and_strict() {
        let f: Fault =
            serde_json::from_str(r#"{"chain":2,"retryAfter":"1","status":429}"#).unwrap();
        assert_eq!(
            (f.chain, f.status, f.retry_after.as_deref()),
            (2, Some(429), Some("1"))
        );
        assert!(serde_json::from_str::<Fault>(r#"{"chian":2}"#).is_err());
    }
}
