// The rest of Ollama's API as real Ollama clients use it: model listing (/api/tags), model facts
// (/api/show), running models (/api/ps) and the version. Answers come from the config alone: a routable
// model is always "installed"; the internal model is never listed and never shown.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "tinyroute/config.h"
#include "tinyroute/gateway.h"

namespace tinyroute::gateway {

using nlohmann::json;

// The Ollama API version this surface follows (clients gate features on it).
inline constexpr const char* kOllamaApiVersion = "0.9.0";

// One /api/tags entry for a routable model or an auto alias. `modified_at` is when the config was
// loaded, so listings are stable across calls.
json ollama_tag(const Config& config, const GatewayOptions& options, const std::string& name,
                const std::string& modified_at);
// The /api/show answer for a routable model or an auto alias. Throws FrontError: 403
// internal_model_forbidden for the internal model, 404 "model 'x' not found" for anything else.
json ollama_show(const Config& config, const GatewayOptions& options, const std::string& name,
                 const std::string& modified_at);
// Ollama's capability names for a model: completion, tools, vision, thinking, embedding.
json ollama_capabilities(const ModelConfig& model);

} // namespace tinyroute::gateway
