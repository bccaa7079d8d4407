// Gateway API keys: who may call the gateway and which answer models each caller may use. A key is
// taken from "Authorization: Bearer KEY" (OpenAI, Ollama clients) or "x-api-key: KEY" (Anthropic
// clients). Keys are compared in constant time and never logged.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace tinyroute::gateway {

// The models one key may use; all = "*".
struct Grant {
  bool all = false;
  std::vector<std::string> models;
  bool allows(const std::string& model) const;
};

class ApiKeys {
public:
  explicit ApiKeys(const std::map<std::string, std::vector<std::string>>& keys);
  bool enabled() const { return !keys_.empty(); }
  // The grant for the key in these (lower-case) request headers; nullptr when missing or unknown.
  const Grant* find(const std::map<std::string, std::string>& headers) const;

private:
  std::vector<std::pair<std::string, Grant>> keys_;
};

} // namespace tinyroute::gateway
