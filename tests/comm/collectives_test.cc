// Every collective, dtype, reduction and in-place form, checked against host-computed
// expectations on the world, TP and PP groups of every layout the world size allows
// (np 4: TP4, TP2xPP2, PP4; np 2: TP2, PP2). Run under mpirun; --backend=nccl for GPUs.
// Inputs are small integers, exact in every dtype, so every result must match exactly.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "comm/comm_groups.h"
#include "comm/host_broadcast.h"
#include "comm/mpi_collectives.h"
#include "comm/rank_grid.h"
#include "kernels/device_buffer.h"
#include "tests/mpi_test_env.h"

namespace lockstep {
namespace {

constexpr std::size_t kCount = 1031;  // odd: not a multiple of any group size or vector width

// Movement tests: identifies (rank, index) and stays exact in bf16.
float move_value(int rank, std::size_t i) { return static_cast<float>(static_cast<int>((rank * 37 + i * 11) % 201) - 100); }
// Reduction inputs: products and sums over <= 4 ranks stay exact integers in every dtype.
float reduce_value(int rank, std::size_t i) {
  const float sign = (i / 2) % 2 ? -1.0f : 1.0f;
  return sign * static_cast<float>(((i % 2) + 1) * (rank + 1));
}

std::vector<float> rounded(std::vector<float> v, DType t) {
  std::vector<unsigned char> tmp(v.size() * dtype_size(t));
  for (std::size_t i = 0; i < v.size(); ++i) store_from_float(tmp.data(), i, t, v[i]);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = load_as_float(tmp.data(), i, t);
  return v;
}

class Checker {
 public:
  Checker(Collectives& c, DeviceKind kind, DType t, std::string group)
      : c_(c), kind_(kind), t_(t), n_(c.size()), r_(c.rank()), group_(std::move(group)) {}

  DeviceBuffer upload(const std::vector<float>& v, std::size_t capacity_elems = 0) {
    capacity_elems = std::max(capacity_elems, v.size());
    DeviceBuffer b(kind_, capacity_elems * dtype_size(t_));
    b.fill_bytes(0xff);  // poison: NaN for floats, -1 for int32
    std::vector<unsigned char> host(v.size() * dtype_size(t_));
    for (std::size_t i = 0; i < v.size(); ++i) store_from_float(host.data(), i, t_, v[i]);
    b.copy_from_host(host.data(), host.size());
    return b;
  }
  DeviceBuffer poisoned(std::size_t elems) {
    DeviceBuffer b(kind_, elems * dtype_size(t_));
    b.fill_bytes(0xff);
    return b;
  }
  std::vector<float> download(const DeviceBuffer& b, std::size_t elems, std::size_t offset_elems = 0) {
    c_.synchronize();
    std::vector<unsigned char> host(elems * dtype_size(t_));
    b.copy_to_host(host.data(), host.size(), offset_elems * dtype_size(t_));
    std::vector<float> v(elems);
    for (std::size_t i = 0; i < elems; ++i) v[i] = load_as_float(host.data(), i, t_);
    return v;
  }
  void expect_equal(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
    ASSERT_EQ(got.size(), want.size());
    const std::vector<float> exp = rounded(want, t_);
    int bad = 0;
    for (std::size_t i = 0; i < got.size() && bad < 3; ++i) {
      if (got[i] != exp[i]) {
        ADD_FAILURE() << group_ << " " << what << " " << dtype_name(t_) << " rank " << r_ << "/" << n_
                      << " element " << i << ": got " << got[i] << ", want " << exp[i];
        ++bad;
      }
    }
  }

  std::vector<float> inputs(int rank, std::size_t count, float (*f)(int, std::size_t)) {
    std::vector<float> v(count);
    for (std::size_t i = 0; i < count; ++i) v[i] = f(rank, i);
    return v;
  }

  float reduce_expected(std::size_t i, ReduceOp op) {
    double acc = reduce_value(0, i);
    for (int q = 1; q < n_; ++q) {
      const double x = reduce_value(q, i);
      switch (op) {
        case ReduceOp::Sum: case ReduceOp::Avg: acc += x; break;
        case ReduceOp::Prod: acc *= x; break;
        case ReduceOp::Max: acc = std::max(acc, x); break;
        case ReduceOp::Min: acc = std::min(acc, x); break;
      }
    }
    if (op == ReduceOp::Avg) acc = t_ == DType::I32 ? std::trunc(acc / n_) : acc / n_;
    return static_cast<float>(acc);
  }

  void all_reduce(ReduceOp op, bool in_place) {
    const auto what = "all_reduce(" + std::string(reduce_op_name(op)) + (in_place ? ", in-place)" : ")");
    DeviceBuffer send = upload(inputs(r_, kCount, reduce_value));
    DeviceBuffer out = in_place ? DeviceBuffer() : poisoned(kCount);
    DeviceBuffer& recv = in_place ? send : out;
    c_.all_reduce(send.data(), recv.data(), kCount, t_, op);
    std::vector<float> want(kCount);
    for (std::size_t i = 0; i < kCount; ++i) want[i] = reduce_expected(i, op);
    expect_equal(download(recv, kCount), want, what);
  }

  void all_gather(bool in_place) {
    std::vector<float> want;
    for (int q = 0; q < n_; ++q) for (float x : inputs(q, kCount, move_value)) want.push_back(x);
    DeviceBuffer recv = poisoned(n_ * kCount);
    if (in_place) {  // this rank's block already sits at its offset in recv
      std::vector<unsigned char> host(kCount * dtype_size(t_));
      for (std::size_t i = 0; i < kCount; ++i) store_from_float(host.data(), i, t_, move_value(r_, i));
      recv.copy_from_host(host.data(), host.size(), r_ * kCount * dtype_size(t_));
      c_.all_gather(static_cast<char*>(recv.data()) + r_ * kCount * dtype_size(t_), recv.data(), kCount, t_);
    } else {
      DeviceBuffer send = upload(inputs(r_, kCount, move_value));
      c_.all_gather(send.data(), recv.data(), kCount, t_);
      c_.synchronize();  // before send goes out of scope
    }
    expect_equal(download(recv, n_ * kCount), want, in_place ? "all_gather(in-place)" : "all_gather");
  }

  void reduce_scatter(ReduceOp op, bool in_place) {
    const auto what = "reduce_scatter(" + std::string(reduce_op_name(op)) + (in_place ? ", in-place)" : ")");
    DeviceBuffer send = upload(inputs(r_, n_ * kCount, reduce_value));
    std::vector<float> want(kCount);
    for (std::size_t i = 0; i < kCount; ++i) want[i] = reduce_expected(r_ * kCount + i, op);
    if (in_place) {
      void* recv = static_cast<char*>(send.data()) + r_ * kCount * dtype_size(t_);
      c_.reduce_scatter(send.data(), recv, kCount, t_, op);
      expect_equal(download(send, kCount, r_ * kCount), want, what);
    } else {
      DeviceBuffer recv = poisoned(kCount);
      c_.reduce_scatter(send.data(), recv.data(), kCount, t_, op);
      expect_equal(download(recv, kCount), want, what);
    }
  }

  void broadcast(int root, bool in_place) {
    const auto what = "broadcast(root " + std::to_string(root) + (in_place ? ", in-place)" : ")");
    DeviceBuffer send = r_ == root ? upload(inputs(root, kCount, move_value)) : poisoned(kCount);
    DeviceBuffer out = in_place ? DeviceBuffer() : poisoned(kCount);
    DeviceBuffer& recv = in_place ? send : out;
    c_.broadcast(send.data(), recv.data(), kCount, t_, root);
    expect_equal(download(recv, kCount), inputs(root, kCount, move_value), what);
  }

  void send_recv_ring() {
    const int next = (r_ + 1) % n_, prev = (r_ + n_ - 1) % n_;
    DeviceBuffer send = upload(inputs(r_, kCount, move_value));
    DeviceBuffer recv = poisoned(kCount);
    c_.send_recv(send.data(), next, recv.data(), prev, kCount, t_);
    expect_equal(download(recv, kCount), inputs(prev, kCount, move_value), "send_recv ring");
  }

  // Stage k receives from k-1, adds its own values, sends to k+1: the pipeline's pattern.
  void pipeline_chain() {
    std::vector<float> acc = inputs(r_, kCount, move_value);
    if (r_ > 0) {
      DeviceBuffer in = poisoned(kCount);
      c_.recv(in.data(), kCount, t_, r_ - 1);
      std::vector<float> got = download(in, kCount);
      std::vector<float> want(kCount, 0.0f);
      for (int q = 0; q < r_; ++q)
        for (std::size_t i = 0; i < kCount; ++i) want[i] += move_value(q, i);
      expect_equal(got, want, "send/recv chain");
      for (std::size_t i = 0; i < kCount; ++i) acc[i] += want[i];
    }
    if (r_ + 1 < n_) {
      DeviceBuffer out = upload(acc);
      c_.send(out.data(), kCount, t_, r_ + 1);
      c_.synchronize();
    }
  }

  void all_to_all() {
    // Block j of rank q's input is destined for rank j; its values identify (q, j).
    auto block_value = [](int from, int to, std::size_t i) { return move_value(from * 5 + to, i); };
    std::vector<float> in, want;
    for (int j = 0; j < n_; ++j) for (std::size_t i = 0; i < kCount; ++i) in.push_back(block_value(r_, j, i));
    for (int q = 0; q < n_; ++q) for (std::size_t i = 0; i < kCount; ++i) want.push_back(block_value(q, r_, i));
    DeviceBuffer send = upload(in), recv = poisoned(n_ * kCount);
    c_.all_to_all(send.data(), recv.data(), kCount, t_);
    expect_equal(download(recv, n_ * kCount), want, "all_to_all");
  }

  void everything() {
    for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Prod, ReduceOp::Max, ReduceOp::Min, ReduceOp::Avg})
      for (bool ip : {false, true}) all_reduce(op, ip);
    for (bool ip : {false, true}) all_gather(ip);
    for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Max})
      for (bool ip : {false, true}) reduce_scatter(op, ip);
    for (int root : {0, n_ - 1})
      for (bool ip : {false, true}) broadcast(root, ip);
    send_recv_ring();
    pipeline_chain();
    all_to_all();
  }

 private:
  Collectives& c_;
  DeviceKind kind_;
  DType t_;
  int n_, r_;
  std::string group_;
};

std::vector<GridLayout> layouts_for(int world) {
  if (world == 4) return {{4, 1}, {2, 2}, {1, 4}};
  if (world == 2) return {{2, 1}, {1, 2}};
  return {{world, 1}};
}

std::string layout_name(const GridLayout& l) {
  return "TP" + std::to_string(l.tp) + (l.pp > 1 ? "xPP" + std::to_string(l.pp) : "");
}

TEST(Collectives, EveryOpAndDtypeOnEveryGroupOfEveryLayout) {
  const MpiEnvironment& env = testing::mpi_env();
  ASSERT_GE(env.world_size(), 2) << "run under mpirun -np 2 or 4";
  for (const GridLayout& layout : layouts_for(env.world_size())) {
    RankGrid grid(env, layout);
    CommGroups groups(grid, testing::test_backend());
    const std::string name = layout_name(layout);
    for (DType t : kAllDTypes) {
      Checker(groups.world(), groups.buffer_kind(), t, name + " world").everything();
      Checker(groups.tp(), groups.buffer_kind(), t, name + " TP").everything();
      Checker(groups.pp(), groups.buffer_kind(), t, name + " PP").everything();
    }
  }
}

TEST(Collectives, MpiChunkingOfLongMessages) {
  if (testing::test_backend() != CommBackend::Mpi) GTEST_SKIP() << "MPI backend only";
  MpiCollectives small_chunks(MPI_COMM_WORLD, /*max_chunk=*/7);
  for (DType t : kAllDTypes) Checker(small_chunks, DeviceKind::Cpu, t, "world chunk=7").everything();
}

// The MPI backend rounds 16-bit sums once, after accumulating in fp32. 256 + 1 + 1 + 1 = 259
// rounds to 260 in bf16; pairwise bf16 accumulation would give 256 or 258.
TEST(Collectives, MpiSixteenBitSumsAccumulateInFp32) {
  if (testing::test_backend() != CommBackend::Mpi) GTEST_SKIP() << "MPI backend only";
  const MpiEnvironment& env = testing::mpi_env();
  if (env.world_size() < 4) GTEST_SKIP() << "needs 4 ranks";
  MpiCollectives c(MPI_COMM_WORLD);
  const float mine_bf16 = env.world_rank() == 0 ? 256.0f : 1.0f;
  bf16 in = float_to_bf16(mine_bf16), out{};
  c.all_reduce(&in, &out, 1, DType::BF16, ReduceOp::Sum);
  EXPECT_EQ(bf16_to_float(out), 260.0f);
  const float mine_fp16 = env.world_rank() == 0 ? 2048.0f : 1.0f;  // 2051 -> 2052 in fp16
  fp16 hin = float_to_fp16(mine_fp16), hout{};
  c.all_reduce(&hin, &hout, 1, DType::F16, ReduceOp::Sum);
  EXPECT_EQ(fp16_to_float(hout), 2052.0f);
}

TEST(HostBroadcast, VariableLengthBytesReachEveryRank) {
  const MpiEnvironment& env = testing::mpi_env();
  for (std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{100003}}) {
    std::vector<std::uint8_t> bytes;
    if (env.world_rank() == 1) {
      bytes.resize(size);
      for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<std::uint8_t>(i * 7 + 3);
    } else {
      bytes.assign(5, 0xee);  // stale content must be replaced
    }
    broadcast_bytes(bytes, /*root=*/1, MPI_COMM_WORLD);
    ASSERT_EQ(bytes.size(), size);
    for (std::size_t i = 0; i < size; ++i) ASSERT_EQ(bytes[i], static_cast<std::uint8_t>(i * 7 + 3)) << i;
  }
}

TEST(RankGridMpi, GroupsMatchTheLayout) {
  const MpiEnvironment& env = testing::mpi_env();
  for (const GridLayout& layout : layouts_for(env.world_size())) {
    RankGrid grid(env, layout);
    int tp_rank = -1, tp_size = -1, pp_rank = -1, pp_size = -1;
    MPI_Comm_rank(grid.tp_comm(), &tp_rank);
    MPI_Comm_size(grid.tp_comm(), &tp_size);
    MPI_Comm_rank(grid.pp_comm(), &pp_rank);
    MPI_Comm_size(grid.pp_comm(), &pp_size);
    EXPECT_EQ(tp_size, layout.tp);
    EXPECT_EQ(pp_size, layout.pp);
    EXPECT_EQ(tp_rank, grid.tp_rank());
    EXPECT_EQ(pp_rank, grid.pp_rank());
    EXPECT_EQ(grid.world_rank(), world_rank_of(layout, grid.tp_rank(), grid.pp_rank()));
    EXPECT_EQ(grid.first_stage(), grid.pp_rank() == 0);
    EXPECT_EQ(grid.last_stage(), grid.pp_rank() == layout.pp - 1);
    EXPECT_GE(grid.local_rank(), 0);
    EXPECT_LT(grid.local_rank(), grid.local_size());
  }
}

}  // namespace
}  // namespace lockstep
