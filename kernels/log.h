// Rank-aware logging: every line carries "[r3 tp1 pp1]"; by default only rank 0 prints at
// info level and every rank prints warnings and errors (LOCKSTEP_LOG_LEVEL=debug|info|warn|error,
// LOCKSTEP_LOG_ALL_RANKS=1 to hear from every rank).
#pragma once

#include <sstream>
#include <string>

namespace lockstep {

enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3 };

// Who this process is; set once by comm/ when the rank grid is known.
struct ProcessIdentity {
  int world_rank = -1;
  int tp_rank = -1;
  int pp_rank = -1;
  std::string host;
};
void set_process_identity(const ProcessIdentity& id);
ProcessIdentity process_identity();
// "[r3 tp1 pp1]", "[r3]" before the grid exists, "" outside MPI.
std::string process_tag();

bool log_enabled(LogLevel level);
void log_line(LogLevel level, const std::string& message);

}  // namespace lockstep

#define LS_LOG(level, stream_expr)                                            \
  do {                                                                        \
    if (::lockstep::log_enabled(level)) {                                     \
      std::ostringstream ls_log_os_;                                          \
      ls_log_os_ << stream_expr;                                              \
      ::lockstep::log_line(level, ls_log_os_.str());                          \
    }                                                                         \
  } while (0)
#define LS_DEBUG(x) LS_LOG(::lockstep::LogLevel::Debug, x)
#define LS_INFO(x) LS_LOG(::lockstep::LogLevel::Info, x)
#define LS_WARN(x) LS_LOG(::lockstep::LogLevel::Warn, x)
#define LS_ERROR(x) LS_LOG(::lockstep::LogLevel::Error, x)
