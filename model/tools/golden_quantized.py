#!/usr/bin/env python3
"""Golden ids for a quantized model, from transformers run on its dequantized twin:

    florence2 quantize --model ../shared/reference/florence2-tiny-e2e --out /tmp/q-mixed \
        --scheme mixed --dequantized /tmp/deq-mixed
    python model/tools/golden_quantized.py /tmp/deq-mixed ../shared/reference/florence2-tiny-e2e \
        tests/fixtures/quantized/mixed/golden_e2e.json

`--dequantized` holds exactly the f32 values the quantized kernels multiply with, so
transformers on it is the reference for the quantized folder. The cases, the picture and the
generation settings are those of the reference folder's `golden_e2e.json` (made by
../shared/reference/tools/gen_e2e.py), rerun here on the dequantized weights; the output has
the same layout, so `florence2 e2e` and the browser suite read it unchanged.

Run by hand (torch + transformers in a venv, never in CI); commit only the JSON.
"""
import json
import os
import sys

import torch
import transformers
from PIL import Image
from transformers import BartTokenizer, Florence2ForConditionalGeneration, Florence2Processor

DEQ, REF, OUT = sys.argv[1], sys.argv[2], sys.argv[3]
# The tokenizer as gen_e2e.py made it (the reference data's tokenizer/ folder, beside REF).
TOKDIR = sys.argv[4] if len(sys.argv) > 4 else os.path.join(REF, "..", "tokenizer")
os.environ["HF_HUB_OFFLINE"] = "1"
torch.manual_seed(0)

reference = json.load(open(os.path.join(REF, "golden_e2e.json")))
tok = BartTokenizer.from_pretrained(TOKDIR)
tok.image_token = "<image>"
tok.image_token_id = tok.convert_tokens_to_ids("<image>")
proc = Florence2Processor.from_pretrained(REF, tokenizer=tok)
model = Florence2ForConditionalGeneration.from_pretrained(
    DEQ, torch_dtype=torch.float32, attn_implementation="eager").eval()
pil = Image.open(os.path.join(REF, reference["image"])).convert("RGB")
W, H = reference["image_size_wh"]
assert pil.size == (W, H)

meta = {key: reference[key] for key in ("image", "image_size_wh", "generation")}
meta["transformers_version"] = transformers.__version__
meta["weights"] = "dequantized twin of the quantized folder (florence2 quantize --dequantized)"
meta["cases"] = {}
with torch.no_grad():
    for task, case in reference["cases"].items():
        text = case["text_input"]
        inputs = proc(text=task + text, images=pil, return_tensors="pt")
        common = dict(input_ids=inputs["input_ids"], pixel_values=inputs["pixel_values"],
                      attention_mask=inputs["attention_mask"], max_new_tokens=24, do_sample=False)
        beams = model.generate(**common, num_beams=3, no_repeat_ngram_size=3, early_stopping=True)
        greedy = model.generate(**common, num_beams=1, no_repeat_ngram_size=0)
        decoded = proc.batch_decode(beams, skip_special_tokens=False)[0]
        parsed = proc.post_process_generation(decoded, task=task, image_size=(W, H))
        n_img = int((inputs["input_ids"][0] == 51289).sum())
        meta["cases"][task] = {
            "text_input": text,
            "prompt_ids_after_image_tokens": inputs["input_ids"][0][n_img:].tolist(),
            "n_image_tokens": n_img, "beam3_ids": beams[0].tolist(),
            "greedy_ids": greedy[0].tolist(), "decoded": decoded, "post_processed": parsed}
        print(task, beams[0].tolist()[:12], repr(decoded[:100]))
os.makedirs(os.path.dirname(os.path.abspath(OUT)), exist_ok=True)
json.dump(meta, open(OUT, "w"), indent=1, default=str, ensure_ascii=False)
