// Routing: which model a request names, the internal-model guard, and the candidate list (the
// chosen model then its fallbacks). The classification itself is the caller's Router.
#pragma once

#include <string>
#include <vector>

#include "tinyroute/config.h"
#include "tinyroute/gateway.h"

namespace tinyroute::gateway {

// True if `name` means the internal model: its name, an alias, its file stem, or "family:tag" of one
// of those. Case-insensitive, so "TinyLlama-1.1B-Chat" cannot slip through.
bool is_internal_model(const Config& config, const std::string& name);
// A config.models entry by name; also accepts Ollama's implicit ":latest" tag.
const ModelConfig* find_answer_model(const Config& config, const std::string& name);
bool is_auto_alias(const GatewayOptions& options, const std::string& name);
// Names clients may use: config models (never the internal model) and the auto aliases.
std::vector<std::string> listed_models(const Config& config, const GatewayOptions& options);
// decision.model then its fallbacks, without duplicates or internal names.
std::vector<std::string> candidates(const Config& config, const RouteDecision& decision);

} // namespace tinyroute::gateway
