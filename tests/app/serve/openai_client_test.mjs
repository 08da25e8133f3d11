// Drives a running `lockstep serve` with the official OpenAI Node client and checks what comes
// back against the transformers fixtures (greedy token ids and text, chat prompts rendered by
// apply_chat_template) and the OpenAI API's shapes and errors.
// usage: node openai_client_test.mjs BASE_URL API_KEY MODEL_NAME FIXTURES_DIR FIXTURE_NAME
// LOCKSTEP_SERVE_TEST_MIN_MARGIN=M (a server on GPUs: bf16 weights, activations and KV cache put
// its logits up to ~0.1 from transformers' fp32 ones): greedy ids are compared only up to the
// first step whose top-2 margin in the fixture is below M (that token may legitimately differ),
// text only where every step's margin is at least M, log-probabilities within M; the API's
// shapes, lengths, usage, errors and everything else are checked as without it.
import fs from "node:fs";
import path from "node:path";
import OpenAI from "openai";

const [baseURL, apiKey, modelName, fixturesDir, fixtureName] = process.argv.slice(2);
const expected = JSON.parse(fs.readFileSync(path.join(fixturesDir, `${fixtureName}.expected.json`), "utf8"));
const serving = JSON.parse(fs.readFileSync(path.join(fixturesDir, `${fixtureName}.serving.json`), "utf8"));
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 120_000 });
const reasoningModel = serving.chat[0].prompt.endsWith("<think>\n");

let failures = 0;
let checks = 0;
function check(cond, what, detail = "") {
  checks++;
  if (!cond) {
    failures++;
    console.log(`FAIL: ${what}${detail ? `: ${detail}` : ""}`);
  }
}
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const minMargin = Number(process.env.LOCKSTEP_SERVE_TEST_MIN_MARGIN ?? 0);
// How many leading ids of a fixture's greedy run (of n) any correct server reproduces: all of
// them, or with minMargin those before the first step whose top-2 margin is below it (none when
// the fixture has no margins).
function firm(c, n = c.greedy_ids.length) {
  if (!minMargin) return n;
  const k = (c.top2_margins ?? []).findIndex((m) => m < minMargin);
  return !c.top2_margins ? 0 : Math.min(n, k < 0 ? c.greedy_ids.length : k);
}
// `ids` is a correct greedy run of n tokens for fixture case c.
const greedyOk = (ids, c, n = c.greedy_ids.length) =>
  Array.isArray(ids) && ids.length === n && same(ids.slice(0, firm(c, n)), c.greedy_ids.slice(0, firm(c, n)));
// The text of a whole greedy run equals the fixture's (when every step of it is firm).
const textOk = (text, c) => firm(c) < c.greedy_ids.length || text === c.greedy_text;
async function expectError(status, fn, what) {
  try {
    await fn();
    check(false, what, `expected HTTP ${status}, got success`);
  } catch (e) {
    check(e instanceof OpenAI.APIError && e.status === status, what, `expected HTTP ${status}, got ${e.status} ${e.message}`);
    if (e instanceof OpenAI.APIError) check(typeof e.error?.message === "string", `${what}: OpenAI error object`);
  }
}
const greedy = { temperature: 0, ignore_eos: true, return_token_ids: true };

async function models() {
  const list = await client.models.list();
  check(list.data.length === 1 && list.data[0].id === modelName, "models.list", JSON.stringify(list.data));
}

async function completionsTokenIds() {
  for (const [i, c] of expected.cases.entries()) {
    const r = await client.completions.create({ model: modelName, prompt: c.prompt_ids, max_tokens: c.greedy_ids.length, ...greedy });
    check(greedyOk(r.choices[0].token_ids, c), `completion ${i} (token-id prompt): token ids`, `${r.choices[0].token_ids} vs ${c.greedy_ids}`);
    check(textOk(r.choices[0].text, c), `completion ${i}: text`);
    check(r.choices[0].finish_reason === "length", `completion ${i}: finish_reason`);
    check(r.usage.prompt_tokens === c.prompt_ids.length && r.usage.completion_tokens === c.greedy_ids.length, `completion ${i}: usage`);
    check(r.object === "text_completion" && r.id.startsWith("cmpl-"), `completion ${i}: object and id`);
  }
  // A list of token-id prompts: one choice per prompt, in order.
  const all = await client.completions.create({ model: modelName, prompt: expected.cases.map((c) => c.prompt_ids), max_tokens: 8, ...greedy });
  check(all.choices.length === expected.cases.length, "list of prompts: one choice each");
  for (const [i, c] of expected.cases.entries()) check(greedyOk(all.choices[i]?.token_ids, c, 8), `list of prompts: choice ${i}`);
  // A text prompt goes through the checkpoint's tokenizer (with BOS where the post-processor adds it).
  const t = await client.completions.create({ model: modelName, prompt: expected.cases[0].prompt, max_tokens: 8, ...greedy });
  check(same(t.prompt_token_ids, expected.cases[0].prompt_ids), "text prompt: tokenization");
  check(textOk(t.choices[0].text, expected.cases[0]), "text prompt: text");
}

async function collectChatStream(params) {
  const stream = await client.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } });
  const out = { role: null, reasoning: "", content: "", ids: [], finish: null, usage: null, chunks: 0 };
  for await (const chunk of stream) {
    out.chunks++;
    check(chunk.object === "chat.completion.chunk", "chat stream: chunk object");
    if (chunk.usage) out.usage = chunk.usage;
    for (const ch of chunk.choices) {
      if (ch.delta.role) out.role = ch.delta.role;
      // Reasoning under both names: vLLM's `reasoning` and DeepSeek's `reasoning_content`.
      check((ch.delta.reasoning ?? null) === (ch.delta.reasoning_content ?? null), "chat stream: reasoning under both names");
      out.reasoning += ch.delta.reasoning_content ?? "";
      out.content += ch.delta.content ?? "";
      out.ids.push(...(ch.token_ids ?? []));
      if (ch.finish_reason) out.finish = ch.finish_reason;
    }
  }
  return out;
}

async function chat() {
  for (const [i, c] of serving.chat.entries()) {
    const params = { model: modelName, messages: c.messages, max_completion_tokens: c.greedy_ids.length, ...greedy };
    const s = await collectChatStream(params);
    check(greedyOk(s.ids, c), `chat ${i} stream: token ids equal transformers'`, `${s.ids} vs ${c.greedy_ids}`);
    const text = reasoningModel ? s.reasoning : s.content;
    check(textOk(text, c), `chat ${i} stream: text`, JSON.stringify([text, c.greedy_text]));
    if (reasoningModel && firm(c) === c.greedy_ids.length) check(s.content === "", `chat ${i} stream: no </think>, so no content`);
    check(s.role === "assistant" && s.finish === "length", `chat ${i} stream: role and finish_reason`);
    check(s.usage && s.usage.prompt_tokens === c.prompt_ids.length && s.usage.completion_tokens === c.greedy_ids.length,
          `chat ${i} stream: usage (prompt = apply_chat_template's ${c.prompt_ids.length} tokens)`, JSON.stringify(s.usage));

    const r = await client.chat.completions.create(params);
    const m = r.choices[0].message;
    check(greedyOk(r.choices[0].token_ids, c), `chat ${i}: token ids`);
    check(same(r.prompt_token_ids, c.prompt_ids), `chat ${i}: prompt token ids equal apply_chat_template's`);
    if (firm(c) < c.greedy_ids.length) check(typeof (m.reasoning_content ?? m.content) === "string", `chat ${i}: a message`);
    else if (reasoningModel) check(m.reasoning_content === c.greedy_text && m.content === null, `chat ${i}: reasoning_content`);
    if (reasoningModel) check(m.reasoning === m.reasoning_content, `chat ${i}: reasoning under both names`);
    else check(textOk(m.content, c), `chat ${i}: content`, JSON.stringify([m.content, c.greedy_text]));
    check(r.usage.total_tokens === c.prompt_ids.length + c.greedy_ids.length, `chat ${i}: usage`);
  }
}

// A stop string that the greedy text contains (away from replacement characters).
function stopCase() {
  for (const c of expected.cases) {
    if (firm(c) < c.greedy_ids.length) continue;  // the text itself may differ
    const t = c.greedy_text;
    for (let at = 1; at + 2 <= t.length; at++) {
      const s = t.slice(at, at + 2);
      if (!s.includes("\uFFFD") && t.indexOf(s) === at) return { c, stop: s, text: t.slice(0, at) };
    }
  }
  if (minMargin) return null;
  throw new Error("no usable stop string in the fixtures");
}

async function stops() {
  const found = stopCase();
  if (!found) {
    console.log(`stop strings: no fixture case is firm at margin ${minMargin}; skipped`);
    return;
  }
  const { c, stop, text } = found;
  const r = await client.completions.create({ model: modelName, prompt: c.prompt_ids, max_tokens: 8, stop: [stop], ...greedy });
  check(r.choices[0].text === text, "stop string: text cut before it", JSON.stringify([r.choices[0].text, text]));
  check(r.choices[0].finish_reason === "stop" && r.choices[0].stop_reason === stop, "stop string: reasons");
  let streamed = "";
  let finish = null;
  const s = await client.completions.create({ model: modelName, prompt: c.prompt_ids, max_tokens: 8, stop, stream: true, ...greedy });
  for await (const chunk of s) for (const ch of chunk.choices) { streamed += ch.text; finish = ch.finish_reason ?? finish; }
  check(streamed === text && finish === "stop", "stop string, streamed", JSON.stringify([streamed, text]));
  const id = await client.completions.create({ model: modelName, prompt: c.prompt_ids, max_tokens: 8, stop_token_ids: [c.greedy_ids[2]], ...greedy });
  check(same(id.choices[0].token_ids, c.greedy_ids.slice(0, 3)) && id.choices[0].stop_reason === c.greedy_ids[2], "stop_token_ids");
}

// Streams send a chunk for every token, as vLLM does for every engine step, however late the
// handler reads them, even when the token's text is held back (a byte of an unfinished UTF-8
// character: the tiny fixtures' greedy runs have them): such a chunk carries its token id and ""
// as text. Without that, a client would see nothing until the character completes (with
// random-weight models, only at the end: TTFT = the whole run).
async function streamsEveryStep() {
  let heldBack = 0;
  for (const [i, c] of expected.cases.entries()) {
    const params = { model: modelName, prompt: c.prompt_ids, max_tokens: c.greedy_ids.length, ...greedy };
    const whole = await client.completions.create(params);
    let text = "";
    const ids = [];
    for await (const chunk of await client.completions.create({ ...params, stream: true }))
      for (const ch of chunk.choices) {
        check(ch.token_ids?.length === 1, `stream ${i}: one token a chunk`, JSON.stringify(ch.token_ids));
        if (ch.text === "" && ch.token_ids?.length > 0) heldBack++;
        text += ch.text;
        ids.push(...(ch.token_ids ?? []));
      }
    check(same(ids, whole.choices[0].token_ids) && text === whole.choices[0].text, `stream ${i}: the same tokens and text`,
          JSON.stringify([text, whole.choices[0].text]));
  }
  check(heldBack > 0, "streams: a step whose text is held back still gets its chunk (text \"\")");
}

async function nChoices() {
  const params = { model: modelName, prompt: expected.cases[1].prompt_ids, max_tokens: 6, n: 3, temperature: 1.0, seed: 11, ignore_eos: true, return_token_ids: true };
  const a = await client.completions.create(params);
  const b = await client.completions.create(params);
  check(a.choices.length === 3 && same(a.choices.map((c) => c.index), [0, 1, 2]), "n=3: three choices");
  check(a.choices.every((c) => c.token_ids.length === 6), "n=3: each has max_tokens tokens");
  check(same(a.choices.map((c) => c.token_ids), b.choices.map((c) => c.token_ids)), "n=3 with a seed: reproducible");
  check(new Set(a.choices.map((c) => JSON.stringify(c.token_ids))).size > 1, "n=3: choices differ");
  check(a.usage.completion_tokens === 18 && a.usage.prompt_tokens === expected.cases[1].prompt_ids.length, "n=3: usage");
}

async function errors() {
  await expectError(404, () => client.completions.create({ model: "no-such-model", prompt: "x", max_tokens: 2 }), "unknown model");
  await expectError(400, () => client.completions.create({ model: modelName, prompt: "x", max_tokens: 2, temperature: -1 }), "negative temperature");
  await expectError(400, () => client.completions.create({ model: modelName, prompt: "x", max_tokens: 100000 }), "max_tokens beyond the context");
  await expectError(400, () => client.completions.create({ model: modelName, prompt: [[1, 2, 99999]], max_tokens: 2 }), "token id outside the vocabulary");
  await expectError(400, () => client.chat.completions.create({ model: modelName, messages: [{ role: "wizard", content: "x" }] }), "unknown role");
  await expectError(400, () => client.chat.completions.create({ model: modelName, messages: [] }), "no messages");
  // Integer parameters refuse 2.5 and values past the integer's range (not truncated or wrapped).
  await expectError(400, () => client.completions.create({ model: modelName, prompt: "x", max_tokens: 2.5 }), "max_tokens 2.5");
  await expectError(400, () => client.completions.create({ model: modelName, prompt: "x", max_tokens: 2, n: 4294967297 }), "n past int");
  await expectError(400, () => client.completions.create({ model: modelName, prompt: "x", max_tokens: "2" }), "max_tokens as a string");
  // Output that must follow a grammar (constrained decoding) is refused, not answered with free text.
  const hi = [{ role: "user", content: "x" }];
  await expectError(400, () => client.chat.completions.create({ model: modelName, messages: hi, max_tokens: 2,
    response_format: { type: "json_object" } }), "JSON mode");
  await expectError(400, () => client.chat.completions.create({ model: modelName, messages: hi, max_tokens: 2,
    response_format: { type: "json_schema", json_schema: { name: "s", schema: { type: "object" } } } }), "JSON schema");
  await expectError(400, () => client.completions.create({ model: modelName, prompt: "x", max_tokens: 2,
    guided_choice: ["a", "b"] }), "vLLM guided_choice");
  const tools = [{ type: "function", function: { name: "f", parameters: { type: "object", properties: {} } } }];
  await expectError(400, () => client.chat.completions.create({ model: modelName, messages: hi, max_tokens: 2, tools,
    tool_choice: "required" }), "tool_choice required");
  const plain = await client.chat.completions.create({ model: modelName, messages: hi, max_tokens: 2,
    response_format: { type: "text" }, tools, tool_choice: "auto" });
  check(plain.choices.length === 1, "response_format text and tool_choice auto are served", JSON.stringify(plain));
  const noKey = new OpenAI({ baseURL, apiKey: "wrong-key", maxRetries: 0 });
  await expectError(401, () => noKey.models.list(), "wrong API key");
  // The server still answers after all of that.
  const ok = await client.completions.create({ model: modelName, prompt: expected.cases[0].prompt_ids, max_tokens: 8, ...greedy });
  check(greedyOk(ok.choices[0].token_ids, expected.cases[0], 8), "after errors: still exact");
}

// 64 streams at once, each on its own prompt: every client gets exactly its own tokens.
async function concurrent() {
  const prompts = [...expected.cases.map((c) => ({ kind: "completion", c })), ...serving.chat.map((c) => ({ kind: "chat", c }))];
  const jobs = [];
  for (let k = 0; k < 64; k++) {
    const { kind, c } = prompts[k % prompts.length];
    jobs.push((async () => {
      if (kind === "chat") {
        const s = await collectChatStream({ model: modelName, messages: c.messages, max_tokens: 8, ...greedy });
        return greedyOk(s.ids, c, 8);
      }
      const s = await client.completions.create({ model: modelName, prompt: c.prompt_ids, max_tokens: 8, stream: true, ...greedy });
      const ids = [];
      for await (const chunk of s) for (const ch of chunk.choices) ids.push(...(ch.token_ids ?? []));
      return greedyOk(ids, c, 8);
    })());
  }
  const results = await Promise.all(jobs);
  const bad = results.map((ok, k) => (ok ? -1 : k)).filter((k) => k >= 0);
  check(bad.length === 0, "64 concurrent streams each receive exactly their own tokens", `wrong: ${bad}`);
}

// A client that goes away mid-stream: its request is aborted and nothing keeps running.
async function disconnect() {
  const metric = async (name) => {
    const text = await (await fetch(baseURL.replace(/\/v1$/, "") + "/metrics")).text();
    const line = text.split("\n").find((l) => l.startsWith(name));
    return line ? Number(line.split(" ").pop()) : NaN;
  };
  const maxLen = (await client.models.list()).data[0].max_model_len;
  const prompt = expected.cases[0].prompt_ids;
  // A tiny model can write its whole answer into the socket buffers before the client leaves,
  // and then there is nothing left to abort; so try a few times and require one real abort.
  let aborted = false, running = NaN;
  for (let attempt = 0; attempt < 5 && !aborted; attempt++) {
    const abortedBefore = await metric("lockstep:request_aborted_total");
    const s = await client.completions.create({ model: modelName, prompt, max_tokens: maxLen - prompt.length, stream: true,
                                                logprobs: 20, ...greedy });
    let n = 0;
    for await (const _ of s) if (++n === 2) break;  // leaving the loop aborts the HTTP request
    for (let i = 0; i < 50; i++) {
      running = await metric("lockstep:num_requests_running");
      if (running === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    aborted = (await metric("lockstep:request_aborted_total")) === abortedBefore + 1;
  }
  check(running === 0, "disconnect: nothing left running", `running ${running}`);
  check(aborted, "disconnect: the request was aborted");
}

// Raw log-probabilities (and the top 5) of greedy steps equal transformers' log_softmax.
const TOP = 5;
async function logprobs() {
  const close = (a, b) => Math.abs(a - b) < (minMargin || 5e-3);
  for (const [i, c] of serving.logprobs.entries()) {
    const r = await client.completions.create({ model: modelName, prompt: c.prompt_ids, max_tokens: c.steps.length, logprobs: 5,
                                                return_tokens_as_token_ids: true, ...greedy });
    const lp = r.choices[0].logprobs;
    // The steps' top-2 margins are their logprob gaps; past the first small one the runs may part.
    const steps = c.steps.slice(0, firm({ greedy_ids: c.steps.map((s) => s.id),
                                          top2_margins: c.steps.map((s) => s.top_logprobs[0] - s.top_logprobs[1]) }));
    check(lp.tokens.length === c.steps.length && same(lp.tokens.slice(0, steps.length), steps.map((s) => `token_id:${s.id}`)),
          `logprobs ${i}: tokens`);
    check(steps.every((s, k) => close(lp.token_logprobs[k], s.logprob)), `logprobs ${i}: sampled token's logprob`,
          JSON.stringify([lp.token_logprobs, c.steps.map((s) => s.logprob)]));
    // An alternative whose logprob is within the tolerance of the fifth may fall out of the top 5.
    const listed = (s, j) => !minMargin || s.top_logprobs[j] > s.top_logprobs[TOP - 1] + 2 * minMargin;
    check(steps.every((s, k) => s.top_ids.every((id, j) => !listed(s, j) || close(lp.top_logprobs[k][`token_id:${id}`], s.top_logprobs[j]))),
          `logprobs ${i}: top 5`);
    check(lp.text_offset.length === c.steps.length && lp.text_offset[0] === 0, `logprobs ${i}: text_offset`);
  }
  const c = serving.logprobs[0];
  const chat = await client.chat.completions.create({ model: modelName, messages: serving.chat[0].messages, max_tokens: 4,
                                                      logprobs: true, top_logprobs: 3, ...greedy });
  const content = chat.choices[0].logprobs?.content ?? [];
  check(content.length === 4 && content.every((t) => t.top_logprobs.length === 3 && Array.isArray(t.bytes) && t.logprob <= 0),
        "chat logprobs: one entry per token with 3 alternatives", JSON.stringify(chat.choices[0].logprobs));
  const s = await client.chat.completions.create({ model: modelName, messages: serving.chat[0].messages, max_tokens: 4,
                                                   logprobs: true, stream: true, ...greedy });
  let streamed = 0;
  for await (const chunk of s) for (const ch of chunk.choices) streamed += ch.logprobs?.content?.length ?? 0;
  check(streamed === 4, "chat logprobs, streamed: one entry per token", String(streamed));
  await expectError(400, () => client.completions.create({ model: modelName, prompt: c.prompt_ids, logprobs: 21 }), "logprobs > 20");
  await expectError(400, () => client.chat.completions.create({ model: modelName, messages: serving.chat[0].messages, top_logprobs: 2 }),
                    "top_logprobs without logprobs");
}

// repetition_penalty equals transformers' RepetitionPenaltyLogitsProcessor (prompt and output tokens).
async function penalties() {
  for (const [i, c] of serving.repetition_penalty.entries()) {
    const r = await client.completions.create({ model: modelName, prompt: c.prompt_ids, max_tokens: c.greedy_ids.length,
                                                repetition_penalty: c.repetition_penalty, ...greedy });
    check(greedyOk(r.choices[0].token_ids, c), `repetition_penalty ${i}: equals transformers`, `${r.choices[0].token_ids} vs ${c.greedy_ids}`);
  }
  // A frequency penalty this strong forbids repeats that plain greedy decoding makes.
  const plain = await client.completions.create({ model: modelName, prompt: expected.cases[0].prompt_ids, max_tokens: 40, ...greedy });
  const pen = await client.completions.create({ model: modelName, prompt: expected.cases[0].prompt_ids, max_tokens: 40,
                                              frequency_penalty: 2.0, presence_penalty: 2.0, ...greedy });
  const repeats = (ids) => ids.length - new Set(ids).size;
  check(repeats(plain.choices[0].token_ids) > 0, "greedy without penalties repeats tokens (test premise)");
  check(repeats(pen.choices[0].token_ids) < repeats(plain.choices[0].token_ids), "frequency/presence penalties cut repeats");
  await expectError(400, () => client.completions.create({ model: modelName, prompt: "x", presence_penalty: 2.5 }), "presence_penalty > 2");
  await expectError(400, () => client.completions.create({ model: modelName, prompt: "x", repetition_penalty: 0 }), "repetition_penalty 0");
}

// echo (completions): each choice's text starts with its prompt's text (a text prompt as sent,
// token ids decoded), streamed in the choice's first chunk; with logprobs, the prompt's tokens
// scored too; not for chat. And vLLM's prompt_logprobs.
async function echo() {
  const c = expected.cases[0];
  const params = { model: modelName, prompt: c.prompt, max_tokens: 6, ...greedy };
  const plain = await client.completions.create(params);
  const echoed = await client.completions.create({ ...params, echo: true });
  check(echoed.choices[0].text === c.prompt + plain.choices[0].text, "echo: prompt text, then the completion",
        JSON.stringify([echoed.choices[0].text, c.prompt, plain.choices[0].text]));
  check(same(echoed.choices[0].token_ids, plain.choices[0].token_ids) && echoed.usage.completion_tokens === 6,
        "echo: the generated tokens and usage unchanged");
  let streamed = "";
  let first = null;
  for await (const chunk of await client.completions.create({ ...params, echo: true, stream: true }))
    for (const ch of chunk.choices) {
      if (first === null) first = ch.text;
      streamed += ch.text;
    }
  check(streamed === echoed.choices[0].text, "echo, streamed: the same text", JSON.stringify([streamed, echoed.choices[0].text]));
  check(first !== null && first.startsWith(c.prompt), "echo, streamed: the prompt in the first chunk", JSON.stringify(first));
  const ids = await client.completions.create({ model: modelName, prompt: [c.prompt_ids, c.prompt_ids], max_tokens: 2, echo: true,
                                                ...greedy });
  const decoded = await (await fetch(`${baseURL.replace(/\/v1$/, "")}/detokenize`, {
    method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}` },
    body: JSON.stringify({ model: modelName, tokens: c.prompt_ids }) })).json();
  check(ids.choices.length === 2 && ids.choices.every((ch) => ch.text.startsWith(decoded.prompt)),
        "echo, token-id prompts: the decoded prompt first", JSON.stringify([ids.choices.map((ch) => ch.text), decoded]));
  // echo with logprobs: the prompt's tokens scored first (the first with null), then the
  // generated ones as without echo; streamed, the same entries over the chunks.
  const scored = await client.completions.create({ ...params, logprobs: 1 });
  const both = await client.completions.create({ ...params, echo: true, logprobs: 1 });
  const lp = both.choices[0].logprobs, n = c.prompt_ids.length;
  const near = (a, b) => a.length === b.length && a.every((v, i) => (v === null && b[i] === null) || Math.abs(v - b[i]) < 1e-3);
  check(lp.tokens.length === n + 6 && lp.token_logprobs[0] === null && lp.top_logprobs[0] === null &&
        lp.token_logprobs.slice(1, n).every((v) => typeof v === "number" && v <= 0),
        "echo + logprobs: the prompt's tokens first, the first unscored", JSON.stringify(lp.token_logprobs.slice(0, 3)));
  check(near(lp.token_logprobs.slice(n), scored.choices[0].logprobs.token_logprobs),
        "echo + logprobs: the generated tokens' as without echo");
  check(lp.text_offset.every((o, i) => i === 0 || o >= lp.text_offset[i - 1]) && lp.text_offset[0] === 0,
        "echo + logprobs: text offsets from the prompt's start");
  const streamedLps = [];
  for await (const chunk of await client.completions.create({ ...params, echo: true, logprobs: 1, stream: true }))
    for (const ch of chunk.choices) streamedLps.push(...(ch.logprobs?.token_logprobs ?? []));
  check(near(streamedLps, lp.token_logprobs), "echo + logprobs, streamed: the same entries", JSON.stringify(streamedLps.slice(0, 4)));
  // vLLM's prompt_logprobs: its own field, not streamed.
  const plp = await client.completions.create({ ...params, prompt_logprobs: 2 });
  const field = plp.choices[0].prompt_logprobs;
  check(Array.isArray(field) && field.length === n && field[0] === null &&
        field.slice(1).every((e, i) => e[String(c.prompt_ids[i + 1])]?.rank >= 1 && Object.keys(e).length >= 2),
        "prompt_logprobs: each prompt token's, with its rank and the top 2",
        JSON.stringify(field?.slice(0, 3)));
  check(near(field.slice(1).map((e, i) => e[String(c.prompt_ids[i + 1])].logprob), lp.token_logprobs.slice(1, n)),
        "prompt_logprobs: the same values as echo's");
  await expectError(400, () => client.completions.create({ ...params, prompt_logprobs: 1, stream: true }), "prompt_logprobs streamed");
  await expectError(400, () => client.completions.create({ ...params, prompt_logprobs: 21 }), "prompt_logprobs > 20");
  await expectError(400, () => client.chat.completions.create({ model: modelName, messages: [{ role: "user", content: "x" }],
    max_tokens: 2, echo: true }), "echo in chat");
}

const tests = { models, completionsTokenIds, chat, stops, streamsEveryStep, nChoices, logprobs, penalties, echo, errors, concurrent, disconnect };
for (const [name, fn] of Object.entries(tests)) {
  try {
    await fn();
  } catch (e) {
    check(false, `${name} threw`, e.stack ?? String(e));
  }
}
console.log(`${checks - failures}/${checks} checks passed (${fixtureName}, ${reasoningModel ? "reasoning" : "plain"} chat template` +
            `${minMargin ? `, greedy compared where transformers' top-2 margin >= ${minMargin}` : ""})`);
process.exit(failures ? 1 : 0);
