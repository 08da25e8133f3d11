#!/usr/bin/env bash
# lockstep's chat templates against jinja2 set up as transformers sets it up, on random
# conversations (fuzz_conversations.py) over the fixture templates: prints the cases whose
# rendering differs (CI runs seed 1; transformers' own renderings are the fixtures of
# chat_template_test, tests/fixtures/chat_templates/expected.jsonl). Needs python3-jinja2, jq.
#   bash fuzz_chat_templates.sh RENDER_CHAT_TEMPLATE [SEED] [COUNT]
set -u
render=$1 seed=${2:-1} count=${3:-2000}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
python3 "$here/fuzz_conversations.py" "$seed" "$count" >"$tmp/cases.jsonl"
python3 "$here/reference_render.py" <"$tmp/cases.jsonl" >"$tmp/want.jsonl" || exit 2
"$render" <"$tmp/cases.jsonl" >"$tmp/got.jsonl" || exit 2
python3 - "$tmp" "$count" <<'PY'
import json, sys
tmp, count = sys.argv[1], int(sys.argv[2])
cases, want, got = ([l for l in open(f"{tmp}/{f}.jsonl", encoding="utf-8").read().split("\n") if l]  # not splitlines:
                     for f in ("cases", "want", "got"))  # U+2028 is text
bad = [i for i in range(len(cases)) if i >= len(got) or json.loads(want[i]) != json.loads(got[i])]
errors = sum(1 for w in want if w == '{"error": true}')
print(f"{len(bad)} of {count} cases differ ({errors} raise in jinja2)")
for i in bad:
    print(cases[i])
sys.exit(1 if bad else 0)
PY
