// Evaluation metrics for a labelled set: accuracy, per-class precision / recall / F1, macro-F1, the
// confusion matrix and latency percentiles. Pure functions, so `tinyroute eval` and the benchmarks
// report the same numbers.
#pragma once

#include <string>
#include <vector>

namespace tinyroute {

struct ClassMetrics {
  std::string label;
  int support = 0;   // gold examples of this label
  int predicted = 0; // predictions of this label
  int true_positives = 0;
  double precision = 0; // 0 when nothing was predicted as this label
  double recall = 0;    // 0 when the label has no gold examples
  double f1 = 0;        // 0 when precision + recall == 0
};

struct EvalMetrics {
  std::vector<std::string> labels;         // row and column order of the confusion matrix
  std::vector<std::vector<int>> confusion; // confusion[gold][predicted]
  int total = 0;
  int correct = 0;
  double accuracy = 0;
  // Mean F1 over the labels that occur (as gold or prediction); labels absent from both are skipped.
  double macro_f1 = 0;
  std::vector<ClassMetrics> per_class; // in `labels` order
};

// `labels` gives the order; a gold or predicted value not in it is appended in order of first
// appearance (gold before predicted, pair by pair), so nothing is lost.
// Throws Error(invalid_argument) when gold and predicted differ in length.
EvalMetrics compute_metrics(std::vector<std::string> labels, const std::vector<std::string>& gold,
                            const std::vector<std::string>& predicted);

struct LatencySummary {
  int count = 0;
  double mean = 0;
  double p50 = 0;
  double p95 = 0;
  double p99 = 0;
  double max = 0;
};

LatencySummary summarize_latency(const std::vector<double>& ms);

} // namespace tinyroute
