// tinyroute train DATA.jsonl --labels-from categories|agents: fit the `head` strategy's classifier on
// the internal model's hidden states of labelled texts and store it beside the model's other state,
// keyed by the model fingerprint and the label set (see tinyroute/head.h).
#include <chrono>
#include <iostream>
#include <memory>
#include <optional>

#include <spdlog/spdlog.h>

#include "cli.h"
#include "output.h"
#include "tinyroute/agent-router.h"
#include "tinyroute/classify.h"
#include "tinyroute/from-config.h"
#include "tinyroute/head.h"

namespace tinyroute::cli {

namespace {

struct TrainOptions {
  CommonOptions common;
  std::string file;
  std::string labels_from = "categories";
  double l2 = LogisticOptions{}.l2;
  int heldout_every = HeadTrainOptions{}.heldout_every;
  std::optional<int> hidden_layer; // unset: internal_model.hidden_layer
  bool no_fusion = false;
  double precision = HeadTrainOptions{}.precision;
};

json precision_json(const PrecisionThreshold& t) {
  return t.reached ? json{{"threshold", t.threshold}, {"coverage", t.coverage}, {"precision", t.precision}}
                   : json{{"threshold", nullptr}, {"coverage", 0.0}, {"precision", t.precision}};
}

// "0.83 (coverage 71% of the held-out examples)", or why there is none.
std::string precision_text(const PrecisionThreshold& t) {
  if (!t.reached)
    return "none reaches " + fixed(100 * t.precision, 0) + "% precision on the held-out examples";
  return fixed(t.threshold, 3) + " (" + fixed(100 * t.coverage, 0) +
         "% of the held-out examples at or above it)";
}

int run_train(const TrainOptions& o) {
  const bool agents = o.labels_from == "agents";
  Config config = load_cli_config(o.common);
  if (o.hidden_layer) config.internal_model.hidden_layer = *o.hidden_layer;
  std::vector<std::string> labels;
  if (agents) {
    if (config.agents.empty())
      throw UsageError("--labels-from agents needs a config with an `agents` section; " + config.source_path +
                       " has none");
    for (const auto& a : config.agents) labels.push_back(a.name);
  } else {
    for (const auto& c : config.categories) labels.push_back(c.name);
  }
  // The data is checked before the model loads: a bad line fails in milliseconds.
  const std::vector<TrainingExample> examples = read_training_set(o.file, labels);
  std::vector<int> counts(labels.size(), 0);
  for (const auto& e : examples) ++counts[static_cast<size_t>(e.label)];
  for (size_t i = 0; i < labels.size(); ++i) {
    if (counts[i] == 0)
      spdlog::warn("train: no examples of '{}'; the head will rarely predict it", labels[i]);
  }

  Engine engine(engine_params_from(config.internal_model));
  std::vector<std::string> texts;
  std::vector<int> y;
  for (const auto& e : examples) texts.push_back(e.text), y.push_back(e.label);

  const auto started = std::chrono::steady_clock::now();
  const bool tty = stderr_is_tty();
  const int width = tty ? terminal_width() : 80;
  const size_t step = std::max<size_t>(1, texts.size() / 10);
  const auto x =
      embed_texts(engine, texts, config.internal_model.max_query_tokens, [&](size_t done, size_t total) {
        if (tty) {
          std::cerr << "\rembedded " << count_progress(done, total, width - 10) << std::flush;
          if (done == total) std::cerr << "\n";
        } else if (done % step == 0 || done == total) {
          std::cerr << "embedded " << done << "/" << total << "\n";
        }
      });
  const double embed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  HeadTrainOptions options;
  options.logistic.l2 = o.l2;
  options.heldout_every = o.heldout_every;
  options.hidden_layer = engine.params().hidden_layer;
  options.precision = o.precision;
  Head head = train_head(x, y, labels, o.labels_from, engine.info().fingerprint, options);
  if (!o.no_fusion && head.n_heldout == 0) {
    spdlog::warn("train: no label has {} examples, so none is held out: strategy `fused` is not fitted",
                 o.heldout_every);
  } else if (!o.no_fusion) {
    // The prompt as strategy `fused` builds it, from the same config.
    LabelScorerOptions prompt_options = agents ? agent_options(config) : classify_options(config);
    std::vector<Label> prompt_labels = agents ? agent_labels(config) : category_labels(config);
    prompt_options.strategy = prompt_strategy(Strategy::fused, prompt_labels.size());
    const LabelScorer prompt(engine, std::move(prompt_labels), prompt_options);
    head.fusion = fit_fusion(prompt, head, texts, x, y, o.heldout_every, o.precision);
  }
  const std::string path = save_head(head, head_dir(config.internal_model.state_dir));
  const double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  if (o.common.json) {
    json out = {{"path", path},
                {"labels_from", o.labels_from},
                {"model_fingerprint", head.model_fingerprint},
                {"label_hash", head.label_hash},
                {"n_train", head.n_train},
                {"n_heldout", head.n_heldout},
                {"temperature", head.temperature},
                {"threshold_at_precision", precision_json(head.at_precision)},
                {"fusion", head.fusion
                               ? json{{"weight", head.fusion->weight},
                                      {"temperature", head.fusion->temperature},
                                      {"n_fitted", head.fusion->n_fitted},
                                      {"threshold_at_precision", precision_json(head.fusion->at_precision)}}
                               : json(nullptr)},
                {"iterations", static_cast<int>(head.model.loss.size()) - 1},
                {"final_loss", head.model.loss.back()},
                {"embed_s", embed_s},
                {"total_s", total_s}};
    std::cout << out.dump(2) << "\n";
  } else {
    std::cout << "head        " << path << "\n"
              << "labels      " << o.labels_from << " (" << labels.size() << ")\n"
              << "examples    " << head.n_train << " fitted, " << head.n_heldout
              << " held out for the temperature\n"
              << "temperature " << fixed(head.temperature, 3) << "\n"
              << "fusion      "
              << (head.fusion ? "prompt weight " + fixed(head.fusion->weight, 1) + ", temperature " +
                                    fixed(head.fusion->temperature, 3) + " (strategy fused)"
                              : std::string("not fitted"))
              << "\n"
              << "threshold   for " << fixed(100 * o.precision, 0) << "% precision: head "
              << precision_text(head.at_precision)
              << (head.fusion ? "; fused " + precision_text(head.fusion->at_precision) : std::string())
              << "\n            (set it as internal_model.threshold or agent_routing.threshold to abstain "
                 "below it)\n"
              << "iterations  " << head.model.loss.size() - 1 << " (loss "
              << fixed(head.model.loss.front(), 4) << " -> " << fixed(head.model.loss.back(), 4) << ")\n"
              << "time        " << fixed(embed_s, 1) << " s embedding, " << fixed(total_s, 1)
              << " s in all\n";
  }
  return 0;
}

} // namespace

void register_train_command(CLI::App& app, Action& action) {
  auto o = std::make_shared<TrainOptions>();
  auto* cmd = app.add_subcommand("train", "Fit the `head` and `fused` strategies on a labelled JSONL file "
                                          "({\"text\",\"label\"} lines) for this model");
  cmd->add_option("file", o->file, "JSONL file")->required();
  cmd->add_option("--labels-from", o->labels_from, "What the labels name: task categories, or agents")
      ->check(CLI::IsMember({"categories", "agents"}))
      ->capture_default_str();
  cmd->add_option("--l2", o->l2, "L2 penalty on the weights")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--hidden-layer", o->hidden_layer,
                  "Read this block's output instead of internal_model.hidden_layer's (0: the final layer)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--heldout-every", o->heldout_every,
                  "Per label, every Nth example is held out to fit the temperature")
      ->check(CLI::Range(2, 1000))
      ->capture_default_str();
  cmd->add_option("--precision", o->precision,
                  "Target precision of the confidence threshold chosen on the held-out examples")
      ->check(CLI::Range(0.5, 1.0))
      ->capture_default_str();
  cmd->add_flag("--no-fusion", o->no_fusion,
                "Skip fitting the `fused` strategy (the label prompt scoring the held-out examples)");
  add_config_option(cmd, o->common);
  add_model_option(cmd, o->common);
  add_json_flag(cmd, o->common);
  cmd->callback([&action, o] { action = [o] { return run_train(*o); }; });
}

} // namespace tinyroute::cli
