// `lockstep serve` (see serve_command.h).
#include "app/serve/serve_command.h"

#include <httplib.h>
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdio>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "app/engine/engine_service.h"
#include "app/serve/connection_threads.h"
#include "app/serve/http_listener.h"
#include "app/serve/listen_backlog.h"
#include "app/serve/open_file_limit.h"
#include "app/serve/openai_routes.h"
#include "comm/mpi_env.h"
#include "kernels/log.h"

#ifndef LOCKSTEP_VERSION
#define LOCKSTEP_VERSION "dev"
#endif

namespace lockstep {
namespace {

// SIGINT/SIGTERM only set a flag (any thread may take a signal: MPI has started its own), and
// a watcher thread acts on it.
std::atomic<int> g_shutdown_signal{0};
static_assert(std::atomic<int>::is_always_lock_free);

extern "C" void note_shutdown_signal(int sig) { g_shutdown_signal.store(sig); }

void on_shutdown_signals(void (*handler)(int)) {
  struct sigaction sa {};
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

}  // namespace

CLI::App* add_serve_command(CLI::App& app, ServeOptions& o) {
  CLI::App* cmd = app.add_subcommand("serve", "Serve the OpenAI API from rank 0 while every rank runs the model");
  add_model_options(*cmd, o.model);
  cmd->add_option("--host", o.host, "Address to listen on (rank 0)");
  cmd->add_option("--port", o.port, "Port to listen on (rank 0)")->check(CLI::Range(0, 65535));
  cmd->add_option("--api-key", o.api_key, "Require 'Authorization: Bearer KEY' on /v1/* (default: $VLLM_API_KEY)");
  cmd->add_option("--shutdown-timeout", o.shutdown_timeout,
                  "Seconds running requests may take to finish after SIGINT/SIGTERM before they are aborted")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--max-waiting-requests", o.max_waiting_requests, "Queued requests beyond which new ones get 429")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--http-threads", o.http_threads,
                  "Most connections served at once (a stream holds one; threads start as connections need them "
                  "and end after a minute idle)")
      ->check(CLI::PositiveNumber);
  return cmd;
}

int run_serve(const MpiEnvironment& env, const ServeOptions& o) {
  signal(SIGPIPE, SIG_IGN);  // a client that vanishes mid-write is an error return, not a death

  std::unique_ptr<ModelRuntime> rt = ModelRuntime::create_everywhere(env, o.model, "serve");
  if (!rt) return 2;
  if (!rt->leader()) {
    // Followers ignore the signals: rank 0 drains and then sends the shutdown plan.
    on_shutdown_signals(SIG_IGN);
    rt->engine().run_follower();
    return 0;
  }

  on_shutdown_signals(note_shutdown_signal);
  EngineService service(rt->engine(), rt->scheduler(), rt->blocks());
  const ModelContext& model = rt->context();
  RouteConfig routes;
  routes.api_key = o.api_key;
  for (const char* var : {"VLLM_API_KEY", "LOCKSTEP_API_KEY"})
    if (routes.api_key.empty() && std::getenv(var)) routes.api_key = std::getenv(var);
  routes.version = LOCKSTEP_VERSION;
  routes.model_root = o.model.model;
  routes.max_waiting_requests = o.max_waiting_requests;

  // A descriptor a connection, plus the process's own (model files, MPI, CUDA): 256 to spare.
  const std::size_t wanted_files = static_cast<std::size_t>(o.http_threads) + 256;
  if (const std::size_t files = raise_open_file_limit(wanted_files); files < wanted_files)
    LS_WARN("the open-file limit is " << files << " (hard limit; `ulimit -n`): the server can hold fewer than the "
                                      << o.http_threads << " connections --http-threads allows");
  httplib::Server server;
  const int threads = o.http_threads;
  server.new_task_queue = [threads] { return new ConnectionThreads(static_cast<std::size_t>(threads)); };
  server.set_keep_alive_timeout(2);
  const ListenBacklog backlog(server);
  install_openai_routes(server, service, model, routes);
  const int port = o.port == 0 ? server.bind_to_any_port(o.host) : (server.bind_to_port(o.host, o.port) ? o.port : -1);
  if (port >= 0 && !backlog.raise(SOMAXCONN))  // not fatal: connection bursts are only slower
    LS_WARN("cannot raise the listen backlog (" << std::strerror(errno) << "): bursts of new connections may wait");
  if (port < 0) {
    std::fprintf(stderr, "lockstep serve: error: cannot listen on %s:%d (in use, or not an address of this host)\n",
                 o.host.c_str(), o.port);
    rt->engine().shutdown();
    return 1;
  }
  const std::string shown_host = o.host == "0.0.0.0" || o.host == "::" ? env.host() : o.host;
  std::fprintf(stderr,
               "lockstep serve: model '%s' on %d rank(s); OpenAI API at http://%s:%d/v1\n"
               "  try: curl http://%s:%d/v1/completions -H 'Content-Type: application/json' \\\n"
               "         -d '{\"model\": \"%s\", \"prompt\": \"Hello\", \"max_tokens\": 16}'\n",
               model.served_model_name.c_str(), env.world_size(), shown_host.c_str(), port, shown_host.c_str(), port,
               model.served_model_name.c_str());
  std::fflush(stderr);

  std::atomic<bool> listener_failed{false};
  HttpListener http(server, [&] { listener_failed = true; });
  std::atomic<bool> finished{false};
  std::thread watcher([&] {
    while (!finished) {
      const int sig = g_shutdown_signal.load();
      if (sig == 0 && !listener_failed) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
      if (sig != 0) {
        LS_INFO("received " << (sig == SIGINT ? "SIGINT" : "SIGTERM") << ": no new requests; running ones have "
                            << o.shutdown_timeout << " s to finish");
        http.close();  // no new connections; handlers still streaming keep theirs
      } else {
        LS_ERROR("the HTTP listener on " << o.host << ":" << port << " stopped accepting connections (accept() "
                                         << "failed; see `ulimit -n` and the system's open-file and socket limits); "
                                         << "ending the job so it can be restarted. Running requests have "
                                         << o.shutdown_timeout << " s to finish");
      }
      service.stop(std::chrono::milliseconds(static_cast<long>(o.shutdown_timeout * 1000)));
      return;
    }
  });

  service.run();  // the engine loop, until a signal or a dead listener ends it; then every rank is told to leave
  http.stop();
  finished = true;
  watcher.join();
  LS_INFO("lockstep serve: stopped");
  return listener_failed ? 1 : 0;
}

}  // namespace lockstep
