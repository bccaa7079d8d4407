#include "select-endpoint.h"

#include <algorithm>
#include <climits>
#include <string>

#include "decision-json.h"
#include "tinyroute/error.h"

namespace tinyroute::serve {

namespace {

[[noreturn]] void bad(const std::string& what) {
  throw Error(ErrorCode::invalid_argument, what);
}

constexpr const char* kFields = "category, needs_tools, needs_vision, needs_reasoning, estimated_tokens";

bool flag(const nlohmann::json& body, const char* key) {
  const auto it = body.find(key);
  if (it == body.end() || it->is_null()) return false;
  if (!it->is_boolean()) bad(std::string("\"") + key + "\" must be true or false");
  return it->get<bool>();
}

int tokens(const nlohmann::json& body) {
  const auto it = body.find("estimated_tokens");
  if (it == body.end() || it->is_null()) return 0;
  if (!it->is_number_integer()) bad("\"estimated_tokens\" must be an integer");
  // Larger than any context window either way: clamp instead of overflowing the int.
  if (it->is_number_unsigned())
    return static_cast<int>(std::min<unsigned long long>(it->get<unsigned long long>(), INT_MAX));
  if (it->get<long long>() < 0) bad("\"estimated_tokens\" must not be negative");
  return static_cast<int>(std::min<long long>(it->get<long long>(), INT_MAX));
}

} // namespace

nlohmann::json select_endpoint(const TaskRouter& router, const nlohmann::json& body,
                               const Availability& availability) {
  if (!body.is_object()) bad(std::string("send a JSON object with \"category\" (fields: ") + kFields + ")");
  for (const auto& [key, value] : body.items()) {
    if (key != "category" && key != "needs_tools" && key != "needs_vision" && key != "needs_reasoning" &&
        key != "estimated_tokens")
      bad("unknown field \"" + key + "\"; /v1/select reads " + kFields);
  }
  const auto category = body.find("category");
  if (category == body.end() || !category->is_string())
    bad("\"category\" must be a string (a configured category)");
  RequestFacts facts;
  facts.needs_tools = flag(body, "needs_tools");
  facts.needs_vision = flag(body, "needs_vision");
  facts.needs_reasoning = flag(body, "needs_reasoning");
  facts.estimated_tokens = tokens(body);
  return selection_json(router.select_model(category->get<std::string>(), facts, availability).get());
}

} // namespace tinyroute::serve
