// The shared-memory side of tensor_core_attention.cu: its block shape, the swizzled layout of the
// K/V tiles and q rows (Smem), and how a tile's K and V rows are found in the paged cache and
// copied in (StageLayout, stage_kv, slot_position, tile_row). Included by that file only.
#pragma once

#include <cuda_pipeline.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/split_kv_merge.cuh"

namespace lockstep::cuda::tc_attention {

constexpr int kThreads = 128, kWarps = kThreads / kWarp;
constexpr int kRunRows = 64;     // query rows of a prefill block: 4 row tiles of 16
constexpr int kDecodeRows = 16;  // of a decode block (one token): a row tile
constexpr int kHeadChunk = 16;   // query heads of one KV head per block
static_assert(kHeadChunk <= kDecodeRows, "a decode block's heads fit its rows");
constexpr int kPositions = 64;   // K/V positions per shared-memory tile

// Shared memory: K and V tiles for 2 stages, then q split in high and low parts, all in rows of
// kMaxD 16-bit elements whose 16-byte pieces are XOR-swizzled by the row (piece c of row r sits at
// c ^ (r % 8)): an ldmatrix reads 8 rows at one logical piece, which land in 8 different bank
// groups instead of all in one (rows are 128 or 256 bytes apart), without a pad a row.
// kCacheElem: the bytes of a cached value (2, or 1 for fp8), the tiles' element; q is 16-bit.
constexpr int kAlign = 256;  // of the dynamic shared memory's tiles and q rows (Smem)

template <int kMaxD, int kRows, int kCacheElem = 2>
struct Smem {
  static constexpr int kPer = 16 / kCacheElem;  // tile elements a 16-byte piece
  static_assert(kMaxD / kPer >= 8, "8 pieces or more a row: the swizzle stays within the row");
  static constexpr int kTileElems = kPositions * kMaxD;
  static constexpr int kQElems = kRows * kMaxD;
  // After the tiles: the ways' summed acc, kRows rows of kMaxD + 4 floats, over the K/V area
  // (which is made big enough for it, and for the split merge's weights).
  static constexpr int kAccStride = kMaxD + 4;
  static constexpr std::size_t kKvBytes =
      (std::max({std::size_t{4} * kTileElems * kCacheElem, kRows * kAccStride * sizeof(float),
                 kHeadChunk * kMaxSplits * sizeof(float)}) + kAlign - 1) / kAlign * kAlign;
  // The area starts kAlign-aligned (up to kAlign bytes in): every row of a tile or of q then
  // starts on a multiple of its width (128 or 256 bytes), so that a lane's address of piece p ^ s
  // is its address of piece s with p XORed in (see row_lane).
  static constexpr std::size_t kBytes = kAlign + kKvBytes + 2 * kQElems * sizeof(std::uint16_t);
  // Element (r, col) of a row of kMaxD elements of kPer a piece: a tile (kPer of the cache) or
  // the q area (kPer 8).
  template <int kElemsAPiece = 8>
  __device__ static int at(int r, int col) {
    return r * kMaxD + (((col / kElemsAPiece) ^ (r & 7)) * kElemsAPiece) + col % kElemsAPiece;
  }
};

// q's dims in the order an fp8 K tile's k indices come in (see tensor_core_attention.cu's top):
// within a 16-dim step, dim 4 a + b goes to column 2 a + b (b < 2) or 8 + 2 a + b - 2.
__device__ __forceinline__ int fp8_k_column(int d) {
  const int a = (d & 15) >> 2, b = d & 3;
  return (d & ~15) + (b < 2 ? 2 * a + b : 8 + 2 * a + b - 2);
}

// Which 16-byte piece of which tile rows a thread copies: D / 8 pieces a row, kThreads / (D / 8)
// rows side by side, so that consecutive threads read consecutive 16 bytes of a row and a warp's
// copies fill whole 32-byte sectors (with a thread a row, every sector took two 16-byte
// requests: at decode, where copying is all the kernel waits on, the kernel ran at 0.38 of copy).
struct StageLayout {
  int piece, row0, rows_per_pass;  // row0 >= rows_per_pass: this thread copies nothing
  __device__ explicit StageLayout(int pieces)  // 16-byte pieces a row: D / 8 (16-bit), D / 16 (fp8)
      : piece(threadIdx.x % pieces), row0(threadIdx.x / pieces), rows_per_pass(kThreads / pieces) {}
};

// A tile's K and V rows (head kvh) into the stage's tiles, D C a row in 16-byte copies (D a
// multiple of 16 bytes), from where the tile's rows start in the caches (rows[r]: position p0 + r,
// see tile_row).
template <typename C, int kMaxD, int kRows>
__device__ void stage_kv(C* k_s, C* v_s, const C* k_cache, const C* v_cache, const StageLayout& layout,
                         const std::int64_t* rows) {
  using S = Smem<kMaxD, kRows, sizeof(C)>;
  const int c = layout.piece * S::kPer;
  for (int r = layout.row0; r < kPositions && layout.row0 < layout.rows_per_pass; r += layout.rows_per_pass) {
    const std::int64_t offset = rows[r] + c;
    const int to = S::template at<S::kPer>(r, c);
    __pipeline_memcpy_async(k_s + to, k_cache + offset, 16);
    __pipeline_memcpy_async(v_s + to, v_cache + offset, 16);
  }
  __pipeline_commit();
}

// The cache slot of position p (< end) from its block-table entry; positions from `end` on take
// `begin`'s slot instead: finite values whose probability is 0, where stale or unwritten shared
// memory could hold NaNs. A tile's 64 slots are worked out once, a thread a position, a tile
// ahead of their copies (each of the copying threads used to look up every row it copied: a
// block-table load, a division and a remainder per row, most of a tile's instructions at decode,
// where the kernel is bound by instruction issue on few warps).
__device__ __forceinline__ int slot_position(int p, int begin, int end) { return p < end ? p : begin; }
// Where position p's K (or V) row of this block's KV head starts in the cache: slot x (elements a
// slot) + the head's offset, worked out with the slot (a 64-bit multiply less per copy).
__device__ __forceinline__ std::int64_t tile_row(int entry, int p, int block_size, std::int64_t slot_elems,
                                                 std::int64_t head_offset) {
  return (static_cast<std::int64_t>(entry) * block_size + p % block_size) * slot_elems + head_offset;
}

}  // namespace lockstep::cuda::tc_attention
