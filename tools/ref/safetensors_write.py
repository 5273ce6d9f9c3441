#!/usr/bin/env python3
"""Writes a safetensors file holding every dtype with known values, independently of the C
parser (standard library only: json + struct), and a JSON file of the values each tensor must
read as once converted to float32.

    safetensors_write.py OUT.safetensors EXPECT.json

Expected values are strings (Python's repr of the float32 value: "nan", "inf" included) so
that plain JSON can carry them. The header is padded with spaces to a multiple of 8 bytes, as
the reference writer does, and tensors are laid out widest dtype first, then by name.
"""
import json
import math
import struct
import sys


def f32(x):
    """x rounded to the nearest float32."""
    if math.isnan(x) or math.isinf(x):
        return x
    return struct.unpack("<f", struct.pack("<f", x))[0]


def e4m3(b):
    """float8 e4m3fn: bias 7, no infinities, S.1111.111 is NaN."""
    sign = -1.0 if b & 0x80 else 1.0
    e, m = (b >> 3) & 15, b & 7
    if e == 15 and m == 7:
        return math.nan
    if e == 0:
        return sign * (m / 8.0) * 2.0 ** -6
    return sign * (1.0 + m / 8.0) * 2.0 ** (e - 7)


def e5m2(b):
    """float8 e5m2: bias 15, IEEE-like (infinities and NaNs)."""
    sign = -1.0 if b & 0x80 else 1.0
    e, m = (b >> 2) & 31, b & 3
    if e == 31:
        return math.nan if m else sign * math.inf
    if e == 0:
        return sign * (m / 4.0) * 2.0 ** -14
    return sign * (1.0 + m / 4.0) * 2.0 ** (e - 15)


def bf16_bits(x):
    return struct.unpack("<I", struct.pack("<f", x))[0] >> 16


def bf16_value(bits):
    return struct.unpack("<f", struct.pack("<I", bits << 16))[0]


def tensors():
    """(name, dtype, shape, bytes, expected floats)"""
    out = []
    v = [1.0, -2.5, 3.140625, 1e-3, -0.0, 1e30]
    out.append(("f64", "F64", [2, 3], struct.pack("<6d", *v), [f32(x) for x in v]))
    v = [0.0, 1.5, -7.25, 3.4028234663852886e38, 1.401298464324817e-45, -1e-20]
    out.append(("f32", "F32", [3, 2], struct.pack("<6f", *v), [f32(x) for x in v]))
    v = [1.0, -2.0, 65504.0, 5.960464477539063e-08, math.inf, -math.inf, 0.0009765625, -0.0]
    out.append(("f16", "F16", [2, 2, 2], struct.pack("<8e", *v), v))
    v = [1.0, -3.5, 1.0e38, 3.0e-39, -0.15625, 100.0]
    bits = [bf16_bits(x) for x in v]
    out.append(("bf16", "BF16", [6], struct.pack("<6H", *bits), [bf16_value(b) for b in bits]))
    v = [0, -1, 2 ** 40, -(2 ** 53), 123456789]
    out.append(("i64", "I64", [5], struct.pack("<5q", *v), [f32(float(x)) for x in v]))
    v = [0, -2147483648, 2147483647, 16777217, -5]
    out.append(("i32", "I32", [5], struct.pack("<5i", *v), [f32(float(x)) for x in v]))
    v = [0, -32768, 32767, 12]
    out.append(("i16", "I16", [4], struct.pack("<4h", *v), [float(x) for x in v]))
    v = [0, -128, 127, -1]
    out.append(("i8", "I8", [4], struct.pack("<4b", *v), [float(x) for x in v]))
    v = [0, 255, 128, 7]
    out.append(("u8", "U8", [2, 2], bytes(v), [float(x) for x in v]))
    v = [0, 1, 1, 0, 1]
    out.append(("bool", "BOOL", [5], bytes(v), [float(x) for x in v]))
    # max (448), -max, smallest subnormal (2^-9), NaN, 1.0, 0, a normal with mantissa
    v = [0x7E, 0xFE, 0x01, 0x7F, 0x38, 0x00, 0x4B]
    out.append(("f8_e4m3", "F8_E4M3", [7], bytes(v), [e4m3(b) for b in v]))
    # inf, -inf, NaN, smallest subnormal (2^-16), 1.0, max (57344), -0
    v = [0x7C, 0xFC, 0x7E, 0x01, 0x3C, 0x7B, 0x80]
    out.append(("f8_e5m2", "F8_E5M2", [7], bytes(v), [e5m2(b) for b in v]))
    out.append(("empty", "F32", [0, 3], b"", []))
    out.append(("scalar", "F32", [], struct.pack("<f", 42.0), [42.0]))
    return out


def main():
    path, expect_path = sys.argv[1], sys.argv[2]
    size = {"F64": 8, "I64": 8, "F32": 4, "I32": 4, "F16": 2, "BF16": 2, "I16": 2}
    # Widest dtype first, as the reference writer does, so every tensor is aligned.
    ts = sorted(tensors(), key=lambda t: (-size.get(t[1], 1), t[0]))
    header = {"__metadata__": {"format": "pt", "note": "written by safetensors_write.py"}}
    data = b""
    expect = {}
    for name, dtype, shape, raw, values in ts:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
        expect[name] = {"dtype": dtype, "shape": shape, "values": [repr(float(x)) for x in values]}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-(len(text)) % 8 + 8)  # always some padding
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        f.write(data)
    with open(expect_path, "w") as f:
        json.dump({"header_size": len(text), "data_size": len(data), "tensors": expect}, f, indent=1)


if __name__ == "__main__":
    main()
