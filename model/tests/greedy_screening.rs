//! On the CPU a greedy step computes only the logits that can win (the token matrix's high
//! halves screen the rest): the ids must be those the full logits give, n-gram bans included.

mod common;

use burn::tensor::Device;
use florence2::Task;
use florence2_burn::values;
use florence2_burn::{Florence2, RgbImage, RunOptions};

#[test]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
fn screened_greedy_steps_choose_as_the_full_logits() {
    let dir = common::reference("florence2-tiny-e2e");
    let model =
        Florence2::load(common::model_files("florence2-tiny-e2e"), &Device::flex()).unwrap();
    assert!(
        model.model.screens_greedy_steps(),
        "the CPU's token matrix screens"
    );
    let image = RgbImage::decode(&std::fs::read(dir.join("test_image.png")).unwrap()).unwrap();
    let features = model.image_features(&image).unwrap();
    let mut cfg = model.generation_config(RunOptions {
        num_beams: Some(1),
        max_new_tokens: Some(40),
    });
    // Bans make the screening skip tokens it would otherwise pick (the random model repeats).
    cfg.no_repeat_ngram_size = 3;
    for token in [
        "<CAPTION>",
        "<OD>",
        "<OCR_WITH_REGION>",
        "<REGION_PROPOSAL>",
    ] {
        let task = Task::from_token(token).unwrap();
        let screened = model
            .run_from(&features, task, None, cfg.clone(), &|| false)
            .unwrap()
            .generated_ids;
        let mut run = model.start_from(&features, task, None, &cfg).unwrap();
        while !run.decoding.is_done() {
            let logits = values(run.decoding.forward().unwrap()).unwrap();
            run.decoding.push_logits(&logits).unwrap();
        }
        let full = model.finish(run).unwrap().generated_ids;
        assert_eq!(screened, full, "{token}");
        assert!(full.len() > 10, "{token}: only {} ids", full.len());
    }
}
