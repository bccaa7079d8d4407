#include "engine/model.h"

#include <array>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "engine/fingerprint.h"
#include "engine/gguf-check.h"

namespace tinyroute::engine {

namespace {
thread_local LlamaLogCapture* t_capture = nullptr;

void llama_log_callback(ggml_log_level level, const char* text, void* /*user*/) {
  if (t_capture != nullptr) t_capture->append(text);
  static const bool forward = [] {
    const char* v = std::getenv("TINYROUTE_LLAMA_LOG");
    return v != nullptr && std::strcmp(v, "0") != 0;
  }();
  if (forward && level != GGML_LOG_LEVEL_DEBUG) std::fputs(text, stderr);
}

// Named in ModelInfo when a file carries no chat template and its vocabulary has no known turn markers:
// tinyroute then uses TinyLlama's format.
constexpr const char* kDefaultTemplate = "tinyllama";

std::string render_tinyllama(const std::vector<PromptMessage>& messages, bool add_assistant,
                             const std::string& eos) {
  std::string out;
  for (const auto& m : messages) out += "<|" + m.role + "|>\n" + m.content + eos + "\n";
  if (add_assistant) out += "<|assistant|>\n";
  return out;
}
} // namespace

void init_llama_backend() {
  static std::once_flag once;
  std::call_once(once, [] {
    llama_log_set(llama_log_callback, nullptr);
    llama_backend_init();
  });
}

LlamaLogCapture::LlamaLogCapture() : previous_(t_capture) {
  t_capture = this;
}
LlamaLogCapture::~LlamaLogCapture() {
  t_capture = previous_;
}

Model::Model(const std::string& path, bool use_mmap, bool repack) {
  const GgufFacts facts = check_gguf_file(path);
  init_llama_backend();

  llama_model_params mp = llama_model_default_params();
  mp.load_mode = use_mmap ? LLAMA_LOAD_MODE_MMAP : LLAMA_LOAD_MODE_NONE;
  mp.use_extra_bufts = repack;
  LlamaLogCapture capture;
  model_.reset(llama_model_load_from_file(path.c_str(), mp));
  if (!model_) {
    if (capture.text().find("unknown model architecture") != std::string::npos) {
      throw Error(
          ErrorCode::unsupported_architecture,
          "unsupported model architecture '" + facts.architecture + "' in " + path +
              " (this llama.cpp build cannot run it; use a llama-family chat model such as TinyLlama)");
    }
    std::string why = capture.text();
    if (const auto p = why.find_last_not_of("\n "); p != std::string::npos) why.resize(p + 1);
    if (const auto p = why.rfind('\n'); p != std::string::npos) why = why.substr(p + 1);
    throw Error(ErrorCode::corrupt_model, "llama.cpp could not load " + path + ": " + why);
  }
  if (llama_model_has_encoder(model_.get()) || !llama_model_has_decoder(model_.get())) {
    throw Error(ErrorCode::unsupported_architecture,
                "model architecture '" + facts.architecture + "' in " + path +
                    " is not a decoder-only language model; tinyroute scores continuations with one");
  }
  vocab_ = llama_model_get_vocab(model_.get());

  info_.path = path;
  info_.architecture = facts.architecture;
  info_.name = facts.name;
  char desc[256];
  llama_model_desc(model_.get(), desc, sizeof desc);
  info_.description = desc;
  info_.n_params = llama_model_n_params(model_.get());
  info_.file_size = facts.file_size;
  info_.n_vocab = llama_vocab_n_tokens(vocab_);
  info_.n_ctx_train = llama_model_n_ctx_train(model_.get());
  info_.n_embd = llama_model_n_embd(model_.get());
  info_.n_layer = llama_model_n_layer(model_.get());
  info_.n_swa = llama_model_n_swa(model_.get());
  info_.fingerprint = model_fingerprint(path, facts.file_size, facts.data_offset);
  if (const char* t = llama_model_chat_template(model_.get(), nullptr); t != nullptr && *t != '\0') {
    info_.chat_template = t;
    info_.chat_template_from_file = true;
  } else {
    info_.chat_template = template_from_vocabulary();
  }
  // TinyLlama's Jinja template writes eos_token rather than a literal </s>: llama.cpp's built-in
  // detector mistakes it for GLM-Edge, and its "zephyr" ends turns with <|endoftext|>. tinyroute renders
  // this format itself, with the model's own end-of-sequence piece.
  const auto has = [&](const char* s) { return info_.chat_template.find(s) != std::string::npos; };
  tinyllama_format_ = info_.chat_template == kDefaultTemplate ||
                      (has("<|user|>") && has("<|assistant|>") && has("<|system|>") && !has("<|im_start|>"));
  eos_piece_ = "</s>";
  if (const Token eos = llama_vocab_eos(vocab_); eos >= 0) eos_piece_ = token_text(eos);
}

std::string Model::template_from_vocabulary() const {
  // A file without a template (the Gemma 3 270M GGUF carries none): the format whose turn markers this
  // vocabulary has as special tokens, since those are what the model was trained to read. TinyLlama's
  // markers are plain text, so its format is the one left when no other fits.
  const auto special = [&](const char* marker) {
    return tokenize(marker, false, true).size() == 1 && tokenize(marker, false, false).size() > 1;
  };
  static constexpr std::array<std::array<const char*, 3>, 3> kFormats = {{
      {"gemma", "<start_of_turn>", "<end_of_turn>"},
      {"chatml", "<|im_start|>", "<|im_end|>"},
      {"llama3", "<|start_header_id|>", "<|eot_id|>"},
  }};
  for (const auto& [name, open, close] : kFormats)
    if (special(open) && special(close)) return name;
  return kDefaultTemplate;
}

std::vector<Token> Model::tokenize(std::string_view text, bool add_bos, bool parse_special) const {
  if (text.size() > static_cast<size_t>(INT32_MAX / 2)) {
    throw Error(ErrorCode::invalid_argument,
                "text too long to tokenize (" + std::to_string(text.size()) + " bytes)");
  }
  const auto len = static_cast<int32_t>(text.size());
  std::vector<Token> tokens(text.size() + 2);
  int32_t n = llama_tokenize(vocab_, text.data(), len, tokens.data(), static_cast<int32_t>(tokens.size()),
                             add_bos, parse_special);
  if (n < 0) {
    tokens.resize(static_cast<size_t>(-n));
    n = llama_tokenize(vocab_, text.data(), len, tokens.data(), static_cast<int32_t>(tokens.size()), add_bos,
                       parse_special);
  }
  if (n < 0) throw Error(ErrorCode::internal, "tokenization failed");
  tokens.resize(static_cast<size_t>(n));
  return tokens;
}

std::string Model::detokenize(std::span<const Token> tokens) const {
  std::string out(tokens.size() * 8 + 16, '\0');
  int32_t n = llama_detokenize(vocab_, tokens.data(), static_cast<int32_t>(tokens.size()), out.data(),
                               static_cast<int32_t>(out.size()), false, false);
  if (n < 0) {
    out.resize(static_cast<size_t>(-n));
    n = llama_detokenize(vocab_, tokens.data(), static_cast<int32_t>(tokens.size()), out.data(),
                         static_cast<int32_t>(out.size()), false, false);
  }
  if (n < 0) throw Error(ErrorCode::internal, "detokenization failed");
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string Model::token_text(Token token) const {
  if (token < 0 || token >= info_.n_vocab) {
    throw Error(ErrorCode::invalid_argument, "token id " + std::to_string(token) + " out of range");
  }
  char buf[256];
  const int32_t n = llama_token_to_piece(vocab_, token, buf, sizeof buf, 0, true);
  return n < 0 ? std::string() : std::string(buf, static_cast<size_t>(n));
}

std::string Model::apply_chat_template(const std::vector<PromptMessage>& messages, bool add_assistant) const {
  if (tinyllama_format_) return render_tinyllama(messages, add_assistant, eos_piece_);
  std::vector<llama_chat_message> msgs;
  msgs.reserve(messages.size());
  size_t total = 0;
  for (const auto& m : messages) {
    msgs.push_back({m.role.c_str(), m.content.c_str()});
    total += m.role.size() + m.content.size();
  }
  std::string out(total * 2 + 256, '\0');
  int32_t n = llama_chat_apply_template(info_.chat_template.c_str(), msgs.data(), msgs.size(), add_assistant,
                                        out.data(), static_cast<int32_t>(out.size()));
  if (n > static_cast<int32_t>(out.size())) {
    out.resize(static_cast<size_t>(n));
    n = llama_chat_apply_template(info_.chat_template.c_str(), msgs.data(), msgs.size(), add_assistant,
                                  out.data(), static_cast<int32_t>(out.size()));
  }
  // A template llama.cpp's built-in formats do not know: another model's turn markers would be wrong for
  // this one (TinyLlama's are only used for a file with no template at all), so say so.
  if (n < 0) {
    throw Error(ErrorCode::unsupported_architecture,
                "the chat template in " + info_.path + " is not one llama.cpp's built-in formats know");
  }
  out.resize(static_cast<size_t>(n));
  return out;
}

} // namespace tinyroute::engine
