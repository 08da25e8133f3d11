// Collective specs, counts, bandwidth factors, pattern fill and check (see collective_spec.h).
#include "app/commbench/collective_spec.h"

#include <algorithm>

#include "kernels/fatal.h"
#include "kernels/pattern.h"

namespace lockstep {
namespace {

char* at(void* p, std::size_t elems, DType t) { return static_cast<char*>(p) + elems * dtype_size(t); }
const char* at(const void* p, std::size_t elems, DType t) {
  return static_cast<const char*>(p) + elems * dtype_size(t);
}

PatternReduce pattern_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return PatternReduce::Sum;
    case ReduceOp::Prod: return PatternReduce::Prod;
    case ReduceOp::Max: return PatternReduce::Max;
    case ReduceOp::Min: return PatternReduce::Min;
    case ReduceOp::Avg: return PatternReduce::Avg;
  }
  return PatternReduce::Sum;
}

// Seeds: each rep gets a fresh range so stale data from an earlier line never passes.
std::uint32_t seed_base(std::uint32_t rep, int nranks) { return rep * static_cast<std::uint32_t>(nranks * nranks + 1); }

}  // namespace

const std::vector<CollectiveSpec>& all_collective_specs() {
  static const std::vector<CollectiveSpec> specs = {
      {CollectiveKind::AllReduce, "all_reduce", true, false, true, true},
      {CollectiveKind::AllGather, "all_gather", false, false, true, true},
      {CollectiveKind::ReduceScatter, "reduce_scatter", true, false, true, true},
      {CollectiveKind::Broadcast, "broadcast", false, true, true, true},
      {CollectiveKind::SendRecv, "sendrecv", false, false, true, false},
      {CollectiveKind::AllToAll, "alltoall", false, false, false, false},
  };
  return specs;
}

std::optional<CollectiveSpec> find_collective_spec(std::string_view name) {
  for (const CollectiveSpec& s : all_collective_specs())
    if (s.name == name) return s;
  return std::nullopt;
}

std::uint64_t CollectiveCounts::bytes() const { return std::max(send, recv) * element_size; }

CollectiveCounts collective_counts(CollectiveKind kind, std::uint64_t bytes, DType type, int n) {
  const std::size_t es = dtype_size(type);
  const std::size_t count = bytes / es;
  // Per-rank blocks are rounded down to 16 bytes, as nccl-tests does.
  const std::size_t block = (count / n) & ~(16 / es - 1);
  CollectiveCounts c;
  c.element_size = es;
  switch (kind) {
    case CollectiveKind::AllReduce:
    case CollectiveKind::Broadcast:
    case CollectiveKind::SendRecv:
      c.send = c.recv = c.param = count;
      break;
    case CollectiveKind::AllGather:
      c.send = c.param = block;
      c.recv = block * n;
      c.send_in_place_offset = block;
      break;
    case CollectiveKind::ReduceScatter:
      c.send = block * n;
      c.recv = c.param = block;
      c.recv_in_place_offset = block;
      break;
    case CollectiveKind::AllToAll:
      c.param = block;
      c.send = c.recv = block * n;
      break;
  }
  return c;
}

Bandwidth collective_bandwidth(CollectiveKind kind, const CollectiveCounts& c, double seconds, int n) {
  const double bytes = static_cast<double>(c.param * c.element_size);
  const double nd = n;
  Bandwidth b;
  switch (kind) {
    case CollectiveKind::AllReduce:
      b.alg = bytes / 1e9 / seconds;
      b.bus = b.alg * 2.0 * (nd - 1) / nd;
      break;
    case CollectiveKind::AllGather:
    case CollectiveKind::ReduceScatter:
    case CollectiveKind::AllToAll:
      b.alg = bytes * nd / 1e9 / seconds;
      b.bus = b.alg * (nd - 1) / nd;
      break;
    case CollectiveKind::Broadcast:
    case CollectiveKind::SendRecv:
      b.alg = b.bus = bytes / 1e9 / seconds;
      break;
  }
  return b;
}

void run_collective(Collectives& coll, CollectiveKind kind, DeviceBuffer& send_buf, DeviceBuffer& recv_buf,
                    const CollectiveCounts& c, DType t, ReduceOp op, int root, bool in_place,
                    std::size_t shift_bytes) {
  const int r = coll.rank(), n = coll.size();
  char* recv_base = static_cast<char*>(recv_buf.data()) + shift_bytes;
  char* send_base = static_cast<char*>(send_buf.data()) + shift_bytes;
  void* recv = in_place ? at(recv_base, c.recv_in_place_offset * r, t) : recv_base;
  const void* send = in_place ? at(recv_base, c.send_in_place_offset * r, t) : send_base;
  switch (kind) {
    case CollectiveKind::AllReduce: coll.all_reduce(send, recv, c.param, t, op); break;
    case CollectiveKind::AllGather: coll.all_gather(send, recv, c.param, t); break;
    case CollectiveKind::ReduceScatter: coll.reduce_scatter(send, recv, c.param, t, op); break;
    case CollectiveKind::Broadcast: coll.broadcast(send, recv, c.param, t, root); break;
    case CollectiveKind::SendRecv: coll.send_recv(send, (r + 1) % n, recv, (r + n - 1) % n, c.param, t); break;
    case CollectiveKind::AllToAll:
      LS_CHECK(!in_place, "alltoall has no in-place form");
      coll.all_to_all(send, recv, c.param, t);
      break;
  }
}

void fill_collective_inputs(Collectives& coll, CollectiveKind kind, DeviceBuffer& send_buf, DeviceBuffer& recv_buf,
                            const CollectiveCounts& c, DType t, int root, bool in_place, std::uint32_t rep,
                            cudaStream_t stream) {
  const int r = coll.rank(), n = coll.size();
  const std::uint32_t base = seed_base(rep, n);
  const DeviceKind where = recv_buf.kind();
  recv_buf.fill_bytes(0xff);  // poison: NaN / -1 wherever a result is missing
  void* input = in_place ? at(recv_buf.data(), c.send_in_place_offset * r, t) : send_buf.data();
  switch (kind) {
    case CollectiveKind::AllToAll:  // block j goes to rank j: seed identifies (from, to)
      for (int j = 0; j < n; ++j)
        fill_pattern(where, at(input, c.param * j, t), c.param, t, base + r * n + j, 0, stream);
      break;
    case CollectiveKind::ReduceScatter:  // one index space across the n blocks
      fill_pattern(where, input, c.send, t, base + r, 0, stream);
      break;
    default:
      fill_pattern(where, input, c.send, t, base + r, 0, stream);
      break;
  }
  (void)root;
}

std::uint64_t check_collective_result(Collectives& coll, CollectiveKind kind, const DeviceBuffer& recv_buf,
                                      const CollectiveCounts& c, DType t, ReduceOp op, int root, bool in_place,
                                      std::uint32_t rep, cudaStream_t stream) {
  const int r = coll.rank(), n = coll.size();
  const std::uint32_t base = seed_base(rep, n);
  const DeviceKind where = recv_buf.kind();
  const void* result = in_place ? at(recv_buf.data(), c.recv_in_place_offset * r, t) : recv_buf.data();
  ExpectedPattern e;
  switch (kind) {
    case CollectiveKind::AllReduce:
      e = {n, pattern_op(op), base, 0};
      return count_mismatches(where, result, c.recv, t, e, stream);
    case CollectiveKind::ReduceScatter:
      e = {n, pattern_op(op), base, static_cast<std::uint64_t>(r) * c.param};
      return count_mismatches(where, result, c.recv, t, e, stream);
    case CollectiveKind::Broadcast:
      e = {0, PatternReduce::Sum, base + root, 0};
      return count_mismatches(where, result, c.recv, t, e, stream);
    case CollectiveKind::SendRecv:
      e = {0, PatternReduce::Sum, base + (r + n - 1) % n, 0};
      return count_mismatches(where, result, c.recv, t, e, stream);
    case CollectiveKind::AllGather: {
      std::uint64_t wrong = 0;
      for (int j = 0; j < n; ++j) {
        e = {0, PatternReduce::Sum, base + j, 0};
        wrong += count_mismatches(where, at(result, c.param * j, t), c.param, t, e, stream);
      }
      return wrong;
    }
    case CollectiveKind::AllToAll: {
      std::uint64_t wrong = 0;
      for (int j = 0; j < n; ++j) {
        e = {0, PatternReduce::Sum, base + j * n + r, 0};
        wrong += count_mismatches(where, at(result, c.param * j, t), c.param, t, e, stream);
      }
      return wrong;
    }
  }
  return 0;
}

}  // namespace lockstep
