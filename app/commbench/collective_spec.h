// The collectives commbench measures, with nccl-tests' semantics: how a size in bytes maps to
// element counts and buffers, where the in-place forms put their data, the algorithm and bus
// bandwidth factors, and how each is filled and verified with the kernels' pattern.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "comm/collectives.h"
#include "kernels/device_buffer.h"

namespace lockstep {

enum class CollectiveKind { AllReduce, AllGather, ReduceScatter, Broadcast, SendRecv, AllToAll };

struct CollectiveSpec {
  CollectiveKind kind;
  std::string_view name;    // "all_reduce" ...
  bool has_redop;
  bool has_root;
  bool supports_in_place;   // all_to_all is out-of-place only
  bool in_place_checked;    // nccl-tests times in-place sendrecv but cannot check it (NCCL races)
};

const std::vector<CollectiveSpec>& all_collective_specs();
std::optional<CollectiveSpec> find_collective_spec(std::string_view name);

// Element counts for one line of the table (nccl-tests' getCollByteCount).
struct CollectiveCounts {
  std::size_t send = 0;       // elements in the send buffer
  std::size_t recv = 0;       // elements in the receive buffer
  std::size_t param = 0;      // the count argument of the call (the table's "count")
  std::size_t send_in_place_offset = 0;  // in-place: send = recv_buffer + offset * rank
  std::size_t recv_in_place_offset = 0;  // in-place: recv = recv_buffer + offset * rank
  std::uint64_t bytes() const;           // the table's "size": max(send, recv) bytes
  std::size_t element_size = 0;
};
CollectiveCounts collective_counts(CollectiveKind kind, std::uint64_t bytes, DType type, int nranks);

// algbw (GB/s) and busbw from the seconds one call took (nccl-tests' getBw).
struct Bandwidth { double alg = 0, bus = 0; };
Bandwidth collective_bandwidth(CollectiveKind kind, const CollectiveCounts& c, double seconds, int nranks);

// Issues one call (not synchronized) with nccl-tests' in-place pointer rules. shift_bytes
// moves both buffers along (nccl-tests rotates small messages through the whole allocation
// so successive calls do not hit the same cache lines).
void run_collective(Collectives& coll, CollectiveKind kind, DeviceBuffer& send, DeviceBuffer& recv,
                    const CollectiveCounts& c, DType type, ReduceOp op, int root, bool in_place,
                    std::size_t shift_bytes = 0);

// Fills the inputs of one call with the pattern (seeded by `rep`) and poisons the outputs.
void fill_collective_inputs(Collectives& coll, CollectiveKind kind, DeviceBuffer& send, DeviceBuffer& recv,
                            const CollectiveCounts& c, DType type, int root, bool in_place, std::uint32_t rep,
                            cudaStream_t stream);
// Elements of this rank's result that differ from the expectation.
std::uint64_t check_collective_result(Collectives& coll, CollectiveKind kind, const DeviceBuffer& recv,
                                      const CollectiveCounts& c, DType type, ReduceOp op, int root,
                                      bool in_place, std::uint32_t rep, cudaStream_t stream);

}  // namespace lockstep
