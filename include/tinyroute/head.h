// Decisions read from the model's own hidden states (strategies `centroid` and `head`).
//
// Both see a request the same way: its tokens decoded alone, no instruction prefix, one layer's output
// mean-pooled and L2-normalised (Engine::embed_tokens, EngineParams::hidden_layer). `centroid` needs no
// training: each label is the centroid of its config examples. `head` is a multinomial logistic regression
// fitted by `tinyroute train` and stored per model fingerprint and label set. Everything here is
// deterministic: the same data gives the same bytes.
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tinyroute/engine.h"

namespace tinyroute {

// ---- hidden states ------------------------------------------------------------------------------

// One embedding per text (the text clipped to max_tokens as LabelScorer clips queries). All are
// submitted at once; `progress(done, total)` is called as they arrive, when given.
std::vector<std::vector<float>> embed_texts(Engine& engine, const std::vector<std::string>& texts,
                                            int max_tokens,
                                            const std::function<void(size_t, size_t)>& progress = {});

// ---- centroid -----------------------------------------------------------------------------------

// The softmax temperature over cosine similarities (in [-1, 1]): a gap of 0.1 in cosine is a factor e.
constexpr double kCentroidTemperature = 0.1;

struct Centroids {
  // The mean of every example's embedding. Hidden states of a language model share a large common
  // direction, so raw cosines all sit near 1; subtracting it first spreads them.
  std::vector<double> center;
  std::vector<std::vector<double>> means; // per label: centered mean of its examples, unit length
};

// `examples[label]` holds that label's example embeddings; every label needs at least one.
Centroids make_centroids(const std::vector<std::vector<std::vector<float>>>& examples);
// softmax(cos(x - center, mean_l) / temperature) over the labels.
std::vector<double> centroid_probs(const Centroids& c, std::span<const float> x,
                                   double temperature = kCentroidTemperature);

// ---- logistic regression ------------------------------------------------------------------------

struct LogisticOptions {
  double l2 = 1e-2;         // penalty on the weights (not the biases): l2/2 * |W|^2
  int max_iterations = 300; // L-BFGS iterations
  double tolerance = 1e-6;  // stop when the gradient's largest entry falls below this
};

struct LogisticModel {
  int n_classes = 0;
  int n_features = 0;
  std::vector<double> weights; // n_classes rows of n_features
  std::vector<double> bias;    // n_classes
  std::vector<double> loss;    // the objective after each iteration (index 0: at the start)
};

// Fits softmax regression by L-BFGS on mean cross-entropy + L2. `y[i]` in [0, n_classes).
LogisticModel fit_logistic(const std::vector<std::vector<double>>& x, const std::vector<int>& y,
                           int n_classes, const LogisticOptions& options = {});
std::vector<double> logistic_logits(const LogisticModel& m, std::span<const double> x);
// The temperature T minimising the mean negative log-likelihood of softmax(logits / T).
double fit_temperature(const std::vector<std::vector<double>>& logits, const std::vector<int>& y);

// ---- the head -----------------------------------------------------------------------------------

// A label set's identity: sha256 over the names in order (the order is the head's output order).
std::string label_set_hash(const std::vector<std::string>& labels);

// The confidence threshold for a target precision, chosen on held-out examples: the lowest confidence
// whose accepted set (confidence >= threshold) still reaches `precision`. Set it as the config's
// threshold (internal_model.threshold, agent_routing.threshold) to abstain below it.
struct PrecisionThreshold {
  double precision = 0.95; // the target
  double threshold = 1;    // unset below: no threshold reached the target
  double coverage = 0;     // the share of the held-out examples accepted at it
  bool reached = false;
};
PrecisionThreshold threshold_for_precision(const std::vector<std::vector<double>>& probs,
                                           const std::vector<int>& y, double precision);

// strategy fused: the head and the label prompt (choice | score) as one log-linear model,
// softmax((head logits / head temperature + weight * log p_prompt) / temperature). The weight and the
// temperature are fitted on the held-out examples, so how much the prompt counts is measured, not chosen.
struct Fusion {
  double weight = 0;       // of the prompt's log-probabilities; 0 when they do not help on held-out data
  double temperature = 1;  // over the fused logits
  std::string prompt_hash; // LabelScorer::prompt_hash() of the prompt it was fitted with
  int n_fitted = 0;        // held-out examples it was fitted on
  PrecisionThreshold at_precision; // fused's, on the same held-out examples
};

struct Head {
  std::string kind;              // what the labels are: "categories" | "agents"
  std::string model_fingerprint; // ModelInfo::fingerprint of the model whose hidden states it reads
  std::string label_hash;        // label_set_hash(labels)
  std::vector<std::string> labels;
  std::vector<double> mean, scale; // standardisation: (x - mean) / scale
  LogisticModel model;
  double temperature = 1;          // fitted on the held-out part
  int hidden_layer = 0;            // the hidden state it reads (EngineParams::hidden_layer)
  int n_train = 0;                 // examples the weights were fitted on
  int n_heldout = 0;               // examples the temperature was fitted on
  std::optional<Fusion> fusion;    // set by `tinyroute train` (fit_fusion); absent in heads from before it
  PrecisionThreshold at_precision; // the head's, on its held-out examples (HeadTrainOptions::precision)
};

struct HeadTrainOptions {
  LogisticOptions logistic;
  int heldout_every = 5;   // per label, every Nth example is held out for the temperature
  int hidden_layer = 0;    // the hidden state x holds, recorded: a head is only used on the same one
  double precision = 0.95; // the target precision of the threshold chosen on the held-out part
};

// Standardises, fits the weights on the training part and the temperature on the held-out part.
Head train_head(const std::vector<std::vector<float>>& x, const std::vector<int>& y,
                std::vector<std::string> labels, std::string kind, std::string model_fingerprint,
                const HeadTrainOptions& options = {});
std::vector<double> head_probs(const Head& head, std::span<const float> x);
// The head's calibrated logits (divided by its temperature): head_probs before the softmax.
std::vector<double> head_logits(const Head& head, std::span<const float> x);
// The examples train_head holds out (per label, every Nth), in order: where the fusion is fitted too.
std::vector<size_t> heldout_indices(const std::vector<int>& y, int heldout_every);

// Fits the prompt's weight (a grid over [0, 3]) and the fused temperature by held-out negative
// log-likelihood, then the threshold for `precision`; `head` holds head_logits, `prompt` the prompt's
// probabilities, per example.
Fusion fit_fusion(const std::vector<std::vector<double>>& head,
                  const std::vector<std::vector<double>>& prompt, const std::vector<int>& y,
                  double precision = 0.95);
// The fused distribution; head.fusion must be set.
std::vector<double> fused_probs(const Head& head, std::span<const float> x, std::span<const double> prompt);

// JSON, deterministic (same head, same bytes). parse_head throws Error(invalid_argument) naming `where`.
std::string serialize_head(const Head& head);
Head parse_head(const std::string& text, const std::string& where);

// Where heads live: `state_dir` (internal_model.state_dir) when set, else tinyroute's cache root.
std::string head_dir(const std::string& state_dir);
// <dir>/heads/<fingerprint[0:16]>/<kind>-<label hash[0:16]>.json, or -block<k>.json for a middle block
std::string head_path(const std::string& dir, const std::string& kind, const std::string& model_fingerprint,
                      const std::string& label_hash, int hidden_layer = 0);
// Writes atomically (temp file + rename); returns the path.
std::string save_head(const Head& head, const std::string& dir);
// The head for this model, hidden layer and label set. Refused (Error invalid_argument) when the file
// or the only heads found for `kind` were trained for another: the message names both.
Head load_head(const std::string& dir, const std::string& kind, const std::string& model_fingerprint,
               const std::vector<std::string>& labels, int hidden_layer = 0);

// ---- training data ------------------------------------------------------------------------------

struct TrainingExample {
  std::string text;
  int label = 0; // index into the label list
};

// JSONL lines {"text": ..., "label": ...}; blank lines skipped. Throws Error(invalid_argument) with
// path:line for a bad line or a label not in `labels`, and for a file without examples.
std::vector<TrainingExample> read_training_set(const std::string& path,
                                               const std::vector<std::string>& labels);

} // namespace tinyroute
