#include "gateway/auth.h"

#include <algorithm>

#include <openssl/crypto.h>

namespace tinyroute::gateway {

bool Grant::allows(const std::string& model) const {
  return all || std::find(models.begin(), models.end(), model) != models.end();
}

ApiKeys::ApiKeys(const std::map<std::string, std::vector<std::string>>& keys) {
  for (const auto& [key, models] : keys) {
    Grant g;
    for (const auto& m : models) {
      if (m == "*")
        g.all = true;
      else
        g.models.push_back(m);
    }
    keys_.emplace_back(key, std::move(g));
  }
}

namespace {

std::string presented_key(const std::map<std::string, std::string>& headers) {
  if (auto it = headers.find("authorization"); it != headers.end()) {
    const std::string& v = it->second;
    if (v.size() > 7 && (v.compare(0, 7, "Bearer ") == 0 || v.compare(0, 7, "bearer ") == 0)) {
      std::string key = v.substr(7);
      while (!key.empty() && key.front() == ' ') key.erase(key.begin());
      while (!key.empty() && key.back() == ' ') key.pop_back();
      return key;
    }
  }
  if (auto it = headers.find("x-api-key"); it != headers.end()) return it->second;
  return "";
}

} // namespace

const Grant* ApiKeys::find(const std::map<std::string, std::string>& headers) const {
  const std::string key = presented_key(headers);
  if (key.empty()) return nullptr;
  const Grant* found = nullptr;
  // Every key is compared (constant time for equal lengths) so timing says little about which matched.
  for (const auto& [k, grant] : keys_) {
    if (k.size() == key.size() && CRYPTO_memcmp(k.data(), key.data(), k.size()) == 0) found = &grant;
  }
  return found;
}

} // namespace tinyroute::gateway
