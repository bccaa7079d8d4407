// Checks a model file before llama.cpp sees it, so each kind of bad file gets its own clear error.
#pragma once

#include <cstdint>
#include <string>

namespace tinyroute::engine {

struct GgufFacts {
  std::string architecture;
  std::string name;
  std::uint64_t file_size = 0;
  std::uint64_t data_offset = 0; // where tensor data starts (end of the metadata block)
};

// Throws Error(model_not_found | not_gguf | corrupt_model | io).
GgufFacts check_gguf_file(const std::string& path);

} // namespace tinyroute::engine
