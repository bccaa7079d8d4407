// What a config builds, where every layer meets: the engine from `internal_model` (its model name
// resolved through the model store) and a config checked by each layer that owns a part of it.
#pragma once

#include <memory>
#include <string>

#include "tinyroute/config.h"
#include "tinyroute/engine.h"

namespace tinyroute {

// Engine parameters from the config's internal_model section; `model` may be a path or a name that
// `tinyroute pull` fetched (resolved in its cache). Throws Error(model_not_found) for neither.
EngineParams engine_params_from(const InternalModelConfig& internal);

// A loaded engine for config.internal_model.
std::shared_ptr<Engine> open_engine(const Config& config);

// load_config, then the checks that belong to other layers: the rules' patterns compile (RuleSet).
// Throws Error(config_invalid) with "FILE:LINE: ..." like load_config.
Config load_checked_config(const std::string& path);

} // namespace tinyroute
