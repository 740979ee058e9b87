//! The model with this crate's CPU kernels switched off — burn's generic ops only, the code
//! path wgpu runs — still matches every golden. (Its own test binary: the switch is global.)

#[path = "../../model/tests/common/mod.rs"]
mod common;

use burn::tensor::Device;

#[test]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
fn generic_ops_pass_parity() {
    let dir = common::reference("florence2-tiny");
    florence2_burn::cpu::set_enabled(false);
    let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
    let report = florence2_cli::parity::run(
        &read("config.json"),
        std::io::Cursor::new(read("model.safetensors")),
        std::io::Cursor::new(read("golden.safetensors")),
        &Device::flex(),
    )
    .unwrap();
    for line in report.lines() {
        println!("{line}");
    }
    assert!(report.passed());
}
