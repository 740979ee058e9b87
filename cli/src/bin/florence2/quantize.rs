//! `florence2 quantize`: a model folder's large matrices to 8 or 4 bits (the
//! `florence2-blockwise` format of florence2-burn's `load::quantized`), written as a complete
//! model folder, and optionally the same model dequantized to f32 (the values the quantized
//! kernels multiply with: what transformers is run on to make its goldens).

use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use florence2_burn::load::quantized::{Scheme, quantize_checkpoint};
use florence2_burn::safetensors_file::SafetensorsFile;
use florence2_burn::{Error, Florence2Config, Result};

/// Files a model folder may have besides `model.safetensors`, copied as they are
/// (`config.json` and `tokenizer.json` must be there).
const REQUIRED: [&str; 2] = ["config.json", "tokenizer.json"];
const OPTIONAL: [&str; 8] = [
    "generation_config.json",
    "processor_config.json",
    "preprocessor_config.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
];

pub fn run(model: &Path, out: &Path, scheme: Scheme, dequantized: Option<&Path>) -> Result<()> {
    for target in std::iter::once(out).chain(dequantized) {
        if target.exists() {
            return Err(Error::Input(format!(
                "{} already exists (quantize writes a new folder, never over one)",
                target.display()
            )));
        }
    }
    let mut copied = Vec::new();
    for name in REQUIRED {
        copied.push((name, read(&model.join(name))?));
    }
    for name in OPTIONAL {
        let path = model.join(name);
        if path.exists() {
            copied.push((name, read(&path)?));
        }
    }
    // A folder whose config is not Florence-2's is refused before any weight is read.
    Florence2Config::from_json(&copied[0].1).map_err(|e| named(&model.join("config.json"), e))?;
    let checkpoint = model.join("model.safetensors");
    let file = File::open(&checkpoint).map_err(|e| Error::Io {
        context: format!("opening {}", checkpoint.display()),
        source: e,
    })?;
    let mut file =
        SafetensorsFile::open(BufReader::new(file)).map_err(|e| named(&checkpoint, e))?;
    let q = quantize_checkpoint(&mut file, scheme, dequantized.is_some())
        .map_err(|e| named(&checkpoint, e))?;
    write_folder(out, &copied, &q.model)?;
    if let (Some(dir), Some(bytes)) = (dequantized, &q.dequantized) {
        write_folder(dir, &copied, bytes)?;
    }
    let [q8, q4, f16, f32] = q.counts;
    println!(
        "{}: {} ({:.1} MB model.safetensors): {q8} matrices 8-bit, {q4} 4-bit, {f16} tensors F16, {f32} F32",
        out.display(),
        scheme.name(),
        q.model.len() as f64 / 1e6
    );
    if let Some(dir) = dequantized {
        println!("{}: the same values as f32", dir.display());
    }
    Ok(())
}

/// An error about `path`'s contents, naming the file.
fn named(path: &Path, e: Error) -> Error {
    Error::Input(format!("{}: {e}", path.display()))
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::Io {
        context: format!("reading {}", path.display()),
        source: e,
    })
}

/// Writes the folder `dir` atomically: into a hidden sibling first, renamed into place once
/// every file is written and synced; on failure the sibling is removed, so nothing
/// half-written is ever under `dir`'s name.
fn write_folder(dir: &Path, copied: &[(&str, Vec<u8>)], checkpoint: &[u8]) -> Result<()> {
    let name = dir
        .file_name()
        .ok_or_else(|| Error::Input(format!("{} is not a folder name", dir.display())))?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let partial = parent.join(format!(
        ".{}.partial-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let io = |context: String| move |e| Error::Io { context, source: e };
    let write_all = || -> Result<()> {
        std::fs::create_dir(&partial).map_err(io(format!("creating {}", partial.display())))?;
        let files = copied
            .iter()
            .map(|(n, b)| (*n, b.as_slice()))
            .chain([("model.safetensors", checkpoint)]);
        for (file, bytes) in files {
            let path = partial.join(file);
            let mut f = File::create(&path).map_err(io(format!("creating {}", path.display())))?;
            f.write_all(bytes)
                .and_then(|()| f.sync_all())
                .map_err(io(format!("writing {}", path.display())))?;
        }
        std::fs::rename(&partial, dir).map_err(io(format!(
            "renaming {} to {}",
            partial.display(),
            dir.display()
        )))?;
        // The rename itself survives a crash once the parent folder is synced.
        if let Ok(parent) = File::open(&parent) {
            let _ = parent.sync_all();
        }
        Ok(())
    };
    let result = write_all();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&partial);
    }
    result
}
