#include "tinyroute/head.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <limits>
#include <numeric>

#include <nlohmann/json.hpp>

#include "core/cache-dir.h"
#include "core/sha256.h"
#include "tinyroute/classify.h"

namespace tinyroute {

namespace fs = std::filesystem;

namespace {

double dot(std::span<const double> a, std::span<const double> b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// In place; returns log(sum(exp(z))) of the input (for the cross-entropy).
double softmax_inplace(std::vector<double>& z) {
  const double mx = *std::max_element(z.begin(), z.end());
  double sum = 0;
  for (double& v : z) sum += v = std::exp(v - mx);
  for (double& v : z) v /= sum;
  return mx + std::log(sum);
}

// Mean cross-entropy + l2/2 |W|^2 of theta = [W (C x F), b (C)], and its gradient.
double objective(const std::vector<std::vector<double>>& x, const std::vector<int>& y, int c, int f,
                 double l2, const std::vector<double>& theta, std::vector<double>& grad) {
  const size_t nw = static_cast<size_t>(c) * static_cast<size_t>(f);
  grad.assign(theta.size(), 0.0);
  double loss = 0;
  std::vector<double> z(static_cast<size_t>(c));
  const double inv_n = 1.0 / static_cast<double>(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    for (int k = 0; k < c; ++k) {
      const size_t row = static_cast<size_t>(k) * static_cast<size_t>(f);
      z[static_cast<size_t>(k)] = dot(std::span(theta).subspan(row, static_cast<size_t>(f)), x[i]) +
                                  theta[nw + static_cast<size_t>(k)];
    }
    const double target = z[static_cast<size_t>(y[i])];
    loss += softmax_inplace(z) - target;
    z[static_cast<size_t>(y[i])] -= 1.0; // now p - onehot
    for (int k = 0; k < c; ++k) {
      const double d = z[static_cast<size_t>(k)] * inv_n;
      const size_t row = static_cast<size_t>(k) * static_cast<size_t>(f);
      for (int j = 0; j < f; ++j) grad[row + static_cast<size_t>(j)] += d * x[i][static_cast<size_t>(j)];
      grad[nw + static_cast<size_t>(k)] += d;
    }
  }
  loss *= inv_n;
  double reg = 0;
  for (size_t j = 0; j < nw; ++j) {
    reg += theta[j] * theta[j];
    grad[j] += l2 * theta[j];
  }
  return loss + 0.5 * l2 * reg;
}

double mean_nll(const std::vector<std::vector<double>>& logits, const std::vector<int>& y, double beta) {
  double total = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    std::vector<double> z = logits[i];
    for (double& v : z) v *= beta;
    const double target = z[static_cast<size_t>(y[i])];
    total += softmax_inplace(z) - target;
  }
  return total / static_cast<double>(logits.size());
}

std::string short_id(const std::string& hex) {
  return hex.substr(0, 16);
}

std::string label_list(const std::vector<std::string>& labels) {
  std::string out;
  for (size_t i = 0; i < labels.size(); ++i) out += (i ? ", " : "") + labels[i];
  return out;
}

} // namespace

std::vector<std::vector<float>> embed_texts(Engine& engine, const std::vector<std::string>& texts,
                                            int max_tokens,
                                            const std::function<void(size_t, size_t)>& progress) {
  std::vector<std::future<HiddenState>> pending;
  pending.reserve(texts.size());
  for (const auto& t : texts)
    pending.push_back(engine.embed_tokens(clip_request_tokens(engine, t, max_tokens)));
  std::vector<std::vector<float>> out;
  out.reserve(texts.size());
  for (auto& f : pending) {
    out.push_back(f.get().embedding);
    if (progress) progress(out.size(), texts.size());
  }
  return out;
}

Centroids make_centroids(const std::vector<std::vector<std::vector<float>>>& examples) {
  Centroids c;
  size_t n = 0;
  for (const auto& label : examples) {
    if (label.empty()) throw Error(ErrorCode::invalid_argument, "centroid: a label has no examples");
    for (const auto& e : label) {
      if (c.center.empty()) c.center.assign(e.size(), 0.0);
      for (size_t j = 0; j < e.size(); ++j) c.center[j] += e[j];
      ++n;
    }
  }
  for (double& v : c.center) v /= static_cast<double>(n);
  for (const auto& label : examples) {
    std::vector<double> m(c.center.size(), 0.0);
    for (const auto& e : label)
      for (size_t j = 0; j < e.size(); ++j) m[j] += e[j] - c.center[j];
    const double norm = std::sqrt(dot(m, m));
    for (double& v : m) v = norm > 0 ? v / norm : 0;
    c.means.push_back(std::move(m));
  }
  return c;
}

std::vector<double> centroid_probs(const Centroids& c, std::span<const float> x, double temperature) {
  std::vector<double> q(c.center.size());
  for (size_t j = 0; j < q.size(); ++j) q[j] = x[j] - c.center[j];
  const double norm = std::sqrt(dot(q, q));
  std::vector<double> z;
  for (const auto& m : c.means) z.push_back((norm > 0 ? dot(q, m) / norm : 0) / temperature);
  softmax_inplace(z);
  return z;
}

LogisticModel fit_logistic(const std::vector<std::vector<double>>& x, const std::vector<int>& y,
                           int n_classes, const LogisticOptions& options) {
  if (x.empty() || x.size() != y.size())
    throw Error(ErrorCode::invalid_argument, "logistic regression: no examples, or labels do not match");
  if (n_classes < 2) throw Error(ErrorCode::invalid_argument, "logistic regression: needs two classes");
  LogisticModel m;
  m.n_classes = n_classes;
  m.n_features = static_cast<int>(x[0].size());
  for (size_t i = 0; i < x.size(); ++i) {
    if (x[i].size() != x[0].size())
      throw Error(ErrorCode::invalid_argument, "logistic regression: rows differ in length");
    if (y[i] < 0 || y[i] >= n_classes)
      throw Error(ErrorCode::invalid_argument, "logistic regression: bad label");
  }
  const size_t nw = static_cast<size_t>(n_classes) * static_cast<size_t>(m.n_features);
  std::vector<double> theta(nw + static_cast<size_t>(n_classes), 0.0), grad, next_grad;
  double f = objective(x, y, n_classes, m.n_features, options.l2, theta, grad);
  m.loss.push_back(f);

  // L-BFGS (two-loop recursion, 10 pairs) with a backtracking Armijo line search.
  constexpr size_t kPairs = 10;
  std::deque<std::vector<double>> s_hist, y_hist;
  std::deque<double> rho_hist;
  for (int it = 0; it < options.max_iterations; ++it) {
    double gmax = 0;
    for (double g : grad) gmax = std::max(gmax, std::abs(g));
    if (gmax < options.tolerance) break;
    std::vector<double> d = grad;
    std::vector<double> alpha(s_hist.size());
    for (size_t k = s_hist.size(); k-- > 0;) {
      alpha[k] = rho_hist[k] * dot(s_hist[k], d);
      for (size_t j = 0; j < d.size(); ++j) d[j] -= alpha[k] * y_hist[k][j];
    }
    if (!s_hist.empty()) {
      const double gamma = dot(s_hist.back(), y_hist.back()) / dot(y_hist.back(), y_hist.back());
      for (double& v : d) v *= gamma;
    } else {
      const double gnorm = std::sqrt(dot(grad, grad));
      for (double& v : d) v /= std::max(gnorm, 1.0); // a first step of at most unit length
    }
    for (size_t k = 0; k < s_hist.size(); ++k) {
      const double beta = rho_hist[k] * dot(y_hist[k], d);
      for (size_t j = 0; j < d.size(); ++j) d[j] += s_hist[k][j] * (alpha[k] - beta);
    }
    for (double& v : d) v = -v;
    double slope = dot(grad, d);
    if (slope >= 0) { // not a descent direction: forget the curvature pairs, go down the gradient
      s_hist.clear(), y_hist.clear(), rho_hist.clear();
      d = grad;
      for (double& v : d) v = -v;
      slope = dot(grad, d);
    }
    double step = 1.0, f_next = f;
    std::vector<double> candidate(theta.size());
    bool accepted = false;
    for (int tries = 0; tries < 40; ++tries) {
      for (size_t j = 0; j < theta.size(); ++j) candidate[j] = theta[j] + step * d[j];
      f_next = objective(x, y, n_classes, m.n_features, options.l2, candidate, next_grad);
      if (f_next <= f + 1e-4 * step * slope) {
        accepted = true;
        break;
      }
      step *= 0.5;
    }
    if (!accepted) break; // no decrease left at machine precision
    std::vector<double> s(theta.size()), yv(theta.size());
    for (size_t j = 0; j < theta.size(); ++j) {
      s[j] = candidate[j] - theta[j];
      yv[j] = next_grad[j] - grad[j];
    }
    const double sy = dot(s, yv);
    if (sy > 1e-12) {
      s_hist.push_back(std::move(s));
      y_hist.push_back(std::move(yv));
      rho_hist.push_back(1.0 / sy);
      if (s_hist.size() > kPairs) s_hist.pop_front(), y_hist.pop_front(), rho_hist.pop_front();
    }
    theta.swap(candidate);
    grad.swap(next_grad);
    const double improvement = f - f_next;
    f = f_next;
    m.loss.push_back(f);
    if (improvement < 1e-12 * std::max(1.0, std::abs(f))) break;
  }
  m.weights.assign(theta.begin(), theta.begin() + static_cast<std::ptrdiff_t>(nw));
  m.bias.assign(theta.begin() + static_cast<std::ptrdiff_t>(nw), theta.end());
  return m;
}

std::vector<double> logistic_logits(const LogisticModel& m, std::span<const double> x) {
  std::vector<double> z(static_cast<size_t>(m.n_classes));
  for (int k = 0; k < m.n_classes; ++k) {
    const size_t row = static_cast<size_t>(k) * static_cast<size_t>(m.n_features);
    z[static_cast<size_t>(k)] = dot(std::span(m.weights).subspan(row, static_cast<size_t>(m.n_features)), x) +
                                m.bias[static_cast<size_t>(k)];
  }
  return z;
}

double fit_temperature(const std::vector<std::vector<double>>& logits, const std::vector<int>& y) {
  if (logits.empty()) return 1.0;
  // The NLL is convex in beta = 1/T (a linear scaling of the logits): golden-section search.
  double lo = 1e-3, hi = 1e3;
  const double g = (std::sqrt(5.0) - 1) / 2;
  double a = hi - g * (hi - lo), b = lo + g * (hi - lo);
  double fa = mean_nll(logits, y, a), fb = mean_nll(logits, y, b);
  for (int i = 0; i < 100 && hi - lo > 1e-6 * (1 + lo); ++i) {
    if (fa < fb) {
      hi = b, b = a, fb = fa;
      a = hi - g * (hi - lo);
      fa = mean_nll(logits, y, a);
    } else {
      lo = a, a = b, fa = fb;
      b = lo + g * (hi - lo);
      fb = mean_nll(logits, y, b);
    }
  }
  return 2.0 / (lo + hi);
}

std::string label_set_hash(const std::vector<std::string>& labels) {
  std::string joined;
  for (const auto& l : labels) joined += l + "\n";
  return sha256_hex(joined);
}

Head train_head(const std::vector<std::vector<float>>& x, const std::vector<int>& y,
                std::vector<std::string> labels, std::string kind, std::string model_fingerprint,
                const HeadTrainOptions& options) {
  if (x.empty() || x.size() != y.size())
    throw Error(ErrorCode::invalid_argument, "train: no examples, or labels do not match");
  if (options.heldout_every < 2)
    throw Error(ErrorCode::invalid_argument, "train: heldout_every must be >= 2");
  Head h;
  h.kind = std::move(kind);
  h.model_fingerprint = std::move(model_fingerprint);
  h.label_hash = label_set_hash(labels);
  h.labels = std::move(labels);
  h.hidden_layer = options.hidden_layer;
  const int n_classes = static_cast<int>(h.labels.size());

  const std::vector<size_t> heldout = heldout_indices(y, options.heldout_every);
  std::vector<size_t> train;
  for (size_t i = 0, next = 0; i < x.size(); ++i) {
    if (next < heldout.size() && heldout[next] == i)
      ++next;
    else
      train.push_back(i);
  }
  const size_t f = x[0].size();
  h.mean.assign(f, 0.0);
  h.scale.assign(f, 0.0);
  for (size_t i : train)
    for (size_t j = 0; j < f; ++j) h.mean[j] += x[i][j];
  for (double& v : h.mean) v /= static_cast<double>(train.size());
  for (size_t i : train)
    for (size_t j = 0; j < f; ++j) h.scale[j] += (x[i][j] - h.mean[j]) * (x[i][j] - h.mean[j]);
  for (double& v : h.scale) {
    v = std::sqrt(v / static_cast<double>(train.size()));
    if (v < 1e-12) v = 1.0; // a constant feature carries nothing; keep it finite
  }
  auto standardized = [&](size_t i) {
    std::vector<double> r(f);
    for (size_t j = 0; j < f; ++j) r[j] = (x[i][j] - h.mean[j]) / h.scale[j];
    return r;
  };
  std::vector<std::vector<double>> xt;
  std::vector<int> yt;
  for (size_t i : train) xt.push_back(standardized(i)), yt.push_back(y[i]);
  h.model = fit_logistic(xt, yt, n_classes, options.logistic);
  std::vector<std::vector<double>> logits;
  std::vector<int> yh;
  for (size_t i : heldout) logits.push_back(logistic_logits(h.model, standardized(i))), yh.push_back(y[i]);
  h.temperature = fit_temperature(logits, yh);
  std::vector<std::vector<double>> probs;
  for (auto z : logits) {
    for (double& v : z) v /= h.temperature;
    softmax_inplace(z);
    probs.push_back(std::move(z));
  }
  h.at_precision = threshold_for_precision(probs, yh, options.precision);
  h.n_train = static_cast<int>(train.size());
  h.n_heldout = static_cast<int>(heldout.size());
  return h;
}

PrecisionThreshold threshold_for_precision(const std::vector<std::vector<double>>& probs,
                                           const std::vector<int>& y, double precision) {
  PrecisionThreshold t;
  t.precision = precision;
  std::vector<std::pair<double, bool>> scored; // (confidence, correct)
  for (size_t i = 0; i < probs.size(); ++i) {
    const auto best = std::max_element(probs[i].begin(), probs[i].end());
    scored.emplace_back(*best, best - probs[i].begin() == y[i]);
  }
  std::sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  size_t correct = 0;
  for (size_t i = 0; i < scored.size(); ++i) {
    correct += scored[i].second ? 1 : 0;
    // A threshold can only cut between two distinct confidences.
    const bool cut = i + 1 == scored.size() || scored[i + 1].first < scored[i].first;
    if (cut && static_cast<double>(correct) >= precision * static_cast<double>(i + 1)) {
      t.threshold = scored[i].first;
      t.coverage = static_cast<double>(i + 1) / static_cast<double>(scored.size());
      t.reached = true;
    }
  }
  return t;
}

std::vector<size_t> heldout_indices(const std::vector<int>& y, int heldout_every) {
  // Per label, every Nth example: both parts see every label in proportion.
  std::vector<int> seen;
  std::vector<size_t> out;
  for (size_t i = 0; i < y.size(); ++i) {
    const auto label = static_cast<size_t>(y[i]);
    if (label >= seen.size()) seen.resize(label + 1, 0);
    if (seen[label]++ % heldout_every == heldout_every - 1) out.push_back(i);
  }
  return out;
}

std::vector<double> head_logits(const Head& head, std::span<const float> x) {
  if (x.size() != head.mean.size()) {
    throw Error(ErrorCode::invalid_argument, "head: the embedding has " + std::to_string(x.size()) +
                                                 " values, the head expects " +
                                                 std::to_string(head.mean.size()));
  }
  std::vector<double> s(x.size());
  for (size_t j = 0; j < s.size(); ++j) s[j] = (x[j] - head.mean[j]) / head.scale[j];
  std::vector<double> z = logistic_logits(head.model, s);
  for (double& v : z) v /= head.temperature;
  return z;
}

std::vector<double> head_probs(const Head& head, std::span<const float> x) {
  std::vector<double> z = head_logits(head, x);
  softmax_inplace(z);
  return z;
}

namespace {

// A probability floor before the log: a prompt that rules a label out must not veto the head forever.
constexpr double kMinPromptProb = 1e-9;

std::vector<double> fused_logits(std::span<const double> head, std::span<const double> prompt,
                                 double weight) {
  if (head.size() != prompt.size())
    throw Error(ErrorCode::invalid_argument, "fusion: the head and the prompt disagree on the label count");
  std::vector<double> z(head.size());
  for (size_t k = 0; k < z.size(); ++k)
    z[k] = head[k] + weight * std::log(std::max(prompt[k], kMinPromptProb));
  return z;
}

} // namespace

Fusion fit_fusion(const std::vector<std::vector<double>>& head,
                  const std::vector<std::vector<double>>& prompt, const std::vector<int>& y,
                  double precision) {
  if (head.empty() || head.size() != prompt.size() || head.size() != y.size())
    throw Error(ErrorCode::invalid_argument, "fusion: no held-out examples, or their parts do not agree");
  Fusion best;
  double best_nll = std::numeric_limits<double>::infinity();
  // A grid, not a joint optimiser: one weight in 31 is resolution enough, and the result is deterministic.
  for (int step = 0; step <= 30; ++step) {
    const double w = 0.1 * step;
    std::vector<std::vector<double>> z;
    z.reserve(head.size());
    for (size_t i = 0; i < head.size(); ++i) z.push_back(fused_logits(head[i], prompt[i], w));
    const double t = fit_temperature(z, y);
    const double nll = mean_nll(z, y, 1.0 / t);
    if (nll < best_nll - 1e-12) best_nll = nll, best.weight = w, best.temperature = t;
  }
  best.n_fitted = static_cast<int>(head.size());
  std::vector<std::vector<double>> probs;
  for (size_t i = 0; i < head.size(); ++i) {
    std::vector<double> z = fused_logits(head[i], prompt[i], best.weight);
    for (double& v : z) v /= best.temperature;
    softmax_inplace(z);
    probs.push_back(std::move(z));
  }
  best.at_precision = threshold_for_precision(probs, y, precision);
  return best;
}

std::vector<double> fused_probs(const Head& head, std::span<const float> x, std::span<const double> prompt) {
  if (!head.fusion) throw Error(ErrorCode::internal, "fused_probs: the head has no fusion");
  std::vector<double> z = fused_logits(head_logits(head, x), prompt, head.fusion->weight);
  for (double& v : z) v /= head.fusion->temperature;
  softmax_inplace(z);
  return z;
}

namespace {

nlohmann::ordered_json precision_json(const PrecisionThreshold& t) {
  return {{"precision", t.precision},
          {"reached", t.reached},
          {"threshold", t.threshold},
          {"coverage", t.coverage}};
}

PrecisionThreshold precision_from(const nlohmann::json& j) {
  return {j.at("precision").get<double>(), j.at("threshold").get<double>(), j.at("coverage").get<double>(),
          j.at("reached").get<bool>()};
}

} // namespace

std::string serialize_head(const Head& h) {
  nlohmann::ordered_json j;
  j["format"] = "tinyroute-head/1";
  j["kind"] = h.kind;
  j["model_fingerprint"] = h.model_fingerprint;
  j["label_hash"] = h.label_hash;
  j["labels"] = h.labels;
  j["hidden_layer"] = h.hidden_layer;
  j["n_features"] = h.model.n_features;
  j["temperature"] = h.temperature;
  j["n_train"] = h.n_train;
  j["n_heldout"] = h.n_heldout;
  j["at_precision"] = precision_json(h.at_precision);
  if (h.fusion) {
    j["fusion"] = {{"weight", h.fusion->weight},
                   {"temperature", h.fusion->temperature},
                   {"prompt_hash", h.fusion->prompt_hash},
                   {"n_fitted", h.fusion->n_fitted},
                   {"at_precision", precision_json(h.fusion->at_precision)}};
  }
  j["mean"] = h.mean;
  j["scale"] = h.scale;
  j["bias"] = h.model.bias;
  j["weights"] = h.model.weights;
  return j.dump() + "\n";
}

Head parse_head(const std::string& text, const std::string& where) {
  const auto j = nlohmann::json::parse(text, nullptr, false);
  auto bad = [&](const std::string& why) {
    return Error(ErrorCode::invalid_argument,
                 where + ": not a tinyroute head (" + why + "); run `tinyroute train`");
  };
  if (j.is_discarded() || !j.is_object()) throw bad("not JSON");
  if (j.value("format", "") != "tinyroute-head/1") throw bad("format is not tinyroute-head/1");
  Head h;
  try {
    h.kind = j.at("kind").get<std::string>();
    h.model_fingerprint = j.at("model_fingerprint").get<std::string>();
    h.label_hash = j.at("label_hash").get<std::string>();
    h.labels = j.at("labels").get<std::vector<std::string>>();
    h.hidden_layer = j.value("hidden_layer", 0); // heads from before the field read the final layer
    h.model.n_features = j.at("n_features").get<int>();
    h.model.n_classes = static_cast<int>(h.labels.size());
    h.temperature = j.at("temperature").get<double>();
    h.n_train = j.at("n_train").get<int>();
    h.n_heldout = j.at("n_heldout").get<int>();
    h.mean = j.at("mean").get<std::vector<double>>();
    h.scale = j.at("scale").get<std::vector<double>>();
    h.model.bias = j.at("bias").get<std::vector<double>>();
    h.model.weights = j.at("weights").get<std::vector<double>>();
    if (j.contains("at_precision")) h.at_precision = precision_from(j.at("at_precision"));
    if (j.contains("fusion")) {
      const auto& f = j.at("fusion");
      h.fusion = Fusion{f.at("weight").get<double>(), f.at("temperature").get<double>(),
                        f.at("prompt_hash").get<std::string>(), f.at("n_fitted").get<int>(),
                        precision_from(f.at("at_precision"))};
    }
  } catch (const nlohmann::json::exception& e) {
    throw bad(e.what());
  }
  const size_t f = static_cast<size_t>(h.model.n_features);
  if (h.labels.size() < 2 || h.mean.size() != f || h.scale.size() != f ||
      h.model.bias.size() != h.labels.size() || h.model.weights.size() != f * h.labels.size() ||
      !(h.temperature > 0))
    throw bad("sizes do not agree");
  if (h.fusion && (!(h.fusion->temperature > 0) || !(h.fusion->weight >= 0)))
    throw bad("fusion weight or temperature out of range");
  if (label_set_hash(h.labels) != h.label_hash) throw bad("label_hash does not match its labels");
  return h;
}

std::string head_dir(const std::string& state_dir) {
  if (!state_dir.empty()) return state_dir;
  return cache_root(); // beside models/
}

std::string head_path(const std::string& dir, const std::string& kind, const std::string& model_fingerprint,
                      const std::string& label_hash, int hidden_layer) {
  const std::string block = hidden_layer > 0 ? "-block" + std::to_string(hidden_layer) : "";
  return (fs::path(dir) / "heads" / short_id(model_fingerprint) /
          (kind + "-" + short_id(label_hash) + block + ".json"))
      .string();
}

std::string save_head(const Head& head, const std::string& dir) {
  const std::string path =
      head_path(dir, head.kind, head.model_fingerprint, head.label_hash, head.hidden_layer);
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  if (ec)
    throw Error(ErrorCode::io,
                "cannot create " + fs::path(path).parent_path().string() + ": " + ec.message());
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << serialize_head(head);
    if (!out.flush()) throw Error(ErrorCode::io, "cannot write " + tmp);
  }
  fs::rename(tmp, path, ec);
  if (ec) throw Error(ErrorCode::io, "cannot rename " + tmp + " to " + path + ": " + ec.message());
  return path;
}

Head load_head(const std::string& dir, const std::string& kind, const std::string& model_fingerprint,
               const std::vector<std::string>& labels, int hidden_layer) {
  const std::string want_hash = label_set_hash(labels);
  const std::string path = head_path(dir, kind, model_fingerprint, want_hash, hidden_layer);
  auto layer_name = [](int layer) {
    return layer > 0 ? "block " + std::to_string(layer) : std::string("the final layer");
  };
  auto read = [](const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) throw Error(ErrorCode::io, "cannot read " + p);
    return parse_head(std::string(std::istreambuf_iterator<char>(in), {}), p);
  };
  auto refuse = [&](const Head& h, const std::string& p) {
    return Error(ErrorCode::invalid_argument,
                 "head " + p + " was trained for model " + short_id(h.model_fingerprint) + " (" +
                     layer_name(h.hidden_layer) + ") and label set " + short_id(h.label_hash) + " (" +
                     label_list(h.labels) + "); this is model " + short_id(model_fingerprint) + " (" +
                     layer_name(hidden_layer) + ") with label set " + short_id(want_hash) + " (" +
                     label_list(labels) + "): run `tinyroute train DATA.jsonl --labels-from " + kind +
                     "` for it");
  };
  std::error_code ec;
  if (fs::exists(path, ec)) {
    Head h = read(path);
    if (h.kind != kind || h.model_fingerprint != model_fingerprint || h.label_hash != want_hash ||
        h.hidden_layer != hidden_layer)
      throw refuse(h, path);
    return h;
  }
  // None for this pair: name what there is instead, so a new model or an edited label set is explained.
  std::vector<std::string> others;
  const fs::path root = fs::path(dir) / "heads";
  if (fs::is_directory(root, ec)) {
    for (const auto& model_dir : fs::directory_iterator(root, ec)) {
      if (!model_dir.is_directory()) continue;
      for (const auto& file : fs::directory_iterator(model_dir.path(), ec)) {
        const std::string name = file.path().filename().string();
        if (name.starts_with(kind + "-") && name.ends_with(".json")) others.push_back(file.path().string());
      }
    }
  }
  std::sort(others.begin(), others.end());
  if (!others.empty()) throw refuse(read(others.front()), others.front());
  throw Error(ErrorCode::invalid_argument,
              "no head for " + kind + " (model " + short_id(model_fingerprint) + ", label set " +
                  short_id(want_hash) + ") in " + root.string() +
                  ": run `tinyroute train DATA.jsonl --labels-from " + kind + "` first");
}

std::vector<TrainingExample> read_training_set(const std::string& path,
                                               const std::vector<std::string>& labels) {
  std::ifstream in(path);
  if (!in) throw Error(ErrorCode::io, "cannot read " + path);
  std::vector<TrainingExample> out;
  int line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(line_no) + ": ";
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object())
      throw Error(ErrorCode::invalid_argument, where + "not a JSON object");
    if (!j.contains("text") || !j["text"].is_string())
      throw Error(ErrorCode::invalid_argument, where + "\"text\" must be a string");
    if (!j.contains("label") || !j["label"].is_string())
      throw Error(ErrorCode::invalid_argument, where + "\"label\" must be a string");
    const std::string label = j["label"];
    const auto it = std::find(labels.begin(), labels.end(), label);
    if (it == labels.end()) {
      throw Error(ErrorCode::invalid_argument, where + "label \"" + label +
                                                   "\" is not one of the configured labels (" +
                                                   label_list(labels) + ")");
    }
    out.push_back({j["text"], static_cast<int>(it - labels.begin())});
  }
  if (out.empty()) throw Error(ErrorCode::invalid_argument, path + ": no examples");
  return out;
}

} // namespace tinyroute
