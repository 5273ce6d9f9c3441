#!/usr/bin/env python3
"""Write the GResource XML that embeds the compiled shaders: gen-gresource.py OUT NAME.spv..."""
import sys

out, names = sys.argv[1], sys.argv[2:]
with open(out, "w", encoding="utf-8") as f:
    f.write('<?xml version="1.0" encoding="UTF-8"?>\n<gresources>\n')
    f.write('  <gresource prefix="/org/atelier/shaders">\n')
    for name in names:
        f.write(f"    <file>{name}</file>\n")
    f.write("  </gresource>\n</gresources>\n")
