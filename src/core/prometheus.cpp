#include "core/prometheus.h"

#include <sstream>

namespace tinyroute::prometheus {

void family(std::ostream& out, std::string_view name, Type type, std::string_view help) {
  static constexpr std::string_view kTypes[] = {"counter", "gauge", "histogram"};
  out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << kTypes[static_cast<int>(type)]
      << '\n';
}

std::string label(std::string_view key, std::string_view value) {
  std::string out(key);
  out += "=\"";
  for (const char c : value) {
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    if (c == '\\' || c == '"') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

Histogram::Histogram(std::span<const double> bounds) : bounds_(bounds), counts_(bounds.size(), 0) {}

void Histogram::observe(double value) {
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    if (value <= bounds_[i]) ++counts_[i];
  }
  ++count_;
  sum_ += value;
}

void Histogram::write(std::ostream& out, std::string_view name, std::string_view labels) const {
  const std::string prefix = labels.empty() ? std::string() : std::string(labels) + ",";
  const std::string bucket = std::string(name) + "_bucket";
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    std::ostringstream le;
    le << bounds_[i];
    sample(out, bucket, prefix + label("le", le.str()), counts_[i]);
  }
  sample(out, bucket, prefix + label("le", "+Inf"), count_);
  sample(out, std::string(name) + "_sum", labels, sum_);
  sample(out, std::string(name) + "_count", labels, count_);
}

} // namespace tinyroute::prometheus
