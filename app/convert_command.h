// `lockstep convert --model DIR --output DIR`: a hub checkpoint (safetensors) rewritten in
// lockstep's HDF5 layout (model/hdf5_checkpoint.h): model.h5 beside a copy of the config and
// tokenizer files. `--load-format auto` (the default) reads model.h5 where a checkpoint has
// one, each rank its own rows and columns at their offsets. The stored bits are kept (bf16 stays
// bf16, block-fp8 stays fp8 with its scales), so a converted checkpoint runs the same numbers.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

namespace lockstep {

struct ConvertOptions {
  std::string model;
  std::string output;
  bool force = false;
};

CLI::App* add_convert_command(CLI::App& app, ConvertOptions& opts);
int run_convert(const ConvertOptions& opts);

}  // namespace lockstep
