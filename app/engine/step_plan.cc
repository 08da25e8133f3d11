// StepPlan wire format (see step_plan.h): little-endian PODs; vectors as u64 length + items.
#include "app/engine/step_plan.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace lockstep {
namespace {

class Writer {
 public:
  void reserve(std::size_t bytes) { out_.reserve(bytes); }
  template <typename T>
  void pod(const T& v) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(&v);
    out_.insert(out_.end(), p, p + sizeof(T));
  }
  template <typename T>
  void vec(const std::vector<T>& v) {
    pod<std::uint64_t>(v.size());
    const auto* p = reinterpret_cast<const std::uint8_t*>(v.data());
    out_.insert(out_.end(), p, p + v.size() * sizeof(T));
  }
  std::vector<std::uint8_t> take() { return std::move(out_); }

 private:
  std::vector<std::uint8_t> out_;
};

class Reader {
 public:
  explicit Reader(const std::vector<std::uint8_t>& b) : b_(b) {}
  template <typename T>
  T pod() {
    if (at_ + sizeof(T) > b_.size()) throw std::runtime_error("step plan truncated");
    T v;
    std::memcpy(&v, b_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return v;
  }
  template <typename T>
  std::vector<T> vec() {
    const auto n = pod<std::uint64_t>();
    if (n > (b_.size() - at_) / sizeof(T)) throw std::runtime_error("step plan vector length past the end");
    std::vector<T> v(n);
    std::memcpy(v.data(), b_.data() + at_, n * sizeof(T));
    at_ += n * sizeof(T);
    return v;
  }
  bool done() const { return at_ == b_.size(); }

 private:
  const std::vector<std::uint8_t>& b_;
  std::size_t at_ = 0;
};

struct WireSampling {
  float temperature, top_p, min_p;
  std::int32_t top_k;
  float repetition_penalty, frequency_penalty, presence_penalty;
  std::int32_t logprobs;
};

}  // namespace

std::vector<std::uint8_t> StepPlan::serialize() const {
  Writer w;
  // The vectors' bytes plus a little (lengths, PODs): one allocation instead of ~20 regrowths.
  w.reserve(4 * (batch.token_ids.size() + batch.positions.size() + batch.seq_of_token.size() +
                 batch.block_tables.size() + batch.logit_rows.size() + forced_ids.size() + history.size() +
                 history_prompt_len.size()) +
            8 * (sample_seeds.size() + history_offsets.size()) + sizeof(WireSampling) * sampling.size() + 1024);
  w.pod(step_id);
  w.pod(flags);
  w.vec(batch.token_ids);
  w.vec(batch.positions);
  w.vec(batch.seq_of_token);
  w.vec(batch.block_tables);
  w.pod<std::int32_t>(batch.max_blocks);
  w.vec(batch.logit_rows);
  std::vector<WireSampling> s;
  for (const SamplingParams& p : sampling)
    s.push_back({p.temperature, p.top_p, p.min_p, p.top_k, p.repetition_penalty, p.frequency_penalty,
                 p.presence_penalty, p.logprobs});
  w.vec(s);
  w.vec(sample_seeds);
  w.vec(forced_ids);
  w.vec(history);
  w.vec(history_offsets);
  w.vec(history_prompt_len);
  std::vector<std::int64_t> bias_offsets;
  std::vector<int> bias_ids;
  std::vector<float> bias_values;
  if (std::any_of(sampling.begin(), sampling.end(), [](const SamplingParams& p) { return !p.logit_bias.empty(); })) {
    bias_offsets.push_back(0);
    for (const SamplingParams& p : sampling) {
      for (const auto& [id, bias] : p.logit_bias) bias_ids.push_back(id), bias_values.push_back(bias);
      bias_offsets.push_back(static_cast<std::int64_t>(bias_ids.size()));
    }
  }
  w.vec(bias_offsets);
  w.vec(bias_ids);
  w.vec(bias_values);
  return w.take();
}

StepPlan StepPlan::deserialize(const std::vector<std::uint8_t>& bytes) {
  Reader r(bytes);
  StepPlan p;
  p.step_id = r.pod<std::uint64_t>();
  p.flags = r.pod<std::uint32_t>();
  p.batch.token_ids = r.vec<int>();
  p.batch.positions = r.vec<int>();
  p.batch.seq_of_token = r.vec<int>();
  p.batch.block_tables = r.vec<int>();
  p.batch.max_blocks = r.pod<std::int32_t>();
  p.batch.logit_rows = r.vec<int>();
  for (const WireSampling& w : r.vec<WireSampling>()) {
    SamplingParams sp;
    sp.temperature = w.temperature;
    sp.top_p = w.top_p;
    sp.min_p = w.min_p;
    sp.top_k = w.top_k;
    sp.repetition_penalty = w.repetition_penalty;
    sp.frequency_penalty = w.frequency_penalty;
    sp.presence_penalty = w.presence_penalty;
    sp.logprobs = w.logprobs;
    p.sampling.push_back(sp);
  }
  p.sample_seeds = r.vec<std::uint64_t>();
  p.forced_ids = r.vec<int>();
  p.history = r.vec<int>();
  p.history_offsets = r.vec<std::int64_t>();
  p.history_prompt_len = r.vec<int>();
  const auto bias_offsets = r.vec<std::int64_t>();
  const auto bias_ids = r.vec<int>();
  const auto bias_values = r.vec<float>();
  if (!r.done()) throw std::runtime_error("step plan has trailing bytes");
  if (!bias_offsets.empty()) {
    if (bias_offsets.size() != p.sampling.size() + 1 || bias_offsets.front() != 0 ||
        bias_offsets.back() != static_cast<std::int64_t>(bias_ids.size()) || bias_ids.size() != bias_values.size())
      throw std::runtime_error("step plan logit biases disagree with its rows");
    for (std::size_t i = 0; i < p.sampling.size(); ++i) {
      if (bias_offsets[i] > bias_offsets[i + 1]) throw std::runtime_error("step plan logit bias offsets out of order");
      for (std::int64_t k = bias_offsets[i]; k < bias_offsets[i + 1]; ++k)
        p.sampling[i].logit_bias.emplace_back(bias_ids[k], bias_values[k]);
    }
  } else if (!bias_ids.empty() || !bias_values.empty()) {
    throw std::runtime_error("step plan logit biases without rows");
  }
  const std::size_t T = p.batch.token_ids.size();
  if (p.batch.positions.size() != T || p.batch.seq_of_token.size() != T || p.sampling.size() != p.batch.logit_rows.size() ||
      p.sample_seeds.size() != p.sampling.size() || (!p.forced_ids.empty() && p.forced_ids.size() != p.sampling.size()))
    throw std::runtime_error("step plan fields disagree in length");
  if (!p.history_offsets.empty()) {
    if (p.history_offsets.size() != p.sampling.size() + 1 || p.history_prompt_len.size() != p.sampling.size() ||
        p.history_offsets.front() != 0 || p.history_offsets.back() != static_cast<std::int64_t>(p.history.size()))
      throw std::runtime_error("step plan token histories disagree with its rows");
    for (std::size_t i = 0; i + 1 < p.history_offsets.size(); ++i)
      if (p.history_offsets[i] > p.history_offsets[i + 1] ||
          p.history_prompt_len[i] > p.history_offsets[i + 1] - p.history_offsets[i])
        throw std::runtime_error("step plan token history offsets out of order");
  }
  return p;
}

}  // namespace lockstep
