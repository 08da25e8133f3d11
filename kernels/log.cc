// Process identity and rank-aware log output (see log.h).
#include "kernels/log.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace lockstep {
namespace {

// Written once at start-up, read by every log line; guarded so HTTP threads may log.
std::mutex g_identity_mutex;
ProcessIdentity g_identity;

LogLevel level_from_env() {
  const char* v = std::getenv("LOCKSTEP_LOG_LEVEL");
  if (!v) return LogLevel::Info;
  if (!std::strcmp(v, "debug")) return LogLevel::Debug;
  if (!std::strcmp(v, "warn")) return LogLevel::Warn;
  if (!std::strcmp(v, "error")) return LogLevel::Error;
  return LogLevel::Info;
}

const char* level_name(LogLevel l) {
  switch (l) {
    case LogLevel::Debug: return "debug";
    case LogLevel::Info: return "info";
    case LogLevel::Warn: return "warn";
    case LogLevel::Error: return "error";
  }
  return "";
}

}  // namespace

void set_process_identity(const ProcessIdentity& id) {
  std::lock_guard lock(g_identity_mutex);
  g_identity = id;
}

ProcessIdentity process_identity() {
  std::lock_guard lock(g_identity_mutex);
  return g_identity;
}

std::string process_tag() {
  const ProcessIdentity id = process_identity();
  if (id.world_rank < 0) return "";
  std::string tag = "[r" + std::to_string(id.world_rank);
  if (id.tp_rank >= 0) tag += " tp" + std::to_string(id.tp_rank) + " pp" + std::to_string(id.pp_rank);
  return tag + "]";
}

bool log_enabled(LogLevel level) {
  static const LogLevel threshold = level_from_env();
  static const bool all_ranks = std::getenv("LOCKSTEP_LOG_ALL_RANKS") != nullptr;
  if (level < threshold) return false;
  if (level >= LogLevel::Warn || all_ranks) return true;
  const int rank = process_identity().world_rank;
  return rank <= 0;
}

void log_line(LogLevel level, const std::string& message) {
  const std::string tag = process_tag();
  std::string line = tag.empty() ? "" : tag + " ";
  if (level != LogLevel::Info) line += std::string(level_name(level)) + ": ";
  line += message;
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace lockstep
