// Content fingerprints: keys for persisted prefix state and caches.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace tinyroute::engine {

// sha256 over the file size, the whole GGUF metadata block and 16 sampled 64 KiB windows of tensor
// data: milliseconds for a 637 MiB file, yet it changes with the weights (different seeds, quantizations).
std::string model_fingerprint(const std::string& path, std::uint64_t file_size, std::uint64_t data_offset);

std::string tokens_fingerprint(std::string_view model_fingerprint, std::span<const std::int32_t> tokens);

} // namespace tinyroute::engine
