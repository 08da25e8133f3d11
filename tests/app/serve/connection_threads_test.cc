// The serve command's connection threads: a thread for every connection up to the cap, started
// only when none is idle, so that /health answers while streams hold threads; past the cap,
// connections wait for one to free.
#include "app/serve/connection_threads.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace lockstep {
namespace {

using namespace std::chrono_literals;

// A gate jobs wait at until opened; counts who arrived.
class Gate {
 public:
  void arrive_and_wait() {
    std::unique_lock<std::mutex> lock(m_);
    ++arrived_;
    cv_.notify_all();
    cv_.wait(lock, [this] { return open_; });
  }
  bool wait_for_arrivals(int n, std::chrono::milliseconds within) {
    std::unique_lock<std::mutex> lock(m_);
    return cv_.wait_for(lock, within, [&] { return arrived_ >= n; });
  }
  int arrived() {
    std::lock_guard<std::mutex> lock(m_);
    return arrived_;
  }
  void open() {
    std::lock_guard<std::mutex> lock(m_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  int arrived_ = 0;
  bool open_ = false;
};

TEST(ConnectionThreads, RunsEveryJobAtOnceBelowTheCap) {
  ConnectionThreads pool(64);
  Gate gate;
  for (int i = 0; i < 40; ++i) pool.enqueue([&] { gate.arrive_and_wait(); });
  // A fixed pool of fewer threads would leave some jobs queued behind the blocked ones.
  EXPECT_TRUE(gate.wait_for_arrivals(40, 10s)) << gate.arrived() << " of 40 jobs started";
  EXPECT_EQ(pool.threads(), 40u);
  gate.open();
  pool.shutdown();
}

TEST(ConnectionThreads, StartsAThreadOnlyWhenNoneIsIdle) {
  ConnectionThreads pool(64);
  for (int i = 0; i < 20; ++i) {
    std::atomic<bool> done{false};
    pool.enqueue([&] { done = true; });
    while (!done || pool.idle_threads() == 0) std::this_thread::sleep_for(1ms);  // back to waiting
  }
  EXPECT_EQ(pool.threads(), 1u);
}

TEST(ConnectionThreads, PastTheCapJobsWaitForAThread) {
  ConnectionThreads pool(2);
  Gate gate;
  std::atomic<int> third{0};
  pool.enqueue([&] { gate.arrive_and_wait(); });
  pool.enqueue([&] { gate.arrive_and_wait(); });
  pool.enqueue([&] { ++third; });
  ASSERT_TRUE(gate.wait_for_arrivals(2, 10s));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(third.load(), 0) << "ran without a free thread";
  EXPECT_EQ(pool.threads(), 2u);
  gate.open();
  pool.shutdown();  // runs what is queued first
  EXPECT_EQ(third.load(), 1);
}

// A burst's threads end once idle past the timeout, all but keep_idle; the pool serves the next
// burst as before.
TEST(ConnectionThreads, IdleThreadsEndAfterTheTimeoutButAFew) {
  ConnectionThreads pool(64, 50ms, 2);
  Gate burst;
  for (int i = 0; i < 10; ++i) pool.enqueue([&] { burst.arrive_and_wait(); });
  ASSERT_TRUE(burst.wait_for_arrivals(10, 10s));
  EXPECT_EQ(pool.threads(), 10u);
  burst.open();
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (pool.threads() > 2 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(pool.threads(), 2u) << "idle threads did not end";
  std::this_thread::sleep_for(200ms);  // several timeouts later, the kept ones stay
  EXPECT_EQ(pool.threads(), 2u);
  Gate next;
  for (int i = 0; i < 5; ++i) pool.enqueue([&] { next.arrive_and_wait(); });
  EXPECT_TRUE(next.wait_for_arrivals(5, 10s)) << next.arrived() << " of 5 jobs started";
  EXPECT_EQ(pool.threads(), 5u);
  next.open();
  pool.shutdown();
  EXPECT_EQ(pool.threads(), 0u);
}

// The server as lockstep serve builds it: with requests holding threads (as streams do), /health
// still answers at once.
TEST(ConnectionThreads, HealthAnswersWhileStreamsHoldThreads) {
  httplib::Server server;
  server.new_task_queue = [] { return new ConnectionThreads(256); };
  Gate gate;
  server.Get("/hold", [&](const httplib::Request&, httplib::Response& res) {
    gate.arrive_and_wait();
    res.set_content("done", "text/plain");
  });
  server.Get("/health", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok", "text/plain"); });
  const int port = server.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  std::thread listener([&] { server.listen_after_bind(); });
  constexpr int kHeld = 24;
  std::vector<std::thread> clients;
  for (int i = 0; i < kHeld; ++i)
    clients.emplace_back([port] {
      httplib::Client c("127.0.0.1", port);
      c.set_read_timeout(30, 0);
      c.Get("/hold");
    });
  const bool all_held = gate.wait_for_arrivals(kHeld, 10s);
  EXPECT_TRUE(all_held) << gate.arrived() << " of " << kHeld << " requests arrived";
  if (all_held) {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(2, 0);
    const auto start = std::chrono::steady_clock::now();
    const httplib::Result health = c.Get("/health");
    EXPECT_TRUE(health) << "no answer within 2 s while " << kHeld << " requests are held";
    if (health) EXPECT_EQ(health->body, "ok");
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  }
  gate.open();
  for (std::thread& t : clients) t.join();
  server.stop();
  listener.join();
}

}  // namespace
}  // namespace lockstep
