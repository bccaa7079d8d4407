// tinyroute classify "text" / route "text" / analyze "text": one request through the internal model.
// classify and route take serve's routing path (serve/route-request.h): the same rules, decision cache
// and deadline, so they answer exactly as POST /v1/classify and /v1/route do, in the same JSON.
#include <iostream>
#include <memory>

#include "cli.h"
#include "output.h"
#include "serve/route-request.h"
#include "tinyroute/from-config.h"

namespace tinyroute::cli {

namespace {

struct ClassifyOptions {
  CommonOptions common;
  std::string text;
};

CLI::App* add_text_command(CLI::App& app, const char* name, const char* help, ClassifyOptions& o) {
  auto* cmd = app.add_subcommand(name, help);
  cmd->add_option("text", o.text, "The request text (any language)")->required();
  add_config_option(cmd, o.common);
  add_model_option(cmd, o.common);
  add_json_flag(cmd, o.common);
  return cmd;
}

} // namespace

void register_classify_commands(CLI::App& app, Action& action) {
  auto classify = std::make_shared<ClassifyOptions>();
  add_text_command(app, "classify", "Classify a request into one of the configured categories", *classify)
      ->callback([&action, classify] {
        action = [o = classify] {
          const Config config = load_cli_config(o->common);
          Engine engine(engine_params_from(config.internal_model));
          const Analyzer analyzer(engine, config);
          const ClassifyResult r = serve::classify_request(analyzer, o->text);
          if (o->common.json) {
            std::cout << classify_json(r).dump(2) << "\n";
          } else {
            std::cout << classify_text(r);
          }
          return 0;
        };
      });

  auto analyze = std::make_shared<ClassifyOptions>();
  add_text_command(app, "analyze",
                   "Every internal decision in one pass: category, agent, metadata fields, selected model",
                   *analyze)
      ->callback([&action, analyze] {
        action = [o = analyze] {
          const Config config = load_cli_config(o->common);
          Engine engine(engine_params_from(config.internal_model));
          Analyzer analyzer(engine, config);
          AnalyzeResult r = analyzer.analyze(o->text).get();
          if (o->common.json) {
            std::cout << analyze_json(r).dump(2) << "\n";
          } else {
            std::cout << analyze_text(r);
          }
          return 0;
        };
      });

  auto route = std::make_shared<ClassifyOptions>();
  add_text_command(app, "route",
                   "Pick the large model that should answer a request, as serve's /v1/route does (rules, "
                   "the model, the default category)",
                   *route)
      ->callback([&action, route] {
        action = [o = route] {
          const Config config = load_cli_config(o->common);
          Engine engine(engine_params_from(config.internal_model));
          const Analyzer analyzer(engine, config);
          ChatRequest request;
          ChatMessage message;
          message.role = "user";
          message.content.emplace_back().text = o->text;
          request.messages.push_back(std::move(message));
          const RouteDecision d = serve::route_request(analyzer, engine, config, request, {});
          if (o->common.json) {
            std::cout << to_json(d).dump(2) << "\n";
          } else {
            std::cout << route_decision_text(d);
          }
          return 0;
        };
      });
}

} // namespace tinyroute::cli
