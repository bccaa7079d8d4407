// ChatEvents as a backend decoder yields them, built in one line: the adapter tests feed them to the
// fronts' streams and compare decoders' output against them.
#pragma once

#include <string>

#include "gateway/chat.h"

namespace tinyroute::gateway::test {

inline ChatEvent text_event(const std::string& t) {
  ChatEvent e;
  e.text = t;
  return e;
}

inline ChatEvent call_event(int index, const std::string& id, const std::string& name,
                            const std::string& args) {
  ChatEvent e;
  e.kind = ChatEvent::Kind::tool_call;
  e.tool_index = index;
  e.tool_id = id;
  e.tool_name = name;
  e.tool_arguments = args;
  return e;
}

inline ChatEvent finish_event(const std::string& reason) {
  ChatEvent e;
  e.kind = ChatEvent::Kind::finish;
  e.finish_reason = reason;
  return e;
}

inline ChatEvent usage_event(int prompt_tokens, int completion_tokens) {
  ChatEvent e;
  e.kind = ChatEvent::Kind::usage;
  e.prompt_tokens = prompt_tokens;
  e.completion_tokens = completion_tokens;
  return e;
}

} // namespace tinyroute::gateway::test
