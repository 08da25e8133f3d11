#!/usr/bin/env python3
"""Writes corpus.jsonl: the texts the tokenizer parity test encodes with every real tokenizer.
Hand-picked lines (scripts, code, emoji, whitespace, numbers, special-token strings) plus
deterministic mixtures of them. Run from this folder: python3 make_corpus.py"""
import json
import random

HAND = [
    "Hello world!", "Hello, world! How are you today?", " leading space", "trailing space ", "  two leading",
    "tabs\tbetween\twords", "line one\nline two\n\nline four", "windows\r\nline endings\r\n", "\n\n\n", "   ",
    "", "a", "I'm sure it's fine, they'll see; we've won, you'd agree. DON'T SHOUT", "12345678901234567890",
    "3.14159265358979 and 2.718281828", "Phone: +1 (555) 123-4567, ZIP 94043-1351", "$1,234.56 or €7,89 or ¥1000",
    "你好，世界！今天天气很好。", "我们在北京大学学习人工智能和机器学习。", "深度求索（DeepSeek）发布了新的推理模型R1。",
    "日本語のテキストです。ひらがなとカタカナと漢字。", "東京タワーは333メートルです。", "ｶﾀｶﾅ半角とＦＵＬＬＷＩＤＴＨ文字",
    "안녕하세요, 세계! 한국어 텍스트입니다.", "서울특별시 종로구 세종대로 175", "Привет, мир! Как дела?",
    "Γειά σου Κόσμε", "مرحبا بالعالم، هذا نص عربي.", "שלום עולם", "नमस्ते दुनिया, यह हिंदी है।", "สวัสดีชาวโลก",
    "Tiếng Việt có dấu: Trường Đại học", "Ça va? Très bien, merci. Ñandú, pingüino, straße, Œuvre",
    "emoji 😀😃😄 thumbs 👍🏽 family 👨‍👩‍👧‍👦 flags 🇺🇸🇯🇵 keycap 1️⃣",
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    "int main(int argc, char** argv) {\n\tstd::printf(\"%d\\n\", argc);\n\treturn 0;\n}",
    "for (let i = 0; i < 10; i++) { console.log(`i=${i}`); }", "SELECT id, name FROM users WHERE age >= 21 ORDER BY name;",
    "<html><body><div class=\"x\">text</div></body></html>", "{\"key\": [1, 2, 3], \"nested\": {\"a\": null}}",
    "fn main() { let v: Vec<u8> = vec![0xff; 16]; }", "#!/bin/bash\nset -euo pipefail\necho \"$HOME\"",
    "x = [i**2 for i in range(100) if i % 3 == 0]", "https://example.com/path?query=1&other=two#frag",
    "user@example.org, first.last+tag@sub.domain.co.uk", "C:\\Windows\\System32\\drivers\\etc\\hosts",
    "<|begin_of_text|>Hello<|eot_id|>", "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>",
    "<｜begin▁of▁sentence｜><｜User｜>What is 2+2?<｜Assistant｜><think>\nsimple\n</think>\n\n4<｜end▁of▁sentence｜>",
    "<think>reasoning here</think>answer", "<tool_call>{\"name\": \"f\"}</tool_call>", "<|endoftext|><|endoftext|>",
    "text<|im_end|>more", "<|fim_prefix|>def f():<|fim_suffix|>\n<|fim_middle|>", "<｜fim▁begin｜>code<｜fim▁hole｜>more<｜fim▁end｜>",
    "   \t  \n  mixed   whitespace\t\t runs     ", "a\u00a0b\u2003c\u3000d", "zero\u200bwidth\u200djoiner", "café vs cafe\u0301 (NFC)",
    "ﬁ ligature and ① circled and Ⅻ roman", "x²+y³=z⁴, H₂O, ½ ¼", "😀" * 8, "ab" * 40, "1" * 33, "." * 20, "!?" * 10,
    "The quick brown fox jumps over the lazy dog. " * 3, "LLMs: GPT-4, Llama-3.1-70B, Qwen2.5-72B, DeepSeek-R1 (671B).",
    "Math: ∀x∈ℝ, ∃y: x² + y² ≥ 2xy; ∑_{i=1}^{n} i = n(n+1)/2", "Quotes: “curly” ‘single’ «guillemets» „low“",
    "Dashes – and — and hyphen-minus - and ‐", "Ellipsis… and bullet • and middle·dot", "Currency: ₹ ₩ ₽ ₿ ¢ £",
    "\"quoted\" 'single' `backtick` and \\backslash\\", "Mixed: 中文English日本語한국어Русский123", "ＡＢＣ１２３",
    "ID: 550e8400-e29b-41d4-a716-446655440000", "Version 1.2.3-rc.1+build.456", "2026-11-22T19:30:00Z",
    "It was 98.6°F (37°C) at 10:45 a.m.", "r/reddit u/user #hashtag @mention", "=== Section ===\n--- sub ---",
    "    indented code\n        more indent", "trailing newline\n", "\ttab start", "end with tab\t",
]

# Characters assigned after Unicode 14 (Debian 12's PCRE2 tables), which Hugging Face's Oniguruma
# (Unicode 16) puts in its classes: Egyptian Hieroglyphs Extended-A letters next to ASCII, a
# Kaktovik numeral, CJK Extension H and I, a legacy-computing symbol, Garay; and U+180E, which
# PCRE2 alone counts as \s. Fuzzed lines like these split differently before
# model/tokenizer/oniguruma_classes.h.
NEWER_UNICODE = [
    "hhh\U0001423a#include <stdio.h>", "\U00014264’s333 and \U00013cba's", "Kaktovik \U0001d2c0\U0001d2c1 12",
    "CJK H \U00031350\U00031351 and I \U0002ebf0", "legacy \U0001cd60!? x", "Garay \U00010d50\U00010d70\U00010d40",
    "a\u180eb \u180e c", "tab\u0085nel",
]


def main():
    rng = random.Random(20261122)
    lines = list(HAND)
    fragments = [h for h in HAND if h]
    while len(lines) < 240:
        k = rng.randint(2, 4)
        parts = [rng.choice(fragments) for _ in range(k)]
        sep = rng.choice([" ", "", "\n", "  ", "\t", " \n "])
        lines.append(sep.join(parts))
    lines += NEWER_UNICODE  # after the mixtures, which stay as they were
    with open("corpus.jsonl", "w", encoding="utf-8") as f:
        for line in lines:
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
    print(f"{len(lines)} lines")

if __name__ == "__main__":
    main()
