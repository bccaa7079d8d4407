// Terminal progress line for `tinyroute pull`: pure formatting, so it is tested as a table.
#include "tinyroute/pull.h"

#include <array>
#include <cmath>
#include <cstdio>
#include <vector>

namespace tinyroute {

std::string format_bytes(uint64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + " B";
  static constexpr std::array<const char*, 5> kUnits = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes) / 1024.0;
  size_t unit = 1;
  // Switch units before rounding would print "1024.0 MiB".
  while (value >= 1023.95 && unit + 1 < kUnits.size()) {
    value /= 1024.0;
    ++unit;
  }
  std::array<char, 32> buf{};
  std::snprintf(buf.data(), buf.size(), "%.1f %s", value, kUnits[unit]);
  return buf.data();
}

namespace {

std::string format_eta(uint64_t seconds) {
  std::array<char, 32> buf{};
  const auto h = static_cast<unsigned long long>(seconds / 3600);
  const auto m = static_cast<unsigned long long>(seconds / 60 % 60);
  const auto s = static_cast<unsigned long long>(seconds % 60);
  if (h > 0) {
    std::snprintf(buf.data(), buf.size(), "ETA %llu:%02llu:%02llu", h, m, s);
  } else {
    std::snprintf(buf.data(), buf.size(), "ETA %llu:%02llu", m, s);
  }
  return buf.data();
}

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) {
    if (p.empty()) continue;
    if (!out.empty()) out += "  ";
    out += p;
  }
  return out;
}

} // namespace

std::string render_progress(uint64_t done, uint64_t total, double bytes_per_s, int width) {
  if (width <= 0) return {};
  const auto columns = static_cast<size_t>(width);
  const bool known = total > 0;
  const bool finished = known && done >= total;
  const double fraction =
      finished ? 1.0 : (known ? static_cast<double>(done) / static_cast<double>(total) : 0.0);

  std::string percent;
  if (known) {
    // Floor, so 100% appears only when the last byte is in.
    const int pct = finished ? 100 : std::min(99, static_cast<int>(std::floor(fraction * 100.0)));
    std::array<char, 16> buf{}; // room for any int, so GCC can prove no truncation
    std::snprintf(buf.data(), buf.size(), "%3d%%", pct);
    percent = buf.data();
  }
  const std::string sizes = known ? format_bytes(done) + " / " + format_bytes(total) : format_bytes(done);
  const bool has_rate = bytes_per_s > 0 && std::isfinite(bytes_per_s);
  const std::string speed = has_rate ? format_bytes(static_cast<uint64_t>(bytes_per_s)) + "/s" : "";
  std::string eta;
  if (known && has_rate && !finished) {
    const double secs = std::ceil(static_cast<double>(total - done) / bytes_per_s);
    if (secs < 100.0 * 3600.0) eta = format_eta(static_cast<uint64_t>(secs)); // else it says nothing
  }

  // Most important first. When narrow the bar goes first, then ETA, speed and sizes; the first part
  // (percentage, or the byte count when the total is unknown) stays.
  std::vector<std::string> parts =
      known ? std::vector<std::string>{percent, sizes, speed, eta} : std::vector<std::string>{sizes, speed};
  std::string text = join(parts);
  constexpr size_t kMinBar = 5;
  if (known && text.size() + 4 + kMinBar <= columns) {
    const size_t inner = columns - text.size() - 4; // "[" + bar + "]" + two spaces
    const auto filled = static_cast<size_t>(std::floor(fraction * static_cast<double>(inner)));
    std::string bar(filled, '=');
    if (filled < inner) bar += '>';
    bar.resize(inner, ' ');
    return "[" + bar + "]  " + text;
  }
  for (size_t drop = parts.size() - 1; text.size() > columns && drop > 0; --drop) {
    parts[drop].clear();
    text = join(parts);
  }
  if (text.size() > columns) text.resize(columns);
  return text;
}

} // namespace tinyroute
