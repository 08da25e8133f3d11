// The HTTP server's connection threads. cpp-httplib serves a connection (a keep-alive client, or
// a stream until its last token) on one thread of its task queue, and its ThreadPool starts a
// fixed number up front: with that many streams in flight, every other connection, /health and
// /metrics included, waited in its queue behind them. ConnectionThreads starts a thread when a
// connection finds none idle, up to a cap, so that the server answers whatever is connected
// below the cap; only past it do connections wait for a thread. A thread idle for idle_timeout
// ends (a burst of 2,000 streams leaves no 2,000 threads behind), keeping keep_idle of them
// for the next requests.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <list>
#include <mutex>
#include <thread>
#include <vector>

#include <httplib.h>

namespace lockstep {

class ConnectionThreads : public httplib::TaskQueue {
 public:
  explicit ConnectionThreads(std::size_t max_threads, std::chrono::milliseconds idle_timeout = std::chrono::seconds(60),
                             std::size_t keep_idle = 8);
  ~ConnectionThreads() override;

  // Runs fn on an idle thread, a new one while fewer than max_threads run, else when one frees.
  void enqueue(std::function<void()> fn) override;
  // Runs what is queued, then joins every thread.
  void shutdown() override;

  std::size_t threads() const;       // running (started and not ended)
  std::size_t idle_threads() const;  // waiting for a connection

 private:
  void work();
  // Joins the threads that ended for idleness (each moved its handle to ended_ on its way out).
  void join_ended(std::unique_lock<std::mutex>& lock);

  const std::size_t max_threads_;
  const std::chrono::milliseconds idle_timeout_;
  const std::size_t keep_idle_;
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> jobs_;
  std::list<std::thread> threads_;
  std::vector<std::thread> ended_;
  std::size_t idle_ = 0;
  bool shutdown_ = false;
};

}  // namespace lockstep
