// ConnectionThreads (see connection_threads.h).
#include "app/serve/connection_threads.h"

namespace lockstep {

ConnectionThreads::ConnectionThreads(std::size_t max_threads) : max_threads_(max_threads < 1 ? 1 : max_threads) {}

ConnectionThreads::~ConnectionThreads() { shutdown(); }

void ConnectionThreads::enqueue(std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(mutex_);
  jobs_.push_back(std::move(fn));
  // Idle threads take queued jobs one each; a new thread only for a job none of them will take.
  if (jobs_.size() > idle_ && threads_.size() < max_threads_ && !shutdown_) threads_.emplace_back([this] { work(); });
  ready_.notify_one();
}

void ConnectionThreads::work() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    ++idle_;
    ready_.wait(lock, [this] { return !jobs_.empty() || shutdown_; });
    --idle_;
    if (jobs_.empty()) return;  // shut down, nothing left
    std::function<void()> fn = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    fn();
    lock.lock();
  }
}

void ConnectionThreads::shutdown() {
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    shutdown_ = true;
    threads.swap(threads_);
  }
  ready_.notify_all();
  for (std::thread& t : threads) t.join();
}

std::size_t ConnectionThreads::threads() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return threads_.size();
}

std::size_t ConnectionThreads::idle_threads() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return idle_;
}

}  // namespace lockstep
