// Shared by the backend stream decoders' fuzz targets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "gateway/backend-anthropic.h"
#include "gateway/backend-ollama.h"
#include "gateway/backend-openai.h"
#include "gateway/chat.h"
#include "gateway/request-json.h"

namespace tinyroute::fuzz {

inline void decode_stream(const gateway::BackendAdapter& backend, const std::uint8_t* data,
                          std::size_t size) {
  using namespace gateway;
  if (size == 0) return;
  const std::size_t piece = 1 + data[0] % 64;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  auto decoder = backend.decoder();
  std::vector<ChatEvent> events;
  for (std::size_t at = 0; at < bytes.size(); at += piece) {
    for (auto& e : decoder->feed(bytes.substr(at, piece))) events.push_back(std::move(e));
  }
  for (auto& e : decoder->end()) events.push_back(std::move(e));
  // Every event goes out through each front protocol's stream, as the gateway sends it.
  static const auto openai = make_openai_front();
  static const auto anthropic = make_anthropic_front();
  static const auto ollama = make_ollama_chat_front();
  static const auto responses = make_responses_front();
  ChatRequest request;
  for (const FrontAdapter* front : {openai.get(), anthropic.get(), ollama.get(), responses.get()}) {
    auto stream = front->stream(request, "fuzz-model");
    (void)stream->start();
    ChatResult result;
    for (const auto& e : events) {
      (void)stream->event(e);
      accumulate(result, e);
    }
    (void)stream->finish();
    (void)dump_for_client(front->render(result, request, "fuzz-model"));
  }
}

} // namespace tinyroute::fuzz
