// commbench's size parsing and sweeps, and nccl-tests' count and bandwidth rules.
#include <gtest/gtest.h>

#include "app/commbench/byte_size.h"
#include "app/commbench/collective_spec.h"

namespace lockstep {
namespace {

TEST(ByteSize, ParsesNcclTestsSuffixes) {
  EXPECT_EQ(parse_byte_size("8"), 8u);
  EXPECT_EQ(parse_byte_size("1K"), 1024u);
  EXPECT_EQ(parse_byte_size("64M"), 64ull << 20);
  EXPECT_EQ(parse_byte_size("4G"), 4ull << 30);
  EXPECT_EQ(parse_byte_size("4g"), 4ull << 30);
  EXPECT_EQ(parse_byte_size("16KB"), 16384u);
  EXPECT_FALSE(parse_byte_size("").has_value());
  EXPECT_FALSE(parse_byte_size("M").has_value());
  EXPECT_FALSE(parse_byte_size("12Q").has_value());
  EXPECT_FALSE(parse_byte_size("-1").has_value());
}

TEST(ByteSize, Sweeps) {
  EXPECT_EQ(size_sweep(8, 128, 2, 0), (std::vector<std::uint64_t>{8, 16, 32, 64, 128}));
  EXPECT_EQ(size_sweep(8, 100, 4, 0), (std::vector<std::uint64_t>{8, 32}));
  EXPECT_EQ(size_sweep(1024, 4096, 1, 1024), (std::vector<std::uint64_t>{1024, 2048, 3072, 4096}));
  EXPECT_EQ(size_sweep(32, 32, 1, 0), (std::vector<std::uint64_t>{32}));
  EXPECT_TRUE(size_sweep(64, 32, 2, 0).empty());
}

TEST(CollectiveSpec, CountsFollowNcclTests) {
  // all_reduce: count = bytes / element size.
  auto c = collective_counts(CollectiveKind::AllReduce, 1 << 20, DType::F32, 4);
  EXPECT_EQ(c.param, 262144u);
  EXPECT_EQ(c.bytes(), 1u << 20);
  // all_gather: per-rank block rounded down to 16 bytes; size printed = n * block.
  c = collective_counts(CollectiveKind::AllGather, 1024, DType::BF16, 3);
  EXPECT_EQ(c.param, 168u);  // (512 / 3) & ~7
  EXPECT_EQ(c.recv, 504u);
  EXPECT_EQ(c.bytes(), 1008u);
  EXPECT_EQ(c.send_in_place_offset, 168u);
  c = collective_counts(CollectiveKind::ReduceScatter, 4096, DType::F32, 4);
  EXPECT_EQ(c.param, 256u);
  EXPECT_EQ(c.send, 1024u);
  EXPECT_EQ(c.recv_in_place_offset, 256u);
  c = collective_counts(CollectiveKind::AllToAll, 4096, DType::F32, 4);
  EXPECT_EQ(c.param, 256u);
  EXPECT_EQ(c.send, 1024u);
}

TEST(CollectiveSpec, BusBandwidthFactors) {
  const double sec = 1e-3;
  auto bw = [&](CollectiveKind k, int n) {
    return collective_bandwidth(k, collective_counts(k, 1 << 30, DType::F32, n), sec, n);
  };
  const double gb = static_cast<double>(1 << 30) / 1e9 / sec;
  EXPECT_DOUBLE_EQ(bw(CollectiveKind::AllReduce, 4).alg, gb);
  EXPECT_DOUBLE_EQ(bw(CollectiveKind::AllReduce, 4).bus, gb * 2 * 3 / 4);
  EXPECT_DOUBLE_EQ(bw(CollectiveKind::AllGather, 4).alg, gb);
  EXPECT_DOUBLE_EQ(bw(CollectiveKind::AllGather, 4).bus, gb * 3 / 4);
  EXPECT_DOUBLE_EQ(bw(CollectiveKind::ReduceScatter, 8).bus, gb * 7 / 8);
  EXPECT_DOUBLE_EQ(bw(CollectiveKind::Broadcast, 4).bus, gb);
  EXPECT_DOUBLE_EQ(bw(CollectiveKind::SendRecv, 4).bus, gb);
  EXPECT_DOUBLE_EQ(bw(CollectiveKind::AllToAll, 4).bus, gb * 3 / 4);
}

TEST(CollectiveSpec, NamesAsInTheFlags) {
  for (const char* n : {"all_reduce", "all_gather", "reduce_scatter", "broadcast", "sendrecv", "alltoall"})
    EXPECT_TRUE(find_collective_spec(n).has_value()) << n;
  EXPECT_FALSE(find_collective_spec("allreduce").has_value());
}

}  // namespace
}  // namespace lockstep
