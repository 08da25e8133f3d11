// `lockstep convert` (see convert_command.h).
#include "app/convert_command.h"

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "model/hdf5_checkpoint.h"
#include "model/model_config.h"
#include "model/safetensors_reader.h"

namespace lockstep {
namespace fs = std::filesystem;

CLI::App* add_convert_command(CLI::App& app, ConvertOptions& o) {
  CLI::App* cmd = app.add_subcommand(
      "convert", "Rewrite a safetensors checkpoint as lockstep's HDF5 layout (model.h5, one contiguous dataset a tensor)");
  cmd->add_option("--model", o.model, "Checkpoint directory (config.json, safetensors, tokenizer files)")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--output", o.output, "Directory to write (config and tokenizer files copied, model.h5)")->required();
  cmd->add_flag("--force", o.force, "Replace the model.h5 of an existing --output");
  return cmd;
}

int run_convert(const ConvertOptions& o) {
  auto error = [](const std::string& what) {
    std::fprintf(stderr, "lockstep convert: error: %s\n", what.c_str());
    return 2;
  };
  try {
    if (fs::exists(o.output) && fs::equivalent(o.model, o.output))
      return error("--output must be another directory than --model");
    const ModelConfig config = ModelConfig::from_dir(o.model);  // refuses what lockstep cannot run
    const SafetensorsCheckpoint source(o.model);
    const fs::path h5 = fs::path(o.output) / kHdf5CheckpointFile;
    if (fs::exists(h5) && !o.force) return error(h5.string() + " exists; pass --force to replace it");
    fs::create_directories(o.output);
    for (const char* f : {"config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja",
                          "special_tokens_map.json", "generation_config.json"})
      if (fs::exists(fs::path(o.model) / f))
        fs::copy_file(fs::path(o.model) / f, fs::path(o.output) / f, fs::copy_options::overwrite_existing);
    // Written next to the destination and renamed when complete: an interrupted run leaves no
    // model.h5 that --load-format auto would pick up.
    const fs::path partial = fs::path(o.output) / (std::string(kHdf5CheckpointFile) + ".partial");
    fs::remove(partial);
    const auto start = std::chrono::steady_clock::now();
    std::size_t last_percent = 101;
    write_hdf5_checkpoint(source, partial.string(), [&](std::size_t done, std::size_t total) {
      const std::size_t percent = done * 100 / total;
      if (percent / 10 != last_percent / 10 || done == total) {
        std::fprintf(stderr, "[convert] %zu/%zu tensors (%zu%%)\n", done, total, percent);
        last_percent = percent;
      }
    });
    fs::rename(partial, h5);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "[convert] %s: %zu tensors of a %s model, %.1f MB in %.1f s\n", h5.c_str(),
                 source.tensor_count(), config.architecture.c_str(),
                 static_cast<double>(fs::file_size(h5)) / 1e6, seconds);
    return 0;
  } catch (const std::exception& e) {
    return error(e.what());
  }
}

}  // namespace lockstep
