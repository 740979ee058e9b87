//! Shared by the integration tests: where the reference data is, and checkpoint surgery.
#![allow(dead_code)] // each test binary uses a different part

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorView};

/// A reference subfolder (`florence2-tiny`, `tokenizer`, …). Tests that call it carry
/// `#[cfg_attr(reference_missing, ignore = …)]` (set by `model/build.rs` when the folder is
/// absent outside CI), so here it is there, or this fails saying where it looked.
pub fn reference(sub: &str) -> PathBuf {
    florence2_reference::dir(env!("CARGO_MANIFEST_DIR"), sub)
}

/// The tiny reference model: its `config.json`, its tensors, and its folder.
pub fn tiny() -> (Vec<u8>, Tensors, PathBuf) {
    let dir = reference("florence2-tiny");
    let config = std::fs::read(dir.join("config.json")).unwrap();
    (config, Tensors::read(&dir.join("model.safetensors")), dir)
}

/// A model from `config.json` bytes and a checkpoint, on the CPU.
pub fn load(
    config: &[u8],
    checkpoint: Vec<u8>,
) -> Result<florence2_burn::Florence2Model, florence2_burn::Error> {
    florence2_burn::Florence2Model::load(
        florence2_burn::Florence2Config::from_json(config)?,
        std::io::Cursor::new(checkpoint),
        &burn::tensor::Device::flex(),
    )
}

/// A reference model folder (`florence2-tiny-e2e`, …) as [`florence2_burn::ModelFiles`]
/// read into memory.
pub fn model_files(sub: &str) -> florence2_burn::ModelFiles<std::io::Cursor<Vec<u8>>> {
    let dir = reference(sub);
    let read = |name: &str| std::fs::read(dir.join(name));
    florence2_burn::ModelFiles {
        config: read("config.json").unwrap(),
        checkpoint: std::io::Cursor::new(read("model.safetensors").unwrap()),
        tokenizer: read("tokenizer.json").unwrap(),
        generation_config: read("generation_config.json").ok(),
        processor_config: read("processor_config.json").ok(),
    }
}

/// A checkpoint's tensors as raw little-endian bytes, editable.
pub struct Tensors {
    pub map: BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)>,
}

impl Tensors {
    pub fn read(path: &Path) -> Tensors {
        let bytes = std::fs::read(path).expect("reading a reference checkpoint");
        let st =
            safetensors::SafeTensors::deserialize(&bytes).expect("a valid reference checkpoint");
        let map = st
            .tensors()
            .into_iter()
            .map(|(name, v)| (name, (v.dtype(), v.shape().to_vec(), v.data().to_vec())))
            .collect();
        Tensors { map }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let views: Vec<(String, TensorView<'_>)> = self
            .map
            .iter()
            .map(|(name, (dtype, shape, data))| {
                (
                    name.clone(),
                    TensorView::new(*dtype, shape.clone(), data).expect("consistent tensor"),
                )
            })
            .collect();
        safetensors::serialize(views, None).expect("serialising a checkpoint")
    }

    pub fn f32_values(&self, name: &str) -> Vec<f32> {
        let (dtype, _, data) = &self.map[name];
        assert_eq!(*dtype, Dtype::F32, "{name}");
        data.chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }

    pub fn set_f32(&mut self, name: &str, shape: Vec<usize>, values: &[f32]) {
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.map.insert(name.to_owned(), (Dtype::F32, shape, data));
    }

    /// The same weights in the original microsoft layout: renamed per the key map,
    /// `image_projection` transposed, and `lm_head` stored on its own as those checkpoints do.
    pub fn to_original_layout(&self) -> Tensors {
        let mut out = Tensors {
            map: BTreeMap::new(),
        };
        for (name, (dtype, shape, data)) in &self.map {
            out.map.insert(
                florence2_burn::load::weights::native_to_original(name),
                (*dtype, shape.clone(), data.clone()),
            );
        }
        let (_, shape, _) = out.map["image_projection"].clone();
        let v = out.f32_values("image_projection");
        let (rows, cols) = (shape[0], shape[1]);
        let t: Vec<f32> = (0..rows * cols)
            .map(|i| v[(i % rows) * cols + i / rows])
            .collect();
        out.set_f32("image_projection", vec![cols, rows], &t);
        let shared = out.map["language_model.model.shared.weight"].clone();
        out.map
            .insert("language_model.lm_head.weight".into(), shared);
        out
    }

    /// Every f32 tensor converted to `dtype` (F16 or BF16).
    pub fn to_half(&self, dtype: Dtype) -> Tensors {
        let mut out = Tensors {
            map: BTreeMap::new(),
        };
        for (name, (_, shape, _)) in &self.map {
            let data: Vec<u8> = self
                .f32_values(name)
                .iter()
                .flat_map(|&v| match dtype {
                    Dtype::F16 => half::f16::from_f32(v).to_le_bytes(),
                    Dtype::BF16 => half::bf16::from_f32(v).to_le_bytes(),
                    other => panic!("not a half type: {other:?}"),
                })
                .collect();
            out.map.insert(name.clone(), (dtype, shape.clone(), data));
        }
        out
    }
}
