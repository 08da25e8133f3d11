// An error answered in OpenAI's shape: {"error": {"message", "type", "param", "code"}} with
// the HTTP status it goes out with.
#pragma once

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace lockstep {

struct ApiError : std::runtime_error {
  int status;
  std::string type;
  std::string param;
  ApiError(int status_, std::string message, std::string param_ = "")
      : std::runtime_error(std::move(message)), status(status_), type(type_for(status_)), param(std::move(param_)) {}

  nlohmann::json to_json() const {
    return {{"error",
             {{"message", what()}, {"type", type}, {"param", param.empty() ? nlohmann::json(nullptr) : nlohmann::json(param)},
              {"code", status}}}};
  }
  static std::string type_for(int status) {
    switch (status) {
      case 400: return "invalid_request_error";
      case 401: return "authentication_error";
      case 404: return "not_found_error";
      case 413: return "invalid_request_error";
      case 429: return "rate_limit_error";
      case 503: return "service_unavailable_error";
      default: return "server_error";
    }
  }
};

}  // namespace lockstep
