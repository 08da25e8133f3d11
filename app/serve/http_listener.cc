// HttpListener (see http_listener.h).
#include "app/serve/http_listener.h"

#include <httplib.h>

#include <chrono>

namespace lockstep {

HttpListener::HttpListener(httplib::Server& server, std::function<void()> on_failure)
    : server_(server), on_failure_(std::move(on_failure)) {
  thread_ = std::thread([this] {
    // True when stop() closed the socket, false when accept() failed and cpp-httplib gave up.
    const bool stopped = server_.listen_after_bind();
    finished_ = true;
    if (!stopped && !stopping_ && on_failure_) on_failure_();
  });
}

HttpListener::~HttpListener() { stop(); }

void HttpListener::close() {
  stopping_ = true;
  const std::lock_guard<std::mutex> lock(mutex_);
  if (closed_) return;
  closed_ = true;
  // Server::stop() does nothing until the loop is running, so a close() that came first would be
  // lost and stop()'s join would wait forever: wait for the loop to start (or to have ended).
  // (After a failed accept cpp-httplib 0.11 closes the socket but keeps its number until its
  // connection threads end; a close() in that window closes the number again. Not guarded: it
  // needs the failure and a shutdown within the same drain.)
  while (!finished_ && !server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (!finished_) server_.stop();
}

void HttpListener::stop() {
  close();
  const std::lock_guard<std::mutex> lock(mutex_);
  if (thread_.joinable()) thread_.join();
}

}  // namespace lockstep
