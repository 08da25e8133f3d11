#!/usr/bin/env python3
"""Prints COUNT random lines (JSON strings) for fuzz_parity.sh: pieces of scripts, emoji, code,
whitespace, special-token strings and contractions, mixed with random printable ASCII and random
code points anywhere in Unicode (so characters newer than the regex engine's tables too).
usage: fuzz_corpus.py SEED COUNT"""
import json
import random
import sys

random.seed(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
pieces = [
  "hello", " world", "  ", "\n", "\n\n", "\t", " \t ", "\r\n", "don't", "I'M", "we'LL", "'s", "’s", "123", "4567890", "3.14159",
  "１２３", "你好", "世界", "こんにちは", "カタカナ", "한국어", "🙂", "👨‍👩‍👧‍👦", "🏳️‍🌈", "e\u0301", "\u200b", "\u00a0", "\ufeff",
  "<|begin_of_text|>", "<｜begin▁of▁sentence｜>", "<|im_start|>", "<|endoftext|>", "<think>", "</think>", "<|eot_id|>",
  "▁", "Ġ", "Ċ", "ĠĠ", "\\u00e9", "def f(x):\n    return x**2\n", "  \n  ", "...", "—", "–", "«»", "¿¡", "ß", "İ", "ǅ",
  "ﬁ", "Å", "Ω", "ℌ", "①", "½", "x²", "\u0000", "\u007f", "\u0085", "\u2028", "\u3000", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "Ἀθῆναι", "مرحبا", "שלום",
  "नमस्ते", "ไทย", "tiếng Việt", "ÀÉÎÕÜ", "ａｂｃ", "    indented", "trailing   ", "a" * 50, "ab" * 30, " " * 17, "!!!???",
  "https://example.com/a?b=c&d=e", "user@example.com", "#include <stdio.h>", "$x_{i}^{2}$", "\\frac{1}{2}", "1,000,000",
]
def text():
    n = random.randint(1, 12)
    out = []
    for _ in range(n):
        r = random.random()
        if r < 0.7: out.append(random.choice(pieces))
        elif r < 0.85: out.append(chr(random.randint(0x20, 0x7e)) * random.randint(1, 3))
        else:
            cp = random.randint(0x80, 0x2FFFF)
            if 0xD800 <= cp <= 0xDFFF: cp = 0x41
            out.append(chr(cp))
    return "".join(out)
for _ in range(int(sys.argv[2]) if len(sys.argv) > 2 else 2000):
    print(json.dumps(text(), ensure_ascii=False))
