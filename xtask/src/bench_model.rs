//! `cargo xtask bench model`: our model against PyTorch on the CPU, side by side in one run
//! (with `--onnx DIR`: against onnxruntime on model/tools/export_onnx.py's export of the same
//! weights, the files transformers.js loads, run by model/tools/bench_onnxruntime.py).
//! For each thread count, rounds alternate which side goes first; each side's run prints
//! medians of its own `--runs`, and the table shows the median over rounds, with the ratios
//! the CPU issue sets goals for. The faster of two large sgemms, PyTorch's and ours (each
//! side's library picks its kernels at run time: on an AVX-512 machine where PyTorch's stay
//! on AVX2, ours is the faster), gives the machine's practical peak, against which both
//! sides' whole run is set.

use std::path::PathBuf;

use crate::bins::CLI;
use crate::util::{Result, cargo, output, root, run_step, target_dir};

/// Multiply-adds × 2 of one `<CAPTION>` run of the base model at 768² with 20 tokens, in
/// GFLOP, counted from its config: DaViT ≈ 380 (its linear layers alone 348), projector and
/// BART encoder (590 tokens) ≈ 57, the decoder's cross-attention keys and 20 steps ≈ 12.
const CAPTION_GFLOP: f64 = 450.0;

struct Options {
    model: PathBuf,
    image: PathBuf,
    python: String,
    onnx: Option<PathBuf>,
    threads: Vec<usize>,
    rounds: usize,
    runs: usize,
    new_tokens: usize,
    beams: usize,
}

const USAGE: &str = "usage: cargo xtask bench model --model DIR [--image PNG] [--python PY] \
[--threads 1,2] [--rounds 2] [--runs 3] [--new-tokens 20] [--beams 1] [--onnx DIR]
  DIR: a Florence-2 folder both sides load (model/tools/make_base_model.py makes a base-shaped
  one); PY: a Python with torch and transformers (default: python3); --onnx DIR: against
  onnxruntime (pip) on model/tools/export_onnx.py's export of DIR (greedy only), not PyTorch.";

fn parse(args: &[String]) -> Result<Options> {
    let mut model = None;
    let mut image = None;
    let mut o = Options {
        model: PathBuf::new(),
        image: PathBuf::new(),
        python: "python3".into(),
        onnx: None,
        threads: vec![1, 2],
        rounds: 2,
        runs: 3,
        new_tokens: 20,
        beams: 1,
    };
    let number = |flag: &str, v: &str| -> Result<usize> {
        v.parse::<usize>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("{flag} wants a positive number, not {v:?}\n{USAGE}"))
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--model" => model = Some(PathBuf::from(value)),
            "--image" => image = Some(PathBuf::from(value)),
            "--python" => o.python = value.clone(),
            "--onnx" => o.onnx = Some(PathBuf::from(value)),
            "--threads" => {
                o.threads = value
                    .split(',')
                    .map(|t| number(flag, t))
                    .collect::<Result<_>>()?
            }
            "--rounds" => o.rounds = number(flag, value)?,
            "--runs" => o.runs = number(flag, value)?,
            "--new-tokens" => o.new_tokens = number(flag, value)?,
            "--beams" => o.beams = number(flag, value)?,
            _ => return Err(format!("unknown flag {flag}\n{USAGE}")),
        }
    }
    o.model = model.ok_or(USAGE)?;
    o.image = image.unwrap_or_else(|| o.model.join("test_image.png"));
    Ok(o)
}

/// One side's figures: vision, encoder, decoder per token (s), total (s), peak RSS (MiB).
#[derive(Clone, Copy, Default)]
struct Figures {
    vision: f64,
    encoder: f64,
    token: f64,
    total: f64,
    rss: f64,
}

/// Reads the lines both `florence2 bench` and `bench_torch.py` print.
fn figures(text: &str, new_tokens: usize) -> Result<Figures> {
    let ms = |key: &str| number_after(text, key).map(|v| v / 1e3);
    Ok(Figures {
        vision: ms("vision ")?,
        encoder: ms("encoder ")?,
        token: ms("decoder ")? / new_tokens as f64,
        total: ms("total ")?,
        rss: ms("peak RSS ")? * 1e3,
    })
}

/// The number after `key` at the start of one of `text`'s lines.
fn number_after(text: &str, key: &str) -> Result<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .ok_or_else(|| format!("no `{key}` line in:\n{text}"))
}

/// The middle value; of an even count, the mean of the middle two.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn medians(rounds: &[Figures]) -> Figures {
    let of = |f: fn(&Figures) -> f64| median(rounds.iter().map(f).collect());
    Figures {
        vision: of(|f| f.vision),
        encoder: of(|f| f.encoder),
        token: of(|f| f.token),
        total: of(|f| f.total),
        rss: of(|f| f.rss),
    }
}

pub fn run(args: &[String]) -> Result {
    let o = parse(args)?;
    run_step(cargo().args([
        "build",
        "-p",
        CLI.package,
        "--profile",
        "release-native",
        "--bin",
        CLI.name,
    ]))?;
    let ours_bin = target_dir().join("release-native").join(CLI.name);
    let torch_script = root().join(if o.onnx.is_some() {
        "model/tools/bench_onnxruntime.py"
    } else {
        "model/tools/bench_torch.py"
    });
    if o.onnx.is_some() && o.beams != 1 {
        return Err(format!("--onnx: greedy only (--beams 1)\n{USAGE}"));
    }
    let other_model = o
        .onnx
        .as_ref()
        .unwrap_or(&o.model)
        .to_string_lossy()
        .into_owned();
    let (model, image) = (o.model.to_string_lossy(), o.image.to_string_lossy());
    let (runs, tokens, beams) = (
        o.runs.to_string(),
        o.new_tokens.to_string(),
        o.beams.to_string(),
    );
    let mut table = Vec::new();
    for &threads in &o.threads {
        let t = threads.to_string();
        let ours = || -> Result<(Figures, f64)> {
            let text = output(std::process::Command::new(&ours_bin).args([
                "--threads",
                &t,
                "bench",
                "--model",
                &model,
                "--image",
                &image,
                "--runs",
                &runs,
                "--new-tokens",
                &tokens,
                "--beams",
                &beams,
            ]))?;
            print!("{text}");
            Ok((figures(&text, o.new_tokens)?, our_sgemm(&text)?))
        };
        let torch = || {
            let script = torch_script.to_string_lossy();
            let text = output(
                std::process::Command::new(&o.python)
                    .args([&*script, &*other_model, &*image, &t, &runs, &tokens])
                    .args(o.onnx.is_none().then_some(&*beams)),
            )?;
            print!("{text}");
            figures(&text, o.new_tokens)
        };
        let (mut our_rounds, mut torch_rounds, mut our_sgemms) =
            (Vec::new(), Vec::new(), Vec::new());
        for round in 0..o.rounds {
            if round % 2 == 1 {
                torch_rounds.push(torch()?);
            }
            let (figures, sgemm) = ours()?;
            our_rounds.push(figures);
            our_sgemms.push(sgemm);
            if round % 2 == 0 {
                torch_rounds.push(torch()?);
            }
        }
        let peak = Peak {
            torch: torch_sgemm(&o.python, threads)?,
            ours: median(our_sgemms),
        };
        table.push((threads, medians(&our_rounds), medians(&torch_rounds), peak));
    }
    print_table(&o, &table);
    Ok(())
}

/// GFLOP/s of each side's 2048² f32 product on the benchmark's threads.
struct Peak {
    torch: f64,
    ours: f64,
}

impl Peak {
    /// The practical peak: the faster of the two.
    fn best(&self) -> f64 {
        self.torch.max(self.ours)
    }
}

/// The `sgemm 2048² … GFLOP/s` line `florence2 bench` prints after its figures.
fn our_sgemm(text: &str) -> Result<f64> {
    number_after(text, "sgemm 2048² ")
}

/// GFLOP/s of a 2048² f32 product in PyTorch on `threads` threads.
fn torch_sgemm(python: &str, threads: usize) -> Result<f64> {
    let code = format!(
        "import time, torch\n\
         torch.set_num_threads({threads})\n\
         a = torch.randn(2048, 2048); b = torch.randn(2048, 2048)\n\
         def once():\n\
         \x20   t = time.perf_counter(); a @ b; return time.perf_counter() - t\n\
         once()\n\
         print(2 * 2048 ** 3 / min(once() for _ in range(10)) / 1e9)\n"
    );
    let text = output(std::process::Command::new(python).args(["-c", &code]))?;
    text.trim()
        .parse()
        .map_err(|_| format!("sgemm peak: unexpected output {text:?}"))
}

fn print_table(o: &Options, table: &[(usize, Figures, Figures, Peak)]) {
    println!(
        "\n`<CAPTION>`, {} tokens, {} beam(s); medians of {} rounds × {} runs per side",
        o.new_tokens, o.beams, o.rounds, o.runs
    );
    let other = if o.onnx.is_some() {
        "onnxruntime"
    } else {
        "PyTorch"
    };
    println!("\n| threads | part | ours | {other} | ours / {other} |");
    println!("|---|---|---|---|---|");
    for (threads, ours, torch, _) in table {
        let rows: [(&str, f64, f64, &str, f64); 5] = [
            ("vision", ours.vision, torch.vision, "s", 1.0),
            ("encoder", ours.encoder, torch.encoder, "s", 1.0),
            ("decoder", ours.token, torch.token, "ms/token", 1e3),
            ("total", ours.total, torch.total, "s", 1.0),
            ("peak RSS", ours.rss, torch.rss, "MiB", 1.0),
        ];
        for (part, a, b, unit, scale) in rows {
            let digits = if unit == "s" { 2 } else { 1 };
            println!(
                "| {threads} | {part} | {:.digits$} {unit} | {:.digits$} {unit} | {:.2} |",
                a * scale,
                b * scale,
                a / b
            );
        }
    }
    println!(
        "\nPractical peak (the faster 2048² sgemm of the two sides) and each side's distance from it (≈{CAPTION_GFLOP:.0} GFLOP per caption):"
    );
    for (threads, ours, torch, peak) in table {
        let floor = CAPTION_GFLOP / peak.best();
        println!(
            "- {threads} thread(s): {:.0} GFLOP/s (sgemm: ours {:.0}, PyTorch {:.0}) → ≥ {floor:.2} s; ours {:.0}% of peak, {other} {:.0}%",
            peak.best(),
            peak.ours,
            peak.torch,
            100.0 * floor / ours.total,
            100.0 * floor / torch.total
        );
    }
    if let (Some(one), Some(more)) = (
        table.iter().find(|r| r.0 == 1),
        table.iter().filter(|r| r.0 > 1).max_by_key(|r| r.0),
    ) {
        println!(
            "- ours on {} threads / ours on 1: {:.2} ({other}: {:.2})",
            more.0,
            more.1.total / one.1.total,
            more.2.total / one.2.total
        );
    }
}
