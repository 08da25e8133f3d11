// Which layers each pipeline stage runs. Default: the remainder of layers / stages goes to
// the earliest stages (the last stage also carries the final norm and lm_head). An explicit
// split ("20,20,21,19", as vLLM's VLLM_PP_LAYER_PARTITION) overrides it.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace lockstep {

struct LayerRange {
  int begin = 0;
  int end = 0;  // exclusive
  int size() const { return end - begin; }
};

// Throws std::invalid_argument with a clear message when the override does not fit.
std::vector<LayerRange> pipeline_layer_ranges(int num_layers, int stages, const std::string& override_split = "");

}  // namespace lockstep
