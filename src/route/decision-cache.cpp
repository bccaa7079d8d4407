#include "tinyroute/decision-cache.h"

#include <mutex>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/lru.h"
#include "core/prometheus.h"
#include "tinyroute/error.h"
#include "tinyroute/shared-store.h"

namespace tinyroute {

namespace {

using nlohmann::json;

json distribution_json(const std::vector<std::pair<std::string, double>>& d) {
  json out = json::array();
  for (const auto& [label, p] : d) out.push_back({label, p});
  return out;
}

std::vector<std::pair<std::string, double>> distribution_of(const json& j) {
  std::vector<std::pair<std::string, double>> out;
  for (const auto& e : j) out.emplace_back(e.at(0).get<std::string>(), e.at(1).get<double>());
  return out;
}

} // namespace

std::string encode_decision(const AnalyzeResult& r) {
  const ClassifyResult& c = r.classification;
  json j = {{"v", 1},
            {"classification",
             {{"category", c.category},
              {"top_label", c.top_label},
              {"confidence", c.confidence},
              {"distribution", distribution_json(c.distribution)},
              {"uncertain", c.uncertain},
              {"source", c.source},
              {"strategy", strategy_name(c.strategy)},
              {"query_tokens", c.query_tokens},
              {"truncated", c.truncated},
              {"tokens_decoded", c.tokens_decoded},
              {"latency_ms", c.latency_ms}}},
            {"fields", json::object()},
            {"timing",
             {r.timing.queue_ms, r.timing.request_ms, r.timing.decisions_ms, r.timing.select_ms,
              r.timing.total_ms}},
            {"query_tokens", r.query_tokens},
            {"tokens_decoded", r.tokens_decoded},
            {"truncated", r.truncated},
            {"source", r.source}};
  if (r.agent) {
    const AgentRoute& a = *r.agent;
    j["agent"] = {{"agent", a.agent},
                  {"top_agent", a.top_agent},
                  {"confidence", a.confidence},
                  {"distribution", distribution_json(a.distribution)},
                  {"uncertain", a.uncertain},
                  {"source", a.source},
                  {"query_tokens", a.query_tokens},
                  {"truncated", a.truncated},
                  {"tokens_decoded", a.tokens_decoded},
                  {"latency_ms", a.latency_ms}};
  }
  for (const auto& [name, f] : r.fields)
    j["fields"][name] = {{"value", f.value},
                         {"confidence", f.confidence},
                         {"distribution", distribution_json(f.distribution)}};
  // Invalid UTF-8 cannot reach here (requests are checked), but a cache write must never throw for it.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

AnalyzeResult decode_decision(std::string_view text) {
  try {
    const json j = json::parse(text);
    if (j.at("v") != 1) throw Error(ErrorCode::invalid_argument, "a stored decision of another version");
    AnalyzeResult r;
    const json& c = j.at("classification");
    ClassifyResult& k = r.classification;
    k.category = c.at("category").get<std::string>();
    k.top_label = c.at("top_label").get<std::string>();
    k.confidence = c.at("confidence").get<double>();
    k.distribution = distribution_of(c.at("distribution"));
    k.uncertain = c.at("uncertain").get<bool>();
    k.source = c.at("source").get<std::string>();
    k.strategy = parse_strategy(c.at("strategy").get<std::string>()).value_or(Strategy::choice);
    k.query_tokens = c.at("query_tokens").get<int>();
    k.truncated = c.at("truncated").get<bool>();
    k.tokens_decoded = c.at("tokens_decoded").get<int>();
    k.latency_ms = c.at("latency_ms").get<double>();
    if (j.contains("agent")) {
      const json& a = j.at("agent");
      AgentRoute& g = r.agent.emplace();
      g.agent = a.at("agent").get<std::string>();
      g.top_agent = a.at("top_agent").get<std::string>();
      g.confidence = a.at("confidence").get<double>();
      g.distribution = distribution_of(a.at("distribution"));
      g.uncertain = a.at("uncertain").get<bool>();
      g.source = a.at("source").get<std::string>();
      g.query_tokens = a.at("query_tokens").get<int>();
      g.truncated = a.at("truncated").get<bool>();
      g.tokens_decoded = a.at("tokens_decoded").get<int>();
      g.latency_ms = a.at("latency_ms").get<double>();
    }
    for (const auto& [name, f] : j.at("fields").items()) {
      FieldDecision& d = r.fields[name];
      d.value = f.at("value").get<std::string>();
      d.confidence = f.at("confidence").get<double>();
      d.distribution = distribution_of(f.at("distribution"));
    }
    const json& t = j.at("timing");
    r.timing = {t.at(0).get<double>(), t.at(1).get<double>(), t.at(2).get<double>(), t.at(3).get<double>(),
                t.at(4).get<double>()};
    r.query_tokens = j.at("query_tokens").get<int>();
    r.tokens_decoded = j.at("tokens_decoded").get<int>();
    r.truncated = j.at("truncated").get<bool>();
    r.source = j.at("source").get<std::string>();
    return r;
  } catch (const json::exception& e) {
    throw Error(ErrorCode::invalid_argument, std::string("not a stored decision: ") + e.what());
  }
}

std::string normalize_request_text(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool space = false;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u == ' ' || u == '\t' || u == '\n' || u == '\r' || u == '\f' || u == '\v') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += (u >= 'A' && u <= 'Z') ? static_cast<char>(u - 'A' + 'a') : c;
  }
  return out;
}

struct DecisionCache::State {
  struct Entry {
    std::shared_ptr<const AnalyzeResult> value;
    Clock::time_point stored;
  };
  std::mutex mutex;
  LruMap<std::string, Entry> entries;
  std::size_t shared_entries = 0; // what the shared store said it held at the last store
  DecisionCacheStats stats;
};

DecisionCache::DecisionCache(DecisionCacheOptions options, std::function<Clock::time_point()> now)
    : options_(options), now_(std::move(now)), state_(std::make_unique<State>()) {}

DecisionCache::DecisionCache(DecisionCacheOptions options, std::shared_ptr<SharedStore> shared)
    : options_(options), now_(Clock::now), shared_(std::move(shared)), state_(std::make_unique<State>()) {}

DecisionCache::~DecisionCache() = default;

std::string DecisionCache::key(std::string_view text, std::string_view config_hash, std::string_view kind) {
  // Length-prefixed parts: no text can be crafted to collide with another kind or config.
  std::string k;
  for (std::string_view part : {kind, config_hash})
    k += std::to_string(part.size()) + ":" + std::string(part);
  return k + normalize_request_text(text);
}

std::shared_ptr<const AnalyzeResult> DecisionCache::find(const std::string& key, std::string_view scope) {
  if (shared_) {
    if (options_.max_entries == 0) return nullptr;
    std::shared_ptr<const AnalyzeResult> hit;
    bool failed = false;
    try {
      if (auto text = shared_->find_decision(scope, key))
        hit = std::make_shared<const AnalyzeResult>(decode_decision(*text));
    } catch (const Error&) {
      failed = true; // down, slow, or an entry it cannot read: the model decides
    }
    std::lock_guard lock(state_->mutex);
    if (failed) ++state_->stats.shared_fallbacks;
    if (!hit) {
      ++state_->stats.misses;
      return nullptr;
    }
    ++state_->stats.hits;
    state_->stats.saved_ms += hit->timing.total_ms;
    return hit;
  }
  std::lock_guard lock(state_->mutex);
  DecisionCacheStats& stats = state_->stats;
  const State::Entry* e = state_->entries.find(key);
  if (e == nullptr) {
    ++stats.misses;
    return nullptr;
  }
  if (std::chrono::duration<double>(now_() - e->stored).count() > options_.ttl_s) {
    state_->entries.erase(key);
    ++stats.expirations;
    ++stats.misses;
    return nullptr;
  }
  ++stats.hits;
  stats.saved_ms += e->value->timing.total_ms;
  return e->value;
}

void DecisionCache::put(const std::string& key, AnalyzeResult value, std::string_view scope) {
  if (shared_) {
    if (options_.max_entries == 0) return;
    try {
      const SharedDecisionPut p =
          shared_->put_decision(scope, key, encode_decision(value), options_.max_entries, options_.ttl_s);
      std::lock_guard lock(state_->mutex);
      state_->stats.evictions += p.evicted;
      state_->shared_entries = p.entries;
    } catch (const Error&) {
      std::lock_guard lock(state_->mutex);
      ++state_->stats.shared_fallbacks;
    }
    return;
  }
  std::lock_guard lock(state_->mutex);
  if (options_.max_entries == 0) return;
  state_->entries.put(key, {std::make_shared<const AnalyzeResult>(std::move(value)), now_()});
  state_->stats.evictions += state_->entries.trim(options_.max_entries);
}

void DecisionCache::clear() {
  std::lock_guard lock(state_->mutex);
  state_->entries.clear();
}

DecisionCacheStats DecisionCache::stats() const {
  std::lock_guard lock(state_->mutex);
  DecisionCacheStats s = state_->stats;
  s.entries = shared_ ? state_->shared_entries : state_->entries.size();
  return s;
}

std::string DecisionCache::metrics_text() const {
  const DecisionCacheStats s = stats();
  std::ostringstream o;
  using prometheus::metric;
  using prometheus::Type;
  metric(o, "tinyroute_decision_cache_hits_total", Type::counter,
         "Decisions answered from the decision cache.", s.hits);
  metric(o, "tinyroute_decision_cache_misses_total", Type::counter,
         "Decisions the cache did not hold (the model ran).", s.misses);
  metric(o, "tinyroute_decision_cache_evictions_total", Type::counter,
         "Entries pushed out by the size bound.", s.evictions);
  metric(o, "tinyroute_decision_cache_expirations_total", Type::counter, "Entries found older than the TTL.",
         s.expirations);
  metric(o, "tinyroute_decision_cache_entries", Type::gauge, "Decisions held now.", s.entries);
  metric(o, "tinyroute_decision_cache_saved_seconds_total", Type::counter,
         "Internal-model time the cache hits did not spend.", s.saved_ms / 1000);
  if (shared_) {
    metric(o, "tinyroute_decision_cache_shared_fallbacks_total", Type::counter,
           "Decision-cache calls the shared store (shared_state) could not answer in time: a lookup "
           "became a miss (the model decided), a store was dropped.",
           s.shared_fallbacks);
  }
  return o.str();
}

} // namespace tinyroute
