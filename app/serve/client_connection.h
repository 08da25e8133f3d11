// Whether the HTTP client of a request is still there. cpp-httplib (0.11, Debian 12) hands a
// handler no socket, so the socket is found once by its two endpoints (the request's remote
// and local address) among this process's descriptors, then probed without blocking: a peer
// that closed shows up as end-of-file or an error. A request whose client has gone is aborted
// and its KV blocks freed, streamed or not.
#pragma once

#include <string>

namespace lockstep {

class ClientConnection {
 public:
  ClientConnection(std::string remote_addr, int remote_port, int local_port);
  // True once the peer has closed or reset the connection (false when unknown).
  bool gone();

 private:
  bool same_endpoints(int fd) const;

  std::string remote_addr_;
  int remote_port_, local_port_;
  int fd_ = -1;
  bool gone_ = false;
};

}  // namespace lockstep
