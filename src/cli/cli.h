// What the command groups share: the common options, config loading, the error kinds main() turns
// into exit codes, and the registration hooks main() calls.
#pragma once

#include <functional>
#include <stdexcept>
#include <string>

#include <CLI/CLI.hpp>

#include "tinyroute/config.h"

namespace tinyroute::cli {

// Options every model-using command takes.
struct CommonOptions {
  std::string config; // --config; empty = $TINYROUTE_CONFIG, else config/tinyroute.yaml
  std::string model;  // --model: overrides internal_model.model
  bool json = false;
};

void add_config_option(CLI::App* command, CommonOptions& options);
void add_model_option(CLI::App* command, CommonOptions& options);
void add_json_flag(CLI::App* command, CommonOptions& options);

// --config, else $TINYROUTE_CONFIG (when set and not empty), else config/tinyroute.yaml.
std::string config_path(const CommonOptions& options);
// load_checked_config(config_path()) with --model applied (the internal-model guard is checked again).
Config load_cli_config(const CommonOptions& options);

// A mistake in how the command was called: exit status 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The parsed command's work; returns the exit status.
using Action = std::function<int()>;

void register_agent_commands(CLI::App& app, Action& action); // agent route, agent format, metadata
void register_bus_command(CLI::App& app, Action& action);
void register_classify_commands(CLI::App& app, Action& action); // classify, route
void register_config_commands(CLI::App& app, Action& action);   // config check
void register_eval_command(CLI::App& app, Action& action);
void register_pull_command(CLI::App& app, Action& action);
void register_serve_command(CLI::App& app, Action& action);
void register_status_command(CLI::App& app, Action& action); // status of a running serve
void register_train_command(CLI::App& app, Action& action);  // train a `head`

} // namespace tinyroute::cli
