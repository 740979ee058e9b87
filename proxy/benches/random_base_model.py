#!/usr/bin/env python3
"""A randomly initialised Florence-2 of the real base shape, without torch or numpy: for the
local backend's benchmark (benches/local.rs) where model/tools/make_base_model.py cannot run
(it needs torch + transformers, a multi-GB install).

Usage: python3 random_base_model.py REFERENCE_DIR OUT_DIR
  REFERENCE_DIR  ../shared/reference: real_base_native_keys.txt gives every tensor name and
                 shape of the real base checkpoint (native layout); florence2-tiny-e2e/ gives
                 the config to scale up and the tokenizer, processor and generation files.
  OUT_DIR        a complete model folder (~0.9 GB of f32). Never commit it.

The values are a tiled pool of N(0, 0.02) draws (LayerNorm weights 1): enough for timing,
meaningless as a model. Tied tensors (lm_head, encoder/decoder embed_tokens) are stored once,
as `model.language_model.shared.weight`, as transformers saves them.
"""
import array
import json
import os
import random
import shutil
import struct
import sys

REF, OUT = sys.argv[1], sys.argv[2]
TINY = os.path.join(REF, "florence2-tiny-e2e")
os.makedirs(OUT, exist_ok=True)

config = json.load(open(os.path.join(TINY, "config.json")))
config["vision_config"].update(
    depths=[1, 1, 9, 1], embed_dim=[128, 256, 512, 1024], num_heads=[4, 8, 16, 32],
    num_groups=[4, 8, 16, 32], window_size=12, projection_dim=768)
config["text_config"].update(
    d_model=768, encoder_layers=6, decoder_layers=6, encoder_attention_heads=12,
    decoder_attention_heads=12, encoder_ffn_dim=3072, decoder_ffn_dim=3072)
json.dump(config, open(os.path.join(OUT, "config.json"), "w"), indent=2)
for name in ["generation_config.json", "processor_config.json", "tokenizer.json",
             "tokenizer_config.json", "test_image.png"]:
    shutil.copy(os.path.join(TINY, name), os.path.join(OUT, name))

TIED = {"lm_head.weight", "model.language_model.encoder.embed_tokens.weight",
        "model.language_model.decoder.embed_tokens.weight"}
tensors = []
for line in open(os.path.join(REF, "real_base_native_keys.txt")):
    if line.startswith("#") or not line.strip():
        continue
    name, shape = line.split("\t")[:2]
    if name not in TIED:
        tensors.append((name, json.loads(shape)))

random.seed(0)
POOL = 1 << 20  # a prime-ish stride through it keeps neighbouring tensors from repeating
pool = array.array("f", (random.gauss(0.0, 0.02) for _ in range(POOL))).tobytes()
header, offset = {}, 0
for name, shape in tensors:
    n = 1
    for d in shape:
        n *= d
    header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + 4 * n]}
    offset += 4 * n
head = json.dumps(header, separators=(",", ":")).encode()
head += b" " * (-len(head) % 8)
ones = array.array("f", [1.0]).tobytes()
with open(os.path.join(OUT, "model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(head)))
    f.write(head)
    for i, (name, shape) in enumerate(tensors):
        n = 1
        for d in shape:
            n *= d
        if len(shape) == 1 and "norm" in name and name.endswith("weight"):
            f.write(ones * n)
            continue
        start = (i * 7919 % POOL) * 4
        need = 4 * n
        while need > 0:
            chunk = pool[start:start + need]
            f.write(chunk)
            need -= len(chunk)
            start = 0
print(f"{OUT}: {len(tensors)} tensors, {offset // 4:,} parameters")
