// tinyroute-mkmodel: generates llama-architecture GGUF models with seeded random weights.
//
//   tinyroute-mkmodel --vocab VOCAB.gguf --out OUT.gguf [--preset tiny|tinyllama-shape] [--seed N]
//                     [--arch NAME] [--n-layer N --n-embd N --n-ff N --n-head N --n-head-kv N --n-ctx N]
//                     [--type f32|f16] [--quantize Q4_K_M --llama-quantize PATH] [--threads N]
//                     [--no-chat-template]
#include "model_writer.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace mk = tinyroute::mkmodel;

namespace {

// Runs `llama-quantize in out type threads`; its chatter goes to our stderr so stdout stays ours.
void run_quantize(const std::string& tool, const std::string& in, const std::string& out,
                  const std::string& type, unsigned threads) {
  std::vector<std::string> args = {tool, in, out, type, std::to_string(threads)};
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, STDERR_FILENO, STDOUT_FILENO);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, tool.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw mk::Error("cannot run " + tool + ": " + std::strerror(rc));

  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw mk::Error("waitpid failed: " + std::string(std::strerror(errno)));
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    const std::string how = WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                                              : "signal " + std::to_string(WTERMSIG(status));
    throw mk::Error("llama-quantize failed (" + how + ") quantizing to " + type);
  }
}

// Strict decimal: CLI11's own integer conversion takes "-1" for unsigned (wrapping) and "010" as octal.
std::uint64_t parse_number(const std::string& option, const std::string& text, std::uint64_t min,
                           std::uint64_t max) {
  std::uint64_t v = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc() || ptr != end) {
    throw mk::Error(option + ": '" + text + "' is not a non-negative decimal integer");
  }
  if (v < min || v > max) {
    throw mk::Error(option + ": " + text + " is out of range [" + std::to_string(min) + ", " +
                    std::to_string(max) + "]");
  }
  return v;
}

int run(int argc, char** argv) {
  CLI::App app{
      "Generate a llama-architecture GGUF model with seeded random weights (for tests and benchmarks)",
      "tinyroute-mkmodel"};
  std::string vocab;
  std::string out;
  std::string preset = "tiny";
  std::string arch = "llama";
  std::string type;
  std::string quantize;
  std::string llama_quantize;
  bool no_chat_template = false;
  mk::ModelSpec spec; // the preset's, once parsed; then the overrides below
  // Numbers are taken as text and parsed strictly once the preset is known.
  struct Number {
    const char* option;
    const char* help;
    std::uint64_t min, max;
    std::function<void(std::uint64_t)> set;
    std::string text;
  };
  auto u32 = [](std::uint32_t& field) {
    return [&field](std::uint64_t v) { field = static_cast<std::uint32_t>(v); };
  };
  std::vector<Number> numbers = {
      {"--seed",
       "Weight seed (default 1; same seed => identical file)",
       0,
       UINT64_MAX,
       [&spec](std::uint64_t v) { spec.seed = v; },
       {}},
      {"--n-layer", "Override: transformer blocks", 1, 1024, u32(spec.n_layer), {}},
      {"--n-embd", "Override: embedding width", 1, 1u << 20, u32(spec.n_embd), {}},
      {"--n-ff", "Override: feed-forward width", 1, 1u << 20, u32(spec.n_ff), {}},
      {"--n-head", "Override: attention heads", 1, 4096, u32(spec.n_head), {}},
      {"--n-head-kv", "Override: key/value heads", 1, 4096, u32(spec.n_head_kv), {}},
      {"--n-ctx", "Override: training context length", 1, 1u << 24, u32(spec.n_ctx), {}},
      {"--threads",
       "Threads for generation and llama-quantize (default: all cores)",
       1,
       1024,
       [&spec](std::uint64_t v) { spec.threads = static_cast<unsigned>(v); },
       {}},
  };

  app.add_option("--vocab", vocab, "GGUF with the tokenizer.* keys to copy (Llama SPM vocabulary)")
      ->required();
  app.add_option("--out", out, "Output GGUF path")->required();
  app.add_option("--preset", preset, "Model shape")
      ->check(CLI::IsMember({"tiny", "tinyllama-shape"}))
      ->capture_default_str();
  app.add_option("--arch", arch, "general.architecture and metadata key prefix")->capture_default_str();
  for (Number& n : numbers) app.add_option(n.option, n.text, n.help);
  app.add_option("--type", type, "Weight matrix type (default: f32 for tiny, f16 for tinyllama-shape)")
      ->check(CLI::IsMember({"f32", "f16"}));
  auto* q = app.add_option("--quantize", quantize, "Quantize with llama-quantize to this type, e.g. Q4_K_M");
  auto* lq = app.add_option("--llama-quantize", llama_quantize, "Path of the llama-quantize binary");
  q->needs(lq);
  lq->needs(q);
  app.add_flag("--no-chat-template", no_chat_template, "Do not set tokenizer.chat_template");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e); // --help
    std::cerr << "tinyroute-mkmodel: error: " << e.what() << "\nRun with --help for usage.\n";
    return 1;
  }

  spec = *mk::preset_spec(preset);
  spec.arch = arch;
  spec.chat_template = !no_chat_template;
  spec.threads = std::max(1u, std::thread::hardware_concurrency());
  for (const Number& n : numbers) {
    if (app.count(n.option) != 0) n.set(parse_number(n.option, n.text, n.min, n.max));
  }
  if (!type.empty()) spec.type = type == "f16" ? mk::WeightType::f16 : mk::WeightType::f32;
  mk::validate(spec);

  if (quantize.empty()) {
    const mk::WriteResult r = mk::write_model(spec, vocab, out);
    std::cout << "wrote " << out << " (" << r.n_tensors << " tensors, " << r.n_bytes << " bytes, vocab "
              << r.n_vocab << ")\n";
    return 0;
  }

  if (quantize.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") !=
      std::string::npos) {
    throw mk::Error("invalid --quantize type '" + quantize + "'");
  }
  if (::access(llama_quantize.c_str(), X_OK) != 0) {
    throw mk::Error("llama-quantize is not an executable file: " + llama_quantize);
  }
  const std::string tmp = out + (spec.type == mk::WeightType::f16 ? ".f16.tmp" : ".f32.tmp");
  std::error_code ec;
  const mk::WriteResult r = mk::write_model(spec, vocab, tmp); // removes its own partial file on failure
  std::cerr << "tinyroute-mkmodel: wrote " << tmp << " (" << r.n_bytes << " bytes); quantizing to "
            << quantize << "\n";
  try {
    run_quantize(llama_quantize, tmp, out, quantize, spec.threads);
  } catch (...) {
    std::filesystem::remove(tmp, ec);
    std::filesystem::remove(out, ec); // whatever llama-quantize left is not a model
    throw;
  }
  std::filesystem::remove(tmp, ec);
  std::cout << "wrote " << out << " (" << quantize << ", " << std::filesystem::file_size(out, ec)
            << " bytes)\n";
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "tinyroute-mkmodel: error: " << e.what() << "\n";
    return 1;
  }
}
