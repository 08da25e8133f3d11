// BlockManager (see block_manager.h).
#include "app/engine/block_manager.h"

#include "kernels/fatal.h"

namespace lockstep {

BlockManager::BlockManager(int num_blocks, int block_size, bool enable_prefix_caching)
    : num_blocks_(num_blocks), block_size_(block_size), prefix_caching_(enable_prefix_caching), blocks_(num_blocks) {
  LS_CHECK(num_blocks > 0 && block_size > 0, "KV cache needs blocks (" << num_blocks << " x " << block_size << ")");
  for (int b = num_blocks - 1; b >= 0; --b) never_used_.push_back(b);
}

int BlockManager::free_blocks() const { return static_cast<int>(never_used_.size() + lru_.size()); }

std::uint64_t BlockManager::chain_hash(std::uint64_t parent, const int* tokens, int n) {
  std::uint64_t h = parent ^ 0x9E3779B97F4A7C15ull;
  for (int i = 0; i < n; ++i) {
    h ^= static_cast<std::uint64_t>(static_cast<std::uint32_t>(tokens[i])) + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    h *= 0xBF58476D1CE4E5B9ull;
  }
  return h ^ (h >> 31);
}

std::optional<int> BlockManager::take_block() {
  if (!never_used_.empty()) {
    const int b = never_used_.back();
    never_used_.pop_back();
    return b;
  }
  if (lru_.empty()) return std::nullopt;
  const int b = lru_.front();  // evict the least recently used cached block
  lru_.pop_front();
  blocks_[b].in_lru = false;
  if (blocks_[b].hash) by_hash_.erase(*blocks_[b].hash);
  blocks_[b].hash.reset();
  return b;
}

int BlockManager::acquire_cached_prefix(const std::vector<int>& tokens, std::vector<int>& blocks) {
  LS_CHECK(blocks.empty(), "acquire_cached_prefix on a sequence that already has blocks");
  if (!prefix_caching_) return 0;
  queried_tokens_ += tokens.size();
  const int max_full = (static_cast<int>(tokens.size()) - 1) / block_size_;  // keep >= 1 token to compute
  std::uint64_t h = 0;
  for (int i = 0; i < max_full; ++i) {
    h = chain_hash(h, tokens.data() + i * block_size_, block_size_);
    const auto it = by_hash_.find(h);
    if (it == by_hash_.end()) break;
    Block& blk = blocks_[it->second];
    if (blk.in_lru) {
      lru_.erase(blk.lru_pos);
      blk.in_lru = false;
    }
    ++blk.ref;
    blocks.push_back(it->second);
  }
  const int covered = static_cast<int>(blocks.size()) * block_size_;
  hit_tokens_ += covered;
  return covered;
}

bool BlockManager::can_hold(const std::vector<int>& blocks, int total_tokens) const {
  const int need = (total_tokens + block_size_ - 1) / block_size_ - static_cast<int>(blocks.size());
  return need <= free_blocks();
}

bool BlockManager::ensure_capacity(std::vector<int>& blocks, int total_tokens) {
  if (!can_hold(blocks, total_tokens)) return false;
  while (static_cast<int>(blocks.size()) * block_size_ < total_tokens) {
    const auto b = take_block();
    LS_CHECK(b.has_value(), "free block count and free lists disagree");
    blocks_[*b].ref = 1;
    blocks.push_back(*b);
  }
  return true;
}

void BlockManager::register_full_blocks(const std::vector<int>& tokens, int computed, const std::vector<int>& blocks,
                                        Registered& registered) {
  if (!prefix_caching_) return;
  const int full = std::min<int>(computed / block_size_, static_cast<int>(blocks.size()));
  std::uint64_t h = registered.chain;
  for (int i = registered.blocks; i < full; ++i) {
    h = chain_hash(h, tokens.data() + i * block_size_, block_size_);
    Block& blk = blocks_[blocks[i]];
    if (!blk.hash && !by_hash_.count(h)) {
      blk.hash = h;
      by_hash_[h] = blocks[i];
    }
  }
  if (full > registered.blocks) registered = {full, h};
}

void BlockManager::release(std::vector<int>& blocks) {
  // Release in reverse so a sequence's tail is evicted before its (more shareable) head.
  for (auto it = blocks.rbegin(); it != blocks.rend(); ++it) {
    Block& blk = blocks_[*it];
    LS_CHECK(blk.ref > 0, "double release of block " << *it);
    if (--blk.ref > 0) continue;
    if (blk.hash) {
      lru_.push_back(*it);
      blk.lru_pos = std::prev(lru_.end());
      blk.in_lru = true;
    } else {
      never_used_.push_back(*it);
    }
  }
  blocks.clear();
}

int BlockManager::referenced_blocks() const {
  int n = 0;
  for (const Block& b : blocks_) n += b.ref > 0;
  return n;
}

bool BlockManager::consistent() const {
  std::vector<int> seen(num_blocks_, 0);
  for (int b : never_used_) ++seen[b];
  for (int b : lru_) ++seen[b];
  for (int b = 0; b < num_blocks_; ++b) {
    if (blocks_[b].ref > 0) ++seen[b];
    if (seen[b] != 1) return false;
    if (blocks_[b].in_lru != (blocks_[b].ref == 0 && blocks_[b].hash.has_value())) return false;
  }
  for (const auto& [h, b] : by_hash_)
    if (!blocks_[b].hash || *blocks_[b].hash != h) return false;
  return true;
}

}  // namespace lockstep
