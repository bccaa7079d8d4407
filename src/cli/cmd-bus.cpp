// tinyroute bus --config FILE: the dispatcher on the Redis Streams agent bus (the config's `bus:`
// section). SIGINT / SIGTERM stop it after the batch in hand; --status prints the bus as Redis sees it.
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <optional>
#include <pthread.h>
#include <thread>

#include <spdlog/spdlog.h>

#include "cli.h"
#include "tinyroute/bus.h"
#include "tinyroute/classify.h"
#include "tinyroute/error.h"

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
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  spdlog::set_level(spdlog::level::info);

  const Config config = bus_config(o);
  // The waiter runs from the start: a signal while the model loads ends the process at once (nothing
  // has been read yet); later it stops the dispatcher after the batch in hand.
  std::mutex mutex;
  BusDispatcher* running = nullptr;
  bool finished = false;
  std::thread waiter([&] {
    int sig = 0;
    while (sigwait(&signals, &sig) != 0) {
    }
    std::lock_guard lock(mutex);
    if (finished) return;
    spdlog::info("{}: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    if (running == nullptr) std::_Exit(0);
    running->stop();
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
  try {
    std::shared_ptr<Engine> engine;
    if (config.bus.mode == BusMode::model)
      engine = std::make_shared<Engine>(engine_params_from(config.internal_model));
    BusDispatcher dispatcher(config, engine);
    {
      std::lock_guard lock(mutex);
      running = &dispatcher;
    }
    dispatcher.run();
    counters = dispatcher.counters();
    join_waiter();
  } catch (...) {
    if (waiter.joinable()) join_waiter();
    throw;
  }
  const BusCounters c = *counters;
  spdlog::info("stopped: {} in, {} out, {} dead-lettered, {} duplicates", c.in, c.out, c.dead_lettered,
               c.duplicates);
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
