// Causal GQA attention over the paged KV cache on tensor cores (mma.sync m16n8k16, bf16 or fp16
// in as the cache is, fp32 accumulate), flash-attention style: the scores and probabilities of a
// tile stay in registers, with an online softmax. Prefill chunks are where it pays most: the
// query rows of several tokens of one sequence share every K/V tile (the CUDA-core kernel in
// paged_attention.cu reads the context once per token: 8 prompts of 1024 tokens took 2.5 ms here,
// 7.4 there, on an H200). It takes decode steps too (a block per token, split-KV): large batches
// and long contexts, where it is faster than the CUDA-core kernel (benchmarks/RESULTS.md).
//
// Exactness: q and the probabilities are fp32; each is split into a high part in the cache's
// type (bf16 or fp16) and the remainder in it, and both go through the MMA (2 products where one
// would round q or p), so the result matches cpu::paged_attention to fp32 accumulation error (K
// and V are in that type already). fp16's parts hold 22 bits (bf16's 16) but its range is
// narrower: a remainder below 2^-14 keeps an absolute 2^-25, and q past 65504 would overflow.
//
// A block takes up to kRows / (heads a block) consecutive tokens (one token at decode) and one KV
// head's query heads (up to kHeadChunk of them): its rows are (token, head) pairs, at most kRows
// (64 for prefill runs, 16 at decode), run by 4 warps. The tokens of a block that belong to one
// sequence (a run) are done together; a block holding several runs does them one after the
// other. Per run the warps split the rows in row tiles of 16 and, when there are fewer than 4
// row tiles, the tile's positions between them (kv ways), merging their (m, l, acc) at the end.
// K and V tiles of 64 positions are copied to shared memory with cp.async, double-buffered: the
// next tile is in flight while this one computes. Decode blocks (one token) may also split the
// context over gridDim.z blocks (split_kv_merge.cuh), as the CUDA-core kernel does. A decode
// variant with 3 stages (its q area cut to 16 rows) measured slower on an H200 (batch 256 x 1536
// positions: 374 -> 524 us; benchmarks/RESULTS.md, 2026-12-02), as did prefetching tiles into L2
// ahead of the copies (322 -> 366 us, eighth session); working out a tile's cache slots once, a
// tile ahead, instead of in every copying thread, was faster (322 -> 297 us). Decode is latency-bound on too few warps (Nsight Compute:
// 2 blocks an SM, limited by shared memory), so its blocks hold 16 query rows, not 64, and the
// tiles are unpadded with their 16-byte pieces XOR-swizzled (see Smem) instead of a 16-byte pad
// a row: 72 KB a block, 3 an SM (343 -> 321 us at batch 256 x 1536 positions). With q folded
// (see the kernel) it reads at 78% of the H200's DRAM peak there (Nsight Compute, ninth session).
// Past that, decode was bound by instruction issue (Nsight Compute, fp8 cache: ~850 instructions a
// warp a tile, 32 of them MMAs, the rest mostly address arithmetic and branches on head_dim): a
// head_dim that fills the row is a template constant, and ldmatrix addresses are a lane's row
// address XOR the step (batch 256 x 1536 positions on an H200: bf16 286 -> 231 us, fp8 172 -> 132
// us; prefill 8 x 1024 tokens 1230 -> 968 us; thirteenth session).
// Single-token runs of a mixed step come as their own decode launch (cuda_dense_transformer.cc):
// packed several to a prefill block they would run one after the other.
// A step's code has no branch on how many sub-steps it takes (a template argument), masks only
// where a position is past some row's last (the diagonal's tiles) or the context's end, and takes
// exp2 on the SFU with the scale folded into one FMA: prefill 8 x 1024 tokens 968 -> 626 us, one
// 16k-token prompt 20.6 -> 11.3 ms on an H200, 308 -> 200 M instructions (fifteenth session,
// benchmarks/RESULTS.md; PyTorch's flash-attention 2 takes 243 us / 5.6 ms there, with half the
// MMAs: it rounds q and the probabilities to bf16).
//
// An fp8 cache (--kv-cache-dtype fp8, kernels/fp8.h) is copied to shared memory as it is (half
// the bytes, tiles of 128 bytes a row) and converted to fp16 as the MMA operands are formed, q and
// p then split in fp16 (every fp8 value is exact in fp16). Prefill blocks too, though their 4 row
// tiles each convert every value: converting a tile once into fp16 tiles instead (an extra pass
// and barrier) was slower on an H200, 8 x 1024 prompt tokens 1358 vs 1116 us (bf16: 1230). ldmatrix reads the fp8 bytes in pairs:
// non-transposed, a lane gets dims 4 tq .. 4 tq + 3 of a K position, which become the MMA's k
// indices 2 tq, +1, +8, +9 (q is stored with its dims in that order, so q . k sums the same
// products); transposed, a lane gets dims 2 g, 2 g + 1 of V positions 2 tq, +1, which feed two
// MMAs, one for the even and one for the odd dims (the output's dims are put back in order at
// the end).
#include <cuda_pipeline.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "kernels/cuda/attention_tiles.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/dependent_launch.cuh"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/mma_fragments.cuh"
#include "kernels/cuda/split_kv_merge.cuh"
#include "kernels/cuda/tensor_core_attention.h"
#include "kernels/fatal.h"

namespace lockstep::cuda {
namespace {

using namespace tc_attention;  // the block shape, tiles and staging (attention_tiles.cuh)

// 16-position sub-steps of a prefill block's softmax step: the whole tile, so that a warp's MMAs
// between two softmax updates are 4 times as many (8 x 1024 prompt tokens: 1418 -> 1223 us on an
// H200; 2 sub-steps: 1293). Decode blocks take 1 (a way's 16 positions, and 170 registers).
constexpr int kPrefillSub = 4;
constexpr float kLog2e = 1.4426950408889634f;

// T: the MMA's type, __nv_bfloat16 or __half; C: the cache's device type, T or an fp8 format (T
// then __half; kMaxD 128: a row of a tile is its 8 pieces). kRows: kRunRows or kDecodeRows (3 blocks
// an SM: ~155 registers a thread at head_dim 128, within the 170 that allows). kFold (decode blocks
// of 8 heads or fewer, as every R1 distill has): q's high parts fill rows 0-7 of the row tile and
// its low parts rows 8-15, where they would be padding, so one MMA gives both halves of a score
// (lane's c[0] + c[2]); the probabilities go in the same way (high parts row g, low parts row
// g + 8) and the output's rows g and g + 8 sum at the end: half the MMAs and q loads of a tile
// (with the q loads below: batch 256 x 1536 positions 297 -> 282 us, 32 x 1024 54.5 -> 45.1 us on
// an H200). kSub: 16-position sub-steps a softmax step at most (kPrefillSub, or 1); a run of
// fewer rows splits a tile between 2 or 4 ways, of 2 or 1 sub-steps each.
// Decode blocks of an fp8 cache (40 KB of shared memory) run 4 an SM, their registers capped at
// 128 (a few spill): batch 256 x 1536 positions 201 -> 172 us, the 1k/1k run 11961 -> 12540
// output tok/s on one H200 (2026-12-03); 3 or 4 tiles in flight instead of 2 gained nothing at 3
// blocks an SM (201 / 202 / 203 us) and lost at 4 (shared memory then allows 3 or fewer).
template <typename T, typename C, int kMaxD, int kRows, bool kFold, int kSub, int kD>
__global__ void __launch_bounds__(kThreads, kRows == kDecodeRows ? (sizeof(C) == 1 ? 4 : 3) : 1)
    tensor_core_attention_kernel(const float* q, const C* k_cache, const C* v_cache, int d_arg, std::int64_t tokens,
                                 std::int64_t heads, std::int64_t kv_heads, std::int64_t block_size,
                                 const int* seq_of, const int* pos, const int* block_tables,
                                 std::int64_t max_blocks, float scale, int tile_tokens, float* out, float* partial,
                                 int* counters) {
  static_assert(!kFold || kRows == kDecodeRows, "folding is for a decode block's single row tile");
  static_assert(kSub == 1 || (kSub == 4 && 16 * kSub == kPositions), "a way's step: 16 positions, or a tile");
  constexpr bool kFp8 = sizeof(C) == 1;
  static_assert(kFp8 ? std::is_same_v<T, __half> && kMaxD == 128 : std::is_same_v<T, C>, "see above");
  dependent_launch_enter();
  static_assert(kD == 0 || kD == kMaxD, "a fixed head_dim fills the rows");
  const int D = kD > 0 ? kD : d_arg;
  using S = Smem<kMaxD, kRows, sizeof(C)>;
  constexpr int kDSteps = kMaxD / 16, kDTiles = kMaxD / 8;
  extern __shared__ __align__(16) unsigned char tc_attention_smem[];
  unsigned char* const smem = tc_attention_smem + (kAlign - shared_address(tc_attention_smem) % kAlign) % kAlign;
  auto* tiles = reinterpret_cast<C*>(smem);              // [stage][K, V][kPositions][kMaxD]
  T* q_hi = reinterpret_cast<T*>(smem + S::kKvBytes);    // [kRows][kMaxD]
  T* q_lo = q_hi + S::kQElems;
  float* acc_s = reinterpret_cast<float*>(smem);          // after the tiles: [kRows][kAccStride]
  __shared__ int limit_s[kRows];                                       // a row's last visible position
  __shared__ float m_s[kWarps][16], l_s[kWarps][16];                   // per way, per row of its row tile
  __shared__ float row_m_s[kRows], row_l_s[kRows];
  __shared__ std::int64_t rows_s[2][kPositions];                       // a stage's rows: tile_row

  const int tid = threadIdx.x, lane = tid % kWarp, warp = tid / kWarp, g = lane / 4, tq = lane % 4;
  const std::int64_t group = heads / kv_heads, hc = min(group, static_cast<std::int64_t>(kHeadChunk));
  const std::int64_t chunks = (group + hc - 1) / hc;
  const std::int64_t kvh = blockIdx.y / chunks, chunk = blockIdx.y % chunks;
  const std::int64_t h0 = kvh * group + chunk * hc;  // this block's first query head
  const int nh = static_cast<int>(min(hc, group - chunk * hc));
  const std::int64_t row = kv_heads * D, head_offset = kvh * D;  // elements a cache slot; this head's
  const int bs = static_cast<int>(block_size);
  const float scale2 = scale * kLog2e;  // scores in log2 units: exp2 below
  const StageLayout layout(D / S::kPer);
  const std::int64_t t_begin = static_cast<std::int64_t>(blockIdx.x) * tile_tokens;
  const std::int64_t t_end = min(tokens, t_begin + tile_tokens);

  for (std::int64_t run = t_begin, run_end; run < t_end; run = run_end) {
    const int seq = seq_of[run];
    std::int64_t context = static_cast<std::int64_t>(pos[run]) + 1;
    for (run_end = run + 1; run_end < t_end && seq_of[run_end] == seq; ++run_end)
      context = max(context, static_cast<std::int64_t>(pos[run_end]) + 1);
    const int rows = static_cast<int>((run_end - run) * hc);
    const int row_tiles = rows <= 16 ? 1 : rows <= 32 ? 2 : 4, ways = kWarps / row_tiles;
    const int my_tile = warp % row_tiles, my_way = warp / row_tiles;
    // q rows (token j, head i) = row j * hc + i, split in high and low parts (folded: row i
    // high, row i + 8 low); padding rows and dims are 0 (and a padding row sees no position).
    // A warp a row, its lanes along the row: a row's token and head are worked out once, and
    // the row's loads (coalesced) are all in flight together. An element a thread, each load
    // waited on with its divisions, cost prefill more than the MMAs did (8 x 1024 prompt tokens:
    // 1622 -> 1166 us on an H200). A lane takes dims in pairs (2 lane + 64 k, +1; D is even, so
    // both or neither exist), one float2 load and one 32-bit store of each part a pair: a pair
    // stays adjacent in a 16-byte piece, and in the fp8 K tile's column order too.
    const int d_pad = (D + 15) / 16 * 16;  // the MMA's k steps run to here
    constexpr int kPairSteps = kMaxD / (2 * kWarp);
#pragma unroll 2
    for (int r = warp; r < row_tiles * 16; r += kWarps) {
      const int qr = kFold ? r % 8 : r;
      const int j = qr / static_cast<int>(hc), i = qr % static_cast<int>(hc);
      const bool valid = qr < rows && i < nh;
      const float* src = valid ? q + ((run + j) * heads + h0 + i) * D : nullptr;
      float2 v[kPairSteps];
#pragma unroll
      for (int k = 0; k < kPairSteps; ++k) {
        const int d = 2 * lane + k * 2 * kWarp;
        v[k] = valid && d < D ? *reinterpret_cast<const float2*>(src + d) : make_float2(0.0f, 0.0f);
      }
#pragma unroll
      for (int k = 0; k < kPairSteps; ++k) {
        const int d = 2 * lane + k * 2 * kWarp;
        if (d >= d_pad) break;
        unsigned hi, lo;
        split_x2<T>(v[k].x, v[k].y, hi, lo);
        const int col = kFp8 ? fp8_k_column(d) : d;
        if constexpr (kFold) {
          *reinterpret_cast<unsigned*>(q_hi + S::at(r, col)) = r < 8 ? hi : lo;
        } else {
          *reinterpret_cast<unsigned*>(q_hi + S::at(r, col)) = hi;
          *reinterpret_cast<unsigned*>(q_lo + S::at(r, col)) = lo;
        }
      }
      if (lane == 0) limit_s[r] = valid ? pos[run + j] : -1;
    }
    // K's dims [D, d_pad) meet q's zero padding: they must be finite, and no copy writes them
    // (an fp8 cache's D is a multiple of 16, as is a fixed kD: none).
    if constexpr (!kFp8 && kD == 0) {
      for (int e = tid; e < 2 * kPositions * (d_pad - D); e += kThreads) {
        const int r = e / (d_pad - D), d = D + e % (d_pad - D);
        tiles[S::at(r, d)] = tiles[2 * S::kTileElems + S::at(r, d)] = round_to<T>(0.0f);
      }
    }
    // This block's split of the context, in whole tiles.
    const std::int64_t split_len = ((context + gridDim.z - 1) / gridDim.z + kPositions - 1) / kPositions * kPositions;
    const std::int64_t begin = static_cast<std::int64_t>(blockIdx.z) * split_len;
    const std::int64_t end = min(context, begin + split_len);
    const int* table = block_tables + static_cast<std::int64_t>(seq) * max_blocks;
    // Positions fit int (the max model len). The slots of the first two tiles.
    const int begin_i = static_cast<int>(begin), end_i = static_cast<int>(end);
    if (tid < 2 * kPositions && begin_i < end_i) {
      const int p = slot_position(begin_i + tid, begin_i, end_i);
      rows_s[tid / kPositions][tid % kPositions] = tile_row(table[p / bs], p, bs, row, head_offset);
    }
    __syncthreads();

    const int row_a = my_tile * 16 + g, row_b = row_a + 8;
    // Where this lane points its ldmatrix row (see ldmatrix_x4): q rows of the row tile, K and V
    // positions of a 16-position step, and the 16-byte piece within a 16- (q, K) or 8-wide (V)
    // dim step. Every such row is lane % 8 past a multiple of 8, so its swizzle is lane % 8.
    const int q_row = my_tile * 16 + (lane & 7) + (lane >> 3 & 1) * 8, q_piece = lane >> 4;
    const int k_row = (lane >> 4) * 8 + (lane & 7), k_piece = lane >> 3 & 1;
    const int v_row = (lane >> 3 & 1) * 8 + (lane & 7), v_piece = lane >> 4;
    const int swizzle = lane & 7;
    // The shared address of this lane's 16-byte piece `lane_piece` (0 or 1) of a row of `base`
    // (kMaxD elements of E); piece p + lane_piece, p even, is then at row_lane(...) ^ (p << 4):
    // the row starts on a multiple of its width and the swizzle only flips bits within it.
    auto row_lane = [&]<typename E>(const E* base, int row, int lane_piece) {
      return shared_address(base) + row * kMaxD * static_cast<unsigned>(sizeof(E)) + ((lane_piece ^ swizzle) << 4);
    };
    const unsigned q_hi_lane = row_lane(q_hi, q_row, q_piece), q_lo_lane = row_lane(q_lo, q_row, q_piece);
    const int limit_a = limit_s[row_a], limit_b = limit_s[row_b];
    // The warp's smallest last-visible position over its rows (padding rows, -1, do not count:
    // nothing of theirs is kept): steps up to it need no causal mask. A decode block's one token
    // sees its whole context, which ends where its split does (way_end): no register for it.
    int warp_limit = INT_MAX;
    if constexpr (kRows != kDecodeRows) {
      warp_limit = min(limit_a < 0 ? INT_MAX : limit_a, limit_b < 0 ? INT_MAX : limit_b);
#pragma unroll
      for (int o2 = 4; o2 < kWarp; o2 *= 2) warp_limit = min(warp_limit, __shfl_xor_sync(0xffffffffu, warp_limit, o2));
    }
    float o[kDTiles][4];
#pragma unroll
    for (int n = 0; n < kDTiles; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
    float m_a = -INFINITY, m_b = -INFINITY, l_a = 0.0f, l_b = 0.0f;  // l: this lane's part of the row sum

    if (begin < end)
      stage_kv<C, kMaxD, kRows>(tiles, tiles + S::kTileElems, k_cache, v_cache, layout, rows_s[0]);
    static_assert(kPositions <= kThreads, "a thread a position's slot");
    for (int p0 = begin_i, stage = 0; p0 < end_i; p0 += kPositions, stage ^= 1) {
      // The block-table entry of the tile after next (its slots go where this tile's were, once
      // the tile's math is done): loaded now, used then, so that no thread waits on it.
      const int p_ahead = p0 + 2 * kPositions + tid;
      const bool ahead = tid < kPositions && p0 + 2 * kPositions < end_i;
      const int p_slot = slot_position(p_ahead, begin_i, end_i);
      const int entry_ahead = ahead ? table[p_slot / bs] : 0;
      if (p0 + kPositions < end_i) {
        C* next = tiles + 2 * (stage ^ 1) * S::kTileElems;
        stage_kv<C, kMaxD, kRows>(next, next + S::kTileElems, k_cache, v_cache, layout, rows_s[stage ^ 1]);
        __pipeline_wait_prior(1);
      } else {
        __pipeline_wait_prior(0);
      }
      __syncthreads();
      const C* k_s = tiles + 2 * stage * S::kTileElems;
      const C* v_s = k_s + S::kTileElems;
      // This way's positions of the tile: kSubs x 16 from p0 + s0 (64, 32 or 16 for 1, 2 or 4
      // ways), up to way_end. kSubs is a template argument of the step, so that none of its
      // unrolled loops branches on it (a run-time count put a branch, a warp sync and a reset of
      // the scores between every ldmatrix and its MMAs: ~2000 instructions a warp a tile).
      const int span = kPositions / ways, s0 = my_way * span;
      const int way_end = min(end_i, p0 + s0 + span);
      auto step = [&]<int kSubs>() {
        // Scores of kSubs x 16 positions: 2 tiles of 8 each, this lane's (row g / g + 8, position
        // 2 tq, +1). Folded (decode: 2 tiles), alternate k steps go to two accumulators, shorter
        // MMA chains; unfolded, q's high and low parts go to the same one (its 8 tiles are chains
        // enough, and a second set cost 32 registers and an add a score).
        float sc[kSubs][2][4] = {};
        [[maybe_unused]] float sc_lo[kSubs][2][4] = {};
        if constexpr (kFp8) {
          // Two k steps a K load: kr[2 h + nt] holds positions 8 nt .. + 7 of step ks + h (the
          // lanes point as for V below: rows 0-15, then the next 16-byte piece).
#pragma unroll
          for (int ks = 0; ks < kDSteps; ks += 2) {
            if (ks * 16 >= D) break;
            const bool pair = (ks + 1) * 16 < D;
            unsigned ah[2][4];
            [[maybe_unused]] unsigned al[2][4];
            ldmatrix_x4(ah[0], q_hi_lane ^ (2 * ks << 4));
            if (pair) ldmatrix_x4(ah[1], q_hi_lane ^ ((2 * ks + 2) << 4));
            if constexpr (!kFold) {
              ldmatrix_x4(al[0], q_lo_lane ^ (2 * ks << 4));
              if (pair) ldmatrix_x4(al[1], q_lo_lane ^ ((2 * ks + 2) << 4));
            }
#pragma unroll
            for (int sub = 0; sub < kSubs; ++sub) {
              unsigned kr[4];
              const unsigned k_at = row_lane(k_s, s0 + sub * 16 + v_row, v_piece) ^ (ks << 4);
              if (pair) ldmatrix_x4(kr, k_at);
              else ldmatrix_x2(kr[0], kr[1], k_at);
#pragma unroll
              for (int h = 0; h < 2; ++h) {
                if (h == 1 && !pair) break;
#pragma unroll
                for (int nt = 0; nt < 2; ++nt) {
                  const unsigned x = kr[2 * h + nt];
                  const unsigned b0 = fp8x2_to_half2<C>(x), b1 = fp8x2_to_half2<C>(x >> 16);
                  if constexpr (kFold) {
                    mma<T>(h ? sc_lo[sub][nt] : sc[sub][nt], ah[h], b0, b1);
                  } else {
                    mma<T>(sc[sub][nt], ah[h], b0, b1);
                    mma<T>(sc[sub][nt], al[h], b0, b1);
                  }
                }
              }
            }
          }
        } else {
#pragma unroll
          for (int ks = 0; ks < kDSteps; ++ks) {
            if (ks * 16 >= D) break;
            // A: the row tile's q (matrices: rows 0-7 / 8-15 x dims +0 / +8); B: K of positions
            // 0-7 then 8-15 (dims +0, +8 each): b[2 nt], b[2 nt + 1] for position tile nt.
            unsigned ah[4];
            [[maybe_unused]] unsigned al[4];
            ldmatrix_x4(ah, q_hi_lane ^ (2 * ks << 4));
            if constexpr (!kFold) ldmatrix_x4(al, q_lo_lane ^ (2 * ks << 4));
#pragma unroll
            for (int sub = 0; sub < kSubs; ++sub) {
              unsigned kb[4];
              ldmatrix_x4(kb, row_lane(k_s, s0 + sub * 16 + k_row, k_piece) ^ (2 * ks << 4));
#pragma unroll
              for (int nt = 0; nt < 2; ++nt) {
                if constexpr (kFold) {
                  mma<T>(ks % 2 ? sc_lo[sub][nt] : sc[sub][nt], ah, kb[2 * nt], kb[2 * nt + 1]);
                } else {
                  mma<T>(sc[sub][nt], ah, kb[2 * nt], kb[2 * nt + 1]);
                  mma<T>(sc[sub][nt], al, kb[2 * nt], kb[2 * nt + 1]);
                }
              }
            }
          }
        }
        constexpr int kLaneRows = kFold ? 2 : 4;  // score entries a lane softmaxes: row g (+ g + 8)
        if constexpr (kFold) {
#pragma unroll
          for (int sub = 0; sub < kSubs; ++sub)
#pragma unroll
            for (int nt = 0; nt < 2; ++nt) {
#pragma unroll
              for (int e = 0; e < 4; ++e) sc[sub][nt][e] += sc_lo[sub][nt][e];
              sc[sub][nt][0] += sc[sub][nt][2], sc[sub][nt][1] += sc[sub][nt][3];
            }
        }
        // The causal mask and the way's end, only where some position is past a row's last
        // (the diagonal's tiles, a context's last): the others need none.
        if (p0 + s0 + 16 * kSubs - 1 > warp_limit || p0 + s0 + 16 * kSubs > way_end) {
#pragma unroll
          for (int sub = 0; sub < kSubs; ++sub)
#pragma unroll
            for (int nt = 0; nt < 2; ++nt)
#pragma unroll
              for (int e = 0; e < kLaneRows; ++e) {
                const int p = p0 + s0 + sub * 16 + nt * 8 + 2 * tq + (e & 1);
                if (p > (e < 2 ? limit_a : limit_b) || p >= way_end) sc[sub][nt][e] = -INFINITY;
              }
        }
        // The online softmax per row (the 4 lanes of a row agree), over unscaled scores: exp2
        // takes score x scale2 less the max x scale2 in one FMA.
        float mx_a = -INFINITY, mx_b = -INFINITY;
#pragma unroll
        for (int sub = 0; sub < kSubs; ++sub)
#pragma unroll
          for (int nt = 0; nt < 2; ++nt)
#pragma unroll
            for (int e = 0; e < kLaneRows; ++e) {
              if (e < 2) mx_a = fmaxf(mx_a, sc[sub][nt][e]);
              else mx_b = fmaxf(mx_b, sc[sub][nt][e]);
            }
#pragma unroll
        for (int o2 = 1; o2 < 4; o2 *= 2) {
          mx_a = fmaxf(mx_a, __shfl_xor_sync(0xffffffffu, mx_a, o2));
          if constexpr (!kFold) mx_b = fmaxf(mx_b, __shfl_xor_sync(0xffffffffu, mx_b, o2));
        }
        const float new_a = fmaxf(m_a, mx_a), new_b = fmaxf(m_b, mx_b);
        // Nothing visible yet (-inf): keep everything at 0 rather than exp2(-inf - -inf); a row's
        // first visible scores rescale its zeros by exp2(-inf) = 0.
        const float c_a = new_a == -INFINITY ? 1.0f : fast_exp2((m_a - new_a) * scale2);
        // Folded, rows g + 8 of the output are row g's low parts: the same rescale, and m_b stays
        // -inf (the merge below then takes nothing from them).
        const float c_b = kFold ? c_a : new_b == -INFINITY ? 1.0f : fast_exp2((m_b - new_b) * scale2);
        m_a = new_a;
        if constexpr (!kFold) m_b = new_b;
        // A row with nothing visible has only -inf scores: any finite max gives them 0.
        const float ms_a = new_a == -INFINITY ? 0.0f : new_a * scale2;
        const float ms_b = new_b == -INFINITY ? 0.0f : new_b * scale2;
        float pr[kSubs][2][4];
        l_a *= c_a, l_b *= c_b;
#pragma unroll
        for (int sub = 0; sub < kSubs; ++sub)
#pragma unroll
          for (int nt = 0; nt < 2; ++nt)
#pragma unroll
            for (int e = 0; e < kLaneRows; ++e) {
              const float p = fast_exp2(fmaf(sc[sub][nt][e], scale2, e < 2 ? -ms_a : -ms_b));
              pr[sub][nt][e] = p;
              if (e < 2) l_a += p;
              else l_b += p;
            }
        // Rescale the output only when some row's max moved (c = 1 exactly otherwise): past the
        // first positions it rarely does, and it is kMaxD / 2 multiplications a lane.
        if (__any_sync(0xffffffffu, c_a != 1.0f || c_b != 1.0f)) {
#pragma unroll
          for (int n = 0; n < kDTiles; ++n) o[n][0] *= c_a, o[n][1] *= c_a, o[n][2] *= c_b, o[n][3] *= c_b;
        }
        // The probabilities as A fragments (16 rows x 16 positions each), high and low parts
        // (folded: one fragment, row g high, row g + 8 low).
        unsigned ph[kSubs][4];
        [[maybe_unused]] unsigned pl[kSubs][4];
#pragma unroll
        for (int sub = 0; sub < kSubs; ++sub) {
          const float(&r)[2][4] = pr[sub];
          if constexpr (kFold) {
            split_x2<T>(r[0][0], r[0][1], ph[sub][0], ph[sub][1]);
            split_x2<T>(r[1][0], r[1][1], ph[sub][2], ph[sub][3]);
          } else {
            split_x2<T>(r[0][0], r[0][1], ph[sub][0], pl[sub][0]);
            split_x2<T>(r[0][2], r[0][3], ph[sub][1], pl[sub][1]);
            split_x2<T>(r[1][0], r[1][1], ph[sub][2], pl[sub][2]);
            split_x2<T>(r[1][2], r[1][3], ph[sub][3], pl[sub][3]);
          }
        }
        if constexpr (kFp8) {
          // B: V of a 16-dim piece transposed: vr[2 h] positions 0-7, vr[2 h + 1] 8-15 of piece
          // n / 2 + h, its even dims to o[n + 2 h], its odd ones to o[n + 2 h + 1].
#pragma unroll
          for (int n = 0; n < kDTiles; n += 4) {
            if (n * 8 >= D) break;
            const bool pair = (n + 2) * 8 < D;
#pragma unroll
            for (int sub = 0; sub < kSubs; ++sub) {
              unsigned vr[4];
              const unsigned v_at = row_lane(v_s, s0 + sub * 16 + v_row, v_piece) ^ (n / 2 << 4);
              if (pair) ldmatrix_x4_trans(vr, v_at);
              else ldmatrix_x2_trans(vr[0], vr[1], v_at);
#pragma unroll
              for (int h = 0; h < 2; ++h) {
                if (h == 1 && !pair) break;
#pragma unroll
                for (int odd = 0; odd < 2; ++odd) {
                  const unsigned pick = odd ? 0x0031 : 0x0020;  // bytes 1, 3 or 0, 2: one dim, 2 positions
                  const unsigned b0 = fp8x2_to_half2<C>(__byte_perm(vr[2 * h], 0, pick));
                  const unsigned b1 = fp8x2_to_half2<C>(__byte_perm(vr[2 * h + 1], 0, pick));
                  mma<T>(o[n + 2 * h + odd], ph[sub], b0, b1);
                  if constexpr (!kFold) mma<T>(o[n + 2 * h + odd], pl[sub], b0, b1);
                }
              }
            }
          }
        } else {
          // B: V[position][dim] transposed, positions 0-7 / 8-15 of dims 8 n .. 8 n + 7, two dim
          // tiles a load (the last alone when D / 8 is odd).
#pragma unroll
          for (int n = 0; n < kDTiles; n += 2) {
            if (n * 8 >= D) break;
#pragma unroll
            for (int sub = 0; sub < kSubs; ++sub) {
              const unsigned v_at = row_lane(v_s, s0 + sub * 16 + v_row, v_piece) ^ (n << 4);
              if ((n + 1) * 8 < D) {
                unsigned vb[4];
                ldmatrix_x4_trans(vb, v_at);
                mma<T>(o[n], ph[sub], vb[0], vb[1]);
                if constexpr (!kFold) mma<T>(o[n], pl[sub], vb[0], vb[1]);
                mma<T>(o[n + 1], ph[sub], vb[2], vb[3]);
                if constexpr (!kFold) mma<T>(o[n + 1], pl[sub], vb[2], vb[3]);
              } else {
                unsigned b0, b1;
                ldmatrix_x2_trans(b0, b1, v_at);
                mma<T>(o[n], ph[sub], b0, b1);
                if constexpr (!kFold) mma<T>(o[n], pl[sub], b0, b1);
              }
            }
          }
        }
      };
      if (p0 + s0 < way_end) {
        if constexpr (kSub == 4) {
          if (span == 64) step.template operator()<4>();
          else if (span == 32) step.template operator()<2>();
          else step.template operator()<1>();
        } else {
          step.template operator()<1>();  // decode: a row tile, 4 ways of 16 positions
        }
      }
      if (ahead) rows_s[stage][tid] = tile_row(entry_ahead, p_slot, bs, row, head_offset);
      __syncthreads();  // the next stage's copy overwrites this tile
    }

    // Merge the ways (in way order: deterministic) into acc_s, over the K/V tiles (the loop ended
    // on a barrier and every copy has landed). Folded, row g's high and low parts sum first. The
    // maxima from here on are in the scaled scores' log2 units, as exp2 took them.
    m_a *= scale2, m_b *= scale2;
    if constexpr (kFold) {
#pragma unroll
      for (int n = 0; n < kDTiles; ++n) o[n][0] += o[n][2], o[n][1] += o[n][3];
    }
#pragma unroll
    for (int o2 = 1; o2 < 4; o2 *= 2) {
      l_a += __shfl_xor_sync(0xffffffffu, l_a, o2);
      l_b += __shfl_xor_sync(0xffffffffu, l_b, o2);
    }
    if (tq == 0) {
      m_s[warp][g] = m_a, m_s[warp][g + 8] = m_b;
      l_s[warp][g] = l_a, l_s[warp][g + 8] = l_b;
    }
    __syncthreads();
    float big_a = -INFINITY, big_b = -INFINITY;
    for (int w = my_tile; w < kWarps; w += row_tiles)
      big_a = fmaxf(big_a, m_s[w][g]), big_b = fmaxf(big_b, m_s[w][g + 8]);
    float sum_a = 0.0f, sum_b = 0.0f;
    for (int w = my_tile; w < kWarps; w += row_tiles) {
      if (m_s[w][g] != -INFINITY) sum_a += l_s[w][g] * exp2f(m_s[w][g] - big_a);
      if (m_s[w][g + 8] != -INFINITY) sum_b += l_s[w][g + 8] * exp2f(m_s[w][g + 8] - big_b);
    }
    const float f_a = m_a == -INFINITY ? 0.0f : exp2f(m_a - big_a);
    const float f_b = m_b == -INFINITY ? 0.0f : exp2f(m_b - big_b);
    if (my_way == 0 && tq == 0) {
      row_m_s[row_a] = big_a, row_m_s[row_b] = big_b;
      row_l_s[row_a] = sum_a, row_l_s[row_b] = sum_b;
    }
    for (int w = 0; w < ways; ++w) {
      if (my_way == w) {
#pragma unroll
        for (int n = 0; n < kDTiles; ++n) {
          // This lane's two columns of dim tile n: dims 8 n + 2 tq, +1; with an fp8 cache 16 (n /
          // 2) + 4 tq + n % 2, +2 (see the fp8 V loads).
          const int col = kFp8 ? 16 * (n / 2) + 4 * tq + n % 2 : n * 8 + 2 * tq, next = kFp8 ? 2 : 1;
          float* a = acc_s + row_a * S::kAccStride + col;
          float* b = acc_s + row_b * S::kAccStride + col;
          if (w == 0) {
            a[0] = f_a * o[n][0], a[next] = f_a * o[n][1], b[0] = f_b * o[n][2], b[next] = f_b * o[n][3];
          } else {
            a[0] += f_a * o[n][0], a[next] += f_a * o[n][1], b[0] += f_b * o[n][2], b[next] += f_b * o[n][3];
          }
        }
      }
      __syncthreads();
    }
    for (int r = warp; r < rows; r += kWarps) {  // as q came in: a warp a row
      const int j = r / static_cast<int>(hc), i = r % static_cast<int>(hc);
      if (i >= nh) continue;
      const std::int64_t th = (run + j) * heads + h0 + i;
      const float* a = acc_s + r * S::kAccStride;
      if (gridDim.z == 1) {
        const float inv = 1.0f / row_l_s[r];
        for (int d = lane; d < D; d += kWarp) out[th * D + d] = a[d] * inv;
      } else {  // partial[(t, h, split)] = {max (natural log), sum, acc[D]}; an empty split has sum 0
        float* ph = partial + (th * gridDim.z + blockIdx.z) * partial_stride(D);
        if (lane == 0) ph[D] = row_m_s[r] / kLog2e, ph[D + 1] = row_l_s[r];
        for (int d = lane; d < D; d += kWarp) ph[d] = a[d];
      }
    }
    __syncthreads();  // the next run rewrites q, the limits and the tiles
  }
  // Splits only at decode (tile_tokens 1): one token, heads h0 .. h0 + nh.
  if (gridDim.z > 1)
    merge_splits_if_last(partial, counters + t_begin * gridDim.y + blockIdx.y, t_begin * heads + h0, nh, D,
                         reinterpret_cast<float*>(smem), out);
}

template <typename T, typename C, int kMaxD, int kRows, bool kFold, int kSub, int kD>
auto allow_smem() {
  constexpr auto kernel = tensor_core_attention_kernel<T, C, kMaxD, kRows, kFold, kSub, kD>;
  static const bool allowed = [] {
    LS_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       static_cast<int>(Smem<kMaxD, kRows, sizeof(C)>::kBytes)));
    LS_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                                       static_cast<int>(cudaSharedmemCarveoutMaxShared)));
    return true;
  }();
  (void)allowed;
  return kernel;
}

}  // namespace

bool tensor_core_attention_supports(const GpuContext& ctx, std::int64_t head_dim, bool fp8_cache) {
  const std::size_t smem = fp8_cache        ? Smem<128, kRunRows, 1>::kBytes
                           : head_dim <= 64 ? Smem<64, kRunRows>::kBytes
                                            : Smem<128, kRunRows>::kBytes;
  return head_dim > 0 && head_dim <= 128 && head_dim % (fp8_cache ? 16 : 8) == 0 && ctx.compute_capability() >= 80 &&
         ctx.max_block_shared_memory() >= smem;
}

template <KvCacheElement W>
void tensor_core_attention(GpuContext& ctx, const float* q, const W* k_cache, const W* v_cache,
                           std::int64_t tokens, std::int64_t heads, std::int64_t kv_heads, std::int64_t head_dim,
                           std::int64_t block_size, const int* seq_of, const int* pos, const int* block_tables,
                           std::int64_t max_blocks, float scale, float* out, std::int64_t max_context,
                           std::int64_t query_run, int splits_wanted) {
  constexpr bool kFp8 = Fp8<W>;
  LS_CHECK(tensor_core_attention_supports(ctx, head_dim, kFp8),
           "tensor_core_attention: head_dim " << head_dim << (kFp8 ? " with an fp8 cache" : "")
                                              << " or this GPU is not supported");
  if (tokens == 0) return;
  const std::int64_t group = heads / kv_heads, hc = std::min<std::int64_t>(group, kHeadChunk);
  const std::int64_t head_blocks = kv_heads * ((group + hc - 1) / hc);
  const int tile_tokens = query_run > 1 ? static_cast<int>(kRunRows / hc) : 1;
  const std::int64_t tiles = (tokens + tile_tokens - 1) / tile_tokens;
  // Decode: split each context while the grid fits 2 blocks an SM (there is room for 3 at 72 KB of
  // shared memory, but more splits measured slower: batch 256 x 1536 positions, 1 / 2 / 3 / 4
  // splits: 323 / 369 / 391 / 428 us on an H200), a split at least 2 tiles long.
  int splits = 1;
  if (tile_tokens == 1 && splits_wanted > 0) {
    splits = std::min(splits_wanted, kMaxSplits);
  } else if (tile_tokens == 1) {
    const std::int64_t context = max_context > 0 ? max_context : max_blocks * block_size;
    const std::int64_t wanted = static_cast<std::int64_t>(ctx.sm_count()) * 2 / (tokens * head_blocks);
    splits = static_cast<int>(
        std::clamp<std::int64_t>(std::min(wanted, (context + 2 * kPositions - 1) / (2 * kPositions)), 1, kMaxSplits));
  }
  const SplitScratch scratch = split_scratch(ctx, tokens, heads, head_blocks, head_dim, splits);
  const dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>(head_blocks), static_cast<unsigned>(splits));
  using C = device_t<W>;
  using T = std::conditional_t<kFp8, __half, C>;  // the MMA's type
  auto attend = [&](auto kernel, std::size_t smem) {
    launch_with_smem(ctx, kernel, grid, kThreads, smem, q, on_device(k_cache), on_device(v_cache),
                     static_cast<int>(head_dim), tokens, heads, kv_heads, block_size, seq_of, pos, block_tables,
                     max_blocks, scale, tile_tokens, out, scratch.partial, scratch.counters);
  };
  // head_dim a row's whole width (64 or 128, every R1 model's) is a compile-time constant: its
  // bounds checks and the branches between one and two dim steps a load fold away.
  auto attend_as = [&]<int kRows, bool kFold, int kSub>() {
    auto with_width = [&]<int kMaxD, int kCacheElem>() {
      using S = Smem<kMaxD, kRows, kCacheElem>;
      if (head_dim == kMaxD) attend(allow_smem<T, C, kMaxD, kRows, kFold, kSub, kMaxD>(), S::kBytes);
      else attend(allow_smem<T, C, kMaxD, kRows, kFold, kSub, 0>(), S::kBytes);
    };
    if constexpr (kFp8) with_width.template operator()<128, 1>();
    else if (head_dim <= 64) with_width.template operator()<64, 2>();
    else with_width.template operator()<128, 2>();
  };
  if (tile_tokens > 1) attend_as.template operator()<kRunRows, false, kPrefillSub>();  // a whole tile a softmax step
  else if (hc <= 8) attend_as.template operator()<kDecodeRows, true, 1>();  // decode, 8 heads or fewer: folded
  else attend_as.template operator()<kDecodeRows, false, 1>();  // decode: a token's heads, 16 rows at most
}

#define LOCKSTEP_TENSOR_CORE_ATTENTION(C)                                                                       \
  template void tensor_core_attention<C>(GpuContext&, const float*, const C*, const C*, std::int64_t, std::int64_t,   \
                                         std::int64_t, std::int64_t, std::int64_t, const int*, const int*, const int*, \
                                         std::int64_t, float, float*, std::int64_t, std::int64_t, int);
LOCKSTEP_TENSOR_CORE_ATTENTION(bf16)
LOCKSTEP_TENSOR_CORE_ATTENTION(fp16)
LOCKSTEP_TENSOR_CORE_ATTENTION(fp8_e4m3)
LOCKSTEP_TENSOR_CORE_ATTENTION(fp8_e5m2)
#undef LOCKSTEP_TENSOR_CORE_ATTENTION

}  // namespace lockstep::cuda
