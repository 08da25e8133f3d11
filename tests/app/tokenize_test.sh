#!/usr/bin/env bash
# `lockstep tokenize` end to end: the whole parity corpus through the real Llama-3.1 and
# DeepSeek-V3 tokenizers must give Hugging Face's ids (with and without special tokens) and
# decode back to Hugging Face's text; a bad line is reported, answered with null, and the
# lines around it are unaffected.   usage: tokenize_test.sh LOCKSTEP PARITY_DIR
set -u
lockstep=$1 dir=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
for name in llama3_1 deepseek_v3; do
  tok=$dir/node_modules/@lenml/tokenizer-$name/models
  exp=$dir/expected_$name.jsonl
  "$lockstep" tokenize --tokenizer "$tok" --add-special-tokens <"$dir/corpus.jsonl" >"$tmp/ids" || fail "$name: exit $?"
  jq -c '.ids_special' "$exp" | diff -q - "$tmp/ids" >/dev/null || fail "$name: ids differ from Hugging Face"
  "$lockstep" tokenize --tokenizer "$tok" <"$dir/corpus.jsonl" >"$tmp/plain" || fail "$name: exit $?"
  jq -c '.ids' "$exp" | diff -q - "$tmp/plain" >/dev/null || fail "$name: ids without special tokens differ"
  jq -c '.ids_special' "$exp" | "$lockstep" tokenize --tokenizer "$tok" --decode --skip-special-tokens >"$tmp/text" \
    || fail "$name: decode exit $?"
  jq -c '.decoded_skip' "$exp" | diff -q - "$tmp/text" >/dev/null || fail "$name: decoded text differs"
done
printf '"ok"\nnot json\n[1, 2]\n"ok again"\n' | "$lockstep" tokenize --tokenizer "$tok" >"$tmp/out" 2>"$tmp/err"
[ $? -eq 1 ] || fail "bad lines should make the exit status 1"
[ "$(sed -n 2p "$tmp/out")" = null ] && [ "$(sed -n 3p "$tmp/out")" = null ] || fail "bad lines not answered with null"
[ "$(wc -l <"$tmp/out")" -eq 4 ] || fail "line count changed"
grep -q "line 2:" "$tmp/err" && grep -q "line 3: expected a JSON string" "$tmp/err" || fail "errors do not name the lines"
"$lockstep" tokenize --tokenizer /nonexistent </dev/null 2>"$tmp/err"; [ $? -eq 2 ] || fail "missing tokenizer exit"
grep -q "/nonexistent/tokenizer.json: cannot open" "$tmp/err" || fail "missing tokenizer message"
echo PASS
