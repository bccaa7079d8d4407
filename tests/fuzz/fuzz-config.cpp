// Fuzz target: the config loader (YAML text to a validated Config). Whatever the text, it returns a
// Config or throws Error(config_invalid) whose message names the file; nothing else escapes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "tinyroute/config.h"
#include "tinyroute/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    (void)tinyroute::parse_config(text, "fuzz.yaml");
  } catch (const tinyroute::Error& e) {
    if (e.code() != tinyroute::ErrorCode::config_invalid) std::abort();
    if (std::string(e.what()).find("fuzz.yaml") == std::string::npos) std::abort();
  }
  return 0;
}
