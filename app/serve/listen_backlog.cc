// ListenBacklog (see listen_backlog.h).
#include "app/serve/listen_backlog.h"

#include <httplib.h>
#include <sys/socket.h>

#include <cerrno>

namespace lockstep {

ListenBacklog::ListenBacklog(httplib::Server& server) : socket_(std::make_shared<int>(-1)) {
  // cpp-httplib calls this for each address it tries to bind, in turn: the last is the bound one.
  server.set_socket_options([socket = socket_](socket_t sock) {
    httplib::default_socket_options(sock);
    *socket = sock;
  });
}

bool ListenBacklog::raise(int backlog) const {
  if (*socket_ < 0) {
    errno = EBADF;
    return false;
  }
  return ::listen(*socket_, backlog) == 0;
}

}  // namespace lockstep
