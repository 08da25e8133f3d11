#!/usr/bin/env node
// Serving load generator for any OpenAI-compatible server (lockstep serve, vLLM, SGLang):
// for each concurrency level, REQUESTS streamed completions with PROMPT_LEN prompt tokens and
// MAX_TOKENS new tokens (EOS ignored) are kept C at a time in flight; prints the columns
// deployment reports use — concurrency, prompt length, max tokens, TTFT (mean/p50/p99), tok/s
// per request, total time, total tokens — and the aggregate output tok/s.
// tok/s per request is (tokens - 1) / (last token - first token) averaged over the requests whose
// tokens came in more than one network read; when a fast server delivers every stream in one read
// there is no decode span to time and the column says n/a (null in the JSON), never 0.
// usage: node benchmarks/serve_load.mjs --url http://HOST:PORT/v1 --model NAME
//          [--concurrency 1,8,16,32] [--prompt-len 128] [--max-tokens 256] [--requests N (default 4 x C)]
//          [--vocab 1000] [--api-key KEY] [--json FILE]
import { writeFileSync } from "node:fs";

function parseArgs(argv) {
  const o = { concurrency: "1,8,16,32", promptLen: 128, maxTokens: 256, requests: 0, vocab: 1000, apiKey: "", json: "" };
  for (let i = 2; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, "").replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (!(key in o) && key !== "url" && key !== "model") throw new Error(`unknown option ${argv[i]}`);
    o[key] = typeof o[key] === "number" ? Number(argv[i + 1]) : argv[i + 1];
  }
  if (!o.url || !o.model) throw new Error("--url and --model are required");
  o.levels = String(o.concurrency).split(",").map(Number);
  return o;
}

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN;
};

// One streamed completion: time to the first token, when the last one came, how many.
async function oneRequest(o, index) {
  const prompt = Array.from({ length: o.promptLen }, (_, j) => 100 + ((index * 7919 + j * 104729) % (o.vocab - 100)));
  const headers = { "Content-Type": "application/json" };
  if (o.apiKey) headers.Authorization = `Bearer ${o.apiKey}`;
  const start = performance.now();
  const res = await fetch(`${o.url}/completions`, {
    method: "POST",
    headers,
    body: JSON.stringify({ model: o.model, prompt, max_tokens: o.maxTokens, temperature: 0, ignore_eos: true,
                           stream: true, stream_options: { include_usage: true } }),
  });
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  let first = NaN, last = NaN, tokens = 0, buffer = "";
  const decoder = new TextDecoder();
  for await (const bytes of res.body) {
    buffer += decoder.decode(bytes, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, cut).trim();
      buffer = buffer.slice(cut + 2);
      if (!event.startsWith("data: ") || event === "data: [DONE]") continue;
      const chunk = JSON.parse(event.slice(6));
      if (chunk.usage) tokens = chunk.usage.completion_tokens;
      if (chunk.choices?.length && chunk.choices[0].text !== undefined) {
        const now = performance.now();
        if (Number.isNaN(first)) first = now;
        last = now;
      }
    }
  }
  return { ttft: (first - start) / 1e3, decode: (last - first) / 1e3, tokens };
}

async function level(o, c) {
  const total = o.requests > 0 ? o.requests : 4 * c;
  const results = [];
  let next = 0;
  const start = performance.now();
  const worker = async () => {
    while (next < total) results.push(await oneRequest(o, next++));
  };
  await Promise.all(Array.from({ length: Math.min(c, total) }, worker));
  const seconds = (performance.now() - start) / 1e3;
  const tokens = results.reduce((a, r) => a + r.tokens, 0);
  const ttft = results.map((r) => r.ttft);
  const perRequest = results.filter((r) => r.tokens > 1 && r.decode > 0).map((r) => (r.tokens - 1) / r.decode);
  return {
    concurrency: c, prompt_len: o.promptLen, max_tokens: o.maxTokens, requests: total,
    ttft_mean_s: ttft.reduce((a, b) => a + b, 0) / ttft.length, ttft_p50_s: quantile(ttft, 0.5),
    ttft_p99_s: quantile(ttft, 0.99),
    tok_s_per_request: perRequest.length ? perRequest.reduce((a, b) => a + b, 0) / perRequest.length : null,
    total_time_s: seconds, total_tokens: tokens, output_tok_s: tokens / seconds,
  };
}

const o = parseArgs(process.argv);
const rows = [];
const cols = ["concurrency", "prompt_len", "max_tokens", "requests", "ttft_mean_s", "ttft_p50_s", "ttft_p99_s",
              "tok_s_per_request", "total_time_s", "total_tokens", "output_tok_s"];
console.log(cols.map((c) => c.padStart(c.length < 10 ? 10 : c.length)).join(" "));
for (const c of o.levels) {
  const r = await level(o, c);
  rows.push(r);
  console.log(cols.map((k) => {
    const v = r[k];
    const s = v === null ? "n/a" : Number.isInteger(v) ? String(v) : v.toFixed(3);
    return s.padStart(k.length < 10 ? 10 : k.length);
  }).join(" "));
}
if (o.json) writeFileSync(o.json, JSON.stringify({ url: o.url, model: o.model, rows }, null, 2));
