// The HTTP endpoints `lockstep serve` answers on rank 0, with vLLM's shapes: /v1/models,
// /v1/completions, /v1/chat/completions (streamed or not), /tokenize, /detokenize, /health,
// /metrics, /version. Errors are OpenAI error objects with their status (400 bad request, 401
// missing or wrong --api-key on /v1/*, 404 unknown route or model, 413 body too large, 429 queue
// full, 503 shutting down or unhealthy).
#pragma once

#include <httplib.h>

#include <cstdint>
#include <string>

#include "app/engine/engine_service.h"
#include "app/openai/openai_request.h"

namespace lockstep {

struct RouteConfig {
  std::string api_key;                 // empty: no authentication
  std::string version;
  std::string model_root;              // the --model path /v1/models reports
  std::size_t max_body_bytes = 32u << 20;
  std::size_t max_waiting_requests = 4096;  // beyond this a new request gets 429
};

void install_openai_routes(httplib::Server& server, EngineService& service, const ModelContext& model,
                           const RouteConfig& config);

}  // namespace lockstep
