#!/usr/bin/env python3
"""The PyTorch side of the benchmark: transformers' Florence-2 (f32, eager attention) on the
CPU, timed the way `florence2 bench` times the Rust model.

Usage: python bench_torch.py MODEL_DIR IMAGE [THREADS] [RUNS] [NEW_TOKENS] [BEAMS]
One `<CAPTION>` run = preprocessing + vision tower and projector ("vision"), the BART encoder
("encoder"), then decoding of exactly NEW_TOKENS tokens (greedy, or BEAMS beams) with the KV cache ("decoder");
"total" is one full `generate` call (which includes vision and encoder), also as process CPU
time. Medians over RUNS after one warm-up. Peak memory is the process's maximum resident set.
"""
import resource
import statistics
import sys
import time

import torch
from PIL import Image
from transformers import BartTokenizer, CLIPImageProcessor, Florence2ForConditionalGeneration, Florence2Processor

model_dir, image_path = sys.argv[1], sys.argv[2]
threads = int(sys.argv[3]) if len(sys.argv) > 3 else 1
runs = int(sys.argv[4]) if len(sys.argv) > 4 else 3
new_tokens = int(sys.argv[5]) if len(sys.argv) > 5 else 20
beams = int(sys.argv[6]) if len(sys.argv) > 6 else 1
torch.set_num_threads(threads)

t = time.perf_counter()
model = Florence2ForConditionalGeneration.from_pretrained(model_dir, attn_implementation="eager", dtype=torch.float32).eval()
# As gen_e2e.py builds it (the folder's tokenizer_config.json has no image_token entry).
tokenizer = BartTokenizer.from_pretrained(model_dir)
tokenizer.image_token = "<image>"
tokenizer.image_token_id = tokenizer.convert_tokens_to_ids("<image>")
image_processor = CLIPImageProcessor(do_resize=True, size={"height": 768, "width": 768}, resample=3,
    do_center_crop=False, do_rescale=True, rescale_factor=1 / 255, do_normalize=True,
    image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225], do_convert_rgb=True)
image_processor.image_seq_length = 577
processor = Florence2Processor(image_processor=image_processor, tokenizer=tokenizer)
load_s = time.perf_counter() - t
image = Image.open(image_path).convert("RGB")

def cpu_seconds():
    """User + system CPU time of the process (the fairer clock on a shared machine)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def one_run():
    times = {}
    with torch.inference_mode():
        t0 = time.perf_counter()
        inputs = processor(text="<CAPTION>", images=image, return_tensors="pt")
        feats = model.model.get_image_features(inputs["pixel_values"]).pooler_output
        times["vision"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        embeds = model.get_input_embeddings()(inputs["input_ids"])
        mask = (inputs["input_ids"] == model.config.image_token_id).unsqueeze(-1)
        embeds = embeds.masked_scatter(mask, feats)
        enc = model.model.language_model.encoder(inputs_embeds=embeds, attention_mask=inputs["attention_mask"])
        times["encoder"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        out = model.generate(encoder_outputs=enc, attention_mask=inputs["attention_mask"], max_new_tokens=new_tokens,
                             min_new_tokens=new_tokens, num_beams=beams, do_sample=False, no_repeat_ngram_size=0)
        times["decoder"] = time.perf_counter() - t2
        assert out.shape[1] == new_tokens + 1, out.shape
        t3 = time.perf_counter()
        cpu3 = cpu_seconds()
        inputs = processor(text="<CAPTION>", images=image, return_tensors="pt")
        model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, num_beams=beams, do_sample=False,
                       no_repeat_ngram_size=0)
        times["total"] = time.perf_counter() - t3
        times["total_cpu"] = cpu_seconds() - cpu3
    return times

one_run()
results = [one_run() for _ in range(runs)]
med = {k: statistics.median(r[k] for r in results) for k in results[0]}
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"torch {torch.__version__}, threads {threads}, runs {runs}, beams {beams}, load {load_s:.2f} s")
print(f"vision  {med['vision'] * 1000:9.1f} ms")
print(f"encoder {med['encoder'] * 1000:9.1f} ms")
print(f"decoder {med['decoder'] * 1000:9.1f} ms  ({med['decoder'] / new_tokens * 1000:.1f} ms/token, {new_tokens} tokens)")
print(f"total   {med['total'] * 1000:9.1f} ms  (CPU time {med['total_cpu'] * 1000:.1f} ms)")
print(f"peak RSS {peak_mb:.0f} MiB")
