// Log-probabilities from one row of logits. Shared by the batched path and its reference twin so
// that both compute the same arithmetic.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

namespace tinyroute::engine {

// log(sum(exp(logits))) in double, stable.
inline double log_sum_exp(const float* logits, int n) {
  const float mx = *std::max_element(logits, logits + n);
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += std::exp(static_cast<double>(logits[i]) - mx);
  return mx + std::log(sum);
}

inline double sum_logprobs(const std::vector<float>& lps) {
  double total = 0;
  for (float v : lps) total += v;
  return total;
}

} // namespace tinyroute::engine
