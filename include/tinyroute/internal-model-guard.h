// The product's central invariant in one place: the internal model classifies and routes, and never
// answers a user. The config reader refuses it as an answer model (with FILE:LINE), the router and
// model selection check it again for configs built in code, and the gateway refuses a request that
// names it, all through these functions and Config::is_internal_model_name.
#pragma once

#include <string>
#include <vector>

#include "tinyroute/config.h"

namespace tinyroute {

// Every spelling that means the internal model, lower-cased: its name, the aliases, the `model`
// value and its file stem (basename without .gguf), plus TinyLlama's usual names when it is TinyLlama.
std::vector<std::string> internal_model_names(const InternalModelConfig& internal);

// Throws Error(internal_model_forbidden) if the internal model is an answer model anywhere in `config`
// (the same guard load_config applies, for configs built in code).
void check_internal_model_guard(const Config& config);

} // namespace tinyroute
