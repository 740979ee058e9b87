#!/usr/bin/env python3
"""Export a Florence-2 model folder (transformers layout, f32) to ONNX in the layout of the
onnx-community Florence-2 repositories, which transformers.js loads, for the benchmark against
transformers.js (`cargo xtask bench browser`).

Usage: python export_onnx.py MODEL_DIR OUT_DIR [--variants fp32,mix] (any of fp32, mix, fp16, q4, q8)
  MODEL_DIR  a Florence-2 folder in transformers' native layout (model/tools/make_base_model.py
             makes a base-shaped one: BASE/native)
  OUT_DIR    gets config.json, generation_config.json, preprocessor_config.json, the tokenizer
             files, test_image.png (when MODEL_DIR has one) and onnx/:
               vision_encoder.onnx   pixel_values [B,3,768,768] -> image_features [B,577,768]
               embed_tokens.onnx     input_ids [B,L] -> inputs_embeds [B,L,768]
               encoder_model.onnx    inputs_embeds, attention_mask -> last_hidden_state
               decoder_model_merged.onnx
                   inputs_embeds, encoder_hidden_states, encoder_attention_mask,
                   past_key_values.{i}.{decoder,encoder}.{key,value}, use_cache_branch
                   -> logits, present.{i}.{decoder,encoder}.{key,value}
             and each one's variants with transformers.js' file suffixes: NAME_fp16.onnx,
             NAME_q4.onnx, NAME_quantized.onnx (q8); "mix" makes only those of the demo's mix
             below (vision_encoder and embed_tokens fp16, encoder_model and decoder_model_merged
             q4), "fp16"/"q4"/"q8" make that variant of all four.
Needs torch, transformers>=5, onnx, onnxruntime. Never commit the output (~1.1 GB in f32).

The variants are made with onnxruntime's own tools, with the settings transformers.js'
scripts/quantize.py uses:
  fp16  onnxruntime.transformers.float16.convert_float_to_float16(keep_io_types=True)
  q4    onnxruntime.quantization.matmul_4bits_quantizer.MatMul4BitsQuantizer(block_size=32,
        is_symmetric=True, accuracy_level=None): MatMul weights in 4-bit blocks (MatMulNBits);
        MatMulNBitsQuantizer(bits=4, the same settings) in onnxruntime >= 1.20, which renamed it
  q8    onnxruntime's dynamic ONNXQuantizer (IntegerOps, QUInt8 weights where the graph has a
        Conv, QInt8 otherwise, MatMulConstBOnly, subgraphs included)
transformers.js' Florence-2 demo loads embed_tokens and vision_encoder in fp16 and
encoder_model and decoder_model_merged in q4; its wasm device's default is q8.

Differences from the onnx-community export (optimum's exporter plus transformers.js' scripts),
none of which changes the arithmetic of a greedy step:
  - The graphs come from torch.onnx.export (TorchScript exporter, opset 17) of small modules
    written here over the model's own weights (the BART encoder and decoder written out: post-
    LayerNorm layers, learned positions with BART's offset of 2), not from optimum's model
    patcher. The names and shapes of inputs and outputs are theirs.
  - The merged decoder: optimum exports a decoder without past and one with past and puts both
    whole decoders under an If on use_cache_branch (weights shared). Here only what differs
    between the two sits under the If: the cross-attention keys and values, projected from
    encoder_hidden_states on the first step (use_cache_branch false) and passed through from
    past_key_values.{i}.encoder.* afterwards; the self-attention concatenates the (empty on the
    first step) decoder cache either way. A step with the cache computes what theirs computes.
  - The vision encoder takes a dynamic batch but a fixed 768x768 picture (theirs: the same in
    practice, the processor always resizes to 768x768).
  - fp16 uses onnxruntime's float16 converter with its default op block list, not transformers.js'
    fork of it (scripts/float16.py), and the result is not run through onnxslim.
  - No q4f16, bnb4, int8/uint8 or uint8 variants.
  - preprocessor_config.json is written from the folder's processor_config.json (transformers 5's
    layout) with the task prompt tables of transformers' Florence2Processor, as transformers.js'
    Florence2Processor reads them.
"""
import argparse
import json
import os
import shutil

import onnx
import torch
from onnx import TensorProto, helper
from transformers import Florence2ForConditionalGeneration

OPSET = 17


def attention(x, kv_k, kv_v, q_proj, out_proj, heads, mask):
    """Multi-head attention of x's queries on given keys and values [B,H,S,D]."""
    b, l, d = x.shape
    hd = d // heads
    q = (q_proj(x) * hd**-0.5).view(b, l, heads, hd).transpose(1, 2)
    scores = q @ kv_k.transpose(2, 3)
    if mask is not None:
        scores = scores + mask
    probs = torch.softmax(scores, dim=-1)
    out = (probs @ kv_v).transpose(1, 2).reshape(b, l, d)
    return out_proj(out)


def heads_of(x, proj, heads):
    b, s, d = x.shape
    return proj(x).view(b, s, heads, d // heads).transpose(1, 2)


def padding_mask(mask):
    """[B,S] of 1/0 -> additive [B,1,1,S]."""
    return (1.0 - mask[:, None, None, :].to(torch.float32)) * torch.finfo(torch.float32).min


class VisionEncoder(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model.model

    def forward(self, pixel_values):
        return self.model.get_image_features(pixel_values).pooler_output


class EmbedTokens(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.embed = model.model.language_model.shared

    def forward(self, input_ids):
        return self.embed(input_ids)


class Encoder(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.enc = model.model.language_model.encoder
        self.heads = model.config.text_config.encoder_attention_heads

    def forward(self, inputs_embeds, attention_mask):
        enc = self.enc
        l = inputs_embeds.shape[1]
        positions = torch.arange(l, device=inputs_embeds.device) + 2
        h = enc.layernorm_embedding(inputs_embeds + enc.embed_positions.weight[positions])
        mask = padding_mask(attention_mask)
        for layer in enc.layers:
            a = layer.self_attn
            k, v = heads_of(h, a.k_proj, self.heads), heads_of(h, a.v_proj, self.heads)
            h = layer.self_attn_layer_norm(h + attention(h, k, v, a.q_proj, a.out_proj, self.heads, mask))
            f = layer.fc2(layer.activation_fn(layer.fc1(h)))
            h = layer.final_layer_norm(h + f)
        return h


class CrossKeysValues(torch.nn.Module):
    """The decoder's cross-attention keys and values of every layer, from the encoder's output."""

    def __init__(self, model):
        super().__init__()
        self.dec = model.model.language_model.decoder
        self.heads = model.config.text_config.decoder_attention_heads

    def forward(self, encoder_hidden_states):
        out = []
        for layer in self.dec.layers:
            a = layer.encoder_attn
            out += [heads_of(encoder_hidden_states, a.k_proj, self.heads),
                    heads_of(encoder_hidden_states, a.v_proj, self.heads)]
        return tuple(out)


class DecoderStep(torch.nn.Module):
    """The decoder with its self-attention cache, given the cross-attention keys and values."""

    def __init__(self, model):
        super().__init__()
        self.dec = model.model.language_model.decoder
        self.lm_head = model.lm_head
        self.heads = model.config.text_config.decoder_attention_heads
        self.n = len(self.dec.layers)

    def forward(self, inputs_embeds, encoder_attention_mask, *caches):
        n, dec = self.n, self.dec
        past, cross = caches[: 2 * n], caches[2 * n:]
        past_len = past[0].shape[2]
        l = inputs_embeds.shape[1]
        positions = torch.arange(l, device=inputs_embeds.device) + past_len + 2
        h = dec.layernorm_embedding(inputs_embeds + dec.embed_positions.weight[positions])
        # Causal over the cache and the new tokens: query i (at past_len + i) sees keys <= it.
        q_pos = torch.arange(l, device=h.device)[:, None] + past_len
        k_pos = torch.arange(past_len + l, device=h.device)[None, :]
        causal = (k_pos > q_pos).to(torch.float32) * torch.finfo(torch.float32).min
        cross_mask = padding_mask(encoder_attention_mask)
        presents = []
        for i, layer in enumerate(dec.layers):
            a = layer.self_attn
            k = torch.cat([past[2 * i], heads_of(h, a.k_proj, self.heads)], dim=2)
            v = torch.cat([past[2 * i + 1], heads_of(h, a.v_proj, self.heads)], dim=2)
            presents += [k, v]
            h = layer.self_attn_layer_norm(h + attention(h, k, v, a.q_proj, a.out_proj, self.heads, causal))
            c = layer.encoder_attn
            h = layer.encoder_attn_layer_norm(
                h + attention(h, cross[2 * i], cross[2 * i + 1], c.q_proj, c.out_proj, self.heads, cross_mask))
            h = layer.final_layer_norm(h + layer.fc2(layer.activation_fn(layer.fc1(h))))
        return (self.lm_head(h), *presents)


def export(module, args, path, input_names, output_names, dynamic_axes):
    torch.onnx.export(module, args, path, input_names=input_names, output_names=output_names,
                      dynamic_axes=dynamic_axes, opset_version=OPSET, do_constant_folding=True,
                      dynamo=False)
    return onnx.load(path)


def prefixed(graph, prefix, keep):
    """Renames every value, initializer and node of `graph` with `prefix`, except `keep`."""
    def name(n):
        return n if (n in keep or n == "") else prefix + n
    for node in graph.node:
        node.name = prefix + node.name
        node.input[:] = [name(n) for n in node.input]
        node.output[:] = [name(n) for n in node.output]
    for init in graph.initializer:
        init.name = name(init.name)
    for vi in list(graph.value_info) + list(graph.output):
        vi.name = name(vi.name)


def merged_decoder(model, work, n, heads, head_dim):
    """decoder_model_merged.onnx: DecoderStep, with the cross keys and values under an If."""
    d = model.config.text_config.d_model
    b, s = 1, 7
    enc_out = torch.randn(b, s, d)
    cross = CrossKeysValues(model)
    names = [f"cross.{i}.{kv}" for i in range(n) for kv in ("key", "value")]
    cross_g = export(cross, (enc_out,), os.path.join(work, "cross.onnx"), ["encoder_hidden_states"], names,
                     {"encoder_hidden_states": {0: "batch_size", 1: "encoder_sequence_length"},
                      **{x: {0: "batch_size", 2: "encoder_sequence_length"} for x in names}}).graph
    past_names = [f"past_key_values.{i}.decoder.{kv}" for i in range(n) for kv in ("key", "value")]
    present_names = [f"present.{i}.decoder.{kv}" for i in range(n) for kv in ("key", "value")]
    step = DecoderStep(model)
    past = [torch.randn(b, heads, 3, head_dim) for _ in past_names]
    crosses = [torch.randn(b, heads, s, head_dim) for _ in names]
    dyn = {"inputs_embeds": {0: "batch_size", 1: "decoder_sequence_length"},
           "encoder_attention_mask": {0: "batch_size", 1: "encoder_sequence_length"},
           "logits": {0: "batch_size", 1: "decoder_sequence_length"}}
    dyn.update({x: {0: "batch_size", 2: "past_decoder_sequence_length"} for x in past_names})
    dyn.update({x: {0: "batch_size", 2: "past_decoder_sequence_length + 1"} for x in present_names})
    dyn.update({x: {0: "batch_size", 2: "encoder_sequence_length"} for x in names})
    step_m = export(step, (torch.randn(b, 1, d), torch.ones(b, s, dtype=torch.int64), *past, *crosses),
                    os.path.join(work, "step.onnx"), ["inputs_embeds", "encoder_attention_mask", *past_names, *names],
                    ["logits", *present_names], dyn)
    g = step_m.graph

    # The If's two branches, each producing the cross keys and values under `names`' branch names.
    prefixed(cross_g, "first/", keep={"encoder_hidden_states"})
    first_outs = []
    for name in names:
        out = "first/" + name
        first_outs.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, None))
    # Initializers of the first-step branch move to the outer graph (a subgraph may read them).
    outer_inits = list(cross_g.initializer)
    else_branch = helper.make_graph(list(cross_g.node), "first_step", [], first_outs)
    then_nodes, then_outs = [], []
    for i in range(n):
        for kv in ("key", "value"):
            src = f"past_key_values.{i}.encoder.{kv}"
            out = f"cached/cross.{i}.{kv}"
            then_nodes.append(helper.make_node("Identity", [src], [out], name=f"cached/{i}.{kv}"))
            then_outs.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, None))
    then_branch = helper.make_graph(then_nodes, "with_cache", [], then_outs)
    if_node = helper.make_node("If", ["use_cache_branch"], names, name="cross_keys_values",
                               then_branch=then_branch, else_branch=else_branch)

    # The step's cross inputs become the If's outputs; new inputs; the encoder presents.
    kept_inputs = [x for x in g.input if x.name not in set(names)]
    del g.input[:]
    g.input.extend(kept_inputs)
    g.input.append(helper.make_tensor_value_info(
        "encoder_hidden_states", TensorProto.FLOAT, ["batch_size", "encoder_sequence_length", d]))
    for i in range(n):
        for kv in ("key", "value"):
            g.input.append(helper.make_tensor_value_info(
                f"past_key_values.{i}.encoder.{kv}", TensorProto.FLOAT,
                ["batch_size", heads, "encoder_sequence_length_out", head_dim]))
    g.input.append(helper.make_tensor_value_info("use_cache_branch", TensorProto.BOOL, [1]))
    nodes = [if_node] + list(g.node)
    for i in range(n):
        for kv in ("key", "value"):
            nodes.append(helper.make_node("Identity", [f"cross.{i}.{kv}"], [f"present.{i}.encoder.{kv}"],
                                          name=f"present/{i}.encoder.{kv}"))
            g.output.append(helper.make_tensor_value_info(
                f"present.{i}.encoder.{kv}", TensorProto.FLOAT,
                ["batch_size", heads, "encoder_sequence_length_out", head_dim]))
    del g.node[:]
    g.node.extend(nodes)
    g.initializer.extend(outer_inits)
    onnx.checker.check_model(step_m)
    return step_m


def q4(model):
    try:  # onnxruntime < 1.20 (the name transformers.js' script imports)
        from onnxruntime.quantization.matmul_4bits_quantizer import MatMul4BitsQuantizer as Quantizer
        kwargs = {}
    except ImportError:
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer as Quantizer
        kwargs = {"bits": 4}
    qz = Quantizer(model=model, block_size=32, is_symmetric=True, accuracy_level=None, **kwargs)
    qz.process()
    return qz.model.model


def fp16(model):
    from onnxruntime.transformers.float16 import convert_float_to_float16
    return convert_float_to_float16(model, keep_io_types=True)


def q8(path, out):
    from onnxruntime.quantization import QuantizationMode, QuantType
    from onnxruntime.quantization.onnx_quantizer import ONNXQuantizer
    from onnxruntime.quantization.registry import IntegerOpsRegistry
    model = onnx.load(path)
    ops = {n.op_type for n in model.graph.node}
    weight = QuantType.QUInt8 if "Conv" in ops else QuantType.QInt8
    qz = ONNXQuantizer(model, False, False, mode=QuantizationMode.IntegerOps, static=False,
                       weight_qType=weight, activation_qType=QuantType.QUInt8, tensors_range=None,
                       nodes_to_quantize=[], nodes_to_exclude=[],
                       op_types_to_quantize=set(IntegerOpsRegistry.keys()),
                       extra_options=dict(EnableSubgraph=True, MatMulConstBOnly=True))
    qz.quantize_model()
    onnx.save(qz.model.model, out)


def json_files(src, out):
    from transformers import Florence2Processor
    config = json.load(open(os.path.join(src, "config.json")))
    json.dump(config, open(os.path.join(out, "config.json"), "w"), indent=2)
    gen = json.load(open(os.path.join(src, "generation_config.json")))
    json.dump(gen, open(os.path.join(out, "generation_config.json"), "w"), indent=2)
    for name in ["tokenizer.json", "tokenizer_config.json", "test_image.png"]:
        if os.path.exists(os.path.join(src, name)):
            shutil.copy(os.path.join(src, name), out)
    proc = json.load(open(os.path.join(src, "processor_config.json")))
    pre = dict(proc["image_processor"])
    # The task tables are set first thing in Florence2Processor.__init__; the rest of it wants a
    # tokenizer with an image token, which transformers 5 adds at load time only for some
    # tokenizer classes. Stop it after the tables.
    p = Florence2Processor.__new__(Florence2Processor)
    try:
        Florence2Processor.__init__(p, image_processor=None, tokenizer=None)
    except AttributeError:
        pass
    pre["processor_class"] = "Florence2Processor"
    pre["tasks_answer_post_processing_type"] = p.tasks_answer_post_processing_type
    pre["task_prompts_without_inputs"] = p.task_prompts_without_inputs
    pre["task_prompts_with_input"] = p.task_prompts_with_input
    json.dump(pre, open(os.path.join(out, "preprocessor_config.json"), "w"), indent=2)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--variants", default="fp32,mix",
                    help="what to make; without fp32, the variants are made from the f32 files already in OUT_DIR")
    a = ap.parse_args()
    variants = a.variants.split(",")
    onnx_dir = os.path.join(a.out, "onnx")
    os.makedirs(onnx_dir, exist_ok=True)
    json_files(a.model, a.out)
    path = lambda name, suffix="": os.path.join(onnx_dir, f"{name}{suffix}.onnx")  # noqa: E731
    if "fp32" in variants:
        export_all(a.model, a.out, path)
    for name in ["vision_encoder", "embed_tokens", "encoder_model", "decoder_model_merged"]:
        in_mix = "mix" in variants
        if "fp16" in variants or (in_mix and name in ("vision_encoder", "embed_tokens")):
            onnx.save(fp16(onnx.load(path(name))), path(name, "_fp16"))
        if "q4" in variants or (in_mix and name in ("encoder_model", "decoder_model_merged")):
            onnx.save(q4(onnx.load(path(name))), path(name, "_q4"))
        if "q8" in variants:
            q8(path(name), path(name, "_quantized"))
        print(f"{name}: " + ", ".join(
            f"{s or 'fp32'} {os.path.getsize(path(name, s)) / 1e6:.0f} MB"
            for s in ["", "_fp16", "_q4", "_quantized"] if os.path.exists(path(name, s))), flush=True)


def export_all(model_dir, out, path):
    model = Florence2ForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32).eval()
    tc = model.config.text_config
    n, heads = tc.decoder_layers, tc.decoder_attention_heads
    head_dim = tc.d_model // heads
    size = json.load(open(os.path.join(model_dir, "processor_config.json")))["image_processor"]["size"]["height"]
    with torch.no_grad():
        export(VisionEncoder(model), (torch.randn(1, 3, size, size),), path("vision_encoder"),
               ["pixel_values"], ["image_features"],
               {"pixel_values": {0: "batch_size"}, "image_features": {0: "batch_size"}})
        export(EmbedTokens(model), (torch.ones(1, 5, dtype=torch.int64),), path("embed_tokens"),
               ["input_ids"], ["inputs_embeds"],
               {"input_ids": {0: "batch_size", 1: "sequence_length"},
                "inputs_embeds": {0: "batch_size", 1: "sequence_length"}})
        export(Encoder(model), (torch.randn(1, 9, tc.d_model), torch.ones(1, 9, dtype=torch.int64)),
               path("encoder_model"), ["inputs_embeds", "attention_mask"], ["last_hidden_state"],
               {"inputs_embeds": {0: "batch_size", 1: "encoder_sequence_length"},
                "attention_mask": {0: "batch_size", 1: "encoder_sequence_length"},
                "last_hidden_state": {0: "batch_size", 1: "encoder_sequence_length"}})
        work = os.path.join(out, "work")
        os.makedirs(work, exist_ok=True)
        onnx.save(merged_decoder(model, work, n, heads, head_dim), path("decoder_model_merged"))
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
