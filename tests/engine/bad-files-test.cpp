// Bad model files: each gets its own clear, typed error, never a crash (this suite runs under ASan/UBSan).
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "test-support.h"
#include "tinyroute/engine.h"

namespace tinyroute {
namespace {

ErrorCode load_error(const std::string& path, std::string* message = nullptr) {
  EngineParams p = engine_default_params();
  p.model_path = path;
  p.n_ctx = 256;
  try {
    Engine engine(p);
  } catch (const Error& e) {
    if (message) *message = e.what();
    return e.code();
  }
  ADD_FAILURE() << "loading " << path << " succeeded";
  return ErrorCode::internal;
}

TEST(BadFiles, MissingFileSaysNotFoundAndHowToGetOne) {
  std::string msg;
  EXPECT_EQ(load_error("/nonexistent/model.gguf", &msg), ErrorCode::model_not_found);
  EXPECT_NE(msg.find("/nonexistent/model.gguf"), std::string::npos);
  EXPECT_NE(msg.find("tinyroute pull"), std::string::npos);
}

TEST(BadFiles, DirectoryIsNotAModel) {
  test::TempDir dir;
  EXPECT_EQ(load_error(dir.path()), ErrorCode::model_not_found);
}

TEST(BadFiles, EmptyFileIsNotGguf) {
  test::TempDir dir;
  test::write_file(dir.file("empty.gguf"), "");
  EXPECT_EQ(load_error(dir.file("empty.gguf")), ErrorCode::not_gguf);
}

TEST(BadFiles, RandomBytesAreNotGguf) {
  test::TempDir dir;
  std::mt19937 rng(7);
  std::string bytes(1 << 16, '\0');
  for (auto& c : bytes) c = static_cast<char>(rng());
  bytes[0] = 'X';
  test::write_file(dir.file("random.gguf"), bytes);
  EXPECT_EQ(load_error(dir.file("random.gguf")), ErrorCode::not_gguf);
}

TEST(BadFiles, GgufMagicFollowedByGarbageIsCorrupt) {
  test::TempDir dir;
  std::mt19937 rng(11);
  std::string bytes = "GGUF";
  for (int i = 0; i < 4096; ++i) bytes.push_back(static_cast<char>(rng()));
  test::write_file(dir.file("garbage.gguf"), bytes);
  EXPECT_EQ(load_error(dir.file("garbage.gguf")), ErrorCode::corrupt_model);
}

TEST(BadFiles, TruncatedCopyOfARealModelIsCorrupt) {
  test::TempDir dir;
  const std::string full = test::read_file(test::tiny_model());
  for (const double fraction : {0.9, 0.5, 0.01}) {
    test::write_file(dir.file("cut.gguf"), full.substr(0, static_cast<size_t>(full.size() * fraction)));
    std::string msg;
    EXPECT_EQ(load_error(dir.file("cut.gguf"), &msg), ErrorCode::corrupt_model) << fraction;
  }
  test::write_file(dir.file("cut.gguf"), full.substr(0, full.size() - 1));
  std::string msg;
  EXPECT_EQ(load_error(dir.file("cut.gguf"), &msg), ErrorCode::corrupt_model);
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
}

TEST(BadFiles, UnknownArchitectureIsUnsupported) {
  test::TempDir dir;
  test::make_model(dir.file("alien.gguf"), {"--preset", "tiny", "--arch", "nosucharch"});
  std::string msg;
  EXPECT_EQ(load_error(dir.file("alien.gguf"), &msg), ErrorCode::unsupported_architecture);
  EXPECT_NE(msg.find("nosucharch"), std::string::npos) << msg;
}

TEST(BadFiles, VocabularyOnlyFileIsRefused) {
  std::string msg;
  EXPECT_EQ(load_error(TINYROUTE_VOCAB_GGUF, &msg), ErrorCode::corrupt_model);
  EXPECT_NE(msg.find("no tensors"), std::string::npos) << msg;
}

} // namespace
} // namespace tinyroute
