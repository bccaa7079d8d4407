// render_progress and format_bytes: pure formatting, checked as tables.
#include "tinyroute/pull.h"

#include <gtest/gtest.h>

namespace {

using tinyroute::format_bytes;
using tinyroute::render_progress;

TEST(FormatBytes, Table) {
  const std::vector<std::pair<uint64_t, std::string>> cases = {
      {0, "0 B"},
      {1023, "1023 B"},
      {1024, "1.0 KiB"},
      {1536, "1.5 KiB"},
      {1048575, "1.0 MiB"}, // not "1024.0 KiB"
      {668788096, "637.8 MiB"},
      {5ULL << 30, "5.0 GiB"},
      {3ULL << 40, "3.0 TiB"},
  };
  for (const auto& [bytes, want] : cases) EXPECT_EQ(format_bytes(bytes), want) << bytes;
}

struct Case {
  uint64_t done;
  uint64_t total;
  double rate;
  int width;
  std::string want;
};

TEST(RenderProgress, Table) {
  constexpr uint64_t kTiny = 668788096; // TinyLlama Q4_K_M
  constexpr double kRate = 12.4 * 1024 * 1024;
  const std::vector<Case> cases = {
      // Wide: bar + everything; the line is exactly `width` long.
      {kTiny / 2, kTiny, kRate, 80,
       "[=============>             ]   50%  318.9 MiB / 637.8 MiB  12.4 MiB/s  ETA 0:26"},
      {0, 1000, 0, 40, "[>                 ]    0%  0 B / 1000 B"},
      {1000, 1000, 100, 50, "[================]  100%  1000 B / 1000 B  100 B/s"},
      {2000, 1000, 0, 40, "[==============]  100%  2.0 KiB / 1000 B"}, // done past total clamps
      {999, 1000, 0, 30, "[=====>]   99%  999 B / 1000 B"},            // 100% only when complete
      // Narrow: the bar goes, then ETA, speed, sizes; the percentage stays.
      {kTiny / 2, kTiny, kRate, 49, " 50%  318.9 MiB / 637.8 MiB  12.4 MiB/s  ETA 0:26"},
      {kTiny / 2, kTiny, kRate, 40, " 50%  318.9 MiB / 637.8 MiB  12.4 MiB/s"},
      {kTiny / 2, kTiny, kRate, 30, " 50%  318.9 MiB / 637.8 MiB"},
      {kTiny / 2, kTiny, kRate, 10, " 50%"},
      {kTiny / 2, kTiny, kRate, 3, " 50"},
      {kTiny / 2, kTiny, kRate, 0, ""},
      // Unknown total: bytes and speed only.
      {1536, 0, 0, 80, "1.5 KiB"},
      {1536, 0, 2048, 80, "1.5 KiB  2.0 KiB/s"},
      {1536, 0, 2048, 8, "1.5 KiB"},
      // Hours-long ETA; an absurd one is left out.
      {0, 10ULL << 30, 1024 * 1024, 44, "  0%  0 B / 10.0 GiB  1.0 MiB/s  ETA 2:50:40"},
      {0, 10ULL << 30, 1, 27, "  0%  0 B / 10.0 GiB  1 B/s"},
  };
  for (const auto& c : cases) {
    const std::string got = render_progress(c.done, c.total, c.rate, c.width);
    EXPECT_EQ(got, c.want) << "done=" << c.done << " total=" << c.total << " rate=" << c.rate
                           << " width=" << c.width;
    EXPECT_LE(got.size(), static_cast<size_t>(std::max(c.width, 0)));
    if (got.starts_with("[")) { // a bar fills the line
      EXPECT_EQ(got.size(), static_cast<size_t>(c.width)) << got;
    }
  }
}

TEST(RenderProgress, BarGrowsMonotonically) {
  size_t last = 0;
  for (uint64_t done = 0; done <= 1000; done += 7) {
    const std::string line = render_progress(done, 1000, 0, 60);
    ASSERT_EQ(line.size(), 60U) << line;
    const size_t filled = line.find_first_not_of('=', 1) - 1;
    EXPECT_GE(filled, last) << line;
    last = filled;
  }
}

} // namespace
