#include "engine/fingerprint.h"

#include <fstream>
#include <memory>
#include <vector>

#include "core/sha256.h"
#include "tinyroute/error.h"

namespace tinyroute::engine {

std::string model_fingerprint(const std::string& path, std::uint64_t file_size, std::uint64_t data_offset) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(ErrorCode::io, "cannot open " + path);
  Sha256 h;
  h.update(&file_size, sizeof file_size);
  std::vector<char> buf(64 * 1024);
  auto hash_range = [&](std::uint64_t off, std::uint64_t len) {
    f.seekg(static_cast<std::streamoff>(off));
    while (len > 0 && f) {
      const auto n = static_cast<std::streamsize>(std::min<std::uint64_t>(len, buf.size()));
      f.read(buf.data(), n);
      h.update(buf.data(), static_cast<size_t>(f.gcount()));
      len -= static_cast<std::uint64_t>(f.gcount());
      if (f.gcount() == 0) break;
    }
  };
  hash_range(0, data_offset);
  const std::uint64_t data_len = file_size > data_offset ? file_size - data_offset : 0;
  constexpr int windows = 16;
  for (int i = 0; i < windows; ++i) {
    hash_range(data_offset + data_len * static_cast<std::uint64_t>(i) / windows,
               std::min<std::uint64_t>(buf.size(), data_len));
  }
  return h.hex();
}

std::string tokens_fingerprint(std::string_view model_fp, std::span<const std::int32_t> tokens) {
  Sha256 h;
  h.update(model_fp.data(), model_fp.size());
  h.update(tokens.data(), tokens.size_bytes());
  return h.hex();
}

} // namespace tinyroute::engine
