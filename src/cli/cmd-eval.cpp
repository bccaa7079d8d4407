// tinyroute eval FILE.jsonl: classify a labelled set and report accuracy, macro-F1, per-class scores,
// the confusion matrix and latency. Every request is submitted at once so the engine can batch them.
#include <chrono>
#include <fstream>
#include <future>
#include <iostream>
#include <memory>

#include <spdlog/spdlog.h>

#include "cli.h"
#include "output.h"

namespace tinyroute::cli {

namespace {

struct EvalOptions {
  CommonOptions common;
  std::string file;
  std::string labels_from = "categories";
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

int run_eval(const EvalOptions& o) {
  if (o.labels_from == "agents") {
    throw UsageError("--labels-from agents needs an `agents` section, which this config format does not "
                     "have yet; use --labels-from categories");
  }
  Config config = load_cli_config(o.common);
  std::vector<Example> examples = read_examples(o.file, o.limit);
  std::vector<std::string> labels;
  for (const auto& c : config.categories) labels.push_back(c.name);
  for (const auto& e : examples) {
    if (config.find_category(e.label) == nullptr) {
      spdlog::warn("eval: label '{}' is not a configured category; it can never be predicted", e.label);
    }
  }

  TaskRouter router(std::move(config));
  const auto started = std::chrono::steady_clock::now();
  std::vector<std::future<ClassifyResult>> pending;
  pending.reserve(examples.size());
  for (const auto& e : examples) pending.push_back(router.classify_task(e.text));

  const bool progress = stderr_is_tty();
  const int width = progress ? terminal_width() : 80;
  auto last_draw = std::chrono::steady_clock::time_point{};
  std::vector<std::string> gold, predicted;
  std::vector<double> latency;
  for (size_t i = 0; i < pending.size(); ++i) {
    ClassifyResult r = pending[i].get();
    gold.push_back(examples[i].label);
    predicted.push_back(r.category);
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
    out["latency_ms"] = latency_json(l);
    out["wall_s"] = wall_s;
    out["per_second"] = wall_s > 0 ? static_cast<double>(m.total) / wall_s : 0;
    std::cout << out.dump(2) << "\n";
  } else {
    std::cout << metrics_text(m) << "\nlatency (ms, per request, queueing included)\n"
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
      "eval", "Measure classification on a labelled JSONL file ({\"text\",\"label\"} lines)");
  cmd->add_option("file", o->file, "JSONL file")->required();
  cmd->add_option("--labels-from", o->labels_from, "What the labels name")
      ->check(CLI::IsMember({"categories", "agents"}))
      ->capture_default_str();
  cmd->add_option("--limit", o->limit, "Use only the first N examples")->check(CLI::PositiveNumber);
  add_config_option(cmd, o->common);
  add_model_option(cmd, o->common);
  add_json_flag(cmd, o->common);
  cmd->callback([&action, o] { action = [o] { return run_eval(*o); }; });
}

} // namespace tinyroute::cli
