// The process's open-file limit, which bounds the connections the server can hold: every
// connection is a descriptor, and many systems start processes with a soft limit of 1024 (past
// it, accept() fails and new clients hang in the backlog). As vLLM does, the serve command
// raises the soft limit towards the hard one before it listens.
#pragma once

#include <cstddef>

namespace lockstep {

// Raises the soft RLIMIT_NOFILE to at least `wanted` where the hard limit allows (never lowers
// it); returns the soft limit in force afterwards.
std::size_t raise_open_file_limit(std::size_t wanted);

}  // namespace lockstep
