// LogprobsOutput (see logprobs_output.h).
#include "app/openai/logprobs_output.h"

#include <cmath>

namespace lockstep {
namespace {

using json = nlohmann::ordered_json;

std::size_t code_points(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

json bytes_of(const std::string& s) {
  json out = json::array();
  for (unsigned char c : s) out.push_back(static_cast<int>(c));
  return out;
}

// JSON has no -Infinity; OpenAI clients expect a number.
double finite(float v) { return std::isfinite(v) ? v : -9999.0; }

}  // namespace

std::string LogprobsOutput::token_text(int id) const {
  if (request_.return_tokens_as_token_ids || !tokenizer_) return "token_id:" + std::to_string(id);
  return tokenizer_->decode({id}, /*skip_special_tokens=*/false);
}

json LogprobsOutput::build(const std::vector<int>& ids, const std::vector<TokenLogprobs>& lps, std::size_t from,
                           std::size_t to) {
  to = std::min({to, ids.size(), lps.size()});
  if (request_.endpoint == Endpoint::ChatCompletions) {
    json content = json::array();
    for (std::size_t i = from; i < to; ++i) {
      const std::string tok = token_text(ids[i]);
      json top = json::array();
      for (int k = 0; k < lps[i].num_top; ++k) {
        const std::string t = token_text(lps[i].top_ids[k]);
        top.push_back({{"token", t}, {"logprob", finite(lps[i].top_logprobs[k])}, {"bytes", bytes_of(t)}});
      }
      content.push_back({{"token", tok}, {"logprob", finite(lps[i].logprob)}, {"bytes", bytes_of(tok)},
                         {"top_logprobs", std::move(top)}});
    }
    return {{"content", std::move(content)}};
  }
  json out = {{"text_offset", json::array()}, {"token_logprobs", json::array()}, {"tokens", json::array()},
              {"top_logprobs", json::array()}};
  for (std::size_t i = from; i < to; ++i) add_completion_token(out, ids[i], &lps[i]);
  return out;
}

// One token of the completions shape: its text and offset, and (unless lp is null: the
// prompt's first token) its log-probability and top entries, the token itself always listed.
void LogprobsOutput::add_completion_token(json& out, int id, const TokenLogprobs* lp) {
  const std::string tok = token_text(id);
  out["tokens"].push_back(tok);
  out["text_offset"].push_back(text_offset_);
  text_offset_ += code_points(tok);
  if (!lp) {
    out["token_logprobs"].push_back(nullptr);
    out["top_logprobs"].push_back(nullptr);
    return;
  }
  out["token_logprobs"].push_back(finite(lp->logprob));
  json top = json::object();
  for (int k = 0; k < lp->num_top; ++k) top[token_text(lp->top_ids[k])] = finite(lp->top_logprobs[k]);
  top[tok] = finite(lp->logprob);  // the sampled (or prompt) token is always listed
  out["top_logprobs"].push_back(std::move(top));
}

json LogprobsOutput::build_prompt(const std::vector<int>& prompt, const std::vector<TokenLogprobs>& lps) {
  json out = {{"text_offset", json::array()}, {"token_logprobs", json::array()}, {"tokens", json::array()},
              {"top_logprobs", json::array()}};
  for (std::size_t i = 0; i < prompt.size(); ++i) add_completion_token(out, prompt[i], i > 0 && i < lps.size() ? &lps[i] : nullptr);
  return out;
}

json LogprobsOutput::concat(json prompt_part, const json& generated) {
  for (auto& [key, values] : prompt_part.items())
    for (const json& v : generated.at(key)) values.push_back(v);
  return prompt_part;
}

json LogprobsOutput::prompt_logprobs_field(const std::vector<int>& prompt, const std::vector<TokenLogprobs>& lps) const {
  json out = json::array();
  for (std::size_t i = 0; i < prompt.size(); ++i) {
    if (i == 0 || i >= lps.size()) {
      out.push_back(nullptr);
      continue;
    }
    const TokenLogprobs& lp = lps[i];
    json entry = json::object();
    entry[std::to_string(prompt[i])] = {{"logprob", finite(lp.logprob)}, {"rank", lp.rank},
                                        {"decoded_token", token_text(prompt[i])}};
    for (int k = 0; k < lp.num_top; ++k)
      if (!entry.contains(std::to_string(lp.top_ids[k])))
        entry[std::to_string(lp.top_ids[k])] = {{"logprob", finite(lp.top_logprobs[k])}, {"rank", k + 1},
                                                {"decoded_token", token_text(lp.top_ids[k])}};
    out.push_back(std::move(entry));
  }
  return out;
}

}  // namespace lockstep
