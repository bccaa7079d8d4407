// The real `tinyroute` binary on a generated tiny model: classify, route, config check, eval, usage
// errors. Random weights: the tests check what holds whatever they are (a configured category, a
// distribution that sums to 1, consistent metrics, exit codes and messages).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "cli-common.h"
#include "file-server.h"
#include "tinyroute/pull.h"

namespace cli_test {
namespace {

class CliTest : public ::testing::Test {
protected:
  void SetUp() override {
    config = dir.file("tinyroute.yaml");
    t::write_file(config, config_yaml(t::tiny_model(), t::free_port()));
  }
  t::TempDir dir;
  std::string config;
};

bool configured(const std::string& category) {
  return std::find(kCategories.begin(), kCategories.end(), category) != kCategories.end();
}

TEST_F(CliTest, ClassifyJsonNamesAConfiguredCategoryInEnglishAndRussian) {
  for (const std::string text : {"Write a function that reverses a list", "Сколько будет 15% от 2340?"}) {
    auto [rc, out] = tinyroute({"classify", "--config", config, "--json", text});
    ASSERT_EQ(rc, 0) << out;
    json j = parse_or_fail(out);
    EXPECT_TRUE(configured(j["category"])) << out;
    EXPECT_TRUE(configured(j["top_label"])) << out;
    EXPECT_TRUE(j["uncertain"].is_boolean());
    EXPECT_TRUE(j["source"] == "model" || j["source"] == "default") << out;
    ASSERT_EQ(j["distribution"].size(), kCategories.size());
    double sum = 0, previous = 2;
    for (const auto& d : j["distribution"]) {
      const double p = d["prob"];
      EXPECT_LE(p, previous) << "distribution not sorted: " << out;
      previous = p;
      sum += p;
    }
    EXPECT_NEAR(sum, 1.0, 1e-6);
    EXPECT_DOUBLE_EQ(j["confidence"].get<double>(), j["distribution"][0]["prob"].get<double>());
    EXPECT_EQ(j["top_label"], j["distribution"][0]["label"]);
    EXPECT_GT(j["tokens_decoded"].get<int>(), 0);
    EXPECT_GE(j["latency_ms"].get<double>(), 0);
  }
}

TEST_F(CliTest, ClassifyTableAndModelOverride) {
  // The config names a missing file; --model points at the real one.
  const std::string other = dir.file("other.yaml");
  t::write_file(other, config_yaml(dir.file("missing.gguf"), t::free_port()));
  auto [rc, out] = tinyroute({"classify", "-c", other, "--model", t::tiny_model(), "hello there"});
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("category"), std::string::npos) << out;
  EXPECT_NE(out.find("distribution"), std::string::npos) << out;

  auto [rc2, out2] = tinyroute({"classify", "-c", other, "hello"});
  EXPECT_EQ(rc2, 1);
  EXPECT_NE(out2.find("missing.gguf"), std::string::npos) << out2;
  EXPECT_EQ(out2.find("terminate"), std::string::npos) << out2;
  EXPECT_EQ(std::count(out2.begin(), out2.end(), '\n'), 1) << "one line: " << out2;
}

TEST_F(CliTest, AnalyzeJsonHasEveryDecisionAndItsLatency) {
  auto [rc, out] = tinyroute({"analyze", "--config", config, "--json", "Почему падает деплой?"});
  ASSERT_EQ(rc, 0) << out;
  json j = parse_or_fail(out);
  EXPECT_TRUE(configured(j["category"]["category"].get<std::string>())) << out;
  EXPECT_EQ(j["category"]["distribution"].size(), 3u) << out;
  EXPECT_EQ(j["fields"].size(), 4u) << out;
  EXPECT_TRUE(j["selection"]["model"] == "big" || j["selection"]["model"] == "spare") << out;
  EXPECT_EQ(j["source"], "model");
  for (const char* part : {"queue", "request", "decisions", "select", "total"})
    EXPECT_GE(j["latency_ms"][part].get<double>(), 0) << part;
  auto [trc, text] = tinyroute({"analyze", "--config", config, "hello"});
  ASSERT_EQ(trc, 0) << text;
  EXPECT_NE(text.find("complexity"), std::string::npos) << text;
}

TEST_F(CliTest, RouteJsonIsTheServersRouteDecision) {
  auto [rc, out] = tinyroute({"route", "--config", config, "--json", "Напиши SQL-запрос"});
  ASSERT_EQ(rc, 0) << out;
  json j = parse_or_fail(out);
  const std::string category = j["category"];
  EXPECT_TRUE(configured(category));
  const std::string model = j["model"];
  EXPECT_TRUE(model == "big" || model == "spare") << out;
  if (category == "chat") {
    EXPECT_EQ(j["fallbacks"], json::array({"spare"}));
  }
  if (category == "math") {
    EXPECT_EQ(j["fallbacks"], json::array());
  }
  EXPECT_FALSE(j["reason"].get<std::string>().empty());
  EXPECT_TRUE(j["source"] == "model" || j["source"] == "default") << out;
  EXPECT_GE(j["confidence"].get<double>(), 0.0);
  EXPECT_LE(j["confidence"].get<double>(), 1.0);
  EXPECT_GT(j["route_ms"].get<double>(), 0.0);

  auto [trc, text] = tinyroute({"route", "--config", config, "Напиши SQL-запрос"});
  ASSERT_EQ(trc, 0) << text;
  EXPECT_NE(text.find("category    " + category), std::string::npos) << text;
  EXPECT_NE(text.find("model       " + model), std::string::npos) << text;
}

TEST_F(CliTest, ConfigCheckGoodAndBad) {
  auto [rc, out] = tinyroute({"config", "check", config});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out.rfind("OK " + config, 0), 0u) << out;
  EXPECT_NE(out.find("chat, coding, math"), std::string::npos) << out;
  EXPECT_NE(out.find("found at"), std::string::npos) << out;

  auto [jrc, jout] = tinyroute({"config", "check", "--json", config});
  EXPECT_EQ(jrc, 0);
  json j = parse_or_fail(jout);
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(j["categories"], json(kCategories));
  EXPECT_EQ(j["models"].size(), 2u);

  // Two problems, on lines 2 and 5: both reported, each with file:line.
  const std::string bad = dir.file("bad.yaml");
  t::write_file(bad, "internal_model:\n  modle: x.gguf\ncategories:\n  - name: a\n    description: 3\n"
                     "models: []\ndefault_category: zzz\n");
  auto [brc, bout] = tinyroute({"config", "check", bad});
  EXPECT_EQ(brc, 1);
  EXPECT_NE(bout.find(bad + ":2:"), std::string::npos) << bout;
  EXPECT_NE(bout.find(bad + ":7:"), std::string::npos) << bout;
  EXPECT_EQ(bout.find("OK"), std::string::npos) << bout;

  auto [bjrc, bjout] = tinyroute({"config", "check", "--json", bad});
  EXPECT_EQ(bjrc, 1);
  json bj = parse_or_fail(bjout);
  EXPECT_EQ(bj["ok"], false);
  EXPECT_GE(bj["errors"].size(), 2u);

  // The internal model as an answer model is refused too.
  const std::string guard = dir.file("guard.yaml");
  std::string yaml = config_yaml(t::tiny_model(), 9);
  yaml.replace(yaml.find("name: spare"), 11, "name: tinyllama");
  t::write_file(guard, yaml);
  auto [grc, gout] = tinyroute({"config", "check", guard});
  EXPECT_EQ(grc, 1);
  EXPECT_NE(gout.find("tinyllama"), std::string::npos) << gout;

  auto [mrc, mout] = tinyroute({"config", "check", dir.file("nope.yaml")});
  EXPECT_EQ(mrc, 1);
  EXPECT_NE(mout.find("nope.yaml"), std::string::npos) << mout;

  // Without a FILE: $TINYROUTE_CONFIG.
  auto [erc, eout] =
      t::run_command({"/usr/bin/env", "TINYROUTE_CONFIG=" + config, TINYROUTE_CLI, "config", "check"});
  EXPECT_EQ(erc, 0) << eout;
  EXPECT_NE(eout.find("OK " + config), std::string::npos) << eout;
}

TEST_F(CliTest, EvalReportsConsistentMetrics) {
  const std::string data = dir.file("eval.jsonl");
  std::string lines; // training_jsonl's ten lines, each followed by a blank one (skipped)
  for (char c : training_jsonl()) lines += c == '\n' ? std::string("\n\n") : std::string(1, c);
  t::write_file(data, lines);

  auto [rc, out] = tinyroute({"eval", data, "--config", config, "--json"});
  ASSERT_EQ(rc, 0) << out;
  json j = parse_or_fail(out);
  EXPECT_EQ(j["total"], 10);
  const double accuracy = j["accuracy"];
  EXPECT_GE(accuracy, 0.0);
  EXPECT_LE(accuracy, 1.0);
  EXPECT_DOUBLE_EQ(accuracy, j["correct"].get<double>() / 10.0);
  EXPECT_EQ(j["labels"], json(kCategories));
  int sum = 0, trace = 0;
  for (size_t g = 0; g < j["confusion"].size(); ++g) {
    for (size_t p = 0; p < j["confusion"][g].size(); ++p) {
      sum += j["confusion"][g][p].get<int>();
      if (g == p) trace += j["confusion"][g][p].get<int>();
    }
  }
  EXPECT_EQ(sum, 10);
  EXPECT_EQ(trace, j["correct"].get<int>());
  for (const auto& c : j["per_class"]) {
    EXPECT_GE(c["f1"].get<double>(), 0);
    EXPECT_LE(c["f1"].get<double>(), 1);
  }
  EXPECT_EQ(j["per_class"][0]["support"], 4);
  const auto& l = j["latency_ms"];
  EXPECT_EQ(l["count"], 10);
  EXPECT_LE(l["p50"].get<double>(), l["p95"].get<double>());
  EXPECT_LE(l["p95"].get<double>(), l["p99"].get<double>());
  EXPECT_LE(l["p99"].get<double>(), l["max"].get<double>());

  auto [lrc, lout] = tinyroute({"eval", data, "--config", config, "--json", "--limit", "3"});
  ASSERT_EQ(lrc, 0) << lout;
  EXPECT_EQ(parse_or_fail(lout)["total"], 3);

  auto [trc, tout] = tinyroute({"eval", data, "--config", config});
  ASSERT_EQ(trc, 0) << tout;
  EXPECT_NE(tout.find("accuracy"), std::string::npos);
  EXPECT_NE(tout.find("macro-F1"), std::string::npos);
  EXPECT_NE(tout.find("p95"), std::string::npos);
  EXPECT_EQ(tout.find('\r'), std::string::npos) << "no progress bar when stderr is not a terminal";

  t::write_file(data, lines + "{\"text\": 3}\n");
  auto [brc, bout] = tinyroute({"eval", data, "--config", config});
  EXPECT_EQ(brc, 1);
  EXPECT_NE(bout.find(data + ":21:"), std::string::npos) << bout;
}

// `tinyroute train` fits the head and, beside it, the fused strategy's prompt weight; eval, classify and
// route then use them, and a head fitted with another prompt or without a fusion is refused by name.
TEST_F(CliTest, TrainFitsTheHeadAndTheFusionThatEveryEntryPointUses) {
  const std::string data = dir.file("train.jsonl");
  t::write_file(data, training_jsonl());
  const auto with = [&](const std::string& strategy, const std::string& description = "") {
    std::string yaml = description.empty() ? config_yaml(t::tiny_model(), t::free_port())
                                           : config_yaml(t::tiny_model(), t::free_port(), description);
    yaml.replace(yaml.find("  parallel: 4\n"), 14,
                 "  parallel: 4\n  strategy: " + strategy + "\n  state_dir: " + dir.file("state") + "\n");
    const std::string path = dir.file(strategy + "-" + std::to_string(description.size()) + ".yaml");
    t::write_file(path, yaml);
    return path;
  };
  const std::string fused = with("fused");

  // Before training: refused, saying what to run.
  auto [nrc, nout] = tinyroute({"classify", "--config", fused, "--json", "hello"});
  EXPECT_EQ(nrc, 1) << nout;
  EXPECT_NE(nout.find("tinyroute train"), std::string::npos) << nout;

  auto [rc, out] = tinyroute({"train", data, "--config", fused, "--heldout-every", "2", "--json"});
  ASSERT_EQ(rc, 0) << out;
  const json trained = parse_or_fail(out.substr(out.find('{'))); // after stderr's progress lines
  EXPECT_EQ(trained["n_train"], 6);
  EXPECT_EQ(trained["n_heldout"], 4);
  EXPECT_TRUE(std::filesystem::exists(trained["path"].get<std::string>())) << out;
  ASSERT_TRUE(trained["fusion"].is_object()) << out;
  EXPECT_GE(trained["fusion"]["weight"].get<double>(), 0.0);
  EXPECT_LE(trained["fusion"]["weight"].get<double>(), 3.0);
  EXPECT_GT(trained["fusion"]["temperature"].get<double>(), 0.0);
  EXPECT_EQ(trained["fusion"]["n_fitted"], 4);
  // The thresholds for 95% precision, chosen on the same held-out examples (none reached is null).
  for (const json& t : {trained["threshold_at_precision"], trained["fusion"]["threshold_at_precision"]}) {
    EXPECT_EQ(t["precision"], 0.95) << out;
    EXPECT_TRUE(t["threshold"].is_null() || (t["threshold"] > 0.0 && t["threshold"] <= 1.0)) << out;
    EXPECT_GE(t["coverage"].get<double>(), t["threshold"].is_null() ? 0.0 : 0.25) << out; // >= 1 of 4
  }

  // eval --strategy fused and the classify command read the same distribution for the same text.
  const std::string preds = dir.file("preds.jsonl");
  auto [erc, eout] = tinyroute({"eval", data, "--config", fused, "--json", "--predictions", preds});
  ASSERT_EQ(erc, 0) << eout;
  EXPECT_EQ(parse_or_fail(eout)["strategy"], "fused");
  EXPECT_EQ(parse_or_fail(eout)["total"], 10);
  const json first = parse_or_fail(t::read_file(preds).substr(0, t::read_file(preds).find('\n')));
  auto [crc, cout] = tinyroute({"classify", "--config", fused, "--json", "Hi, how is your day going?"});
  ASSERT_EQ(crc, 0) << cout;
  const json c = parse_or_fail(cout);
  EXPECT_EQ(c["strategy"], "fused");
  EXPECT_EQ(c["source"], "model");
  for (const auto& d : c["distribution"])
    EXPECT_NEAR(d["prob"].get<double>(), first["probs"][d["label"].get<std::string>()].get<double>(), 1e-6)
        << cout;
  auto [rrc, rout] = tinyroute({"route", "--config", fused, "--json", "Hi, how is your day going?"});
  ASSERT_EQ(rrc, 0) << rout;
  EXPECT_EQ(parse_or_fail(rout)["category"], c["category"]);

  // Another prompt (a description edited since training): the fusion's weight means nothing for it.
  const std::string edited = with("fused", "Small talk of any kind.");
  auto [arc, aout] = tinyroute({"classify", "--config", edited, "--json", "hello"});
  EXPECT_EQ(arc, 1) << aout;
  EXPECT_NE(aout.find("fitted with another prompt"), std::string::npos) << aout;
  // The head alone does not read the prompt: it still loads.
  auto [hrc, hout] =
      tinyroute({"classify", "--config", with("head", "Small talk of any kind."), "--json", "hi"});
  EXPECT_EQ(hrc, 0) << hout;

  // --no-fusion: the head is stored without one, and fused says so.
  auto [frc, fout] = tinyroute({"train", data, "--config", fused, "--heldout-every", "2", "--no-fusion"});
  ASSERT_EQ(frc, 0) << fout;
  EXPECT_NE(fout.find("fusion      not fitted"), std::string::npos) << fout;
  auto [mrc, mout] = tinyroute({"classify", "--config", fused, "--json", "hello"});
  EXPECT_EQ(mrc, 1) << mout;
  EXPECT_NE(mout.find("has no fusion fitted"), std::string::npos) << mout;
}

TEST_F(CliTest, UsageErrorsExitTwoAndHelpExitsZero) {
  EXPECT_EQ(tinyroute({}).first, 2);
  EXPECT_EQ(tinyroute({"classify"}).first, 2);
  EXPECT_EQ(tinyroute({"classify", "x", "--no-such-flag"}).first, 2);
  EXPECT_EQ(tinyroute({"serve", "--port", "70000"}).first, 2);
  EXPECT_EQ(tinyroute({"eval", "x.jsonl", "--labels-from", "nonsense"}).first, 2);
  auto [hrc, help] = tinyroute({"--help"});
  EXPECT_EQ(hrc, 0);
  for (const char* cmd :
       {"agent", "metadata", "analyze", "classify", "route", "config", "eval", "pull", "serve", "version"})
    EXPECT_NE(help.find(cmd), std::string::npos) << cmd;
  auto [vrc, version] = tinyroute({"version"});
  EXPECT_EQ(vrc, 0);
  EXPECT_EQ(version.rfind("tinyroute ", 0), 0u) << version;
  auto [jrc, jversion] = tinyroute({"version", "--json"});
  EXPECT_EQ(jrc, 0);
  EXPECT_TRUE(parse_or_fail(jversion)["version"].is_string());
}

TEST_F(CliTest, PullOfABadNameFailsCleanly) {
  auto [rc, out] = tinyroute({"pull", "no-such-model", "--cache-dir", dir.file("cache")});
  EXPECT_EQ(rc, 1);
  EXPECT_NE(out.find("no-such-model"), std::string::npos) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
}

TEST_F(CliTest, PullDownloadsAndVerifies) {
  const std::string body = t::read_file(t::tiny_model());
  t::FileServer server(body);
  const std::string url = "http://127.0.0.1:" + std::to_string(server.port()) + "/model.gguf";
  const std::string expected = tinyroute::sha256_file(t::tiny_model());
  auto [rc, out] = tinyroute({"pull", url, "--cache-dir", dir.file("cache"), "--sha256", expected, "--json"});
  ASSERT_EQ(rc, 0) << out;
  json j = parse_or_fail(out);
  EXPECT_EQ(j["sha256"], expected);
  EXPECT_EQ(j["verified"], true);
  EXPECT_EQ(t::read_file(j["path"]).size(), body.size());

  // Again: found in the cache; the table form prints the path and the checksum.
  auto [rc2, out2] = tinyroute({"pull", url, "--cache-dir", dir.file("cache")});
  ASSERT_EQ(rc2, 0) << out2;
  EXPECT_EQ(out2.rfind(j["path"].get<std::string>() + "\n", 0), 0u) << out2;
  EXPECT_NE(out2.find("sha256 " + expected), std::string::npos) << out2;
  EXPECT_NE(out2.find("already in the cache"), std::string::npos) << out2;

  auto [rc3, out3] =
      tinyroute({"pull", url, "--cache-dir", dir.file("cache2"), "--sha256", std::string(64, '0')});
  EXPECT_EQ(rc3, 1) << out3;
}

} // namespace
} // namespace cli_test
