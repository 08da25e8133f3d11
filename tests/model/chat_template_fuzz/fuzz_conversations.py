#!/usr/bin/env python3
"""Prints COUNT random chat-template cases (JSON lines) for fuzz_chat_templates.sh, over the
fixture templates in tests/fixtures/chat_templates: system/user/assistant/tool turns, contents
with whitespace, unicode, think and tool tags, None contents, tool calls with dict and string
arguments, reasoning_content, tools, add_generation_prompt, enable_thinking and date_string.
usage: fuzz_conversations.py SEED COUNT"""
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "fixtures" / "chat_templates"
TEMPLATES = ["deepseek_v3", "qwen2_5", "qwen3", "llama3_1", "llama3_2"]
TEXTS = ["Hello!", "  padded  ", "", "\n\nnewlines\n", "<think>\nhmm\n</think>\n\nanswer", "你好 🙂", "a\tb",
         "{\"json\": 1}", "</think>only close", "<tool_call>x</tool_call>", "Ünïcödé", "line1\nline2", " ",
         "<|im_end|>", "<｜User｜>", "x" * 30]
TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather.", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}, "n": {"type": "number", "default": 0.5}},
    "required": ["city"]}}}


def message(role):
    m = {"role": role, "content": random.choice(TEXTS)}
    if role == "assistant" and random.random() < 0.25:
        arguments = random.choice([{"city": "Paris"}, "{\"city\": \"Oslo\"}", {"city": "Ümeå", "n": 2.5}])
        m["tool_calls"] = [{"type": "function", "function": {"name": "get_weather", "arguments": arguments}}]
        if random.random() < 0.5:
            m["content"] = random.choice(["", None])
    if role == "assistant" and random.random() < 0.2:
        m["reasoning_content"] = random.choice(TEXTS)
    return m


def main():
    random.seed(int(sys.argv[1]))
    for _ in range(int(sys.argv[2])):
        roles = []
        if random.random() < 0.4:
            roles.append("system")
        for _ in range(random.randint(1, 4)):
            roles.append("user")
            if random.random() < 0.7:
                roles.append("assistant")
            if roles[-1] == "assistant" and random.random() < 0.3:
                roles.append("tool")
        messages = [message(r) for r in roles]
        case = {"dir": str(ROOT / random.choice(TEMPLATES)), "messages": messages,
                "tools": [TOOL] if random.random() < 0.3 else None,
                "add_generation_prompt": random.random() < 0.7,
                "extra": random.choice([{}, {"enable_thinking": False}, {"date_string": "26 Jul 2024"}])}
        print(json.dumps(case, ensure_ascii=False))


if __name__ == "__main__":
    main()
