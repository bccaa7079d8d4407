#include "engine/fingerprint.h"

#include <openssl/evp.h>

#include <array>
#include <fstream>
#include <memory>
#include <vector>

#include "tinyroute/error.h"

namespace tinyroute::engine {

namespace {
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const noexcept { EVP_MD_CTX_free(c); }
};

class Sha256 {
public:
  Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr); }
  void update(const void* data, size_t n) { EVP_DigestUpdate(ctx_.get(), data, n); }
  std::string hex() {
    std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_.get(), md.data(), &len);
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < len; ++i) {
      out.push_back(digits[md[i] >> 4]);
      out.push_back(digits[md[i] & 15]);
    }
    return out;
  }

private:
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx_;
};
} // namespace

std::string sha256_hex(std::string_view bytes) {
  Sha256 h;
  h.update(bytes.data(), bytes.size());
  return h.hex();
}

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
