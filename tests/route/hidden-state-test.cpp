// Decisions read from the model's hidden states (strategies centroid, head and fused), on a generated model
// with random weights: what holds for any weights. The centroid scorer agrees with a brute-force twin
// computed by hand; logistic regression solves what it must; a trained head is deterministic, refused
// for another model or label set, and its training data is checked line by line.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <optional>
#include <random>

#include "test-support.h"
#include "tinyroute/classify.h"
#include "tinyroute/from-config.h"
#include "tinyroute/head.h"
#include "tinyroute/label-scorer.h"

namespace tinyroute {
namespace {

std::string config_yaml(const std::string& model, const std::string& strategy, double threshold,
                        const std::string& state_dir = "") {
  return R"(internal_model:
  model: )" +
         model + R"(
  threads: 1
  context: 4096
  strategy: )" +
         strategy + R"(
  threshold: )" +
         std::to_string(threshold) + R"(
  max_query_tokens: 64
)" + (state_dir.empty() ? "" : "  state_dir: " + state_dir + "\n") +
         R"(categories:
  - name: coding
    description: Writing, fixing or explaining code.
    examples: ["Fix this segfault in my C++ parser", "Напиши функцию сортировки на Python"]
  - name: math
    description: Calculations and proofs.
    examples: ["What is the integral of x^2?"]
  - name: translation
    description: Translating text between languages.
    examples: ["Переведи на английский: доброе утро"]
  - name: chat
    description: Small talk and everything else.
models:
  - name: llama3.1:8b
    provider: ollama
    base_url: http://127.0.0.1:11434
    categories: [chat, math, translation, coding]
default_category: chat
)";
}

Config make_config(const std::string& strategy, double threshold = 0.0, const std::string& state_dir = "") {
  return parse_config(config_yaml(test::tiny_model(), strategy, threshold, state_dir), "test.yaml");
}

const std::vector<std::string> kTexts = {
    "Refactor this function to avoid the race condition",
    "Сколько будет 17 умножить на 23?",
    "Translate 'good morning' into French",
    "hey, how was your weekend?",
    "",
};

std::vector<std::string> category_names(const Config& c) {
  std::vector<std::string> out;
  for (const auto& cat : c.categories) out.push_back(cat.name);
  return out;
}

// ---- hidden states ------------------------------------------------------------------------------

TEST(HiddenStates, ManyRequestsAtOnceEqualOneAtATime) {
  // More embeds than the engine runs at once (n_parallel 16): the waiting ones must still run.
  const Config config = make_config("choice");
  Engine engine(engine_params_from(config.internal_model));
  std::vector<std::string> texts;
  for (int i = 0; i < 40; ++i) texts.push_back("request number " + std::to_string(i) + " " + kTexts[i % 4]);
  const auto together = embed_texts(engine, texts, 64);
  ASSERT_EQ(together.size(), texts.size());
  for (size_t i = 0; i < texts.size(); i += 7) {
    const HiddenState alone = engine.embed_tokens(engine.tokenize(texts[i], false)).get();
    EXPECT_EQ(alone.embedding, together[i]) << texts[i];
    EXPECT_EQ(alone.n_decoded, static_cast<int>(engine.tokenize(texts[i], true).size()));
    double norm = 0;
    for (float v : alone.embedding) norm += static_cast<double>(v) * v;
    EXPECT_NEAR(norm, 1.0, 1e-5);
    EXPECT_EQ(alone.embedding.size(), static_cast<size_t>(engine.info().n_embd));
  }
}

TEST(HiddenStates, ALayerOutsideTheModelIsRefused) {
  EngineParams p = engine_params_from(make_config("choice").internal_model);
  const int n_layer = Engine(p).info().n_layer;
  p.hidden_layer = n_layer;
  try {
    Engine engine(p);
    FAIL() << "block " << n_layer << " of a " << n_layer << "-layer model was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("hidden_layer " + std::to_string(n_layer)), std::string::npos)
        << e.what();
  }
  std::string yaml = config_yaml(test::tiny_model(), "centroid", 0.0);
  yaml.replace(yaml.find("  max_query_tokens"), 0, "  hidden_layer: -2\n");
  try {
    parse_config(yaml, "layer.yaml");
    FAIL() << "a negative hidden_layer was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layer.yaml:7"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("hidden_layer"), std::string::npos) << e.what();
  }
}

// ---- centroid ----------------------------------------------------------------------------------

TEST(CentroidStrategy, AgreesWithBruteForceTwin) {
  const Config config = make_config("centroid");
  auto engine = std::make_shared<Engine>(engine_params_from(config.internal_model));
  TaskRouter router(engine, config);

  // The twin: every example embedded on its own, the centroids and the softmax computed by hand.
  std::vector<std::vector<std::vector<double>>> per_label;
  std::vector<double> center;
  size_t n = 0;
  for (const auto& c : config.categories) {
    std::vector<std::string> texts = c.examples;
    if (texts.empty()) texts.push_back(c.name + ": " + c.description);
    per_label.emplace_back();
    for (const auto& t : texts) {
      const std::vector<float> e = engine->embed(t).get();
      per_label.back().emplace_back(e.begin(), e.end());
      if (center.empty()) center.assign(e.size(), 0.0);
      for (size_t j = 0; j < e.size(); ++j) center[j] += e[j];
      ++n;
    }
  }
  for (double& v : center) v /= static_cast<double>(n);
  std::vector<std::vector<double>> means;
  for (const auto& label : per_label) {
    std::vector<double> m(center.size(), 0.0);
    for (const auto& e : label)
      for (size_t j = 0; j < e.size(); ++j) m[j] += (e[j] - center[j]) / static_cast<double>(label.size());
    means.push_back(m);
  }
  auto cosine = [](const std::vector<double>& a, const std::vector<double>& b) {
    double ab = 0, aa = 0, bb = 0;
    for (size_t j = 0; j < a.size(); ++j) ab += a[j] * b[j], aa += a[j] * a[j], bb += b[j] * b[j];
    return ab / std::sqrt(aa * bb);
  };

  std::vector<std::future<ClassifyResult>> fast;
  for (const auto& t : kTexts) fast.push_back(router.classify_task(t));
  for (size_t i = 0; i < kTexts.size(); ++i) {
    const ClassifyResult r = fast[i].get();
    const std::vector<float> e = engine->embed(kTexts[i]).get();
    std::vector<double> q(e.size());
    for (size_t j = 0; j < e.size(); ++j) q[j] = e[j] - center[j];
    std::vector<double> z;
    double sum = 0;
    for (const auto& m : means) z.push_back(std::exp(cosine(q, m) / kCentroidTemperature));
    for (double v : z) sum += v;
    ASSERT_EQ(r.distribution.size(), means.size());
    for (size_t k = 0; k < z.size(); ++k) {
      EXPECT_EQ(r.distribution[k].first, config.categories[k].name);
      EXPECT_NEAR(r.distribution[k].second, z[k] / sum, 1e-6)
          << "'" << kTexts[i] << "' " << r.distribution[k].first;
    }
    EXPECT_EQ(r.strategy, Strategy::centroid);
    EXPECT_GT(r.query_tokens, 0);
  }
}

TEST(CentroidStrategy, BelowTheThresholdFallsBackToTheDefaultCategory) {
  const Config config = make_config("centroid", 0.999);
  TaskRouter router(open_engine(config), config);
  for (const auto& t : kTexts) {
    const ClassifyResult r = router.classify_task(t).get();
    double sum = 0;
    for (const auto& [label, p] : r.distribution) sum += p;
    EXPECT_NEAR(sum, 1.0, 1e-9);
    EXPECT_TRUE(r.uncertain);
    EXPECT_EQ(r.category, "chat");
    EXPECT_EQ(r.source, "default");
  }
}

TEST(CentroidStrategy, ConfigAcceptsHiddenStateStrategiesAndNamesTheLineOfABadOne) {
  EXPECT_EQ(make_config("centroid").internal_model.strategy, Strategy::centroid);
  EXPECT_EQ(make_config("head").internal_model.strategy, Strategy::head);
  std::string yaml = config_yaml("m.gguf", "choice", 0.3) + "agent_routing:\n  strategy: centroid\n";
  EXPECT_EQ(parse_config(yaml, "a.yaml").agent_routing.strategy, Strategy::centroid);
  try {
    parse_config(config_yaml("m.gguf", "nearest", 0.3), "b.yaml");
    FAIL() << "a bad strategy parsed";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::config_invalid);
    EXPECT_NE(std::string(e.what()).find("b.yaml:5"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("centroid"), std::string::npos) << e.what();
  }
}

// ---- logistic regression ------------------------------------------------------------------------

// Three Gaussian blobs in 6 dimensions, far apart: linearly separable.
void blobs(int n_per_class, unsigned seed, std::vector<std::vector<double>>& x, std::vector<int>& y) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> noise(0.0, 0.3);
  const double centers[3][6] = {{2, 0, 0, 1, 0, 0}, {0, 2, 0, 0, 1, 0}, {0, 0, 2, 0, 0, 1}};
  for (int i = 0; i < n_per_class; ++i) {
    for (int k = 0; k < 3; ++k) {
      std::vector<double> row(6);
      for (int j = 0; j < 6; ++j) row[static_cast<size_t>(j)] = centers[k][j] + noise(rng);
      x.push_back(row);
      y.push_back(k);
    }
  }
}

int argmax(const std::vector<double>& v) {
  return static_cast<int>(std::max_element(v.begin(), v.end()) - v.begin());
}

TEST(LogisticRegression, RecoversALinearlySeparableProblemAndItsLossDecreases) {
  std::vector<std::vector<double>> x, xt;
  std::vector<int> y, yt;
  blobs(50, 1, x, y);
  blobs(50, 2, xt, yt); // fresh points from the same classes
  const LogisticModel m = fit_logistic(x, y, 3, {.l2 = 1e-3, .max_iterations = 200, .tolerance = 1e-8});
  ASSERT_GE(m.loss.size(), 3U);
  EXPECT_NEAR(m.loss.front(), std::log(3.0), 1e-12); // all-zero start: uniform
  for (size_t i = 1; i < m.loss.size(); ++i) EXPECT_LE(m.loss[i], m.loss[i - 1]) << "iteration " << i;
  EXPECT_LT(m.loss.back(), 0.1 * m.loss.front());
  int correct = 0;
  for (size_t i = 0; i < xt.size(); ++i) correct += argmax(logistic_logits(m, xt[i])) == yt[i];
  EXPECT_EQ(correct, static_cast<int>(xt.size()));
}

TEST(LogisticRegression, TemperatureUndoesAKnownScaling) {
  // Labels drawn from softmax(z); the logits handed over are 3 z, so the best temperature is 3.
  std::mt19937 rng(7);
  std::normal_distribution<double> g(0.0, 1.5);
  std::vector<std::vector<double>> logits;
  std::vector<int> y, y_head; // y: from the head and the prompt; y_head: from the head alone
  for (int i = 0; i < 20000; ++i) {
    std::vector<double> z = {g(rng), g(rng), g(rng), g(rng)};
    std::vector<double> p(z.size());
    double sum = 0;
    for (size_t k = 0; k < z.size(); ++k) sum += p[k] = std::exp(z[k]);
    std::discrete_distribution<int> pick(p.begin(), p.end());
    y.push_back(pick(rng));
    for (double& v : z) v *= 3;
    logits.push_back(z);
  }
  EXPECT_NEAR(fit_temperature(logits, y), 3.0, 0.15);
}

// ---- head ---------------------------------------------------------------------------------------

struct TrainingData {
  std::vector<std::string> texts;
  std::vector<int> y;
};

TrainingData training_data() {
  const std::vector<std::vector<std::string>> by_label = {
      {"Fix the null pointer bug in main.c", "Write a Rust function that parses JSON",
       "Why does my loop never end?", "Refactor this class into two", "Explain this stack trace",
       "Add unit tests to the parser"},
      {"What is 12 times 13?", "Prove that the square root of 2 is irrational", "Solve x^2 - 4 = 0",
       "Integrate sin(x) from 0 to pi", "What is 15% of 80?", "Is 97 a prime number?"},
      {"Translate 'thank you' into German", "Переведи: как дела?", "How do you say cat in Spanish?",
       "Traduis en anglais : bonjour", "Translate this paragraph into Japanese", "English please: gracias"},
      {"hi there!", "how are you today?", "tell me a joke", "what's your favourite colour?", "good night",
       "I had a great weekend"}};
  TrainingData d;
  for (size_t k = 0; k < by_label.size(); ++k) {
    for (const auto& t : by_label[k]) d.texts.push_back(t), d.y.push_back(static_cast<int>(k));
  }
  return d;
}

TEST(HeadStrategy, TrainingIsDeterministicToTheByte) {
  const Config config = make_config("choice");
  Engine engine(engine_params_from(config.internal_model));
  const TrainingData d = training_data();
  // The same features twice: embedding them again may batch them differently, which moves the last
  // bits of a hidden state (the engine's embeds agree to ~1e-6 across batch shapes, not to the bit).
  const auto x = embed_texts(engine, d.texts, 64);
  const Head a = train_head(x, d.y, category_names(config), "categories", engine.info().fingerprint);
  const Head b = train_head(x, d.y, category_names(config), "categories", engine.info().fingerprint);
  EXPECT_EQ(serialize_head(a), serialize_head(b));
  EXPECT_EQ(a.n_heldout, 4); // every 5th of each label's 6
  EXPECT_EQ(a.n_train, 20);
  EXPECT_GT(a.temperature, 0);
  // The file round-trips exactly.
  const Head c = parse_head(serialize_head(a), "memory");
  EXPECT_EQ(serialize_head(c), serialize_head(a));
  test::TempDir dir1, dir2;
  EXPECT_EQ(test::read_file(save_head(a, dir1.path())), test::read_file(save_head(b, dir2.path())));
}

TEST(HeadStrategy, ClassifierReadsTheStoredHead) {
  test::TempDir state;
  const Config config = make_config("head", 0.0, state.path());
  auto engine = std::make_shared<Engine>(engine_params_from(config.internal_model));
  const TrainingData d = training_data();
  const Head head = train_head(embed_texts(*engine, d.texts, 64), d.y, category_names(config), "categories",
                               engine->info().fingerprint);
  const std::string path = save_head(head, state.path());
  EXPECT_EQ(path, head_path(state.path(), "categories", engine->info().fingerprint,
                            label_set_hash(category_names(config))));

  TaskRouter router(engine, config);
  for (const auto& t : kTexts) {
    const ClassifyResult r = router.classify_task(t).get();
    const std::vector<double> p = head_probs(head, engine->embed(t).get());
    ASSERT_EQ(r.distribution.size(), p.size());
    for (size_t k = 0; k < p.size(); ++k) EXPECT_NEAR(r.distribution[k].second, p[k], 1e-9) << t;
    EXPECT_EQ(r.strategy, Strategy::head);
  }
}

TEST(HeadStrategy, RefusesAHeadForAnotherModelOrLabelSet) {
  test::TempDir state;
  const Config config = make_config("head", 0.0, state.path());
  const std::vector<std::string> labels = category_names(config);
  auto engine = std::make_shared<Engine>(engine_params_from(config.internal_model));
  const std::string fp = engine->info().fingerprint;

  // Nothing trained yet: says to train.
  try {
    TaskRouter router(engine, config);
    FAIL() << "a head strategy without a head loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tinyroute train"), std::string::npos) << e.what();
  }

  const TrainingData d = training_data();
  const auto x = embed_texts(*engine, d.texts, 64);
  // A head for another model: refused, naming both fingerprints.
  const std::string other_fp(64, 'a');
  save_head(train_head(x, d.y, labels, "categories", other_fp), state.path());
  try {
    TaskRouter router(engine, config);
    FAIL() << "a head for another model was loaded";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(other_fp.substr(0, 16)), std::string::npos) << msg;
    EXPECT_NE(msg.find(fp.substr(0, 16)), std::string::npos) << msg;
  }
  // A head for another label set (a category renamed): refused, naming both label sets.
  std::filesystem::remove_all(state.file("heads"));
  std::vector<std::string> renamed = labels;
  renamed.back() = "smalltalk";
  save_head(train_head(x, d.y, renamed, "categories", fp), state.path());
  try {
    load_head(state.path(), "categories", fp, labels);
    FAIL() << "a head for another label set was loaded";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(label_set_hash(renamed).substr(0, 16)), std::string::npos) << msg;
    EXPECT_NE(msg.find(label_set_hash(labels).substr(0, 16)), std::string::npos) << msg;
  }
  // A file under the right name whose contents are for another model: refused too.
  const std::string right = head_path(state.path(), "categories", fp, label_set_hash(labels));
  Head forged = train_head(x, d.y, labels, "categories", other_fp);
  std::filesystem::create_directories(std::filesystem::path(right).parent_path());
  test::write_file(right, serialize_head(forged));
  EXPECT_THROW(load_head(state.path(), "categories", fp, labels), Error);
  // The right head loads.
  save_head(train_head(x, d.y, labels, "categories", fp), state.path());
  EXPECT_EQ(load_head(state.path(), "categories", fp, labels).label_hash, label_set_hash(labels));
  // A head for another hidden layer: a file of its own, refused on an engine that reads another layer.
  HeadTrainOptions block2;
  block2.hidden_layer = 2;
  const std::string at2 = save_head(train_head(x, d.y, labels, "categories", fp, block2), state.path());
  EXPECT_EQ(at2, head_path(state.path(), "categories", fp, label_set_hash(labels), 2));
  EXPECT_NE(at2, right);
  EXPECT_EQ(load_head(state.path(), "categories", fp, labels, 2).hidden_layer, 2);
  test::write_file(right, test::read_file(at2));
  try {
    load_head(state.path(), "categories", fp, labels);
    FAIL() << "a head for block 2 was loaded for the final layer";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("block 2"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("the final layer"), std::string::npos) << e.what();
  }
}

// ---- fused ---------------------------------------------------------------------------------------

// Labels drawn from softmax(h + w log p): fit_fusion finds w (on its 0.1 grid) and a temperature near 1;
// a prompt that says nothing about the labels gets (almost) no weight, and the head keeps its scale.
TEST(Fusion, RecoversTheWeightOfAPromptThatHelpsAndIgnoresOneThatDoesNot) {
  std::mt19937 rng(11);
  std::normal_distribution<double> g(0.0, 1.0);
  const auto softmax = [](std::vector<double> z) {
    const double mx = *std::max_element(z.begin(), z.end());
    double sum = 0;
    for (double& v : z) sum += v = std::exp(v - mx);
    for (double& v : z) v /= sum;
    return z;
  };
  std::vector<std::vector<double>> head, prompt, noise;
  std::vector<int> y, y_head; // y: from the head and the prompt; y_head: from the head alone
  for (int i = 0; i < 20000; ++i) {
    std::vector<double> h(4), q(4), z(4), n(4);
    for (size_t k = 0; k < 4; ++k) h[k] = g(rng), q[k] = 2 * g(rng), n[k] = 2 * g(rng);
    const std::vector<double> p = softmax(q);
    for (size_t k = 0; k < 4; ++k) z[k] = h[k] + 1.5 * std::log(p[k]);
    const std::vector<double> truth = softmax(z);
    std::discrete_distribution<int> pick(truth.begin(), truth.end());
    y.push_back(pick(rng));
    const std::vector<double> alone = softmax(h);
    std::discrete_distribution<int> pick_alone(alone.begin(), alone.end());
    y_head.push_back(pick_alone(rng));
    head.push_back(h), prompt.push_back(p), noise.push_back(softmax(n));
  }
  const Fusion helps = fit_fusion(head, prompt, y);
  EXPECT_NEAR(helps.weight, 1.5, 0.11);
  EXPECT_NEAR(helps.temperature, 1.0, 0.1);
  EXPECT_EQ(helps.n_fitted, 20000);
  const Fusion useless = fit_fusion(head, noise, y_head);
  EXPECT_LE(useless.weight, 0.1);
  EXPECT_NEAR(useless.temperature, 1.0, 0.1);
  EXPECT_THROW(fit_fusion({}, {}, {}), Error);
}

// The threshold for a target precision against its brute-force twin: try every distinct confidence as
// the threshold and keep the lowest whose accepted set reaches the target.
TEST(PrecisionThreshold, IsTheLowestConfidenceThatReachesTheTargetAsBruteForceFindsIt) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (int round = 0; round < 50; ++round) {
    std::vector<std::vector<double>> probs;
    std::vector<int> y;
    const int n = 1 + static_cast<int>(rng() % 60);
    for (int i = 0; i < n; ++i) {
      // Rounded, so that equal confidences (ties) occur.
      const double top = std::round((0.34 + 0.66 * u(rng)) * 20) / 20;
      probs.push_back({top, (1 - top) / 2, (1 - top) / 2});
      // Confident rows are more often right, as with a real classifier.
      y.push_back(u(rng) < top ? 0 : 1 + static_cast<int>(rng() % 2));
    }
    for (double target : {0.5, 0.8, 0.95, 1.0}) {
      const PrecisionThreshold got = threshold_for_precision(probs, y, target);
      std::optional<double> want;
      double want_coverage = 0;
      for (const auto& candidate : probs) {
        const double t = candidate[0];
        int accepted = 0, correct = 0;
        for (size_t i = 0; i < probs.size(); ++i)
          if (probs[i][0] >= t) ++accepted, correct += y[i] == 0;
        if (correct >= target * accepted && (!want || t < *want))
          want = t, want_coverage = static_cast<double>(accepted) / n;
      }
      ASSERT_EQ(got.reached, want.has_value()) << "round " << round << " target " << target;
      if (want) {
        EXPECT_DOUBLE_EQ(got.threshold, *want) << "round " << round << " target " << target;
        EXPECT_DOUBLE_EQ(got.coverage, want_coverage) << "round " << round << " target " << target;
      }
    }
  }
}

// fused's prompt for the config's categories, as the strategy builds it.
LabelScorer fused_prompt(Engine& engine, const Config& config) {
  LabelScorerOptions options = classify_options(config);
  options.strategy = prompt_strategy(Strategy::fused, config.categories.size());
  return LabelScorer(engine, category_labels(config), options);
}

// A head trained on training_data(), with its fusion fitted beside `prompt`.
Head fused_head(Engine& engine, const Config& config, const LabelScorer& prompt) {
  const TrainingData d = training_data();
  const auto x = embed_texts(engine, d.texts, 64);
  Head head = train_head(x, d.y, category_names(config), "categories", engine.info().fingerprint);
  head.fusion = fit_fusion(prompt, head, d.texts, x, d.y, HeadTrainOptions{}.heldout_every);
  return head;
}

TEST(FusedStrategy, IsTheHeadAndThePromptCombinedAsFittedAndAgreesWithItsTwin) {
  test::TempDir state;
  const Config config = make_config("fused", 0.0, state.path());
  auto engine = std::make_shared<Engine>(engine_params_from(config.internal_model));
  const LabelScorer prompt = fused_prompt(*engine, config);
  EXPECT_EQ(prompt.options().strategy, Strategy::choice);
  const Head head = fused_head(*engine, config, prompt);
  EXPECT_EQ(head.fusion->n_fitted, head.n_heldout);
  EXPECT_EQ(head.fusion->prompt_hash, prompt.prompt_hash());
  const Head round_trip = parse_head(serialize_head(head), "memory");
  ASSERT_TRUE(round_trip.fusion);
  EXPECT_EQ(serialize_head(round_trip), serialize_head(head));
  save_head(head, state.path());

  TaskRouter router(engine, config);
  EXPECT_EQ(router.classifier().scorer().prompt_hash(), prompt.prompt_hash());
  for (const auto& t : kTexts) {
    const ClassifyResult r = router.classify_task(t).get();
    EXPECT_EQ(r.strategy, Strategy::fused);
    const std::vector<double> want = fused_probs(head, engine->embed(t).get(), prompt.score(t).get().probs);
    ASSERT_EQ(r.distribution.size(), want.size());
    for (size_t k = 0; k < want.size(); ++k) EXPECT_NEAR(r.distribution[k].second, want[k], 1e-9) << t;
    // The twin decodes the prompt from scratch for every label.
    const LabelDistribution twin = router.classifier().scorer().score_reference(t);
    for (size_t k = 0; k < want.size(); ++k) EXPECT_NEAR(twin.probs[k], want[k], 1e-3) << t;
  }
}

// A fusion whose prompt weight is 0 does not ask the prompt: one engine request per decision, and the
// same distribution as when the prompt is asked.
TEST(FusedStrategy, APromptWithoutWeightIsNotAsked) {
  test::TempDir state;
  const Config config = make_config("fused", 0.0, state.path());
  auto engine = std::make_shared<Engine>(engine_params_from(config.internal_model));
  const LabelScorer prompt = fused_prompt(*engine, config);
  Head head = fused_head(*engine, config, prompt);
  for (const double weight : {0.0, 0.7}) {
    head.fusion->weight = weight;
    save_head(head, state.path());
    TaskRouter router(engine, config);
    for (const auto& t : kTexts) {
      const std::uint64_t before = engine->stats().requests;
      const ClassifyResult r = router.classify_task(t).get();
      EXPECT_EQ(engine->stats().requests - before, weight > 0 ? 2U : 1U) << t;
      const std::vector<double> want = fused_probs(head, engine->embed(t).get(), prompt.score(t).get().probs);
      for (size_t k = 0; k < want.size(); ++k) EXPECT_NEAR(r.distribution[k].second, want[k], 1e-9) << t;
    }
  }
}

// ---- training data ------------------------------------------------------------------------------

class TrainingSet : public ::testing::TestWithParam<std::pair<std::string, std::string>> {};

TEST_P(TrainingSet, BadInputIsRefusedWithItsLine) {
  test::TempDir dir;
  const std::string path = dir.file("data.jsonl");
  test::write_file(path, GetParam().first);
  try {
    read_training_set(path, {"coding", "math"});
    FAIL() << "accepted: " << GetParam().first;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find(GetParam().second), std::string::npos) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, TrainingSet,
    ::testing::Values(std::pair<std::string, std::string>{"", "no examples"},
                      std::pair<std::string, std::string>{"\n  \n", "no examples"},
                      std::pair<std::string, std::string>{R"({"text":"a","label":"coding"}
{"text":"b","label":"poetry"}
)",
                                                          "data.jsonl:2: label \"poetry\" is not one of"},
                      std::pair<std::string, std::string>{R"({"text":"a","label":"coding"}

{"text": "b", "label": "math"
)",
                                                          "data.jsonl:3: not a JSON object"},
                      std::pair<std::string, std::string>{R"({"text":1,"label":"math"})",
                                                          "data.jsonl:1: \"text\" must be a string"}));

TEST(TrainingSetGood, ReadsLabelsAsIndices) {
  test::TempDir dir;
  const std::string path = dir.file("data.jsonl");
  test::write_file(path, "{\"text\":\"a\",\"label\":\"math\"}\n\n{\"text\":\"b\",\"label\":\"coding\"}\n");
  const auto set = read_training_set(path, {"coding", "math"});
  ASSERT_EQ(set.size(), 2U);
  EXPECT_EQ(set[0].label, 1);
  EXPECT_EQ(set[1].text, "b");
  EXPECT_EQ(set[1].label, 0);
}

} // namespace
} // namespace tinyroute
