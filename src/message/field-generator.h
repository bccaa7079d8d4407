// Free-text message fields (intent, summary, entities, topics) from ONE grammar-constrained generate
// call: the fields' schema becomes a GBNF grammar (schema-grammar.h), the English instructions a cached
// prefix, the message the prompt. What the token budget cut off is recovered or left out; every field
// returned validates against its schema.
#pragma once

#include <future>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tinyroute/engine.h"

namespace tinyroute {

struct GeneratedFields {
  nlohmann::json fields = nlohmann::json::object(); // only properties that validated; others absent
  std::string raw;                                  // what the model wrote
  bool stopped_by_limit = false;                    // the token budget ended the JSON early
  int n_decoded = 0;                                // prompt and answer
  int n_generated = 0;                              // the answer's tokens (at most the budget)
  double ms = 0;                                    // queueing plus decoding
};

class FieldGenerator {
public:
  // `schema` is an object schema; `order` the properties to generate, in order.
  FieldGenerator(Engine& engine, std::string prefix_name, const std::string& instructions,
                 nlohmann::json schema, std::vector<std::string> order, int max_query_tokens, int max_tokens);

  // `max_tokens` > 0 replaces the constructor's budget for this call.
  std::future<GeneratedFields> generate(const std::string& text, Priority priority = Priority::normal,
                                        CancelToken cancel = {}, int max_tokens = 0) const;
  GeneratedFields generate_reference(const std::string& text) const; // the brute-force twin; tests only

  const std::string& grammar() const { return grammar_; }

private:
  GenerateRequest request_for(const std::string& text) const;
  GeneratedFields collect(const GenerateResult& r) const;

  Engine& engine_;
  std::string prefix_name_;
  nlohmann::json schema_;
  std::vector<std::string> order_;
  int max_query_tokens_;
  int max_tokens_;
  std::string grammar_;
  std::vector<Token> tail_;
  std::vector<Token> ellipsis_;
};

} // namespace tinyroute
