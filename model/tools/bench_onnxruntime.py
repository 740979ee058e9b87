#!/usr/bin/env python3
"""The onnxruntime side of the native benchmark: the ONNX files of export_onnx.py (the layout
transformers.js loads) run by onnxruntime's CPU execution provider, timed the way
`florence2 bench` and bench_torch.py time their models, with the same output lines.

Usage: python bench_onnxruntime.py ONNX_DIR IMAGE [THREADS] [RUNS] [NEW_TOKENS] [VARIANT] [--check MODEL_DIR]
  ONNX_DIR  export_onnx.py's output (config, tokenizer and onnx/)
  VARIANT   fp32 (default), or a suffix the files have: fp16, q4, quantized
  --check   also runs transformers' model in MODEL_DIR on the same inputs and fails unless the
            first step's logits agree (max difference <= 1e-3 of their range) and both pick the
            same tokens (transformers' last one excepted: its forced_eos_token_id ends the run)
One `<CAPTION>` run = preprocessing + vision encoder ("vision"), token embeddings and the BART
encoder ("encoder"), then exactly NEW_TOKENS greedy tokens (the end token suppressed, as
min_new_tokens does) with the merged decoder and its cache ("decoder"); "total" is the three.
Medians over RUNS after one warm-up; intra-op threads = THREADS, inter-op 1. Peak memory is the
process's maximum resident set.
"""
import resource
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort
from PIL import Image
from transformers import BartTokenizer, CLIPImageProcessor

args = [a for a in sys.argv[1:]]
check = None
if "--check" in args:
    i = args.index("--check")
    check = args[i + 1]
    del args[i:i + 2]
onnx_dir, image_path = args[0], args[1]
threads = int(args[2]) if len(args) > 2 else 1
runs = int(args[3]) if len(args) > 3 else 3
new_tokens = int(args[4]) if len(args) > 4 else 20
variant = args[5] if len(args) > 5 else "fp32"
suffix = "" if variant == "fp32" else "_" + variant

t = time.perf_counter()
opts = ort.SessionOptions()
opts.intra_op_num_threads = threads
opts.inter_op_num_threads = 1
sessions = {
    name: ort.InferenceSession(f"{onnx_dir}/onnx/{name}{suffix}.onnx", opts, providers=["CPUExecutionProvider"])
    for name in ["vision_encoder", "embed_tokens", "encoder_model", "decoder_model_merged"]
}
tokenizer = BartTokenizer.from_pretrained(onnx_dir)
image_processor = CLIPImageProcessor(do_resize=True, size={"height": 768, "width": 768}, resample=3,
    do_center_crop=False, do_rescale=True, rescale_factor=1 / 255, do_normalize=True,
    image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225], do_convert_rgb=True)
load_s = time.perf_counter() - t
image = Image.open(image_path).convert("RGB")
dec = sessions["decoder_model_merged"]
past_inputs = [i for i in dec.get_inputs() if i.name.startswith("past_key_values.")]
EOS, START = 2, 2


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def one_run():
    times = {}
    t0 = time.perf_counter()
    cpu0 = cpu_seconds()
    pixels = image_processor(image, return_tensors="np")["pixel_values"].astype(np.float32)
    feats = sessions["vision_encoder"].run(None, {"pixel_values": pixels})[0]
    times["vision"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    ids = tokenizer("What does the image describe?", return_tensors="np")["input_ids"].astype(np.int64)
    text = sessions["embed_tokens"].run(None, {"input_ids": ids})[0]
    embeds = np.concatenate([feats, text], axis=1)
    mask = np.ones(embeds.shape[:2], dtype=np.int64)
    hidden = sessions["encoder_model"].run(None, {"inputs_embeds": embeds, "attention_mask": mask})[0]
    times["encoder"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    heads, head_dim = past_inputs[0].shape[1], past_inputs[0].shape[3]
    past = {i.name: np.zeros((1, heads, 0, head_dim), dtype=np.float32) for i in past_inputs}
    token, out = START, []
    for step in range(new_tokens):
        emb = sessions["embed_tokens"].run(None, {"input_ids": np.array([[token]], dtype=np.int64)})[0]
        feeds = {"inputs_embeds": emb, "encoder_hidden_states": hidden, "encoder_attention_mask": mask,
                 "use_cache_branch": np.array([step > 0]), **past}
        results = dict(zip([o.name for o in dec.get_outputs()], dec.run(None, feeds)))
        logits = results["logits"][0, -1].astype(np.float32)
        if step == 0:
            times["first_logits"] = logits.copy()
        logits[EOS] = -np.inf
        token = int(np.argmax(logits))
        out.append(token)
        for name in past:
            present = name.replace("past_key_values", "present")
            if step == 0 or ".decoder." in name:
                past[name] = results[present]
    times["decoder"] = time.perf_counter() - t2
    times["total"] = time.perf_counter() - t0
    times["total_cpu"] = cpu_seconds() - cpu0
    return times, out


first, tokens = one_run()
results = [one_run()[0] for _ in range(runs)]
med = {k: statistics.median(r[k] for r in results) for k in results[0] if k != "first_logits"}
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"onnxruntime {ort.__version__}, {variant}, threads {threads}, runs {runs}, load {load_s:.2f} s")
print(f"vision  {med['vision'] * 1000:9.1f} ms")
print(f"encoder {med['encoder'] * 1000:9.1f} ms")
print(f"decoder {med['decoder'] * 1000:9.1f} ms  ({med['decoder'] / new_tokens * 1000:.1f} ms/token, {new_tokens} tokens)")
print(f"total   {med['total'] * 1000:9.1f} ms  (CPU time {med['total_cpu'] * 1000:.1f} ms)")
print(f"peak RSS {peak_mb:.0f} MiB")
print(f"tokens {' '.join(map(str, tokens))}")

if check:
    import torch
    from transformers import Florence2ForConditionalGeneration, Florence2Processor
    model = Florence2ForConditionalGeneration.from_pretrained(check, dtype=torch.float32).eval()
    tok = BartTokenizer.from_pretrained(check)
    tok.image_token = "<image>"
    tok.image_token_id = tok.convert_tokens_to_ids("<image>")
    image_processor.image_seq_length = 577
    processor = Florence2Processor(image_processor=image_processor, tokenizer=tok)
    inputs = processor(text="<CAPTION>", images=image, return_tensors="pt")
    with torch.inference_mode():
        ref_logits = model(**inputs, decoder_input_ids=torch.tensor([[START]])).logits[0, -1].numpy()
        ours = first["first_logits"]
        diff = float(np.abs(ref_logits - ours).max())
        span = float(ref_logits.max() - ref_logits.min())
        print(f"first step's logits: max difference {diff:.2e} (range {span:.2f})")
        if diff > 1e-3 * span:
            sys.exit("the ONNX files and transformers disagree")
        ref = model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, num_beams=1,
                             do_sample=False, no_repeat_ngram_size=0)[0, 1:].tolist()
    print(f"transformers {' '.join(map(str, ref))}")
    if ref[:-1] != tokens[:-1]:
        sys.exit("the ONNX files and transformers pick different tokens")
    print("check: the same tokens as transformers")
