// The HTTP server's accept loop on a thread of its own. cpp-httplib's loop retries accept() on
// EMFILE, EINTR and EAGAIN; on any other error (ENFILE, ENOBUFS, ENOMEM, a socket broken under
// it) it closes the listening socket and returns, and no client can connect again. A server
// left like that would hold its GPUs and serve nothing, so the listener reports it (`on_failure`,
// from its thread, once cpp-httplib's connections opened before have ended) and `lockstep serve`
// ends the job with a message instead.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <thread>

namespace httplib {
class Server;
}

namespace lockstep {

class HttpListener {
 public:
  // Starts accepting on `server`, already bound. on_failure runs once if the loop ends without
  // close() or stop().
  HttpListener(httplib::Server& server, std::function<void()> on_failure);
  ~HttpListener();  // stop()
  HttpListener(const HttpListener&) = delete;
  HttpListener& operator=(const HttpListener&) = delete;

  // Closes the listening socket: no new connections; those open (streams) keep going. Returns
  // at once; safe from any thread, more than once, before the loop has started and after it has
  // failed.
  void close();
  // close(), then waits for the loop and cpp-httplib's connection threads to end.
  void stop();

 private:
  httplib::Server& server_;
  std::function<void()> on_failure_;
  std::mutex mutex_;  // close() and stop() from several threads
  bool closed_ = false;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> finished_{false};
  std::thread thread_;
};

}  // namespace lockstep
