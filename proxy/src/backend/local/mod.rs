//! `--backend local`: the same routes, body and ZIP answer as NVIDIA's endpoint, produced by
//! the Florence-2 model of `--model` (florence2-burn, on the CPU) with the checkpoint's own
//! generation config. Requests wait in a bounded queue for `--model-threads` runner threads;
//! images are inline data URLs, or assets the proxy keeps in its own store (`asset_store`,
//! bounded by `--max-assets`, `--asset-store-mb`, `--asset-ttl`) and hands over inline. The
//! features of the last few pictures are kept, so another task on the same picture skips the
//! vision tower.

mod answer;
mod failure;
mod model_folder;
mod pictures;
pub mod plan;
mod queue;

use std::sync::Arc;

use std::time::Duration;

use bytes::Bytes;
use florence2::request::Invocation;
use florence2::{Error, ErrorCode, Result};
use florence2_burn::Florence2;

use self::answer::Job;
use self::model_folder::ModelInfo;
use self::pictures::PictureCache;
use self::queue::{Lost, WorkQueue};
use super::{AssetCustody, AssetUpload, Backend, BoxFuture, CallContext, Health, Profile};
use crate::config::Config;
use crate::guard::memory::{MemoryAccount, Reservation};
use crate::observe::model_timing::{self, ModelTiming};

/// Pictures whose features are kept for the next task on them (base: 1.7 MB each).
const PICTURES_KEPT: usize = 8;

/// How long a request waits for room in `--memory-budget` to decode its picture.
const PICTURE_WAIT: Duration = Duration::from_secs(5);

/// Reserves what decoding `picture` will hold: `IMAGE_TOO_LARGE` (413) when one request may
/// never hold that much, `RATE_LIMITED` (429) when the budget has no room for it now.
async fn reserve_picture(account: &MemoryAccount, picture: &plan::Picture) -> Result<Reservation> {
    let limit = account.request_limit();
    if picture.peak_bytes > limit {
        const MB: f64 = 1024.0 * 1024.0;
        return Err(Error::new(
            ErrorCode::ImageTooLarge,
            format!(
                "the {}x{} picture takes {:.0} MB to decode, more than one request may hold ({:.0} MB, a quarter of --memory-budget); send it smaller",
                picture.width,
                picture.height,
                picture.peak_bytes as f64 / MB,
                limit as f64 / MB
            ),
        ));
    }
    account.reserve(picture.peak_bytes, PICTURE_WAIT).await
}

pub struct LocalBackend {
    queue: WorkQueue<Florence2>,
    info: ModelInfo,
    pictures: Arc<PictureCache>,
}

impl LocalBackend {
    /// Loads the model of `--model` and starts its runners. Blocking (reads and converts the
    /// whole checkpoint): call it from a blocking thread. The error says which file is wrong.
    pub fn load(config: &Config) -> Result<LocalBackend, String> {
        let dir = config
            .model
            .as_deref()
            .ok_or("--backend local needs --model DIR")?;
        let (model, info) = model_folder::load(dir)
            .map_err(|e| format!("cannot load the model in {}: {e}", dir.display()))?;
        let queue = WorkQueue::start(model, config.model_threads as usize, config.queue as usize)
            .map_err(|e| format!("cannot start the model's threads: {e}"))?;
        tracing::info!(
            model = %info.folder,
            parameters = info.parameters,
            layout = info.layout,
            load_ms = info.load_ms,
            threads = config.model_threads,
            queue = config.queue,
            "model loaded"
        );
        Ok(LocalBackend {
            queue,
            info,
            pictures: Arc::new(PictureCache::new(PICTURES_KEPT)),
        })
    }

    async fn answer(&self, invocation: Invocation, context: CallContext) -> Result<Bytes> {
        if invocation.max_tokens == Some(0) {
            return Err(Error::new(
                ErrorCode::BadOption,
                "max_tokens must be at least 1",
            ));
        }
        let text = invocation.prompt.input_text();
        let image = plan::image_bytes(&invocation.image)?;
        // What decoding will hold, from the header: in the budget before a pixel is decoded.
        let picture = plan::measure(&image)?;
        let held = match &context.memory {
            Some(account) => Some(reserve_picture(account, &picture).await?),
            None => None,
        };
        let job = Job {
            image: Bytes::from(image),
            task: invocation.prompt.task,
            text: (!text.is_empty()).then_some(text),
            max_tokens: invocation.max_tokens,
            tenant: context.tenant,
            held,
        };
        // The data URL's text is not needed past here: the run holds the picture's bytes only.
        drop(invocation);
        let pictures = Arc::clone(&self.pictures);
        let pending = self
            .queue
            .submit(move |model, stop| {
                // On a thread of the kernels' pool, so that the model's parallel steps are
                // shared with it rather than handed to the pool from outside.
                florence2_burn::cpu::on_pool(|| answer::run(model, &pictures, job, stop))
            })
            .map_err(|full| {
                Error::new(
                    ErrorCode::RateLimited,
                    format!(
                        "the local model is busy ({} requests waiting, --queue); try again in {:.0} s",
                        full.waiting,
                        full.retry_after.as_secs_f64().ceil()
                    ),
                )
                .with_retry_after(Some(full.retry_after.as_secs_f64()))
            })?;
        // Dropping this future (the client went away, the deadline passed) drops `pending`,
        // which takes the job out of the line or stops it at the next token.
        match pending.answer().await {
            Ok((outcome, ran)) => {
                self.queue.record(&ran, outcome.is_ok());
                model_timing::record(ModelTiming {
                    queued_behind: ran.queued_behind,
                    wait_ms: ran.wait.as_secs_f64() * 1000.0,
                    run_ms: ran.run.as_secs_f64() * 1000.0,
                    tokens: outcome.as_ref().map_or(0, |a| a.tokens),
                });
                outcome.map(|answered| answered.zip)
            }
            Err(Lost::Panicked(why)) => {
                tracing::error!(why, "the model panicked");
                Err(Error::new(
                    ErrorCode::Upstream,
                    format!("the local model failed: {why}"),
                )
                .with_status(500))
            }
            Err(Lost::Closed) => Err(Error::new(
                ErrorCode::Upstream,
                "the local model is shutting down",
            )
            .with_status(503)),
        }
    }
}

impl Backend for LocalBackend {
    fn invoke(&self, invocation: Invocation, context: CallContext) -> BoxFuture<'_, Result<Bytes>> {
        Box::pin(self.answer(invocation, context))
    }

    fn upload_asset(&self, _: AssetUpload, _: CallContext) -> BoxFuture<'_, Result<String>> {
        // Never called: the proxy's asset store keeps the bytes (`asset_custody`).
        Box::pin(async {
            Err(Error::new(
                ErrorCode::Upstream,
                "the local backend keeps no assets of its own",
            )
            .with_status(500))
        })
    }

    fn asset_custody(&self) -> AssetCustody {
        // One store for both backends: the proxy's, with its owners, bounds and expiry.
        AssetCustody::Proxy
    }

    fn health(&self) -> BoxFuture<'_, Health> {
        Box::pin(async move {
            Health {
                backend: "local",
                key_configured: false,
                request_keys_accepted: false,
                upstream: None,
                model: serde_json::to_value(&self.info).ok(),
                queue: serde_json::to_value(self.queue.health())
                    .ok()
                    .map(|mut queue| {
                        if let Some(fields) = queue.as_object_mut() {
                            fields.insert("picturesReused".into(), self.pictures.reused().into());
                        }
                        queue
                    }),
            }
        })
    }

    fn profile(&self) -> Profile {
        Profile {
            name: "local",
            all_tasks: true,
            takes_keys: false,
            own_queue: true,
        }
    }
}
