// tinyroute serve: the Server (tinyroute/server.h) under the command line's signals. SIGHUP reloads the
// config (a bad one is logged and ignored); SIGTERM / SIGINT stop accepting and drain in-flight
// requests, then cancel the engine work of those still running (they answer 503). Signals are taken
// synchronously by the main thread (sigwait), so no handler and no global state are involved.
#include <csignal>
#include <optional>
#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "cli.h"
#include "tinyroute/server.h"

namespace tinyroute::cli {

namespace {

struct ServeOptions {
  CommonOptions common;
  std::optional<std::string> host; // unset: the config's gateway.listen (default 127.0.0.1:8080)
  std::optional<int> port;
  int threads = 2;
  double drain_s = 10;
};

// Each proxied stream holds two sockets; the usual soft limit of 1024 descriptors would cap a gateway at
// ~500 concurrent streams, so take what the hard limit allows (as nginx's worker_rlimit_nofile does).
void raise_open_file_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur >= lim.rlim_max) return;
  const rlim_t before = lim.rlim_cur;
  lim.rlim_cur = lim.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &lim) == 0)
    spdlog::debug("open file limit raised from {} to {}", before, lim.rlim_cur);
}

int run_serve(const ServeOptions& o) {
  // Block the signals before any thread exists so every thread inherits the mask and only the
  // sigwait below ever sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  spdlog::set_level(spdlog::level::info);
  raise_open_file_limit();

  ServerOptions options;
  options.host = o.host;
  options.port = o.port;
  options.threads = o.threads;
  options.on_warmup_failed = [] { ::kill(::getpid(), SIGTERM); }; // the sigwait below stops the server
  Server server(load_cli_config(o.common), std::move(options));
  server.start();
  spdlog::info(
      "tinyroute {} serving on http://{}:{} (OpenAI /v1/chat/completions, /v1/responses, /v1/embeddings, "
      "Anthropic /v1/messages, /v1/messages/count_tokens, Ollama /api/chat; /v1/analyze, /v1/classify, "
      "/v1/route, /v1/agents/route, /v1/agents/messages, "
      "/v1/metadata, /health, /metrics)",
      TINYROUTE_VERSION, server.host(), server.port());

  for (;;) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGHUP) {
      spdlog::info("SIGHUP: reloading {}", config_path(o.common));
      try {
        server.reload(load_cli_config(o.common));
        spdlog::info("reloaded");
      } catch (const std::exception& e) {
        spdlog::error("reload failed; still serving the previous config: {}", e.what());
      }
      continue;
    }
    spdlog::info("{}: stopping; draining in-flight requests for up to {:.0f} s",
                 sig == SIGINT ? "SIGINT" : "SIGTERM", o.drain_s);
    const bool warmed = server.stop(std::chrono::milliseconds(static_cast<long>(o.drain_s * 1000)));
    spdlog::info("stopped");
    return warmed ? 0 : 1;
  }
}

} // namespace

void register_serve_command(CLI::App& app, Action& action) {
  auto o = std::make_shared<ServeOptions>();
  auto* cmd = app.add_subcommand("serve", "Run the routing gateway (OpenAI, Anthropic and Ollama APIs)");
  add_config_option(cmd, o->common);
  add_model_option(cmd, o->common);
  cmd->add_option("--host", o->host,
                  "Address to listen on (default: the config's gateway.listen, else 127.0.0.1)");
  cmd->add_option("--port,-p", o->port,
                  "Port to listen on, 0 = any free port (default: gateway.listen, else 8080)")
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--threads", o->threads, "Network threads")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd->add_option("--drain-seconds", o->drain_s,
                  "On SIGTERM, how long in-flight requests may finish before their engine work is cancelled")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->callback([&action, o] { action = [o] { return run_serve(*o); }; });
}

} // namespace tinyroute::cli
