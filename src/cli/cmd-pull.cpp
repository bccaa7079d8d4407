// tinyroute pull [NAME|URL]: download a GGUF model into the cache, with a progress line on terminals.
#include <chrono>
#include <iostream>
#include <memory>
#include <optional>

#include "cli.h"
#include "output.h"
#include "tinyroute/pull.h"

namespace tinyroute::cli {

namespace {

struct PullCliOptions {
  std::string name;
  std::string sha256;
  std::string cache_dir;
  bool json = false;
};

// Redraws at most ten times a second; speed is measured over this run's bytes only (a resumed
// prefix is not "speed").
class ProgressLine {
public:
  void operator()(uint64_t done, uint64_t total) {
    const auto now = std::chrono::steady_clock::now();
    if (!start_) {
      start_ = now;
      first_ = done;
    }
    const bool final = total > 0 && done == total;
    if (!final && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    const double s = std::chrono::duration<double>(now - *start_).count();
    const double speed = s > 0.2 ? static_cast<double>(done - first_) / s : 0;
    std::cerr << "\r" << render_progress(done, total, speed, terminal_width() - 1) << "\x1b[K" << std::flush;
    drawn_ = true;
  }
  ~ProgressLine() {
    if (drawn_) std::cerr << "\n";
  }

private:
  std::optional<std::chrono::steady_clock::time_point> start_;
  std::chrono::steady_clock::time_point last_{};
  uint64_t first_ = 0;
  bool drawn_ = false;
};

int run_pull(const PullCliOptions& o) {
  PullOptions p;
  p.name_or_url = o.name;
  p.expected_sha256 = o.sha256;
  p.cache_dir = o.cache_dir;
  std::optional<ProgressLine> line;
  if (stderr_is_tty()) {
    line.emplace();
    p.progress = [&line](uint64_t done, uint64_t total) { (*line)(done, total); };
  }
  PullResult r = pull_model(p);
  line.reset();
  if (o.json) {
    std::cout << json{{"path", r.path},
                      {"bytes", r.bytes},
                      {"sha256", r.sha256},
                      {"verified", r.verified},
                      {"sha256_source", r.sha256_source},
                      {"already_present", r.already_present},
                      {"resumed", r.resumed}}
                     .dump(2)
              << "\n";
    return 0;
  }
  std::cout << r.path << "\n";
  std::cout << "sha256 " << r.sha256
            << (r.verified ? "  (verified against " + r.sha256_source + ")"
                           : "  (recorded; no published checksum)")
            << "\n";
  std::cout << format_bytes(r.bytes) << (r.already_present ? ", already in the cache" : "")
            << (r.resumed ? ", resumed" : "") << "\n";
  return 0;
}

} // namespace

void register_pull_command(CLI::App& app, Action& action) {
  auto o = std::make_shared<PullCliOptions>();
  std::string names;
  for (const auto& m : known_models()) names += std::string(names.empty() ? "" : ", ") + std::string(m.name);
  auto* cmd = app.add_subcommand("pull", "Download a GGUF model into the local cache (known: " + names + ")");
  cmd->add_option("model", o->name,
                  "A known model name or an http(s) URL of a .gguf file (default: " +
                      std::string(kDefaultModelName) + ")");
  cmd->add_option("--sha256", o->sha256, "Expected sha256 (64 hex digits)");
  cmd->add_option("--cache-dir", o->cache_dir, "Where models live (default: " + default_cache_dir() + ")");
  cmd->add_flag("--json", o->json, "Print JSON");
  cmd->callback([&action, o] { action = [o] { return run_pull(*o); }; });
}

} // namespace tinyroute::cli
