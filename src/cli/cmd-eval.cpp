// tinyroute eval FILE.jsonl: classify a labelled set (task categories, or with --labels-from agents the
// configured agents, triage included) and report accuracy, macro-F1, per-class scores, the confusion
// matrix and latency. Every request is submitted at once so the engine can batch them.
#include <algorithm>
#include <chrono>
#include <fstream>
#include <future>
#include <iostream>
#include <memory>

#include <spdlog/spdlog.h>

#include "cli.h"
#include "output.h"
#include "tinyroute/agents.h"

namespace tinyroute::cli {

namespace {

struct EvalOptions {
  CommonOptions common;
  std::string file;
  std::string labels_from = "categories";
  std::string strategy; // empty: the config's
  bool serial = false;
  int limit = 0;
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

// One prediction: the label chosen and how long it took.
struct Prediction {
  std::string label;
  double latency_ms = 0;
};

// Submits every example at once (so the engine batches them) and hands back the pending answers.
// With `serial`, each request completes before the next is sent: latency without queueing (the cost of
// one request alone).
template <typename Result, typename Submit, typename Pick>
std::vector<std::future<Prediction>> submit_all(const std::vector<Example>& examples, Submit submit,
                                                Pick pick, bool serial) {
  std::vector<std::future<Prediction>> pending;
  pending.reserve(examples.size());
  for (const auto& e : examples) {
    std::future<Result> f = submit(e.text);
    if (serial) {
      std::promise<Prediction> done;
      done.set_value(pick(f.get()));
      pending.push_back(done.get_future());
      continue;
    }
    pending.push_back(
        std::async(std::launch::deferred, [f = std::move(f), pick]() mutable { return pick(f.get()); }));
  }
  return pending;
}

int run_eval(const EvalOptions& o) {
  const bool agents = o.labels_from == "agents";
  Config config = load_cli_config(o.common);
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
  std::vector<std::future<Prediction>> pending;
  if (agents) {
    agent_router = std::make_unique<AgentRouter>(*engine, config);
    pending = submit_all<AgentRoute>(
        examples, [&](const std::string& text) { return agent_router->route_agent(text); },
        [](const AgentRoute& r) {
          return Prediction{r.agent, r.latency_ms};
        },
        o.serial);
  } else {
    tasks = std::make_unique<TaskRouter>(engine, std::move(config));
    pending = submit_all<ClassifyResult>(
        examples, [&](const std::string& text) { return tasks->classify_task(text); },
        [](const ClassifyResult& r) {
          return Prediction{r.category, r.latency_ms};
        },
        o.serial);
  }

  const bool progress = stderr_is_tty();
  const int width = progress ? terminal_width() : 80;
  auto last_draw = std::chrono::steady_clock::time_point{};
  std::vector<std::string> gold, predicted;
  std::vector<double> latency;
  for (size_t i = 0; i < pending.size(); ++i) {
    Prediction r = pending[i].get();
    gold.push_back(examples[i].label);
    predicted.push_back(r.label);
    latency.push_back(r.latency_ms);
    const auto now = std::chrono::steady_clock::now();
    if (progress && (now - last_draw > std::chrono::milliseconds(100) || i + 1 == pending.size())) {
      std::cerr << "\r" << count_progress(i + 1, pending.size(), width - 1) << std::flush;
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
  cmd->add_option("--strategy", o->strategy, "Override the config's strategy (choice, score, centroid, head)")
      ->check(CLI::IsMember({"choice", "score", "centroid", "head"}));
  cmd->add_flag("--serial", o->serial,
                "Send one request at a time (latency = the cost of one request alone)");
  add_config_option(cmd, o->common);
  add_model_option(cmd, o->common);
  add_json_flag(cmd, o->common);
  cmd->callback([&action, o] { action = [o] { return run_eval(*o); }; });
}

} // namespace tinyroute::cli
