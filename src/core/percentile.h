// Nearest-rank percentiles: the one definition behind eval's latency summary, the dispatcher's
// figures and the benchmarks.
#pragma once

#include <vector>

namespace tinyroute {

// The smallest value with at least p% (p in [0, 100], clamped) of `values` at or below it; `values`
// need not be sorted. NaN for an empty set: no sample is not a latency of 0.
double percentile(std::vector<double> values, double p);

} // namespace tinyroute
