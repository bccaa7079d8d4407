// pull_model against a real HTTP server on loopback: download, resume, Range ignored, bad bytes,
// HTTP errors, refused connections, stalls, files already present.
#include "file-server.h"
#include "test-support.h"
#include "tinyroute/error.h"
#include "tinyroute/pull.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <thread>

namespace fs = std::filesystem;
using tinyroute::Error;
using tinyroute::ErrorCode;
using tinyroute::pull_model;
using tinyroute::PullOptions;
using tinyroute::PullResult;
using tinyroute::test::FileServer;
using tinyroute::test::TempDir;

namespace {

std::string random_bytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng() & 0xff);
  return out;
}

// Independent of the library's streaming sha256_file.
std::string sha256_hex(const std::string& data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md.data(), &len, EVP_sha256(), nullptr);
  std::string out;
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 0xf];
  }
  return out;
}

// What FileServer::Mode::wrong_bytes serves.
std::string inverted(std::string s) {
  for (char& c : s) c = static_cast<char>(~static_cast<unsigned char>(c));
  return s;
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// Runs `f`, expects tinyroute::Error with `code`, returns its message.
template <class F> std::string error_of(F&& f, ErrorCode code) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no tinyroute::Error thrown";
  return {};
}

class PullTest : public ::testing::Test {
protected:
  static constexpr size_t kSize = 3 * 1024 * 1024 + 123; // not a multiple of any buffer size
  static constexpr uint64_t kCut = 1024 * 1024;

  PullTest() : body_(random_bytes(kSize, 42)), sha_(sha256_hex(body_)), server_(body_) {}

  PullOptions options(const std::string& path = "/model.gguf") const {
    PullOptions o;
    o.name_or_url = server_.url(path);
    o.cache_dir = dir_.file("models");
    o.connect_timeout_s = 5;
    o.low_speed_time_s = 10;
    return o;
  }
  std::string dest() const { return dir_.file("models/model.gguf"); }
  std::string part() const { return dest() + ".part"; }

  // Leaves a kCut-byte .part behind, the way an interrupted download does.
  void interrupted_pull() {
    server_.set_mode(FileServer::Mode::drop_after, kCut);
    const std::string msg = error_of([&] { pull_model(options()); }, ErrorCode::download_failed);
    EXPECT_NE(msg.find(server_.url()), std::string::npos) << msg;
    EXPECT_NE(msg.find("resume"), std::string::npos) << msg;
    EXPECT_NE(msg.find(part()), std::string::npos) << msg;
    ASSERT_TRUE(fs::exists(part()));
    EXPECT_EQ(fs::file_size(part()), kCut);
    EXPECT_FALSE(fs::exists(dest()));
  }

  TempDir dir_;
  std::string body_;
  std::string sha_;
  FileServer server_;
};

TEST_F(PullTest, DownloadsAndRecordsTheChecksum) {
  std::vector<std::pair<uint64_t, uint64_t>> calls;
  PullOptions o = options();
  o.progress = [&](uint64_t done, uint64_t total) { calls.emplace_back(done, total); };
  const PullResult r = pull_model(o);

  EXPECT_EQ(r.path, dest());
  EXPECT_EQ(r.bytes, kSize);
  EXPECT_EQ(r.sha256, sha_);
  EXPECT_FALSE(r.verified); // nothing to verify against on a first download by URL
  EXPECT_FALSE(r.already_present);
  EXPECT_FALSE(r.resumed);
  EXPECT_EQ(tinyroute::test::read_file(dest()), body_);
  EXPECT_FALSE(fs::exists(part()));
  EXPECT_EQ(tinyroute::test::read_file(dest() + ".sha256"), sha_ + "  model.gguf\n");
  EXPECT_EQ(server_.requests(), 1);
  EXPECT_EQ(server_.ranges(), std::vector<std::string>{""});

  ASSERT_FALSE(calls.empty());
  EXPECT_EQ(calls.back(), std::make_pair(uint64_t{kSize}, uint64_t{kSize}));
  for (size_t i = 1; i < calls.size(); ++i) EXPECT_GE(calls[i].first, calls[i - 1].first);
  for (const auto& [done, total] : calls) EXPECT_EQ(total, kSize);
}

TEST_F(PullTest, VerifiesAnExplicitSha256) {
  PullOptions o = options();
  o.expected_sha256 = upper(sha_); // case does not matter
  const PullResult r = pull_model(o);
  EXPECT_TRUE(r.verified);
  EXPECT_EQ(r.sha256_source, "--sha256");
  EXPECT_EQ(r.sha256, sha_);
}

TEST_F(PullTest, FollowsRedirects) {
  const PullResult r = pull_model(options("/redirect/model.gguf"));
  EXPECT_EQ(r.path, dest());
  EXPECT_EQ(tinyroute::test::read_file(dest()), body_);
  EXPECT_EQ(server_.requests(), 2);
}

TEST_F(PullTest, AlreadyPresentFileMakesNoRequest) {
  pull_model(options());
  server_.reset_counts();
  const PullResult r = pull_model(options());
  EXPECT_TRUE(r.already_present);
  EXPECT_TRUE(r.verified); // against the .sha256 the first pull recorded
  EXPECT_EQ(r.sha256_source, dest() + ".sha256");
  EXPECT_EQ(r.sha256, sha_);
  EXPECT_EQ(server_.requests(), 0);
}

TEST_F(PullTest, HandPlacedFileWithMatchingSha256MakesNoRequest) {
  fs::create_directories(dir_.file("models"));
  tinyroute::test::write_file(dest(), body_);
  PullOptions o = options();
  o.expected_sha256 = sha_;
  const PullResult r = pull_model(o);
  EXPECT_TRUE(r.already_present);
  EXPECT_TRUE(r.verified);
  EXPECT_EQ(server_.requests(), 0);
  EXPECT_EQ(tinyroute::test::read_file(dest() + ".sha256"), sha_ + "  model.gguf\n");
}

TEST_F(PullTest, DamagedFileIsReplaced) {
  fs::create_directories(dir_.file("models"));
  tinyroute::test::write_file(dest(), "not the model");
  PullOptions o = options();
  o.expected_sha256 = sha_;
  const PullResult r = pull_model(o);
  EXPECT_FALSE(r.already_present);
  EXPECT_EQ(server_.requests(), 1);
  EXPECT_EQ(tinyroute::test::read_file(dest()), body_);
}

TEST_F(PullTest, ResumesAnInterruptedDownload) {
  interrupted_pull();
  server_.set_mode(FileServer::Mode::normal);
  std::vector<std::pair<uint64_t, uint64_t>> calls;
  PullOptions o = options();
  o.expected_sha256 = sha_;
  o.progress = [&](uint64_t done, uint64_t total) { calls.emplace_back(done, total); };
  const PullResult r = pull_model(o);

  EXPECT_TRUE(r.resumed);
  EXPECT_TRUE(r.verified);
  EXPECT_EQ(r.sha256, sha_);
  EXPECT_EQ(tinyroute::test::read_file(dest()), body_);
  EXPECT_FALSE(fs::exists(part()));
  const auto ranges = server_.ranges();
  ASSERT_EQ(ranges.size(), 2U);
  EXPECT_EQ(ranges[1], "bytes=" + std::to_string(kCut) + "-");
  // Progress counts the kept prefix: it starts past the cut and ends at the full size.
  ASSERT_FALSE(calls.empty());
  EXPECT_GT(calls.front().first, kCut);
  EXPECT_EQ(calls.front().second, kSize);
  EXPECT_EQ(calls.back(), std::make_pair(uint64_t{kSize}, uint64_t{kSize}));
}

TEST_F(PullTest, RestartsFromZeroWhenTheServerIgnoresRange) {
  interrupted_pull();
  server_.set_mode(FileServer::Mode::ignore_range);
  PullOptions o = options();
  o.expected_sha256 = sha_;
  const PullResult r = pull_model(o);

  EXPECT_FALSE(r.resumed);
  EXPECT_EQ(r.sha256, sha_);
  EXPECT_EQ(tinyroute::test::read_file(dest()), body_);
  const auto ranges = server_.ranges();
  ASSERT_EQ(ranges.size(), 3U); // cut, ignored Range, whole file
  EXPECT_EQ(ranges[1], "bytes=" + std::to_string(kCut) + "-");
  EXPECT_EQ(ranges[2], "");
}

TEST_F(PullTest, RestartsFromZeroWhenThePartIsLongerThanTheFile) {
  fs::create_directories(dir_.file("models"));
  tinyroute::test::write_file(part(), body_ + "trailing junk"); // server answers 416
  const PullResult r = pull_model(options());
  EXPECT_FALSE(r.resumed);
  EXPECT_EQ(tinyroute::test::read_file(dest()), body_);
  const auto ranges = server_.ranges();
  ASSERT_EQ(ranges.size(), 2U);
  EXPECT_EQ(ranges[0], "bytes=" + std::to_string(kSize + 13) + "-");
  EXPECT_EQ(ranges[1], "");
}

TEST_F(PullTest, WrongBytesFailTheChecksumAndLeaveNothing) {
  server_.set_mode(FileServer::Mode::wrong_bytes);
  PullOptions o = options();
  o.expected_sha256 = sha_;
  const std::string msg = error_of([&] { pull_model(o); }, ErrorCode::checksum_mismatch);
  EXPECT_NE(msg.find(sha_), std::string::npos) << msg;
  EXPECT_NE(msg.find(sha256_hex(inverted(body_))), std::string::npos) << msg; // the actual one
  EXPECT_FALSE(fs::exists(dest()));
  EXPECT_FALSE(fs::exists(part()));
  EXPECT_FALSE(fs::exists(dest() + ".sha256"));
}

TEST_F(PullTest, RecordedChecksumCatchesAChangedUpstreamFile) {
  pull_model(options());
  fs::remove(dest());
  server_.set_mode(FileServer::Mode::wrong_bytes);
  const std::string msg = error_of([&] { pull_model(options()); }, ErrorCode::checksum_mismatch);
  EXPECT_NE(msg.find(dest() + ".sha256"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(dest()));
  EXPECT_FALSE(fs::exists(part()));
}

TEST_F(PullTest, HttpErrorNamesTheStatus) {
  server_.set_mode(FileServer::Mode::status, 0, 404);
  const std::string msg = error_of([&] { pull_model(options()); }, ErrorCode::download_failed);
  EXPECT_NE(msg.find("404"), std::string::npos) << msg;
  EXPECT_NE(msg.find(server_.url()), std::string::npos) << msg;
  EXPECT_NE(msg.find("save it as " + dest()), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(part())); // the error page is never written
  EXPECT_FALSE(fs::exists(dest()));
}

TEST_F(PullTest, RefusedConnectionSaysWhereToPutTheFile) {
  const std::string url = "http://127.0.0.1:" + std::to_string(tinyroute::test::free_port()) + "/model.gguf";
  PullOptions o = options();
  o.name_or_url = url;
  const auto start = std::chrono::steady_clock::now();
  const std::string msg = error_of([&] { pull_model(o); }, ErrorCode::download_failed);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_NE(msg.find("cannot download " + url), std::string::npos) << msg;
  EXPECT_NE(msg.find("by hand"), std::string::npos) << msg;
  EXPECT_NE(msg.find("save it as " + dest()), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(part()));
}

TEST_F(PullTest, StalledTransferTimesOutAndKeepsThePart) {
  // Few bytes, then silence: libcurl averages speed over ~5 s, so a big burst would delay the abort.
  server_.set_mode(FileServer::Mode::stall, 1000);
  PullOptions o = options();
  o.low_speed_time_s = 1;
  const auto start = std::chrono::steady_clock::now();
  const std::string msg = error_of([&] { pull_model(o); }, ErrorCode::download_failed);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(15));
  EXPECT_NE(msg.find(server_.url()), std::string::npos) << msg;
  EXPECT_EQ(fs::file_size(part()), 1000U);
}

TEST_F(PullTest, ProgressCallbackExceptionAbortsAndTheNextPullResumes) {
  PullOptions o = options();
  o.progress = [](uint64_t done, uint64_t) {
    if (done > 0) throw std::runtime_error("cancelled");
  };
  EXPECT_THROW(pull_model(o), std::runtime_error);
  ASSERT_TRUE(fs::exists(part()));
  EXPECT_GT(fs::file_size(part()), 0U);
  const PullResult r = pull_model(options());
  EXPECT_TRUE(r.resumed);
  EXPECT_EQ(tinyroute::test::read_file(dest()), body_);
}

TEST_F(PullTest, ConcurrentPullsDownloadOnce) {
  PullResult a;
  PullResult b;
  std::thread t([&] { a = pull_model(options()); });
  b = pull_model(options());
  t.join();
  EXPECT_EQ(server_.requests(), 1);
  EXPECT_NE(a.already_present, b.already_present);
  EXPECT_EQ(a.sha256, sha_);
  EXPECT_EQ(b.sha256, sha_);
  EXPECT_EQ(tinyroute::test::read_file(dest()), body_);
}

TEST(PullArguments, AreValidatedBeforeAnyNetwork) {
  TempDir dir;
  PullOptions o;
  o.cache_dir = dir.path();
  o.name_or_url = "no-such-model";
  std::string msg = error_of([&] { pull_model(o); }, ErrorCode::invalid_argument);
  EXPECT_NE(msg.find("tinyllama-1.1b-chat"), std::string::npos) << msg;

  o.name_or_url = "http://127.0.0.1:1/model.bin";
  msg = error_of([&] { pull_model(o); }, ErrorCode::invalid_argument);
  EXPECT_NE(msg.find(".gguf"), std::string::npos) << msg;

  o.name_or_url = "http://127.0.0.1:1/";
  error_of([&] { pull_model(o); }, ErrorCode::invalid_argument);

  o.name_or_url = "http://127.0.0.1:1/model.gguf";
  o.expected_sha256 = "abc";
  msg = error_of([&] { pull_model(o); }, ErrorCode::invalid_argument);
  EXPECT_NE(msg.find("64 hex"), std::string::npos) << msg;
}

TEST(Sha256File, MatchesKnownVectors) {
  TempDir dir;
  tinyroute::test::write_file(dir.file("abc"), "abc");
  EXPECT_EQ(tinyroute::sha256_file(dir.file("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  tinyroute::test::write_file(dir.file("empty"), "");
  EXPECT_EQ(tinyroute::sha256_file(dir.file("empty")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  error_of([&] { tinyroute::sha256_file(dir.file("missing")); }, ErrorCode::io);
}

} // namespace
