// tinyroute agent route "text" / agent format "text" / metadata "text": the agent policies (which
// agent should receive a message, the agent-message.v1 envelope, request metadata) on one message.
#include <iostream>
#include <memory>
#include <optional>

#include "cli.h"
#include "output.h"
#include "tinyroute/agent-message.h"
#include "tinyroute/agent-router.h"
#include "tinyroute/from-config.h"
#include "tinyroute/metadata.h"

namespace tinyroute::cli {

namespace {

struct AgentOptions {
  CommonOptions common;
  std::string text;
  // agent format's envelope overrides
  std::optional<std::string> from, to, reply_to, correlation_id;
  std::optional<int> hop_count;
};

CLI::App* add_text_command(CLI::App* parent, const char* name, const char* help, AgentOptions& o,
                           bool json_flag) {
  auto* cmd = parent->add_subcommand(name, help);
  cmd->add_option("text", o.text, "The message (any language; free text or a JSON object)")->required();
  add_config_option(cmd, o.common);
  add_model_option(cmd, o.common);
  if (json_flag) add_json_flag(cmd, o.common);
  return cmd;
}

std::shared_ptr<Engine> engine_for(const Config& config) {
  return std::make_shared<Engine>(engine_params_from(config.internal_model));
}

int run_route(const AgentOptions& o) {
  const Config config = load_cli_config(o.common);
  auto engine = engine_for(config);
  const AgentRouter router(*engine, config);
  const AgentRoute r = router.route_agent(o.text).get();
  std::cout << (o.common.json ? agent_route_json(r).dump(2) + "\n" : agent_route_text(r));
  return 0;
}

int run_format(const AgentOptions& o) {
  const Config config = load_cli_config(o.common);
  auto engine = engine_for(config);
  const MessageFormatter formatter(*engine, config);
  MessageInput input;
  input.text = o.text;
  input.from = o.from;
  input.to = o.to;
  input.reply_to = o.reply_to;
  input.correlation_id = o.correlation_id;
  input.hop_count = o.hop_count;
  std::cout << formatter.format_agent_message(std::move(input)).get().json.dump(2) << "\n";
  return 0;
}

int run_metadata(const AgentOptions& o) {
  const Config config = load_cli_config(o.common);
  auto engine = engine_for(config);
  const MetadataExtractor extractor(*engine, config);
  const MessageMetadata m = extractor.extract_metadata(o.text).get();
  std::cout << (o.common.json ? metadata_json(m).dump(2) + "\n" : metadata_text(m));
  return 0;
}

} // namespace

void register_agent_commands(CLI::App& app, Action& action) {
  auto* agent = app.add_subcommand("agent", "Route a message between the configured agents, or wrap it in an "
                                            "agent-message.v1 envelope");
  agent->require_subcommand(1);

  auto route = std::make_shared<AgentOptions>();
  add_text_command(agent, "route", "Which configured agent should receive a message", *route, true)
      ->callback([&action, route] { action = [o = route] { return run_route(*o); }; });

  auto format = std::make_shared<AgentOptions>();
  auto* fmt = add_text_command(agent, "format", "Print the agent-message.v1 envelope for a message (JSON)",
                               *format, false);
  fmt->add_option("--from", format->from, "Sender (default: user, or the message's own \"from\")");
  fmt->add_option("--to", format->to, "Recipient, a configured agent (default: chosen by agent routing)");
  fmt->add_option("--reply-to", format->reply_to, "Where answers go");
  fmt->add_option("--correlation-id", format->correlation_id, "Conversation id (default: the message's id)");
  fmt->add_option("--hop-count", format->hop_count, "Hops taken so far (default 0)")
      ->check(CLI::NonNegativeNumber);
  fmt->callback([&action, format] { action = [o = format] { return run_format(*o); }; });

  auto metadata = std::make_shared<AgentOptions>();
  add_text_command(&app, "metadata",
                   "Extract request metadata (language, intent, urgency, topics, tools, complexity)",
                   *metadata, true)
      ->callback([&action, metadata] { action = [o = metadata] { return run_metadata(*o); }; });
}

} // namespace tinyroute::cli
