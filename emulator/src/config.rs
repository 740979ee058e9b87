//! Command line of the emulator.

use std::net::SocketAddr;

use clap::Parser;

use crate::fault::Fault;

const ABOUT: &str = "TEST DOUBLE of NVIDIA's hosted Florence-2 endpoint, for florence2-web's tests. Not the product.";

const LONG_ABOUT: &str = "\
TEST DOUBLE of NVIDIA's hosted Florence-2 endpoint (ai.api.nvidia.com + api.nvcf.nvidia.com),
for florence2-web's tests. It is NOT the product and NOT a model: it speaks the NVCF protocol
on one address (invoke, 202 + pexec status polling, 302 result downloads, the two-step asset
upload, RFC 7807 errors, 429 with Retry-After) and answers each of the 14 Florence-2 tasks
with a deterministic, plausible answer derived from coarse colour regions of the decoded image,
plus an overlay PNG, zipped like NVCF does. Point the proxy at it with
`--upstream http://IP:PORT --assets-upstream http://IP:PORT`.

Routes: POST /v1/vlm/microsoft/florence-2, GET /v2/nvcf/pexec/status/{reqId},
POST /v2/nvcf/assets, PUT /s3/assets/{assetId} (the presigned upload),
GET /s3/results/{token} (the 302 download); test controls: POST|DELETE /_emulator/faults,
GET|DELETE /_emulator/requests.

The first line on stdout is `listening on http://IP:PORT`. See emulator/README.md for the
fault language (X-Emulator-Fault header, --fault flag, the fault queue).";

#[derive(Debug, Clone, Parser)]
#[command(name = "nvcf-emulator", version, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port (printed on the first stdout line).
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,

    /// Accept only this bearer key (default: any non-empty `Authorization: Bearer …`).
    /// Requests with another key get NVCF's 401 problem.
    #[arg(long, value_name = "KEY")]
    pub api_key: Option<String>,

    /// A fault applied to every invoke and asset-create request, in the text form of the
    /// X-Emulator-Fault header, e.g. `chain=2; redirect` or `status=429; retry-after=1`.
    #[arg(long, value_name = "SPEC", value_parser = Fault::parse)]
    pub fault: Option<Fault>,

    /// Apply --fault only to the first N invoke/asset-create requests (default: all).
    #[arg(long, value_name = "N", requires = "fault")]
    pub fault_times: Option<u64>,

    /// Longest inline base64 image NVCF accepts, in characters; longer ones get a 422
    /// problem telling the caller to use the assets API (NVIDIA documents 180,000).
    #[arg(long, value_name = "CHARS", default_value_t = 180_000)]
    pub max_inline_chars: usize,
}

impl Config {
    /// The defaults, listening on `127.0.0.1:0` (for tests that start the emulator in-process).
    pub fn loopback() -> Config {
        Config::parse_from(["nvcf-emulator"])
    }
}
