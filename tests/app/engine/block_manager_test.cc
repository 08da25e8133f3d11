// Block allocation, prefix reuse by reference count, LRU eviction of cached blocks, and the
// books balancing after every release.
#include "app/engine/block_manager.h"

#include <gtest/gtest.h>

#include <numeric>

namespace lockstep {
namespace {

std::vector<int> tokens(int n, int base = 0) {
  std::vector<int> t(n);
  std::iota(t.begin(), t.end(), base);
  return t;
}

TEST(BlockManager, AllocatesAndReleases) {
  BlockManager bm(8, 4, false);
  std::vector<int> a;
  ASSERT_TRUE(bm.ensure_capacity(a, 9));  // 3 blocks
  EXPECT_EQ(a.size(), 3u);
  EXPECT_EQ(bm.free_blocks(), 5);
  EXPECT_FALSE(bm.can_hold(a, 4 * 9));
  std::vector<int> b;
  EXPECT_FALSE(bm.ensure_capacity(b, 4 * 6));  // 6 > 5 free: nothing taken
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(bm.free_blocks(), 5);
  bm.release(a);
  EXPECT_EQ(bm.free_blocks(), 8);
  EXPECT_TRUE(bm.consistent());
}

TEST(BlockManager, SharesCachedPrefixBlocks) {
  BlockManager bm(16, 4, true);
  const std::vector<int> prompt = tokens(10);  // 2 full blocks + 2 tokens
  std::vector<int> a;
  BlockManager::Registered reg_a;
  EXPECT_EQ(bm.acquire_cached_prefix(prompt, a), 0);  // cold cache
  ASSERT_TRUE(bm.ensure_capacity(a, 10));
  bm.register_full_blocks(prompt, 10, a, reg_a);
  EXPECT_EQ(reg_a.blocks, 2);

  std::vector<int> b;
  EXPECT_EQ(bm.acquire_cached_prefix(prompt, b), 8);  // both full blocks reused
  EXPECT_EQ(b[0], a[0]);
  EXPECT_EQ(b[1], a[1]);
  EXPECT_EQ(bm.referenced_blocks(), 3);  // shared blocks count once
  EXPECT_NEAR(bm.prefix_hit_rate(), 8.0 / 20.0, 1e-12);

  // A prompt that is exactly 2 blocks still leaves its last token to compute.
  std::vector<int> c;
  EXPECT_EQ(bm.acquire_cached_prefix(tokens(8), c), 4);
  // A different second block stops the match after the first.
  std::vector<int> d;
  std::vector<int> other = prompt;
  other[5] = 99;
  EXPECT_EQ(bm.acquire_cached_prefix(other, d), 4);
  for (auto* v : {&a, &b, &c, &d}) bm.release(*v);
  EXPECT_EQ(bm.free_blocks(), 16);
  EXPECT_TRUE(bm.consistent());
}

// A sequence registered a step at a time (decode) chains each new block's hash onto the last
// registered one: the blocks match a prompt with the same tokens exactly as when registered at once.
TEST(BlockManager, RegistersBlocksIncrementallyAsOneChain) {
  BlockManager bm(16, 4, true);
  const std::vector<int> text = tokens(13);  // 3 full blocks + 1 token
  std::vector<int> a;
  BlockManager::Registered reg;
  ASSERT_TRUE(bm.ensure_capacity(a, 13));
  for (int computed : {3, 5, 5, 9, 13}) {  // a step at a time; 5 twice: nothing new the second time
    bm.register_full_blocks(text, computed, a, reg);
    EXPECT_EQ(reg.blocks, computed / 4);
  }
  std::vector<int> b;
  EXPECT_EQ(bm.acquire_cached_prefix(text, b), 12);  // all 3 full blocks found, in chain order
  for (int i = 0; i < 3; ++i) EXPECT_EQ(b[i], a[i]);
  // A prompt that differs only in the third block matches the first two.
  std::vector<int> c, other = text;
  other[9] = 99;
  EXPECT_EQ(bm.acquire_cached_prefix(other, c), 8);
  for (auto* v : {&a, &b, &c}) bm.release(*v);
  EXPECT_TRUE(bm.consistent());
}

TEST(BlockManager, EvictsLeastRecentlyUsedCachedBlocks) {
  BlockManager bm(4, 2, true);
  std::vector<int> a, b;
  BlockManager::Registered ra, rb;
  const auto pa = tokens(3, 0), pb = tokens(3, 100);
  ASSERT_TRUE(bm.ensure_capacity(a, 3));
  bm.register_full_blocks(pa, 3, a, ra);
  bm.release(a);  // a's full block stays cached (evictable)
  ASSERT_TRUE(bm.ensure_capacity(b, 3));
  bm.register_full_blocks(pb, 3, b, rb);
  bm.release(b);
  EXPECT_EQ(bm.free_blocks(), 4);
  std::vector<int> big;
  ASSERT_TRUE(bm.ensure_capacity(big, 7));  // needs all 4: both cached blocks are evicted
  bm.release(big);
  std::vector<int> again;
  EXPECT_EQ(bm.acquire_cached_prefix(pa, again), 0);  // evicted
  EXPECT_TRUE(bm.consistent());
}

}  // namespace
}  // namespace lockstep
