#include "model_writer.h"

#include <ggml-cpp.h>
#include <ggml.h>
#include <gguf.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string_view>
#include <thread>
#include <vector>

static_assert(std::endian::native == std::endian::little,
              "GGUF is little-endian; big-endian hosts unsupported");

namespace tinyroute::mkmodel {

const char* const kTinyLlamaChatTemplate = "{% for message in messages %}\n"
                                           "{% if message['role'] == 'user' %}\n"
                                           "{{ '<|user|>\n' + message['content'] + eos_token }}\n"
                                           "{% elif message['role'] == 'system' %}\n"
                                           "{{ '<|system|>\n' + message['content'] + eos_token }}\n"
                                           "{% elif message['role'] == 'assistant' %}\n"
                                           "{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n"
                                           "{% endif %}\n"
                                           "{% if loop.last and add_generation_prompt %}\n"
                                           "{{ '<|assistant|>' }}\n"
                                           "{% endif %}\n"
                                           "{% endfor %}";

namespace {

// llama_ftype values (llama.h) for general.file_type.
constexpr std::uint32_t kFtypeAllF32 = 0;
constexpr std::uint32_t kFtypeMostlyF16 = 1;

// Elements per independently seeded chunk: the weights depend on (seed, tensor name, chunk index)
// only, so chunks can be generated in parallel and the file does not depend on the thread count.
constexpr std::int64_t kChunk = 1 << 16;

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

enum class Init { ones, random };

struct TensorDef {
  std::string name;
  std::int64_t ne0 = 0; // columns (ggml ne[0], the contiguous dimension)
  std::int64_t ne1 = 1; // rows
  ggml_type type = GGML_TYPE_F32;
  Init init = Init::ones;
};

std::vector<TensorDef> tensor_defs(const ModelSpec& s, std::int64_t n_vocab) {
  const ggml_type wt = s.type == WeightType::f16 ? GGML_TYPE_F16 : GGML_TYPE_F32;
  const std::int64_t n_embd = s.n_embd;
  const std::int64_t n_embd_kv = static_cast<std::int64_t>(s.n_embd / s.n_head) * s.n_head_kv;
  const std::int64_t n_ff = s.n_ff;
  auto mat = [&](std::string name, std::int64_t ne0, std::int64_t ne1) {
    return TensorDef{std::move(name), ne0, ne1, wt, Init::random};
  };
  auto norm = [&](std::string name) {
    return TensorDef{std::move(name), n_embd, 1, GGML_TYPE_F32, Init::ones};
  };

  // Shapes as llama.cpp's loader expects them (src/models/llama.cpp, load_arch_tensors).
  std::vector<TensorDef> defs;
  defs.push_back(mat("token_embd.weight", n_embd, n_vocab));
  for (std::uint32_t i = 0; i < s.n_layer; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    defs.push_back(norm(p + "attn_norm.weight"));
    defs.push_back(mat(p + "attn_q.weight", n_embd, n_embd));
    defs.push_back(mat(p + "attn_k.weight", n_embd, n_embd_kv));
    defs.push_back(mat(p + "attn_v.weight", n_embd, n_embd_kv));
    defs.push_back(mat(p + "attn_output.weight", n_embd, n_embd));
    defs.push_back(norm(p + "ffn_norm.weight"));
    defs.push_back(mat(p + "ffn_gate.weight", n_embd, n_ff));
    defs.push_back(mat(p + "ffn_down.weight", n_ff, n_embd));
    defs.push_back(mat(p + "ffn_up.weight", n_embd, n_ff));
  }
  defs.push_back(norm("output_norm.weight"));
  defs.push_back(mat("output.weight", n_embd, n_vocab));
  return defs;
}

// Uniform in (-a, a) with a = sqrt(3 / fan_in): standard deviation 1/sqrt(fan_in), so activations
// and logits keep a useful spread. Written out by hand (not std::uniform_real_distribution) so the
// bytes are the same with every standard library.
void fill_random(float* dst, std::int64_t n, std::uint64_t chunk_seed, double a) {
  std::mt19937_64 rng(chunk_seed);
  for (std::int64_t i = 0; i < n; ++i) {
    const double u = (static_cast<double>(rng() >> 11) + 0.5) * 0x1p-53; // (0, 1)
    dst[i] = static_cast<float>((2.0 * u - 1.0) * a);
  }
}

class File {
public:
  File(const std::string& path) : path_(path), f_(std::fopen(path.c_str(), "wb")) {
    if (f_ == nullptr) throw Error("cannot write " + path + ": " + std::strerror(errno));
    std::setvbuf(f_, nullptr, _IOFBF, 1 << 20);
  }
  ~File() {
    if (f_ != nullptr) {
      std::fclose(f_);
      std::error_code ec;
      std::filesystem::remove(path_, ec); // never leave a truncated model behind
    }
  }
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  void write(const void* data, std::size_t n) {
    if (n != 0 && std::fwrite(data, 1, n, f_) != n) fail();
    written_ += n;
  }
  void pad(std::size_t alignment) {
    static const char zeros[256] = {};
    while (written_ % alignment != 0)
      write(zeros, std::min<std::size_t>(sizeof zeros, alignment - written_ % alignment));
  }
  std::uint64_t written() const { return written_; }
  void close() {
    const bool bad = std::fflush(f_) != 0 || std::ferror(f_) != 0;
    const bool close_failed = std::fclose(f_) != 0;
    f_ = nullptr;
    if (bad || close_failed) {
      std::error_code ec;
      std::filesystem::remove(path_, ec);
      throw Error("cannot write " + path_ + ": " + std::strerror(errno));
    }
  }

private:
  [[noreturn]] void fail() { throw Error("cannot write " + path_ + ": " + std::strerror(errno)); }
  std::string path_;
  std::FILE* f_;
  std::uint64_t written_ = 0;
};

// Streams one tensor's data: generates batches of chunks in parallel, writes them in order.
void write_tensor(File& out, const TensorDef& t, std::uint64_t seed, unsigned threads) {
  const std::int64_t n = t.ne0 * t.ne1;
  const std::int64_t n_chunks = (n + kChunk - 1) / kChunk;
  const std::size_t elt = t.type == GGML_TYPE_F16 ? sizeof(ggml_fp16_t) : sizeof(float);
  const std::uint64_t tensor_seed = splitmix64(splitmix64(seed) ^ fnv1a(t.name));
  const double a = std::sqrt(3.0 / static_cast<double>(t.ne0));

  const std::int64_t batch = std::max<std::int64_t>(1, static_cast<std::int64_t>(threads) * 4);
  std::vector<unsigned char> buf(static_cast<std::size_t>(std::min(batch, n_chunks) * kChunk) * elt);

  auto make_chunk = [&](std::int64_t c, std::int64_t first_chunk, std::vector<float>& scratch) {
    const std::int64_t begin = c * kChunk;
    const std::int64_t len = std::min(kChunk, n - begin);
    unsigned char* dst = buf.data() + static_cast<std::size_t>((c - first_chunk) * kChunk) * elt;
    float* f32 = t.type == GGML_TYPE_F32 ? reinterpret_cast<float*>(dst) : scratch.data();
    if (t.init == Init::ones) {
      std::fill(f32, f32 + len, 1.0f);
    } else {
      fill_random(f32, len, splitmix64(tensor_seed ^ splitmix64(static_cast<std::uint64_t>(c))), a);
    }
    if (t.type == GGML_TYPE_F16) ggml_fp32_to_fp16_row(f32, reinterpret_cast<ggml_fp16_t*>(dst), len);
  };

  for (std::int64_t first = 0; first < n_chunks; first += batch) {
    const std::int64_t last = std::min(n_chunks, first + batch);
    const unsigned n_threads = static_cast<unsigned>(std::min<std::int64_t>(threads, last - first));
    auto work = [&](unsigned tid) {
      std::vector<float> scratch(t.type == GGML_TYPE_F16 ? kChunk : 0);
      for (std::int64_t c = first + tid; c < last; c += n_threads) make_chunk(c, first, scratch);
    };
    if (n_threads <= 1) {
      work(0);
    } else {
      std::vector<std::jthread> pool;
      for (unsigned tid = 0; tid < n_threads; ++tid) pool.emplace_back(work, tid);
    }
    const std::int64_t elems = std::min(n, last * kChunk) - first * kChunk;
    out.write(buf.data(), static_cast<std::size_t>(elems) * elt);
  }
}

using gguf_ptr = gguf_context_ptr;

gguf_ptr load_vocab(const std::string& path, std::uint32_t& n_vocab) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw Error("vocab file not found: " + path);
  gguf_ptr vocab(gguf_init_from_file(path.c_str(), gguf_init_params{/*no_alloc=*/true, /*ctx=*/nullptr}));
  if (!vocab) throw Error("vocab file is not a valid GGUF file: " + path);

  const std::int64_t model = gguf_find_key(vocab.get(), "tokenizer.ggml.model");
  const std::int64_t tokens = gguf_find_key(vocab.get(), "tokenizer.ggml.tokens");
  if (model < 0 || gguf_get_kv_type(vocab.get(), model) != GGUF_TYPE_STRING) {
    throw Error("vocab file has no tokenizer.ggml.model: " + path);
  }
  if (tokens < 0 || gguf_get_kv_type(vocab.get(), tokens) != GGUF_TYPE_ARRAY ||
      gguf_get_arr_type(vocab.get(), tokens) != GGUF_TYPE_STRING ||
      gguf_get_arr_n(vocab.get(), tokens) == 0) {
    throw Error("vocab file has no tokenizer.ggml.tokens: " + path);
  }
  const std::size_t n = gguf_get_arr_n(vocab.get(), tokens);
  if (n > (1u << 24)) throw Error("vocab file has an implausible token count: " + path);
  n_vocab = static_cast<std::uint32_t>(n);

  // Keep only the tokenizer.* keys.
  gguf_ptr kept(gguf_init_empty());
  gguf_set_kv(kept.get(), vocab.get());
  for (std::int64_t i = gguf_get_n_kv(kept.get()) - 1; i >= 0; --i) {
    const std::string key = gguf_get_key(kept.get(), i);
    if (!key.starts_with("tokenizer.")) gguf_remove_key(kept.get(), key.c_str());
  }
  return kept;
}

} // namespace

std::optional<ModelSpec> preset_spec(const std::string& name) {
  ModelSpec s;
  s.preset = name;
  if (name == "tiny") {
    s.n_layer = 2;
    s.n_embd = 64;
    s.n_ff = 128;
    s.n_head = 4;
    s.n_head_kv = 2;
    s.n_ctx = 2048;
    s.type = WeightType::f32;
    return s;
  }
  if (name == "tinyllama-shape") { // TinyLlama/TinyLlama-1.1B-Chat-v1.0
    s.n_layer = 22;
    s.n_embd = 2048;
    s.n_ff = 5632;
    s.n_head = 32;
    s.n_head_kv = 4;
    s.n_ctx = 2048;
    s.rope_freq_base = 10000.0f;
    s.rms_eps = 1e-5f;
    s.type = WeightType::f16;
    return s;
  }
  return std::nullopt;
}

void validate(const ModelSpec& s) {
  if (s.arch.empty() ||
      s.arch.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") != std::string::npos) {
    throw Error("invalid --arch '" + s.arch + "': use lowercase letters, digits, '_' or '-'");
  }
  if (s.n_layer == 0 || s.n_embd == 0 || s.n_ff == 0 || s.n_head == 0 || s.n_head_kv == 0 || s.n_ctx == 0) {
    throw Error("model dimensions must be positive");
  }
  if (s.n_embd % s.n_head != 0) {
    throw Error("n_embd (" + std::to_string(s.n_embd) + ") must be a multiple of n_head (" +
                std::to_string(s.n_head) + ")");
  }
  if (s.n_head % s.n_head_kv != 0) {
    throw Error("n_head (" + std::to_string(s.n_head) + ") must be a multiple of n_head_kv (" +
                std::to_string(s.n_head_kv) + ")");
  }
  if ((s.n_embd / s.n_head) % 2 != 0) {
    throw Error("head dimension n_embd/n_head (" + std::to_string(s.n_embd / s.n_head) +
                ") must be even for RoPE");
  }
  if (s.threads == 0) throw Error("threads must be positive");
}

WriteResult write_model(const ModelSpec& spec, const std::string& vocab_path, const std::string& out_path) {
  validate(spec);
  WriteResult result;
  gguf_ptr tokenizer = load_vocab(vocab_path, result.n_vocab);

  const std::string& a = spec.arch;
  gguf_ptr ctx(gguf_init_empty());
  gguf_context* g = ctx.get();
  gguf_set_val_str(g, "general.architecture", a.c_str());
  const std::string name = "tinyroute-random-" + spec.preset + "-seed" + std::to_string(spec.seed);
  gguf_set_val_str(g, "general.name", name.c_str());
  gguf_set_val_u32(g, "general.file_type", spec.type == WeightType::f16 ? kFtypeMostlyF16 : kFtypeAllF32);
  gguf_set_val_u32(g, (a + ".vocab_size").c_str(), result.n_vocab);
  gguf_set_val_u32(g, (a + ".context_length").c_str(), spec.n_ctx);
  gguf_set_val_u32(g, (a + ".embedding_length").c_str(), spec.n_embd);
  gguf_set_val_u32(g, (a + ".block_count").c_str(), spec.n_layer);
  gguf_set_val_u32(g, (a + ".feed_forward_length").c_str(), spec.n_ff);
  gguf_set_val_u32(g, (a + ".attention.head_count").c_str(), spec.n_head);
  gguf_set_val_u32(g, (a + ".attention.head_count_kv").c_str(), spec.n_head_kv);
  gguf_set_val_u32(g, (a + ".rope.dimension_count").c_str(), spec.n_embd / spec.n_head);
  gguf_set_val_f32(g, (a + ".attention.layer_norm_rms_epsilon").c_str(), spec.rms_eps);
  gguf_set_val_f32(g, (a + ".rope.freq_base").c_str(), spec.rope_freq_base);
  gguf_set_kv(g, tokenizer.get());
  if (spec.chat_template) {
    gguf_set_val_str(g, "tokenizer.chat_template", kTinyLlamaChatTemplate);
  } else {
    gguf_remove_key(g, "tokenizer.chat_template");
  }

  // Tensor descriptors only (no data): gguf needs them for the header and offsets.
  const std::vector<TensorDef> defs = tensor_defs(spec, result.n_vocab);
  ggml_context_ptr meta(ggml_init(ggml_init_params{/*mem_size=*/ggml_tensor_overhead() * (defs.size() + 1),
                                                   /*mem_buffer=*/nullptr, /*no_alloc=*/true}));
  if (!meta) throw Error("ggml_init failed");
  for (const TensorDef& d : defs) {
    ggml_tensor* t = d.ne1 == 1 ? ggml_new_tensor_1d(meta.get(), d.type, d.ne0)
                                : ggml_new_tensor_2d(meta.get(), d.type, d.ne0, d.ne1);
    ggml_set_name(t, d.name.c_str());
    gguf_add_tensor(g, t);
  }

  File out(out_path);
  std::vector<unsigned char> header(gguf_get_meta_size(g));
  gguf_get_meta_data(g, header.data());
  out.write(header.data(), header.size());

  const std::size_t alignment = gguf_get_alignment(g);
  const std::uint64_t data_offset = out.written();
  for (std::size_t i = 0; i < defs.size(); ++i) {
    const auto id = static_cast<std::int64_t>(i);
    if (data_offset + gguf_get_tensor_offset(g, id) != out.written()) {
      throw Error("internal error: tensor offset mismatch for " + defs[i].name);
    }
    write_tensor(out, defs[i], spec.seed, spec.threads);
    out.pad(alignment);
  }
  result.n_tensors = defs.size();
  result.n_bytes = out.written();
  out.close();
  return result;
}

} // namespace tinyroute::mkmodel
