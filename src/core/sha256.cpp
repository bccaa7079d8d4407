#include "core/sha256.h"

#include <openssl/evp.h>

#include <array>

#include "tinyroute/error.h"

namespace tinyroute {

struct Sha256::Ctx {
  struct Free {
    void operator()(EVP_MD_CTX* c) const noexcept { EVP_MD_CTX_free(c); }
  };
  std::unique_ptr<EVP_MD_CTX, Free> md{EVP_MD_CTX_new()};
};

Sha256::Sha256() : ctx_(std::make_unique<Ctx>()) {
  if (!ctx_->md || EVP_DigestInit_ex(ctx_->md.get(), EVP_sha256(), nullptr) != 1) {
    throw Error(ErrorCode::internal, "sha256: OpenSSL EVP_DigestInit_ex failed");
  }
}

Sha256::~Sha256() = default;

void Sha256::update(const void* data, std::size_t size) {
  if (EVP_DigestUpdate(ctx_->md.get(), data, size) != 1) {
    throw Error(ErrorCode::internal, "sha256: OpenSSL EVP_DigestUpdate failed");
  }
}

std::string Sha256::hex() {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx_->md.get(), md.data(), &len) != 1) {
    throw Error(ErrorCode::internal, "sha256: OpenSSL EVP_DigestFinal_ex failed");
  }
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * len);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kDigits[md[i] >> 4]);
    out.push_back(kDigits[md[i] & 15]);
  }
  return out;
}

std::string sha256_hex(std::string_view bytes) {
  Sha256 h;
  h.update(bytes.data(), bytes.size());
  return h.hex();
}

} // namespace tinyroute
