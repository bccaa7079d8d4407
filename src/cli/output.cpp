#include "output.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <sstream>

namespace tinyroute::cli {

namespace {

// Display columns of a UTF-8 string (every code point counts as one: enough for labels and names).
size_t columns(const std::string& s) {
  return static_cast<size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

std::vector<std::pair<std::string, double>> sorted(std::vector<std::pair<std::string, double>> d) {
  std::stable_sort(d.begin(), d.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  return d;
}

std::string distribution_text(const std::vector<std::pair<std::string, double>>& distribution) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& [label, p] : sorted(distribution)) {
    rows.push_back({"  " + label, fixed(p, 4), std::string(static_cast<size_t>(p * 40 + 0.5), '#')});
  }
  return format_table(rows, false);
}

} // namespace

std::string fixed(double value, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, value);
  return buf;
}

json latency_json(const LatencySummary& l) {
  return {{"count", l.count}, {"mean", l.mean}, {"p50", l.p50},
          {"p95", l.p95},     {"p99", l.p99},   {"max", l.max}};
}

json metrics_json(const EvalMetrics& m) {
  json per_class = json::array();
  for (const auto& c : m.per_class) {
    per_class.push_back({{"label", c.label},
                         {"support", c.support},
                         {"predicted", c.predicted},
                         {"precision", c.precision},
                         {"recall", c.recall},
                         {"f1", c.f1}});
  }
  return {{"total", m.total},       {"correct", m.correct}, {"accuracy", m.accuracy},
          {"macro_f1", m.macro_f1}, {"labels", m.labels},   {"confusion", m.confusion},
          {"per_class", per_class}};
}

std::string format_table(const std::vector<std::vector<std::string>>& rows, bool header) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    if (width.size() < row.size()) width.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], columns(row[i]));
  }
  std::string out;
  for (size_t r = 0; r < rows.size(); ++r) {
    std::string line;
    for (size_t i = 0; i < rows[r].size(); ++i) {
      if (i > 0) line += "  ";
      line += rows[r][i];
      if (i + 1 < rows[r].size()) line.append(width[i] - columns(rows[r][i]), ' ');
    }
    out += line + "\n";
    if (header && r == 0) {
      size_t total = 0;
      for (size_t i = 0; i < width.size(); ++i) total += width[i] + (i > 0 ? 2 : 0);
      out += std::string(total, '-') + "\n";
    }
  }
  return out;
}

std::string classify_text(const ClassifyResult& r) {
  std::string out = "category    " + r.category + "  (confidence " + fixed(r.confidence, 3) + ", source " +
                    r.source + (r.uncertain ? ", uncertain: model ranked " + r.top_label + " first" : "") +
                    ")\n";
  out += "strategy    " + std::string(strategy_name(r.strategy)) + "\n";
  out += "tokens      " + std::to_string(r.tokens_decoded) + " decoded, query " +
         std::to_string(r.query_tokens) + (r.truncated ? " (truncated)" : "") + "\n";
  out += "latency     " + fixed(r.latency_ms, 2) + " ms\n";
  out += "distribution\n";
  return out + distribution_text(r.distribution);
}

std::string analyze_text(const AnalyzeResult& r) {
  std::string out = classify_text(r.classification);
  if (r.agent) out += agent_route_text(*r.agent);
  std::vector<std::vector<std::string>> rows;
  for (const auto& [name, f] : r.fields) rows.push_back({name, f.value, fixed(f.confidence, 4)});
  out += format_table(rows, false);
  out += selection_text(r.selection);
  out += "source      " + r.source + ", " + std::to_string(r.tokens_decoded) + " tokens decoded\n";
  out += "latency     " + fixed(r.timing.total_ms, 2) + " ms (request " + fixed(r.timing.request_ms, 2) +
         ", decisions " + fixed(r.timing.decisions_ms, 2) + ", queue " + fixed(r.timing.queue_ms, 2) + ")\n";
  return out;
}

std::string agent_route_text(const AgentRoute& r) {
  std::string out = "agent       " + r.agent + "  (confidence " + fixed(r.confidence, 3) + ", source " +
                    r.source + (r.uncertain ? ", uncertain: model ranked " + r.top_agent + " first" : "") +
                    ")\n";
  out += "tokens      " + std::to_string(r.tokens_decoded) + " decoded, query " +
         std::to_string(r.query_tokens) + (r.truncated ? " (truncated)" : "") + "\n";
  out += "latency     " + fixed(r.latency_ms, 2) + " ms\n";
  return out + "distribution\n" + distribution_text(r.distribution);
}

std::string metadata_text(const MessageMetadata& m) {
  std::string topics;
  for (const auto& t : m.topics) topics += (topics.empty() ? "" : ", ") + t;
  return format_table({{"language", m.language},
                       {"intent", m.intent},
                       {"urgency", m.urgency},
                       {"topics", topics.empty() ? "(none)" : topics},
                       {"needs_tools", m.needs_tools ? "yes" : "no"},
                       {"complexity", m.complexity},
                       {"tokens", std::to_string(m.estimated_tokens)},
                       {"latency", fixed(m.latency_ms, 2) + " ms"}},
                      false);
}

std::string selection_text(const Selection& s) {
  std::string fallbacks;
  for (const auto& f : s.fallbacks) fallbacks += (fallbacks.empty() ? "" : ", ") + f;
  std::string out = "model       " + s.model + "\n";
  out += "fallbacks   " + (fallbacks.empty() ? std::string("(none)") : fallbacks) + "\n";
  out += "reason      " + s.reason + "\n";
  for (const auto& r : s.rejected) out += "  rejected  " + r.model + ": " + r.why + "\n";
  return out;
}

std::string route_decision_text(const RouteDecision& d) {
  std::string fallbacks;
  for (const auto& f : d.fallbacks) fallbacks += (fallbacks.empty() ? "" : ", ") + f;
  std::string out = "category    " + d.category + "\n";
  out += "confidence  " + fixed(d.confidence, 3) + "\n";
  out += "source      " + d.source + "\n";
  out += "model       " + d.model + "\n";
  out += "fallbacks   " + (fallbacks.empty() ? std::string("(none)") : fallbacks) + "\n";
  out += "reason      " + d.reason + "\n";
  out += "route       " + fixed(d.route_ms, 2) + " ms\n";
  return out;
}

std::string metrics_text(const EvalMetrics& m) {
  std::string out = "examples    " + std::to_string(m.total) + "\n";
  out += "accuracy    " + fixed(m.accuracy, 4) + "  (" + std::to_string(m.correct) + "/" +
         std::to_string(m.total) + ")\n";
  out += "macro-F1    " + fixed(m.macro_f1, 4) + "\n\n";
  std::vector<std::vector<std::string>> rows = {{"label", "precision", "recall", "f1", "support"}};
  for (const auto& c : m.per_class) {
    rows.push_back(
        {c.label, fixed(c.precision, 3), fixed(c.recall, 3), fixed(c.f1, 3), std::to_string(c.support)});
  }
  out += format_table(rows) + "\nconfusion (rows: gold, columns: predicted)\n";
  std::vector<std::vector<std::string>> grid = {{""}};
  for (const auto& l : m.labels) grid[0].push_back(l);
  for (size_t g = 0; g < m.labels.size(); ++g) {
    std::vector<std::string> row = {m.labels[g]};
    for (int v : m.confusion[g]) row.push_back(std::to_string(v));
    grid.push_back(row);
  }
  return out + format_table(grid);
}

bool stderr_is_tty() {
  return ::isatty(STDERR_FILENO) == 1;
}

int terminal_width() {
  winsize ws{};
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

std::string count_progress(std::uint64_t done, std::uint64_t total, int width) {
  const std::string counts = " " + std::to_string(done) + "/" + std::to_string(total);
  const int bar = width - static_cast<int>(counts.size()) - 3;
  if (bar < 5 || total == 0) return counts.substr(1);
  const int filled =
      static_cast<int>(static_cast<double>(bar) * static_cast<double>(done) / static_cast<double>(total));
  std::string line = "[" + std::string(static_cast<size_t>(filled), '=');
  if (filled < bar) line += ">" + std::string(static_cast<size_t>(bar - filled - 1), ' ');
  return line + "]" + counts;
}

std::string bus_status_text(const json& s) {
  std::ostringstream o;
  const auto num = [](const json& j, const char* key) {
    return j.is_object() && j.contains(key) && !j[key].is_null() ? j[key].dump() : std::string("-");
  };
  o << "redis        " << s["redis"].get<std::string>() << "\n";
  o << "inbox        " << s["inbox"].get<std::string>() << " (" << s["inbox_length"] << " entries)\n";
  o << "group        " << s["group"].get<std::string>() << ": lag " << num(s["group_info"], "lag")
    << ", pending " << num(s["group_info"], "pending") << ", consumers " << num(s["group_info"], "consumers")
    << "\n";
  o << "dead letter  " << s["dead_letter"].get<std::string>() << " (" << s["dead_letter_length"]
    << " entries)\n";
  o << "counters     " << num(s["stats"], "out") << " out, " << num(s["stats"], "dead_lettered")
    << " dead-lettered, " << num(s["stats"], "duplicates") << " duplicates\n";
  for (const auto& a : s["agents"]) {
    o << "agent        " << a["name"].get<std::string>() << ": " << a["stream"].get<std::string>() << " ("
      << a["length"] << " entries)";
    if (a.contains("alive")) o << (a["alive"].get<bool>() ? ", alive" : ", not alive");
    o << "\n";
  }
  return o.str();
}

} // namespace tinyroute::cli
