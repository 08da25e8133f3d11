// CPU reference implementations of the dense-transformer ops (see kernels/dense_ops.h).
#include "kernels/dense_ops.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace lockstep::cpu {

namespace {

// Loops with at least this many multiply-adds run on the rank's threads (set_threads); smaller
// ones (the test fixtures' layers) stay on one, where forking would cost more than it saves.
constexpr std::int64_t kParallelWork = std::int64_t{1} << 20;

// sum_k a[k] * b[k], vectorised: the SIMD lanes keep partial sums (a different summation
// order from a plain loop, well inside the reference's tolerance).
float dot(const float* a, const float* b, std::int64_t n) {
  float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
  for (std::int64_t k = 0; k < n; ++k) acc += a[k] * b[k];
  return acc;
}

}  // namespace

void set_threads(int threads) { omp_set_num_threads(std::max(1, threads)); }
int threads() { return omp_get_max_threads(); }

template <HalfFloat W>
void linear(const float* x, std::int64_t rows, std::int64_t in, const W* w, std::int64_t out,
            std::type_identity_t<const W*> bias, float* y) {
  // Each thread takes whole output features: its weight row converted once, then every x row.
#pragma omp parallel if (rows * in * out >= kParallelWork)
  {
    std::vector<float> wrow(in);
#pragma omp for schedule(static)
    for (std::int64_t o = 0; o < out; ++o) {
#pragma omp simd
      for (std::int64_t k = 0; k < in; ++k) wrow[k] = to_float(w[o * in + k]);
      const float b = bias ? to_float(bias[o]) : 0.0f;
      for (std::int64_t r = 0; r < rows; ++r) y[r * out + o] = dot(x + r * in, wrow.data(), in) + b;
    }
  }
}

template <HalfFloat W>
void rms_norm(const float* x, std::int64_t rows, std::int64_t dim, const W* weight, float eps, float* y) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    float ss = 0.0f;
    for (std::int64_t i = 0; i < dim; ++i) ss += xr[i] * xr[i];
    const float inv = 1.0f / std::sqrt(ss / static_cast<float>(dim) + eps);
    for (std::int64_t i = 0; i < dim; ++i) y[r * dim + i] = xr[i] * inv * to_float(weight[i]);
  }
}

template <HalfFloat W>
void head_rms_norm(float* qkv, std::int64_t tokens, std::int64_t q_heads, std::int64_t kv_heads, std::int64_t head_dim,
                   const W* q_weight, const W* k_weight, float eps) {
  const std::int64_t row = (q_heads + 2 * kv_heads) * head_dim;
  for (std::int64_t t = 0; t < tokens; ++t) {
    float* r = qkv + t * row;
    rms_norm(r, q_heads, head_dim, q_weight, eps, r);  // in place: each head read before written
    rms_norm(r + q_heads * head_dim, kv_heads, head_dim, k_weight, eps, r + q_heads * head_dim);
  }
}

template <HalfFloat W>
void add_rms_norm(float* residual, const float* delta, std::int64_t rows, std::int64_t dim, const W* weight,
                  float eps, float* y) {
  for (std::int64_t i = 0; i < rows * dim; ++i) residual[i] += delta[i];
  rms_norm(residual, rows, dim, weight, eps, y);
}

template <HalfFloat W>
void embedding(const int* ids, std::int64_t tokens, const W* table, std::int64_t vocab_begin,
               std::int64_t vocab_rows, std::int64_t hidden, float* out) {
  for (std::int64_t t = 0; t < tokens; ++t) {
    const std::int64_t local = ids[t] - vocab_begin;
    float* o = out + t * hidden;
    if (local < 0 || local >= vocab_rows) {
      std::fill(o, o + hidden, 0.0f);
      continue;
    }
    for (std::int64_t i = 0; i < hidden; ++i) o[i] = to_float(table[local * hidden + i]);
  }
}

void argmax(const float* logits, std::int64_t rows, std::int64_t vocab, int* ids, std::int64_t stride,
            float* values) {
  if (stride == 0) stride = vocab;
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* row = logits + r * stride;
    float best = -INFINITY;
    int best_i = 0;
    for (std::int64_t i = 0; i < vocab; ++i)
      if (row[i] > best) best = row[i], best_i = static_cast<int>(i);
    ids[r] = best_i;
    if (values) values[r] = best;
  }
}

template <HalfFloat W>
void split_qkv_rope_cache(const float* qkv, std::int64_t tokens, std::int64_t q_heads, std::int64_t kv_heads,
                          std::int64_t head_dim, std::type_identity_t<const W*> bias, const int* positions,
                          const float* inv_freq, const std::int64_t* slots, float* q, float* k_cache, float* v_cache,
                          KvCacheDtype cache) {
  const std::int64_t half = head_dim / 2, rotated = q_heads + kv_heads, row = (rotated + kv_heads) * head_dim;
  const std::int64_t kv_row = kv_heads * head_dim;
  std::vector<float> x(row);
  for (std::int64_t t = 0; t < tokens; ++t) {
    for (std::int64_t e = 0; e < row; ++e) x[e] = qkv[t * row + e] + (bias ? to_float(bias[e]) : 0.0f);
    for (std::int64_t i = 0; i < half; ++i) {
      const float angle = static_cast<float>(positions[t]) * inv_freq[i];
      const float c = std::cos(angle), s = std::sin(angle);
      for (std::int64_t h = 0; h < rotated; ++h) {  // q heads, then k heads
        float* v = x.data() + h * head_dim;
        const float a = v[i], b = v[i + half];
        v[i] = a * c - b * s;
        v[i + half] = b * c + a * s;
      }
    }
    std::copy(x.begin(), x.begin() + q_heads * head_dim, q + t * q_heads * head_dim);
    auto cached = [cache](float v) { return round_to_kv_cache(v, cache); };
    std::transform(x.begin() + q_heads * head_dim, x.begin() + rotated * head_dim, k_cache + slots[t] * kv_row, cached);
    std::transform(x.begin() + rotated * head_dim, x.end(), v_cache + slots[t] * kv_row, cached);
  }
}

void silu_mul(const float* gate_up, std::int64_t rows, std::int64_t ffn, float* out) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* gate = gate_up + r * 2 * ffn;
    const float* up = gate + ffn;
    for (std::int64_t i = 0; i < ffn; ++i) out[r * ffn + i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
  }
}

void paged_attention(const float* q, const float* k_cache, const float* v_cache, std::int64_t tokens,
                     std::int64_t heads, std::int64_t kv_heads, std::int64_t head_dim, std::int64_t block_size,
                     const int* seq_of, const int* pos, const int* block_tables, std::int64_t max_blocks, float scale,
                     float* out) {
  const std::int64_t group = heads / kv_heads, row = kv_heads * head_dim;
  std::int64_t work = 0;  // multiply-adds: each (token, head) reads its context's K and V rows
  for (std::int64_t t = 0; t < tokens; ++t) work += 2 * heads * (pos[t] + 1) * head_dim;
#pragma omp parallel if (work >= kParallelWork)
  {
    std::vector<float> scores;
#pragma omp for collapse(2) schedule(dynamic, 4)
    for (std::int64_t t = 0; t < tokens; ++t) {
      for (std::int64_t h = 0; h < heads; ++h) {
        const int* table = block_tables + static_cast<std::int64_t>(seq_of[t]) * max_blocks;
        const std::int64_t len = pos[t] + 1;
        scores.resize(len);
        const std::int64_t kvh = h / group;
        const float* qh = q + (t * heads + h) * head_dim;
        float max_score = -INFINITY;
        for (std::int64_t p = 0; p < len; ++p) {
          const std::int64_t slot = static_cast<std::int64_t>(table[p / block_size]) * block_size + p % block_size;
          scores[p] = dot(qh, k_cache + slot * row + kvh * head_dim, head_dim) * scale;
          max_score = std::max(max_score, scores[p]);
        }
        float denom = 0.0f;
        for (std::int64_t p = 0; p < len; ++p) denom += (scores[p] = std::exp(scores[p] - max_score));
        float* oh = out + (t * heads + h) * head_dim;
        std::fill(oh, oh + head_dim, 0.0f);
        for (std::int64_t p = 0; p < len; ++p) {
          const std::int64_t slot = static_cast<std::int64_t>(table[p / block_size]) * block_size + p % block_size;
          const float* vp = v_cache + slot * row + kvh * head_dim;
          const float w = scores[p] / denom;
#pragma omp simd
          for (std::int64_t d = 0; d < head_dim; ++d) oh[d] += w * vp[d];
        }
      }
    }
  }
}

template <HalfFloat W>
void swiglu_mlp(const float* x, std::int64_t rows, std::int64_t hidden, const W* gate_up, const W* down,
                std::int64_t ffn, float* out) {
  std::vector<float> both(rows * 2 * ffn), act(rows * ffn);
  linear(x, rows, hidden, gate_up, 2 * ffn, nullptr, both.data());
  silu_mul(both.data(), rows, ffn, act.data());
  linear(act.data(), rows, ffn, down, hidden, nullptr, out);
}

#define LOCKSTEP_CPU_OPS(W)                                                                                   \
  template void linear<W>(const float*, std::int64_t, std::int64_t, const W*, std::int64_t, const W*, float*);  \
  template void swiglu_mlp<W>(const float*, std::int64_t, std::int64_t, const W*, const W*, std::int64_t, float*); \
  template void rms_norm<W>(const float*, std::int64_t, std::int64_t, const W*, float, float*);                 \
  template void add_rms_norm<W>(float*, const float*, std::int64_t, std::int64_t, const W*, float, float*);     \
  template void head_rms_norm<W>(float*, std::int64_t, std::int64_t, std::int64_t, std::int64_t, const W*,       \
                                 const W*, float);                                                              \
  template void embedding<W>(const int*, std::int64_t, const W*, std::int64_t, std::int64_t, std::int64_t,      \
                             float*);                                                                           \
  template void split_qkv_rope_cache<W>(const float*, std::int64_t, std::int64_t, std::int64_t, std::int64_t,   \
                                        const W*, const int*, const float*, const std::int64_t*, float*, float*, \
                                        float*, KvCacheDtype);
LOCKSTEP_CPU_OPS(bf16)
LOCKSTEP_CPU_OPS(fp16)
#undef LOCKSTEP_CPU_OPS

}  // namespace lockstep::cpu
