// kernel_bench's deepseek_v3 rows: MLA's absorbed attention and the MoE's grouped GEMVs at
// Moonlight-16B-A3B's shapes (16 heads, kv_lora 512, 64 experts of 1408 columns, 6 a token) and
// R1's 128 heads (one GPU's worth: TP1). Registered by kernel_bench.cc.
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "benchmarks/kernel_bench_support.h"
#include "kernels/cuda/gemv.h"
#include "kernels/latent_attention.h"
#include "kernels/moe_experts.h"

namespace lockstep {
namespace {

constexpr std::int64_t kMlaNope = 128, kMlaRope = 64, kMlaV = 128, kMlaLora = 512;

// The absorbed attention's three kernels of a decode step: q into the latent space, attention
// over the latent cache (every head reads the same rows), the latent output back out.
// Bytes: what each must read (W_UK, the cache once, W_UV).
void bm_mla(benchmark::State& state, int op, std::int64_t batch, std::int64_t heads, std::int64_t context) {
  const std::int64_t qk = kMlaNope + kMlaRope, width = kMlaLora + kMlaRope;
  const std::int64_t max_blocks = context / kBlockSize, num_blocks = batch * max_blocks;
  DeviceBuffer kv_b = filled<bf16>(heads * (kMlaNope + kMlaV) * kMlaLora, 20);
  DeviceBuffer cache = filled<bf16>(num_blocks * kBlockSize * width, 21);
  DeviceBuffer q = filled<float>(batch * heads * qk, 22), q_latent = filled<float>(batch * heads * kMlaLora, 23);
  DeviceBuffer o_latent(DeviceKind::Cuda, batch * heads * kMlaLora * sizeof(float));
  DeviceBuffer out(DeviceKind::Cuda, batch * heads * kMlaV * sizeof(float));
  DecodeBatch d = decode_batch(batch, context);
  const double w_bytes = 2.0 * heads * kMlaNope * kMlaLora;  // W_UK or W_UV
  if (op == 0) {
    run_timed(state, w_bytes, 2.0 * batch * heads * kMlaNope * kMlaLora, [&] {
      cuda::mla_absorb_q(*g.ctx, as<float>(q), batch, heads, heads * qk, qk, as<bf16>(kv_b), kMlaNope, kMlaV, kMlaLora,
                         as<float>(q_latent));
    });
  } else if (op == 1) {
    run_timed(state, 2.0 * batch * context * width, 2.0 * batch * heads * context * (width + kMlaLora), [&] {
      cuda::latent_attention(*g.ctx, as<float>(q_latent), as<float>(q) + kMlaNope, heads * qk, qk, as<bf16>(cache),
                             batch, heads, kMlaLora, kMlaRope, kBlockSize, as<int>(d.seq_of), as<int>(d.pos),
                             as<int>(d.tables), max_blocks, 0.07f, as<float>(o_latent), context);
    });
  } else {
    run_timed(state, w_bytes, 2.0 * batch * heads * kMlaV * kMlaLora, [&] {
      cuda::mla_expand_v(*g.ctx, as<float>(q_latent), batch, heads, as<bf16>(kv_b), kMlaNope, kMlaV, kMlaLora,
                         as<float>(out));
    });
  }
}

// The routed experts of a decode step: `tokens` tokens with 6 distinct experts each (of 64,
// drawn at random), grouped on the GPU, then the gate|up GEMV with silu (silu: true) or the down
// GEMV; fp8: the same over block-fp8 weights (grouped_gemv_fp8); pairs: one pair a slot, ungrouped
// (ExpertRows::pairs, as a one-token step runs). Bytes: the weights of the experts the step
// activates (each read once; the fp8 scales, 1/16384 of them, left out).
constexpr std::int64_t kMoeHidden = 2048, kMoeFfn = 1408, kMoeExperts = 64, kMoeTopK = 6;
void bm_grouped_gemv(benchmark::State& state, std::int64_t tokens, bool silu, bool fp8, bool pairs) {
  const std::int64_t P = tokens * kMoeTopK, E = kMoeExperts, H = kMoeHidden, F = kMoeFfn;
  std::mt19937 rng(30);
  std::vector<int> ids;
  std::vector<bool> used(E, false);
  for (std::int64_t t = 0; t < tokens; ++t) {
    std::vector<int> all(E);
    std::iota(all.begin(), all.end(), 0);
    std::shuffle(all.begin(), all.end(), rng);
    for (std::int64_t k = 0; k < kMoeTopK; ++k) ids.push_back(all[k]), used[all[k]] = true;
  }
  const double active = static_cast<double>(std::count(used.begin(), used.end(), true));
  DeviceBuffer d_ids = to_device(ids);
  DeviceBuffer offsets(DeviceKind::Cuda, (E + 1) * sizeof(int)), act(DeviceKind::Cuda, E * sizeof(int)),
      count(DeviceKind::Cuda, sizeof(int)), token(DeviceKind::Cuda, P * sizeof(int)),
      position(DeviceKind::Cuda, P * sizeof(int));
  const cuda::ExpertGroups groups{as<int>(offsets), as<int>(act), as<int>(count), as<int>(token), as<int>(position)};
  cuda::group_by_expert(*g.ctx, as<int>(d_ids), P, kMoeTopK, static_cast<int>(E), groups);
  const cuda::ExpertRows experts =
      pairs ? cuda::ExpertRows::pairs(as<int>(d_ids), P, silu ? static_cast<int>(kMoeTopK) : 1)
            : cuda::ExpertRows::grouped(as<int>(offsets), as<int>(act), as<int>(count), std::min(E, P));
  const int* x_rows = pairs ? nullptr : as<int>(token);
  if (fp8) {  // DeepSeek's block fp8 (128 x 128 blocks): codes of small magnitudes, scales ~1e-3
    const std::int64_t rows = silu ? 2 * F : H, in = silu ? H : F;
    std::vector<std::uint8_t> codes(static_cast<std::size_t>(E * rows * in));
    for (std::size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<std::uint8_t>((i * 2654435761u >> 7) & 0x3F);
    std::vector<float> scales(static_cast<std::size_t>(E * rows / 128 * ((in + 127) / 128)), 1e-3f);
    DeviceBuffer w = to_device(codes), s = to_device(scales);
    DeviceBuffer x = filled<bf16>(silu ? tokens * H : P * F, 35);
    DeviceBuffer y(DeviceKind::Cuda, P * (silu ? F * sizeof(bf16) : H * sizeof(float)));
    run_timed(state, active * 1.0 * rows * in, 2.0 * P * rows * in, [&] {
      if (silu)
        cuda::grouped_gemv_silu_mul_fp8(*g.ctx, as<bf16>(x), x_rows, P, H, as<fp8_e4m3>(w), as<float>(s), 128, 128, F,
                                        experts, as<bf16>(y));
      else
        cuda::grouped_gemv_fp8(*g.ctx, as<bf16>(x), static_cast<const int*>(nullptr), P, F, as<fp8_e4m3>(w),
                               as<float>(s), 128, 128, H, experts, as<float>(y));
    });
  } else if (silu) {
    DeviceBuffer x = filled<bf16>(tokens * H, 31), w = filled<bf16>(E * 2 * F * H, 32);
    DeviceBuffer y(DeviceKind::Cuda, P * F * sizeof(bf16));
    run_timed(state, active * 2.0 * 2 * F * H, 2.0 * P * 2 * F * H, [&] {
      cuda::grouped_gemv_silu_mul(*g.ctx, as<bf16>(x), x_rows, P, H, as<bf16>(w), F, experts, as<bf16>(y));
    });
  } else {
    DeviceBuffer x = filled<bf16>(P * F, 33), w = filled<bf16>(E * H * F, 34);
    DeviceBuffer y(DeviceKind::Cuda, P * H * sizeof(float));
    run_timed(state, active * 2.0 * H * F, 2.0 * P * H * F, [&] {
      cuda::grouped_gemv(*g.ctx, as<bf16>(x), static_cast<const int*>(nullptr), P, F, as<bf16>(w), H, experts,
                         as<float>(y));
    });
  }
}

}  // namespace

void register_deepseek_benchmarks() {
  for (const std::int64_t heads : {16, 128})
    for (const std::int64_t batch : {1, 32}) {
      const std::string shape = "/heads:" + std::to_string(heads) + "/batch:" + std::to_string(batch);
      add("mla_absorb_q" + shape, [=](benchmark::State& st) { bm_mla(st, 0, batch, heads, 0); });
      add("mla_expand_v" + shape, [=](benchmark::State& st) { bm_mla(st, 2, batch, heads, 0); });
      for (const std::int64_t context : {256, 1024, 4096})
        add("latent_attention" + shape + "/ctx:" + std::to_string(context),
            [=](benchmark::State& st) { bm_mla(st, 1, batch, heads, context); });
    }
  for (const std::int64_t tokens : {1, 8, 32})
    for (const bool silu : {true, false})
      for (const bool fp8 : {false, true})
        add(std::string(fp8 ? "grouped_gemv_fp8/" : "grouped_gemv/") + (silu ? "gate_up_silu" : "down") +
                "/tokens:" + std::to_string(tokens),
            [=](benchmark::State& st) { bm_grouped_gemv(st, tokens, silu, fp8, false); });
  for (const bool silu : {true, false})
    for (const bool fp8 : {false, true})
      add(std::string(fp8 ? "grouped_gemv_fp8/" : "grouped_gemv/") + (silu ? "gate_up_silu" : "down") +
              "/one_pair_a_slot/tokens:1",
          [=](benchmark::State& st) { bm_grouped_gemv(st, 1, silu, fp8, true); });
}

}  // namespace lockstep
