// The serve command's listen backlog: with cpp-httplib's own (5) a burst of connections to a
// server that has not accepted them yet leaves most of them waiting for a resent SYN (1 s on
// Linux); raised, the kernel completes every handshake at once. The server here binds but never
// accepts, so the accept queue alone decides.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <vector>

#include "app/serve/listen_backlog.h"

namespace lockstep {
namespace {

// How many of `count` non-blocking connects to 127.0.0.1:port complete within `wait`.
int connects_completed(int port, int count, std::chrono::milliseconds wait) {
  std::vector<int> fds;
  for (int i = 0; i < count; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);  // EINPROGRESS, or done at once
    fds.push_back(fd);
  }
  std::vector<pollfd> pending;
  for (int fd : fds) pending.push_back({fd, POLLOUT, 0});
  const auto deadline = std::chrono::steady_clock::now() + wait;
  int completed = 0;
  while (!pending.empty()) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || ::poll(pending.data(), pending.size(), static_cast<int>(left.count())) <= 0) break;
    std::vector<pollfd> still;
    for (const pollfd& p : pending) {
      if (!(p.revents & (POLLOUT | POLLERR | POLLHUP))) {
        still.push_back({p.fd, POLLOUT, 0});
        continue;
      }
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(p.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err == 0) ++completed;
    }
    pending = std::move(still);
  }
  for (int fd : fds) ::close(fd);
  return completed;
}

TEST(ListenBacklog, ABurstOfConnectionsCompletesWithoutResentSyns) {
  constexpr int kBurst = 64;  // more than cpp-httplib's backlog of 5, less than SOMAXCONN
  {
    httplib::Server server;
    const ListenBacklog backlog(server);
    const int port = server.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port, 0);
    ASSERT_TRUE(backlog.raise(SOMAXCONN));
    EXPECT_EQ(connects_completed(port, kBurst, std::chrono::milliseconds(500)), kBurst);
  }
  {  // cpp-httplib's backlog alone: the test above would fail without the raise.
    httplib::Server server;
    const int port = server.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port, 0);
    EXPECT_LT(connects_completed(port, kBurst, std::chrono::milliseconds(500)), kBurst);
  }
}

TEST(ListenBacklog, RaisingBeforeBindingFails) {
  httplib::Server server;
  const ListenBacklog backlog(server);
  EXPECT_FALSE(backlog.raise(SOMAXCONN));
}

}  // namespace
}  // namespace lockstep
