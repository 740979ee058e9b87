//! `florence2`: the local Florence-2 model on the command line, and its checks against the
//! transformers goldens. The only place of this crate that touches the file system.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use burn::tensor::Device;
use clap::{Parser, Subcommand};
use florence2::{Florence2Result, ImageSize, Source, Task};
use florence2_burn::load::quantized::Scheme;
use florence2_burn::{
    Error, Florence2, LoadOptions, ModelFiles, Result, RgbImage, RunOptions, Tokenizer,
};
use florence2_cli::parity::Report;

// The `label` subcommand's glue, beside this file (a crate root resolves `mod` from src/bin/).
#[path = "florence2/label.rs"]
mod label;
#[path = "florence2/quantize.rs"]
mod quantize;

#[derive(Parser)]
#[command(
    name = "florence2",
    about = "Florence-2 on burn: run the model, check it against transformers"
)]
struct Cli {
    /// Where the model runs: `cpu` (burn-flex with this crate's kernels), or `wgpu` (burn's
    /// wgpu backend on the default adapter; only in builds with the `wgpu` feature).
    #[arg(long, global = true, value_enum, default_value_t = Backend::Cpu)]
    backend: Backend,
    /// Threads for the CPU backend's kernels (default: every core, or `RAYON_NUM_THREADS`).
    /// Results do not depend on it.
    #[arg(long, global = true, value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Backend {
    Cpu,
    Wgpu,
}

impl Backend {
    fn device(self) -> Result<Device> {
        match self {
            Backend::Cpu => Ok(Device::flex()),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => Device::wgpu_options()
                .init()
                .map_err(|e| Error::Input(format!("wgpu: {e}"))),
            #[cfg(not(feature = "wgpu"))]
            Backend::Wgpu => Err(Error::Input(
                "this florence2 was built without the `wgpu` feature".into(),
            )),
        }
    }

    /// On a GPU the token matrix goes in blocks every adapter can bind (128 MiB: base's is
    /// 150 MiB, and lavapipe, like WebGPU by default, binds no more).
    fn load_options(self) -> LoadOptions {
        match self {
            Backend::Cpu => LoadOptions::default(),
            Backend::Wgpu => LoadOptions {
                max_buffer_bytes: LoadOptions::WEBGPU.max_buffer_bytes,
                ..LoadOptions::default()
            },
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Runs one task on one image and prints the result JSON.
    Run {
        /// Model folder: config.json, model.safetensors, tokenizer.json
        /// [, generation_config.json, processor_config.json | preprocessor_config.json].
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        image: PathBuf,
        /// Task token, e.g. "<OD>".
        #[arg(long)]
        task: String,
        /// The task's text (a phrase, or a region as <loc_x1><loc_y1><loc_x2><loc_y2>).
        #[arg(long)]
        text: Option<String>,
        /// Beam count (default: the model's generation_config.json).
        #[arg(long)]
        beams: Option<usize>,
        #[arg(long)]
        max_new_tokens: Option<usize>,
    },
    /// Compares the model of DIR with DIR/golden.safetensors; exit 0 only if all match.
    Parity { dir: PathBuf },
    /// Runs every case of DIR/golden_e2e.json through the whole pipeline; exit 0 only if all match.
    E2e { dir: PathBuf },
    /// Token ids of TEXT (a task prompt such as "<OD>" is first expanded as the processor does).
    Tokenize {
        #[arg(long)]
        tokenizer: PathBuf,
        text: String,
    },
    /// Times a `<CAPTION>`-style run: vision (with preprocessing and projector), encoder,
    /// greedy decoding of exactly N new tokens, and the whole run; medians after a warm-up.
    Bench {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        image: PathBuf,
        #[arg(long, default_value = "<CAPTION>")]
        task: String,
        #[arg(long, default_value_t = 20)]
        new_tokens: usize,
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Beam count of the decoder part (1: greedy).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
        beams: u16,
    },
    /// Labels pictures (files, and folders walked for .jpg .jpeg .png .webp .gif .bmp) with one
    /// task into a COCO file, with the raw results as JSON lines beside it (OUT.jsonl). Reruns
    /// skip what the results file has done (failures are retried); Ctrl-C stops cleanly (exit
    /// 130). Exit 1 when some picture failed. `--merge OUT PARTS…` joins COCO files instead.
    Label {
        /// Task token, e.g. "<OD>".
        #[arg(long, required_unless_present = "merge")]
        task: Option<String>,
        /// The task's text (a phrase, or a region as <loc_x1><loc_y1><loc_x2><loc_y2>).
        #[arg(long)]
        text: Option<String>,
        /// The COCO file to write (the results go to the same name with .jsonl).
        #[arg(long, required_unless_present = "merge", conflicts_with = "merge")]
        out: Option<PathBuf>,
        /// Label with the model in this folder (as `run`).
        #[arg(long, conflicts_with_all = ["endpoint", "merge"])]
        model: Option<PathBuf>,
        /// Label through an endpoint speaking NVIDIA's protocol: a base URL (the invoke path
        /// /v1/vlm/microsoft/florence-2 is added) or the full invoke URL. Key: NVIDIA_API_KEY.
        #[arg(long, conflicts_with = "merge")]
        endpoint: Option<String>,
        /// Pictures in flight at once (HTTP requests, or threads sharing the model).
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// Beam count of the local model (default: its generation_config.json).
        #[arg(long, conflicts_with = "endpoint")]
        beams: Option<usize>,
        /// Most tokens generated per picture (the local model's limit, or the endpoint's
        /// `max_tokens`).
        #[arg(long)]
        max_new_tokens: Option<usize>,
        /// Take only shard I of N (0-based), by a stable hash of each picture's path relative
        /// to the folder given.
        #[arg(long, value_name = "I/N", conflicts_with = "merge")]
        shard: Option<String>,
        /// Join the COCO files PATHS into OUT (ids renumbered, categories unified by name).
        #[arg(long, value_name = "OUT")]
        merge: Option<PathBuf>,
        /// Pictures and folders (with --merge: the COCO files to join).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Writes OUT, a model folder with the large matrices of the model in MODEL quantized
    /// (the `florence2-blockwise` format, model/README.md), and optionally DEQUANTIZED, the
    /// same model as plain f32 holding exactly the values the quantized one multiplies with.
    Quantize {
        /// The model folder to quantize (a plain f32/f16/bf16 checkpoint).
        #[arg(long)]
        model: PathBuf,
        /// The folder to write (must not exist).
        #[arg(long)]
        out: PathBuf,
        /// `q8` (every large matrix 8-bit), `q4` (4-bit), `mixed` (8-bit vision tower, 4-bit
        /// language model and token matrix).
        #[arg(long, value_parser = parse_scheme)]
        scheme: Scheme,
        /// Also write the dequantized model (f32) into this folder (must not exist).
        #[arg(long)]
        dequantized: Option<PathBuf>,
    },
    /// Post-processes generated TEXT (special tokens kept) for a task and image size.
    Postprocess {
        #[arg(long)]
        task: String,
        #[arg(long)]
        width: u32,
        #[arg(long)]
        height: u32,
        text: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    florence2_burn::cpu::keep_freed_memory();
    if let Some(n) = cli.threads
        && let Err(e) = florence2_burn::cpu::set_threads(n.into())
    {
        eprintln!("error: --threads {n}: {e}");
        return ExitCode::from(2);
    }
    if let Command::Label { .. } = cli.command {
        if !matches!(cli.backend, Backend::Cpu) {
            eprintln!("error: label runs on the cpu backend only");
            return ExitCode::from(2);
        }
        return label::main(cli.command);
    }
    let backend = cli.backend;
    match florence2_burn::cpu::on_pool(|| execute(cli.command, backend)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs a command; `Ok(false)` is a check that ran and failed.
fn execute(command: Command, backend: Backend) -> Result<bool> {
    let device = backend.device()?;
    match command {
        Command::Run {
            model,
            image,
            task,
            text,
            beams,
            max_new_tokens,
        } => {
            let task = Task::from_token(&task)?;
            let image = RgbImage::decode(&read(&image)?)?;
            let model = load_model(&model, &device, backend.load_options())?;
            let out = model.run(
                &image,
                task,
                text.as_deref(),
                RunOptions {
                    num_beams: beams,
                    max_new_tokens,
                },
            )?;
            print_json(&out.result)?;
            Ok(true)
        }
        Command::Parity { dir } => {
            let report = florence2_cli::parity::run(
                &read(&dir.join("config.json"))?,
                open(&dir.join("model.safetensors"))?,
                open(&dir.join("golden.safetensors"))?,
                &device,
            )?;
            Ok(print_report(&report))
        }
        Command::E2e { dir } => {
            let model = load_model(&dir, &device, backend.load_options())?;
            let report = florence2_cli::e2e::run(&model, &|name| read(&dir.join(name)))?;
            Ok(print_report(&report))
        }
        Command::Tokenize { tokenizer, text } => {
            let tokenizer = Tokenizer::from_bytes(&read(&tokenizer)?)?;
            let prompt = match florence2::Prompt::parse(&text) {
                Ok(p) => p.model_prompt(),
                Err(_) => text.clone(),
            };
            let ids = tokenizer.encode(&prompt, true)?;
            let tokens: Vec<String> = ids
                .iter()
                .map(|&id| tokenizer.decode(&[id], false))
                .collect::<Result<_>>()?;
            print_json(
                &serde_json::json!({ "text": text, "prompt": prompt, "ids": ids, "tokens": tokens }),
            )?;
            Ok(true)
        }
        Command::Bench {
            model,
            image,
            task,
            new_tokens,
            runs,
            beams,
        } => {
            let task = Task::from_token(&task)?;
            let image = RgbImage::decode(&read(&image)?)?;
            let start = Instant::now();
            let model = load_model(&model, &device, backend.load_options())?;
            println!(
                "load {:.2} s ({}, {:.1} MB of weights in memory)",
                start.elapsed().as_secs_f64(),
                model.dtype(),
                model.weight_bytes() as f64 / 1e6
            );
            bench(&model, &image, task, new_tokens, runs, beams.into())?;
            if matches!(backend, Backend::Cpu) {
                // The product the model's layers are made of, on the same pool: the side
                // of the machine's practical peak `cargo xtask bench model` takes from us.
                println!(
                    "sgemm 2048² {:.1} GFLOP/s",
                    florence2_burn::cpu::sgemm_gflops(2048)
                );
            }
            Ok(true)
        }
        Command::Quantize {
            model,
            out,
            scheme,
            dequantized,
        } => {
            quantize::run(&model, &out, scheme, dequantized.as_deref())?;
            Ok(true)
        }
        // Handled by `label::main` (its own exit codes).
        Command::Label { .. } => Ok(false),
        Command::Postprocess {
            task,
            width,
            height,
            text,
        } => {
            let task = Task::from_token(&task)?;
            let size = ImageSize::new(width, height);
            let answer = florence2::post_process(task, &text, size)?;
            let result = Florence2Result {
                task: task.token().to_owned(),
                text: answer.text,
                entities: answer.entities,
                image: size,
                source: Source::Local,
                usage: None,
            };
            print_json(&result)?;
            Ok(true)
        }
    }
}

fn parse_scheme(name: &str) -> std::result::Result<Scheme, String> {
    Scheme::parse(name).ok_or_else(|| {
        let known: Vec<&str> = Scheme::ALL.iter().map(|s| s.name()).collect();
        format!("unknown scheme `{name}` (known: {})", known.join(", "))
    })
}

fn bench(
    model: &Florence2,
    image: &RgbImage,
    task: Task,
    new_tokens: usize,
    runs: usize,
    beams: usize,
) -> Result<()> {
    let m = &model.model;
    let device = m.device();
    // Exactly `new_tokens` tokens, as the PyTorch side is run (min = max new tokens).
    let mut generation = model.generation_config(RunOptions {
        num_beams: Some(beams),
        max_new_tokens: Some(new_tokens),
    });
    generation.min_new_tokens = new_tokens;
    generation.no_repeat_ngram_size = 0;
    // Wall and CPU seconds of each part: vision, encoder, decoder, then the whole run.
    let one_run = || -> Result<[f64; 8]> {
        let cpu = || cpu_seconds().unwrap_or(f64::NAN);
        let (t0, cpu0) = (Instant::now(), cpu());
        let prompt_ids = model.prompt_ids(task, None)?;
        let features = m.vision_features(image.to_tensor(&model.image_processor, device)?, None)?;
        let image_features = m.image_features(features)?;
        sync(&image_features)?;
        let vision = t0.elapsed().as_secs_f64();
        let (t1, cpu1) = (Instant::now(), cpu());
        let encoder_hidden = m.encode(m.inputs_embeds(image_features, &prompt_ids)?, None)?;
        sync(&encoder_hidden)?;
        let encoder = t1.elapsed().as_secs_f64();
        let (t2, cpu2) = (Instant::now(), cpu());
        let ids = m.generate(&encoder_hidden, &generation, None)?;
        let decoder = t2.elapsed().as_secs_f64();
        let cpu3 = cpu();
        if ids.len() != new_tokens + 1 {
            return Err(Error::Input(format!(
                "generated {} tokens, not {new_tokens}",
                ids.len() - 1
            )));
        }
        let (t3, cpu4) = (Instant::now(), cpu());
        model.run_with(image, task, None, generation.clone())?;
        let total = t3.elapsed().as_secs_f64();
        Ok([
            vision,
            encoder,
            decoder,
            total,
            cpu1 - cpu0,
            cpu2 - cpu1,
            cpu3 - cpu2,
            cpu() - cpu4,
        ])
    };
    one_run()?;
    let results: Vec<[f64; 8]> = (0..runs.max(1)).map(|_| one_run()).collect::<Result<_>>()?;
    let median = |i: usize| {
        let mut v: Vec<f64> = results.iter().map(|r| r[i]).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "runs {}, threads {}, beams {beams}",
        results.len(),
        florence2_burn::cpu::threads()
    );
    // CPU time beside wall time shows how well each part uses the threads (the clock ticks
    // every 10 ms).
    println!(
        "vision  {:9.1} ms  (CPU time {:.0} ms)",
        median(0) * 1e3,
        median(4) * 1e3
    );
    println!(
        "encoder {:9.1} ms  (CPU time {:.0} ms)",
        median(1) * 1e3,
        median(5) * 1e3
    );
    println!(
        "decoder {:9.1} ms  ({:.1} ms/token, {new_tokens} tokens; CPU time {:.0} ms)",
        median(2) * 1e3,
        median(2) * 1e3 / new_tokens as f64,
        median(6) * 1e3
    );
    println!(
        "total   {:9.1} ms  (CPU time {:.0} ms)",
        median(3) * 1e3,
        median(7) * 1e3
    );
    match peak_rss_mib() {
        Some(mib) => println!("peak RSS {mib} MiB"),
        None => println!("peak RSS n/a"),
    }
    Ok(())
}

/// Waits for a tensor's computation (reads one value back).
fn sync(t: &burn::tensor::Tensor<3>) -> Result<()> {
    florence2_burn::values(t.clone().slice([0..1, 0..1, 0..1])).map(drop)
}

/// User + system CPU time of the process so far (Linux: /proc/self/stat), the fairer clock
/// on a machine that other work shares.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// The process's peak resident set (Linux: `VmHWM` of /proc/self/status).
fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

pub(crate) fn load_model(dir: &Path, device: &Device, options: LoadOptions) -> Result<Florence2> {
    let optional = |name: &str| -> Result<Option<Vec<u8>>> {
        let path = dir.join(name);
        if path.exists() {
            read(&path).map(Some)
        } else {
            Ok(None)
        }
    };
    let processor_config = match optional("processor_config.json")? {
        Some(bytes) => Some(bytes),
        None => optional("preprocessor_config.json")?,
    };
    let files = ModelFiles {
        config: read(&dir.join("config.json"))?,
        checkpoint: open(&dir.join("model.safetensors"))?,
        tokenizer: read(&dir.join("tokenizer.json"))?,
        generation_config: optional("generation_config.json")?,
        processor_config,
    };
    Florence2::load_with(files, device, options)
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::Io {
        context: format!("reading {}", path.display()),
        source: e,
    })
}

fn open(path: &Path) -> Result<BufReader<File>> {
    File::open(path).map(BufReader::new).map_err(|e| Error::Io {
        context: format!("opening {}", path.display()),
        source: e,
    })
}

fn print_json(value: &impl serde::Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::Input(format!("cannot serialise the result: {e}")))?;
    println!("{text}");
    Ok(())
}

fn print_report(report: &Report) -> bool {
    for line in report.lines() {
        println!("{line}");
    }
    let failed = report.items.iter().filter(|(_, o)| !o.ok()).count();
    let passed = report.passed();
    println!(
        "{}: {} checked, {failed} failed",
        if passed { "PASS" } else { "FAIL" },
        report.items.len()
    );
    passed
}
