// extract_metadata: what a request is (language, intent, urgency, topics, needs_tools, complexity), made
// by the internal model as envelopes are (agent-message.h): enumerated fields by label scoring, intent
// and topics from one grammar-constrained generate call.
#pragma once

#include <future>
#include <memory>
#include <string>
#include <vector>

#include "tinyroute/agent-message.h"
#include "tinyroute/config.h"
#include "tinyroute/engine.h"

namespace tinyroute {

struct MessageMetadata {
  std::string language;            // message_languages()
  std::string intent;              // short phrase, generated
  std::string urgency;             // message_priorities()
  std::vector<std::string> topics; // up to 4 short phrases, generated
  bool needs_tools = false;
  std::string complexity;   // simple | complex
  int estimated_tokens = 0; // the internal model's tokenizer count of the text
  double latency_ms = 0;
};

class MetadataExtractor {
public:
  MetadataExtractor(Engine& engine, const Config& config, MessageOptions options = {});
  ~MetadataExtractor();
  // Throws Error(invalid_argument) for text over agent_routing.max_message_bytes. `cancel` ends the
  // engine work with Error(cancelled) (a server shutting down).
  std::future<MessageMetadata> extract_metadata(std::string text, Priority priority = Priority::normal,
                                                CancelToken cancel = {}) const;
  const std::string& grammar() const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace tinyroute
