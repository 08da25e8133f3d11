// Message sizes as nccl-tests spells them: "8", "512K", "64M", "4G" (powers of 1024), and the
// size sweep of -b/-e with -f (multiply) or -i (add).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lockstep {

std::optional<std::uint64_t> parse_byte_size(const std::string& text);

// min, min*factor, ... <= max when factor > 1; else min, min+step, ... <= max.
std::vector<std::uint64_t> size_sweep(std::uint64_t min_bytes, std::uint64_t max_bytes, std::uint64_t factor,
                                      std::uint64_t step_bytes);

}  // namespace lockstep
