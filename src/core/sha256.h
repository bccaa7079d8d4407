// sha256 in lowercase hex: config hashes, content fingerprints, cache keys and download checks.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace tinyroute {

// Incremental: update() any number of times, then hex() once.
class Sha256 {
public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(const void* data, std::size_t size);
  std::string hex(); // the digest; the hash is finished afterwards

private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

std::string sha256_hex(std::string_view bytes);

} // namespace tinyroute
