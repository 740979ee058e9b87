//! The model in this browser (`Florence2Local`), as the demo keeps track of it: where it runs
//! (Remote or Local), which folder and backend to load, how far a load got, and the run
//! options. Plain data with its words, tested natively; the browser side is `ui::local`.

use serde::Deserialize;

use crate::messages::units::{bytes, duration};

/// A folder served beside the page (`florence2-proxy --models DIR` serves `DIR/<name>/` at
/// `models/<name>/`): preferred when the page's server has it.
pub const SERVED_MODEL: &str = "models/florence2-tiny-e2e/";
/// Its `config.json`, which the page asks for to find out.
pub const SERVED_MODEL_PROBE: &str = "models/florence2-tiny-e2e/config.json";
/// Otherwise: Microsoft's base model (fine-tuned), in safetensors, from the Hugging Face Hub.
pub const HUB_MODEL: &str =
    "https://huggingface.co/florence-community/Florence-2-base-ft/resolve/main/";

/// A model folder the panel offers by name. The quantized ones are folders written by
/// `florence2 quantize` (pkg/README.md, "Backends") and served beside the page under these
/// names (`florence2-proxy --models DIR`); their sizes are Florence-2-base's
/// `model.safetensors`, measured (model/README.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    pub label: &'static str,
    pub url: &'static str,
}

pub const PRESETS: [Preset; 5] = [
    Preset {
        label: "tiny test model (served here)",
        url: SERVED_MODEL,
    },
    Preset {
        label: "base, mixed — 166 MB (served here)",
        url: "models/florence2-base-mixed/",
    },
    Preset {
        label: "base, q4 — 137 MB (served here)",
        url: "models/florence2-base-q4/",
    },
    Preset {
        label: "base, q8 — 248 MB (served here)",
        url: "models/florence2-base-q8/",
    },
    Preset {
        label: "base, f32 — 926 MB (Hugging Face)",
        url: HUB_MODEL,
    },
];

/// The preset whose folder `url` is.
pub fn preset_of(url: &str) -> Option<Preset> {
    PRESETS.into_iter().find(|p| p.url == url.trim())
}

/// The checkpoint's URL in the folder `url` (with or without its trailing slash).
pub fn checkpoint_url(url: &str) -> String {
    let url = url.trim();
    if url.ends_with('/') {
        format!("{url}model.safetensors")
    } else {
        format!("{url}/model.safetensors")
    }
}

/// What the panel knows of a folder's download before it is loaded (a HEAD of its
/// `model.safetensors`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DownloadSize {
    #[default]
    Unknown,
    Checking,
    Bytes(u64),
    /// The server answered this status: no checkpoint there.
    Missing(u16),
}

impl DownloadSize {
    pub fn line(&self) -> String {
        match self {
            DownloadSize::Unknown => "Download size: unknown until the download starts.".into(),
            DownloadSize::Checking => "Download size: asking the server…".into(),
            DownloadSize::Bytes(n) => {
                format!("Download: {} (model.safetensors).", bytes(*n as usize))
            }
            DownloadSize::Missing(status) => format!(
                "No model.safetensors at this address (HTTP {status}). Quantized folders are made \
                 with `florence2 quantize` and served with `florence2-proxy --models`."
            ),
        }
    }
}

/// Where a run goes: through the proxy (NVIDIA's endpoint, or the proxy's own model), or to
/// the model loaded in this browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Remote,
    Local,
}

/// The backend asked for when loading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendChoice {
    /// WebGPU when the browser has a hardware adapter, else the CPU.
    #[default]
    Auto,
    Webgpu,
    Cpu,
}

impl BackendChoice {
    pub const ALL: [BackendChoice; 3] = [
        BackendChoice::Auto,
        BackendChoice::Webgpu,
        BackendChoice::Cpu,
    ];

    /// As `Florence2Local.load` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendChoice::Auto => "auto",
            BackendChoice::Webgpu => "webgpu",
            BackendChoice::Cpu => "cpu",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            BackendChoice::Auto => "Auto (WebGPU if available)",
            BackendChoice::Webgpu => "WebGPU",
            BackendChoice::Cpu => "CPU (WebAssembly)",
        }
    }

    pub fn parse(s: &str) -> Option<BackendChoice> {
        BackendChoice::ALL.into_iter().find(|b| b.as_str() == s)
    }
}

/// `local.info`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalInfo {
    pub backend: String,
    #[serde(default)]
    pub adapter: Option<String>,
    /// The CPU backend's threads (1 on WebGPU, or where the page is not cross-origin isolated).
    #[serde(default = "one")]
    pub threads: u32,
    /// Why the CPU got fewer threads than it asked for.
    #[serde(default)]
    pub threads_note: Option<String>,
    pub dtype: String,
    pub parameters: f64,
    pub load_ms: f64,
    pub from_cache: bool,
}

fn one() -> u32 {
    1
}

/// The steps of a load, as `onProgress` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadPhase {
    Compile,
    Download,
    Load,
    Warmup,
}

/// One `onProgress` call.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct LoadProgress {
    pub phase: LoadPhase,
    pub loaded: f64,
    pub total: f64,
}

/// Where the model is.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum LoadStatus {
    #[default]
    Idle,
    Loading {
        progress: LoadProgress,
        /// Bytes per second since the download began.
        speed: Option<f64>,
    },
    Ready(LocalInfo),
    Cancelled,
    /// The load failed with this code (the problem display says why).
    Failed(String),
}

impl LoadStatus {
    pub fn loading(&self) -> bool {
        matches!(self, LoadStatus::Loading { .. })
    }

    /// The progress bar's (value, max); `None`: indeterminate (or no bar).
    pub fn fraction(&self) -> Option<(f64, f64)> {
        match self {
            LoadStatus::Loading { progress, .. } if progress.total > 0.0 => {
                Some((progress.loaded.min(progress.total), progress.total))
            }
            _ => None,
        }
    }

    /// The status line. `backend` is the one asked for (the one chosen is known once loaded).
    pub fn line(&self, backend: BackendChoice) -> String {
        match self {
            LoadStatus::Idle => {
                "No model loaded: load one to run Florence-2 in this browser.".into()
            }
            LoadStatus::Loading { progress, speed } => {
                let p = progress;
                match p.phase {
                    LoadPhase::Compile => {
                        format!("Starting the local runtime (backend {})…", backend.as_str())
                    }
                    LoadPhase::Download => format!(
                        "Downloading the model (backend {}): {} / {}{}",
                        backend.as_str(),
                        megabytes(p.loaded),
                        megabytes(p.total),
                        speed.map_or_else(String::new, |s| format!(" at {}/s", bytes(s as usize))),
                    ),
                    LoadPhase::Load => format!(
                        "Loading the weights (backend {}): {}…",
                        backend.as_str(),
                        megabytes(p.total)
                    ),
                    LoadPhase::Warmup => "Warming up…".into(),
                }
            }
            LoadStatus::Ready(info) => ready_line(info),
            LoadStatus::Cancelled => "Loading cancelled: no model loaded.".into(),
            LoadStatus::Failed(code) => format!("Not loaded ({code}): see the message."),
        }
    }
}

/// `3.2 MB` (always megabytes, so the two numbers of a download read alike).
fn megabytes(n: f64) -> String {
    format!("{:.1} MB", n.max(0.0) / 1e6)
}

/// `3.8 M`, `231 M`, `0.77 B`.
pub fn parameters(n: f64) -> String {
    match n {
        n if n < 1e6 => format!("{n:.0}"),
        n if n < 1e8 => format!("{:.1} M", n / 1e6),
        n if n < 1e9 => format!("{:.0} M", n / 1e6),
        n => format!("{:.2} B", n / 1e9),
    }
}

/// `ready — cpu (2 threads), f32, 3.8 M parameters, loaded in 1.2 s (from cache)`.
pub fn ready_line(info: &LocalInfo) -> String {
    let mut about: Vec<String> = info
        .adapter
        .iter()
        .filter(|a| !a.is_empty())
        .cloned()
        .collect();
    if info.backend == "cpu" {
        about.push(match (&info.threads_note, info.threads) {
            (Some(note), _) => note.clone(),
            (None, 1) => "1 thread".into(),
            (None, n) => format!("{n} threads"),
        });
    }
    let backend = if about.is_empty() {
        info.backend.clone()
    } else {
        format!("{} ({})", info.backend, about.join("; "))
    };
    format!(
        "ready — {backend}, {}, {} parameters, loaded in {}{}",
        info.dtype,
        parameters(info.parameters),
        duration(info.load_ms),
        if info.from_cache { " (from cache)" } else { "" }
    )
}

/// Bytes per second over a download so far (`None` until it means something).
pub fn speed(loaded: f64, elapsed_ms: f64) -> Option<f64> {
    (elapsed_ms >= 200.0 && loaded > 0.0).then(|| loaded / (elapsed_ms / 1000.0))
}

/// The run options of the Local panel: empty means the checkpoint's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunOptions {
    pub beams: Option<u32>,
    pub max_new_tokens: Option<u32>,
}

pub const MAX_BEAMS: u32 = 8;
pub const MAX_NEW_TOKENS: u32 = 4096;

impl RunOptions {
    /// From the two fields; the error names the field and its range.
    pub fn parse(beams: &str, max_new_tokens: &str) -> Result<RunOptions, String> {
        Ok(RunOptions {
            beams: count(beams, "Beams", MAX_BEAMS)?,
            max_new_tokens: count(max_new_tokens, "Max new tokens", MAX_NEW_TOKENS)?,
        })
    }
}

fn count(s: &str, name: &str, max: u32) -> Result<Option<u32>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    match s.parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Ok(Some(n)),
        _ => Err(format!(
            "{name} must be a whole number from 1 to {max}, or empty for the model's own (got {s:?})"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_found_by_their_folder_and_sizes_said_before_loading() {
        assert_eq!(
            preset_of(" models/florence2-base-mixed/ ").map(|p| p.label),
            Some("base, mixed — 166 MB (served here)")
        );
        assert_eq!(preset_of("https://example.com/m/"), None);
        assert_eq!(checkpoint_url("models/x"), "models/x/model.safetensors");
        assert_eq!(checkpoint_url("models/x/"), "models/x/model.safetensors");
        assert!(DownloadSize::Bytes(166_041_944).line().contains("166.0 MB"));
        assert!(
            DownloadSize::Missing(404)
                .line()
                .contains("florence2 quantize")
        );
        assert!(DownloadSize::Unknown.line().contains("unknown"));
    }

    fn info(adapter: Option<&str>, from_cache: bool) -> LocalInfo {
        LocalInfo {
            backend: if adapter.is_some() { "webgpu" } else { "cpu" }.into(),
            adapter: adapter.map(str::to_owned),
            threads: if adapter.is_some() { 1 } else { 2 },
            threads_note: None,
            dtype: "f32".into(),
            parameters: 3_812_345.0,
            load_ms: 1234.0,
            from_cache,
        }
    }

    #[test]
    fn ready_says_ready_with_backend_size_and_time() {
        assert_eq!(
            ready_line(&info(None, true)),
            "ready — cpu (2 threads), f32, 3.8 M parameters, loaded in 1.2 s (from cache)"
        );
        let one_thread = LocalInfo {
            threads: 1,
            threads_note: Some("the page is not cross-origin isolated: one thread".into()),
            ..info(None, false)
        };
        assert_eq!(
            ready_line(&one_thread),
            "ready — cpu (the page is not cross-origin isolated: one thread), f32, 3.8 M parameters, loaded in 1.2 s"
        );
        assert_eq!(
            ready_line(&info(Some("nvidia ampere"), false)),
            "ready — webgpu (nvidia ampere), f32, 3.8 M parameters, loaded in 1.2 s"
        );
        assert_eq!(parameters(231_000_000.0), "231 M");
        assert_eq!(parameters(770_000_000.0), "770 M");
        assert_eq!(parameters(1_230_000_000.0), "1.23 B");
    }

    #[test]
    fn downloads_show_megabytes_and_speed() {
        let status = LoadStatus::Loading {
            progress: LoadProgress {
                phase: LoadPhase::Download,
                loaded: 3_200_000.0,
                total: 15_190_000.0,
            },
            speed: speed(3_200_000.0, 800.0),
        };
        assert_eq!(
            status.line(BackendChoice::Cpu),
            "Downloading the model (backend cpu): 3.2 MB / 15.2 MB at 4.0 MB/s"
        );
        assert_eq!(status.fraction(), Some((3_200_000.0, 15_190_000.0)));
        assert!(status.loading());
        assert_eq!(speed(10.0, 50.0), None, "too early to say");
        assert_eq!(LoadStatus::Idle.fraction(), None);
    }

    #[test]
    fn progress_and_info_read_from_js_json() {
        let p: LoadProgress =
            serde_json::from_str(r#"{"phase":"download","loaded":5,"total":10}"#).unwrap();
        assert_eq!(p.phase, LoadPhase::Download);
        let i: LocalInfo = serde_json::from_str(
            r#"{"backend":"cpu","adapter":null,"dtype":"f32","parameters":42,"loadMs":3.5,"fromCache":false}"#,
        )
        .unwrap();
        assert_eq!(i.adapter, None);
        assert_eq!(i.load_ms, 3.5);
        assert_eq!(
            (i.threads, i.threads_note),
            (1, None),
            "an older runtime: one thread"
        );
        let i: LocalInfo = serde_json::from_str(
            r#"{"backend":"cpu","adapter":null,"threads":4,"threadsNote":null,"dtype":"f32","parameters":42,"loadMs":3.5,"fromCache":false}"#,
        )
        .unwrap();
        assert_eq!(i.threads, 4);
    }

    #[test]
    fn run_options_are_counts_or_empty() {
        assert_eq!(RunOptions::parse("", " ").unwrap(), RunOptions::default());
        assert_eq!(
            RunOptions::parse("1", "24").unwrap(),
            RunOptions {
                beams: Some(1),
                max_new_tokens: Some(24)
            }
        );
        assert!(RunOptions::parse("0", "").unwrap_err().contains("Beams"));
        assert!(
            RunOptions::parse("", "-3")
                .unwrap_err()
                .contains("Max new tokens")
        );
        assert!(RunOptions::parse("", "99999").is_err());
    }

    #[test]
    fn backends_round_trip() {
        for b in BackendChoice::ALL {
            assert_eq!(BackendChoice::parse(b.as_str()), Some(b));
        }
        assert_eq!(BackendChoice::parse("tpu"), None);
    }
}
