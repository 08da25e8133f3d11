// Paged KV-cache blocks for the engine: allocation per sequence, prefix caching (a full
// block is identified by the hash of its tokens and of every block before it; hits are
// shared by reference count), LRU eviction of cached blocks nobody uses, and the usage and
// hit-rate figures /metrics reports. Rank 0 owns it; the block ids travel in the step plan.
#pragma once

#include <cstdint>
#include <list>
#include <optional>
#include <unordered_map>
#include <vector>

namespace lockstep {

class BlockManager {
 public:
  BlockManager(int num_blocks, int block_size, bool enable_prefix_caching);

  int block_size() const { return block_size_; }
  int num_blocks() const { return num_blocks_; }
  int free_blocks() const;  // never used + cached but unreferenced (evictable)
  double usage() const { return 1.0 - static_cast<double>(free_blocks()) / num_blocks_; }

  // For a new sequence: the longest run of cached full blocks matching the start of
  // `tokens`, referenced for this sequence. At least one token is always left to compute.
  // Returns the number of tokens covered.
  int acquire_cached_prefix(const std::vector<int>& tokens, std::vector<int>& blocks);

  // Grows `blocks` to hold `total_tokens` tokens. False (nothing changed) when too few
  // blocks are free: the scheduler then preempts.
  bool ensure_capacity(std::vector<int>& blocks, int total_tokens);
  bool can_hold(const std::vector<int>& blocks, int total_tokens) const;

  // How far a sequence's full blocks are registered: their count and the chain hash through the
  // last of them, so that each step hashes only its newly full blocks (rehashing the whole
  // context took ~1 ms a step at 256 sequences of 1.5k tokens).
  struct Registered {
    int blocks = 0;
    std::uint64_t chain = 0;
  };
  // After tokens[0, computed) are in the cache: records the hashes of newly full blocks.
  void register_full_blocks(const std::vector<int>& tokens, int computed, const std::vector<int>& blocks,
                            Registered& registered);

  // Drops a sequence's references; cached blocks stay reusable until evicted.
  void release(std::vector<int>& blocks);

  // Prefix-cache statistics: tokens looked up vs tokens found cached.
  std::uint64_t prefix_queries() const { return queried_tokens_; }
  std::uint64_t prefix_hits() const { return hit_tokens_; }
  double prefix_hit_rate() const { return queried_tokens_ ? static_cast<double>(hit_tokens_) / queried_tokens_ : 0.0; }

  // Consistency check for tests: every block is free, evictable or referenced, exactly once.
  bool consistent() const;
  int referenced_blocks() const;

 private:
  std::optional<int> take_block();
  static std::uint64_t chain_hash(std::uint64_t parent, const int* tokens, int n);

  struct Block {
    int ref = 0;
    std::optional<std::uint64_t> hash;
    std::list<int>::iterator lru_pos;
    bool in_lru = false;
  };
  int num_blocks_, block_size_;
  bool prefix_caching_;
  std::vector<Block> blocks_;
  std::vector<int> never_used_;                       // stack of blocks with no cached content
  std::list<int> lru_;                                // unreferenced cached blocks, oldest first
  std::unordered_map<std::uint64_t, int> by_hash_;    // full-block hash -> block
  std::uint64_t queried_tokens_ = 0, hit_tokens_ = 0;
};

}  // namespace lockstep
