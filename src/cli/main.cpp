// tinyroute: the command line over libtinyroute. Each command group registers itself (cmd-*.cpp);
// main parses, runs the chosen command and turns failures into one-line messages and exit codes:
// 0 ok, 1 the work failed, 2 the command line was wrong.
#include <iostream>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "cli.h"
#include "output.h"
#include "tinyroute/error.h"

using namespace tinyroute;
using namespace tinyroute::cli;

int main(int argc, char** argv) {
  // Logs go to stderr so that stdout stays the command's answer (JSON or table).
  spdlog::set_default_logger(spdlog::stderr_color_mt("tinyroute"));
  spdlog::set_level(spdlog::level::warn);

  CLI::App app{"tinyroute: classify requests with a small in-process model and route them to the large "
               "models that answer",
               "tinyroute"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "tinyroute " TINYROUTE_VERSION);

  Action action;
  register_agent_commands(app, action);
  register_bus_command(app, action);
  register_classify_commands(app, action);
  register_config_commands(app, action);
  register_eval_command(app, action);
  register_pull_command(app, action);
  register_serve_command(app, action);
  register_status_command(app, action);
  register_train_command(app, action);
  bool version_json = false;
  auto* version = app.add_subcommand("version", "Print the version");
  version->add_flag("--json", version_json, "Print JSON");
  version->callback([&] {
    action = [&] {
      if (version_json) {
        std::cout << json{{"version", TINYROUTE_VERSION}}.dump() << "\n";
      } else {
        std::cout << "tinyroute " TINYROUTE_VERSION "\n";
      }
      return 0;
    };
  });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e); // --help, --version
    std::cerr << "tinyroute: " << e.what() << "\nRun 'tinyroute --help' for usage.\n";
    return 2;
  }
  try {
    return action ? action() : 0;
  } catch (const UsageError& e) {
    std::cerr << "tinyroute: " << e.what() << "\nRun 'tinyroute --help' for usage.\n";
    return 2;
  } catch (const Error& e) {
    std::cerr << "tinyroute: error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "tinyroute: error: " << e.what() << "\n";
    return 1;
  }
}
