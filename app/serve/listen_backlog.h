// The HTTP server's listen backlog. cpp-httplib (Debian 12 ships 0.11 as a compiled library)
// listens with a backlog of 5: a burst of new connections, such as a client opening 32 streams
// at once, overflows the accept queue, the kernel drops their SYNs, and the clients resend
// them only after 1, 3, 7 ... s (TTFTs of 1-20 s at 8-32 streams on a GPU host, where the
// engine itself answers in 0.1 s). Linux takes a second listen() on a listening socket as its
// new backlog, so the server's socket is noted when it is made and its backlog raised after
// binding.
#pragma once

#include <memory>

namespace httplib {
class Server;
}

namespace lockstep {

class ListenBacklog {
 public:
  // Installs the server's socket options (cpp-httplib's defaults, and noting the socket): call
  // before binding.
  explicit ListenBacklog(httplib::Server& server);
  // After binding: the listening socket's backlog to `backlog` (the kernel caps it at
  // net.core.somaxconn). False, with errno set, when there is no bound socket or listen() fails.
  bool raise(int backlog) const;
  // The listening socket (-1 before binding).
  int socket() const { return *socket_; }

 private:
  std::shared_ptr<int> socket_;  // the last socket cpp-httplib made to listen on (-1: none)
};

}  // namespace lockstep
