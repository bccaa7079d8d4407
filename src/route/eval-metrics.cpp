#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "core/percentile.h"
#include "tinyroute/error.h"
#include "tinyroute/eval-metrics.h"

namespace tinyroute {

EvalMetrics compute_metrics(std::vector<std::string> labels, const std::vector<std::string>& gold,
                            const std::vector<std::string>& predicted) {
  if (gold.size() != predicted.size()) {
    throw Error(ErrorCode::invalid_argument, "compute_metrics: " + std::to_string(gold.size()) +
                                                 " gold labels but " + std::to_string(predicted.size()) +
                                                 " predictions");
  }
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < labels.size(); ++i) index.emplace(labels[i], i);
  auto slot = [&](const std::string& label) {
    auto [it, added] = index.emplace(label, labels.size());
    if (added) labels.push_back(label);
    return it->second;
  };
  std::vector<std::pair<size_t, size_t>> pairs;
  for (size_t i = 0; i < gold.size(); ++i) pairs.emplace_back(slot(gold[i]), slot(predicted[i]));

  EvalMetrics m;
  m.labels = labels;
  m.confusion.assign(labels.size(), std::vector<int>(labels.size(), 0));
  for (auto [g, p] : pairs) ++m.confusion[g][p];
  m.total = static_cast<int>(pairs.size());

  double f1_sum = 0;
  int f1_count = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    ClassMetrics c;
    c.label = labels[i];
    c.true_positives = m.confusion[i][i];
    for (size_t j = 0; j < labels.size(); ++j) {
      c.support += m.confusion[i][j];
      c.predicted += m.confusion[j][i];
    }
    if (c.predicted > 0) c.precision = static_cast<double>(c.true_positives) / c.predicted;
    if (c.support > 0) c.recall = static_cast<double>(c.true_positives) / c.support;
    if (c.precision + c.recall > 0) c.f1 = 2 * c.precision * c.recall / (c.precision + c.recall);
    if (c.support > 0 || c.predicted > 0) {
      f1_sum += c.f1;
      ++f1_count;
    }
    m.correct += c.true_positives;
    m.per_class.push_back(c);
  }
  m.accuracy = m.total > 0 ? static_cast<double>(m.correct) / m.total : 0;
  m.macro_f1 = f1_count > 0 ? f1_sum / f1_count : 0;
  return m;
}

LatencySummary summarize_latency(const std::vector<double>& ms) {
  LatencySummary s;
  s.count = static_cast<int>(ms.size());
  if (ms.empty()) return s;
  s.mean = std::accumulate(ms.begin(), ms.end(), 0.0) / static_cast<double>(ms.size());
  s.p50 = percentile(ms, 50);
  s.p95 = percentile(ms, 95);
  s.p99 = percentile(ms, 99);
  s.max = *std::max_element(ms.begin(), ms.end());
  return s;
}

} // namespace tinyroute
