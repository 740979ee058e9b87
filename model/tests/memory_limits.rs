//! A model folder whose pictures cannot fit where it runs is refused before its weights are
//! read, and a picture taken at its own size is checked before the vision pass: the browser's
//! runtime (wasm32's 4 GiB, a GPU's largest buffer) gets `OutOfMemory` instead of a trap.

mod common;

use std::io::Cursor;

use burn::tensor::Device;
use florence2_burn::{Error, Florence2, LoadOptions, MemoryLimits, ModelFiles, RgbImage};

const TABLE: &str = "model.multi_modal_projector.image_position_embed";

/// The tiny e2e model's files, with `processor` (JSON) as its processor config and its
/// position table `rows` long (the learned rows repeated).
fn files(processor: &str, rows: usize) -> ModelFiles<Cursor<Vec<u8>>> {
    let dir = common::reference("florence2-tiny-e2e");
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
    let mut config: serde_json::Value = serde_json::from_slice(&read("config.json")).unwrap();
    config["vision_config"]["max_position_embeddings"] = rows.into();
    let mut tensors = common::Tensors::read(&dir.join("model.safetensors"));
    for axis in ["row_embeddings", "column_embeddings"] {
        let name = format!("{TABLE}.{axis}.weight");
        let width = tensors.map[&name].1[1];
        let learned = tensors.f32_values(&name);
        let values: Vec<f32> = learned.iter().copied().cycle().take(rows * width).collect();
        tensors.set_f32(&name, vec![rows, width], &values);
    }
    ModelFiles {
        config: serde_json::to_vec(&config).unwrap(),
        checkpoint: Cursor::new(tensors.to_bytes()),
        tokenizer: read("tokenizer.json"),
        generation_config: Some(read("generation_config.json")),
        processor_config: Some(processor.as_bytes().to_vec()),
    }
}

fn load(files: ModelFiles<Cursor<Vec<u8>>>, limits: MemoryLimits) -> Result<Florence2, Error> {
    let options = LoadOptions {
        limits,
        ..LoadOptions::default()
    };
    Florence2::load_with(files, &Device::flex(), options)
}

fn sized(side: u32) -> String {
    format!(r#"{{"size": {{"height": {side}, "width": {side}}}}}"#)
}

#[test]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
fn a_processor_size_beyond_the_position_table_is_a_bad_config() {
    // 50 rows take pictures up to 1600 pixels (a 32× smaller grid).
    load(files(&sized(1600), 50), MemoryLimits::default()).unwrap();
    let e = load(files(&sized(3200), 50), MemoryLimits::default())
        .err()
        .unwrap();
    assert!(matches!(e, Error::Config { .. }), "{e}");
    assert!(e.to_string().contains("position table"), "{e}");
}

#[test]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
fn a_model_whose_pictures_cannot_fit_is_refused_at_load() {
    // 51200² pictures: 31 GB of pixel values alone. Natively (no limits) it loads: the
    // refusal is the limits', not a broken folder.
    let huge = || files(&sized(51200), 1600);
    load(huge(), MemoryLimits::default()).unwrap();
    let e = load(huge(), MemoryLimits::WASM32).err().unwrap();
    assert!(matches!(e, Error::OutOfMemory(_)), "{e}");
    assert!(e.to_string().contains("51200x51200"), "{e}");
    let gpu = MemoryLimits {
        memory_bytes: None,
        buffer_bytes: Some(1 << 30),
    };
    let e = load(huge(), gpu).err().unwrap();
    assert!(
        e.to_string().contains("buffers hold at most 1024 MiB"),
        "{e}"
    );
    // The model's own size is fine on either.
    load(files(&sized(768), 50), MemoryLimits::WASM32).unwrap();
    load(files(&sized(768), 50), gpu).unwrap();
}

#[test]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
fn pictures_kept_at_their_own_size_are_checked_before_the_vision_pass() {
    let own_size = r#"{"do_resize": false}"#;
    let model = load(files(own_size, 50), MemoryLimits::default()).unwrap();
    let weights = model.parameters() * 4;
    let picture = |w: u32, h: u32| RgbImage::new(w, h, vec![100; (w * h * 3) as usize]).unwrap();
    // 1700 pixels wide: a 54-cell grid, beyond the table's 50.
    let e = model.image_features(&picture(1700, 32)).err().unwrap();
    assert!(matches!(e, Error::Input(_)), "{e}");
    assert!(e.to_string().contains("position table"), "{e}");

    // Room for the weights and 100 kB more: a 32×32 picture fits (its tensors are a few kB),
    // a 256×256 one does not (stage 0 alone holds 64² tokens × 40 channels × 4 bytes).
    let limits = MemoryLimits {
        memory_bytes: Some(weights + 100_000),
        buffer_bytes: None,
    };
    let model = load(files(own_size, 50), limits).unwrap();
    assert!(!model.image_processor.do_resize);
    model.image_features(&picture(32, 32)).unwrap();
    let e = model.image_features(&picture(256, 256)).err().unwrap();
    assert!(matches!(e, Error::OutOfMemory(_)), "{e}");
    assert!(e.to_string().contains("256x256"), "{e}");
}

#[test]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
fn the_weights_floor_counts_a_tied_matrix_once_however_many_names_store_it() {
    let plain = load(files(&sized(768), 50), MemoryLimits::default()).unwrap();
    let mut with_aliases = files(&sized(768), 50);
    let mut tensors = common::Tensors {
        map: safetensors::SafeTensors::deserialize(with_aliases.checkpoint.get_ref())
            .unwrap()
            .tensors()
            .into_iter()
            .map(|(n, v)| (n, (v.dtype(), v.shape().to_vec(), v.data().to_vec())))
            .collect(),
    };
    let shared = tensors.map["model.language_model.shared.weight"].clone();
    for alias in ["encoder", "decoder"] {
        let name = format!("model.language_model.{alias}.embed_tokens.weight");
        tensors.map.insert(name, shared.clone());
    }
    with_aliases.checkpoint = Cursor::new(tensors.to_bytes());
    let aliased = load(with_aliases, MemoryLimits::default()).unwrap();
    assert_eq!(aliased.parameters(), plain.parameters());
    let [vocab, d] = [shared.1[0] as u64, shared.1[1] as u64];
    assert!(plain.parameters() > vocab * d, "{}", plain.parameters());
}
