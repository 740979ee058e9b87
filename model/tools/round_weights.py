#!/usr/bin/env python3
"""Copy a model folder with every float tensor rounded to f16 or bf16 (stored at that
precision), to see whether a checkpoint's goldens survive the rounding:

    python model/tools/round_weights.py ../shared/reference/florence2-tiny-e2e /tmp/tiny-f16 f16
    florence2 e2e /tmp/tiny-f16

The loader widens f16/bf16 back to f32 exactly, so the arithmetic stays f32 and only the
weights' rounding differs from the original run. Needs numpy and safetensors (and torch for
bf16, which numpy has no type for). Never commit the output.
"""
import os
import shutil
import sys

SRC, DST, DTYPE = sys.argv[1], sys.argv[2], sys.argv[3]
if DTYPE not in ("f16", "bf16"):
    sys.exit("dtype must be f16 or bf16")
os.makedirs(DST, exist_ok=True)
for name in os.listdir(SRC):
    if name != "model.safetensors":
        shutil.copy(os.path.join(SRC, name), DST)
src, dst = os.path.join(SRC, "model.safetensors"), os.path.join(DST, "model.safetensors")
if DTYPE == "f16":
    import numpy as np
    from safetensors.numpy import load_file, save_file

    tensors = load_file(src)
    save_file({k: v.astype(np.float16) if v.dtype.kind == "f" else v for k, v in tensors.items()}, dst)
else:
    import torch
    from safetensors.torch import load_file, save_file

    tensors = load_file(src)
    save_file({k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in tensors.items()}, dst)
print(f"wrote {dst}: {len(tensors)} tensors as {DTYPE}")
