#include "gateway/params.h"

#include <algorithm>

#include "gateway/routing.h"

namespace tinyroute::gateway {

namespace {

const char* protocol_label(Provider provider) {
  switch (provider) {
  case Provider::openai:
    return "OpenAI-compatible";
  case Provider::anthropic:
    return "Anthropic";
  case Provider::ollama:
    return "Ollama";
  }
  return "unknown";
}

bool carries(Provider provider, const ChatRequest& request, const std::string& name) {
  const auto missing = backend_for(provider).unsupported(request);
  return std::find(missing.begin(), missing.end(), name) == missing.end();
}

} // namespace

std::string drop_unable(const Config& config, std::vector<std::string>& models, const ChatRequest& request,
                        const FrontAdapter& front) {
  std::string refusal;
  std::erase_if(models, [&](const std::string& name) {
    const ModelConfig* model = find_answer_model(config, name);
    if (model == nullptr) return false; // forward() reports it
    const auto missing = backend_for(model->provider).unsupported(request);
    if (missing.empty()) return false;
    if (refusal.empty()) {
      std::string takers;
      for (Provider p : {Provider::openai, Provider::anthropic, Provider::ollama}) {
        if (carries(p, request, missing.front()))
          takers += std::string(takers.empty() ? "" : " or ") + protocol_label(p);
      }
      refusal = "'" + front.param_name(missing.front()) + "' cannot be sent to model '" + model->name +
                "', whose backend speaks the " + protocol_label(model->provider) +
                " protocol, which has no such "
                "parameter; " +
                (takers.empty() ? std::string("no backend protocol takes it")
                                : "it reaches " + takers + " backends only") +
                ". Remove it, or name a model on a backend that takes it";
    }
    return true;
  });
  return models.empty() ? refusal : std::string();
}

} // namespace tinyroute::gateway
