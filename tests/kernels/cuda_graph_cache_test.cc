// CudaGraphCache on a GPU: a key runs eagerly, then is captured, then replayed (the graph reads
// the buffers' current contents), and is captured again when the generation moves. The work is
// a device-to-device copy, which a graph captures like any kernel. Skips where no GPU is visible.
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <vector>

#include "kernels/cuda_graph_cache.h"
#include "kernels/device_buffer.h"
#include "kernels/gpu_context.h"

namespace lockstep {
namespace {

TEST(CudaGraphCache, RunsThenCapturesThenReplaysUntilTheGenerationMoves) {
  if (visible_gpu_count() == 0) GTEST_SKIP() << "no GPU visible";
  GpuContext ctx(0);
  const std::size_t n = 1 << 16;
  DeviceBuffer src(DeviceKind::Cuda, n * sizeof(int)), dst_a(DeviceKind::Cuda, n * sizeof(int)),
      dst_b(DeviceKind::Cuda, n * sizeof(int));
  void* dst = dst_a.data();
  auto work = [&] {
    ASSERT_EQ(cudaMemcpyAsync(dst, src.data(), n * sizeof(int), cudaMemcpyDeviceToDevice, ctx.stream()), cudaSuccess);
  };
  auto set_src = [&](int v) {
    const std::vector<int> h(n, v);
    src.copy_from_host(h.data(), n * sizeof(int));
  };
  auto first_of = [&](DeviceBuffer& b) {
    ctx.synchronize();
    int v = 0;
    b.copy_to_host(&v, sizeof(int));
    return v;
  };
  CudaGraphCache cache;
  set_src(1);
  cache.run(7, 0, ctx.stream(), work);  // first sight: eager
  EXPECT_EQ(first_of(dst_a), 1);
  EXPECT_EQ(cache.captures(), 0u);
  set_src(2);
  cache.run(7, 0, ctx.stream(), work);  // captured and launched
  EXPECT_EQ(first_of(dst_a), 2);
  EXPECT_EQ(cache.captures(), 1u);
  set_src(3);
  dst = dst_b.data();  // a moved buffer the caller does not report: the graph still writes dst_a
  cache.run(7, 0, ctx.stream(), work);
  EXPECT_EQ(first_of(dst_a), 3);
  EXPECT_EQ(cache.captures(), 1u);
  EXPECT_EQ(cache.replays(), 2u);
  set_src(4);
  cache.run(7, 1, ctx.stream(), work);  // reported: captured again, now with dst_b
  EXPECT_EQ(first_of(dst_b), 4);
  EXPECT_EQ(cache.captures(), 2u);
  cache.run(8, 1, ctx.stream(), work);  // another key starts eager
  EXPECT_EQ(cache.graphs(), 1u);
}

}  // namespace
}  // namespace lockstep
