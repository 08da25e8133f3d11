// CPU list helpers (see cpu_affinity.h).
#include "app/commbench/cpu_affinity.h"

#include <dirent.h>
#include <sched.h>

#include <cstring>
#include <fstream>
#include <sstream>

namespace lockstep {

std::set<int> parse_cpu_list(const std::string& text) {
  std::set<int> cpus;
  std::stringstream ss(text);
  for (std::string part; std::getline(ss, part, ',');) {
    if (part.empty() || part == "\n") continue;
    int a = -1, b = -1;
    if (std::sscanf(part.c_str(), "%d-%d", &a, &b) == 2) {
      for (int c = a; c <= b; ++c) cpus.insert(c);
    } else if (std::sscanf(part.c_str(), "%d", &a) == 1) {
      cpus.insert(a);
    }
  }
  return cpus;
}

std::string format_cpu_list(const std::set<int>& cpus) {
  std::string out;
  for (auto it = cpus.begin(); it != cpus.end();) {
    const int start = *it;
    int end = start;
    ++it;
    while (it != cpus.end() && *it == end + 1) end = *it++;
    if (!out.empty()) out += ",";
    out += start == end ? std::to_string(start) : std::to_string(start) + "-" + std::to_string(end);
  }
  return out.empty() ? "-" : out;
}

std::set<int> process_cpu_affinity() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::set<int> cpus;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) cpus.insert(c);
  return cpus;
}

std::set<int> numa_nodes_of(const std::set<int>& cpus) {
  std::set<int> nodes;
  DIR* dir = opendir("/sys/devices/system/node");
  if (!dir) return nodes;
  while (dirent* e = readdir(dir)) {
    int node = -1;
    if (std::sscanf(e->d_name, "node%d", &node) != 1) continue;
    std::ifstream in(std::string("/sys/devices/system/node/") + e->d_name + "/cpulist");
    std::string list;
    std::getline(in, list);
    for (int c : parse_cpu_list(list))
      if (cpus.count(c)) {
        nodes.insert(node);
        break;
      }
  }
  closedir(dir);
  return nodes;
}

}  // namespace lockstep
