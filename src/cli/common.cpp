#include <cstdlib>

#include "cli.h"
#include "tinyroute/classify.h"
#include "tinyroute/from-config.h"
#include "tinyroute/internal-model-guard.h"

namespace tinyroute::cli {

void add_config_option(CLI::App* command, CommonOptions& options) {
  command->add_option("--config,-c", options.config,
                      "Config file (default: $TINYROUTE_CONFIG, else config/tinyroute.yaml)");
}

void add_model_option(CLI::App* command, CommonOptions& options) {
  command->add_option(
      "--model,-m", options.model,
      "Internal model: a GGUF path or a `tinyroute pull` name (overrides internal_model.model)");
}

void add_json_flag(CLI::App* command, CommonOptions& options) {
  command->add_flag("--json", options.json, "Print JSON instead of a table");
}

std::string config_path(const CommonOptions& options) {
  if (!options.config.empty()) return options.config;
  const char* env = std::getenv("TINYROUTE_CONFIG");
  if (env != nullptr && *env != '\0') return env;
  return "config/tinyroute.yaml";
}

Config load_cli_config(const CommonOptions& options) {
  Config config = load_checked_config(config_path(options));
  if (!options.model.empty()) {
    config.internal_model.model = options.model;
    check_internal_model_guard(config); // a new file stem is a new internal-model name
  }
  return config;
}

} // namespace tinyroute::cli
