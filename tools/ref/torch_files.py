#!/usr/bin/python3
"""torch_files.py OUTDIR: PyTorch checkpoints written by real torch.save, for test-torch.c.

For each valid file F it writes F.json: {"metadata": {...}, "tensors": [{name, dtype, shape,
stride, storage_offset, values}]} with what torch itself reports (values flattened in logical
order, as floats; bools as 0/1). Also writes the legacy layout (must be refused) and hostile
archives whose data.pkl would run a command if unpickled by pickle.load (must be refused, and
OUTDIR/pwned must never appear). Exits 77 when torch is missing.
"""
import collections
import io
import json
import os
import pickle
import struct
import sys
import zlib
import zipfile

try:
    import torch
except ImportError:
    sys.exit(77)

OUT = sys.argv[1]
DTYPES = {
    torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL",
}


def describe(name, t):
    return {
        "name": name,
        "dtype": DTYPES[t.dtype],
        "shape": list(t.shape),
        "stride": list(t.stride()),
        "storage_offset": t.storage_offset(),
        "values": [float(v) for v in t.detach().float().flatten().tolist()],
    }


def flatten(obj, prefix, out):
    if isinstance(obj, torch.Tensor):
        out.append(describe(prefix or "tensor", obj))
    elif isinstance(obj, dict):
        for k, v in obj.items():
            flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            flatten(v, f"{prefix}.{i}" if prefix else str(i), out)


def save(name, obj, **kw):
    path = os.path.join(OUT, name)
    torch.save(obj, path, **kw)
    tensors = []
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        flatten(obj["state_dict"], "", tensors)
    else:
        flatten(obj, "", tensors)
    meta = {}
    if isinstance(obj, dict):
        meta = {k: v for k, v in obj.items()
                if isinstance(k, str) and (v is None or isinstance(v, (bool, int, float, str)))}
    with open(path + ".json", "w") as f:
        json.dump({"metadata": meta, "tensors": tensors}, f)
    return path


def state_dict():
    torch.manual_seed(0)
    sd = collections.OrderedDict()
    sd["f32"] = torch.randn(3, 4)
    sd["f16"] = torch.randn(5).half()
    sd["bf16"] = torch.randn(2, 3).bfloat16()
    sd["f64"] = torch.randn(4).double()
    sd["i64"] = torch.arange(-3, 3)
    sd["i32"] = torch.arange(6, dtype=torch.int32).reshape(2, 3)
    sd["i16"] = torch.tensor([-300, 0, 300], dtype=torch.int16)
    sd["i8"] = torch.tensor([-128, 0, 127], dtype=torch.int8)
    sd["u8"] = torch.tensor([0, 1, 255], dtype=torch.uint8)
    sd["bool"] = torch.tensor([True, False, True])
    sd["scalar"] = torch.tensor(3.5)
    sd["empty"] = torch.zeros(0, 4)
    sd["transposed"] = torch.randn(3, 5).t()
    base = torch.randn(10)
    sd["sliced"] = base[2:5]
    big = torch.randn(4, 4)
    sd["shared_a"] = big[0]
    sd["shared_b"] = big[1:3, 1:]
    sd["param"] = torch.nn.Parameter(torch.randn(2, 2))
    return sd


def recompress(src, dst):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename))


def write_zip64(dst, members):
    """A stored zip in the zip64 form large checkpoints (> 4 GB) have: every size and offset in
    zip64 extra fields, zip64 end records, storages padded to 64 bytes as torch pads them."""
    out, cd = bytearray(), bytearray()
    for name, data in members:
        nb, off, crc = name.encode(), len(out), zlib.crc32(data)
        extra = struct.pack("<HHQQ", 1, 16, len(data), len(data))
        pad = (-(off + 30 + len(nb) + len(extra) + 4)) % 64
        extra += struct.pack("<HH", 0x4246, pad) + b"\0" * pad
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0x21, crc, 0xFFFFFFFF, 0xFFFFFFFF,
                           len(nb), len(extra)) + nb + extra + data
        cextra = struct.pack("<HHQQQ", 1, 24, len(data), len(data), off)
        cd += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0x21, crc, 0xFFFFFFFF,
                          0xFFFFFFFF, len(nb), len(cextra), 0, 0, 0, 0, 0xFFFFFFFF) + nb + cextra
    cd_off, n = len(out), len(members)
    out += cd
    z64 = len(out)
    out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, n, n, len(cd), cd_off)
    out += struct.pack("<IIQI", 0x07064B50, 0, z64, 1)
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    with open(dst, "wb") as f:
        f.write(out)


def hostile(name, pkl):
    with zipfile.ZipFile(os.path.join(OUT, name), "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/version", "3\n")


class System:
    def __reduce__(self):
        return (os.system, ("touch " + os.path.join(OUT, "pwned"),))


class Eval:
    def __reduce__(self):
        return (eval, ("__import__('os').system('touch " + os.path.join(OUT, "pwned") + "')",))


class Popen:
    def __reduce__(self):
        import subprocess
        return (subprocess.Popen, (["touch", os.path.join(OUT, "pwned")],))


def lightning_checkpoint():
    """A full training checkpoint as PyTorch Lightning writes it (the original Stable Diffusion
    .ckpt files are these): the state_dict beside callbacks keyed by the ModelCheckpoint class,
    whose state holds numpy scalars. The class is registered under Lightning's module name so
    pickle refers to it by that name, as in the real files; nothing of Lightning is needed."""
    import types
    import numpy
    for mod in ("pytorch_lightning", "pytorch_lightning.callbacks",
                "pytorch_lightning.callbacks.model_checkpoint"):
        sys.modules.setdefault(mod, types.ModuleType(mod))
    model_checkpoint = sys.modules["pytorch_lightning.callbacks.model_checkpoint"]

    class ModelCheckpoint:
        pass
    ModelCheckpoint.__module__ = model_checkpoint.__name__
    ModelCheckpoint.__qualname__ = "ModelCheckpoint"
    model_checkpoint.ModelCheckpoint = ModelCheckpoint
    return {"state_dict": collections.OrderedDict([("model.diffusion_model.out.2.weight", torch.randn(4, 3))]),
            "global_step": 470000, "epoch": 6,
            "callbacks": {ModelCheckpoint: {"monitor": None, "best_model_score": numpy.float64(0.25),
                                            "current_score": numpy.float32(0.5), "best_k_models": {}}}}


def main():
    sd = state_dict()
    state = save("state.pt", sd)
    save("state_p4.pt", sd, pickle_protocol=4)
    save("ckpt.ckpt", {"state_dict": collections.OrderedDict(
        [("model.diffusion_model.w", torch.randn(2, 3)), ("model.b", torch.ones(3).half())]),
        "global_step": 123, "epoch": 4, "note": "sd-like"})
    save("lightning.ckpt", lightning_checkpoint())
    save("nested.pt", {"model": {"a.weight": torch.randn(2, 2), "b": {"c": torch.arange(3)}},
                       "ema": {"a.weight": torch.randn(2, 2)}, "opt": [torch.zeros(2)], "step": 7})
    save("module.pt", torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2)).state_dict())
    tensor = save("tensor.pt", torch.arange(4.0))
    with zipfile.ZipFile(tensor) as z, open(os.path.join(OUT, "tensor.data.pkl"), "wb") as f:
        f.write(z.read([n for n in z.namelist() if n.endswith("/data.pkl")][0]))
    # The same file with every member deflated: read through libzip, not mapped.
    recompress(state, os.path.join(OUT, "compressed.pt"))
    with zipfile.ZipFile(state) as z:
        write_zip64(os.path.join(OUT, "zip64.pt"), [(n, z.read(n)) for n in z.namelist()])
    for copy in ("compressed.pt", "zip64.pt"):
        with open(state + ".json") as f, open(os.path.join(OUT, copy + ".json"), "w") as g:
            g.write(f.read())
    torch.save(sd, os.path.join(OUT, "legacy.pt"), _use_new_zipfile_serialization=False)

    hostile("system.pt", pickle.dumps(System(), protocol=2))
    hostile("eval.pt", pickle.dumps(Eval(), protocol=2))
    hostile("eval_p4.pt", pickle.dumps(Eval(), protocol=4))
    hostile("popen.pt", pickle.dumps(Popen(), protocol=4))
    hostile("system_p4.pt", pickle.dumps(System(), protocol=4))
    cmd = ("touch " + os.path.join(OUT, "pwned")).encode()
    hostile("getattr.pt", b"\x80\x02c__builtin__\ngetattr\ncposix\nsystem\n\x86R.")
    hostile("inst.pt", b"(S'" + cmd + b"'\nios\nsystem\n.")
    hostile("ordereddict_arg.pt", b"\x80\x02ccollections\nOrderedDict\n]\x85R.")
    hostile("numpy.pt", b"\x80\x02cnumpy.core.multiarray\n_reconstruct\n)R.")


if __name__ == "__main__":
    main()
