//! The assets this proxy knows: the upload URLs it handed out through NVCF's asset flow
//! (`POST /v2/nvcf/assets`, then `PUT` to the URL), the assets those and `POST /v1/assets`
//! created, who may use each, where its bytes are, and when it expires.
//!
//! An asset's bytes either stay here ([`Content::Kept`], for a backend that runs the model
//! itself) or went to the backend, which answered its own id ([`Content::Backend`], e.g. NVCF's
//! asset id). An invocation naming an asset is resolved through [`AssetStore::resolve`]: only
//! its owner (the client token it was uploaded with) gets it, and only until it expires.
//!
//! Bounded like NVCF's, within the limits in [`AssetLimits`]: upload URLs expire (NVCF: 1 h) and
//! are good for one upload; assets expire (NVCF: 24 h); at most `max_entries` records (upload
//! URLs handed out and not yet expired, used or not, plus assets) and `max_kept_bytes` of kept
//! bytes.
//!
//! Shared fairly: each [`Tenant`] (client token, else client address) may hold at most a
//! quarter of the records ([`AssetStore::entry_share`]) and of the kept bytes
//! ([`AssetStore::byte_share`]). A tenant at its share that asks for more makes room from its
//! own upload URLs that no PUT is using (the oldest first); when the whole store is full, a
//! tenant under its share makes room from the URLs of whoever holds the most records. Assets
//! themselves are never evicted: a store full of them refuses new uploads until they expire.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use florence2::request::HEADER_ASSET_DESCRIPTION;

use crate::guard::body::MAX_IMAGE_BYTES;
use crate::wire::Tenant;

/// Who uploaded an asset: the SHA-256 digest of the client token it came with, or `None` when
/// the proxy runs without client tokens.
pub type Owner = Option<[u8; 32]>;

/// The store's bounds.
#[derive(Debug, Clone, Copy)]
pub struct AssetLimits {
    /// How long an upload URL may be used (NVCF: 1 hour).
    pub upload_url_ttl: Duration,
    /// How long an asset lives after its upload (NVCF: 24 hours).
    pub asset_ttl: Duration,
    /// Most records at once: upload URLs (open or used, until they expire) and assets.
    pub max_entries: usize,
    /// Most bytes kept in memory, over all kept assets.
    pub max_kept_bytes: usize,
}

/// Where an asset's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// Here, in memory.
    Kept(Bytes),
    /// With the backend, under this id (NVCF's asset id for the NVIDIA backend).
    Backend(String),
}

/// An asset as an invocation may use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The content type declared at creation (`image/jpeg`).
    pub content_type: String,
    pub content: Content,
}

/// Why the store refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// No upload URL with that secret was handed out (or it expired long ago).
    UnknownUploadUrl,
    /// The upload URL has been used: it is good for one upload.
    UploadUrlUsed,
    /// Another upload to this URL is being received right now.
    UploadInProgress,
    /// The upload URL's lifetime has passed.
    UploadUrlExpired,
    /// A header covered by the (presigned) upload URL differs from what was declared at
    /// creation: the header's name.
    HeaderMismatch(&'static str),
    /// No room: `what` ran out (the store's, or the caller's share of it); `retry_after` is
    /// when the oldest record that would make room expires.
    Full {
        what: &'static str,
        retry_after: Duration,
    },
}

/// What creating an upload URL answers.
#[derive(Debug, Clone)]
pub struct Created {
    /// The asset's id (a UUID, as NVCF's are: NVIDIA's samples parse it as one).
    pub asset_id: String,
    /// The unguessable last segment of the upload URL.
    pub secret: String,
    pub expires_in: Duration,
}

/// An upload URL claimed by one PUT: release it if the upload fails, complete it if not.
#[derive(Debug, Clone)]
pub struct Claim {
    pub secret: String,
    pub asset_id: String,
    pub owner: Owner,
    pub tenant: Tenant,
    pub content_type: String,
    pub description: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UploadState {
    Open,
    Claimed,
    Used,
}

#[derive(Debug)]
struct Upload {
    asset_id: String,
    owner: Owner,
    tenant: Tenant,
    content_type: String,
    description: String,
    expires: Instant,
    state: UploadState,
}

#[derive(Debug)]
struct Stored {
    owner: Owner,
    tenant: Tenant,
    content_type: String,
    content: Content,
    expires: Instant,
}

#[derive(Debug, Default)]
struct Records {
    /// By the upload URL's secret.
    uploads: HashMap<String, Upload>,
    /// By asset id.
    assets: HashMap<String, Stored>,
    kept_bytes: usize,
}

pub struct AssetStore {
    limits: AssetLimits,
    records: Mutex<Records>,
}

impl AssetStore {
    pub fn new(limits: AssetLimits) -> AssetStore {
        AssetStore {
            limits,
            records: Mutex::new(Records::default()),
        }
    }

    pub fn limits(&self) -> AssetLimits {
        self.limits
    }

    fn records(&self) -> std::sync::MutexGuard<'_, Records> {
        // Every critical section leaves the records consistent; a panic elsewhere cannot
        // leave them half-changed, so a poisoned lock is still usable.
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Most records one tenant may hold: a quarter of `max_entries` (at least one).
    pub fn entry_share(&self) -> usize {
        (self.limits.max_entries / 4).max(1)
    }

    /// Most kept bytes one tenant may hold: a quarter of `max_kept_bytes`, but room for one
    /// largest image when the store has it.
    pub fn byte_share(&self) -> usize {
        (self.limits.max_kept_bytes / 4).max(MAX_IMAGE_BYTES.min(self.limits.max_kept_bytes))
    }

    /// Hands out an upload URL (its secret) for a new asset of `content_type` and
    /// `description`, owned by `owner`, counted against `tenant`.
    pub fn create(
        &self,
        owner: Owner,
        tenant: Tenant,
        content_type: &str,
        description: &str,
        now: Instant,
    ) -> Result<Created, StoreError> {
        let mut records = self.records();
        records.sweep(now);
        self.room_for_one(&mut records, tenant, now)?;
        let asset_id = uuid::Uuid::new_v4().hyphenated().to_string();
        // Two v4 UUIDs from the OS's random source: 244 random bits, unguessable.
        let secret = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        records.uploads.insert(
            secret.clone(),
            Upload {
                asset_id: asset_id.clone(),
                owner,
                tenant,
                content_type: content_type.to_owned(),
                description: description.to_owned(),
                expires: now + self.limits.upload_url_ttl,
                state: UploadState::Open,
            },
        );
        Ok(Created {
            asset_id,
            secret,
            expires_in: self.limits.upload_url_ttl,
        })
    }

    /// Claims the upload URL `secret` for one PUT carrying these headers (absent: `None`).
    /// A mismatch leaves the URL usable, as S3 refuses a request whose signature does not
    /// match without spending the URL.
    pub fn claim(
        &self,
        secret: &str,
        content_type: Option<&str>,
        description: Option<&str>,
        now: Instant,
    ) -> Result<Claim, StoreError> {
        let mut records = self.records();
        let upload = records
            .uploads
            .get_mut(secret)
            .ok_or(StoreError::UnknownUploadUrl)?;
        match upload.state {
            UploadState::Used => return Err(StoreError::UploadUrlUsed),
            UploadState::Claimed => return Err(StoreError::UploadInProgress),
            UploadState::Open => {}
        }
        if now >= upload.expires {
            return Err(StoreError::UploadUrlExpired);
        }
        if content_type != Some(upload.content_type.as_str()) {
            return Err(StoreError::HeaderMismatch("content-type"));
        }
        if description != Some(upload.description.as_str()) {
            return Err(StoreError::HeaderMismatch(HEADER_ASSET_DESCRIPTION));
        }
        upload.state = UploadState::Claimed;
        Ok(Claim {
            secret: secret.to_owned(),
            asset_id: upload.asset_id.clone(),
            owner: upload.owner,
            tenant: upload.tenant,
            content_type: upload.content_type.clone(),
            description: upload.description.clone(),
        })
    }

    /// Gives a claimed URL back after a failed upload, so it can be tried again while it lives.
    pub fn release(&self, claim: &Claim) {
        if let Some(upload) = self.records().uploads.get_mut(&claim.secret)
            && upload.state == UploadState::Claimed
        {
            upload.state = UploadState::Open;
        }
    }

    /// Stores the claimed asset and spends its upload URL. A kept asset that does not fit
    /// leaves the URL claimed: release it.
    pub fn complete(
        &self,
        claim: &Claim,
        content: Content,
        now: Instant,
    ) -> Result<(), StoreError> {
        let mut records = self.records();
        records.sweep(now);
        self.room_for_bytes(&records, claim.tenant, &content, now)?;
        if let Some(upload) = records.uploads.get_mut(&claim.secret) {
            upload.state = UploadState::Used;
        }
        records.insert(
            claim.asset_id.clone(),
            Stored {
                owner: claim.owner,
                tenant: claim.tenant,
                content_type: claim.content_type.clone(),
                content,
                expires: now + self.limits.asset_ttl,
            },
        );
        Ok(())
    }

    /// Stores an asset that arrived in one step (`POST /v1/assets`) under `asset_id` (the
    /// backend's id) or, for kept bytes, a fresh UUID; answers the id.
    pub fn add(
        &self,
        owner: Owner,
        tenant: Tenant,
        asset_id: Option<String>,
        content_type: &str,
        content: Content,
        now: Instant,
    ) -> Result<String, StoreError> {
        let mut records = self.records();
        records.sweep(now);
        self.room_for_bytes(&records, tenant, &content, now)?;
        self.room_for_one(&mut records, tenant, now)?;
        let id = asset_id.unwrap_or_else(|| uuid::Uuid::new_v4().hyphenated().to_string());
        records.insert(
            id.clone(),
            Stored {
                owner,
                tenant,
                content_type: content_type.to_owned(),
                content,
                expires: now + self.limits.asset_ttl,
            },
        );
        Ok(id)
    }

    /// The asset `asset_id` if `owner` uploaded it and it has not expired. Another owner's
    /// asset is answered exactly like a missing one: ids say nothing about who holds them.
    pub fn resolve(&self, asset_id: &str, owner: Owner, now: Instant) -> Option<Resolved> {
        let mut records = self.records();
        records.sweep(now);
        let stored = records.assets.get(asset_id)?;
        (stored.owner == owner).then(|| Resolved {
            content_type: stored.content_type.clone(),
            content: stored.content.clone(),
        })
    }

    /// How many assets are stored and how many bytes are kept (after expiring old ones).
    pub fn usage(&self, now: Instant) -> (usize, usize) {
        let mut records = self.records();
        records.sweep(now);
        (records.assets.len(), records.kept_bytes)
    }

    /// Makes room for one more record of `tenant`, or says why there is none: a tenant at its
    /// share gives up its own oldest spare upload URL; in a full store, a tenant under its
    /// share takes the oldest spare URL of whoever holds the most (when they hold more).
    fn room_for_one(
        &self,
        records: &mut Records,
        tenant: Tenant,
        now: Instant,
    ) -> Result<(), StoreError> {
        if records.held_by(tenant) >= self.entry_share() && !records.drop_spare_url(tenant) {
            return Err(StoreError::Full {
                what: "your share of upload URLs and assets (a quarter of --max-assets)",
                retry_after: records.first_expiry(Some(tenant), now),
            });
        }
        if records.uploads.len() + records.assets.len() < self.limits.max_entries {
            return Ok(());
        }
        let held = records.held_by(tenant);
        if let Some(largest) = records.largest_tenant()
            && records.held_by(largest) > held + 1
            && records.drop_spare_url(largest)
        {
            return Ok(());
        }
        Err(StoreError::Full {
            what: "upload URLs and assets (--max-assets)",
            retry_after: records.first_expiry(None, now),
        })
    }

    fn room_for_bytes(
        &self,
        records: &Records,
        tenant: Tenant,
        content: &Content,
        now: Instant,
    ) -> Result<(), StoreError> {
        let Content::Kept(bytes) = content else {
            return Ok(());
        };
        if records.kept_by(tenant).saturating_add(bytes.len()) > self.byte_share() {
            return Err(StoreError::Full {
                what: "your share of memory for kept assets (a quarter of --asset-store-mb)",
                retry_after: records.first_expiry(Some(tenant), now),
            });
        }
        if records.kept_bytes.saturating_add(bytes.len()) <= self.limits.max_kept_bytes {
            return Ok(());
        }
        Err(StoreError::Full {
            what: "memory for kept assets (--asset-store-mb)",
            retry_after: records.first_expiry(None, now),
        })
    }
}

impl Records {
    fn insert(&mut self, id: String, stored: Stored) {
        self.kept_bytes += kept_len(&stored.content);
        if let Some(old) = self.assets.insert(id, stored) {
            self.kept_bytes -= kept_len(&old.content);
        }
    }

    /// Forgets what has expired.
    fn sweep(&mut self, now: Instant) {
        self.uploads.retain(|_, u| u.expires > now);
        let mut freed = 0;
        self.assets.retain(|_, a| {
            let keep = a.expires > now;
            if !keep {
                freed += kept_len(&a.content);
            }
            keep
        });
        self.kept_bytes -= freed;
    }

    /// Upload URLs and assets that count against `tenant`.
    fn held_by(&self, tenant: Tenant) -> usize {
        let uploads = self.uploads.values().filter(|u| u.tenant == tenant).count();
        uploads + self.assets.values().filter(|a| a.tenant == tenant).count()
    }

    /// Kept bytes that count against `tenant`.
    fn kept_by(&self, tenant: Tenant) -> usize {
        self.assets
            .values()
            .filter(|a| a.tenant == tenant)
            .map(|a| kept_len(&a.content))
            .sum()
    }

    /// The tenant holding the most records.
    fn largest_tenant(&self) -> Option<Tenant> {
        let mut counts: HashMap<Tenant, usize> = HashMap::new();
        let tenants = self.uploads.values().map(|u| u.tenant);
        for tenant in tenants.chain(self.assets.values().map(|a| a.tenant)) {
            *counts.entry(tenant).or_insert(0) += 1;
        }
        counts
            .into_iter()
            .max_by_key(|(_, n)| *n)
            .map(|(tenant, _)| tenant)
    }

    /// Forgets `tenant`'s oldest upload URL that no PUT is using (open or already used);
    /// answers whether there was one.
    fn drop_spare_url(&mut self, tenant: Tenant) -> bool {
        let oldest = self
            .uploads
            .iter()
            .filter(|(_, u)| u.tenant == tenant && u.state != UploadState::Claimed)
            .min_by_key(|(_, u)| u.expires)
            .map(|(secret, _)| secret.clone());
        oldest.is_some_and(|secret| self.uploads.remove(&secret).is_some())
    }

    /// How long until a record (of `tenant`, or anyone's) expires.
    fn first_expiry(&self, tenant: Option<Tenant>, now: Instant) -> Duration {
        let mine = |t: Tenant| tenant.is_none_or(|only| only == t);
        let uploads = self
            .uploads
            .values()
            .filter(|u| mine(u.tenant))
            .map(|u| u.expires);
        let assets = self
            .assets
            .values()
            .filter(|a| mine(a.tenant))
            .map(|a| a.expires);
        uploads
            .chain(assets)
            .min()
            .map_or(Duration::from_secs(1), |at| {
                at.saturating_duration_since(now)
            })
    }
}

fn kept_len(content: &Content) -> usize {
    match content {
        Content::Kept(bytes) => bytes.len(),
        Content::Backend(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: Owner = Some([1; 32]);
    const BOB: Owner = Some([2; 32]);

    fn tenant(owner: Owner) -> Tenant {
        match owner {
            Some(id) => Tenant::Token(id),
            None => Tenant::Address([127, 0, 0, 1].into()),
        }
    }

    fn store(max_entries: usize, max_kept_bytes: usize) -> AssetStore {
        AssetStore::new(AssetLimits {
            upload_url_ttl: Duration::from_secs(3600),
            asset_ttl: Duration::from_secs(86_400),
            max_entries,
            max_kept_bytes,
        })
    }

    fn upload(s: &AssetStore, owner: Owner, now: Instant) -> (Created, Claim) {
        let created = s
            .create(owner, tenant(owner), "image/jpeg", "a cat", now)
            .unwrap();
        let claim = s
            .claim(&created.secret, Some("image/jpeg"), Some("a cat"), now)
            .unwrap();
        (created, claim)
    }

    #[test]
    fn an_upload_url_is_good_once_for_its_declared_headers_within_its_lifetime() {
        let s = store(10, 1000);
        let t0 = Instant::now();
        let created = s
            .create(ALICE, tenant(ALICE), "image/jpeg", "a cat", t0)
            .unwrap();
        assert!(uuid::Uuid::parse_str(&created.asset_id).is_ok());
        assert_eq!(created.secret.len(), 64);
        let claim = |ct, d, at| s.claim(&created.secret, ct, d, at);
        assert_eq!(
            claim(Some("image/png"), Some("a cat"), t0).unwrap_err(),
            StoreError::HeaderMismatch("content-type")
        );
        assert_eq!(
            claim(Some("image/jpeg"), None, t0).unwrap_err(),
            StoreError::HeaderMismatch(HEADER_ASSET_DESCRIPTION)
        );
        let c = claim(Some("image/jpeg"), Some("a cat"), t0).unwrap();
        assert_eq!(
            claim(Some("image/jpeg"), Some("a cat"), t0).unwrap_err(),
            StoreError::UploadInProgress
        );
        s.release(&c);
        let c = claim(Some("image/jpeg"), Some("a cat"), t0).unwrap();
        s.complete(&c, Content::Kept(Bytes::from_static(b"jpeg")), t0)
            .unwrap();
        assert_eq!(
            claim(Some("image/jpeg"), Some("a cat"), t0).unwrap_err(),
            StoreError::UploadUrlUsed
        );
        assert_eq!(
            s.claim(
                "0".repeat(64).as_str(),
                Some("image/jpeg"),
                Some("a cat"),
                t0
            )
            .unwrap_err(),
            StoreError::UnknownUploadUrl
        );
        let late = s
            .create(ALICE, tenant(ALICE), "image/jpeg", "a cat", t0)
            .unwrap();
        let after = t0 + Duration::from_secs(3600);
        assert_eq!(
            s.claim(&late.secret, Some("image/jpeg"), Some("a cat"), after)
                .unwrap_err(),
            // Swept at the next creation or resolution; until then it reads as expired.
            StoreError::UploadUrlExpired
        );
    }

    #[test]
    fn assets_belong_to_their_owner_and_expire() {
        let s = store(10, 1000);
        let t0 = Instant::now();
        let (created, claim) = upload(&s, ALICE, t0);
        s.complete(&claim, Content::Backend("nvcf-1".into()), t0)
            .unwrap();
        let resolved = s.resolve(&created.asset_id, ALICE, t0).unwrap();
        assert_eq!(resolved.content, Content::Backend("nvcf-1".into()));
        assert_eq!(resolved.content_type, "image/jpeg");
        assert_eq!(s.resolve(&created.asset_id, BOB, t0), None);
        assert_eq!(s.resolve(&created.asset_id, None, t0), None);
        assert_eq!(
            s.resolve("nvcf-1", ALICE, t0),
            None,
            "backend ids are not ours"
        );
        let day = t0 + Duration::from_secs(86_400);
        assert_eq!(s.resolve(&created.asset_id, ALICE, day), None);
    }

    fn address(n: u8) -> Tenant {
        Tenant::Address([10, 0, 0, n].into())
    }

    #[test]
    fn kept_bytes_and_records_are_bounded_and_freed_on_expiry() {
        let s = store(3, 10);
        let t0 = Instant::now();
        let kept = |n| Content::Kept(Bytes::from(vec![0; n]));
        let id = s
            .add(None, address(1), None, "image/png", kept(8), t0)
            .unwrap();
        assert_eq!(s.usage(t0), (1, 8));
        for tenant in [address(1), address(2)] {
            let full = s
                .add(None, tenant, None, "image/png", kept(3), t0)
                .unwrap_err();
            assert!(
                matches!(full, StoreError::Full { retry_after, .. } if retry_after == Duration::from_secs(86_400))
            );
        }
        s.add(
            None,
            address(2),
            Some("b".into()),
            "image/png",
            Content::Backend("b".into()),
            t0,
        )
        .unwrap();
        s.create(None, address(3), "image/png", "d", t0).unwrap();
        // Full, and nobody holds more than the newcomer would: refused.
        assert!(matches!(
            s.create(None, address(4), "image/png", "d", t0),
            Err(StoreError::Full { .. })
        ));
        let later = t0 + Duration::from_secs(86_400);
        assert_eq!(s.resolve(&id, None, later), None);
        assert_eq!(s.usage(later), (0, 0));
        assert!(s.create(None, address(4), "image/png", "d", later).is_ok());
    }

    #[test]
    fn a_tenant_at_its_share_gives_up_its_own_oldest_unused_url_first() {
        // 8 records: a quarter, 2, each.
        let s = store(8, 1000);
        let t0 = Instant::now();
        let second = Duration::from_secs(1);
        let me = tenant(ALICE);
        let create = |at| s.create(ALICE, me, "image/jpeg", "a cat", at);
        let claim = |c: &Created, at| s.claim(&c.secret, Some("image/jpeg"), Some("a cat"), at);
        let first = create(t0).unwrap();
        let kept = create(t0 + second).unwrap();
        let third = create(t0 + 2 * second).unwrap();
        assert_eq!(
            claim(&first, t0 + 2 * second).unwrap_err(),
            StoreError::UnknownUploadUrl,
            "the oldest unused URL made room"
        );
        // URLs being uploaded to are not spare: at the share with none, refused.
        claim(&kept, t0 + 2 * second).unwrap();
        claim(&third, t0 + 2 * second).unwrap();
        let refused = create(t0 + 3 * second).unwrap_err();
        assert!(
            matches!(refused, StoreError::Full { what, .. } if what.starts_with("your share")),
            "{refused:?}"
        );
        // Anyone else is served as before.
        assert!(
            s.create(BOB, tenant(BOB), "image/jpeg", "a dog", t0)
                .is_ok()
        );
    }

    #[test]
    fn a_full_store_makes_room_from_the_largest_holders_spare_urls() {
        let s = store(8, 1000);
        let t0 = Instant::now();
        // Four callers take 2 upload URLs each, never used: the store is full.
        for n in 1..=4 {
            for _ in 0..2 {
                s.create(None, address(n), "image/png", "d", t0).unwrap();
            }
        }
        // Before, everyone else got 507 for the URLs' hour; now newcomers get room.
        for n in 5..=8 {
            s.create(None, address(n), "image/png", "d", t0).unwrap();
        }
        // Now everyone holds one: nobody holds more than a newcomer would.
        assert!(matches!(
            s.create(None, address(9), "image/png", "d", t0),
            Err(StoreError::Full { .. })
        ));
    }

    #[test]
    fn kept_bytes_are_shared_by_tenant() {
        const MB: usize = 1 << 20;
        let s = store(100, 200 * MB);
        let t0 = Instant::now();
        let add = |t, n| {
            s.add(
                None,
                t,
                None,
                "image/png",
                Content::Kept(Bytes::from(vec![0; n])),
                t0,
            )
        };
        // A quarter of 200 MB each.
        add(address(1), 25 * MB).unwrap();
        add(address(1), 25 * MB).unwrap();
        let refused = add(address(1), MB).unwrap_err();
        assert!(
            matches!(refused, StoreError::Full { what, .. } if what.starts_with("your share of memory")),
            "{refused:?}"
        );
        add(address(2), 25 * MB).unwrap();
        // A store smaller than one largest image still takes one.
        let small = store(100, 10 * MB);
        assert!(
            small
                .add(
                    None,
                    address(1),
                    None,
                    "image/png",
                    Content::Kept(Bytes::from(vec![0; 9 * MB])),
                    t0
                )
                .is_ok()
        );
    }
}
