// The bus dispatcher: read a batch from the inbox group, prepare every entry (every analyze pass issued
// at once so the engine batches them), then decide and deliver each entry as soon as its own work is
// done (a Lua script per entry: write + idempotence mark + XACK, atomically). Entries without model work
// (forward mode, duplicates, invalid ones) go together in one pipeline; a message never waits for a
// slower one of its batch, the batch only shares decodes. A message's envelope comes from its analyze
// pass and extract_entities; only a recipient that bus.generate names also waits for a generation.
#include "bus/bus-internal.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>
#include <utility>

#include <spdlog/spdlog.h>

#include "bus/deployment-envelope.h"
#include "bus/redis-client.h"
#include "core/prometheus.h"
#include "message/extract.h"
#include "message/field-generator.h"
#include "message/schema-validate.h"
#include "tinyroute/agent-message.h"
#include "tinyroute/analyze.h"
#include "tinyroute/bus.h"
#include "tinyroute/error.h"

namespace tinyroute {

const char* const kDeliverScript = R"lua(
local written = 0
if redis.call('EXISTS', KEYS[2]) == 0 then
  local fields = {}
  for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
  for i = 4, #KEYS do
    redis.call('XADD', KEYS[i], 'MAXLEN', '~', ARGV[4], '*', unpack(fields))
  end
  redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
  redis.call('HINCRBY', KEYS[3], ARGV[5], #KEYS - 3)
  written = 1
else
  redis.call('HINCRBY', KEYS[3], 'duplicates', 1)
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return written
)lua";

// An entry whose message was delivered before (a redelivery, a producer's retry): acknowledged and
// counted, with no model work spent on it. 0 when the mark has gone since it was seen: the entry
// stays pending and is processed again after claim_idle_ms.
const char* const kAckDuplicateScript = R"lua(
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HINCRBY', KEYS[3], 'duplicates', 1)
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
  return 1
end
return 0
)lua";

std::string bus_key(const std::string& pattern, const std::string& placeholder, const std::string& value) {
  std::string out = pattern;
  for (auto pos = out.find(placeholder); pos != std::string::npos;
       pos = out.find(placeholder, pos + value.size()))
    out.replace(pos, placeholder.size(), value);
  return out;
}

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Entry {
  std::string id;
  std::map<std::string, std::string> fields;
  bool deleted = false; // a pending id whose entry was trimmed away
};

long long entry_ms(const std::string& id) {
  try {
    return std::stoll(id.substr(0, id.find('-')));
  } catch (const std::exception&) {
    return 0;
  }
}

long long now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// [[id, [f, v, ...]], ...] as entries; a nil field list marks a deleted entry.
std::vector<Entry> entries_of(const RedisValue& list) {
  std::vector<Entry> out;
  for (const auto& e : list.elements) {
    if (e.elements.size() < 2) continue;
    Entry entry{e.elements[0].str, {}, e.elements[1].is_nil()};
    const auto& kv = e.elements[1].elements;
    for (std::size_t i = 0; i + 1 < kv.size(); i += 2) entry.fields[kv[i].str] = kv[i + 1].str;
    out.push_back(std::move(entry));
  }
  return out;
}

bool blank(const std::string& s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; });
}

// Latency in milliseconds for /metrics, observed from the dispatcher's threads.
class LatencyHistogram {
public:
  void add(double ms) {
    std::lock_guard lock(mutex_);
    h_.observe(ms);
  }
  void write(std::ostream& o, const char* name, const char* help) const {
    std::lock_guard lock(mutex_);
    prometheus::family(o, name, prometheus::Type::histogram, help);
    h_.write(o, name);
  }

private:
  static constexpr std::array<double, 13> kBounds = {1,   2,   5,    10,   25,   50,   100,
                                                     250, 500, 1000, 2500, 5000, 10000};
  mutable std::mutex mutex_;
  prometheus::Histogram h_{kBounds};
};

// One entry on its way through a batch.
struct Work {
  Entry entry;
  DeploymentEnvelope env;
  bool verb_given = true; // false for free text: the model's kind picks the verb
  bool duplicate = false; // delivered before (its mark is set): acknowledged without model work
  std::string error;      // set: dead-letter with this
  std::optional<std::shared_future<AnalyzeResult>> analysis;
};

// retry: left pending after a failure; cancelled: left pending because the dispatcher is stopping.
enum class Action { deliver, dead, wait, retry, duplicate, cancelled };

struct Outcome {
  Action action = Action::retry;
  std::vector<std::string> targets; // stream keys
  StreamFields fields;
  std::string mark; // idempotence id
  std::string stat; // stats hash field
};

} // namespace

struct BusDispatcher::Impl {
  Config config;
  BusConfig bus;           // the dispatch thread's; reload() swaps it in between batches
  const BusConfig started; // what the process started with: the keys that need a restart keep these
  std::mutex reload_mutex;
  std::optional<BusConfig> reloaded; // guarded by reload_mutex: taken at the next batch
  CancelToken cancel;                // every engine request; stop() cancels them all
  std::shared_ptr<Engine> engine;
  std::unique_ptr<Analyzer> analyzer;
  // bus.generate's generators, one per field list ("intent,summary"): built at start and on a reload
  // that names a new list, between batches, so entry threads only read the map.
  std::map<std::string, std::unique_ptr<FieldGenerator>> generators;
  std::vector<std::string> known_names; // agents and models: what extract_entities calls systems
  std::string consumer;
  RedisEndpoint endpoint; // parsed once: a bad URL fails at construction, not in the retry loop

  std::atomic<bool> stopping{false};
  std::mutex wake_mutex;
  std::condition_variable wake;

  std::unique_ptr<RedisClient> redis;
  std::string cursor = "0"; // own pending entries are read first after every (re)connect
  Clock::time_point next_claim{};
  Clock::time_point next_info{};

  std::atomic<long long> in{0}, out{0}, dead{0}, duplicates{0}, waiting{0}, claimed{0}, reconnects{0},
      connect_failures{0}, errors{0}, cancelled{0}, generated{0}, deadline_missed{0};
  std::atomic<long long> lag{-1}, pending{-1};
  std::atomic<bool> connected{false};
  LatencyHistogram routing_ms, delivery_ms;

  Impl(const Config& c, std::shared_ptr<Engine> e)
      : config(c), bus(c.bus), started(c.bus), engine(std::move(e)) {
    if (config.agents.empty())
      throw Error(ErrorCode::invalid_argument, "the bus needs an agents section in the config");
    if (bus.mode == BusMode::model) {
      if (!engine)
        throw Error(ErrorCode::invalid_argument, "bus.mode model needs the internal model's engine");
      analyzer = std::make_unique<Analyzer>(*engine, config, nullptr, nullptr,
                                            AnalyzerOptions{.message_kind = true});
      build_generators(bus);
    }
    for (const auto& a : config.agents) known_names.push_back(a.name);
    for (const auto& m : config.models) known_names.push_back(m.name);
    endpoint = parse_redis_url(bus.redis, bus.username_env, bus.password_env);
    consumer = bus.consumer;
    if (consumer.empty()) {
      char host[256] = {};
      gethostname(host, sizeof host - 1);
      consumer = std::string(host) + "-" + std::to_string(getpid());
    }
  }

  static std::string field_key(const std::vector<std::string>& fields) {
    std::string key;
    for (const auto& f : fields) key += (key.empty() ? "" : ",") + f;
    return key;
  }

  // One generator per field list the section uses; each decodes its instructions once, here.
  void build_generators(const BusConfig& b) {
    if (!engine) return;
    std::vector<std::vector<std::string>> lists = {b.generate.fields};
    for (const auto& [agent, g] : b.generate_agents) lists.push_back(g.fields);
    for (const auto& fields : lists) {
      const std::string key = field_key(fields);
      if (fields.empty() || generators.contains(key)) continue;
      const json& full = agent_message_schema();
      json schema = {{"type", "object"}, {"properties", json::object()}};
      std::string what;
      for (const auto& f : fields) {
        schema["properties"][f] = full["properties"][f];
        what += what.empty() ? "" : "; ";
        what += f == "intent"
                    ? "intent, what the sender wants, as a short snake_case phrase in English (e.g. "
                      "fix_login_bug)"
                    : "summary, one English sentence";
      }
      generators[key] = std::make_unique<FieldGenerator>(
          *engine, "bus_generate:" + key,
          "You file messages that people and AI agents send each other. Read the message and write: " + what +
              ".",
          schema, fields, config.internal_model.max_query_tokens, b.generate.max_tokens);
    }
  }

  void sleep_for(std::chrono::milliseconds d) {
    std::unique_lock lock(wake_mutex);
    wake.wait_for(lock, d, [&] { return stopping.load(); });
  }

  void connect() {
    redis = std::make_unique<RedisClient>(endpoint, std::chrono::milliseconds(bus.block_ms + 5000));
    const RedisValue r = redis->command({"XGROUP", "CREATE", bus.inbox, bus.group, "0", "MKSTREAM"});
    if (r.is_error() && r.str.find("BUSYGROUP") == std::string::npos)
      throw Error(ErrorCode::io, "redis: XGROUP CREATE " + bus.inbox + " " + bus.group + ": " + r.str);
    cursor = "0";
    next_claim = Clock::now();
    connected = true;
  }

  std::string agent_stream(const std::string& agent) const {
    return bus_key(bus.agent_stream, "{agent}", agent);
  }

  std::set<std::string> alive_agents() {
    std::set<std::string> alive;
    if (!bus.presence) {
      for (const auto& a : config.agents) alive.insert(a.name);
      return alive;
    }
    std::vector<std::vector<std::string>> cmds;
    for (const auto& a : config.agents)
      cmds.push_back({"EXISTS", bus_key(bus.presence_key, "{agent}", a.name)});
    const auto replies = redis->pipeline(cmds);
    for (std::size_t i = 0; i < replies.size(); ++i)
      if (replies[i].integer > 0) alive.insert(config.agents[i].name);
    return alive;
  }

  // Reads the entry into an envelope; problems become `error`.
  void prepare(Work& w) {
    const auto& f = w.entry.fields;
    try {
      if (w.entry.deleted)
        throw Error(ErrorCode::invalid_argument, "the entry was deleted from the inbox before delivery");
      const auto field = [&](const char* key) -> const std::string* {
        const auto it = f.find(key);
        return it == f.end() ? nullptr : &it->second;
      };
      std::optional<std::string> text;
      if (is_deployment_entry(f)) {
        w.env = parse_deployment_fields(f);
      } else if (const std::string* js = field("agent_message") ? field("agent_message")
                                         : field("envelope")    ? field("envelope")
                                                                : field("message")) {
        const json j = json::parse(*js, nullptr, false);
        if (j.is_object() && j.value("schema", "") == "agent-message.v1") {
          w.env = deployment_from(parse_agent_message(j));
        } else if (j.is_object() && (j.contains("msg_id") || j.contains("verb") || j.contains("payload"))) {
          w.env = parse_deployment_json(j);
        } else {
          text = *js;
        }
      } else if (const std::string* t = field("text") ? field("text") : field("body")) {
        text = *t;
      } else {
        throw Error(
            ErrorCode::invalid_argument,
            "the entry holds no message: write the deployment's envelope (msg_id, from_agent, to_agent, "
            "verb, payload, correlation_id, requires_response, timestamp), an agent-message.v1 envelope in "
            "the field agent_message, or free text in the field text");
      }
      if (text) {
        // Free text: ids from the inbox entry, so a redelivery is recognised as the same message.
        w.verb_given = false;
        w.env.msg_id = uuid_for(bus.inbox + "/" + w.entry.id);
        w.env.from_agent = field("from") ? *field("from") : "user";
        w.env.to_agent = field("to") && *field("to") != "auto" ? *field("to") : "";
        w.env.verb = "TELL";
        w.env.payload = *text;
        w.env.timestamp = iso_utc_ms(entry_ms(w.entry.id));
        if (const std::string* h = field("hop_count")) {
          const auto [end, ec] = std::from_chars(h->data(), h->data() + h->size(), w.env.hop_count);
          if (ec != std::errc() || end != h->data() + h->size() || w.env.hop_count < 0)
            throw Error(ErrorCode::invalid_argument,
                        "hop_count must be a whole number >= 0, got \"" + *h + "\"");
        }
      }
      const auto& limits = config.agent_routing;
      if (w.env.hop_count + 1 > limits.max_hops) {
        throw Error(ErrorCode::invalid_argument,
                    "hop limit exceeded: hop_count " + std::to_string(w.env.hop_count) +
                        " + this hop is over agent_routing.max_hops " + std::to_string(limits.max_hops) +
                        " (the message is probably looping between agents)");
      }
      if (w.env.payload.size() > static_cast<std::size_t>(limits.max_message_bytes)) {
        throw Error(ErrorCode::invalid_argument, "payload is " + std::to_string(w.env.payload.size()) +
                                                     " bytes; the limit is agent_routing.max_message_bytes " +
                                                     std::to_string(limits.max_message_bytes));
      }
      if (!w.env.to_agent.empty() && w.env.to_agent != "*" && !config.find_agent(w.env.to_agent))
        throw Error(ErrorCode::invalid_argument,
                    "to_agent \"" + w.env.to_agent + "\" is not a configured agent");
    } catch (const Error& e) {
      if (e.code() != ErrorCode::invalid_argument) throw;
      w.error = e.what();
    }
  }

  // Issues the model work for a parsed entry (model mode): its analyze pass.
  void issue(Work& w) {
    if (bus.mode != BusMode::model || !w.error.empty() || w.duplicate || blank(w.env.payload)) return;
    try {
      // The deployment's correlation id ties a conversation's messages together: routed with the
      // earlier turns, at the price of the new message's tokens (the engine keeps the sequence). A
      // message that is its own correlation (v1's default) starts nothing worth keeping.
      // Its msg_id makes a redelivery (a retry while the recipient is away, a crash before the ack)
      // the same turn, not a second one.
      const bool threaded = w.env.correlation_id && *w.env.correlation_id != w.env.msg_id;
      AnalyzeOptions options(threaded ? *w.env.correlation_id : "");
      if (threaded) options.turn_id = w.env.msg_id;
      options.cancel = cancel;
      // The same pass decides the envelope's kind, where no verb of the sender's names it.
      options.kind = !w.verb_given && !w.env.agent_message;
      // internal_model.deadline_ms bounds the wait here as it bounds serve's routing: a message the
      // model has not decided by then goes by the rules, else to the triage agent.
      if (const int ms = config.internal_model.deadline_ms; ms > 0)
        options.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
      w.analysis = analyzer->analyze(w.env.payload, std::move(options)).share();
    } catch (const Error& e) {
      if (e.code() != ErrorCode::invalid_argument) throw;
      w.error = e.what();
    }
  }

  Outcome dead_letter(const Work& w, const std::string& error) {
    Outcome o;
    o.action = Action::dead;
    o.targets = {bus.dead_letter};
    o.mark = "dead:" + bus.inbox + "/" + w.entry.id;
    o.stat = "dead_lettered";
    json original = json::object();
    for (const auto& [k, v] : w.entry.fields) original[k] = v;
    o.fields = {{"error", error},
                {"inbox", bus.inbox},
                {"inbox_id", w.entry.id},
                {"consumer", consumer},
                {"entry", original.dump(-1, ' ', false, json::error_handler_t::replace)}};
    return o;
  }

  // Model work is the expensive part of a message: an entry already delivered (its idempotence mark
  // is set) is found before any is spent on it.
  void mark_duplicates(std::vector<Work>& work) {
    std::vector<std::vector<std::string>> cmds;
    std::vector<Work*> asked;
    for (auto& w : work) {
      if (!w.error.empty() || w.env.msg_id.empty()) continue;
      cmds.push_back({"EXISTS", bus_key(bus.delivered_key, "{id}", w.env.msg_id)});
      asked.push_back(&w);
    }
    if (cmds.empty()) return;
    const auto replies = redis->pipeline(cmds);
    for (std::size_t i = 0; i < replies.size() && i < asked.size(); ++i)
      asked[i]->duplicate = !replies[i].is_error() && replies[i].integer > 0;
  }

  Outcome decide(Work& w, const std::set<std::string>& alive) {
    if (!w.error.empty()) return dead_letter(w, w.error);
    if (w.duplicate) {
      Outcome o;
      o.action = Action::duplicate;
      o.mark = w.env.msg_id;
      return o;
    }
    AgentMessage m;
    json metadata = json::object();
    std::optional<AgentRoute> route;
    // The model missed internal_model.deadline_ms: an agent rule decides, else the triage agent.
    const bool late = missed_deadline(w);
    std::optional<RuleMatch> late_rule;
    if (late) {
      ++deadline_missed;
      late_rule = analyzer->rules().match_agent(w.env.payload);
      metadata["deadline_missed"] = true;
      metadata["source"] = late_rule ? "rule" : "default";
    }
    try {
      if (w.analysis) {
        const AnalyzeResult a = w.analysis->get();
        routing_ms.add(a.timing.total_ms);
        route = a.agent;
        metadata["category"] = a.classification.category;
        for (const auto& [name, d] : a.fields) metadata[name] = d.value;
        metadata["source"] = a.source;
        if (!a.conversation.empty()) {
          metadata["conversation_turns"] = a.conversation_turns;
          metadata["conversation_source"] = a.conversation_source;
        }
      }
      m = agent_message_from(w.env);
      if ((w.analysis || late) && !w.env.agent_message)
        fill_envelope(w, w.analysis ? w.analysis->get() : AnalyzeResult{}, m, metadata);
    } catch (const Error& e) {
      if (e.code() == ErrorCode::invalid_argument) return dead_letter(w, e.what());
      if (e.code() == ErrorCode::cancelled) { // stopping: the entry stays pending for the next start
        ++cancelled;
        Outcome o;
        o.action = Action::cancelled;
        return o;
      }
      spdlog::warn("bus: entry {} left pending: {}", w.entry.id, e.what());
      return {};
    }
    m.hop_count = w.env.hop_count + 1;

    std::vector<std::string> agents;
    std::string routed_by = "sender";
    const AgentConfig* triage = config.triage_agent();
    if (w.env.to_agent == "*") {
      routed_by = "broadcast";
      for (const auto& a : config.agents)
        if (alive.contains(a.name)) agents.push_back(a.name);
    } else if (!w.env.to_agent.empty()) {
      agents.push_back(w.env.to_agent);
    } else if (late) {
      routed_by = late_rule ? "deadline:rule" : "deadline:triage";
      agents.push_back(late_rule ? late_rule->agent : triage->name);
    } else if (route) {
      AgentRoute live = *route;
      std::erase_if(live.distribution, [&](const auto& p) { return !alive.contains(p.first); });
      routed_by = route->uncertain ? "model:uncertain" : "model";
      agents.push_back(choose_recipient(live, config, m.kind));
    } else {
      routed_by = "triage";
      agents.push_back(triage->name);
    }
    for (auto& agent : agents) {
      if (alive.contains(agent)) continue;
      if (bus.dead_agent == DeadAgentPolicy::triage && alive.contains(triage->name)) {
        agent = triage->name;
        routed_by = "presence:triage";
      } else {
        Outcome o;
        o.action = Action::wait;
        return o;
      }
    }
    if (agents.empty()) {
      Outcome o;
      o.action = Action::wait;
      return o;
    }
    std::sort(agents.begin(), agents.end());
    agents.erase(std::unique(agents.begin(), agents.end()), agents.end());
    m.to = w.env.to_agent == "*" ? "*" : agents.front();
    // Only now, with the recipient known, and only for a recipient that asks for it.
    if (w.analysis && !w.env.agent_message) generate_fields(w, bus.generation_for(m.to), m, metadata);

    json v1 = agent_message_json(m);
    if (const auto problems = validate_json(agent_message_schema(), v1); !problems.empty())
      return dead_letter(w, "the envelope does not match agent-message.v1: " + problems.front());
    DeploymentEnvelope outgoing = w.env;
    outgoing.to_agent = m.to;
    if (!w.verb_given) outgoing.verb = verb_for_kind(m.kind);
    outgoing.correlation_id = m.correlation_id;
    outgoing.hop_count = m.hop_count;
    outgoing.agent_message = std::move(v1);

    Outcome o;
    o.action = Action::deliver;
    for (const auto& a : agents) o.targets.push_back(agent_stream(a));
    o.fields = deployment_fields(outgoing);
    if (!metadata.empty()) o.fields.emplace_back("metadata", metadata.dump());
    o.fields.emplace_back("routed_by", routed_by);
    o.fields.emplace_back("inbox_id", w.entry.id);
    o.mark = w.env.msg_id;
    o.stat = "out";
    return o;
  }

  // Runs the message's analysis (deferred until asked) within its deadline; true when it missed it. The
  // analysis is dropped then: the engine finishes it, nobody waits for it. Other failures are decide()'s.
  bool missed_deadline(Work& w) {
    if (!w.analysis) return false;
    try {
      (void)w.analysis->get();
    } catch (const Error& e) {
      if (e.code() != ErrorCode::deadline_exceeded) return false;
      w.analysis.reset();
      return true;
    } catch (...) {
      return false;
    }
    return false;
  }

  // A loose message's envelope from its analyze pass (priority, language, and kind where the sender
  // gave no verb) and from rules over its text (deadline, entities), resolved against its own date.
  void fill_envelope(const Work& w, const AnalyzeResult& a, AgentMessage& m, json& metadata) const {
    const auto field = [&](const char* name) -> const std::string* {
      const auto it = a.fields.find(name);
      return it == a.fields.end() ? nullptr : &it->second.value;
    };
    if (const std::string* v = field("urgency")) m.priority = *v;
    if (const std::string* v = field("language")) m.language = *v;
    if (const std::string* v = field("kind"); v && !w.verb_given) m.kind = *v;
    const auto today = parse_iso_date(w.env.timestamp).value_or(parse_iso_date(iso_utc_ms(now_ms())).value());
    const Extraction x = extract_entities(w.env.payload, today, known_names);
    m.entities = envelope_entities(x);
    m.deadline = x.deadline;
    metadata["extracted"] = extraction_json(x);
  }

  // bus.generate for this recipient: intent and summary by the model, on the entry's own thread (no
  // other message waits), at low priority so that routing passes are admitted and batched first. A
  // failure other than stopping delivers the message without them.
  void generate_fields(const Work& w, const BusGenerateConfig& g, AgentMessage& m, json& metadata) {
    if (g.fields.empty() || blank(w.env.payload)) return;
    const auto it = generators.find(field_key(g.fields));
    if (it == generators.end()) return;
    try {
      const GeneratedFields fields =
          it->second->generate(w.env.payload, Priority::low, cancel, g.max_tokens).get();
      if (const std::string intent = fields.fields.value("intent", ""); !blank(intent)) m.intent = intent;
      if (fields.fields.contains("summary")) m.summary = fields.fields["summary"].get<std::string>();
      metadata["generated"] = g.fields;
      metadata["generated_tokens"] = fields.n_generated;
      ++generated;
    } catch (const Error& e) {
      if (e.code() == ErrorCode::cancelled) throw;
      spdlog::warn("bus: entry {}: generating {} failed ({}); delivered without", w.entry.id,
                   field_key(g.fields), e.what());
    }
  }

  // Decides an entry that has model work: waits for its own analysis (and its generation, where its
  // recipient asks for one). Runs on the entry's own thread; never throws.
  Outcome finish(Work& w, const std::set<std::string>& alive) {
    try {
      return decide(w, alive);
    } catch (const std::exception& e) {
      if (const auto* err = dynamic_cast<const Error*>(&e); err && err->code() == ErrorCode::cancelled) {
        ++cancelled;
        Outcome o;
        o.action = Action::cancelled;
        return o;
      }
      spdlog::warn("bus: entry {} left pending: {}", w.entry.id, e.what());
      return {};
    }
  }

  void process(std::vector<Entry> entries) {
    if (entries.empty()) return;
    in += static_cast<long long>(entries.size());
    std::vector<Work> work(entries.size()); // never resized: the threads below hold references
    for (std::size_t i = 0; i < entries.size(); ++i) {
      work[i].entry = std::move(entries[i]);
      prepare(work[i]);
    }
    if (bus.mode == BusMode::model) mark_duplicates(work);
    for (auto& w : work) issue(w); // every analysis in before any is waited for: the engine batches them
    const std::set<std::string> alive = alive_agents();

    // Entries without model work are decided at once and delivered together; each of the others waits
    // for its own work on its own thread and is delivered the moment it is decided.
    std::vector<std::pair<std::size_t, Outcome>> now;
    std::mutex ready_mutex;
    std::condition_variable ready_cv;
    std::vector<std::pair<std::size_t, Outcome>> ready; // guarded by ready_mutex
    std::vector<std::thread> threads;
    const auto join_all = [&threads] {
      for (auto& t : threads)
        if (t.joinable()) t.join();
    };
    struct Joiner {
      std::function<void()> join;
      ~Joiner() { join(); }
    } joiner{join_all}; // a failed delivery (Redis gone) unwinds only after every thread is done
    for (std::size_t i = 0; i < work.size(); ++i) {
      if (!work[i].analysis) {
        now.emplace_back(i, decide(work[i], alive));
        continue;
      }
      threads.emplace_back([&, i] {
        Outcome o = finish(work[i], alive);
        {
          std::lock_guard lock(ready_mutex);
          ready.emplace_back(i, std::move(o));
        }
        ready_cv.notify_one();
      });
    }
    deliver(work, now);
    for (std::size_t left = threads.size(); left > 0;) {
      std::vector<std::pair<std::size_t, Outcome>> done;
      {
        std::unique_lock lock(ready_mutex);
        ready_cv.wait(lock, [&] { return !ready.empty(); });
        done.swap(ready);
      }
      left -= done.size();
      deliver(work, done);
    }
  }

  // Writes the decided entries in one pipeline (a Lua script each) and counts what happened.
  void deliver(const std::vector<Work>& work, const std::vector<std::pair<std::size_t, Outcome>>& decided) {
    std::vector<std::vector<std::string>> cmds;
    std::vector<const std::pair<std::size_t, Outcome>*> which;
    for (const auto& d : decided) {
      const Outcome& o = d.second;
      const Work& w = work[d.first];
      if (o.action == Action::wait) ++waiting;
      if (o.action == Action::retry) ++errors;
      if (o.action == Action::duplicate) {
        cmds.push_back({"EVAL", kAckDuplicateScript, "3", bus.inbox,
                        bus_key(bus.delivered_key, "{id}", o.mark), bus.stats_key, bus.group, w.entry.id});
        which.push_back(&d);
        continue;
      }
      if (o.action != Action::deliver && o.action != Action::dead) continue;
      std::vector<std::string> c = {"EVAL",
                                    kDeliverScript,
                                    std::to_string(3 + o.targets.size()),
                                    bus.inbox,
                                    bus_key(bus.delivered_key, "{id}", o.mark),
                                    bus.stats_key};
      c.insert(c.end(), o.targets.begin(), o.targets.end());
      c.insert(c.end(),
               {bus.group, w.entry.id, std::to_string(bus.dedup_ttl_s), std::to_string(bus.maxlen), o.stat});
      for (const auto& [k, v] : o.fields) {
        c.push_back(k);
        c.push_back(v);
      }
      cmds.push_back(std::move(c));
      which.push_back(&d);
    }
    if (cmds.empty()) return;
    const auto replies = redis->pipeline(cmds);
    const long long now = now_ms();
    for (std::size_t k = 0; k < replies.size() && k < which.size(); ++k) {
      const Outcome& o = which[k]->second;
      const Work& w = work[which[k]->first];
      const RedisValue& r = replies[k];
      if (r.is_error()) {
        ++errors;
        spdlog::warn("bus: entry {} left pending: {}", w.entry.id, r.str);
      } else if (o.action == Action::duplicate) {
        if (r.integer == 1) ++duplicates; // else: left pending, processed again when claimed
      } else if (r.integer == 0) {
        ++duplicates;
      } else if (o.action == Action::dead) {
        ++dead;
        spdlog::info("bus: entry {} dead-lettered: {}", w.entry.id, o.fields.front().second);
      } else {
        out += static_cast<long long>(o.targets.size());
        delivery_ms.add(static_cast<double>(now - entry_ms(w.entry.id)));
      }
    }
  }

  void claim() {
    std::string start = "0-0";
    for (int rounds = 0; rounds < 100 && !stopping; ++rounds) {
      const RedisValue r =
          redis->command({"XAUTOCLAIM", bus.inbox, bus.group, consumer, std::to_string(bus.claim_idle_ms),
                          start, "COUNT", std::to_string(bus.batch)});
      if (r.is_error() || r.elements.size() < 2) {
        if (r.is_error()) spdlog::warn("bus: XAUTOCLAIM: {}", r.str);
        return;
      }
      std::vector<Entry> entries = entries_of(r.elements[1]);
      claimed += static_cast<long long>(entries.size());
      if (!entries.empty())
        spdlog::info("bus: claimed {} entries pending over {} ms", entries.size(), bus.claim_idle_ms);
      process(std::move(entries));
      start = r.elements[0].str;
      if (start == "0-0") return;
    }
  }

  void refresh_info() {
    const RedisValue r = redis->command({"XINFO", "GROUPS", bus.inbox});
    for (const auto& g : r.elements) {
      std::map<std::string, const RedisValue*> kv;
      for (std::size_t i = 0; i + 1 < g.elements.size(); i += 2) kv[g.elements[i].str] = &g.elements[i + 1];
      if (!kv.contains("name") || kv["name"]->str != bus.group) continue;
      if (kv.contains("pending")) pending = kv["pending"]->integer;
      if (kv.contains("lag")) lag = kv["lag"]->is_nil() ? -1 : kv["lag"]->integer;
    }
  }

  // A reloaded bus section takes effect here, between batches, when no entry is in flight.
  void take_reload() {
    std::lock_guard lock(reload_mutex);
    if (!reloaded) return;
    const int block_before = bus.block_ms;
    bus = std::move(*reloaded);
    reloaded.reset();
    if (bus.mode == BusMode::model) build_generators(bus);
    next_claim = Clock::now();
    if (bus.block_ms != block_before) connect(); // the socket's read timeout is sized from block_ms
    spdlog::info("bus: reloaded the bus section (batch {}, block_ms {}, claim_idle_ms {}, presence {})",
                 bus.batch, bus.block_ms, bus.claim_idle_ms, bus.presence ? "on" : "off");
  }

  void step() {
    take_reload();
    const auto now = Clock::now();
    if (now >= next_claim) {
      claim();
      next_claim = now + std::chrono::milliseconds(bus.claim_interval_ms);
    }
    if (now >= next_info) {
      refresh_info();
      next_info = now + std::chrono::seconds(1);
    }
    const bool own_pending = cursor != ">";
    std::vector<std::string> cmd = {"XREADGROUP", "GROUP", bus.group,
                                    consumer,     "COUNT", std::to_string(bus.batch)};
    if (!own_pending) cmd.insert(cmd.end(), {"BLOCK", std::to_string(bus.block_ms)});
    cmd.insert(cmd.end(), {"STREAMS", bus.inbox, cursor});
    const RedisValue r = redis->command(cmd);
    if (r.is_error()) {
      if (r.str.find("NOGROUP") != std::string::npos)
        throw Error(ErrorCode::io, "redis: " + r.str); // recreate
      throw Error(ErrorCode::io, "redis: XREADGROUP: " + r.str);
    }
    std::vector<Entry> entries;
    if (!r.is_nil() && !r.elements.empty() && r.elements[0].elements.size() >= 2)
      entries = entries_of(r.elements[0].elements[1]);
    if (own_pending) {
      if (entries.empty()) {
        cursor = ">";
      } else {
        cursor = entries.back().id;
      }
    }
    process(std::move(entries));
  }

  void run() {
    auto backoff = std::chrono::milliseconds(100);
    while (!stopping) {
      try {
        if (!redis) {
          connect();
          spdlog::info("bus: consumer {} in group {} reading {} at {}", consumer, bus.group, bus.inbox,
                       bus.redis);
          backoff = std::chrono::milliseconds(100);
        }
        step();
      } catch (const Error& e) {
        if (e.code() != ErrorCode::io) {
          // Not the connection: the batch stays pending (claimed again after claim_idle_ms).
          ++errors;
          spdlog::error("bus: {}; the batch stays pending", e.what());
          sleep_for(backoff);
          continue;
        }
        if (redis) {
          ++reconnects;
        } else {
          ++connect_failures;
        }
        redis.reset();
        connected = false;
        spdlog::warn("bus: {}; reconnecting in {} ms", e.what(), backoff.count());
        sleep_for(backoff);
        backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
      }
    }
    redis.reset();
    connected = false;
    if (cancelled > 0)
      spdlog::info("bus: stopped with the engine work of {} entries cancelled; they stay pending in group {} "
                   "and are delivered after a restart",
                   cancelled.load(), bus.group);
  }
};

BusDispatcher::BusDispatcher(const Config& config, std::shared_ptr<Engine> engine)
    : impl_(std::make_unique<Impl>(config, std::move(engine))) {}

BusDispatcher::~BusDispatcher() = default;

void BusDispatcher::run() {
  impl_->run();
}

void BusDispatcher::stop() {
  {
    std::lock_guard lock(impl_->wake_mutex);
    impl_->stopping = true;
  }
  impl_->cancel.cancel(); // in-flight engine work ends between two decodes; its entries stay pending
  impl_->wake.notify_all();
}

std::vector<std::string> BusDispatcher::reload(const Config& config) {
  if (!config.bus.enabled)
    throw Error(ErrorCode::config_invalid,
                config.source_path + ": has no bus section; keeping the running one");
  const BusConfig& was = impl_->started;
  BusConfig next = config.bus;
  std::vector<std::string> kept;
  // The connection, the consumer-group identity and the mode are set up once: changing them under a
  // running dispatcher would strand its pending entries or need the model it did not load.
  const auto keep = [&](const char* key, std::string& now, const std::string& before) {
    if (now == before) return;
    kept.push_back(std::string("bus.") + key + " changed from \"" + before + "\" to \"" + now +
                   "\": it takes effect at the next start");
    now = before;
  };
  keep("redis", next.redis, was.redis);
  keep("username_env", next.username_env, was.username_env);
  keep("password_env", next.password_env, was.password_env);
  keep("inbox", next.inbox, was.inbox);
  keep("group", next.group, was.group);
  keep("consumer", next.consumer, was.consumer);
  if (next.mode != was.mode) {
    kept.push_back("bus.mode changed: it takes effect at the next start (the internal model is loaded or not "
                   "at start)");
    next.mode = was.mode;
  }
  {
    std::lock_guard lock(impl_->reload_mutex);
    impl_->reloaded = std::move(next);
  }
  impl_->wake.notify_all();
  return kept;
}

const std::string& BusDispatcher::consumer() const {
  return impl_->consumer;
}

BusCounters BusDispatcher::counters() const {
  const Impl& i = *impl_;
  return {i.in,      i.out,       i.dead,       i.duplicates,
          i.waiting, i.claimed,   i.reconnects, i.connect_failures,
          i.errors,  i.cancelled, i.generated,  i.deadline_missed};
}

std::string BusDispatcher::metrics_text() const {
  const Impl& i = *impl_;
  std::ostringstream o;
  const auto counter = [&](const char* name, const char* help, long long v) {
    prometheus::metric(o, name, prometheus::Type::counter, help, v);
  };
  const auto gauge = [&](const char* name, const char* help, long long v) {
    prometheus::metric(o, name, prometheus::Type::gauge, help, v);
  };
  counter("tinyroute_bus_messages_in_total", "Inbox entries read by this dispatcher.", i.in);
  counter("tinyroute_bus_messages_out_total", "Messages written to agent streams.", i.out);
  counter("tinyroute_bus_dead_lettered_total", "Invalid entries moved to the dead-letter stream.", i.dead);
  counter("tinyroute_bus_duplicates_total", "Redelivered entries that were already delivered.", i.duplicates);
  counter("tinyroute_bus_waiting_total", "Entries left pending because their agent was not alive.",
          i.waiting);
  counter("tinyroute_bus_claimed_total", "Pending entries claimed from idle consumers.", i.claimed);
  counter("tinyroute_bus_reconnects_total", "Reconnections to Redis.", i.reconnects);
  counter("tinyroute_bus_connect_failures_total",
          "Attempts to connect to Redis that failed (retried with backoff).", i.connect_failures);
  counter("tinyroute_bus_errors_total", "Entries left pending after a failure.", i.errors);
  counter("tinyroute_bus_generated_total", "Messages whose intent or summary the model wrote (bus.generate).",
          i.generated);
  counter(
      "tinyroute_bus_deadline_missed_total",
      "Messages the model did not decide within internal_model.deadline_ms (a rule or triage routed them).",
      i.deadline_missed);
  gauge("tinyroute_bus_connected", "1 while connected to Redis.", i.connected ? 1 : 0);
  gauge("tinyroute_bus_group_lag", "Inbox entries not yet read by the consumer group (-1 unknown).", i.lag);
  gauge("tinyroute_bus_group_pending", "Entries read by the group but not yet acknowledged.", i.pending);
  i.routing_ms.write(o, "tinyroute_bus_routing_latency_ms", "analyze() time per routed message.");
  i.delivery_ms.write(o, "tinyroute_bus_delivery_latency_ms", "Inbox write to agent stream write.");
  return o.str();
}

json bus_status(const Config& config) {
  const BusConfig& bus = config.bus;
  RedisClient redis(parse_redis_url(bus.redis, bus.username_env, bus.password_env), std::chrono::seconds(5));
  json s = {
      {"redis", bus.redis}, {"inbox", bus.inbox}, {"group", bus.group}, {"dead_letter", bus.dead_letter}};
  const auto len = [&](const std::string& key) { return redis.command({"XLEN", key}).integer; };
  s["inbox_length"] = len(bus.inbox);
  s["dead_letter_length"] = len(bus.dead_letter);
  json group = nullptr;
  const RedisValue groups = redis.command({"XINFO", "GROUPS", bus.inbox});
  for (const auto& g : groups.elements) {
    json j = json::object();
    for (std::size_t i = 0; i + 1 < g.elements.size(); i += 2) {
      const RedisValue& v = g.elements[i + 1];
      j[g.elements[i].str] = v.type == RedisValue::Type::integer ? json(v.integer)
                             : v.is_nil()                        ? json(nullptr)
                                                                 : json(v.str);
    }
    if (j.value("name", "") == bus.group) group = j;
  }
  s["group_info"] = group;
  json stats = json::object();
  const RedisValue h = redis.command({"HGETALL", bus.stats_key});
  for (std::size_t i = 0; i + 1 < h.elements.size(); i += 2)
    stats[h.elements[i].str] = std::stoll(h.elements[i + 1].str);
  s["stats"] = stats;
  json agents = json::array();
  for (const auto& a : config.agents) {
    const std::string stream = bus_key(bus.agent_stream, "{agent}", a.name);
    json j = {{"name", a.name}, {"stream", stream}, {"length", len(stream)}};
    if (bus.presence)
      j["alive"] = redis.command({"EXISTS", bus_key(bus.presence_key, "{agent}", a.name)}).integer > 0;
    agents.push_back(j);
  }
  s["agents"] = agents;
  return s;
}

} // namespace tinyroute
