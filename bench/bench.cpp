// tinyroute-bench: measures the internal model's classification latency against llama-server, batching
// under concurrent callers, memory and start-up. Writes one JSON file per mode and prints markdown.
//
// Modes (see bench/run.sh for the exact invocations):
//   latency      classify_task (choice, score) vs llama-server /completion, request by request,
//                plus three tasks interleaved (task, agent routing, urgency) vs llama-server's slots
//   concurrency  N clients calling classify_task at once; constrained generation at 1 vs 16 clients
//   memory       RSS of the process at each stage of bringing the engine up
//   startup      process start -> first classification, without and with persisted prefix state
//   analyze      analyze() (every decision in one pass) vs the same decisions as separate tinyroute calls
//                vs one classify_task vs llama-server answering each decision in its own call, and a
//                decision-cache hit (in-process)
//   conversations  16 conversations x 10 turns interleaved: analyze with a conversation id (the engine
//                continues each conversation's kept sequence) vs llama-server with its default slots
//   cache-http   a real `tinyroute serve`: POST /v1/route repeated (decision-cache hits) vs first asks
//
// Benchmark code only: never part of the test suite.
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "route/field-scorers.h"
#include "support.h"
#include "tinyroute/analyze.h"
#include "tinyroute/classify.h"
#include "tinyroute/config.h"
#include "tinyroute/conversations.h"
#include "tinyroute/decision-cache.h"
#include "tinyroute/engine.h"
#include "tinyroute/from-config.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace tinyroute;
using namespace tinyroute::bench;

namespace {

struct Args {
  std::map<std::string, std::string> kv;
  std::string get(const std::string& k, const std::string& def = "") const {
    auto it = kv.find(k);
    return it == kv.end() ? def : it->second;
  }
  int num(const std::string& k, int def) const { return kv.count(k) ? std::stoi(kv.at(k)) : def; }
  std::string need(const std::string& k) const {
    if (!kv.count(k)) throw std::runtime_error("missing --" + k);
    return kv.at(k);
  }
};

Config bench_config(const Args& a, Strategy strategy, const std::string& state_dir = "") {
  Config c = load_config(a.need("config"));
  c.internal_model.model = a.need("model");
  c.internal_model.threads = a.num("threads", 2);
  c.internal_model.repack = a.num("repack", c.internal_model.repack ? 1 : 0) != 0; // --repack 0: no copy
  c.internal_model.flash_attn = a.num("flash-attn", c.internal_model.flash_attn ? 1 : 0) != 0;
  c.internal_model.contexts = a.num("contexts", c.internal_model.contexts); // --contexts 1: one shared cache
  c.internal_model.strategy = strategy;
  c.internal_model.state_dir = state_dir;
  return c;
}

// The request texts: CLINC150 validation texts (every k-th line, so every intent shows up) and the
// Russian requests in bench/data/russian.jsonl ("join" entries concatenate earlier ones into long texts).
std::vector<std::string> load_texts(const Args& a, int n_total) {
  const auto ru_lines = read_jsonl(a.need("russian"));
  std::vector<std::string> ru;
  for (const auto& j : ru_lines) {
    if (j.contains("text")) {
      ru.push_back(j["text"].get<std::string>());
    } else {
      std::string t;
      for (int i : j["join"])
        t += (t.empty() ? "" : " ") + ru_lines.at(static_cast<size_t>(i))["text"].get<std::string>();
      ru.push_back(t);
    }
  }
  const auto val = read_jsonl(a.need("data"));
  const int n_clinc = std::max(0, n_total - static_cast<int>(ru.size()));
  std::vector<std::string> texts;
  const size_t stride = std::max<size_t>(1, val.size() / static_cast<size_t>(std::max(1, n_clinc)));
  for (size_t i = 0; texts.size() < static_cast<size_t>(n_clinc) && i < val.size(); i += stride)
    texts.push_back(val[i]["text"].get<std::string>());
  // Spread the Russian texts through the sequence instead of bunching them at the end.
  std::vector<std::string> out;
  const size_t every = std::max<size_t>(1, texts.size() / std::max<size_t>(1, ru.size()));
  size_t r = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    out.push_back(texts[i]);
    if ((i + 1) % every == 0 && r < ru.size()) out.push_back(ru[r++]);
  }
  while (r < ru.size()) out.push_back(ru[r++]);
  return out;
}

std::string bucket_of(int n) {
  return n <= 16 ? "<=16" : n <= 48 ? "17-48" : n <= 128 ? "49-128" : ">128";
}
const std::vector<std::string> kBuckets = {"<=16", "17-48", "49-128", ">128"};

// Prompt-processing rate (tokens/s) at n tokens, interpolated in log(n) between llama-bench's points.
struct PpRates {
  std::vector<std::pair<double, double>> pts; // (n_prompt, tokens/s), sorted
  double at(double n) const {
    if (pts.empty()) return NAN;
    if (n <= pts.front().first) return pts.front().second;
    if (n >= pts.back().first) return pts.back().second;
    for (size_t i = 1; i < pts.size(); ++i) {
      if (n <= pts[i].first) {
        const double t = (std::log(n) - std::log(pts[i - 1].first)) /
                         (std::log(pts[i].first) - std::log(pts[i - 1].first));
        return pts[i - 1].second + t * (pts[i].second - pts[i - 1].second);
      }
    }
    return pts.back().second;
  }
};

// llama-bench's points at one context depth (0: an empty cache; the depth of a cached prefix: what
// decoding after that prefix costs, its attention over the prefix included).
PpRates load_pp(const std::vector<std::string>& paths, int depth) {
  std::map<double, std::vector<double>> by_n;
  for (const auto& p : paths) {
    if (p.empty() || !fs::exists(p)) continue;
    std::ifstream f(p);
    const json j = json::parse(f);
    for (const auto& e : j)
      if (e.value("n_gen", 0) == 0 && e.value("n_depth", 0) == depth)
        by_n[e["n_prompt"].get<double>()].push_back(e["avg_ts"].get<double>());
  }
  PpRates r;
  for (auto& [n, v] : by_n) {
    double s = 0;
    for (double x : v) s += x;
    r.pts.emplace_back(n, s / static_cast<double>(v.size()));
  }
  return r;
}

std::vector<std::string> split(const std::string& s, char c) {
  std::vector<std::string> out;
  std::string cur;
  for (char ch : s) {
    if (ch == c) {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += ch;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

// llama-server with the same model and thread count; `extra` picks the slot setup.
struct Server {
  int port = free_port();
  std::vector<std::string> argv;
  std::unique_ptr<Child> child;
  Server(const Args& a, const std::vector<std::string>& extra, const std::string& log) {
    argv = {a.need("llama-server"),
            "-m",
            a.need("model"),
            "-t",
            std::to_string(a.num("threads", 2)),
            "-c",
            "4096",
            "--host",
            "127.0.0.1",
            "--port",
            std::to_string(port)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    for (const auto& x : split(a.get("server-extra"), ' ')) argv.push_back(x); // e.g. "-fa off"
    child = std::make_unique<Child>(argv, log);
    wait_healthy(port, *child, 300);
  }
};

// One scorer's prompt as llama-server sees it: the very same tokens (prefix with BOS, then the query)
// and a grammar that allows exactly the scorer's answer tokens.
struct BaselineTask {
  const LabelScorer* scorer;
  std::vector<Token> prefix;
  std::string grammar;
  std::vector<std::string> answers; // the text of each label's answer token, in label order
};

BaselineTask baseline_task(Engine& engine, const LabelScorer& s) {
  // The prefix as the engine holds it (BOS, chat-template markers parsed); its engine name is
  // content-addressed.
  BaselineTask t{&s, engine.tokenize(s.prefix_text(), true, true), "root ::= ", {}};
  const char* codes = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  for (size_t i = 0; i < s.labels().size(); ++i) {
    const auto toks = engine.tokenize(std::string(1, codes[i]), false, false);
    std::string piece = engine.token_text(toks.at(0));
    for (size_t at; (at = piece.find("\xE2\x96\x81")) != std::string::npos;) piece.replace(at, 3, " ");
    t.answers.push_back(piece);
    t.grammar += (i ? " | " : "") + json(piece).dump(); // GBNF string literals use JSON-style escapes
  }
  return t;
}

struct BaselineResult {
  double ms = 0;
  int answer = -1; // label index
  int prompt_n = 0;
  double prompt_ms = 0;
};

BaselineResult baseline_classify(HttpClient& http, const BaselineTask& t, const std::vector<Token>& query) {
  std::vector<Token> prompt = t.prefix;
  prompt.insert(prompt.end(), query.begin(), query.end());
  const json req = {{"prompt", prompt},     {"n_predict", 1},       {"temperature", 0},
                    {"cache_prompt", true}, {"grammar", t.grammar}, {"stream", false}};
  std::string body;
  const double t0 = now_ms();
  const int status = http.request("POST", "/completion", req.dump(), body);
  BaselineResult r;
  r.ms = now_ms() - t0;
  if (status != 200) throw std::runtime_error("llama-server: HTTP " + std::to_string(status) + ": " + body);
  const json j = json::parse(body);
  const std::string content = j.value("content", "");
  for (size_t i = 0; i < t.answers.size(); ++i)
    if (content == t.answers[i]) r.answer = static_cast<int>(i);
  if (j.contains("timings")) {
    r.prompt_n = j["timings"].value("prompt_n", 0);
    r.prompt_ms = j["timings"].value("prompt_ms", 0.0);
  }
  return r;
}

std::string fmt(double v, int prec = 1) {
  if (std::isnan(v)) return "-";
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", prec, v);
  return b;
}

std::vector<double> column(const json& rows, const std::string& key, const std::string& bucket = "") {
  std::vector<double> v;
  for (const auto& r : rows)
    if (bucket.empty() || r["bucket"] == bucket) v.push_back(r[key].get<double>());
  return v;
}

std::vector<Label> domain_labels(const std::string& path) {
  std::ifstream f(path);
  const json d = json::parse(f);
  std::vector<Label> labels;
  for (const auto& [domain, intents] : d.items()) {
    std::string desc = "requests such as ";
    for (size_t i = 0; i < intents.size() && i < 5; ++i) {
      std::string in = intents[i].get<std::string>();
      for (char& ch : in)
        if (ch == '_') ch = ' ';
      desc += (i ? ", " : "") + in;
    }
    labels.push_back({domain, desc, {}});
  }
  return labels;
}

std::vector<Label> urgency_labels() {
  return {{"low", "can wait days; curiosity, ideas, general questions", {}},
          {"normal", "should be handled today; ordinary tasks and requests", {}},
          {"high", "blocks someone's work or money; needs an answer within the hour", {}},
          {"critical", "an outage, security problem, fraud or safety issue happening now", {}}};
}

// --- latency ---------------------------------------------------------------------------------------

int run_latency(const Args& a) {
  const int n = a.num("n", 200);
  const int warmup = a.num("warmup", 5);
  const std::string out_dir = a.get("out", "bench/results");
  const auto texts = load_texts(a, n);
  const PpRates pp = load_pp(split(a.get("pp", ""), ','), 0);
  const int pp_depth = a.num("pp-depth", 1024);
  const PpRates pp_deep = load_pp(split(a.get("pp", ""), ','), pp_depth);

  // One engine per strategy so each Classifier keeps its own "classify_task" prefix resident; the
  // weights are mmapped once by the OS.
  Config cc = bench_config(a, Strategy::choice), cs = bench_config(a, Strategy::score);
  Engine ec(engine_params_from(cc.internal_model)), es(engine_params_from(cs.internal_model));
  Classifier choice(ec, cc), score(es, cs);
  const BaselineTask bt = baseline_task(ec, choice.scorer());

  json rows = json::array();
  json server_mem;
  {
    Server server(a, {"-np", "1"}, out_dir + "/llama-server-np1.log");
    HttpClient http(server.port);
    for (int i = 0; i < warmup; ++i) {
      const auto& t = texts[static_cast<size_t>(i) % texts.size()];
      baseline_classify(http, bt, choice.scorer().query_tokens(t));
      choice.classify_task(t).get();
      score.classify_task(t).get();
    }
    int agree = 0;
    for (size_t i = 0; i < texts.size(); ++i) {
      const std::string& text = texts[i];
      bool truncated = false;
      const auto query = choice.scorer().query_tokens(text, &truncated);
      const int text_tokens = static_cast<int>(ec.tokenize(text, false, false).size());
      BaselineResult b;
      ClassifyResult rc, rs;
      double ms_c = 0, ms_s = 0;
      for (int k = 0; k < 3; ++k) { // rotate the order so no system always runs right after another
        switch ((static_cast<int>(i) + k) % 3) {
        case 0:
          b = baseline_classify(http, bt, query);
          break;
        case 1: {
          const double t0 = now_ms();
          rc = choice.classify_task(text).get();
          ms_c = now_ms() - t0;
          break;
        }
        default: {
          const double t0 = now_ms();
          rs = score.classify_task(text).get();
          ms_s = now_ms() - t0;
        }
        }
      }
      const double floor_ms =
          static_cast<double>(query.size()) / pp.at(static_cast<double>(query.size())) * 1000;
      const double floor_deep_ms =
          static_cast<double>(query.size()) / pp_deep.at(static_cast<double>(query.size())) * 1000;
      const int best_c = [&] {
        for (size_t l = 0; l < rc.distribution.size(); ++l)
          if (rc.distribution[l].first == rc.top_label) return static_cast<int>(l);
        return -1;
      }();
      agree += best_c == b.answer;
      rows.push_back({{"text_tokens", text_tokens},
                      {"bucket", bucket_of(text_tokens)},
                      {"query_tokens", static_cast<int>(query.size())},
                      {"truncated", truncated},
                      {"baseline_ms", b.ms},
                      {"baseline_prompt_n", b.prompt_n},
                      {"baseline_prompt_ms", b.prompt_ms},
                      {"baseline_answer", b.answer},
                      {"choice_ms", ms_c},
                      {"choice_decoded", rc.tokens_decoded},
                      {"choice_answer", best_c},
                      {"score_ms", ms_s},
                      {"score_decoded", rs.tokens_decoded},
                      {"floor_ms", floor_ms},
                      {"floor_deep_ms", floor_deep_ms},
                      {"ratio_baseline_choice", b.ms / ms_c},
                      {"ratio_baseline_score", b.ms / ms_s}});
      if ((i + 1) % 25 == 0) std::cerr << "[latency] " << i + 1 << "/" << texts.size() << "\n";
    }
    server_mem = proc_memory(std::to_string(server.child->pid()));
    std::cerr << "[latency] baseline and choice agree on " << agree << "/" << texts.size() << "\n";
  }

  // Interleaved: three tasks with different instruction prompts, request by request.
  LabelScorerOptions ro;
  ro.prefix_name = "route_agent";
  ro.task =
      "You route requests to the one agent whose domain covers them. Read the request and pick the agent.";
  ro.answer_noun = "Agent";
  LabelScorerOptions uo;
  uo.prefix_name = "meta_urgency";
  uo.task = "You read requests sent to a support team and rate how urgent each one is.";
  uo.answer_noun = "Urgency";
  LabelScorer routing(ec, domain_labels(a.need("domains")), ro), urgency(ec, urgency_labels(), uo);
  const std::vector<const LabelScorer*> scorers = {&choice.scorer(), &routing, &urgency};
  std::vector<BaselineTask> tasks;
  for (const auto* s : scorers) tasks.push_back(baseline_task(ec, *s));
  const std::vector<std::string> task_names = {"classify_task", "route_agent", "meta_urgency"};
  const int n_inter = a.num("n-interleaved", 90);
  json irows = json::array();
  {
    Server server(a, {}, out_dir + "/llama-server-default.log");
    HttpClient http(server.port);
    for (size_t k = 0; k < tasks.size(); ++k) { // warm every task once on both sides
      baseline_classify(http, tasks[k], scorers[k]->query_tokens(texts[k]));
      scorers[k]->score(texts[k]).get();
    }
    for (int i = 0; i < n_inter; ++i) {
      const size_t k = static_cast<size_t>(i) % 3;
      const std::string& text = texts[static_cast<size_t>(i) % texts.size()];
      const auto query = scorers[k]->query_tokens(text);
      BaselineResult b;
      double ms_t = 0;
      for (int j = 0; j < 2; ++j) {
        if ((i / 3 + j) % 2 == 0) {
          b = baseline_classify(http, tasks[k], query);
        } else {
          const double t0 = now_ms();
          scorers[k]->score(text).get();
          ms_t = now_ms() - t0;
        }
      }
      irows.push_back({{"task", task_names[k]},
                       {"query_tokens", static_cast<int>(query.size())},
                       {"prefix_tokens", static_cast<int>(tasks[k].prefix.size())},
                       {"baseline_ms", b.ms},
                       {"baseline_prompt_n", b.prompt_n},
                       {"tinyroute_ms", ms_t},
                       {"ratio", b.ms / ms_t}});
    }
  }

  json summary = json::object();
  std::cout << "\n### Classification latency (ms), " << texts.size()
            << " requests, interleaved per request\n\n"
            << "| bucket (text tokens) | n | query tokens p50 | floor p50 | floor at depth " << pp_depth
            << " p50 | choice p50 | choice p95 | choice p50 / floor p50 | choice p50 / floor at depth p50 | "
               "score p50 | "
               "score p95 | llama-server p50 | llama-server p95 | baseline/choice per-request p50 (min) | "
               "baseline/score per-request p50 (min) |\n"
            << "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  std::vector<std::string> all = kBuckets;
  all.push_back("");
  for (const auto& bk : all) {
    const auto c = column(rows, "choice_ms", bk);
    if (c.empty()) continue;
    const auto s = column(rows, "score_ms", bk), b = column(rows, "baseline_ms", bk),
               f = column(rows, "floor_ms", bk), fd = column(rows, "floor_deep_ms", bk),
               q = column(rows, "query_tokens", bk), rbc = column(rows, "ratio_baseline_choice", bk),
               rbs = column(rows, "ratio_baseline_score", bk);
    const json row = {{"n", c.size()},
                      {"query_tokens_p50", percentile(q, 50)},
                      {"floor_p50", percentile(f, 50)},
                      {"floor_deep_p50", percentile(fd, 50)},
                      {"choice_p50", percentile(c, 50)},
                      {"choice_p95", percentile(c, 95)},
                      {"score_p50", percentile(s, 50)},
                      {"score_p95", percentile(s, 95)},
                      {"baseline_p50", percentile(b, 50)},
                      {"baseline_p95", percentile(b, 95)},
                      {"ratio_bc_p50", percentile(rbc, 50)},
                      {"ratio_bc_min", percentile(rbc, 0)},
                      {"ratio_bs_p50", percentile(rbs, 50)},
                      {"ratio_bs_min", percentile(rbs, 0)}};
    summary[bk.empty() ? "all" : bk] = row;
    std::cout << "| " << (bk.empty() ? "all" : bk) << " | " << c.size() << " | "
              << fmt(row["query_tokens_p50"], 0) << " | " << fmt(row["floor_p50"]) << " | "
              << fmt(row["floor_deep_p50"]) << " | " << fmt(row["choice_p50"]) << " | "
              << fmt(row["choice_p95"]) << " | " << fmt(percentile(c, 50) / percentile(f, 50), 2) << " | "
              << fmt(percentile(c, 50) / percentile(fd, 50), 2) << " | " << fmt(row["score_p50"]) << " | "
              << fmt(row["score_p95"]) << " | " << fmt(row["baseline_p50"]) << " | "
              << fmt(row["baseline_p95"]) << " | " << fmt(row["ratio_bc_p50"], 2) << " ("
              << fmt(row["ratio_bc_min"], 2) << ") | " << fmt(row["ratio_bs_p50"], 2) << " ("
              << fmt(row["ratio_bs_min"], 2) << ") |\n";
  }
  json isummary = json::object();
  std::cout
      << "\n### Three tasks interleaved (ms), " << n_inter
      << " requests; llama-server with default slots vs one Engine with three prefixes\n\n"
      << "| task | prefix tokens | n | tinyroute p50 | tinyroute p95 | llama-server p50 | llama-server p95 | "
         "llama-server prompt tokens evaluated p50 | baseline/tinyroute per-request p50 (min) |\n"
      << "|---|---|---|---|---|---|---|---|---|\n";
  std::vector<std::string> inames = task_names;
  inames.push_back("");
  for (const auto& tn : inames) {
    json sel = json::array();
    int prefix_n = 0;
    for (const auto& r : irows)
      if (tn.empty() || r["task"] == tn) {
        sel.push_back(r);
        prefix_n = r["prefix_tokens"];
      }
    const auto t = column(sel, "tinyroute_ms"), b = column(sel, "baseline_ms"),
               pn = column(sel, "baseline_prompt_n"), ra = column(sel, "ratio");
    const json row = {{"n", t.size()},
                      {"tinyroute_p50", percentile(t, 50)},
                      {"tinyroute_p95", percentile(t, 95)},
                      {"baseline_p50", percentile(b, 50)},
                      {"baseline_p95", percentile(b, 95)},
                      {"baseline_prompt_n_p50", percentile(pn, 50)},
                      {"ratio_p50", percentile(ra, 50)},
                      {"ratio_min", percentile(ra, 0)}};
    isummary[tn.empty() ? "all" : tn] = row;
    std::cout << "| " << (tn.empty() ? "all" : tn) << " | " << (tn.empty() ? "-" : std::to_string(prefix_n))
              << " | " << t.size() << " | " << fmt(row["tinyroute_p50"]) << " | " << fmt(row["tinyroute_p95"])
              << " | " << fmt(row["baseline_p50"]) << " | " << fmt(row["baseline_p95"]) << " | "
              << fmt(row["baseline_prompt_n_p50"], 0) << " | " << fmt(row["ratio_p50"], 2) << " ("
              << fmt(row["ratio_min"], 2) << ") |\n";
  }
  json pp_json = json::array();
  for (const auto& [pn, ts] : pp.pts)
    pp_json.push_back({{"n_prompt", pn}, {"n_depth", 0}, {"tokens_per_s", ts}});
  for (const auto& [pn, ts] : pp_deep.pts)
    pp_json.push_back({{"n_prompt", pn}, {"n_depth", pp_depth}, {"tokens_per_s", ts}});
  std::cout << "\nprompt processing (llama-bench, t/s):";
  for (const auto& [pn, ts] : pp.pts) std::cout << " pp" << pn << "=" << fmt(ts);
  std::cout << "; at depth " << pp_depth << ":";
  for (const auto& [pn, ts] : pp_deep.pts) std::cout << " pp" << pn << "=" << fmt(ts);
  std::cout
      << "\nchoice decodes after the cached prefix: query tokens (text + answer cue); choice_decoded p50 "
      << fmt(percentile(column(rows, "choice_decoded"), 50), 0) << " vs query tokens p50 "
      << fmt(percentile(column(rows, "query_tokens"), 50), 0) << "; score decodes p50 "
      << fmt(percentile(column(rows, "score_decoded"), 50), 0) << "\n";
  write_json(out_dir + "/latency.json", {{"summary", summary},
                                         {"interleaved_summary", isummary},
                                         {"pp", pp_json},
                                         {"prefix_tokens_classify", bt.prefix.size()},
                                         {"llama_server_np1_memory_kb", server_mem},
                                         {"requests", rows},
                                         {"interleaved", irows}});
  return 0;
}

// --- concurrency -----------------------------------------------------------------------------------

int run_concurrency(const Args& a) {
  const auto texts = load_texts(a, 200);
  Config c = bench_config(a, Strategy::choice);
  Engine engine(engine_params_from(c.internal_model));
  Classifier clf(engine, c);
  std::vector<int> levels;
  for (const auto& s : split(a.get("clients", "1,4,16"), ',')) levels.push_back(std::stoi(s));
  const int rounds = a.num("rounds", 2), min_requests = a.num("requests", 48);
  std::map<int, std::vector<double>> lat;
  std::map<int, double> wall, reqs, decodes, tokens;
  std::map<int, std::uint64_t> max_batch;
  std::atomic<size_t> text_at{0};
  for (int w = 0; w < 3; ++w) clf.classify_task(texts[static_cast<size_t>(w)]).get();
  for (int r = 0; r < rounds; ++r) {
    for (int cl : levels) { // levels interleaved round by round so they share the machine's noise
      const int n = std::max(min_requests, 2 * cl);
      std::atomic<int> next{0};
      std::mutex mu;
      const EngineStats s0 = engine.stats();
      const double t0 = now_ms();
      std::vector<std::thread> th;
      for (int k = 0; k < cl; ++k) {
        th.emplace_back([&] {
          while (next.fetch_add(1) < n) {
            const std::string& text = texts[text_at.fetch_add(1) % texts.size()];
            const double q0 = now_ms();
            clf.classify_task(text).get();
            const double ms = now_ms() - q0;
            std::lock_guard lk(mu);
            lat[cl].push_back(ms);
          }
        });
      }
      for (auto& t : th) t.join();
      const EngineStats s1 = engine.stats();
      wall[cl] += now_ms() - t0;
      reqs[cl] += n;
      decodes[cl] += static_cast<double>(s1.decodes - s0.decodes);
      tokens[cl] += static_cast<double>(s1.tokens - s0.tokens);
      max_batch[cl] = std::max(max_batch[cl], s1.max_batch_requests);
      std::cerr << "[concurrency] round " << r + 1 << " clients " << cl << " done\n";
    }
  }
  json out = json::object();
  std::cout << "\n### classify_task (choice) under concurrent clients\n\n"
            << "| clients | requests | requests/s | vs 1 client | p50 ms | p95 ms | decodes | tokens/decode "
               "| ms/decode "
               "|\n|---|---|---|---|---|---|---|---|---|\n";
  const double rps1 = reqs[levels[0]] / wall[levels[0]] * 1000;
  for (int cl : levels) {
    const double rps = reqs[cl] / wall[cl] * 1000;
    const json row = {{"requests", reqs[cl]},
                      {"requests_per_s", rps},
                      {"p50_ms", percentile(lat[cl], 50)},
                      {"p95_ms", percentile(lat[cl], 95)},
                      {"decodes", decodes[cl]},
                      {"tokens_per_decode", tokens[cl] / decodes[cl]},
                      {"ms_per_decode", wall[cl] / decodes[cl]}};
    out["classify"][std::to_string(cl)] = row;
    std::cout << "| " << cl << " | " << reqs[cl] << " | " << fmt(rps, 2) << " | " << fmt(rps / rps1, 2)
              << " | " << fmt(row["p50_ms"]) << " | " << fmt(row["p95_ms"]) << " | " << decodes[cl] << " | "
              << fmt(row["tokens_per_decode"]) << " | " << fmt(row["ms_per_decode"]) << " |\n";
  }

  // Constrained generation: a small JSON object under a grammar, max_tokens 32.
  const std::string grammar =
      R"(root ::= "{\"intent\": \"" [a-z_]{1,24} "\", \"urgent\": " ("true" | "false") "}")";
  const std::string sys = "Describe the user's request as a JSON object with the fields intent and urgent.";
  const std::string rendered = engine.apply_chat_template({{"system", sys}, {"user", "\x01"}}, true);
  const std::string head = rendered.substr(0, rendered.find('\x01'));
  const std::string tail = rendered.substr(rendered.find('\x01') + 1);
  engine.add_prefix("bench_generate", head).get();
  std::vector<int> glevels;
  for (const auto& s : split(a.get("gen-clients", "1,16"), ',')) glevels.push_back(std::stoi(s));
  std::map<int, double> gwall, gtok, gdec, gdecodes, greq;
  for (int r = 0; r < rounds; ++r) {
    for (int cl : glevels) {
      const int n = cl == 1 ? a.num("gen-single-requests", 4) : cl;
      std::atomic<int> next{0};
      std::mutex mu;
      const EngineStats s0 = engine.stats();
      const double t0 = now_ms();
      std::vector<std::thread> th;
      for (int k = 0; k < cl; ++k) {
        th.emplace_back([&] {
          for (int i; (i = next.fetch_add(1)) < n;) {
            GenerateRequest g;
            g.prefix = "bench_generate";
            g.prompt = engine.tokenize(texts[static_cast<size_t>(i) % texts.size()] + tail, false, true);
            g.grammar = grammar;
            g.max_tokens = 32;
            const auto res = engine.generate(std::move(g)).get();
            std::lock_guard lk(mu);
            gtok[cl] += static_cast<double>(res.tokens.size());
            gdec[cl] += res.n_decoded;
          }
        });
      }
      for (auto& t : th) t.join();
      gwall[cl] += now_ms() - t0;
      gdecodes[cl] += static_cast<double>(engine.stats().decodes - s0.decodes);
      greq[cl] += n;
      std::cerr << "[concurrency] generate round " << r + 1 << " clients " << cl << " done\n";
    }
  }
  std::cout
      << "\n### Constrained generation (JSON grammar, max_tokens 32)\n\n"
      << "| clients | requests | generated tokens | generated tokens/s | vs 1 client | decodes | ms/decode "
         "|\n|---|---|---|---|---|---|---|\n";
  const double g1 = gtok[glevels[0]] / gwall[glevels[0]] * 1000;
  for (int cl : glevels) {
    const double tps = gtok[cl] / gwall[cl] * 1000;
    out["generate"][std::to_string(cl)] = {
        {"requests", greq[cl]}, {"generated_tokens", gtok[cl]}, {"decoded_tokens", gdec[cl]},
        {"tokens_per_s", tps},  {"decodes", gdecodes[cl]},      {"ms_per_decode", gwall[cl] / gdecodes[cl]}};
    std::cout << "| " << cl << " | " << greq[cl] << " | " << gtok[cl] << " | " << fmt(tps, 1) << " | "
              << fmt(tps / g1, 2) << " | " << gdecodes[cl] << " | " << fmt(gwall[cl] / gdecodes[cl])
              << " |\n";
  }
  write_json(a.get("out", "bench/results") + "/concurrency.json", out);
  return 0;
}

// --- memory and start-up ---------------------------------------------------------------------------

int run_memory(const Args& a) {
  json stages = json::array();
  auto mark = [&](const std::string& stage) {
    const auto m = proc_memory();
    stages.push_back({{"stage", stage}, {"kb", m}});
  };
  mark("process start");
  Config c = bench_config(a, Strategy::choice);
  if (a.kv.count("mmap")) c.internal_model.mmap = a.num("mmap", 1) != 0; // else: the config's default
  const EngineParams params = engine_params_from(c.internal_model);
  Engine engine(params);
  mark("engine loaded (worker started)");
  Classifier clf(engine, c);
  mark("classify_task prefix resident");
  const auto texts = load_texts(a, 60);
  for (const auto& t : texts) clf.classify_task(t).get();
  mark("after 60 classifications");
  std::this_thread::sleep_for(std::chrono::seconds(2));
  mark("idle 2 s later");
  std::cout << "\n### Memory (MiB, /proc/self/status), weight repacking " << (params.repack ? "on" : "off")
            << ", model file " << (params.use_mmap ? "mapped" : "read")
            << "\n\n| stage | VmRSS | RssAnon | RssFile | VmHWM "
               "|\n|---|---|---|---|---|\n";
  for (const auto& s : stages) {
    auto mib = [&](const char* k) { return fmt(s["kb"].value(k, 0) / 1024.0, 0); };
    std::cout << "| " << s["stage"].get<std::string>() << " | " << mib("VmRSS") << " | " << mib("RssAnon")
              << " | " << mib("RssFile") << " | " << mib("VmHWM") << " |\n";
  }
  const std::string name =
      params.repack ? (a.kv.count("mmap") ? "/memory-mmap.json" : "/memory.json") : "/memory-norepack.json";
  write_json(a.get("out", "bench/results") + name,
             {{"repack", params.repack}, {"mmap", params.use_mmap}, {"stages", stages}});
  return 0;
}

// The child of `startup`: bring everything up, classify once, report, exit.
int run_first_classify(const Args& a) {
  const double t0 = now_ms();
  Config c = bench_config(a, Strategy::choice, a.get("state-dir"));
  Engine engine(engine_params_from(c.internal_model));
  const double t_engine = now_ms();
  Classifier clf(engine, c);
  const double t_prefix = now_ms();
  const auto r = clf.classify_task("Write a Python function that merges two sorted lists").get();
  const double t_done = now_ms();
  std::cout << json{{"engine_ms", t_engine - t0},
                    {"prefix_ms", t_prefix - t_engine},
                    {"classify_ms", t_done - t_prefix},
                    {"category", r.category}}
                   .dump()
            << std::endl;
  return 0;
}

int run_startup(const Args& a) {
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  const fs::path tmp = fs::temp_directory_path() / ("tinyroute-bench-state-" + std::to_string(::getpid()));
  const fs::path warm_dir = tmp / "warm";
  auto once = [&](const std::string& dir) {
    std::vector<std::string> argv = {self,          "first-classify",
                                     "--config",    a.need("config"),
                                     "--model",     a.need("model"),
                                     "--threads",   std::to_string(a.num("threads", 2)),
                                     "--state-dir", dir};
    const double t0 = now_ms();
    Child child(argv, "/dev/null", true);
    const std::string line = child.read_line();
    const double ms = now_ms() - t0;
    child.wait();
    json j = json::parse(line);
    j["total_ms"] = ms;
    return j;
  };
  once(warm_dir.string()); // writes the prefix state the warm runs restore
  json runs = json::array();
  const int rounds = a.num("rounds", 3);
  for (int r = 0; r < rounds; ++r) {
    for (const bool warm : {false, true}) { // interleaved cold / warm
      const fs::path dir = warm ? warm_dir : tmp / ("cold-" + std::to_string(r));
      json j = once(dir.string());
      j["mode"] = warm ? "persisted prefix state" : "cold (no state)";
      runs.push_back(j);
    }
  }
  fs::remove_all(tmp);
  std::cout << "\n### Start-up: process start to first classification (ms, model file in page cache)\n\n"
            << "| mode | runs | total p50 | engine load p50 | prefix p50 | first classify p50 "
               "|\n|---|---|---|---|---|---|\n";
  json summary = json::object();
  for (const std::string mode : {"cold (no state)", "persisted prefix state"}) {
    json sel = json::array();
    for (const auto& r : runs)
      if (r["mode"] == mode) sel.push_back(r);
    const json row = {{"total_p50", percentile(column(sel, "total_ms"), 50)},
                      {"engine_p50", percentile(column(sel, "engine_ms"), 50)},
                      {"prefix_p50", percentile(column(sel, "prefix_ms"), 50)},
                      {"classify_p50", percentile(column(sel, "classify_ms"), 50)}};
    summary[mode] = row;
    std::cout << "| " << mode << " | " << sel.size() << " | " << fmt(row["total_p50"]) << " | "
              << fmt(row["engine_p50"]) << " | " << fmt(row["prefix_p50"]) << " | "
              << fmt(row["classify_p50"]) << " |\n";
  }
  write_json(a.get("out", "bench/results") + "/startup.json", {{"summary", summary}, {"runs", runs}});
  return 0;
}

// --- issue 10: analyze, conversations, cache over HTTP ----------------------------------------------

// The peer's side of one decision: the prompt's tokens (its instruction prefix is cached by the slot),
// one generated token, the answer read from the top probabilities (n_probs). Returns the call's ms.
double peer_call(HttpClient& http, const std::vector<Token>& prompt, int slot) {
  json req = {{"prompt", prompt}, {"n_predict", 1},       {"n_probs", 10},
              {"temperature", 0}, {"cache_prompt", true}, {"stream", false}};
  if (slot >= 0) req["id_slot"] = slot;
  std::string body;
  const double t0 = now_ms();
  const int status = http.request("POST", "/completion", req.dump(), body);
  const double ms = now_ms() - t0;
  if (status != 200) throw std::runtime_error("llama-server: HTTP " + std::to_string(status) + ": " + body);
  // (completion_probabilities may be absent when the token is a partial UTF-8 sequence; the cost is
  // the same.)
  if (json::parse(body).value("tokens_predicted", 0) != 1)
    throw std::runtime_error("llama-server: not one token predicted: " + body.substr(0, 200));
  return ms;
}

// One decision as the peer runs it: that decision's own instructions as the cached prefix (what the
// separate tinyroute scorer uses), then the request's tokens, then the scorer's answer cue.
struct PeerTask {
  std::vector<Token> prefix, tail;
};

PeerTask peer_task(Engine& engine, const LabelScorer& s) {
  const std::string probe = "probe text";
  const std::vector<Token> query = s.query_tokens(probe);
  const auto body = engine.tokenize(probe, false, false);
  // The prefix's tokens as the engine makes them resident (BOS, chat-template markers parsed).
  return {engine.tokenize(s.prefix_text(), true, true),
          {query.begin() + static_cast<std::ptrdiff_t>(body.size()), query.end()}};
}

// Every decision analyze makes, as the peer's tasks: category, agent (when configured), the 4 fields.
std::vector<PeerTask> peer_tasks(Engine& engine, const Config& c) {
  std::vector<PeerTask> tasks;
  {
    Classifier clf(engine, c);
    tasks.push_back(peer_task(engine, clf.scorer()));
  }
  if (!c.agents.empty()) {
    AgentRouter agents(engine, c);
    tasks.push_back(peer_task(engine, agents.scorer()));
  }
  for (auto f : {MessageField::language, MessageField::priority, MessageField::needs_tools,
                 MessageField::complexity}) {
    LabelScorer s = make_field_scorer(engine, c, f);
    tasks.push_back(peer_task(engine, s));
  }
  return tasks;
}

// The peer's separate calls, one per task (prefix + request + cue), each on its own connection, all
// sent at once (llama-server batches concurrent slots). `pin_slots`: task i always on slot i (each slot
// keeps its own instructions cached); otherwise the server picks the slot.
double peer_decisions(std::vector<std::unique_ptr<HttpClient>>& clients, const std::vector<PeerTask>& tasks,
                      const std::vector<Token>& request, bool pin_slots) {
  std::vector<std::thread> threads;
  std::exception_ptr error;
  std::mutex mu;
  const double t0 = now_ms();
  for (size_t i = 0; i < tasks.size(); ++i) {
    std::vector<Token> prompt = tasks[i].prefix;
    prompt.insert(prompt.end(), request.begin(), request.end());
    prompt.insert(prompt.end(), tasks[i].tail.begin(), tasks[i].tail.end());
    threads.emplace_back([&, i, prompt = std::move(prompt)] {
      try {
        peer_call(*clients[i], prompt, pin_slots ? static_cast<int>(i) : -1);
      } catch (...) {
        std::lock_guard lk(mu);
        error = std::current_exception();
      }
    });
  }
  for (auto& t : threads) t.join();
  if (error) std::rethrow_exception(error);
  return now_ms() - t0;
}

// The categories of --config plus the agents of --agents (a config whose agents section is used), so
// that analyze makes every decision: category, agent and the four fields.
Config analyze_config(const Args& a) {
  Config c = bench_config(a, Strategy::choice);
  if (!a.get("agents").empty()) {
    const Config with_agents = load_config(a.get("agents"));
    c.agents = with_agents.agents;
    c.agent_routing = with_agents.agent_routing;
  }
  return c;
}

std::vector<std::unique_ptr<HttpClient>> clients_for(int port, size_t n) {
  std::vector<std::unique_ptr<HttpClient>> v;
  for (size_t i = 0; i < n; ++i) v.push_back(std::make_unique<HttpClient>(port));
  return v;
}

std::string command_line(const Server& s) {
  std::string out;
  for (const auto& x : s.argv) out += (out.empty() ? "" : " ") + x;
  return out;
}

json stats_of(const std::vector<double>& v) {
  return {{"p50", percentile(v, 50)}, {"p95", percentile(v, 95)}, {"n", v.size()}};
}

// analyze vs separate calls vs one classification vs the peer, request by request (one caller, so each
// figure is one request's latency), then a cache hit of the same texts.
int run_analyze(const Args& a) {
  Config c = analyze_config(a);
  // Room for every prefix at once: analyze's, classify's, the agents' and the four fields'.
  c.internal_model.context = std::max(c.internal_model.context, 8192);
  Engine engine(engine_params_from(c.internal_model));
  Analyzer analyzer(engine, c);
  auto cache = std::make_shared<DecisionCache>();
  Analyzer cached(engine, c, cache);
  Classifier clf(engine, c);
  std::optional<AgentRouter> agents;
  if (!c.agents.empty()) agents.emplace(engine, c);
  std::vector<LabelScorer> fields;
  for (auto f :
       {MessageField::language, MessageField::priority, MessageField::needs_tools, MessageField::complexity})
    fields.push_back(make_field_scorer(engine, c, f));
  const auto texts = load_texts(a, a.num("n", 100));
  const size_t n_decisions = analyzer.decisions().size();
  // The peer: one slot per decision, so each keeps its instruction prefix cached.
  const int per_slot = 2048; // one decision's instructions and a request
  Server server(a,
                {"-np", std::to_string(n_decisions), "-c",
                 std::to_string(per_slot * static_cast<int>(n_decisions)), "--no-webui"},
                a.get("out", "bench/results") + "/llama-server-analyze.log");
  auto clients = clients_for(server.port, n_decisions);
  const std::vector<PeerTask> tasks = peer_tasks(engine, c);
  auto request_tokens = [&](const std::string& t) {
    return clip_text_tokens(engine, t, c.internal_model.max_query_tokens, nullptr);
  };
  json example;
  {
    const size_t n = tasks[0].prefix.size() + request_tokens(texts.at(0)).size() + tasks[0].tail.size();
    example = {
        {"prompt", "[" + std::to_string(n) +
                       " token ids: the decision's instructions (cached), the request, the answer cue]"},
        {"n_predict", 1},
        {"n_probs", 10},
        {"temperature", 0},
        {"cache_prompt", true},
        {"stream", false},
        {"id_slot", 0}};
  }
  for (int w = 0; w < 2; ++w) // warm the slots' prefixes
    peer_decisions(clients, tasks, request_tokens(texts.at(0)), true);
  std::map<std::string, std::vector<double>> ms;
  for (const auto& t : texts) {
    double t0 = now_ms();
    clf.classify_task(t).get();
    ms["tinyroute classify_task (one decision)"].push_back(now_ms() - t0);
    t0 = now_ms();
    analyzer.analyze(t).get();
    ms["tinyroute analyze (all decisions, one pass)"].push_back(now_ms() - t0);
    t0 = now_ms();
    auto cf = clf.classify_task(t); // separate calls, all submitted at once so the engine batches them
    std::optional<std::future<AgentRoute>> af;
    if (agents) af = agents->route_agent(t);
    std::vector<std::future<LabelDistribution>> ff;
    for (const auto& f : fields) ff.push_back(f.score(t));
    cf.get();
    if (af) af->get();
    for (auto& f : ff) f.get();
    ms["tinyroute separate calls (same decisions)"].push_back(now_ms() - t0);
    ms["llama-server, one call per decision (concurrent, slot per decision)"].push_back(
        peer_decisions(clients, tasks, request_tokens(t), true));
    cached.analyze(t).get(); // fills the cache
    t0 = now_ms();
    cached.analyze(t).get();
    ms["tinyroute analyze, decision-cache hit (in-process)"].push_back(now_ms() - t0);
  }
  std::cout << "\n### analyze: " << n_decisions << " decisions per request (ms per request, " << texts.size()
            << " requests, one caller)\n\n"
            << "| path | p50 | p95 |\n|---|---|---|\n";
  json out = json::object();
  for (const auto& [name, v] : ms) {
    std::cout << "| " << name << " | " << fmt(percentile(v, 50)) << " | " << fmt(percentile(v, 95)) << " |\n";
    out[name] = stats_of(v);
  }
  const double an = percentile(ms["tinyroute analyze (all decisions, one pass)"], 50);
  const double peer =
      percentile(ms["llama-server, one call per decision (concurrent, slot per decision)"], 50);
  const double one = percentile(ms["tinyroute classify_task (one decision)"], 50);
  std::cout << "\nanalyze p50 is " << fmt(peer / an, 2)
            << "x faster than the peer's separate calls (target >= 3) "
            << "and " << fmt(an / one, 2) << "x one classification (target <= 1.6)\n\npeer: `"
            << command_line(server) << "`, " << n_decisions
            << " concurrent POST /completion per request, body " << example.dump() << "\n";
  out["peer_command"] = command_line(server);
  out["peer_body"] = example;
  out["speedup_vs_peer_p50"] = peer / an;
  out["analyze_over_classify_p50"] = an / one;
  write_json(a.get("out", "bench/results") + "/analyze.json", out);
  return 0;
}

// 16 conversations x 10 turns, interleaved (turn 1 of each, then turn 2 of each, ...), one caller:
// tinyroute's analyze with a conversation id vs the peer given the same prompts with its default slots.
int run_conversations(const Args& a) {
  Config c = analyze_config(a);
  const int n_conv = a.num("conversations", 16), n_turns = a.num("turns", 10);
  c.internal_model.context = std::max(c.internal_model.context, 16384);
  c.internal_model.conversations = n_conv;
  Engine engine(engine_params_from(c.internal_model));
  Analyzer analyzer(engine, c);
  const auto texts = load_texts(a, n_conv * n_turns + 8);
  // The peer: its default slots (no -np: auto, one unified KV cache), room for every conversation.
  Server server(a, {"-c", "16384", "--no-webui"},
                a.get("out", "bench/results") + "/llama-server-conversations.log");
  const size_t n_decisions = analyzer.decisions().size();
  auto clients = clients_for(server.port, n_decisions);
  const std::vector<PeerTask> tasks = peer_tasks(engine, c);
  // A conversation window's tokens as analyze joins them, without analyze's answer head.
  const size_t head =
      analyzer.request_for("probe text").query.size() - engine.tokenize("probe text", false).size();
  auto window_tokens = [&](const std::vector<ConversationTurn>& w) {
    std::vector<Token> q = analyzer.request_for(w).query;
    q.resize(q.size() - head);
    return q;
  };
  for (int w = 0; w < 2; ++w) { // warm both (prefix resident / cached)
    analyzer.analyze(texts.back()).get();
    peer_decisions(clients, tasks, window_tokens({{texts.back(), 0}}), false);
  }
  std::vector<std::vector<ConversationTurn>> windows(static_cast<size_t>(n_conv));
  std::vector<std::vector<double>> ours(static_cast<size_t>(n_turns)), peer(static_cast<size_t>(n_turns));
  std::vector<std::vector<double>> decoded(static_cast<size_t>(n_turns));
  const int window = analyzer.conversations()->options().window_tokens;
  for (int turn = 0; turn < n_turns; ++turn) {
    for (int k = 0; k < n_conv; ++k) {
      const std::string& text = texts.at(static_cast<size_t>(k * n_turns + turn));
      const double t0 = now_ms();
      const AnalyzeResult r = analyzer.analyze(text, AnalyzeOptions{"bench-" + std::to_string(k)}).get();
      ours[static_cast<size_t>(turn)].push_back(now_ms() - t0);
      decoded[static_cast<size_t>(turn)].push_back(r.tokens_decoded);
      auto& w = windows[static_cast<size_t>(k)];
      push_turn(w, ConversationTurn{text, 0}, window); // the same turns (the window never fills here)
      peer[static_cast<size_t>(turn)].push_back(peer_decisions(clients, tasks, window_tokens(w), false));
    }
  }
  std::cout
      << "\n### conversations: " << n_conv << " conversations x " << n_turns
      << " turns, interleaved, all decisions per message (ms per message, one caller)\n\n"
      << "| turn | tinyroute p50 | tinyroute p95 | tokens decoded p50 | llama-server p50 | llama-server p95 "
         "| speedup p50 |\n|---|---|---|---|---|---|---|\n";
  json rows = json::array();
  for (int t = 0; t < n_turns; ++t) {
    const auto& o = ours[static_cast<size_t>(t)];
    const auto& q = peer[static_cast<size_t>(t)];
    std::cout << "| " << t + 1 << " | " << fmt(percentile(o, 50)) << " | " << fmt(percentile(o, 95)) << " | "
              << fmt(percentile(decoded[static_cast<size_t>(t)], 50), 0) << " | " << fmt(percentile(q, 50))
              << " | " << fmt(percentile(q, 95)) << " | " << fmt(percentile(q, 50) / percentile(o, 50), 2)
              << " |\n";
    // Each message's ms too, in conversation order: a slow message shows which conversation it was.
    rows.push_back({{"turn", t + 1},
                    {"tinyroute", stats_of(o)},
                    {"peer", stats_of(q)},
                    {"tinyroute_ms", o},
                    {"peer_ms", q}});
  }
  const double first = percentile(ours.front(), 50), last = percentile(ours.back(), 50);
  const double peer_last = percentile(peer.back(), 50);
  std::cout << "\ntinyroute turn " << n_turns << " / turn 1 p50: " << fmt(last / first, 2)
            << " (target <= 1.2); at turn " << n_turns << " tinyroute is " << fmt(peer_last / last, 2)
            << "x faster than the peer (target >= 3)\n\npeer: `" << command_line(server) << "`, "
            << n_decisions
            << " concurrent POST /completion per message (prompt: the decision's own instructions, the "
               "conversation so far, the "
               "decision's answer cue; n_predict 1, n_probs 10, temperature 0, cache_prompt true)\n";
  write_json(a.get("out", "bench/results") + "/conversations.json",
             {{"turns", rows},
              {"turn_last_over_first_p50", last / first},
              {"speedup_at_last_turn_p50", peer_last / last},
              {"peer_command", command_line(server)},
              {"engine",
               {{"conversations_kept", engine.stats().conversations},
                {"reuses", engine.stats().conversation_reuses},
                {"evictions", engine.stats().conversation_evictions}}}});
  return 0;
}

// A real `tinyroute serve`; POST /v1/route with one request's body: the first ask runs the model, the
// repeats are decision-cache hits. Measured at the client, over a kept-alive connection.
int run_cache_http(const Args& a) {
  const int port = free_port();
  const std::vector<std::string> argv = {
      a.need("tinyroute"), "serve",         "--config", a.need("config"),
      "--model",           a.need("model"), "--port",   std::to_string(port)};
  Child child(argv, a.get("out", "bench/results") + "/tinyroute-serve-cache.log");
  wait_healthy(port, child, 300);
  HttpClient http(port);
  const auto texts = load_texts(a, a.num("n", 50));
  const int repeats = a.num("repeats", 20);
  std::vector<double> miss, hit;
  std::string body;
  json example;
  for (const auto& t : texts) {
    const json req = {{"messages", json::array({{{"role", "user"}, {"content", t}}})}};
    if (example.is_null()) example = req;
    double t0 = now_ms();
    int status = http.request("POST", "/v1/route", req.dump(), body);
    miss.push_back(now_ms() - t0);
    if (status != 200) throw std::runtime_error("/v1/route: HTTP " + std::to_string(status) + ": " + body);
    for (int r = 0; r < repeats; ++r) {
      t0 = now_ms();
      status = http.request("POST", "/v1/route", req.dump(), body);
      hit.push_back(now_ms() - t0);
      if (status != 200 || json::parse(body).value("source", "") != "cache")
        throw std::runtime_error("/v1/route repeat was not a cache hit: " + body);
    }
  }
  std::cout << "\n### decision cache through HTTP (`tinyroute serve`, POST /v1/route, ms at the client)\n\n"
            << "| ask | n | p50 | p95 |\n|---|---|---|---|\n"
            << "| first (model) | " << miss.size() << " | " << fmt(percentile(miss, 50)) << " | "
            << fmt(percentile(miss, 95)) << " |\n"
            << "| repeat (cache hit) | " << hit.size() << " | " << fmt(percentile(hit, 50), 3) << " | "
            << fmt(percentile(hit, 95), 3) << " |\n\nhit p50 target <= 1 ms; body " << example.dump() << "\n";
  write_json(a.get("out", "bench/results") + "/cache-http.json",
             {{"first", stats_of(miss)}, {"hit", stats_of(hit)}, {"body", example}});
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: tinyroute-bench "
                 "latency|concurrency|memory|startup|first-classify|analyze|conversations|cache-http --key "
                 "value ...\n";
    return 2;
  }
  Args a;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k.rfind("--", 0) != 0) {
      std::cerr << "expected --key value, got " << k << "\n";
      return 2;
    }
    a.kv[k.substr(2)] = argv[i + 1];
  }
  const std::string mode = argv[1];
  try {
    if (mode == "latency") return run_latency(a);
    if (mode == "concurrency") return run_concurrency(a);
    if (mode == "memory") return run_memory(a);
    if (mode == "startup") return run_startup(a);
    if (mode == "first-classify") return run_first_classify(a);
    if (mode == "analyze") return run_analyze(a);
    if (mode == "conversations") return run_conversations(a);
    if (mode == "cache-http") return run_cache_http(a);
    std::cerr << "unknown mode " << mode << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "tinyroute-bench " << mode << ": " << e.what() << "\n";
    return 1;
  }
}
