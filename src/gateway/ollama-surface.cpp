#include "gateway/ollama-surface.h"

#include <algorithm>
#include <cctype>

#include "core/sha256.h"
#include "gateway/chat.h"
#include "gateway/routing.h"

namespace tinyroute::gateway {

namespace {

// "qwen2.5-coder:32b" -> family "qwen2.5-coder", parameter size "32B" (empty when the tag is not a size).
std::string family_of(const std::string& name) {
  return name.substr(0, name.find(':'));
}
std::string parameter_size_of(const std::string& name) {
  auto colon = name.find(':');
  if (colon == std::string::npos) return {};
  std::string tag = name.substr(colon + 1);
  tag = tag.substr(0, tag.find('-'));
  if (tag.size() < 2) return {};
  const char unit = static_cast<char>(std::toupper(static_cast<unsigned char>(tag.back())));
  if (unit != 'B' && unit != 'M') return {};
  const std::string digits = tag.substr(0, tag.size() - 1);
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c)) != 0 || c == '.';
      }))
    return {};
  return digits + unit;
}

json details_for(const std::string& family, const std::string& parameter_size) {
  return {{"parent_model", ""},
          {"format", "remote"},
          {"family", family},
          {"families", json::array({family})},
          {"parameter_size", parameter_size},
          {"quantization_level", ""}};
}

// What "auto" can do: whatever some routable model can.
ModelConfig auto_model(const Config& config, const std::string& name) {
  ModelConfig m;
  m.name = name;
  m.context_window = 0;
  for (const auto& c : config.models) {
    if (is_internal_model(config, c.name) || c.categories.empty()) continue;
    m.categories.push_back(c.name);
    m.capabilities.tools = m.capabilities.tools || c.capabilities.tools;
    m.capabilities.vision = m.capabilities.vision || c.capabilities.vision;
    m.capabilities.reasoning = m.capabilities.reasoning || c.capabilities.reasoning;
    m.context_window = std::max(m.context_window, c.context_window);
  }
  return m;
}

} // namespace

json ollama_capabilities(const ModelConfig& model) {
  json caps = json::array();
  // A model with no category only embeds (e.g. nomic-embed-text); everything else completes.
  if (!model.categories.empty() || !model.capabilities.embedding) caps.push_back("completion");
  if (model.capabilities.tools) caps.push_back("tools");
  if (model.capabilities.vision) caps.push_back("vision");
  if (model.capabilities.reasoning) caps.push_back("thinking");
  if (model.capabilities.embedding) caps.push_back("embedding");
  return caps;
}

json ollama_tag(const Config& config, const GatewayOptions& options, const std::string& name,
                const std::string& modified_at) {
  const ModelConfig* m = find_answer_model(config, name);
  const bool alias = m == nullptr && is_auto_alias(options, name);
  const std::string family = alias ? "tinyroute" : family_of(name);
  const std::string identity =
      alias ? "tinyroute auto " + name
            : "tinyroute " + name + " " + std::string(provider_name(m->provider)) + " " + m->upstream_model;
  return {{"name", name},
          {"model", name},
          {"modified_at", modified_at},
          {"size", 0},
          {"digest", sha256_hex(identity)},
          {"details", details_for(family, alias ? "" : parameter_size_of(name))}};
}

json ollama_show(const Config& config, const GatewayOptions& options, const std::string& name,
                 const std::string& modified_at) {
  if (is_internal_model(config, name)) {
    throw FrontError(403, "internal_model_forbidden",
                     "'" + name +
                         "' is tinyroute's internal routing model; it is internal-only and never "
                         "answers requests");
  }
  const ModelConfig* found = find_answer_model(config, name);
  const bool alias = found == nullptr && is_auto_alias(options, name);
  if (found == nullptr && !alias) throw FrontError(404, "model_not_found", "model '" + name + "' not found");
  const ModelConfig m = alias ? auto_model(config, name) : *found;
  const std::string family = alias ? "tinyroute" : family_of(m.name);
  const std::string upstream = m.upstream_model.empty() ? m.name : m.upstream_model;
  json info = {{"general.architecture", "tinyroute"},
               {"general.basename", family},
               {"tinyroute.context_length", m.context_window}};
  if (alias) {
    info["tinyroute.routes_to"] = m.categories; // the models "auto" may pick
  } else {
    info["tinyroute.provider"] = provider_name(m.provider);
    info["tinyroute.upstream_model"] = upstream;
    info["tinyroute.categories"] = m.categories;
  }
  const std::string modelfile =
      alias ? "# tinyroute: \"" + name + "\" lets tinyroute's internal router pick the answering model\n"
            : "# tinyroute forwards \"" + m.name + "\" to " + std::string(provider_name(m.provider)) +
                  " model \"" + upstream + "\"\nFROM " + upstream + "\n";
  return {
      {"modelfile", modelfile},      {"parameters", ""},
      {"template", "{{ .Prompt }}"}, {"details", details_for(family, alias ? "" : parameter_size_of(m.name))},
      {"model_info", info},          {"capabilities", ollama_capabilities(m)},
      {"modified_at", modified_at}};
}

} // namespace tinyroute::gateway
