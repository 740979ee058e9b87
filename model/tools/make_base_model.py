#!/usr/bin/env python3
"""Make a randomly initialised model of the real Florence-2-base shape, for benchmarks and
the load check of both layouts (the real weights cannot be downloaded here).

Usage: python make_base_model.py REFERENCE_DIR OUT_DIR [base|large]
  REFERENCE_DIR  ../shared/reference (florence2-tiny-e2e/'s tokenizer and processor files are reused)
  OUT_DIR        gets native/ (transformers layout, florence-community naming) and
                 original/ (microsoft layout: renamed keys, transposed image_projection,
                 separate lm_head), each a complete model folder (~0.9 GB each, f32).
  large          the Florence-2-large shape instead (native/ only, ~3.1 GB f32): for the size
                 and memory figures of quantized large models.

Needs torch, transformers>=5, safetensors. Never commit the output.
"""
import json
import os
import shutil
import sys

import torch
from safetensors.torch import load_file, save_file
from transformers import Florence2Config, Florence2ForConditionalGeneration

REF, OUT = sys.argv[1], sys.argv[2]
LARGE = len(sys.argv) > 3 and sys.argv[3] == "large"
NATIVE, ORIGINAL = os.path.join(OUT, "native"), os.path.join(OUT, "original")
torch.manual_seed(0)

# The real base config (reference README: real_base_native_keys.txt).
config = Florence2Config(
    vision_config=dict(
        depths=[1, 1, 9, 1], embed_dim=[128, 256, 512, 1024], num_heads=[4, 8, 16, 32],
        num_groups=[4, 8, 16, 32], window_size=12, projection_dim=768,
        patch_size=[7, 3, 3, 3], patch_stride=[4, 2, 2, 2], patch_padding=[3, 1, 1, 1],
        patch_prenorm=[False, True, True, True], max_temporal_embeddings=100,
        max_position_embeddings=50, drop_path_rate=0.0,
    ),
    text_config=dict(
        model_type="bart", vocab_size=51328, d_model=768, encoder_layers=6, decoder_layers=6,
        encoder_attention_heads=12, decoder_attention_heads=12, encoder_ffn_dim=3072,
        decoder_ffn_dim=3072, max_position_embeddings=1024, dropout=0.0, attention_dropout=0.0,
        activation_dropout=0.0, scale_embedding=False, pad_token_id=1, bos_token_id=0,
        eos_token_id=2, decoder_start_token_id=2, forced_eos_token_id=2, tie_word_embeddings=True,
    ),
    image_token_id=51289, tie_word_embeddings=True,
)
if LARGE:  # reference README: the large shape
    config.vision_config.embed_dim = [256, 512, 1024, 2048]
    config.vision_config.num_heads = [8, 16, 32, 64]
    config.vision_config.num_groups = [8, 16, 32, 64]
    config.vision_config.projection_dim = 1024
    t = config.text_config
    t.d_model, t.encoder_layers, t.decoder_layers = 1024, 12, 12
    t.encoder_attention_heads = t.decoder_attention_heads = 16
    t.encoder_ffn_dim = t.decoder_ffn_dim = 4096
model = Florence2ForConditionalGeneration(config).eval()  # transformers' own random init
model.generation_config.num_beams = 3
model.generation_config.no_repeat_ngram_size = 3
model.save_pretrained(NATIVE, safe_serialization=True)
# Tokenizer and processor files as the tiny e2e folder has them (with the native <image> token).
for name in ["tokenizer.json", "tokenizer_config.json", "processor_config.json", "test_image.png"]:
    shutil.copy(os.path.join(REF, "florence2-tiny-e2e", name), NATIVE)
if LARGE:
    print(f"wrote {NATIVE} (large shape)")
    sys.exit(0)

# The original layout, per the key map of the conversion script (orig_key_map.json).
key_map = {}
for line in open(os.path.join(REF, "real_base_native_keys.txt")):
    if line.startswith("#"):
        continue
    native, _shape, original = line.rstrip("\n").split("\t")
    key_map[native] = original.split()[0]
native_tensors = load_file(os.path.join(NATIVE, "model.safetensors"))
original_tensors = {}
for name, t in native_tensors.items():
    target = key_map[name]
    original_tensors[target] = t.t().contiguous() if target == "image_projection" else t
original_tensors["language_model.lm_head.weight"] = native_tensors["model.language_model.shared.weight"].clone()
os.makedirs(ORIGINAL, exist_ok=True)
save_file(original_tensors, os.path.join(ORIGINAL, "model.safetensors"))
for name in os.listdir(NATIVE):
    if name != "model.safetensors":
        shutil.copy(os.path.join(NATIVE, name), ORIGINAL)
# The original config dialect: dim_embed and nested position/temporal tables, no image token.
c = json.load(open(os.path.join(NATIVE, "config.json")))
v = c["vision_config"]
v["dim_embed"] = v.pop("embed_dim")
v["image_pos_embed"] = {"type": "learned_abs_2d", "max_pos_embeddings": v.pop("max_position_embeddings")}
v["visual_temporal_embedding"] = {"type": "COSINE", "max_temporal_embeddings": v.pop("max_temporal_embeddings")}
c.pop("image_token_id")
json.dump(c, open(os.path.join(ORIGINAL, "config.json"), "w"), indent=2)
n = sum(t.numel() for t in native_tensors.values())
print(f"wrote {NATIVE} and {ORIGINAL}: {len(native_tensors)} native tensors, {n} parameters")
