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
  json tokens = json::array(), token_logprobs = json::array(), top_logprobs = json::array(), offsets = json::array();
  for (std::size_t i = from; i < to; ++i) {
    const std::string tok = token_text(ids[i]);
    tokens.push_back(tok);
    token_logprobs.push_back(finite(lps[i].logprob));
    json top = json::object();
    for (int k = 0; k < lps[i].num_top; ++k) top[token_text(lps[i].top_ids[k])] = finite(lps[i].top_logprobs[k]);
    top[tok] = finite(lps[i].logprob);  // the sampled token is always listed
    top_logprobs.push_back(std::move(top));
    offsets.push_back(text_offset_);
    text_offset_ += code_points(tok);
  }
  return {{"text_offset", std::move(offsets)}, {"token_logprobs", std::move(token_logprobs)},
          {"tokens", std::move(tokens)}, {"top_logprobs", std::move(top_logprobs)}};
}

}  // namespace lockstep
