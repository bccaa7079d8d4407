// Writes llama-architecture GGUF files with seeded random weights (for tests and benchmarks).
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

namespace tinyroute::mkmodel {

// Any failure the user can act on (bad vocabulary, bad dimensions, unwritable output).
class Error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

enum class WeightType { f32, f16 };

struct ModelSpec {
  std::string preset = "tiny";
  std::string arch = "llama";
  std::uint64_t seed = 1;
  std::uint32_t n_layer = 2;
  std::uint32_t n_embd = 64;
  std::uint32_t n_ff = 128;
  std::uint32_t n_head = 4;
  std::uint32_t n_head_kv = 2;
  std::uint32_t n_ctx = 2048;
  float rope_freq_base = 10000.0f;
  float rms_eps = 1e-5f;
  WeightType type = WeightType::f32; // 2-D weight matrices; norms are always f32
  bool chat_template = true;
  unsigned threads = 1; // generation threads; the output does not depend on it
};

// The named preset ("tiny", "tinyllama-shape"), or nullopt.
std::optional<ModelSpec> preset_spec(const std::string& name);

// Throws Error when the dimensions cannot form a valid llama model.
void validate(const ModelSpec& spec);

struct WriteResult {
  std::uint32_t n_vocab = 0;
  std::size_t n_tensors = 0;
  std::uint64_t n_bytes = 0;
};

// Writes the model to out_path, streaming tensor data (never more than a few MB in memory).
// Tokenizer keys come from the GGUF at vocab_path. Same spec => byte-identical file.
WriteResult write_model(const ModelSpec& spec, const std::string& vocab_path, const std::string& out_path);

// TinyLlama/TinyLlama-1.1B-Chat-v1.0's chat template (tokenizer_config.json), verbatim.
extern const char* const kTinyLlamaChatTemplate;

} // namespace tinyroute::mkmodel
