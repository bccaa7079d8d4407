#include "message/field-generator.h"

#include "message/schema-grammar.h"
#include "message/schema-validate.h"
#include "tinyroute/error.h"

namespace tinyroute {

namespace {

// Where the message goes in the rendered chat template (see LabelScorer: the same split).
constexpr const char* kSlot = "\x01TINYROUTE_SLOT\x01";

} // namespace

FieldGenerator::FieldGenerator(Engine& engine, std::string prefix_name, const std::string& instructions,
                               nlohmann::json schema, std::vector<std::string> order, int max_query_tokens,
                               int max_tokens)
    : engine_(engine), prefix_name_(std::move(prefix_name)), schema_(std::move(schema)),
      order_(std::move(order)), max_query_tokens_(max_query_tokens), max_tokens_(max_tokens) {
  if (max_query_tokens_ < 8) throw Error(ErrorCode::invalid_argument, "max_query_tokens must be >= 8");
  if (max_tokens_ < 1) throw Error(ErrorCode::invalid_argument, "max_tokens must be >= 1");
  grammar_ = gbnf_from_schema(schema_, order_);
  engine_.validate_grammar(grammar_);
  std::string keys;
  for (const auto& k : order_) keys += (keys.empty() ? "" : ", ") + k;
  const std::string sys =
      instructions + "\n\nAnswer with one JSON object with the keys " + keys + ", in that order.";
  const std::string rendered =
      engine_.apply_chat_template({{"system", sys}, {"user", std::string("Message:") + kSlot}}, true);
  const size_t at = rendered.find(kSlot);
  if (at == std::string::npos) throw Error(ErrorCode::internal, "chat template dropped the message slot");
  tail_ = engine_.tokenize(rendered.substr(at + std::string(kSlot).size()), false, true);
  ellipsis_ = engine_.tokenize(" [...]", false, false);
  engine_.add_prefix(prefix_name_, rendered.substr(0, at)).get();
}

GenerateRequest FieldGenerator::request_for(const std::string& text) const {
  // Tokenized without special-token parsing: "</s>" in a message stays text. Long messages keep their
  // head and tail, as in LabelScorer.
  std::vector<Token> body =
      engine_.tokenize_after(":", " " + text); // after "Message: " (see clip_text_tokens)
  const size_t budget = static_cast<size_t>(max_query_tokens_);
  if (body.size() > budget) {
    const size_t keep = budget - ellipsis_.size();
    const size_t head = keep * 2 / 3, tail = keep - head;
    std::vector<Token> cut(body.begin(), body.begin() + static_cast<std::ptrdiff_t>(head));
    cut.insert(cut.end(), ellipsis_.begin(), ellipsis_.end());
    cut.insert(cut.end(), body.end() - static_cast<std::ptrdiff_t>(tail), body.end());
    body = std::move(cut);
  }
  body.insert(body.end(), tail_.begin(), tail_.end());
  GenerateRequest g;
  g.prefix = prefix_name_;
  g.prompt = std::move(body);
  g.grammar = grammar_;
  g.max_tokens = max_tokens_;
  return g;
}

GeneratedFields FieldGenerator::collect(const GenerateResult& r) const {
  GeneratedFields out;
  out.raw = r.text;
  out.stopped_by_limit = r.stopped_by_limit;
  out.n_decoded = r.n_decoded;
  out.n_generated = static_cast<int>(r.tokens.size());
  out.ms = r.queue_ms + r.compute_ms;
  const auto parsed = repair_truncated_json(r.text);
  if (!parsed) return out;
  const nlohmann::json& props = schema_.at("properties");
  for (const auto& key : order_) {
    const auto v = parsed->find(key);
    if (v == parsed->end()) continue;
    const nlohmann::json& sub = props.at(key);
    // A field cut off mid-way can be malformed (a half date): drop it. An object cut off keeps the
    // properties that were complete; the caller fills in the rest.
    if (v->is_object() && sub.contains("properties")) {
      nlohmann::json kept = nlohmann::json::object();
      for (const auto& [k, item] : v->items()) {
        const auto item_schema = sub["properties"].find(k);
        if (item_schema != sub["properties"].end() && validate_json(*item_schema, item).empty())
          kept[k] = item;
      }
      out.fields[key] = std::move(kept);
    } else if (validate_json(sub, *v).empty()) {
      out.fields[key] = *v;
    }
  }
  return out;
}

std::future<GeneratedFields> FieldGenerator::generate(const std::string& text, Priority priority,
                                                      CancelToken cancel, int max_tokens) const {
  GenerateRequest g = request_for(text);
  if (max_tokens > 0) g.max_tokens = max_tokens;
  g.priority = priority;
  g.cancel = std::move(cancel);
  auto fut = engine_.generate(std::move(g));
  return std::async(std::launch::deferred, [this, f = std::move(fut)]() mutable { return collect(f.get()); });
}

GeneratedFields FieldGenerator::generate_reference(const std::string& text) const {
  return collect(engine_.generate_reference(request_for(text)));
}

} // namespace tinyroute
