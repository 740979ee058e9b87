//! The weights loader on real (tiny) checkpoints and on broken ones: the original layout
//! loads (that it gives the same numbers as the native one is checked with the golden
//! harness, in florence2-cli's tests/original_layout.rs), half-precision files load, and every
//! bad file is a typed error naming the culprit.

mod common;

use common::{Tensors, load, tiny};
use florence2_burn::{Error, Florence2Config, GenerationConfig, MAX_BEAMS};
use safetensors::tensor::Dtype;

const EMBED: &str = "model.language_model.shared.weight";

#[test]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
fn original_layout_accepts_its_unused_tensors_but_not_others() {
    let (config, tensors, _) = tiny();
    let mut original = tensors.to_original_layout();
    original.set_f32("vision_tower.norms.weight", vec![64], &[1.0; 64]);
    original.set_f32("vision_tower.norms.bias", vec![64], &[0.0; 64]);
    original.set_f32(
        "language_model.final_logits_bias",
        vec![1, 320],
        &[0.0; 320],
    );
    load(&config, original.to_bytes()).unwrap();
    original.set_f32(
        "language_model.final_logits_bias",
        vec![1, 320],
        &[0.5; 320],
    );
    assert!(
        matches!(load(&config, original.to_bytes()), Err(Error::Checkpoint(m)) if m.contains("final_logits_bias"))
    );
}

#[test]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
fn half_precision_checkpoints_are_converted_on_load() {
    let (config, tensors, _) = tiny();
    for dtype in [Dtype::F16, Dtype::BF16] {
        let halved = tensors.to_half(dtype);
        let model = load(&config, halved.to_bytes()).unwrap_or_else(|e| panic!("{dtype:?}: {e}"));
        // The embedding holds exactly the half values, widened.
        let ours = florence2_burn::values(model.embed(&[0, 1, 2, 319]).unwrap()).unwrap();
        let f32s = tensors.f32_values(EMBED);
        for (k, id) in [0usize, 1, 2, 319].iter().enumerate() {
            for j in 0..64 {
                let v = f32s[id * 64 + j];
                let want = match dtype {
                    Dtype::F16 => half::f16::from_f32(v).to_f32(),
                    _ => half::bf16::from_f32(v).to_f32(),
                };
                assert_eq!(ours[k * 64 + j], want);
            }
        }
    }
}

#[test]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
fn missing_tensor_is_named() {
    let (config, mut tensors, _) = tiny();
    tensors
        .map
        .remove("model.vision_tower.blocks.2.1.spatial_block.conv2.bias");
    match load(&config, tensors.to_bytes()) {
        Err(Error::MissingTensor { name }) => assert_eq!(
            name,
            "model.vision_tower.blocks.2.1.spatial_block.conv2.bias"
        ),
        other => panic!("expected MissingTensor, got {:?}", other.err()),
    }
}

#[test]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
fn missing_embedding_is_named() {
    let (config, mut tensors, _) = tiny();
    tensors.map.remove(EMBED);
    assert!(
        matches!(load(&config, tensors.to_bytes()), Err(Error::MissingTensor { name }) if name == EMBED)
    );
}

#[test]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
fn extra_tensor_is_named() {
    let (config, mut tensors, _) = tiny();
    tensors.set_f32(
        "model.vision_tower.blocks.3.1.spatial_block.conv1.bias",
        vec![64],
        &[0.0; 64],
    );
    match load(&config, tensors.to_bytes()) {
        Err(Error::UnexpectedTensors { count: 1, first }) => assert_eq!(
            first,
            "model.vision_tower.blocks.3.1.spatial_block.conv1.bias"
        ),
        other => panic!("expected UnexpectedTensors, got {:?}", other.err()),
    }
}

#[test]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
fn misshapen_tensor_is_named_with_both_shapes() {
    let (config, mut tensors, _) = tiny();
    let name = "model.language_model.decoder.layers.1.fc1.weight";
    tensors.set_f32(name, vec![64, 128], &vec![0.0; 64 * 128]);
    match load(&config, tensors.to_bytes()) {
        Err(Error::TensorShape {
            name: n,
            expected,
            found,
        }) => {
            assert_eq!(
                (n.as_str(), expected, found),
                (name, vec![128, 64], vec![64, 128])
            );
        }
        other => panic!("expected TensorShape, got {:?}", other.err()),
    }
}

#[test]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
fn integer_tensor_is_a_dtype_error() {
    let (config, mut tensors, _) = tiny();
    let name = "model.multi_modal_projector.image_proj_norm.bias";
    let entry = tensors.map.get_mut(name).unwrap();
    entry.0 = Dtype::I32;
    assert!(
        matches!(load(&config, tensors.to_bytes()), Err(Error::TensorDtype { name: n, .. }) if n == name)
    );
}

#[test]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
fn non_finite_weight_is_named() {
    let (config, mut tensors, _) = tiny();
    let name = "model.language_model.encoder.layers.0.fc2.bias";
    let mut v = tensors.f32_values(name);
    v[3] = f32::NAN;
    tensors.set_f32(name, vec![64], &v);
    assert!(
        matches!(load(&config, tensors.to_bytes()), Err(Error::NonFinite { name: n }) if n == name)
    );
}

#[test]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
fn truncated_and_garbage_files_are_checkpoint_errors() {
    let (config, tensors, _) = tiny();
    let bytes = tensors.to_bytes();
    for cut in [0, 5, 100, bytes.len() / 2, bytes.len() - 1] {
        match load(&config, bytes[..cut].to_vec()) {
            Err(Error::Checkpoint(_)) => {}
            other => panic!(
                "cut at {cut}: expected Checkpoint error, got {:?}",
                other.err()
            ),
        }
    }
    let mut garbage = bytes.clone();
    garbage[8..40].fill(b'#');
    assert!(matches!(load(&config, garbage), Err(Error::Checkpoint(_))));
    let mut huge_header = bytes;
    huge_header[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(
        load(&config, huge_header),
        Err(Error::Checkpoint(_))
    ));
}

#[test]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
fn mixed_or_foreign_names_are_layout_errors() {
    let (config, tensors, _) = tiny();
    let mut mixed = tensors.to_original_layout();
    mixed.set_f32("model.extra", vec![1], &[0.0]);
    assert!(matches!(
        load(&config, mixed.to_bytes()),
        Err(Error::UnknownLayout(_))
    ));
    let mut foreign = Tensors {
        map: Default::default(),
    };
    foreign.set_f32("encoder.weight", vec![1], &[0.0]);
    assert!(matches!(
        load(&config, foreign.to_bytes()),
        Err(Error::UnknownLayout(_))
    ));
}

#[test]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
fn bad_configs_are_config_errors() {
    let (config, _, _) = tiny();
    let config: serde_json::Value = serde_json::from_slice(&config).unwrap();
    let broken = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut c = config.clone();
        edit(&mut c);
        Florence2Config::from_json(&serde_json::to_vec(&c).unwrap())
    };
    type Mutate = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(&str, Mutate)> = vec![
        (
            "no vision_config",
            Box::new(|c| drop(c.as_object_mut().unwrap().remove("vision_config"))),
        ),
        (
            "heads do not divide",
            Box::new(|c| c["vision_config"]["num_heads"][1] = 3.into()),
        ),
        (
            "stage lists differ",
            Box::new(|c| c["vision_config"]["depths"] = serde_json::json!([1, 1])),
        ),
        (
            "zero window",
            Box::new(|c| c["vision_config"]["window_size"] = 0.into()),
        ),
        (
            "text heads",
            Box::new(|c| c["text_config"]["encoder_attention_heads"] = 5.into()),
        ),
        (
            "activation",
            Box::new(|c| c["text_config"]["activation_function"] = "relu".into()),
        ),
        (
            "eos outside vocab",
            Box::new(|c| c["text_config"]["eos_token_id"] = 999.into()),
        ),
        (
            "projection",
            Box::new(|c| c["vision_config"]["projection_dim"] = 32.into()),
        ),
        (
            "not a list",
            Box::new(|c| c["vision_config"]["embed_dim"] = "big".into()),
        ),
    ];
    for (what, edit) in cases {
        assert!(
            matches!(broken(&*edit), Err(Error::Config { .. })),
            "{what}"
        );
    }
    assert!(matches!(
        Florence2Config::from_json(b"{not json"),
        Err(Error::Config { .. })
    ));
}

#[test]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
fn beam_counts_past_the_cap_are_config_errors() {
    let (config, _, _) = tiny();
    let text = Florence2Config::from_json(&config).unwrap().text_config;
    assert_eq!(MAX_BEAMS, 16, "the browser's cap");
    for (beams, allowed) in [(1, true), (16, true), (17, false), (1 << 20, false)] {
        // From generation_config.json …
        let file = format!(r#"{{"num_beams": {beams}}}"#);
        let loaded = GenerationConfig::from_json(file.as_bytes(), &text);
        // … and set by a caller (`RunOptions`, `florence2 label --beams`).
        let mut set = GenerationConfig::defaults_for(&text);
        set.num_beams = beams;
        let checked = set.validate(text.vocab_size);
        for result in [loaded.map(drop), checked] {
            match result {
                Ok(()) => assert!(allowed, "{beams} beams accepted"),
                Err(Error::Config { message, .. }) => {
                    assert!(!allowed, "{beams} beams refused: {message}");
                    assert!(message.contains("num_beams"), "{message}");
                }
                Err(other) => panic!("{beams} beams: not a config error: {other}"),
            }
        }
    }
}
