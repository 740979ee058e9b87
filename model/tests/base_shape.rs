//! The real Florence-2-base shape (~0.9 GB, never committed) loads from both layouts and
//! gives the same logits. Ignored by default; run it with a folder made by
//! `model/tools/make_base_model.py` (which writes `native/` and `original/`):
//!
//! FLORENCE2_BASE_DIR=/path/to/base cargo test -p florence2-burn --test base_shape -- --ignored

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use burn::tensor::Device;
use florence2_burn::values;
use florence2_burn::{Florence2Config, Florence2Model, Layout};

#[test]
#[ignore = "needs FLORENCE2_BASE_DIR (a random base-shaped model, ~2 GB with both layouts)"]
fn base_shape_loads_from_both_layouts_with_identical_outputs() {
    // Run on purpose (--ignored) without the folder: a failure, never a silent pass.
    let dir = std::env::var_os("FLORENCE2_BASE_DIR")
        .map(PathBuf::from)
        .expect("set FLORENCE2_BASE_DIR to the output of make_base_model.py");
    let device = Device::flex();
    let mut outputs = Vec::new();
    for (sub, layout) in [("native", Layout::Native), ("original", Layout::Original)] {
        let config =
            Florence2Config::from_json(&std::fs::read(dir.join(sub).join("config.json")).unwrap())
                .unwrap();
        assert_eq!(config.vision_config.embed_dim, vec![128, 256, 512, 1024]);
        assert_eq!(config.text_config.vocab_size, 51328);
        let checkpoint =
            BufReader::new(File::open(dir.join(sub).join("model.safetensors")).unwrap());
        let model = Florence2Model::load(config, checkpoint, &device)
            .unwrap_or_else(|e| panic!("{sub}: {e}"));
        assert_eq!(model.layout(), layout);
        // A cheap forward through the language model (the vision tower is covered by parity).
        let inputs = model.embed(&[0, 574, 22486, 5, 8720, 2]).unwrap();
        let hidden = model.encode(inputs, None).unwrap();
        let mut cache = model.decoder_cache(&hidden);
        let out = model.decode(&[2, 0], 1, &mut cache, None).unwrap();
        outputs.push(values(model.logits(out)).unwrap());
    }
    assert_eq!(outputs[0], outputs[1]);
}
