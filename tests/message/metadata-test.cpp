// extract_metadata: enumerated fields within their sets, bounded topics, the tokenizer's count,
// determinism, the size limit.
#include <gtest/gtest.h>

#include "core/utf8.h"
#include "message-fixture.h"
#include "tinyroute/agent-message.h"
#include "tinyroute/metadata.h"

namespace tinyroute {
namespace {

TEST(Metadata, FieldsStayWithinTheirSets) {
  Engine engine(test::message_engine_params());
  const Config config = test::team_config();
  const MetadataExtractor extractor(engine, config, {.max_tokens = 24});
  const std::vector<std::string> texts = {
      "Write a Python script that downloads yesterday's logs from S3 and counts the errors.",
      "Привет! Как дела?",
      "",
      std::string("\xFF\xFE garbage \xC3\x28", 14),
      "\"}\\u0000",
  };
  const auto in = [](const std::vector<std::string>& set, const std::string& v) {
    return std::find(set.begin(), set.end(), v) != set.end();
  };
  for (const auto& text : texts) {
    const MessageMetadata m = extractor.extract_metadata(text).get();
    EXPECT_TRUE(in(message_languages(), m.language)) << m.language;
    EXPECT_TRUE(in(message_priorities(), m.urgency)) << m.urgency;
    EXPECT_TRUE(m.complexity == "simple" || m.complexity == "complex") << m.complexity;
    EXPECT_FALSE(m.intent.empty());
    EXPECT_LE(utf8_length(m.intent), 64u);
    EXPECT_LE(m.topics.size(), 4u);
    for (const auto& t : m.topics) {
      EXPECT_FALSE(t.empty());
      EXPECT_LE(utf8_length(t), 32u);
    }
    EXPECT_EQ(m.estimated_tokens, static_cast<int>(engine.tokenize(sanitize_utf8(text), false).size()));
    const MessageMetadata again = extractor.extract_metadata(text).get();
    EXPECT_EQ(again.language, m.language);
    EXPECT_EQ(again.intent, m.intent);
    EXPECT_EQ(again.topics, m.topics);
    EXPECT_EQ(again.needs_tools, m.needs_tools);
  }
  EXPECT_EQ(extractor.extract_metadata("").get().language, "und");
  EXPECT_NE(extractor.grammar().find("char{1,32}"), std::string::npos) << extractor.grammar();
}

TEST(Metadata, SizeLimitIsEnforced) {
  Engine engine(test::message_engine_params());
  const MetadataExtractor extractor(engine, test::team_config("agent_routing: {max_message_bytes: 10}\n"),
                                    {.max_tokens = 8});
  EXPECT_THROW(extractor.extract_metadata(std::string(11, 'a')), Error);
}

} // namespace
} // namespace tinyroute
