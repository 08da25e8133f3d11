// The HTTP endpoints (see openai_routes.h).
#include "app/serve/openai_routes.h"

#include <ctime>
#include <memory>

#include "app/openai/api_error.h"
#include "app/serve/client_connection.h"
#include "app/serve/completion_session.h"
#include "kernels/log.h"

namespace lockstep {
namespace {

using json = nlohmann::ordered_json;

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json");
}

void send_error(httplib::Response& res, const ApiError& e) { send_json(res, e.status, json(e.to_json())); }

json parse_body(const httplib::Request& req) {
  try {
    return json::parse(req.body);
  } catch (const nlohmann::json::exception& e) {
    throw ApiError(400, std::string("the request body is not valid JSON: ") + e.what());
  }
}

// Runs `fn`, turning ApiError (and anything unexpected) into an error response; the server and
// every other request carry on.
template <typename Fn>
void guarded(httplib::Response& res, Fn&& fn) {
  try {
    fn();
  } catch (const ApiError& e) {
    send_error(res, e);
  } catch (const std::exception& e) {
    LS_ERROR("request failed: " << e.what());
    send_error(res, ApiError(500, std::string("internal error: ") + e.what()));
  }
}

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

void install_openai_routes(httplib::Server& server, EngineService& service, const ModelContext& model,
                           const RouteConfig& config) {
  const std::int64_t started = static_cast<std::int64_t>(std::time(nullptr));
  server.set_payload_max_length(config.max_body_bytes);

  // --api-key guards the OpenAI API (/v1/...), as vLLM does; probes and metrics stay open.
  server.set_pre_routing_handler([&service, config](const httplib::Request& req, httplib::Response& res) {
    (void)service;
    if (config.api_key.empty() || !starts_with(req.path, "/v1")) return httplib::Server::HandlerResponse::Unhandled;
    if (req.get_header_value("Authorization") == "Bearer " + config.api_key)
      return httplib::Server::HandlerResponse::Unhandled;
    send_error(res, ApiError(401, "missing or invalid API key: send 'Authorization: Bearer <key>'"));
    return httplib::Server::HandlerResponse::Handled;
  });

  // Routing misses (404), over-long bodies (413) and the like get an OpenAI error body too.
  server.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 404) send_error(res, ApiError(404, "no route " + req.method + " " + req.path));
    else if (res.status == 413) send_error(res, ApiError(413, "the request body is too large"));
    else if (res.status >= 400) send_error(res, ApiError(res.status, "HTTP error " + std::to_string(res.status)));
  });
  server.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    send_error(res, ApiError(500, "internal error: " + what));
  });

  server.Get("/health", [&service](const httplib::Request&, httplib::Response& res) {
    res.status = service.healthy() && !service.draining() ? 200 : 503;
  });
  server.Get("/version", [config](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, {{"version", config.version}});
  });
  server.Get("/metrics", [&service, &model](const httplib::Request&, httplib::Response& res) {
    res.set_content(service.metrics_registry().render(service.metrics(), model.served_model_name),
                    "text/plain; version=0.0.4; charset=utf-8");
  });
  server.Get("/v1/models", [&model, config, started](const httplib::Request&, httplib::Response& res) {
    json card = {{"id", model.served_model_name},     {"object", "model"},         {"created", started},
                 {"owned_by", "lockstep"},            {"root", config.model_root}, {"parent", nullptr},
                 {"max_model_len", model.max_model_len}};
    send_json(res, 200, {{"object", "list"}, {"data", json::array({card})}});
  });

  auto generate = [&service, &model, config](Endpoint endpoint, const httplib::Request& req,
                                             httplib::Response& res) {
    guarded(res, [&] {
      if (service.draining()) throw ApiError(503, "the server is shutting down");
      if (service.metrics().waiting >= config.max_waiting_requests)
        throw ApiError(429, "too many requests are waiting (" + std::to_string(config.max_waiting_requests) +
                                "); retry later");
      const json body = parse_body(req);
      auto session = std::make_shared<CompletionSession>(service, model, parse_openai_request(endpoint, body, model));
      const bool stream = body.value("stream", false);
      auto conn = std::make_shared<ClientConnection>(req.remote_addr, req.remote_port, req.local_port);
      auto gone = [conn] { return conn->gone(); };
      if (!session->start(gone)) {
        res.status = 499;  // nginx's "client closed request": nobody reads it
        return;
      }
      if (!stream) {
        auto out = session->response(gone);
        if (out) send_json(res, 200, *out);
        else res.status = 499;
        return;
      }
      res.set_header("Cache-Control", "no-cache");
      res.set_chunked_content_provider("text/event-stream", [session, gone](std::size_t, httplib::DataSink& sink) {
        const bool ok = session->stream([&](std::string_view ev) { return sink.write(ev.data(), ev.size()); }, gone);
        if (ok) sink.done();
        return ok;
      });
    });
  };
  server.Post("/v1/completions", [generate](const httplib::Request& req, httplib::Response& res) {
    generate(Endpoint::Completions, req, res);
  });
  server.Post("/v1/chat/completions", [generate](const httplib::Request& req, httplib::Response& res) {
    generate(Endpoint::ChatCompletions, req, res);
  });

  // vLLM's /tokenize: {"prompt"} or {"messages"} in; {"count", "max_model_len", "tokens", "token_strs"} out.
  server.Post("/tokenize", [&model](const httplib::Request& req, httplib::Response& res) {
    guarded(res, [&] {
      const json b = parse_body(req);
      if (!b.is_object()) throw ApiError(400, "the request body must be a JSON object");
      if (!model.tokenizer) throw ApiError(400, "this model has no tokenizer");
      std::vector<int> ids;
      if (b.contains("messages")) {
        const bool add_special = b.value("add_special_tokens", false);
        ids = model.tokenizer->encode(render_chat_prompt(b, model), add_special);
      } else if (b.contains("prompt") && b["prompt"].is_string()) {
        ids = model.tokenizer->encode(b["prompt"].get<std::string>(), b.value("add_special_tokens", true));
      } else {
        throw ApiError(400, "send 'prompt' (a string) or 'messages'", "prompt");
      }
      json token_strs = nullptr;
      if (b.value("return_token_strs", false)) {
        token_strs = json::array();
        for (int id : ids) token_strs.push_back(model.tokenizer->id_to_token(id).value_or(""));
      }
      send_json(res, 200, {{"count", ids.size()}, {"max_model_len", model.max_model_len}, {"tokens", ids},
                           {"token_strs", token_strs}});
    });
  });
  server.Post("/detokenize", [&model](const httplib::Request& req, httplib::Response& res) {
    guarded(res, [&] {
      const json b = parse_body(req);
      if (!b.is_object() || !b.contains("tokens") || !b["tokens"].is_array())
        throw ApiError(400, "'tokens' (a list of token ids) is required", "tokens");
      if (!model.tokenizer) throw ApiError(400, "this model has no tokenizer");
      std::vector<int> ids;
      for (const json& t : b["tokens"]) {
        if (!t.is_number_integer()) throw ApiError(400, "'tokens' must hold integers", "tokens");
        ids.push_back(t.get<int>());
      }
      check_token_ids(ids, model, "tokens");
      send_json(res, 200, {{"prompt", model.tokenizer->decode(ids, /*skip_special_tokens=*/false)}});
    });
  });

  server.set_logger([](const httplib::Request& req, const httplib::Response& res) {
    if (req.path == "/health" || req.path == "/metrics") return;
    LS_INFO(req.remote_addr << ":" << req.remote_port << " \"" << req.method << " " << req.path << "\" "
                            << res.status);
  });
}

}  // namespace lockstep
