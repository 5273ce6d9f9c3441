#!/usr/bin/python3
"""gguf_facts.py: an independent second GGUF reader for tests/test-gguf.c.

Reads a GGUF v2/v3 file with nothing but the standard library (struct) and writes a JSON
object of facts about it to the path given as the second argument:

    gguf_facts.py FILE.gguf OUT.json

Facts: version, kv_count, tensor_count, alignment, data_offset, every scalar metadata value
(under "scalars"; strings as text with invalid bytes replaced), and for the tokenizer:
model, vocab size, merges count, the count of each token_type value, first and last token,
the special token ids present, general.architecture, and per array key its element type
name and length (under "arrays").
"""
import json
import struct
import sys

TYPE_NAMES = ["u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array",
              "u64", "i64", "f64"]
SCALAR_FORMATS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<B",
                  10: "<Q", 11: "<q", 12: "<d"}


class Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, fmt):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise ValueError("truncated at byte %d" % self.pos)
        value = struct.unpack_from(fmt, self.data, self.pos)[0]
        self.pos += size
        return value

    def string(self):
        n = self.take("<Q")
        if self.pos + n > len(self.data):
            raise ValueError("string past the end at byte %d" % self.pos)
        raw = self.data[self.pos:self.pos + n]
        self.pos += n
        return raw

    def value(self, vtype):
        if vtype in SCALAR_FORMATS:
            return self.take(SCALAR_FORMATS[vtype])
        if vtype == 8:
            return self.string()
        if vtype == 9:
            etype = self.take("<I")
            count = self.take("<Q")
            return (etype, [self.value(etype) for _ in range(count)])
        raise ValueError("unknown value type %d" % vtype)


def text(raw):
    return raw.decode("utf-8", errors="replace")


def main():
    path, out = sys.argv[1], sys.argv[2]
    with open(path, "rb") as f:
        data = f.read()
    r = Reader(data)
    if data[:4] != b"GGUF":
        raise SystemExit("not a GGUF file")
    r.pos = 4
    version = r.take("<I")
    tensor_count = r.take("<Q")
    kv_count = r.take("<Q")
    kv = {}
    types = {}
    for _ in range(kv_count):
        key = text(r.string())
        vtype = r.take("<I")
        kv[key] = r.value(vtype)
        types[key] = vtype
    tensors = []
    for _ in range(tensor_count):
        name = text(r.string())
        n_dims = r.take("<I")
        ne = [r.take("<Q") for _ in range(n_dims)]
        ttype = r.take("<I")
        offset = r.take("<Q")
        tensors.append({"name": name, "shape": ne[::-1], "type": ttype, "offset": offset})
    alignment = kv.get("general.alignment", 32)
    data_offset = (r.pos + alignment - 1) // alignment * alignment

    facts = {
        "version": version,
        "kv_count": kv_count,
        "tensor_count": tensor_count,
        "alignment": alignment,
        "data_offset": data_offset,
        "tensors": tensors,
        "scalars": {},
        "arrays": {},
    }
    for key, vtype in types.items():
        if vtype == 9:
            etype, items = kv[key]
            facts["arrays"][key] = {"element_type": TYPE_NAMES[etype], "length": len(items)}
        elif vtype == 8:
            facts["scalars"][key] = text(kv[key])
        elif vtype == 7:
            facts["scalars"][key] = bool(kv[key])
        else:
            facts["scalars"][key] = kv[key]

    tokens = kv.get("tokenizer.ggml.tokens", (8, []))[1]
    facts["tokenizer_model"] = text(kv["tokenizer.ggml.model"]) if "tokenizer.ggml.model" in kv else None
    facts["architecture"] = text(kv["general.architecture"]) if "general.architecture" in kv else None
    facts["vocab_size"] = len(tokens)
    facts["first_token"] = text(tokens[0]) if tokens else None
    facts["last_token"] = text(tokens[-1]) if tokens else None
    facts["merges_count"] = len(kv["tokenizer.ggml.merges"][1]) if "tokenizer.ggml.merges" in kv else 0
    counts = {}
    for t in kv.get("tokenizer.ggml.token_type", (5, []))[1]:
        counts[str(t)] = counts.get(str(t), 0) + 1
    facts["token_type_counts"] = counts
    if "tokenizer.ggml.scores" in kv:
        scores = kv["tokenizer.ggml.scores"][1]
        facts["scores_first_last"] = [scores[0], scores[-1]] if scores else []
    special = {}
    for name in ("bos", "eos", "unknown", "padding", "separator"):
        key = "tokenizer.ggml.%s_token_id" % name
        if key in kv:
            special[name] = kv[key]
    facts["special_ids"] = special
    with open(out, "w") as f:
        json.dump(facts, f, indent=1)


if __name__ == "__main__":
    main()
