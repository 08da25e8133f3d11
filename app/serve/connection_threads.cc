// ConnectionThreads (see connection_threads.h).
#include "app/serve/connection_threads.h"

#include <algorithm>

namespace lockstep {

ConnectionThreads::ConnectionThreads(std::size_t max_threads, std::chrono::milliseconds idle_timeout,
                                     std::size_t keep_idle)
    : max_threads_(std::max<std::size_t>(max_threads, 1)), idle_timeout_(idle_timeout), keep_idle_(keep_idle) {}

ConnectionThreads::~ConnectionThreads() { shutdown(); }

void ConnectionThreads::enqueue(std::function<void()> fn) {
  std::unique_lock<std::mutex> lock(mutex_);
  jobs_.push_back(std::move(fn));
  // Idle threads take queued jobs one each; a new thread only for a job none of them will take.
  if (jobs_.size() > idle_ && threads_.size() < max_threads_ && !shutdown_) threads_.emplace_back([this] { work(); });
  ready_.notify_one();
  join_ended(lock);
}

void ConnectionThreads::work() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    ++idle_;
    const bool woken = ready_.wait_for(lock, idle_timeout_, [this] { return !jobs_.empty() || shutdown_; });
    --idle_;
    if (!woken && idle_ >= keep_idle_) {
      // Idle too long, and enough others wait: end, leaving this thread's handle to be joined.
      const auto self = std::find_if(threads_.begin(), threads_.end(),
                                     [](const std::thread& t) { return t.get_id() == std::this_thread::get_id(); });
      if (self != threads_.end()) {  // not yet taken by shutdown(), which joins it itself
        ended_.push_back(std::move(*self));
        threads_.erase(self);
        return;
      }
    }
    if (jobs_.empty()) {
      if (shutdown_) return;  // shut down, nothing left
      continue;               // timed out but kept
    }
    std::function<void()> fn = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    fn();
    lock.lock();
  }
}

void ConnectionThreads::join_ended(std::unique_lock<std::mutex>& lock) {
  if (ended_.empty()) return;
  std::vector<std::thread> ended;
  ended.swap(ended_);
  lock.unlock();  // an ended thread may still need the lock on its way out of work()
  for (std::thread& t : ended) t.join();
  lock.lock();
}

void ConnectionThreads::shutdown() {
  std::list<std::thread> threads;
  std::unique_lock<std::mutex> lock(mutex_);
  shutdown_ = true;
  threads.swap(threads_);
  ready_.notify_all();
  join_ended(lock);
  lock.unlock();
  for (std::thread& t : threads) t.join();
  lock.lock();
  join_ended(lock);  // any that ended while the others were joined
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
