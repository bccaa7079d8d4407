// Prometheus text exposition (format 0.0.4): the one writer behind every /metrics family, so names,
// label escaping and histogram series read the same whoever renders them.
#pragma once

#include <cstddef>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tinyroute::prometheus {

enum class Type { counter, gauge, histogram };

// "# HELP name help" and "# TYPE name type": once per family, before its samples.
void family(std::ostream& out, std::string_view name, Type type, std::string_view help);

// `key="value"` with the value escaped (backslash, double quote, newline); join several with ','.
std::string label(std::string_view key, std::string_view value);

// "name{labels} value"; `labels` as built by label(), empty for none. Integers print as integers.
template <class T> void sample(std::ostream& out, std::string_view name, std::string_view labels, T value) {
  out << name;
  if (!labels.empty()) out << '{' << labels << '}';
  out << ' ' << value << '\n';
}

// A family of one unlabelled sample.
template <class T>
void metric(std::ostream& out, std::string_view name, Type type, std::string_view help, T value) {
  family(out, name, type, help);
  sample(out, name, {}, value);
}

// Cumulative buckets over fixed upper bounds (the +Inf bucket is the count). Not locked: the owner
// holds its own lock around observe() and write().
class Histogram {
public:
  explicit Histogram(std::span<const double> bounds);
  void observe(double value);
  // The series name_bucket{labels,le="..."}, name_sum{labels} and name_count{labels}.
  void write(std::ostream& out, std::string_view name, std::string_view labels = {}) const;
  long long count() const { return count_; }
  double sum() const { return sum_; }

private:
  std::span<const double> bounds_;
  std::vector<long long> counts_;
  long long count_ = 0;
  double sum_ = 0;
};

} // namespace tinyroute::prometheus
