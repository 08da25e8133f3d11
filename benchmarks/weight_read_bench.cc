// A rank's weights read from a checkpoint as the CUDA loader reads them (weight_upload.h: the
// slices in 64 MiB chunks of rows, each chunk by up to 8 threads, parallel_weight_read.h), into
// two reused staging buffers and no GPU: the checkpoint reader's GB/s alone, on any host, for
// safetensors and model.h5 side by side, or the dummy values' rate (--load-format dummy: what a
// dummy load's hashing costs the host). Dense models (qwen2, qwen3, llama). Run it twice for
// the page cache's rate; drop the cache (or use a file bigger than memory) for the disk's.
//   mpirun -np 1 weight_read_bench --model DIR --load-format hdf5 [--repeat 3]
//   mpirun -np 2 weight_read_bench --model DIR --tp 2         (each rank its slices, at once)
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <vector>

#include "comm/mpi_env.h"
#include "model/hdf5_checkpoint.h"
#include "model/layer_weights.h"
#include "model/model_config.h"
#include "model/parallel_weight_read.h"
#include "model/safetensors_reader.h"
#include "model/weight_source.h"

int main(int argc, char** argv) {
  using namespace lockstep;
  MpiEnvironment mpi(argc, argv);  // model.h5 is opened as the app opens it, through MPI-IO
  CLI::App app{"Times reading a rank's weights as the CUDA loader does, without a GPU"};
  std::string model, format = "auto";
  int tp = 1, tp_rank = -1, repeat = 2;
  app.add_option("--model", model, "checkpoint directory")->required()->check(CLI::ExistingDirectory);
  app.add_option("--load-format", format,
                 "auto (model.h5 where there is one), safetensors, hdf5, or dummy (the values --load-format dummy "
                 "makes; only config.json is read)")
      ->check(CLI::IsMember({"auto", "safetensors", "hdf5", "dummy"}));
  app.add_option("--tp,--tensor-parallel-size", tp, "tensor-parallel size")->check(CLI::PositiveNumber);
  app.add_option("--tp-rank", tp_rank, "the rank whose slices are read (default: the MPI rank's)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--repeat", repeat, "passes over the weights")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  if (tp_rank < 0) tp_rank = mpi.world_rank();
  try {
    const ModelConfig c = ModelConfig::from_dir(model);
    if (tp_rank >= tp) throw CheckpointError("--tp-rank must be below --tp");
    if (c.is_deepseek_v3()) throw CheckpointError("weight_read_bench reads dense models (qwen2, qwen3, llama)");
    const std::string h5 = model + "/" + kHdf5CheckpointFile;
    if (format == "auto") format = std::filesystem::exists(h5) ? "hdf5" : "safetensors";
    std::unique_ptr<SafetensorsCheckpoint> ckpt;
    std::unique_ptr<WeightSource> w;
    if (format == "dummy") {
      w = std::make_unique<DummyWeights>();
    } else if (format == "hdf5") {
      w = std::make_unique<Hdf5Weights>(h5, c.fp8_block_rows, c.fp8_block_cols);
    } else {
      ckpt = std::make_unique<SafetensorsCheckpoint>(model);
      w = std::make_unique<CheckpointWeights>(*ckpt, c.fp8_block_rows, c.fp8_block_cols);
    }
    const TensorParallelSlice s = TensorParallelSlice::make(c, tp_rank, tp);
    std::vector<StackedSlices> weights;
    const EdgeWeightSlices edges = edge_weight_slices(c, s, true, true);
    for (const StackedSlices& e : {edges.embed, edges.lm_head, edges.final_norm}) weights.push_back(e);
    for (int l = 0; l < c.num_hidden_layers; ++l) {
      const LayerWeightSlices L = layer_weight_slices(c, s, l);
      for (const StackedSlices& p : {L.input_norm, L.post_norm, L.qkv, L.q_norm, L.k_norm, L.qkv_bias, L.o, L.gate_up,
                                     L.down})
        weights.push_back(p);
    }
    // PinnedUploader's two staging buffers, touched once so that their first faults are not timed.
    constexpr std::size_t kChunk = std::size_t{64} << 20;
    std::vector<std::vector<char>> staging(2, std::vector<char>(kChunk, 1));
    const std::size_t elem = dtype_size(c.dtype);
    for (int pass = 0; pass < repeat; ++pass) {
      const std::uint64_t before = w->bytes_read();
      const auto start = std::chrono::steady_clock::now();
      int next = 0;
      for (const StackedSlices& weight : weights)
        for (const WeightSlice& p : weight) {
          const auto rows_a_chunk = static_cast<std::int64_t>(kChunk / (static_cast<std::size_t>(p.cols()) * elem));
          for (std::int64_t r = p.r0; r < p.r1; r += rows_a_chunk, next ^= 1)
            read_slice_rows(*w, p, r, std::min(p.r1, r + rows_a_chunk), c.dtype, staging[next].data());
        }
      const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const double bytes = static_cast<double>(w->bytes_read() - before);
      std::printf("weight_read_bench: %s, tp rank %d/%d, pass %d: %.1f MB in %.3f s, %.2f GB/s (%d reader threads)\n",
                  format.c_str(), tp_rank, tp, pass + 1, bytes / 1e6, sec, bytes / 1e9 / sec, weight_reader_threads());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "weight_read_bench: error: %s\n", e.what());
    return 2;
  }
  return 0;
}
