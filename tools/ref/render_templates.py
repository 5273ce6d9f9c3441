#!/usr/bin/python3
"""render_templates.py: the reference renderings for tests/test-jinja.c.

Renders chat templates with Debian's python3-jinja2 in the environment Hugging Face
transformers uses for chat templates (ImmutableSandboxedEnvironment with trim_blocks and
lstrip_blocks, the loopcontrols extension, its own tojson filter and the raise_exception and
strftime_now globals), with strftime_now fixed to 2024-07-26 10:30:15 so renderings repeat:

    render_templates.py TEMPLATES.json CONVERSATIONS.json OUT.json

TEMPLATES.json is {name: template text}; CONVERSATIONS.json is {name: context object}.
OUT.json becomes {template name: {conversation name: rendered text, or {"error": message,
"raised": true when the message came from raise_exception}}}. Exits 77 without jinja2.
"""
import datetime
import json
import sys

try:
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment
except ImportError:
    sys.stderr.write("python3-jinja2 is missing\n")
    sys.exit(77)

FIXED_NOW = datetime.datetime(2024, 7, 26, 10, 30, 15)


class Raised(jinja2.exceptions.TemplateError):
    pass


def raise_exception(message):
    raise Raised(message)


def strftime_now(fmt):
    return FIXED_NOW.strftime(fmt)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    # transformers replaces jinja2's tojson (which escapes HTML characters) by plain json.dumps.
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


def make_env():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        templates = json.load(f)
    with open(sys.argv[2], encoding="utf-8") as f:
        conversations = json.load(f)
    env = make_env()
    out = {}
    for tname, source in templates.items():
        results = {}
        try:
            template = env.from_string(source)
        except jinja2.exceptions.TemplateError as e:
            out[tname] = {"error": str(e)}
            continue
        for cname, context in conversations.items():
            try:
                results[cname] = template.render(**context)
            except Raised as e:
                results[cname] = {"error": str(e), "raised": True}
            except Exception as e:  # noqa: BLE001 - every failure is a result to compare
                results[cname] = {"error": "%s: %s" % (type(e).__name__, e)}
        out[tname] = results
    with open(sys.argv[3], "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
