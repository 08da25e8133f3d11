// Pipeline layer ranges (see pipeline_stages.h).
#include "model/pipeline_stages.h"

#include <sstream>
#include <stdexcept>

namespace lockstep {

std::vector<LayerRange> pipeline_layer_ranges(int num_layers, int stages, const std::string& override_split) {
  if (stages < 1) throw std::invalid_argument("pipeline-parallel size must be >= 1");
  std::vector<int> sizes;
  if (!override_split.empty()) {
    std::stringstream ss(override_split);
    int total = 0;
    for (std::string item; std::getline(ss, item, ',');) {
      int n = 0;
      try {
        std::size_t used = 0;
        n = std::stoi(item, &used);
        if (used != item.size()) throw std::invalid_argument(item);
      } catch (const std::exception&) {
        throw std::invalid_argument("layer partition \"" + override_split + "\": \"" + item + "\" is not a number");
      }
      if (n < 1) throw std::invalid_argument("layer partition \"" + override_split + "\": every stage needs >= 1 layer");
      sizes.push_back(n);
      total += n;
    }
    if (static_cast<int>(sizes.size()) != stages || total != num_layers)
      throw std::invalid_argument("layer partition \"" + override_split + "\" must list " + std::to_string(stages) +
                                  " stage sizes summing to " + std::to_string(num_layers) + " layers");
  } else {
    if (num_layers < stages)
      throw std::invalid_argument(std::to_string(num_layers) + " layers cannot fill " + std::to_string(stages) +
                                  " pipeline stages");
    for (int s = 0; s < stages; ++s) sizes.push_back(num_layers / stages + (s < num_layers % stages ? 1 : 0));
  }
  std::vector<LayerRange> ranges;
  int at = 0;
  for (int n : sizes) {
    ranges.push_back({at, at + n});
    at += n;
  }
  return ranges;
}

}  // namespace lockstep
