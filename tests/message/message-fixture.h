// Shared set-up for message tests: one engine on the generated tiny model (random weights, so tests
// check what holds whatever the weights are) and small configs with agents.
#pragma once

#include <memory>
#include <string>

#include "test-support.h"
#include "tinyroute/config.h"
#include "tinyroute/engine.h"

namespace tinyroute::test {

inline EngineParams message_engine_params() {
  EngineParams p = engine_default_params();
  p.model_path = tiny_model();
  p.n_ctx = 8192;
  p.n_threads = 1; // ctest runs suites in parallel on 2 cores; ggml threads spin when oversubscribed
  p.n_prefixes = 10;
  return p;
}

// Three agents: billing takes everything, devops only tasks and reports, triage the rest.
inline Config team_config(const std::string& routing = "") {
  return parse_config("internal_model:\n  model: tinyllama-1.1b-chat\n"
                      "categories:\n  - name: chat\n    description: Everyday requests.\n"
                      "models:\n  - name: llama3.1:8b\n    provider: ollama\n"
                      "    base_url: http://127.0.0.1:11434\n    categories: [chat]\n"
                      "default_category: chat\n"
                      "agents:\n"
                      "  - name: billing\n    description: Invoices, refunds and payments.\n"
                      "    skills: [refunds, invoices]\n    examples: [\"Где мой счёт за март?\"]\n"
                      "    endpoint: http://127.0.0.1:9001/inbox\n"
                      "  - name: devops\n    description: Deployments, servers and outages.\n"
                      "    skills: [kubernetes, on-call]\n    examples: [\"prod is down\"]\n"
                      "    endpoint: http://127.0.0.1:9002/inbox\n    accepts: [task, report]\n"
                      "  - name: triage\n    description: Anything else.\n"
                      "    endpoint: http://127.0.0.1:9003/inbox\n    triage: true\n" +
                          routing,
                      "team.yaml");
}

inline Config clinc_config() {
  return load_config(std::string(TINYROUTE_SOURCE_DIR) + "/config/agents-clinc150.yaml");
}

} // namespace tinyroute::test
