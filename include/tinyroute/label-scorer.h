// LabelScorer: "which of these labels fits this text?" as one cached instruction prefix and one batched
// score call (or a read of the text's hidden state: centroid | head). Task classification, agent
// routing and enumerated metadata fields are all LabelScorers with different labels and instructions.
// Instructions are always English: label scoring reads likelihoods, so the small model never has to
// write in the request's language.
#pragma once

#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tinyroute/config.h"
#include "tinyroute/engine.h"
#include "tinyroute/head.h"

namespace tinyroute {

struct Label {
  std::string name;
  std::string description;
  std::vector<std::string> examples; // few-shot texts that belong to this label (any language)
};

struct LabelScorerOptions {
  std::string prefix_name;              // the engine prefix holding the instructions
  std::string task;                     // what to decide, one English paragraph
  std::string item_noun = "Request";    // "Request: <text>"
  std::string answer_noun = "Category"; // "Category: <answer>"
  Strategy strategy = Strategy::choice;
  int max_query_tokens = 256; // longer texts keep their head and tail
  // strategy head: where heads live (head_dir()) and what the labels are ("categories" | "agents").
  std::string head_dir;
  std::string head_kind;
};

// centroid and head read the request's hidden state; score and choice read an answer after a prompt;
// fused does both.
bool reads_hidden_state(Strategy strategy);
bool reads_prompt(Strategy strategy);
// The prompt for a label set under `strategy`: score and choice as they are, a hidden-state strategy
// (fused's prompt; metadata fields, which have no examples or heads) choice, or score beyond 26 labels.
Strategy prompt_strategy(Strategy strategy, size_t n_labels);

struct LabelDistribution {
  std::vector<std::string> labels; // in configured order
  std::vector<double> probs;       // same order, sums to 1
  size_t best = 0;
  double confidence = 0; // probs[best]
  int query_tokens = 0;  // tokens decoded after the cached prefix (text + answer cue)
  bool truncated = false;
  int n_decoded = 0;
  double queue_ms = 0;
  double compute_ms = 0;
};

// A label set as a prompt: the system instructions (task, options, examples, answer rule) and one
// answer continuation per label (a letter code for `choice`, the name for `score`). Throws
// Error(invalid_argument) for fewer than two labels or more than 26 with `choice`.
struct LabelPrompt {
  std::string instructions;
  std::vector<std::vector<Token>> answers;
};
LabelPrompt label_prompt(const Engine& engine, const std::vector<Label>& labels,
                         const LabelScorerOptions& options);

// The distribution over `labels` from their answers' scores: each answer's mean token log-probability
// (so long names are not penalised), softmax over the labels. Timings and token counts are left 0.
LabelDistribution label_distribution(const std::vector<Label>& labels,
                                     const std::vector<ContinuationScore>& answers);

// `text` tokenized as plain text (a typed "</s>" stays text) as it reads after "<Noun>: ", one space
// included whether or not the vocabulary implies it; over `max_tokens` the head (2/3) and the
// tail are kept around " [...]". Sets *truncated when it cut.
std::vector<Token> clip_text_tokens(const Engine& engine, const std::string& text, int max_tokens,
                                    bool* truncated = nullptr);
// The same clipping for a request decoded alone (the hidden-state strategies): `text` tokenized as
// written, as Engine::embed does, with no cue before it.
std::vector<Token> clip_request_tokens(const Engine& engine, const std::string& text, int max_tokens,
                                       bool* truncated = nullptr);

class LabelScorer {
public:
  // score / choice: builds the instruction prefix and makes it resident in the engine (decoded once).
  // centroid: embeds every label's examples (a label without any: its name and description) into
  // centroids. head: loads the head for this model and label set (load_head, refused for others).
  // fused: both the head (which must carry a fusion fitted with this very prompt) and the prompt.
  LabelScorer(Engine& engine, std::vector<Label> labels, LabelScorerOptions options);

  std::future<LabelDistribution> score(const std::string& text, Priority priority = Priority::normal,
                                       CancelToken cancel = {}) const;
  // The brute-force twin: the same prompt decoded from scratch for every label, and the hidden state
  // read as score() reads it (one decode, no prefix to share). Tests only.
  LabelDistribution score_reference(const std::string& text) const;

  // score() in two steps, for a caller that waits with a deadline (score()'s future is deferred): the
  // engine requests for `text`, then the distribution from their results.
  struct Pending {
    std::optional<std::shared_future<HiddenState>> hidden;
    std::vector<Token> hidden_tokens; // what `hidden` decodes
    std::optional<std::future<ScoreResult>> prompt;
    ScoreRequest request; // the prompt's, sent again if its prefix was evicted meanwhile
    bool truncated = false;
  };
  // `share`: another scorer's request for the same text; when it decodes the same tokens (the engine
  // reads one hidden layer), its hidden state is read instead of decoding the request a second time.
  Pending submit(const std::string& text, Priority priority = Priority::normal, CancelToken cancel = {},
                 const Pending* share = nullptr) const;
  // Waits for the engine (until `deadline` when set: Error(deadline_exceeded) after it) and decides.
  LabelDistribution finish(Pending& pending,
                           std::optional<std::chrono::steady_clock::time_point> deadline = {}) const;
  // Identifies the prompt (its rendered prefix and answers): a fusion is only used with its own prompt.
  std::string prompt_hash() const;

  const std::vector<Label>& labels() const { return labels_; }
  const LabelScorerOptions& options() const { return options_; }
  const std::string& prefix_text() const { return prefix_text_; }
  const std::string& instructions() const { return prompt_.instructions; }
  const std::vector<std::vector<Token>>& answers() const { return prompt_.answers; }
  const std::optional<Centroids>& centroids() const { return centroids_; }
  const std::optional<Head>& head() const { return head_; }
  // The tokens decoded after the prefix for `text`: the (truncated) text and the answer cue; for
  // centroid and head, the text decoded alone.
  std::vector<Token> query_tokens(const std::string& text, bool* truncated = nullptr) const;

private:
  void make_prompt();
  bool asks_prompt() const; // score and choice; fused unless its fusion gives the prompt no weight
  ScoreRequest request_for(const std::string& text, bool* truncated) const;
  LabelDistribution distribution(const ScoreResult& result, int query_tokens, bool truncated) const;
  LabelDistribution hidden_distribution(const HiddenState& e, const LabelDistribution* prompt,
                                        bool truncated) const;

  Engine& engine_;
  std::vector<Label> labels_;
  LabelScorerOptions options_;
  std::string prefix_text_;
  std::string prefix_id_;   // the engine prefix: options_.prefix_name + a hash of prefix_text_
  std::vector<Token> tail_; // after the text: end of turn + answer cue
  LabelPrompt prompt_;
  std::optional<Centroids> centroids_;
  std::optional<Head> head_;
};

// The `fused` strategy's fit: `prompt` (a choice | score scorer, as `fused` builds it for the same
// labels) scores the examples train_head held out, and the weight of its answers beside `head` is fitted
// on them (fit_fusion). `texts`, `x` and `y` are what the head was trained on.
Fusion fit_fusion(const LabelScorer& prompt, const Head& head, const std::vector<std::string>& texts,
                  const std::vector<std::vector<float>>& x, const std::vector<int>& y, int heldout_every,
                  double precision = 0.95);

} // namespace tinyroute
