// MLA's CPU ops (see kernels/latent_attention.h).
#include "kernels/latent_attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace lockstep::cpu {

// Loops with at least this many multiply-adds run on the rank's threads, as dense_ops' do.
constexpr std::int64_t kParallelWork = std::int64_t{1} << 20;

void rope_pairs(float* x, std::int64_t tokens, std::int64_t heads, std::int64_t token_stride, std::int64_t head_stride,
                std::int64_t rope_dim, const int* pos, const float* inv_freq, float attention_factor, bool interleaved) {
  const std::int64_t half = rope_dim / 2;
  std::vector<float> cos_t(half), sin_t(half), turned(rope_dim);
  for (std::int64_t t = 0; t < tokens; ++t) {
    for (std::int64_t i = 0; i < half; ++i) {
      const float angle = static_cast<float>(pos[t]) * inv_freq[i];  // fp32, as transformers' freqs
      cos_t[i] = std::cos(angle) * attention_factor;
      sin_t[i] = std::sin(angle) * attention_factor;
    }
    for (std::int64_t h = 0; h < heads; ++h) {
      float* v = x + t * token_stride + h * head_stride;
      for (std::int64_t i = 0; i < half; ++i) {
        const float a = interleaved ? v[2 * i] : v[i], b = interleaved ? v[2 * i + 1] : v[i + half];
        turned[i] = a * cos_t[i] - b * sin_t[i];
        turned[i + half] = b * cos_t[i] + a * sin_t[i];
      }
      std::copy(turned.begin(), turned.end(), v);
    }
  }
}

template <HalfFloat W>
void mla_absorb_q(const float* q, std::int64_t tokens, std::int64_t heads, std::int64_t q_token_stride,
                  std::int64_t q_head_stride, const W* kv_b, std::int64_t nope, std::int64_t v, std::int64_t kv_lora,
                  float* q_latent) {
#pragma omp parallel for collapse(2) if (tokens * heads * nope * kv_lora >= kParallelWork)
  for (std::int64_t t = 0; t < tokens; ++t)
    for (std::int64_t h = 0; h < heads; ++h) {
      const float* qn = q + t * q_token_stride + h * q_head_stride;
      float* out = q_latent + (t * heads + h) * kv_lora;
      std::fill(out, out + kv_lora, 0.0f);
      for (std::int64_t i = 0; i < nope; ++i) {
        const W* row = kv_b + (h * (nope + v) + i) * kv_lora;  // W_UK(h) row i
        for (std::int64_t k = 0; k < kv_lora; ++k) out[k] += qn[i] * to_float(row[k]);
      }
    }
}

template <HalfFloat W>
void mla_expand_v(const float* o_latent, std::int64_t tokens, std::int64_t heads, const W* kv_b, std::int64_t nope,
                  std::int64_t v, std::int64_t kv_lora, float* out) {
#pragma omp parallel for collapse(2) if (tokens * heads * v * kv_lora >= kParallelWork)
  for (std::int64_t t = 0; t < tokens; ++t)
    for (std::int64_t h = 0; h < heads; ++h) {
      const float* o = o_latent + (t * heads + h) * kv_lora;
      for (std::int64_t j = 0; j < v; ++j) {
        const W* row = kv_b + (h * (nope + v) + nope + j) * kv_lora;  // W_UV(h) row j
        float acc = 0.0f;
        for (std::int64_t k = 0; k < kv_lora; ++k) acc += to_float(row[k]) * o[k];
        out[(t * heads + h) * v + j] = acc;
      }
    }
}

void latent_attention(const float* q_latent, const float* q_rope, std::int64_t rope_token_stride,
                      std::int64_t rope_head_stride, const float* cache, std::int64_t tokens, std::int64_t heads,
                      std::int64_t kv_lora, std::int64_t rope_dim, std::int64_t block_size, const int* seq_of,
                      const int* pos, const int* block_tables, std::int64_t max_blocks, float scale, float* o_latent) {
  const std::int64_t width = kv_lora + rope_dim;
  std::int64_t work = 0;
  for (std::int64_t t = 0; t < tokens; ++t) work += heads * (pos[t] + 1) * (2 * kv_lora + rope_dim);
#pragma omp parallel if (work >= kParallelWork)
  {
    std::vector<float> scores;
#pragma omp for collapse(2) schedule(dynamic, 4)
    for (std::int64_t t = 0; t < tokens; ++t)
      for (std::int64_t h = 0; h < heads; ++h) {
        const int* table = block_tables + static_cast<std::int64_t>(seq_of[t]) * max_blocks;
        const std::int64_t len = pos[t] + 1;
        const float* ql = q_latent + (t * heads + h) * kv_lora;
        const float* qr = q_rope + t * rope_token_stride + h * rope_head_stride;
        scores.resize(len);
        float max_score = -INFINITY;
        for (std::int64_t p = 0; p < len; ++p) {
          const float* slot = cache + (static_cast<std::int64_t>(table[p / block_size]) * block_size + p % block_size) * width;
          float s = 0.0f;
          for (std::int64_t k = 0; k < kv_lora; ++k) s += ql[k] * slot[k];
          for (std::int64_t k = 0; k < rope_dim; ++k) s += qr[k] * slot[kv_lora + k];
          scores[p] = s * scale;
          max_score = std::max(max_score, scores[p]);
        }
        float denom = 0.0f;
        for (std::int64_t p = 0; p < len; ++p) denom += (scores[p] = std::exp(scores[p] - max_score));
        float* o = o_latent + (t * heads + h) * kv_lora;
        std::fill(o, o + kv_lora, 0.0f);
        for (std::int64_t p = 0; p < len; ++p) {
          const float* slot = cache + (static_cast<std::int64_t>(table[p / block_size]) * block_size + p % block_size) * width;
          const float w = scores[p] / denom;
          for (std::int64_t k = 0; k < kv_lora; ++k) o[k] += w * slot[k];
        }
      }
  }
}

#define LOCKSTEP_MLA_OPS(W)                                                                                         \
  template void mla_absorb_q<W>(const float*, std::int64_t, std::int64_t, std::int64_t, std::int64_t, const W*,     \
                                std::int64_t, std::int64_t, std::int64_t, float*);                                  \
  template void mla_expand_v<W>(const float*, std::int64_t, std::int64_t, const W*, std::int64_t, std::int64_t,     \
                                std::int64_t, float*);
LOCKSTEP_MLA_OPS(bf16)
LOCKSTEP_MLA_OPS(fp16)
#undef LOCKSTEP_MLA_OPS

}  // namespace lockstep::cpu
