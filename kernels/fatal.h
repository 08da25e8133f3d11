// The one fatal-error path: every layer reports unrecoverable errors through LS_FATAL /
// LS_CHECK. The message names the process (rank, grid position, host) and file:line; the
// handler that comm/ installs then ends the whole MPI job (MPI_Abort) instead of hanging it.
#pragma once

#include <sstream>
#include <string>

namespace lockstep {

// Called with the fully formatted message; must not return. Default: print, exit(1).
using FatalHandler = void (*)(const std::string& message);
void set_fatal_handler(FatalHandler handler);

[[noreturn]] void fatal_at(const char* file, int line, const std::string& reason);

// "lockstep: fatal [r3 tp1 pp1 host=node07] comm/foo.cc:12: reason"
std::string format_fatal_message(const char* file, int line, const std::string& reason);

}  // namespace lockstep

// LS_FATAL("bad size " << n) — stream syntax so callers need no formatting library.
#define LS_FATAL(stream_expr)                                                  \
  do {                                                                         \
    std::ostringstream ls_fatal_os_;                                           \
    ls_fatal_os_ << stream_expr;                                               \
    ::lockstep::fatal_at(__FILE__, __LINE__, ls_fatal_os_.str());              \
  } while (0)

#define LS_CHECK(cond, stream_expr)                                            \
  do {                                                                         \
    if (!(cond)) LS_FATAL("check failed: " #cond ": " << stream_expr);        \
  } while (0)
