// tinyroute pull: fetch a GGUF model into the local cache, resume interrupted downloads, verify
// sha256, and find a model again by name later. The library API behind `tinyroute pull [NAME]`.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

namespace tinyroute {

// A model tinyroute knows by name. `sha256` may be empty: then the first download computes it and
// records it next to the file (`<file>.sha256`) so that later pulls verify against it.
struct KnownModel {
  std::string_view name;
  std::string_view alias;
  std::string_view url;
  std::string_view file_name;
  uint64_t size = 0; // bytes; 0 = unknown
  std::string_view sha256;
  std::string_view description;
};

// The name `tinyroute pull` uses when none is given.
inline constexpr std::string_view kDefaultModelName = "tinyllama-1.1b-chat";

std::span<const KnownModel> known_models();
// By name or alias (exact match); nullptr when unknown.
const KnownModel* find_known_model(std::string_view name_or_alias);

// ${TINYROUTE_CACHE:-${XDG_CACHE_HOME:-~/.cache}/tinyroute}/models (empty variables count as unset).
std::string default_cache_dir();

struct PullOptions {
  // A known model name or alias, or an http(s) URL of a .gguf file; empty = kDefaultModelName.
  std::string name_or_url;
  // Where models live; empty = default_cache_dir(). Created if missing.
  std::string cache_dir;
  // 64 hex digits; empty = the table's checksum, else the one recorded in `<file>.sha256`, else none.
  std::string expected_sha256;
  // Called on the calling thread as bytes arrive (done includes a resumed prefix; total is 0 while
  // unknown), and once after a download with done == total. Not throttled: render at your own pace.
  // An exception thrown here aborts the download (the .part is kept) and propagates from pull_model.
  std::function<void(uint64_t done, uint64_t total)> progress;
  long connect_timeout_s = 15;
  // Give up when fewer than low_speed_limit_bytes per second arrive for low_speed_time_s seconds.
  long low_speed_time_s = 30;
  long low_speed_limit_bytes = 1024;
};

struct PullResult {
  std::string path;      // the final file
  uint64_t bytes = 0;    // its size
  std::string sha256;    // its checksum (lowercase hex), always computed
  bool verified = false; // sha256 matched a known checksum (false: first download of an unpublished one)
  // Where the expected checksum came from: "--sha256", "the built-in model table", the path of the
  // recorded .sha256 file, or empty when there was none.
  std::string sha256_source;
  bool already_present = false; // the file was there and valid: no network used
  bool resumed = false;         // bytes from an earlier interrupted download were kept
};

// Downloads (or finds) the model. Writes `<cache>/<file>.part`, resumes it with a Range request,
// checks size and sha256, then fsyncs and renames it to `<cache>/<file>` and records the checksum in
// `<cache>/<file>.sha256`. Concurrent pulls into one cache directory wait for each other.
// Throws Error: invalid_argument (bad name/URL/checksum), download_failed (network or HTTP error;
// the message names the URL and the exact path to put the file by hand), checksum_mismatch (the
// .part is removed), io.
PullResult pull_model(const PullOptions& options);

// What a model argument means: an existing file path as is; else the cached file of a known name, a
// URL or a bare file name in the cache. Throws Error(model_not_found) saying to run
// `tinyroute pull NAME` and where to put the file by hand.
std::string resolve_model_path(const std::string& name_or_path, const std::string& cache_dir = {});

// sha256 of a file as lowercase hex; Error(io) when it cannot be read.
std::string sha256_file(const std::string& path);

// "812 B", "1.5 KiB", "637.8 MiB", "2.0 GiB".
std::string format_bytes(uint64_t bytes);

// One terminal line of at most `width` columns (no newline or carriage return), e.g.
//   [==========>         ]  52%  331.6 MiB / 637.8 MiB  12.4 MiB/s  ETA 0:25
// total == 0 means unknown (no bar, percentage or ETA); bytes_per_s <= 0 hides speed and ETA.
// When narrow, the bar shrinks and then goes, then the ETA, speed and sizes are dropped in turn.
std::string render_progress(uint64_t done, uint64_t total, double bytes_per_s, int width);

} // namespace tinyroute
