// CudaGraphCache (see kernels/cuda_graph_cache.h).
#include "kernels/cuda_graph_cache.h"

#include <cuda_runtime_api.h>

#include "kernels/cuda/cuda_check.h"

namespace lockstep {

CudaGraphCache::~CudaGraphCache() { drop_all(); }

void CudaGraphCache::drop_all() {
  for (auto& [key, g] : graphs_)
    if (g.exec) cudaGraphExecDestroy(g.exec);
  graphs_.clear();
}

void CudaGraphCache::run(std::uint64_t key, std::uint64_t generation, cudaStream_t stream,
                         const std::function<void()>& work) {
  auto it = graphs_.find(key);
  if (it != graphs_.end() && it->second.generation == generation) {
    LS_CUDA_CHECK(cudaGraphLaunch(it->second.exec, stream));
    ++replays_;
    return;
  }
  if (it != graphs_.end()) {  // captured with buffers that have moved since
    LS_CUDA_CHECK(cudaGraphExecDestroy(it->second.exec));
    graphs_.erase(it);
  }
  if (seen_.insert(key).second) {  // first sight: run it as is
    work();
    return;
  }
  if (graphs_.size() >= max_graphs_) drop_all();
  cudaGraph_t graph = nullptr;
  // Thread-local: another thread's CUDA calls (a weight reader, the sampler) do not disturb it.
  LS_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  work();
  LS_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
  Graph g;
  g.generation = generation;
  const cudaError_t instantiated = cudaGraphInstantiate(&g.exec, graph, 0);
  cudaGraphDestroy(graph);
  LS_CUDA_CHECK(instantiated);
  graphs_[key] = g;
  ++captures_;
  LS_CUDA_CHECK(cudaGraphLaunch(g.exec, stream));
  ++replays_;
}

}  // namespace lockstep
