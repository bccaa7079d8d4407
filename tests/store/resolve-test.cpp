// resolve_model_path, default_cache_dir and the known-model table.
#include "test-support.h"
#include "tinyroute/error.h"
#include "tinyroute/pull.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <optional>

namespace fs = std::filesystem;
using tinyroute::Error;
using tinyroute::ErrorCode;
using tinyroute::resolve_model_path;
using tinyroute::test::TempDir;

namespace {

constexpr const char* kTinyFile = "tinyllama-1.1b-chat-v1.0.Q4_K_M.gguf";

std::string not_found_message(const std::string& arg, const std::string& cache_dir) {
  try {
    resolve_model_path(arg, cache_dir);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::model_not_found) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "resolve_model_path(" << arg << ") did not throw";
  return {};
}

// Sets (or, with nullopt, unsets) an environment variable for one test and restores it after.
class EnvVar {
public:
  EnvVar(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      ::setenv(name, value->c_str(), 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~EnvVar() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  EnvVar(const EnvVar&) = delete;
  EnvVar& operator=(const EnvVar&) = delete;

private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(KnownModels, TinyLlamaIsTheDefault) {
  const auto* m = tinyroute::find_known_model(tinyroute::kDefaultModelName);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(tinyroute::find_known_model("tinyllama"), m);
  EXPECT_EQ(m->file_name, kTinyFile);
  EXPECT_EQ(m->size, 668788096U);
  EXPECT_TRUE(m->url.starts_with("https://huggingface.co/TheBloke/TinyLlama-1.1B-Chat-v1.0-GGUF/"));
  EXPECT_TRUE(m->url.ends_with(std::string("/") + kTinyFile));
  EXPECT_TRUE(m->sha256.empty() || m->sha256.size() == 64);
  EXPECT_EQ(tinyroute::find_known_model("TinyLlama"), nullptr); // exact names only
  EXPECT_EQ(tinyroute::known_models().size(), 2U);
}

// The real internal model scripts/fetch-model.sh puts in the cache: a config can name it.
TEST(KnownModels, Gemma3IsKnownByNameWithItsChecksum) {
  const auto* m = tinyroute::find_known_model("gemma-3-270m");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->file_name, "gemma-3-270m-q4_k_m.gguf");
  EXPECT_EQ(m->size, 253113024U);
  EXPECT_EQ(m->sha256, "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818");
  EXPECT_NE(m->description.find("scripts/fetch-model.sh"), std::string_view::npos);
  TempDir dir;
  EnvVar c("TINYROUTE_CACHE", dir.path());
  fs::create_directories(dir.file("models"));
  tinyroute::test::write_file(dir.file("models/gemma-3-270m-q4_k_m.gguf"), "GGUF");
  EXPECT_EQ(resolve_model_path("gemma-3-270m"), dir.file("models/gemma-3-270m-q4_k_m.gguf"));
}

TEST(ResolveModelPath, AnExistingFileIsReturnedAsGiven) {
  TempDir dir;
  tinyroute::test::write_file(dir.file("my.gguf"), "GGUF");
  EXPECT_EQ(resolve_model_path(dir.file("my.gguf"), dir.file("cache")), dir.file("my.gguf"));
}

TEST(ResolveModelPath, KnownNameAndAliasFindTheCachedFile) {
  TempDir dir;
  tinyroute::test::write_file(dir.file(kTinyFile), "GGUF");
  EXPECT_EQ(resolve_model_path("tinyllama-1.1b-chat", dir.path()), dir.file(kTinyFile));
  EXPECT_EQ(resolve_model_path("tinyllama", dir.path()), dir.file(kTinyFile));
  // A bare file name in the cache works too.
  EXPECT_EQ(resolve_model_path(kTinyFile, dir.path()), dir.file(kTinyFile));
}

TEST(ResolveModelPath, MissingKnownModelSaysHowToGetIt) {
  TempDir dir;
  tinyroute::test::write_file(dir.file(std::string(kTinyFile) + ".part"), "GG"); // not a model yet
  const std::string msg = not_found_message("tinyllama", dir.path());
  EXPECT_NE(msg.find("run `tinyroute pull tinyllama-1.1b-chat`"), std::string::npos) << msg;
  EXPECT_NE(msg.find(dir.file(kTinyFile)), std::string::npos) << msg;
  EXPECT_NE(msg.find("https://huggingface.co/"), std::string::npos) << msg;
}

TEST(ResolveModelPath, UrlMapsToItsCacheFile) {
  TempDir dir;
  const std::string url = "https://example.com/org/repo/resolve/main/Some%20Model.Q8_0.gguf?download=true";
  std::string msg = not_found_message(url, dir.path());
  EXPECT_NE(msg.find("tinyroute pull '" + url + "'"), std::string::npos) << msg;
  EXPECT_NE(msg.find(dir.file("Some Model.Q8_0.gguf")), std::string::npos) << msg;
  tinyroute::test::write_file(dir.file("Some Model.Q8_0.gguf"), "GGUF");
  EXPECT_EQ(resolve_model_path(url, dir.path()), dir.file("Some Model.Q8_0.gguf"));
}

TEST(ResolveModelPath, UnknownNameListsTheKnownOnes) {
  TempDir dir;
  const std::string msg = not_found_message("/no/such/model.gguf", dir.path());
  EXPECT_NE(msg.find("/no/such/model.gguf"), std::string::npos) << msg;
  EXPECT_NE(msg.find("tinyllama-1.1b-chat"), std::string::npos) << msg;
  EXPECT_NE(msg.find("tinyroute pull"), std::string::npos) << msg;
}

TEST(ResolveModelPath, ADirectoryIsNotAModel) {
  TempDir dir;
  const std::string msg = not_found_message(dir.path(), dir.path());
  EXPECT_NE(msg.find("directory"), std::string::npos) << msg;
}

TEST(DefaultCacheDir, FollowsTheEnvironment) {
  {
    EnvVar a("TINYROUTE_CACHE", "/srv/tr");
    EnvVar b("XDG_CACHE_HOME", "/xdg");
    EXPECT_EQ(tinyroute::default_cache_dir(), "/srv/tr/models");
  }
  {
    EnvVar a("TINYROUTE_CACHE", ""); // empty counts as unset, as in ${VAR:-default}
    EnvVar b("XDG_CACHE_HOME", "/xdg");
    EXPECT_EQ(tinyroute::default_cache_dir(), "/xdg/tinyroute/models");
  }
  {
    EnvVar a("TINYROUTE_CACHE", std::nullopt);
    EnvVar b("XDG_CACHE_HOME", std::nullopt);
    EnvVar c("HOME", "/home/someone");
    EXPECT_EQ(tinyroute::default_cache_dir(), "/home/someone/.cache/tinyroute/models");
  }
  {
    EnvVar a("TINYROUTE_CACHE", std::nullopt);
    EnvVar b("XDG_CACHE_HOME", std::nullopt);
    EnvVar c("HOME", std::nullopt); // falls back to the password database
    EXPECT_TRUE(tinyroute::default_cache_dir().ends_with("/.cache/tinyroute/models"));
  }
}

TEST(DefaultCacheDir, IsUsedWhenNoCacheDirIsGiven) {
  TempDir dir;
  EnvVar a("TINYROUTE_CACHE", dir.path());
  fs::create_directories(dir.file("models"));
  tinyroute::test::write_file(dir.file(std::string("models/") + kTinyFile), "GGUF");
  EXPECT_EQ(resolve_model_path("tinyllama"), dir.file(std::string("models/") + kTinyFile));
}

} // namespace
