// tinyroute bus --config FILE: the dispatcher on the Redis Streams agent bus (the config's `bus:`
// section). SIGINT / SIGTERM stop it at once: the engine work in flight is cancelled and the entries it
// was for stay pending in the group (delivered after a restart). SIGHUP reloads the bus section; a bad
// config is refused with its errors and the running one stays. --status prints the bus as Redis sees it.
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <optional>
#include <pthread.h>
#include <thread>

#include <spdlog/spdlog.h>

#include "cli.h"
#include "output.h"
#include "tinyroute/bus.h"
#include "tinyroute/classify.h"
#include "tinyroute/error.h"
#include "tinyroute/from-config.h"

namespace tinyroute::cli {

namespace {

struct BusOptions {
  CommonOptions common;
  bool status = false;
};

Config bus_config(const BusOptions& o) {
  Config config = load_cli_config(o.common);
  if (!config.bus.enabled) {
    throw Error(ErrorCode::config_invalid, config.source_path +
                                               ": has no bus section; add `bus:` (at least `redis: "
                                               "redis://HOST:PORT`) to run the message bus");
  }
  return config;
}

// SIGHUP: the file is read and validated again; only a valid one with a bus section is taken.
void reload(const BusOptions& o, BusDispatcher* running) {
  spdlog::info("SIGHUP: reloading {}", config_path(o.common));
  if (running == nullptr) {
    spdlog::warn("SIGHUP ignored: the dispatcher is still starting; send it again once it runs");
    return;
  }
  try {
    const Config next = bus_config(o);
    for (const auto& line : running->reload(next)) spdlog::warn("{}", line);
  } catch (const std::exception& e) {
    spdlog::error("reload refused; the running config stays: {}", e.what());
  }
}

int run_bus(const BusOptions& o) {
  if (o.status) {
    const nlohmann::json s = bus_status(bus_config(o));
    std::cout << (o.common.json ? s.dump(2) + "\n" : bus_status_text(s));
    return 0;
  }
  // Signals are taken by a waiting thread (sigwait), blocked everywhere else from the start.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  spdlog::set_level(spdlog::level::info);

  const Config config = bus_config(o);
  // The waiter runs from the start: a stop while the model loads ends the process at once (nothing
  // has been read yet); later it stops the dispatcher, cancelling its engine work. SIGHUP reloads.
  std::mutex mutex;
  BusDispatcher* running = nullptr;
  bool finished = false;
  std::thread waiter([&] {
    for (;;) {
      int sig = 0;
      if (sigwait(&signals, &sig) != 0) continue;
      std::lock_guard lock(mutex);
      if (finished) return;
      if (sig == SIGHUP) {
        reload(o, running);
        continue;
      }
      spdlog::info("{}: stopping; cancelling the engine work in flight (its entries stay pending)",
                   sig == SIGINT ? "SIGINT" : "SIGTERM");
      if (running == nullptr) std::_Exit(0);
      running->stop();
      return;
    }
  });
  const auto join_waiter = [&] {
    {
      std::lock_guard lock(mutex);
      finished = true;
      running = nullptr;
    }
    pthread_kill(waiter.native_handle(), SIGTERM); // wakes it if no signal came; it returns at once
    waiter.join();
  };
  std::optional<BusCounters> counters;
  std::optional<EngineStats> engine_work; // after the prefixes were decoded: the messages' own work
  try {
    std::shared_ptr<Engine> engine;
    if (config.bus.mode == BusMode::model)
      engine = std::make_shared<Engine>(engine_params_from(config.internal_model));
    BusDispatcher dispatcher(config, engine);
    const EngineStats at_start = engine ? engine->stats() : EngineStats{};
    {
      std::lock_guard lock(mutex);
      running = &dispatcher;
    }
    struct Unpublish { // the waiter never sees the dispatcher after it is gone, however run() ends
      std::mutex& m;
      BusDispatcher*& r;
      ~Unpublish() {
        std::lock_guard lock(m);
        r = nullptr;
      }
    } unpublish{mutex, running};
    dispatcher.run();
    counters = dispatcher.counters();
    if (engine) {
      EngineStats s = engine->stats();
      s.tokens -= at_start.tokens;
      s.decodes -= at_start.decodes;
      s.requests -= at_start.requests;
      s.generate_requests -= at_start.generate_requests;
      engine_work = s;
    }
    join_waiter();
  } catch (...) {
    if (waiter.joinable()) join_waiter();
    throw;
  }
  const BusCounters c = *counters;
  spdlog::info("stopped: {} in, {} out, {} dead-lettered, {} duplicates, {} cancelled (left pending)", c.in,
               c.out, c.dead_lettered, c.duplicates, c.cancelled);
  if (engine_work) // bench/bus.sh reads tokens per message from this line
    spdlog::info(
        "engine: {} requests ({} generate), {} tokens decoded in {} decodes, {} messages generated for",
        engine_work->requests, engine_work->generate_requests, engine_work->tokens, engine_work->decodes,
        c.generated);
  return 0;
}

} // namespace

void register_bus_command(CLI::App& app, Action& action) {
  auto o = std::make_shared<BusOptions>();
  auto* cmd = app.add_subcommand("bus", "Dispatch agent messages on the Redis Streams bus (config `bus:`)");
  add_config_option(cmd, o->common);
  add_model_option(cmd, o->common);
  cmd->add_flag("--status", o->status, "Print the bus (lengths, group lag and pending, counters, presence)");
  add_json_flag(cmd, o->common);
  cmd->callback([&action, o] { action = [o] { return run_bus(*o); }; });
}

} // namespace tinyroute::cli
