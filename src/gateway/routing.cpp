#include "gateway/routing.h"

#include <algorithm>
#include <filesystem>

namespace tinyroute::gateway {

namespace {
std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
std::string strip_latest(const std::string& name) {
  const std::string tag = ":latest";
  if (name.size() > tag.size() && name.compare(name.size() - tag.size(), tag.size(), tag) == 0) {
    return name.substr(0, name.size() - tag.size());
  }
  return name;
}
} // namespace

bool is_internal_model(const Config& config, const std::string& name) {
  // The config's own rule first; the case-insensitive check below is belt and braces.
  if (config.is_internal_model_name(name)) return true;
  const auto& im = config.internal_model;
  std::vector<std::string> names = im.aliases;
  names.push_back(im.name);
  if (!im.model.empty()) {
    names.push_back(im.model);
    names.push_back(std::filesystem::path(im.model).stem().string());
  }
  const std::string n = lower(name);
  const std::string family = n.substr(0, n.find(':'));
  for (const auto& candidate : names) {
    if (candidate.empty()) continue;
    const std::string c = lower(candidate);
    if (n == c || family == c || family == c.substr(0, c.find(':'))) return true;
  }
  return false;
}

const ModelConfig* find_answer_model(const Config& config, const std::string& name) {
  for (const auto& m : config.models) {
    if (m.name == name) return &m;
  }
  const std::string stripped = strip_latest(name);
  for (const auto& m : config.models) {
    if (m.name == stripped) return &m;
  }
  return nullptr;
}

bool is_auto_alias(const GatewayOptions& options, const std::string& name) {
  const std::string n = strip_latest(name);
  return std::find(options.auto_aliases.begin(), options.auto_aliases.end(), n) != options.auto_aliases.end();
}

std::vector<std::string> listed_models(const Config& config, const GatewayOptions& options) {
  std::vector<std::string> out;
  for (const auto& m : config.models) {
    if (!is_internal_model(config, m.name)) out.push_back(m.name);
  }
  for (const auto& a : options.auto_aliases) out.push_back(a);
  return out;
}

std::vector<std::string> candidates(const Config& config, const RouteDecision& decision) {
  std::vector<std::string> out;
  auto add = [&](const std::string& name) {
    if (name.empty() || is_internal_model(config, name)) return;
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
  };
  add(decision.model);
  for (const auto& f : decision.fallbacks) add(f);
  return out;
}

} // namespace tinyroute::gateway
