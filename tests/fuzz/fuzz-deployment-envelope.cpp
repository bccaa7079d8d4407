// Fuzz target: the deployment's bus envelope, as stream fields (XADD field/value pairs) and as JSON.
// The input is read as NUL-separated field, value, field, value, ...; the same bytes are also tried as
// one JSON object. Either is refused with Error(invalid_argument) or maps to agent-message.v1 and back.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "bus/deployment-envelope.h"
#include "tinyroute/error.h"

namespace {

void accepted(const tinyroute::DeploymentEnvelope& e) {
  (void)tinyroute::deployment_fields(e);
  (void)tinyroute::deployment_json(e).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  try {
    (void)tinyroute::agent_message_from(e);
  } catch (const tinyroute::Error& err) {
    if (err.code() != tinyroute::ErrorCode::invalid_argument) std::abort();
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::map<std::string, std::string> fields;
  std::size_t at = 0;
  while (at <= text.size()) {
    const std::size_t k_end = std::min(text.find('\0', at), text.size());
    const std::size_t v_start = std::min(k_end + 1, text.size());
    const std::size_t v_end = std::min(text.find('\0', v_start), text.size());
    fields[std::string(text.substr(at, k_end - at))] = std::string(text.substr(v_start, v_end - v_start));
    at = v_end + 1;
  }
  try {
    if (tinyroute::is_deployment_entry(fields)) accepted(tinyroute::parse_deployment_fields(fields));
  } catch (const tinyroute::Error& e) {
    if (e.code() != tinyroute::ErrorCode::invalid_argument) std::abort();
  }
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return 0;
  try {
    accepted(tinyroute::parse_deployment_json(j));
  } catch (const tinyroute::Error& e) {
    if (e.code() != tinyroute::ErrorCode::invalid_argument) std::abort();
  }
  return 0;
}
