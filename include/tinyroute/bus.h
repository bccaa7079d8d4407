// The agent message bus: tinyroute as the dispatcher on Redis Streams.
//
// A dispatcher reads the inbox stream through a consumer group, turns each entry (the deployment's
// envelope, an agent-message.v1 envelope, or free text) into an envelope, routes it with the internal
// model when it names no recipient and fills the envelope from that one analyze() pass (enumerated
// fields) and deterministic rules (deadline, dates, addresses, paths, names); intent and summary are
// generated only for the recipients bus.generate names. It writes the envelope to the target
// agent's stream. The write, the idempotence mark and the XACK
// happen in one Lua script, so a redelivered entry writes nothing twice. Invalid entries go to the
// dead-letter stream with the error. Pending entries of dead consumers are claimed (XAUTOCLAIM); a lost
// connection is retried with backoff. Redis is the queue: the dispatcher keeps nothing of its own.
#pragma once

#include <atomic>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tinyroute/config.h"
#include "tinyroute/engine.h"

namespace tinyroute {

// What one dispatcher process has done since it started.
struct BusCounters {
  long long in = 0;               // entries read (new, own pending and claimed)
  long long out = 0;              // messages written to agent streams (a broadcast counts once per agent)
  long long dead_lettered = 0;    // invalid entries moved to the dead-letter stream
  long long duplicates = 0;       // redelivered entries whose message was already delivered
  long long waiting = 0;          // entries left pending because their agent is not alive (dead_agent: wait)
  long long claimed = 0;          // entries taken over from idle consumers (XAUTOCLAIM)
  long long reconnects = 0;       // connections to Redis lost and made again
  long long connect_failures = 0; // attempts to connect that failed (unreachable, AUTH refused); retried
  long long errors = 0;           // entries left pending after a failure (retried after claim_idle_ms)
  long long cancelled = 0; // entries whose engine work stop() cancelled (left pending for the next start)
  long long generated = 0; // messages whose intent or summary the model wrote (bus.generate)
  long long deadline_missed = 0; // messages not decided within internal_model.deadline_ms (rule or triage)
};

class BusDispatcher {
public:
  // `engine` is required in bus.mode model and unused in forward mode. Builds the analyzer and the
  // formatter (their prefixes are decoded here); connects lazily in run().
  BusDispatcher(const Config& config, std::shared_ptr<Engine> engine);
  ~BusDispatcher();
  BusDispatcher(const BusDispatcher&) = delete;
  BusDispatcher& operator=(const BusDispatcher&) = delete;

  // Dispatches until stop() (from any thread). stop() cancels the engine work in flight at once (the
  // entries it was for stay pending in the group, delivered after a restart); run() returns within
  // about bus.block_ms.
  void run();
  void stop();
  // Takes `config`'s bus section from the next batch on (any thread). Keys that need a restart (the
  // connection, inbox, group, consumer, mode) and the other sections keep their running values; what
  // was kept is returned, one line per key, for the log. `config` is a validated Config.
  std::vector<std::string> reload(const Config& config);

  BusCounters counters() const;
  // Prometheus text: tinyroute_bus_* counters, consumer-group lag and pending, routing latency.
  std::string metrics_text() const;
  const std::string& consumer() const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The bus as Redis sees it (any process can ask): inbox and dead-letter lengths, the consumer group's
// lag, pending entries and consumers, the shared counters, and which agents are alive. Throws
// Error(io) when Redis cannot be reached.
nlohmann::json bus_status(const Config& config);

} // namespace tinyroute
