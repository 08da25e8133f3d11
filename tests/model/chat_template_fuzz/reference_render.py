#!/usr/bin/env python3
"""The reference for fuzz_chat_templates.sh: renders each stdin case with jinja2 set up as
transformers' apply_chat_template sets it up (immutable sandbox, trim_blocks, lstrip_blocks,
loopcontrols, its tojson, raise_exception and strftime_now, the tokenizer_config's special
tokens), one JSON string or {"error": true} a line. Needs python3-jinja2 (3.1)."""
import json
import sys
from datetime import datetime
from pathlib import Path

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception
env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
templates = {}


def load(directory):
    if directory not in templates:
        config = json.load(open(Path(directory) / "tokenizer_config.json"))
        source = config.get("chat_template")
        if source is None:
            source = (Path(directory) / "chat_template.jinja").read_text()
        if isinstance(source, list):
            source = next(t["template"] for t in source if t["name"] == "default")
        special = {}
        for key in ["bos_token", "eos_token", "unk_token", "pad_token"]:
            value = config.get(key)
            if isinstance(value, dict):
                value = value.get("content")
            if value is not None:
                special[key] = value
        templates[directory] = (env.from_string(source), special)
    return templates[directory]


for line in sys.stdin:
    case = json.loads(line)
    template, special = load(case["dir"])
    try:
        text = template.render(messages=case["messages"], tools=case["tools"],
                               add_generation_prompt=case["add_generation_prompt"], **special, **case["extra"])
        print(json.dumps(text, ensure_ascii=False))
    except Exception:
        print('{"error": true}')
