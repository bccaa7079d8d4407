// The tinyroute engine: a small GGUF model run in-process through llama.cpp.
//
// Three verbs, nothing else: score continuations, generate under a grammar, embed. Classification,
// agent routing and metadata are policies over these verbs (route/, message/). The engine owns every
// llama.cpp handle; one worker thread owns the llama_contexts and batches work from all callers into
// shared llama_decode calls, one sequence id per request. Named prompt prefixes are decoded once and
// their KV cells are shared by every request that names them; each prefix has a context of its own
// while the KV budget allows, so what else is resident does not slow a request down.
#pragma once

#include <atomic>
#include <cstdint>
#include <future>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tinyroute/error.h"

namespace tinyroute {

using Token = std::int32_t;

enum class Priority : int { low = 0, normal = 1, high = 2 };

// Cancels the requests that carry it, from any thread: a queued request completes at once, a running
// one between two decodes, both with Error(cancelled); its sequences and KV cells are freed. Copies
// share one flag, so one token can cancel many requests (a shutdown cancels everything in flight).
class CancelToken {
public:
  CancelToken() : flag_(std::make_shared<std::atomic<bool>>(false)) {}
  void cancel() const noexcept {
    if (flag_) flag_->store(true, std::memory_order_relaxed);
  }
  bool cancelled() const noexcept { return flag_ && flag_->load(std::memory_order_relaxed); }

private:
  std::shared_ptr<std::atomic<bool>> flag_;
};

struct EngineParams {
  std::string model_path;
  int n_threads = 2; // threads for llama.cpp's CPU kernels
  // KV cells: the most one context holds (a request with its prefix must fit), and what the
  // contexts together may take before they stop growing for throughput.
  int n_ctx = 4096;
  // llama_contexts on the one model (weights loaded once), made on first use: each new prefix gets
  // one of its own (its tokens rounded up to 256, plus a share of n_ctx for its requests) while the
  // contexts together stay within n_ctx, then prefixes share. A context too small for a request
  // grows (its prefixes copied, not decoded). A decode attends only to its own context's cells, so
  // a request's cost follows its prefix, not everything resident. 1 = one cache of n_ctx for all.
  int n_contexts = 4;
  int n_batch = 512;        // tokens per llama_decode
  int n_ubatch = 128;       // tokens per compute pass: the attention scratch grows with it, so keep it small
  int n_parallel = 16;      // requests decoded together (one sequence id each)
  int n_prefixes = 16;      // named prefixes kept resident at once (classify, agents, each metadata field)
  int n_conversations = 16; // conversation sequences kept after their request (LRU); 0 = none kept
  bool use_mmap = true;     // engine_params_from() maps only without repacking (InternalModelConfig::mmap)
  // Repack quantized weights into llama.cpp's faster CPU layouts: quicker decodes, but a copy of most
  // weights in anonymous memory on top of the mapped file (BENCHMARKS.md §3 has the cost).
  bool repack = true;
  // llama.cpp's CPU flash attention. It skips the cells a row may not see, so a decode no longer pays
  // for every other resident prefix and sequence in the shared cache; but it accumulates in f16, so
  // scores move from the plain path and the brute-force twin: ~3e-3 on short prompts, ~1.3e-2 after a
  // 560-token prefix on the test model (off: exact within 1e-3). An f32 KV cache does not help:
  // llama.cpp casts K and V to f16 before its flash-attention kernel.
  bool flash_attn = false;
  // Which hidden state embed_tokens reads: 0 = the final layer after the output norm; k in
  // [1, n_layer - 1] = the output of the k-th transformer block, read as it is computed. A middle block
  // then ends the decode there: the blocks above it and the vocabulary projection are never run.
  int hidden_layer = 0;
  std::string state_dir;    // where prefix KV state is persisted; empty = no persistence
  int max_wait_batches = 4; // ageing: a waiting request gains one priority level per this many decodes
  bool llama_log = false;   // forward llama.cpp's own log lines to stderr
};

EngineParams engine_default_params();

struct ModelInfo {
  std::string path;
  std::string architecture; // general.architecture
  std::string name;         // general.name (may be empty)
  std::string description;  // llama.cpp's short description, e.g. "llama 1B Q4_K - Medium"
  std::uint64_t n_params = 0;
  std::uint64_t file_size = 0;
  std::int32_t n_vocab = 0;
  std::int32_t n_ctx_train = 0;
  std::int32_t n_embd = 0;
  std::int32_t n_layer = 0;
  std::int32_t n_swa = 0;  // attention window of the sliding-window layers (Gemma 3: most); 0 = none
  std::string fingerprint; // sha256 over size, GGUF metadata and sampled tensor data (hex)
  // From the file; when it has none, the llama.cpp format named for the vocabulary's turn markers
  // ("gemma", "chatml", "llama3"), else TinyLlama's ("tinyllama").
  std::string chat_template;
  bool chat_template_from_file = false;
};

struct PromptMessage {
  std::string role; // system | user | assistant
  std::string content;
};

// A prefix is a named prompt head (instructions, few-shot examples) decoded once and shared.
struct PrefixInfo {
  std::string name;
  int n_tokens = 0;
  bool from_disk = false; // state restored from state_dir instead of decoded
  double ms = 0;          // time to make it resident
};

// One fork of a score request: after prefix + query, the sequence is copied (no decode) and this
// branch's cue appended; its continuations are scored after prefix + query + cue. Several decisions
// about one text share the query's decode this way; all cues are decoded together in one batch.
struct ScoreBranch {
  std::vector<Token> cue;                        // may be empty: read right after the query
  std::vector<std::vector<Token>> continuations; // at least one, none empty
};

struct ScoreRequest {
  std::string prefix;                            // a prefix added with add_prefix; empty = none
  std::vector<Token> query;                      // tokens after the prefix
  std::vector<std::vector<Token>> continuations; // candidates, each scored after prefix + query
  std::vector<ScoreBranch> branches;             // forks after the query (continuations may then be empty)
  Priority priority = Priority::normal;
  // Non-empty: the sequence (prefix + query) is kept under this key after the request, and the next
  // request with the key decodes only what follows the longest token prefix it shares with it. Requests
  // with one key run one at a time, in submission order. A kept sequence may be evicted (LRU, count and
  // KV room); the next request then decodes its whole query, with the same result.
  std::string conversation;
  CancelToken cancel; // cancel() ends the request with Error(cancelled)
};

struct ContinuationScore {
  double total = 0;                  // sum of token_logprobs
  std::vector<float> token_logprobs; // log p(token_i | everything before it)
};

struct ScoreResult {
  std::vector<ContinuationScore> continuations;
  std::vector<std::vector<ContinuationScore>> branches; // one list per ScoreRequest::branches entry
  int n_decoded = 0;     // tokens this request decoded (the prefix is not counted)
  int n_reused = 0;      // query tokens found in the conversation's kept sequence (not decoded)
  double queue_ms = 0;   // waiting before the first decode
  double compute_ms = 0; // first decode to result
  double query_ms = 0;   // first decode to the end of the query (the rest is cues and continuations)
};

struct GenerateRequest {
  std::string prefix;
  std::vector<Token> prompt;
  std::string grammar; // GBNF; empty = unconstrained
  std::string grammar_root = "root";
  int max_tokens = 64;
  Priority priority = Priority::normal;
  CancelToken cancel; // cancel() ends the request with Error(cancelled), between two decoded tokens
};

struct GenerateResult {
  std::string text;
  std::vector<Token> tokens;
  bool stopped_by_limit = false; // max_tokens reached before the grammar/model ended
  int n_decoded = 0;
  double queue_ms = 0;
  double compute_ms = 0;
};

// A request's own hidden state: its tokens decoded alone (no prefix, a fresh sequence), the layer
// EngineParams::hidden_layer names, mean-pooled and L2-normalised (cosine = dot product). The final
// layer pools every token; a middle block pools every token but the BOS, whose state there is an
// attention sink's, not the text's.
struct HiddenState {
  std::vector<float> embedding; // n_embd values
  int n_decoded = 0;
  double queue_ms = 0;   // waiting before the decode
  double compute_ms = 0; // the decode and the pooling
};

struct EngineStats {
  std::uint64_t decodes = 0;            // llama_decode calls
  std::uint64_t tokens = 0;             // tokens decoded in total
  std::uint64_t requests = 0;           // score + generate + embed requests completed
  std::uint64_t generate_requests = 0;  // ... of which generate requests
  std::uint64_t max_batch_requests = 0; // most distinct requests seen in one decode
  int queued = 0;
  int active = 0;
  int contexts = 0;                         // llama_contexts made so far (at most n_contexts)
  std::uint64_t context_rebuilds = 0;       // contexts remade larger (their prefixes copied, no decode)
  int conversations = 0;                    // conversation sequences kept now
  std::uint64_t conversation_reuses = 0;    // requests that continued a kept sequence
  std::uint64_t conversation_evictions = 0; // kept sequences dropped for room, count or a prefix change
  std::uint64_t grammar_fast_tokens = 0;    // grammar-constrained tokens whose argmax the grammar allowed
  std::uint64_t grammar_full_passes = 0;    // ... and those that needed the grammar over the whole vocabulary
};

class Engine {
public:
  // Loads the model (mmap) and starts the worker. Throws Error on a bad file.
  explicit Engine(const EngineParams& params);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const ModelInfo& info() const;
  const EngineParams& params() const;

  // Thread-safe; no decode involved.
  std::vector<Token> tokenize(std::string_view text, bool add_bos, bool parse_special = false) const;
  // The tokens `text` adds after `context`, as one tokenization of context + text gives them (plain text,
  // no BOS): what a model reads and emits after a cue. "A" alone and "A" after "Category: " can be
  // different tokens, and whether a leading space is implied differs between vocabularies. Throws
  // invalid_argument when the tokenizer merges text across the boundary.
  std::vector<Token> tokenize_after(std::string_view context, std::string_view text) const;
  std::string detokenize(std::span<const Token> tokens) const;
  std::string token_text(Token token) const;
  std::string apply_chat_template(const std::vector<PromptMessage>& messages, bool add_assistant) const;

  // Makes `text` a resident prefix named `name` (tokenized with BOS). Adding the same name with the
  // same text again is free; new text replaces it. Restores from state_dir when possible.
  std::future<PrefixInfo> add_prefix(std::string name, std::string text);
  std::vector<Token> prefix_tokens(const std::string& name) const;

  // The three verbs. All may be called from any thread; results arrive through the future.
  std::future<ScoreResult> score(ScoreRequest request);
  std::future<GenerateResult> generate(GenerateRequest request);
  std::future<std::vector<float>> embed(std::string text);
  // embed() over tokens the caller already has (clipped text, no BOS: the model's BOS is added here).
  std::future<HiddenState> embed_tokens(std::vector<Token> tokens);

  // The slow, obviously-correct twins of score and generate: a fresh llama_context per call, the
  // whole prompt decoded from scratch, no batching, no prefix sharing. Used by tests to prove the
  // fast paths exact; never on a serving path.
  ScoreResult score_reference(const ScoreRequest& request) const;
  GenerateResult generate_reference(const GenerateRequest& request) const;
  // embed_tokens' twin: one batch in a fresh context, every row an output, nothing stopped early.
  HiddenState embed_reference(std::vector<Token> tokens) const;

  // Parses a GBNF grammar against the model's vocabulary; throws Error(grammar_invalid) if it fails.
  void validate_grammar(const std::string& grammar, const std::string& root = "root") const;

  EngineStats stats() const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace tinyroute
