// The serve command's accept loop: it ends on close()/stop() without reporting a failure, also
// when they come before the loop has started; and when accept() fails under it (the listening
// socket shut down, which cpp-httplib does not retry), it reports the failure once.
#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "app/serve/http_listener.h"
#include "app/serve/listen_backlog.h"

namespace lockstep {
namespace {

struct Served {
  httplib::Server server;
  ListenBacklog backlog{server};
  int port = -1;
  Served() {
    server.Get("/ping", [](const httplib::Request&, httplib::Response& res) { res.set_content("pong", "text/plain"); });
    port = server.bind_to_any_port("127.0.0.1");
  }
  bool answers() const {
    httplib::Client client("127.0.0.1", port);
    client.set_connection_timeout(1);
    const auto res = client.Get("/ping");
    return res && res->status == 200 && res->body == "pong";
  }
};

template <class Pred>
bool within(std::chrono::milliseconds limit, Pred pred) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

TEST(HttpListener, ServesUntilStoppedWithoutReportingAFailure) {
  Served s;
  ASSERT_GT(s.port, 0);
  std::atomic<int> failures{0};
  HttpListener listener(s.server, [&] { ++failures; });
  EXPECT_TRUE(within(std::chrono::seconds(5), [&] { return s.answers(); }));
  listener.close();
  listener.close();  // twice, as the signal watcher and the main thread may
  listener.stop();
  EXPECT_FALSE(s.answers());
  EXPECT_EQ(failures, 0);
}

TEST(HttpListener, AStopBeforeTheLoopRunsIsNotLost) {
  for (int i = 0; i < 20; ++i) {
    Served s;
    ASSERT_GT(s.port, 0);
    std::atomic<int> failures{0};
    HttpListener listener(s.server, [&] { ++failures; });
    listener.stop();  // would wait forever if cpp-httplib's stop() came before its loop
    EXPECT_EQ(failures, 0);
  }
}

TEST(HttpListener, AnAcceptThatFailsIsReported) {
  Served s;
  ASSERT_GT(s.port, 0);
  std::atomic<int> failures{0};
  HttpListener listener(s.server, [&] { ++failures; });
  ASSERT_TRUE(within(std::chrono::seconds(5), [&] { return s.answers(); }));
  // A listening socket shut down under the loop: accept() fails with EINVAL, which cpp-httplib
  // does not retry; it closes the socket and leaves its loop.
  ASSERT_EQ(::shutdown(s.backlog.socket(), SHUT_RDWR), 0);
  EXPECT_TRUE(within(std::chrono::seconds(5), [&] { return failures.load() == 1; }));
  EXPECT_FALSE(s.answers());
  listener.stop();
  EXPECT_EQ(failures, 1);
}

}  // namespace
}  // namespace lockstep
