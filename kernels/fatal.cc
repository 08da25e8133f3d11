// Formatting and dispatch of fatal errors (see fatal.h).
#include "kernels/fatal.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "kernels/log.h"

namespace lockstep {
namespace {

void default_handler(const std::string& message) {
  std::fprintf(stderr, "%s\n", message.c_str());
  std::fflush(stderr);
  std::exit(1);
}

std::atomic<FatalHandler> g_handler{&default_handler};

}  // namespace

void set_fatal_handler(FatalHandler handler) { g_handler.store(handler ? handler : &default_handler); }

std::string format_fatal_message(const char* file, int line, const std::string& reason) {
  const ProcessIdentity id = process_identity();
  std::string where;
  if (id.world_rank >= 0) {
    where = "[r" + std::to_string(id.world_rank);
    if (id.tp_rank >= 0) where += " tp" + std::to_string(id.tp_rank) + " pp" + std::to_string(id.pp_rank);
    where += " host=" + id.host + "] ";
  }
  return "lockstep: fatal " + where + file + ":" + std::to_string(line) + ": " + reason;
}

void fatal_at(const char* file, int line, const std::string& reason) {
  g_handler.load()(format_fatal_message(file, line, reason));
  std::abort();  // a handler that returns is itself a bug
}

}  // namespace lockstep
