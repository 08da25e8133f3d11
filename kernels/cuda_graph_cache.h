// Replays a stream's recurring work as captured CUDA graphs: one launch instead of hundreds of
// kernel and NCCL launches (a decode step of a 28-layer model is about 300). Work is keyed by
// its shape; a graph holds the device pointers it was captured with, so it is valid for one
// `generation` of the buffers it reads, which the caller bumps whenever one moves. Only in CUDA
// builds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <set>

typedef struct CUstream_st* cudaStream_t;
typedef struct CUgraphExec_st* cudaGraphExec_t;

namespace lockstep {

class CudaGraphCache {
 public:
  // At most `max_graphs` graphs are kept (all dropped when one more is needed).
  explicit CudaGraphCache(std::size_t max_graphs = 128) : max_graphs_(max_graphs) {}
  ~CudaGraphCache();
  CudaGraphCache(const CudaGraphCache&) = delete;
  CudaGraphCache& operator=(const CudaGraphCache&) = delete;

  // Enqueues `work` (which only enqueues on `stream`: no host waits, no allocation) for `key`:
  // the first time a key comes it runs as is, which also does any lazy set-up the work has
  // (cuBLAS heuristics, NCCL connections, scratch growth); the second time it is captured and
  // the graph launched; from then on the graph is launched, until `generation` changes, which
  // captures it again.
  void run(std::uint64_t key, std::uint64_t generation, cudaStream_t stream, const std::function<void()>& work);

  std::size_t graphs() const { return graphs_.size(); }
  std::uint64_t captures() const { return captures_; }
  std::uint64_t replays() const { return replays_; }

 private:
  struct Graph {
    cudaGraphExec_t exec = nullptr;
    std::uint64_t generation = 0;
  };
  void drop_all();
  std::size_t max_graphs_;
  std::map<std::uint64_t, Graph> graphs_;
  std::set<std::uint64_t> seen_;
  std::uint64_t captures_ = 0, replays_ = 0;
};

}  // namespace lockstep
