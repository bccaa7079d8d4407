#include "tinyroute/internal-model-guard.h"

#include <algorithm>
#include <string_view>

#include "core/text.h"
#include "tinyroute/error.h"

namespace tinyroute {

using namespace text;

namespace {
// TinyLlama is pulled and served under these names; all of them must stay off the answer path.
constexpr const char* kTinyLlamaNames[] = {"tinyllama", "tinyllama:latest", "tinyllama:1.1b",
                                           "tinyllama:1.1b-chat", "tinyllama-1.1b-chat-v1.0"};
} // namespace

std::vector<std::string> internal_model_names(const InternalModelConfig& internal) {
  std::vector<std::string> names;
  const auto add = [&](std::string_view n) {
    std::string l = lower(trim(n));
    if (!l.empty() && std::find(names.begin(), names.end(), l) == names.end()) names.push_back(std::move(l));
  };
  add(internal.name);
  for (const auto& alias : internal.aliases) add(alias);
  add(internal.model);
  add(file_stem(internal.model));
  if (lower(internal.name).find("tinyllama") != std::string::npos ||
      lower(internal.model).find("tinyllama") != std::string::npos) {
    for (const char* n : kTinyLlamaNames) add(n);
  }
  return names;
}

namespace {

// The checks below run for every gateway request, so they compare views case-insensitively instead of
// building the lower-cased lists of internal_model_names().

// Ollama's "family:tag"; a bare name is "name:latest", so its family is the name itself. Ollama pulls
// Hugging Face GGUF repos as hf.co/org/Repo-GGUF:quant.
std::string_view family_view(std::string_view name) {
  name = name.substr(0, name.find(':'));
  if (ends_with_ci(name, "-gguf")) name.remove_suffix(5);
  return name;
}

// Calls `match` with every spelling internal_model_names() lists (trimmed, not lower-cased) until it
// returns true.
template <class Match> bool any_internal_name(const InternalModelConfig& internal, Match&& match) {
  const auto offer = [&](std::string_view n) {
    n = trim_view(n);
    return !n.empty() && match(n);
  };
  if (offer(internal.name)) return true;
  for (const auto& alias : internal.aliases) {
    if (offer(alias)) return true;
  }
  if (offer(internal.model) || offer(stem_view(internal.model))) return true;
  if (contains_ci(internal.name, "tinyllama") || contains_ci(internal.model, "tinyllama")) {
    for (const char* n : kTinyLlamaNames) {
      if (offer(n)) return true;
    }
  }
  return false;
}

} // namespace

bool Config::is_internal_model_name(const std::string& name) const {
  const std::string_view wanted = trim_view(name);
  if (wanted.empty()) return false;
  // Also try the last path segment without .gguf: Ollama's "library/tinyllama:latest", HF's
  // "TinyLlama/TinyLlama-...", and servers that expose a GGUF file name as the model id.
  const std::string_view stem = stem_view(wanted);
  const std::string_view forms[] = {wanted, stem};
  const std::size_t n_forms = !stem.empty() && stem != wanted ? 2 : 1;
  for (std::size_t i = 0; i < n_forms; ++i) {
    const std::string_view form = forms[i];
    // The name itself, or the name with its tag dropped ("/models/x.gguf:latest").
    const std::string_view untagged = form.substr(0, form.find(':'));
    if (any_internal_name(internal_model,
                          [&](std::string_view n) { return iequals(n, form) || iequals(n, untagged); }))
      return true;
    if (has_path_separator(form)) continue;
    const std::string_view fam = family_view(form);
    if (any_internal_name(internal_model, [&](std::string_view n) {
          return !has_path_separator(n) && iequals(family_view(n), fam);
        }))
      return true;
  }
  return false;
}

void check_internal_model_guard(const Config& config) {
  auto refuse = [](const std::string& where, const std::string& name) {
    throw Error(ErrorCode::internal_model_forbidden,
                where + ": \"" + name +
                    "\" is the internal model; it only classifies and routes and never answers users");
  };
  for (const auto& m : config.models) {
    if (config.is_internal_model_name(m.name)) refuse("models", m.name);
    if (!m.upstream_model.empty() && config.is_internal_model_name(m.upstream_model))
      refuse("models", m.upstream_model);
  }
  for (const auto& [category, list] : config.fallbacks) {
    for (const auto& name : list)
      if (config.is_internal_model_name(name)) refuse("fallbacks." + category, name);
  }
}

} // namespace tinyroute
