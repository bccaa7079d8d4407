// Fuzz target: the agent-message.v1 envelope parser (schema check, then the fields). Any JSON either
// is refused with Error(invalid_argument) or becomes an AgentMessage whose JSON passes the schema again.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "bus/deployment-envelope.h"
#include "message/schema-validate.h"
#include "tinyroute/agent-message.h"
#include "tinyroute/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return 0;
  try {
    const tinyroute::AgentMessage m = tinyroute::parse_agent_message(j);
    if (!tinyroute::validate_json(tinyroute::agent_message_schema(), tinyroute::agent_message_json(m))
             .empty())
      std::abort(); // what was accepted must render back into a valid envelope
  } catch (const tinyroute::Error& e) {
    if (e.code() != tinyroute::ErrorCode::invalid_argument) std::abort();
  }
  return 0;
}
