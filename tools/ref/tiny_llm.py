#!/usr/bin/python3
"""tiny_llm.py: tiny random-weight decoder-only language models as GGUF v3 files, with an
independent PyTorch forward pass as the reference for tests/test-llm.c.

    tiny_llm.py OUTDIR          the test models and their references
    tiny_llm.py OUTDIR --big    one llama of SmolLM-135M's shape (30 layers, dim 576, vocab
                                49152, Q8_0, tied output) with a SentencePiece-style vocabulary,
                                for `atelier bench text`; no reference
    tiny_llm.py OUTDIR --big-1b Q
                                the same for a llama of TinyLlama-1.1B's shape (22 layers, dim
                                2048, 32 heads over 4 KV heads, FFN 5632, vocabulary 32000, own
                                output) in Q (q8_0 or q4_0): big_1b_Q.gguf, about 1.2 or 0.6 GB

For each model NAME it writes NAME.gguf and NAME.json:
  {"prompt": [ids], "logits": [[vocab floats] per prompt position],
   "greedy": [32 ids continuing the prompt], "vocab": V}

Models: llama in F32, F16 (output tied to token_embd: no output.weight), Q8_0 and Q4_0;
llama3_f32 (a rope_freqs.weight of per-pair frequency divisors, as Llama 3 files carry); qwen2
(Q/K/V biases) and phi3 (fused attn_qkv, ffn_up holding gate then up) in F32; gemma in F32
and Q8_0 (embeddings times sqrt(dim), a GELU (tanh form) gate, output tied, a head dimension
of 24 given by attention.key_length, not dim / heads; norm weights are stored as used, as
llama.cpp's converter stores Gemma's with its 1 added); gemma2 in F32 and Q8_0 (gemma's, plus
attention scores and final logits soft-capped by cap * tanh(x / cap), with caps small enough
to bend them, RMS norms on each block's output before its residual, and a sliding window of 5
positions on the even layers of three). Plus hostile
variants for the error tests: bad_arch (general.architecture "mamba"), missing (no
blk.1.ffn_down), bad_shape (blk.0.attn_k with the wrong row count), bad_heads (head_count 4
over head_count_kv 3). And llama_chat: llama_f32 with a byte-level tokenizer and a chat
template (see write_chat_model), and llama_chat_1k, the same with a 1,024-token window.

The GGUF is written here with struct (tensor ne[] innermost first, data aligned to 32).
Llama files hold Q and K with their rows permuted the way llama.cpp's converter does (each
head's two rotary halves interleaved, so that adjacent-pair RoPE applies); the reference
computes on the UNPERMUTED weights with rotate-half RoPE, as Hugging Face's Llama does. qwen2,
phi3 and gemma are stored unpermuted and use rotate-half (NeoX) RoPE. Quantised files: the
reference uses the weights as dequantised from the stored blocks.
"""
import json
import os
import struct
import sys

try:
    import numpy as np
    import torch
except ImportError:
    sys.exit(77)

GGML_F32, GGML_F16, GGML_Q4_0, GGML_Q8_0 = 0, 1, 2, 8
T_U32, T_I32, T_F32, T_STRING, T_ARRAY = 4, 5, 6, 8, 9
ALIGN = 32


def quant_q8_0(w):
    """Returns (block bytes, dequantised float32) for rows of w (last dim a multiple of 32)."""
    blocks = w.astype(np.float32).reshape(-1, 32)
    amax = np.abs(blocks).max(axis=1)
    d = (amax / 127.0).astype(np.float16)
    d32 = d.astype(np.float32)
    inv = np.where(d32 > 0, 1.0 / np.where(d32 > 0, d32, 1), 0)
    q = np.clip(np.rint(blocks * inv[:, None]), -127, 127).astype(np.int8)
    raw = np.empty((blocks.shape[0], 34), dtype=np.uint8)
    raw[:, 0:2] = d.view(np.uint8).reshape(-1, 2)
    raw[:, 2:] = q.view(np.uint8)
    deq = (q.astype(np.float32) * d32[:, None]).reshape(w.shape)
    return raw.tobytes(), deq


def quant_q4_0(w):
    """Q4_0: f16 d, then 16 bytes whose low nibbles are elements 0..15 and high nibbles 16..31;
    value = d * (nibble - 8). d = m / -8 with m the element of largest magnitude, so m maps
    exactly to nibble 0."""
    blocks = w.astype(np.float32).reshape(-1, 32)
    idx = np.abs(blocks).argmax(axis=1)
    m = blocks[np.arange(blocks.shape[0]), idx]
    d = (m / -8.0).astype(np.float16)
    d32 = d.astype(np.float32)
    inv = np.where(d32 != 0, 1.0 / np.where(d32 != 0, d32, 1), 0)
    q = np.clip(np.rint(blocks * inv[:, None]) + 8, 0, 15).astype(np.uint8)
    raw = np.empty((blocks.shape[0], 18), dtype=np.uint8)
    raw[:, 0:2] = d.view(np.uint8).reshape(-1, 2)
    raw[:, 2:] = q[:, :16] | (q[:, 16:] << 4)
    deq = ((q.astype(np.float32) - 8) * d32[:, None]).reshape(w.shape)
    return raw.tobytes(), deq


def store(w, kind):
    """(ggml type, bytes, the values as the file holds them) for tensor w in `kind`."""
    w = np.ascontiguousarray(w, dtype=np.float32)
    if kind == "f32" or w.ndim == 1:
        return GGML_F32, w.tobytes(), w
    if kind == "f16":
        h = w.astype(np.float16)
        return GGML_F16, h.tobytes(), h.astype(np.float32)
    if kind == "q4_0":
        raw, deq = quant_q4_0(w)
        return GGML_Q4_0, raw, deq
    raw, deq = quant_q8_0(w)
    return GGML_Q8_0, raw, deq


def gguf_string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def write_gguf(path, kvs, tensors):
    """kvs: [(key, type, value)]; tensors: [(name, ggml type, shape outermost-first, bytes)]."""
    out = bytearray(b"GGUF")
    out += struct.pack("<IQQ", 3, len(tensors), len(kvs))
    for key, t, v in kvs:
        out += gguf_string(key) + struct.pack("<I", t)
        if t == T_U32:
            out += struct.pack("<I", v)
        elif t == T_F32:
            out += struct.pack("<f", v)
        elif t == T_ARRAY:
            et, items = v
            out += struct.pack("<IQ", et, len(items))
            for item in items:
                if et == T_STRING:
                    out += gguf_string(item)
                elif et == T_F32:
                    out += struct.pack("<f", item)
                else:
                    out += struct.pack("<i", item)
        else:
            out += gguf_string(v)
    offset = 0
    offsets = []
    for name, t, shape, data in tensors:
        offsets.append(offset)
        out += gguf_string(name) + struct.pack("<I", len(shape))
        for n in reversed(shape):
            out += struct.pack("<Q", n)
        out += struct.pack("<IQ", t, offset)
        offset += (len(data) + ALIGN - 1) // ALIGN * ALIGN
    out += b"\0" * ((-len(out)) % ALIGN)
    for (name, t, shape, data), off in zip(tensors, offsets):
        out += data + b"\0" * ((-len(data)) % ALIGN)
    with open(path, "wb") as f:
        f.write(out)


def permute_rows(w, n_head):
    """llama.cpp converter's Q/K row order: per head, rows [0, h/2) and [h/2, h) interleaved."""
    rows, cols = w.shape
    return w.reshape(n_head, 2, rows // n_head // 2, cols).swapaxes(1, 2).reshape(rows, cols)


def make_weights(rng, cfg):
    dim, ffn, nh, nkv, V = cfg["dim"], cfg["ffn"], cfg["heads"], cfg["kv_heads"], cfg["vocab"]
    hd = cfg.get("head_dim", dim // nh)

    def lin(o, i):
        return rng.standard_normal((o, i)).astype(np.float32) / np.sqrt(i)

    w = {"token_embd": rng.standard_normal((V, dim)).astype(np.float32),
         "output_norm": (1 + 0.1 * rng.standard_normal(dim)).astype(np.float32),
         "output": lin(V, dim) * 2, "layers": []}
    for _ in range(cfg["layers"]):
        layer = {"attn_norm": (1 + 0.1 * rng.standard_normal(dim)).astype(np.float32),
                 "ffn_norm": (1 + 0.1 * rng.standard_normal(dim)).astype(np.float32),
                 "q": lin(nh * hd, dim), "k": lin(nkv * hd, dim), "v": lin(nkv * hd, dim),
                 "o": lin(dim, nh * hd), "gate": lin(ffn, dim), "up": lin(ffn, dim),
                 "down": lin(dim, ffn)}
        if cfg["arch"] == "gemma2":
            layer["post_attn_norm"] = (1 + 0.1 * rng.standard_normal(dim)).astype(np.float32)
            layer["post_ffn_norm"] = (1 + 0.1 * rng.standard_normal(dim)).astype(np.float32)
        if cfg["arch"] == "qwen2":
            layer["q_b"] = (0.5 * rng.standard_normal(nh * hd)).astype(np.float32)
            layer["k_b"] = (0.5 * rng.standard_normal(nkv * hd)).astype(np.float32)
            layer["v_b"] = (0.5 * rng.standard_normal(nkv * hd)).astype(np.float32)
        w["layers"].append(layer)
    return w


def build_file(cfg, w, kind, tied):
    """The GGUF kvs and tensors, and the weights as the file holds them (unpermuted)."""
    arch, nh, nkv = cfg["arch"], cfg["heads"], cfg["kv_heads"]
    hd = cfg.get("head_dim", cfg["dim"] // nh)
    kvs = [("general.architecture", T_STRING, arch),
           ("general.name", T_STRING, "tiny " + arch),
           (arch + ".block_count", T_U32, cfg["layers"]),
           (arch + ".context_length", T_U32, 128),
           (arch + ".embedding_length", T_U32, cfg["dim"]),
           (arch + ".feed_forward_length", T_U32, cfg["ffn"]),
           (arch + ".attention.head_count", T_U32, nh),
           (arch + ".attention.head_count_kv", T_U32, nkv),
           (arch + ".attention.layer_norm_rms_epsilon", T_F32, cfg["eps"]),
           (arch + ".rope.freq_base", T_F32, cfg["base"]),
           (arch + ".rope.dimension_count", T_U32, hd),
           (arch + ".vocab_size", T_U32, cfg["vocab"])]
    if "head_dim" in cfg:
        kvs += [(arch + ".attention.key_length", T_U32, hd),
                (arch + ".attention.value_length", T_U32, hd)]
    if arch == "gemma2":
        kvs += [(arch + ".attn_logit_softcapping", T_F32, cfg["attn_softcap"]),
                (arch + ".final_logit_softcapping", T_F32, cfg["final_softcap"]),
                (arch + ".attention.sliding_window", T_U32, cfg["window"])]
    tensors = []
    held = {"layers": []}

    def add(name, arr, k=kind):
        t, data, vals = store(arr, k)
        tensors.append((name, t, list(arr.shape), data))
        return vals

    held["token_embd"] = add("token_embd.weight", w["token_embd"])
    held["output_norm"] = add("output_norm.weight", w["output_norm"])
    held["output"] = held["token_embd"] if tied else add("output.weight", w["output"])
    if "rope_freqs" in w:
        held["rope_freqs"] = add("rope_freqs.weight", w["rope_freqs"])
    for i, l in enumerate(w["layers"]):
        p = "blk.%d." % i
        h = {"attn_norm": add(p + "attn_norm.weight", l["attn_norm"]),
             "ffn_norm": add(p + "ffn_norm.weight", l["ffn_norm"])}
        if arch == "llama":
            # Stored permuted; quantisation is per row block of 32 along the input dimension,
            # so un-permuting the held values gives exactly what the engine multiplies by.
            q = add(p + "attn_q.weight", permute_rows(l["q"], nh))
            k = add(p + "attn_k.weight", permute_rows(l["k"], nkv))
            h["q"] = q.reshape(nh, hd // 2, 2, -1).swapaxes(1, 2).reshape(q.shape)
            h["k"] = k.reshape(nkv, hd // 2, 2, -1).swapaxes(1, 2).reshape(k.shape)
            h["v"] = add(p + "attn_v.weight", l["v"])
        elif arch in ("qwen2", "gemma", "gemma2"):
            # Unpermuted: NEOX RoPE (rotate-half) in the engine, as in the reference.
            h["q"] = add(p + "attn_q.weight", l["q"])
            h["k"] = add(p + "attn_k.weight", l["k"])
            h["v"] = add(p + "attn_v.weight", l["v"])
        if arch == "qwen2":
            h["q_b"] = add(p + "attn_q.bias", l["q_b"])
            h["k_b"] = add(p + "attn_k.bias", l["k_b"])
            h["v_b"] = add(p + "attn_v.bias", l["v_b"])
        elif arch == "phi3":
            qkv = add(p + "attn_qkv.weight", np.concatenate([l["q"], l["k"], l["v"]]))
            h["q"], h["k"], h["v"] = np.split(qkv, [nh * hd, nh * hd + nkv * hd])
        h["o"] = add(p + "attn_output.weight", l["o"])
        if arch == "phi3":
            gu = add(p + "ffn_up.weight", np.concatenate([l["gate"], l["up"]]))
            h["gate"], h["up"] = np.split(gu, 2)
        else:
            h["gate"] = add(p + "ffn_gate.weight", l["gate"])
            h["up"] = add(p + "ffn_up.weight", l["up"])
        h["down"] = add(p + "ffn_down.weight", l["down"])
        if arch == "gemma2":
            h["post_attn_norm"] = add(p + "post_attention_norm.weight", l["post_attn_norm"])
            h["post_ffn_norm"] = add(p + "post_ffw_norm.weight", l["post_ffn_norm"])
        held["layers"].append(h)
    return kvs, tensors, held


def forward(cfg, w, ids, kv16=False):
    """Logits [len(ids), V] in float64: RMSNorm, rotate-half RoPE, GQA causal attention,
    SwiGLU MLP, on unpermuted weights. kv16: the keys (after RoPE) and values rounded to
    float16 before attention, as an f16 KV cache holds them."""
    T = lambda a: torch.tensor(np.asarray(a), dtype=torch.float64)
    nh, nkv, dim, eps = cfg["heads"], cfg["kv_heads"], cfg["dim"], cfg["eps"]
    hd = cfg.get("head_dim", dim // nh)
    L = len(ids)

    def rms(x, g):
        return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * T(g)

    inv = 1.0 / cfg["base"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    if "rope_freqs" in w:
        inv = inv / T(w["rope_freqs"])
    ang = torch.arange(L, dtype=torch.float64)[:, None] * inv[None, :]
    cos = torch.cat([ang.cos(), ang.cos()], -1)[:, None, :]
    sin = torch.cat([ang.sin(), ang.sin()], -1)[:, None, :]

    def rope(x):  # x [L, H, hd]
        x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
        return x * cos + torch.cat([-x2, x1], -1) * sin

    def softcap(s, cap):
        return cap * torch.tanh(s / cap)

    arch = cfg["arch"]
    x = T(w["token_embd"])[torch.tensor(ids)]
    if arch in ("gemma", "gemma2"):
        x = x * np.sqrt(dim)
    mask = torch.full((L, L), float("-inf"), dtype=torch.float64).triu(1)
    if arch == "gemma2":
        # Even layers: query i sees keys j with i - window < j <= i.
        pos = torch.arange(L)
        near = (pos[:, None] - pos[None, :] < cfg["window"]) & (pos[:, None] >= pos[None, :])
        swa_mask = torch.where(near, 0.0, float("-inf")).to(torch.float64)
    for li, l in enumerate(w["layers"]):
        h = rms(x, l["attn_norm"])
        q, k, v = h @ T(l["q"]).T, h @ T(l["k"]).T, h @ T(l["v"]).T
        if "q_b" in l:
            q, k, v = q + T(l["q_b"]), k + T(l["k_b"]), v + T(l["v_b"])
        q = rope(q.view(L, nh, hd)).transpose(0, 1)
        k, v = rope(k.view(L, nkv, hd)), v.view(L, nkv, hd)
        if kv16:
            k, v = k.to(torch.float16).to(torch.float64), v.to(torch.float16).to(torch.float64)
        k = k.transpose(0, 1).repeat_interleave(nh // nkv, 0)
        v = v.transpose(0, 1).repeat_interleave(nh // nkv, 0)
        scores = q @ k.transpose(1, 2) / np.sqrt(hd)
        if arch == "gemma2":
            scores = softcap(scores, cfg["attn_softcap"]) + (swa_mask if li % 2 == 0 else mask)
        else:
            scores = scores + mask
        att = torch.softmax(scores, -1) @ v
        o = att.transpose(0, 1).reshape(L, nh * hd) @ T(l["o"]).T
        x = x + (rms(o, l["post_attn_norm"]) if arch == "gemma2" else o)
        h = rms(x, l["ffn_norm"])
        g = h @ T(l["gate"]).T
        act = torch.nn.functional.gelu(g, approximate="tanh") if arch in ("gemma", "gemma2") \
            else torch.nn.functional.silu(g)
        f = (act * (h @ T(l["up"]).T)) @ T(l["down"]).T
        x = x + (rms(f, l["post_ffn_norm"]) if arch == "gemma2" else f)
    logits = rms(x, w["output_norm"]) @ T(w["output"]).T
    return softcap(logits, cfg["final_softcap"]) if arch == "gemma2" else logits


def write_model(outdir, name, cfg, w, kind, tied, prompt, tweak=None):
    kvs, tensors, held = build_file(cfg, w, kind, tied)
    if tweak is not None:
        kvs, tensors = tweak(kvs, tensors)
    write_gguf(os.path.join(outdir, name + ".gguf"), kvs, tensors)
    if tweak is not None:
        return
    out = {"prompt": prompt, "vocab": cfg["vocab"]}
    # Each twice: an f32 KV cache (exact to the engine's f32 rounding) and an f16 one.
    for suffix, kv16 in (("", False), ("_kv16", True)):
        logits = forward(cfg, held, prompt, kv16)
        ids = list(prompt)
        greedy = []
        for _ in range(32):
            nxt = int(forward(cfg, held, ids, kv16)[-1].argmax())
            greedy.append(nxt)
            ids.append(nxt)
        out["greedy" + suffix] = greedy
        out["logits" + suffix] = logits.float().tolist()
    with open(os.path.join(outdir, name + ".json"), "w") as f:
        json.dump(out, f)


def byte_alphabet():
    """Byte-level BPE's printable stand-in for each byte (GPT-2's table): the printable
    Latin-1 bytes stand for themselves, the rest map to U+0100 onwards in byte order."""
    keep = list(range(0x21, 0x7f)) + list(range(0xa1, 0xad)) + list(range(0xae, 0x100))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(0x100 + extra)
            extra += 1
    return [table[b] for b in range(256)]


CHAT_TEMPLATE = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}assistant:{% endif %}")


def write_chat_model(outdir, cfg, w):
    """llama_chat: llama_f32 with a tokenizer (byte-level BPE over the 256 bytes, token id =
    byte value, no merges) and a chat template, for the generation pipeline and `atelier write`;
    its JSON has the greedy continuation of the prompt text "Hello" (ids 72 101 108 108 111)."""
    kvs, tensors, held = build_file(cfg, w, "f32", False)
    kvs += [("tokenizer.ggml.model", T_STRING, "gpt2"),
            ("tokenizer.ggml.pre", T_STRING, "gpt-2"),
            ("tokenizer.ggml.tokens", T_ARRAY, (T_STRING, byte_alphabet())),
            ("tokenizer.ggml.token_type", T_ARRAY, (T_I32, [1] * 256)),
            ("tokenizer.ggml.merges", T_ARRAY, (T_STRING, [])),
            ("tokenizer.chat_template", T_STRING, CHAT_TEMPLATE)]
    write_gguf(os.path.join(outdir, "llama_chat.gguf"), kvs, tensors)
    # The same model with a 1,024-token window, room for the chat recipes' own words (the
    # window only sizes the KV cache; the weights and their answers are the same).
    ctx_key = cfg["arch"] + ".context_length"
    long_kvs = [(k, t, 1024 if k == ctx_key else v) for (k, t, v) in kvs]
    write_gguf(os.path.join(outdir, "llama_chat_1k.gguf"), long_kvs, tensors)
    ids = list(b"Hello")
    greedy = []
    for _ in range(32):
        nxt = int(forward(cfg, held, ids)[-1].argmax())
        greedy.append(nxt)
        ids.append(nxt)
    with open(os.path.join(outdir, "llama_chat.json"), "w") as f:
        json.dump({"prompt": list(b"Hello"), "vocab": cfg["vocab"], "greedy": greedy}, f)


def main():
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    rng = np.random.default_rng(1234)
    base = {"arch": "llama", "vocab": 256, "dim": 64, "layers": 2, "heads": 4, "kv_heads": 2,
            "ffn": 128, "eps": 1e-5, "base": 10000.0}
    if "--big" in sys.argv or "--big-1b" in sys.argv:
        # SmolLM-135M's shape (the benchmark model of the writer issue): 30 layers, dim 576,
        # 9 heads over 3 KV heads, FFN 1536, vocabulary 49152, output tied to token_embd;
        # Q8_0. Or TinyLlama-1.1B's (the larger one), in Q8_0 or Q4_0. A
        # SentencePiece-style vocabulary so the tokenizer loads.
        if "--big-1b" in sys.argv:
            kind = sys.argv[sys.argv.index("--big-1b") + 1]
            if kind not in ("q8_0", "q4_0"):
                sys.exit("--big-1b takes q8_0 or q4_0")
            cfg = dict(base, vocab=32000, dim=2048, layers=22, heads=32, kv_heads=4, ffn=5632)
            name, tied = "big_1b_" + kind, False
        else:
            cfg = dict(base, vocab=49152, dim=576, layers=30, heads=9, kv_heads=3, ffn=1536)
            name, kind, tied = "big_q8_0", "q8_0", True
        w = make_weights(rng, cfg)
        kvs, tensors, _ = build_file(cfg, w, kind, tied)
        del w
        tokens = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)]
        tokens += ["\u2581t%d" % i for i in range(cfg["vocab"] - len(tokens))]
        types = [2, 3, 3] + [6] * 256 + [1] * (cfg["vocab"] - 259)
        kvs += [("tokenizer.ggml.model", T_STRING, "llama"),
                ("tokenizer.ggml.tokens", T_ARRAY, (T_STRING, tokens)),
                ("tokenizer.ggml.scores", T_ARRAY, (T_F32, [-float(i) for i in range(cfg["vocab"])])),
                ("tokenizer.ggml.token_type", T_ARRAY, (T_I32, types))]
        write_gguf(os.path.join(outdir, name + ".gguf"), kvs, tensors)
        return
    prompt = [int(t) for t in rng.integers(0, 256, 12)]
    w = make_weights(rng, base)
    write_model(outdir, "llama_f32", base, w, "f32", False, prompt)
    write_chat_model(outdir, base, w)
    write_model(outdir, "llama_f16", base, w, "f16", True, prompt)
    write_model(outdir, "llama_q8_0", base, w, "q8_0", False, prompt)
    write_model(outdir, "llama_q4_0", base, w, "q4_0", False, prompt)
    # Llama 3 style: per-pair frequency divisors in rope_freqs.weight.
    w3 = dict(w, rope_freqs=(1 + 7 * rng.random(8)).astype(np.float32))
    write_model(outdir, "llama3_f32", base, w3, "f32", False, prompt)
    for arch in ("qwen2", "phi3"):
        cfg = dict(base, arch=arch)
        write_model(outdir, arch + "_f32", cfg, make_weights(rng, cfg), "f32", False, prompt)
    # Gemma: embeddings scaled by sqrt(dim), GELU (tanh form) gate, output tied to the
    # embeddings, and a head dimension (24) that is not dim / heads (16).
    cfg = dict(base, arch="gemma", head_dim=24)
    write_model(outdir, "gemma_f32", cfg, make_weights(rng, cfg), "f32", True, prompt)
    write_model(outdir, "gemma_q8_0", cfg, make_weights(rng, cfg), "q8_0", True, prompt)
    # Gemma 2: gemma's, with soft caps that bend (the scores' deviation is ~1, the logits' ~8),
    # post-norms, and a window of 5 on layers 0 and 2: the 12-token prompt and the 32 greedy
    # tokens reach well past it.
    cfg = dict(base, arch="gemma2", head_dim=24, layers=3, attn_softcap=1.0, final_softcap=5.0,
               window=5)
    write_model(outdir, "gemma2_f32", cfg, make_weights(rng, cfg), "f32", True, prompt)
    write_model(outdir, "gemma2_q8_0", cfg, make_weights(rng, cfg), "q8_0", True, prompt)

    def bad_arch(kvs, tensors):
        return [(k, t, "mamba" if k == "general.architecture" else v) for k, t, v in kvs], tensors

    def missing(kvs, tensors):
        return kvs, [t for t in tensors if t[0] != "blk.1.ffn_down.weight"]

    def bad_shape(kvs, tensors):
        out = []
        for name, t, shape, data in tensors:
            if name == "blk.0.attn_k.weight":
                shape = [shape[0] // 2, shape[1]]
                data = data[: len(data) // 2]
            out.append((name, t, shape, data))
        return kvs, out

    write_model(outdir, "bad_arch", base, w, "f32", False, prompt, bad_arch)
    write_model(outdir, "missing", base, w, "f32", False, prompt, missing)
    write_model(outdir, "bad_shape", base, w, "f32", False, prompt, bad_shape)

    def bad_heads(kvs, tensors):
        key = "llama.attention.head_count_kv"
        return [(k, t, 3 if k == key else v) for k, t, v in kvs], tensors

    write_model(outdir, "bad_heads", base, w, "f32", False, prompt, bad_heads)


if __name__ == "__main__":
    main()
