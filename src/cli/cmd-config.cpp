// tinyroute config check [FILE]: validate a config and summarise it, or list every problem.
#include <iostream>
#include <memory>
#include <sstream>

#include "cli.h"
#include "output.h"
#include "tinyroute/from-config.h"
#include "tinyroute/internal-model-guard.h"
#include "tinyroute/pull.h"

namespace tinyroute::cli {

namespace {

struct CheckOptions {
  CommonOptions common;
  std::string file;
};

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

int check(const CheckOptions& o) {
  const std::string path = o.file.empty() ? config_path(o.common) : o.file;
  Config config;
  try {
    config = load_checked_config(path);
  } catch (const Error& e) {
    if (o.common.json) {
      std::cout << json{{"ok", false},
                        {"file", path},
                        {"code", std::string(error_code_name(e.code()))},
                        {"errors", lines_of(e.what())}}
                       .dump(2)
                << "\n";
    } else {
      std::cerr << e.what() << (std::string(e.what()).ends_with("\n") ? "" : "\n");
      std::cerr << "tinyroute: " << path << " is not a valid config\n";
    }
    return 1;
  }

  // Not an error: the model may be pulled later. Say where it stands.
  std::string model_state;
  try {
    model_state = "found at " + resolve_model_path(config.internal_model.model);
  } catch (const Error&) {
    model_state = "not found yet (run `tinyroute pull` or point internal_model.model at a GGUF file)";
  }
  std::vector<std::string> categories, models;
  for (const auto& c : config.categories) categories.push_back(c.name);
  for (const auto& m : config.models) models.push_back(m.name);
  const auto internal_names = internal_model_names(config.internal_model);

  if (o.common.json) {
    json model_list = json::array();
    for (const auto& m : config.models) {
      model_list.push_back({{"name", m.name},
                            {"provider", std::string(provider_name(m.provider))},
                            {"base_url", m.base_url},
                            {"categories", m.categories}});
    }
    std::cout << json{{"ok", true},
                      {"file", path},
                      {"categories", categories},
                      {"default_category", config.default_category},
                      {"models", model_list},
                      {"rules", config.rules.size()},
                      {"internal_model",
                       {{"model", config.internal_model.model},
                        {"name", config.internal_model.name},
                        {"names", internal_names},
                        {"strategy", std::string(strategy_name(config.internal_model.strategy))},
                        {"threshold", config.internal_model.threshold},
                        {"file", model_state}}}}
                     .dump(2)
              << "\n";
    return 0;
  }
  std::cout << "OK " << path << "\n";
  std::cout << "  categories (" << categories.size() << "): " << joined(categories) << "\n";
  std::cout << "  default category: " << config.default_category << "\n";
  std::cout << "  models (" << models.size() << "):\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& m : config.models) {
    rows.push_back(
        {"    " + m.name, std::string(provider_name(m.provider)), m.base_url, joined(m.categories)});
  }
  std::cout << format_table(rows, false);
  if (!config.rules.empty())
    std::cout << "  rules: " << config.rules.size()
              << " (checked before the internal model; first match wins)\n";
  std::cout << "  internal model: " << config.internal_model.model << " (" << model_state << ")\n";
  std::cout << "    strategy " << strategy_name(config.internal_model.strategy) << ", threshold "
            << fixed(config.internal_model.threshold, 2) << "\n";
  std::cout << "    never answers; refused under: " << joined(internal_names) << "\n";
  return 0;
}

} // namespace

void register_config_commands(CLI::App& app, Action& action) {
  auto* config = app.add_subcommand("config", "Work with config files");
  config->require_subcommand(1);
  auto o = std::make_shared<CheckOptions>();
  auto* check_cmd = config->add_subcommand("check", "Validate a config file; print a summary or every error");
  check_cmd->add_option("file", o->file,
                        "The config file (default: --config, $TINYROUTE_CONFIG, config/tinyroute.yaml)");
  add_config_option(check_cmd, o->common);
  add_json_flag(check_cmd, o->common);
  check_cmd->callback([&action, o] { action = [o] { return check(*o); }; });
}

} // namespace tinyroute::cli
