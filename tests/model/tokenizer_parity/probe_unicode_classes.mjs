// Which code points Hugging Face tokenizers' regex engine (Oniguruma, through a Split Regex
// pre-tokenizer) puts in each Unicode class that tokenizer.json patterns use. Prints
// {"L": [[lo, hi], ...], ...} on stdout. Run by make_unicode_class_additions.py.
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const { Tokenizer } = require("@anush008/tokenizers");

const CLASSES = ["L", "Lu", "Ll", "Lt", "Lm", "Lo", "M", "Mn", "Mc", "Me", "N", "Nd", "Nl", "No", "P", "Pc", "S"];
const probes = Object.fromEntries(CLASSES.map((c) => [c, `\\p{${c}}`]));
probes.s = "\\s";
probes.d = "\\d";
probes.w = "\\w";

const out = {};
for (const [name, pattern] of Object.entries(probes)) {
  const tok = Tokenizer.fromString(JSON.stringify({
    version: "1.0", truncation: null, padding: null, added_tokens: [], normalizer: null,
    pre_tokenizer: { type: "Split", pattern: { Regex: pattern }, behavior: "Isolated", invert: false },
    post_processor: null, decoder: null,
    model: { type: "WordLevel", vocab: { "[UNK]": 0 }, unk_token: "[UNK]" },
  }));
  // Every probed code point between separators the class does not hold: a match is then a piece
  // of one code point of its own, a non-match merges with the separators around it.
  const sep = name.startsWith("L") || name === "w" ? "!" : "a";
  const hits = [];
  for (let base = 0; base <= 0x10ffff; base += 4096) {
    const cps = [];
    for (let c = base; c < Math.min(base + 4096, 0x110000); ++c) if (c < 0xd800 || c > 0xdfff) cps.push(c);
    if (!cps.length) continue;
    const text = sep + cps.map((c) => String.fromCodePoint(c)).join(sep) + sep;
    const chars = [...text];
    const enc = await tok.encode(text, null, { addSpecialTokens: false });
    for (const [b, e] of enc.getOffsets()) if (e - b === 1 && chars[b] !== sep) hits.push(chars[b].codePointAt(0));
  }
  hits.sort((a, b) => a - b);
  const ranges = [];
  for (const c of hits) {
    if (ranges.length && ranges[ranges.length - 1][1] === c - 1) ranges[ranges.length - 1][1] = c;
    else ranges.push([c, c]);
  }
  out[name] = ranges;
}
console.log(JSON.stringify(out));
