// CPU lists as Linux prints them ("0-15,32-47"): parsing, formatting, this process's
// affinity, and which NUMA nodes a set of CPUs touches.
#pragma once

#include <set>
#include <string>

namespace lockstep {

std::set<int> parse_cpu_list(const std::string& text);
std::string format_cpu_list(const std::set<int>& cpus);
std::set<int> process_cpu_affinity();
// NUMA nodes (from /sys/devices/system/node) holding any of `cpus`.
std::set<int> numa_nodes_of(const std::set<int>& cpus);

}  // namespace lockstep
