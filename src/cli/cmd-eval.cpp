// tinyroute eval FILE.jsonl: classify a labelled set (task categories, or with --labels-from agents the
// configured agents, triage included) and report accuracy, macro-F1, per-class scores, the confusion
// matrix and latency. Every request is submitted at once (so the engine batches them) unless --serial
// says otherwise. --predictions writes each request's whole distribution (for calibration
// and abstention curves, bench/quality), and --prompts the exact token prompt each request is scored
// with (so a peer can score the same prompt).
#include <algorithm>
#include <chrono>
#include <deque>
#include <fstream>
#include <functional>
#include <future>
#include <iostream>
#include <memory>
#include <optional>

#include <spdlog/spdlog.h>

#include "cli.h"
#include "output.h"
#include "tinyroute/agent-router.h"
#include "tinyroute/from-config.h"

namespace tinyroute::cli {

namespace {

struct EvalOptions {
  CommonOptions common;
  std::string file;
  std::string labels_from = "categories";
  std::string strategy;            // empty: the config's
  std::optional<int> hidden_layer; // unset: internal_model.hidden_layer
  bool serial = false;
  int limit = 0;
  std::string predictions_file; // JSONL: one line per example, its distribution and latency
  std::string prompts_file;     // JSONL: one line per example, the prompt tokens and the answer tokens
};

struct Example {
  std::string text;
  std::string label;
};

std::vector<Example> read_examples(const std::string& path, int limit) {
  std::ifstream in(path);
  if (!in) throw Error(ErrorCode::io, "cannot read " + path);
  std::vector<Example> out;
  int line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(line_no) + ": ";
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object())
      throw Error(ErrorCode::invalid_argument, where + "not a JSON object");
    if (!j.contains("text") || !j["text"].is_string())
      throw Error(ErrorCode::invalid_argument, where + "\"text\" must be a string");
    if (!j.contains("label") || !j["label"].is_string())
      throw Error(ErrorCode::invalid_argument, where + "\"label\" must be a string");
    out.push_back({j["text"], j["label"]});
    if (limit > 0 && static_cast<int>(out.size()) >= limit) break;
  }
  if (out.empty()) throw Error(ErrorCode::invalid_argument, path + ": no examples");
  return out;
}

// One prediction: the label chosen, what the model ranked first, its distribution and how long it took.
struct Prediction {
  std::string label;
  std::string top;
  double confidence = 0;
  std::vector<std::pair<std::string, double>> distribution;
  double latency_ms = 0;
};

template <typename Result> Prediction prediction_of(const Result& r, std::string label, std::string top) {
  return Prediction{std::move(label), std::move(top), r.confidence, r.distribution, r.latency_ms};
}

std::ofstream open_output(const std::string& path) {
  std::ofstream out(path, std::ios::trunc);
  if (!out) throw Error(ErrorCode::io, "cannot write " + path);
  return out;
}

// The whole prompt one example is scored with (the cached prefix, tokenized as the engine does, then
// the request's own tokens and the answer cue) and each label's answer tokens.
void write_prompts(const std::string& path, const Engine& engine, const LabelScorer& scorer,
                   const std::vector<Example>& examples) {
  std::ofstream out = open_output(path);
  const std::vector<Token> prefix = engine.tokenize(scorer.prefix_text(), true, true);
  json labels = json::array();
  for (const auto& l : scorer.labels()) labels.push_back(l.name);
  for (const auto& e : examples) {
    std::vector<Token> prompt = prefix;
    const std::vector<Token> query = scorer.query_tokens(e.text);
    prompt.insert(prompt.end(), query.begin(), query.end());
    out << json{{"text", e.text},
                {"label", e.label},
                {"labels", labels},
                {"prompt", prompt},
                {"answers", scorer.answers()}}
               .dump()
        << "\n";
  }
}

// Submits one example; the answer is picked from the policy's result when it is awaited.
using Submit = std::function<std::future<Prediction>(const std::string&)>;

template <typename Result, typename Route, typename Pick> Submit submitter(Route route, Pick pick) {
  return [route, pick](const std::string& text) {
    std::future<Result> f = route(text);
    return std::async(std::launch::deferred, [f = std::move(f), pick]() mutable { return pick(f.get()); });
  };
}

int run_eval(const EvalOptions& o) {
  const bool agents = o.labels_from == "agents";
  Config config = load_cli_config(o.common);
  if (o.hidden_layer) config.internal_model.hidden_layer = *o.hidden_layer;
  if (!o.strategy.empty()) {
    // Every strategy measured on the same data and config: only how the decision is read changes.
    config.internal_model.strategy = *parse_strategy(o.strategy);
    config.agent_routing.strategy = config.internal_model.strategy;
  }
  const std::string strategy(
      strategy_name(agents ? config.agent_routing.strategy.value_or(config.internal_model.strategy)
                           : config.internal_model.strategy));
  if (agents && config.agents.empty()) {
    throw UsageError("--labels-from agents needs a config with an `agents` section; " + config.source_path +
                     " has none");
  }
  std::vector<Example> examples = read_examples(o.file, o.limit);
  std::vector<std::string> labels;
  if (agents) {
    for (const auto& a : config.agents) labels.push_back(a.name);
  } else {
    for (const auto& c : config.categories) labels.push_back(c.name);
  }
  for (const auto& e : examples) {
    if (std::find(labels.begin(), labels.end(), e.label) == labels.end()) {
      spdlog::warn("eval: label '{}' is not a configured {}; it can never be predicted", e.label,
                   agents ? "agent" : "category");
    }
  }

  // The policy under test; the engine outlives it (declared first).
  std::shared_ptr<Engine> engine = std::make_shared<Engine>(engine_params_from(config.internal_model));
  std::unique_ptr<TaskRouter> tasks;
  std::unique_ptr<AgentRouter> agent_router;
  const auto started = std::chrono::steady_clock::now();
  Submit submit;
  if (agents) {
    agent_router = std::make_unique<AgentRouter>(*engine, config);
    submit =
        submitter<AgentRoute>([&](const std::string& text) { return agent_router->route_agent(text); },
                              [](const AgentRoute& r) { return prediction_of(r, r.agent, r.top_agent); });
    if (!o.prompts_file.empty()) write_prompts(o.prompts_file, *engine, agent_router->scorer(), examples);
  } else {
    tasks = std::make_unique<TaskRouter>(engine, std::move(config));
    submit = submitter<ClassifyResult>(
        [&](const std::string& text) { return tasks->classify_task(text); },
        [](const ClassifyResult& r) { return prediction_of(r, r.category, r.top_label); });
    if (!o.prompts_file.empty())
      write_prompts(o.prompts_file, *engine, tasks->classifier().scorer(), examples);
  }

  const bool progress = stderr_is_tty();
  const int width = progress ? terminal_width() : 80;
  auto last_draw = std::chrono::steady_clock::time_point{};
  std::vector<std::string> gold, predicted;
  std::vector<double> latency;
  std::ofstream predictions;
  if (!o.predictions_file.empty()) predictions = open_output(o.predictions_file);
  // Requests in flight at once: all of them (the engine batches them), or with --serial one, so that a
  // request's latency is its own cost without queueing.
  const size_t window = o.serial ? 1 : examples.size();
  std::deque<std::future<Prediction>> pending;
  size_t submitted = 0;
  for (size_t i = 0; i < examples.size(); ++i) {
    while (submitted < examples.size() && submitted < i + window)
      pending.push_back(submit(examples[submitted++].text));
    Prediction r = pending.front().get();
    pending.pop_front();
    if (predictions.is_open()) {
      json probs = json::object();
      for (const auto& [name, p] : r.distribution) probs[name] = p;
      predictions << json{{"text", examples[i].text},   {"label", examples[i].label},
                          {"predicted", r.label},       {"top", r.top},
                          {"confidence", r.confidence}, {"probs", probs},
                          {"latency_ms", r.latency_ms}}
                         .dump()
                  << "\n";
    }
    gold.push_back(examples[i].label);
    predicted.push_back(r.label);
    latency.push_back(r.latency_ms);
    const auto now = std::chrono::steady_clock::now();
    if (progress && (now - last_draw > std::chrono::milliseconds(100) || i + 1 == examples.size())) {
      std::cerr << "\r" << count_progress(i + 1, examples.size(), width - 1) << std::flush;
      last_draw = now;
    }
  }
  if (progress) std::cerr << "\n";
  const double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  EvalMetrics m = compute_metrics(labels, gold, predicted);
  LatencySummary l = summarize_latency(latency);
  if (o.common.json) {
    json out = metrics_json(m);
    out["file"] = o.file;
    out["labels_from"] = o.labels_from;
    out["strategy"] = strategy;
    out["serial"] = o.serial;
    out["latency_ms"] = latency_json(l);
    out["wall_s"] = wall_s;
    out["per_second"] = wall_s > 0 ? static_cast<double>(m.total) / wall_s : 0;
    std::cout << out.dump(2) << "\n";
  } else {
    std::cout << "strategy    " << strategy << (o.serial ? " (serial)" : "") << "\n"
              << metrics_text(m) << "\nlatency (ms, per request, queueing included)\n"
              << "  p50 " << fixed(l.p50, 2) << "  p95 " << fixed(l.p95, 2) << "  p99 " << fixed(l.p99, 2)
              << "  mean " << fixed(l.mean, 2) << "  max " << fixed(l.max, 2) << "\n"
              << "wall        " << fixed(wall_s, 2) << " s  (" << fixed(m.total / std::max(wall_s, 1e-9), 1)
              << " requests/s)\n";
  }
  return 0;
}

} // namespace

void register_eval_command(CLI::App& app, Action& action) {
  auto o = std::make_shared<EvalOptions>();
  auto* cmd = app.add_subcommand(
      "eval",
      "Measure classification or agent routing on a labelled JSONL file ({\"text\",\"label\"} lines)");
  cmd->add_option("file", o->file, "JSONL file")->required();
  cmd->add_option("--labels-from", o->labels_from,
                  "What the labels name: task categories, or agents (evaluates agent routing)")
      ->check(CLI::IsMember({"categories", "agents"}))
      ->capture_default_str();
  cmd->add_option("--limit", o->limit, "Use only the first N examples")->check(CLI::PositiveNumber);
  cmd->add_option("--predictions", o->predictions_file,
                  "Write one JSON line per example: the decision, the model's top label, its confidence, "
                  "the whole distribution and the latency");
  cmd->add_option("--prompts", o->prompts_file,
                  "Write one JSON line per example: the prompt tokens it is scored with and each label's "
                  "answer tokens (to score the same prompt elsewhere)");
  cmd->add_option("--strategy", o->strategy,
                  "Override the config's strategy (choice, score, centroid, head, fused)")
      ->check(CLI::IsMember({"choice", "score", "centroid", "head", "fused"}));
  cmd->add_option("--hidden-layer", o->hidden_layer,
                  "centroid/head: read this block's output instead of internal_model.hidden_layer's (0: the "
                  "final layer)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--serial", o->serial,
                "Send one request at a time (latency = the cost of one request alone)");
  add_config_option(cmd, o->common);
  add_model_option(cmd, o->common);
  add_json_flag(cmd, o->common);
  cmd->callback([&action, o] { action = [o] { return run_eval(*o); }; });
}

} // namespace tinyroute::cli
