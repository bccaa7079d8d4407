// tinyroute status [--url URL]: what a running `tinyroute serve` sees: each backend, its models and
// whether they can be selected (and why not), the breakers, the queue, and the routing decisions so far
// by source, and the bus when serve runs one. Read from the server's GET /health, GET /metrics and (when
// served) GET /queue/stats.
#include <curl/curl.h>

#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>

#include "cli.h"
#include "output.h"

namespace tinyroute::cli {

namespace {

struct StatusOptions {
  CommonOptions common;
  std::string url; // empty: the config's gateway.listen, else http://127.0.0.1:8080
  double timeout_s = 5;
};

struct CurlCleanup {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};

size_t append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// GET url -> {status, body}; throws Error(io) when the server cannot be reached.
std::pair<long, std::string> http_get(const std::string& url, double timeout_s) {
  std::unique_ptr<CURL, CurlCleanup> curl(curl_easy_init());
  if (!curl) throw Error(ErrorCode::internal, "curl_easy_init failed");
  std::string body;
  char errbuf[CURL_ERROR_SIZE] = {0};
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_s * 1000));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, append);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  if (const char* key = std::getenv("TINYROUTE_API_KEY"); key != nullptr && *key != '\0') {
    curl_easy_setopt(c, CURLOPT_XOAUTH2_BEARER, key);
    curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BEARER);
  }
  if (const CURLcode rc = curl_easy_perform(c); rc != CURLE_OK) {
    throw Error(ErrorCode::io, "cannot reach " + url + ": " +
                                   (errbuf[0] != 0 ? errbuf : curl_easy_strerror(rc)) +
                                   " (is `tinyroute serve` running there? pass --url http://HOST:PORT)");
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  return {status, body};
}

// "name{source=\"rule\"} 12" lines of one metric: label value -> number.
std::map<std::string, double> metric_by_label(const std::string& text, const std::string& name,
                                              const std::string& label) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  const std::string head = name + "{" + label + "=\"";
  for (std::string line; std::getline(in, line);) {
    if (!line.starts_with(head)) continue;
    const auto end = line.find('"', head.size());
    const auto space = line.rfind(' ');
    if (end == std::string::npos || space == std::string::npos) continue;
    try {
      out[line.substr(head.size(), end - head.size())] += std::stod(line.substr(space + 1));
    } catch (const std::exception&) {
    }
  }
  return out;
}

std::optional<double> metric(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(name + " ")) {
      try {
        return std::stod(line.substr(name.size() + 1));
      } catch (const std::exception&) {
      }
    }
  }
  return std::nullopt;
}

std::string base_url(const StatusOptions& o) {
  std::string url = o.url;
  if (url.empty()) {
    url = "http://127.0.0.1:8080";
    try {
      const Config c = load_config(config_path(o.common));
      const std::string host = c.gateway.host == "0.0.0.0" ? "127.0.0.1" : c.gateway.host;
      url = "http://" + (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
            std::to_string(c.gateway.port);
    } catch (const std::exception&) {
      // No readable config: the default address.
    }
  }
  while (url.ends_with("/")) url.pop_back();
  return url;
}

int status(const StatusOptions& o) {
  const std::string url = base_url(o);
  const auto [health_status, health_body] = http_get(url + "/health", o.timeout_s);
  const json health = json::parse(health_body, nullptr, false);
  if (health_status != 200 || !health.is_object())
    throw Error(ErrorCode::io,
                url + "/health answered " + std::to_string(health_status) + ": " + health_body);
  const auto [metrics_status, metrics_body] = http_get(url + "/metrics", o.timeout_s);
  const std::string metrics = metrics_status == 200 ? metrics_body : "";
  json queue = nullptr;
  if (const auto [qs, qbody] = http_get(url + "/queue/stats", o.timeout_s); qs == 200)
    queue = json::parse(qbody, nullptr, false);
  const auto decisions = metric_by_label(metrics, "tinyroute_decisions_total", "source");
  const auto in_flight = metric(metrics, "tinyroute_in_flight_requests");
  // The bus, when serve runs one (its metrics are there only then).
  json bus = nullptr;
  if (metric(metrics, "tinyroute_bus_connected")) {
    bus = json::object();
    for (const auto& [key, name] : std::vector<std::pair<std::string, std::string>>{
             {"connected", "tinyroute_bus_connected"},
             {"messages_in", "tinyroute_bus_messages_in_total"},
             {"messages_out", "tinyroute_bus_messages_out_total"},
             {"dead_lettered", "tinyroute_bus_dead_lettered_total"},
             {"duplicates", "tinyroute_bus_duplicates_total"},
             {"waiting", "tinyroute_bus_waiting_total"},
             {"group_lag", "tinyroute_bus_group_lag"},
             {"group_pending", "tinyroute_bus_group_pending"}}) {
      const auto v = metric(metrics, name);
      bus[key] = v ? json(static_cast<long long>(*v)) : json(nullptr);
    }
    const auto count = metric(metrics, "tinyroute_bus_routing_latency_ms_count");
    const auto sum = metric(metrics, "tinyroute_bus_routing_latency_ms_sum");
    bus["routing_ms_mean"] = count && sum && *count > 0 ? json(*sum / *count) : json(nullptr);
  }

  if (o.common.json) {
    json out = {{"url", url},
                {"health", health},
                {"queue", queue},
                {"in_flight_requests", in_flight ? json(*in_flight) : json(nullptr)},
                {"decisions", decisions},
                {"bus", bus}};
    std::cout << out.dump(2) << "\n";
    return 0;
  }

  std::cout << "tinyroute at " << url << ": " << health.value("status", "?") << "\n";
  std::cout << "backends\n";
  const json backends = health.value("backends", json::object());
  if (backends.empty()) std::cout << "  (none reported)\n";
  for (const auto& [backend, b] : backends.items()) {
    std::string state = b.value("provider", "?") + ", breaker " + b.value("breaker", "?");
    if (!b.value("polled", false)) {
      state += b.value("poll_period_s", 0.0) > 0 ? ", not polled yet"
                                                 : ", not polled (gateway.availability_poll: 0)";
    } else {
      state += b.value("reachable", false) ? ", reachable" : ", NOT reachable";
      state += ", polled " + b.value("last_poll", std::string("?"));
    }
    std::cout << "  " << backend << "  " << state << "\n";
    if (b.contains("error")) std::cout << "    error: " << b["error"].get<std::string>() << "\n";
    std::vector<std::vector<std::string>> rows;
    for (const auto& m : b.value("models", json::array())) {
      const bool ok = m.value("available", true);
      rows.push_back({"    " + m.value("name", std::string("?")),
                      ok ? "available" : "unavailable: " + m.value("why", std::string("?"))});
    }
    std::cout << format_table(rows, false);
    if (b.contains("installed")) {
      std::string installed;
      for (const auto& n : b["installed"])
        installed += (installed.empty() ? "" : ", ") + n.get<std::string>();
      std::cout << "    installed: " << (installed.empty() ? "(nothing)" : installed) << "\n";
    }
  }
  std::cout << "queue\n";
  if (in_flight) std::cout << "  in-flight requests: " << static_cast<long long>(*in_flight) << "\n";
  if (queue.is_object()) {
    for (const auto& [k, v] : queue.items()) std::cout << "  " << k << ": " << v.dump() << "\n";
  }
  if (bus.is_object()) {
    const auto n = [&](const char* k) { return bus[k].is_null() ? std::string("?") : bus[k].dump(); };
    std::cout << "bus\n  " << (bus["connected"] == 1 ? "connected" : "NOT connected") << ", "
              << n("messages_in") << " in, " << n("messages_out") << " out, " << n("dead_lettered")
              << " dead-lettered, " << n("duplicates") << " duplicates, " << n("waiting")
              << " waiting\n  group lag " << n("group_lag") << ", pending " << n("group_pending");
    if (!bus["routing_ms_mean"].is_null())
      std::cout << ", routing " << static_cast<long long>(bus["routing_ms_mean"].get<double>() + 0.5)
                << " ms mean";
    std::cout << "\n";
  }
  std::cout << "decisions by source\n";
  if (decisions.empty()) std::cout << "  (none yet)\n";
  for (const auto& [source, n] : decisions)
    std::cout << "  " << source << ": " << static_cast<long long>(n) << "\n";
  return 0;
}

} // namespace

void register_status_command(CLI::App& app, Action& action) {
  auto o = std::make_shared<StatusOptions>();
  auto* cmd = app.add_subcommand(
      "status", "Show a running serve's backends, their models and availability, queue and decision sources");
  cmd->add_option("--url", o->url,
                  "The server, e.g. http://127.0.0.1:8080 (default: the config's gateway.listen, else that)");
  cmd->add_option("--timeout", o->timeout_s, "Seconds to wait for each answer")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  add_config_option(cmd, o->common);
  add_json_flag(cmd, o->common);
  cmd->callback([&action, o] { action = [o] { return status(*o); }; });
}

} // namespace tinyroute::cli
