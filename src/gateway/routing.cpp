#include "gateway/routing.h"

#include <algorithm>
#include <string_view>

#include <boost/beast/core/string.hpp>

namespace tinyroute::gateway {

namespace {
using boost::beast::iequals; // ASCII case-insensitive, no copies
std::string strip_latest(const std::string& name) {
  const std::string tag = ":latest";
  if (name.size() > tag.size() && name.compare(name.size() - tag.size(), tag.size(), tag) == 0) {
    return name.substr(0, name.size() - tag.size());
  }
  return name;
}
} // namespace

bool is_internal_model(const Config& config, const std::string& name) {
  // The config's own rule first; the case-insensitive check below is belt and braces. Both run for
  // every request, so neither copies a string.
  if (config.is_internal_model_name(name)) return true;
  const auto& im = config.internal_model;
  const std::string_view n = name;
  const std::string_view family = n.substr(0, n.find(':'));
  const auto same = [&](std::string_view candidate) {
    if (candidate.empty()) return false;
    return iequals(n, candidate) || iequals(family, candidate) ||
           iequals(family, candidate.substr(0, candidate.find(':')));
  };
  if (same(im.name)) return true;
  for (const auto& alias : im.aliases) {
    if (same(alias)) return true;
  }
  if (im.model.empty()) return false;
  // The model file's stem, as std::filesystem::path::stem() has it: the base name up to its last dot.
  std::string_view stem = im.model;
  if (const auto slash = stem.find_last_of('/'); slash != std::string_view::npos)
    stem.remove_prefix(slash + 1);
  if (const auto dot = stem.rfind('.'); dot != std::string_view::npos && dot != 0 && stem != "..")
    stem = stem.substr(0, dot);
  return same(im.model) || same(stem);
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
