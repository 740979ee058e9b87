//! Names the layers and the routes share: what a request carries between them (the client's
//! address) and the header and path names that more than one module speaks. A leaf: it uses no
//! other module of this crate, so that guards, routes and logs can all depend on it without
//! depending on each other.

use std::net::IpAddr;

/// The client's address (for per-client limits): the peer's, or behind a `--trusted-proxy`
/// the one it forwarded; unspecified when the server runs without connection info.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

/// Every answer's request id (also in the logs).
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Names the backend that answered an inference request (`nvidia` or `local`).
pub const BACKEND_HEADER: &str = "x-florence2-backend";

/// Where upload URLs point: this prefix and a secret of 64 hex digits.
pub const UPLOAD_PATH_PREFIX: &str = "/v2/nvcf/asset-uploads/";

/// Who a request counts against when shares are kept (the asset store's entries and bytes,
/// the local model's remembered pictures): its client token's SHA-256 digest when the proxy
/// has `--client-tokens`, else its client address (an IPv6 client by its /64, as the rate
/// limit keys it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tenant {
    Token([u8; 32]),
    Address(IpAddr),
}
