//! The token matrix split in row blocks (as on WebGPU, where one binding holds 128 MiB and
//! base's matrix is 150 MiB) gives the tiny model's end-to-end goldens exactly.

#[path = "../../model/tests/common/mod.rs"]
mod common;

use burn::tensor::Device;
use florence2_burn::{Florence2, LoadOptions};

#[test]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
fn a_split_token_matrix_passes_the_e2e_goldens() {
    let dir = common::reference("florence2-tiny-e2e");
    let read = |name: &str| std::fs::read(dir.join(name));
    let files = common::model_files("florence2-tiny-e2e");
    let options = LoadOptions {
        max_buffer_bytes: Some(1 << 20),
        ..LoadOptions::default()
    };
    let model = Florence2::load_with(files, &Device::flex(), options).unwrap();
    let blocks = model.model.vocab_blocks();
    assert!(blocks > 1, "a 1 MiB limit left the token matrix whole");
    let report = florence2_cli::e2e::run(&model, &|name| {
        read(name).map_err(|e| florence2_burn::Error::Input(format!("{name}: {e}")))
    })
    .unwrap();
    for line in report.lines() {
        println!("{line}");
    }
    assert!(report.passed(), "the goldens fail with {blocks} blocks");
}
