#include "engine/gguf-check.h"

#include <gguf.h>

#include <filesystem>
#include <fstream>
#include <memory>

#include "tinyroute/error.h"

namespace tinyroute::engine {

namespace fs = std::filesystem;

namespace {
struct GgufDeleter {
  void operator()(gguf_context* g) const noexcept { gguf_free(g); }
};

std::string str_key(const gguf_context* g, const char* key) {
  const int64_t id = gguf_find_key(g, key);
  if (id < 0 || gguf_get_kv_type(g, id) != GGUF_TYPE_STRING) return {};
  return gguf_get_val_str(g, id);
}
} // namespace

GgufFacts check_gguf_file(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    throw Error(ErrorCode::model_not_found,
                "model file not found: " + path + " (run `tinyroute pull` or pass the path of a GGUF file)");
  }
  if (fs::is_directory(path, ec)) {
    throw Error(ErrorCode::model_not_found, "model path is a directory, not a GGUF file: " + path);
  }
  GgufFacts facts;
  facts.file_size = fs::file_size(path, ec);
  if (ec) throw Error(ErrorCode::io, "cannot read model file " + path + ": " + ec.message());

  char magic[4] = {};
  {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw Error(ErrorCode::io, "cannot open model file " + path);
    f.read(magic, sizeof magic);
    if (f.gcount() != sizeof magic || std::string(magic, 4) != "GGUF") {
      throw Error(ErrorCode::not_gguf, "not a GGUF file: " + path + " (" + std::to_string(facts.file_size) +
                                           " bytes, no GGUF magic); tinyroute loads llama.cpp GGUF models");
    }
  }

  gguf_init_params params{/*no_alloc=*/true, /*ctx=*/nullptr};
  std::unique_ptr<gguf_context, GgufDeleter> g(gguf_init_from_file(path.c_str(), params));
  if (!g) {
    throw Error(ErrorCode::corrupt_model,
                "corrupt GGUF file: " + path + " (header or metadata unreadable; truncated download?)");
  }
  facts.architecture = str_key(g.get(), "general.architecture");
  facts.name = str_key(g.get(), "general.name");
  if (facts.architecture.empty()) {
    throw Error(ErrorCode::corrupt_model, "GGUF file has no general.architecture: " + path);
  }
  // The metadata may parse while the tensor data is cut short: check every tensor fits in the file.
  facts.data_offset = gguf_get_data_offset(g.get());
  std::uint64_t end = facts.data_offset;
  const int64_t n = gguf_get_n_tensors(g.get());
  for (int64_t i = 0; i < n; ++i) {
    end = std::max<std::uint64_t>(end, facts.data_offset + gguf_get_tensor_offset(g.get(), i) +
                                           gguf_get_tensor_size(g.get(), i));
  }
  if (n == 0) {
    throw Error(ErrorCode::corrupt_model, "GGUF file has no tensors (a vocabulary-only file?): " + path);
  }
  if (end > facts.file_size) {
    throw Error(ErrorCode::corrupt_model, "truncated GGUF file: " + path + " has " +
                                              std::to_string(facts.file_size) + " bytes, its tensors need " +
                                              std::to_string(end) + " (download it again)");
  }
  return facts;
}

} // namespace tinyroute::engine
