//! A checkpoint in the original (microsoft/Florence-2-*) layout gives the same numbers as the
//! native one: the whole parity check, on the tiny reference model's tensors renamed.

#[path = "../../model/tests/common/mod.rs"]
mod common;

use std::io::Cursor;

use burn::tensor::Device;
use common::{load, tiny};
use florence2_burn::Layout;

#[test]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
fn original_layout_passes_the_same_parity_checks() {
    let (config, tensors, dir) = tiny();
    let original = tensors.to_original_layout();
    assert!(
        original
            .map
            .contains_key("vision_tower.blocks.2.1.channel_block.ffn.fn.net.fc1.weight")
    );
    let model = load(&config, original.to_bytes()).unwrap();
    assert_eq!(model.layout(), Layout::Original);
    let golden = std::fs::File::open(dir.join("golden.safetensors")).unwrap();
    let report = florence2_cli::parity::run(
        &config,
        Cursor::new(original.to_bytes()),
        golden,
        &Device::flex(),
    )
    .unwrap();
    for line in report.lines() {
        println!("{line}");
    }
    assert!(report.passed());
}
