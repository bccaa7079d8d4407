#include "busy-engine.h"

#include <string>

namespace tinyroute::test {

std::future<GenerateResult> keep_engine_busy(Engine& engine, int tokens, CancelToken cancel,
                                             Priority priority) {
  std::string forced;
  for (int i = 0; i < tokens; ++i) forced += " x";
  GenerateRequest g;
  g.prompt = engine.tokenize("Say x many times:", true);
  g.grammar = "root ::= \"" + forced + "\"";
  g.max_tokens = tokens + 500; // the grammar ends it, not the budget
  g.priority = priority;
  g.cancel = std::move(cancel);
  return engine.generate(std::move(g));
}

} // namespace tinyroute::test
