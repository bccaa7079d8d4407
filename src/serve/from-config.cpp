#include "tinyroute/from-config.h"

#include "tinyroute/pull.h"
#include "tinyroute/rules.h"

namespace tinyroute {

EngineParams engine_params_from(const InternalModelConfig& internal) {
  EngineParams p = engine_default_params();
  p.model_path = resolve_model_path(internal.model);
  p.n_threads = internal.threads;
  p.n_ctx = internal.context;
  p.n_contexts = internal.contexts;
  p.n_batch = internal.batch;
  p.n_ubatch = internal.ubatch;
  p.repack = internal.repack;
  p.use_mmap = internal.mmap.value_or(!internal.repack);
  p.flash_attn = internal.flash_attn;
  p.hidden_layer = internal.hidden_layer;
  p.n_parallel = internal.parallel;
  p.n_conversations = internal.conversations;
  p.state_dir = internal.state_dir;
  return p;
}

std::shared_ptr<Engine> open_engine(const Config& config) {
  return std::make_shared<Engine>(engine_params_from(config.internal_model));
}

Config load_checked_config(const std::string& path) {
  Config config = load_config(path);
  (void)RuleSet(config.rules, config.source_path);
  return config;
}

} // namespace tinyroute
