// A loaded GGUF model: the llama_model handle, its facts, tokenizer and chat template.
// Everything here is read-only after load, so it is shared by the worker and callers' threads.
#pragma once

#include <llama.h>

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/llama-handles.h"
#include "tinyroute/engine.h"

namespace tinyroute::engine {

class Model {
public:
  // `repack`: let llama.cpp copy quantized weights into its faster CPU layouts (anonymous memory).
  Model(const std::string& path, bool use_mmap, bool repack = true);

  llama_model* get() const { return model_.get(); }
  const llama_vocab* vocab() const { return vocab_; }
  const ModelInfo& info() const { return info_; }

  std::vector<Token> tokenize(std::string_view text, bool add_bos, bool parse_special) const;
  std::string detokenize(std::span<const Token> tokens) const;
  std::string token_text(Token token) const;
  std::string apply_chat_template(const std::vector<PromptMessage>& messages, bool add_assistant) const;
  bool is_eog(Token token) const { return llama_vocab_is_eog(vocab_, token); }

private:
  std::string template_from_vocabulary() const;

  ModelPtr model_;
  const llama_vocab* vocab_ = nullptr;
  ModelInfo info_;
  bool tinyllama_format_ = false; // <|system|>/<|user|>/<|assistant|> turns ended by </s>
  std::string eos_piece_;
};

// llama.cpp logs through one process-wide callback. tinyroute installs it once: lines are dropped
// unless TINYROUTE_LLAMA_LOG=1, and the calling thread can capture them (to explain a failed load).
void init_llama_backend();

class LlamaLogCapture {
public:
  LlamaLogCapture();
  ~LlamaLogCapture();
  LlamaLogCapture(const LlamaLogCapture&) = delete;
  LlamaLogCapture& operator=(const LlamaLogCapture&) = delete;
  const std::string& text() const { return text_; }
  void append(std::string_view s) { text_.append(s); }

private:
  std::string text_;
  LlamaLogCapture* previous_;
};

} // namespace tinyroute::engine
