// extract_entities: deterministic deadlines, dates, addresses, URLs, paths, numbers and names from
// messages as people and agents write them, English and Russian, with "now" given.
#include "message/extract.h"

#include <gtest/gtest.h>

#include "message/schema-validate.h"
#include "tinyroute/agent-message.h"

namespace tinyroute {
namespace {

// Monday 2026-12-07: every relative date below resolves against it.
const CivilDate kMonday{2026, 12, 7};

std::vector<std::string> dates_of(const Extraction& x) {
  std::vector<std::string> out;
  for (const auto& d : x.dates) out.push_back(d.date);
  return out;
}

std::vector<std::pair<double, std::string>> numbers_of(const Extraction& x) {
  std::vector<std::pair<double, std::string>> out;
  for (const auto& n : x.numbers) out.emplace_back(n.value, n.unit);
  return out;
}

using Numbers = std::vector<std::pair<double, std::string>>;
using Strings = std::vector<std::string>;

TEST(Extract, CalendarArithmetic) {
  EXPECT_EQ(iso_date(add_days({2026, 12, 31}, 1)), "2027-01-01");
  EXPECT_EQ(iso_date(add_days({2028, 2, 28}, 1)), "2028-02-29");
  EXPECT_EQ(iso_date(add_days({2027, 3, 1}, -1)), "2027-02-28");
  ASSERT_TRUE(parse_iso_date("2026-12-07T09:14:03.512Z"));
  EXPECT_EQ(iso_date(*parse_iso_date("2026-12-07T09:14:03.512Z")), "2026-12-07");
  EXPECT_FALSE(parse_iso_date("2026-02-30"));
  EXPECT_FALSE(parse_iso_date("2026-1-07"));
  EXPECT_FALSE(parse_iso_date("yesterday"));
}

struct DeadlineCase {
  const char* text;
  const char* deadline; // nullptr: none
};

TEST(Extract, DeadlinesInEnglishAndRussian) {
  const DeadlineCase cases[] = {
      {"Please refund invoice 42 for Anna by 2025-03-01", "2025-03-01"},
      {"Can you finish the migration by Friday?", "2026-12-11"},
      {"Need the quarterly report before next Monday.", "2026-12-14"},
      {"Ship the hotfix by tomorrow, please", "2026-12-08"},
      {"Deadline: 10 December", "2026-12-10"},
      {"Due Dec 15, 2026 — the auditors are waiting", "2026-12-15"},
      {"Send me the numbers no later than December 20th", "2026-12-20"},
      {"Please review the PR by EOD", "2026-12-07"},
      {"Wrap up the incident write-up by the end of the week", "2026-12-11"},
      {"Close the books by end of month", "2026-12-31"},
      {"We need it by 1 March", "2027-03-01"}, // past this year: next year's
      {"Сделай отчёт до пятницы", "2026-12-11"},
      {"Нужно подготовить договор к 10 декабря", "2026-12-10"},
      {"Срок: 15.01.2027, не забудь", "2027-01-15"},
      {"Исправь баг до конца недели", "2026-12-11"},
      {"Отправь счёт не позднее 20 декабря 2026 г.", "2026-12-20"},
      {"Подготовь презентацию к понедельнику", "2026-12-07"},
      {"Закрой тикет до завтра", "2026-12-08"},
      {"Запусти деплой в следующую пятницу до 12:00", nullptr},
      {"Book a table for two tomorrow at 7pm.", nullptr},
      {"The outage started on 2026-12-05 at 14:30 UTC.", nullptr},
      {"What is the balance on my checking account?", nullptr},
  };
  for (const auto& c : cases) {
    const Extraction x = extract_entities(c.text, kMonday);
    if (c.deadline) {
      ASSERT_TRUE(x.deadline.has_value()) << c.text;
      EXPECT_EQ(*x.deadline, c.deadline) << c.text;
    } else {
      EXPECT_FALSE(x.deadline.has_value()) << c.text << " -> " << x.deadline.value_or("");
    }
  }
}

TEST(Extract, DeadlineIsTheEarliestCuedDate) {
  const Extraction x = extract_entities(
      "Draft by 2026-12-09, final version by 2026-12-18; the launch is on 2026-12-21.", kMonday);
  EXPECT_EQ(dates_of(x), (Strings{"2026-12-09", "2026-12-18", "2026-12-21"}));
  EXPECT_EQ(x.deadline, "2026-12-09");
  EXPECT_TRUE(x.dates[0].deadline);
  EXPECT_FALSE(x.dates[2].deadline);
}

TEST(Extract, DatesResolveAgainstTheGivenDay) {
  EXPECT_EQ(dates_of(extract_entities("Let's meet tomorrow or the day after tomorrow", kMonday)),
            (Strings{"2026-12-08", "2026-12-09"}));
  EXPECT_EQ(dates_of(extract_entities("Созвонимся послезавтра", kMonday)), (Strings{"2026-12-09"}));
  EXPECT_EQ(dates_of(extract_entities("in 3 days, within 2 weeks, in a week", kMonday)),
            (Strings{"2026-12-10", "2026-12-21", "2026-12-14"}));
  EXPECT_EQ(dates_of(extract_entities("через 3 дня или через неделю", kMonday)),
            (Strings{"2026-12-10", "2026-12-14"}));
  EXPECT_EQ(dates_of(extract_entities("next week is fine", kMonday)), (Strings{"2026-12-14"}));
  // The same words on another day give another date: "now" is the input, not the clock.
  EXPECT_EQ(dates_of(extract_entities("by Friday", {2026, 12, 12})), (Strings{"2026-12-18"}));
  EXPECT_EQ(dates_of(extract_entities("by Friday", {2026, 12, 11})), (Strings{"2026-12-11"}));
  EXPECT_EQ(dates_of(extract_entities("on Dec 31st and Jan 2nd", kMonday)),
            (Strings{"2026-12-31", "2027-01-02"}));
  EXPECT_EQ(dates_of(extract_entities("Отпуск с 28 декабря по 5 января", kMonday)),
            (Strings{"2026-12-28", "2027-01-05"}));
  EXPECT_EQ(dates_of(extract_entities("Report for 2026/11/30 attached", kMonday)), (Strings{"2026-11-30"}));
  EXPECT_EQ(dates_of(extract_entities("Logs from 2026-12-06T23:59:59Z show it", kMonday)),
            (Strings{"2026-12-06"}));
}

TEST(Extract, AmbiguousAndInvalidDatesAreNotDates) {
  EXPECT_TRUE(extract_entities("Due 12/10/2026", kMonday).dates.empty()); // month or day first?
  EXPECT_TRUE(extract_entities("Version 2026-13-45 of the file", kMonday).dates.empty());
  EXPECT_TRUE(extract_entities("31 February", kMonday).dates.empty());
  EXPECT_TRUE(extract_entities("May I ask you something?", kMonday).dates.empty());
  EXPECT_TRUE(extract_entities("The sun is out, let's wed the branches", kMonday).dates.empty());
  EXPECT_TRUE(extract_entities("Среди задач есть срочные", kMonday).dates.empty());
}

TEST(Extract, EmailAddresses) {
  const Extraction x = extract_entities(
      "Forward it to Anna Petrova <anna.petrova@example.com> and cc ops-team+alerts@corp.example.org. "
      "Also mailto:billing@shop.io, not me@localhost or user@site.c",
      kMonday);
  EXPECT_EQ(x.emails,
            (Strings{"anna.petrova@example.com", "ops-team+alerts@corp.example.org", "billing@shop.io"}));
  EXPECT_TRUE(x.mentions.empty());
  EXPECT_EQ(extract_entities("Напиши на почту иван@пример.рф или ivan@example.ru.", kMonday).emails,
            (Strings{"ivan@example.ru"}));
}

TEST(Extract, UrlsWithoutTheirTrailingPunctuation) {
  const Extraction x = extract_entities(
      "See https://example.com/docs/setup. Also (https://en.wikipedia.org/wiki/Foo_(bar)) and "
      "<https://github.com/org/repo/pull/17>, plus www.status.example.io! Details: "
      "\"https://grafana.internal:3000/d/abc?from=now-1h&to=now\"; ftp://files.example.com/pub/x.tar.gz?",
      kMonday);
  EXPECT_EQ(x.urls, (Strings{"https://example.com/docs/setup", "https://en.wikipedia.org/wiki/Foo_(bar)",
                             "https://github.com/org/repo/pull/17", "www.status.example.io",
                             "https://grafana.internal:3000/d/abc?from=now-1h&to=now",
                             "ftp://files.example.com/pub/x.tar.gz"}));
  // Numbers, dates and paths inside URLs are not read again.
  EXPECT_TRUE(x.numbers.empty());
  EXPECT_TRUE(x.paths.empty());
  EXPECT_TRUE(x.dates.empty());
}

TEST(Extract, PosixAndWindowsPaths) {
  const Extraction x = extract_entities(
      "The crash is in src/engine/engine.cpp and /var/log/nginx/error.log; config at "
      "~/projects/app/config.yaml, run ./scripts/deploy.sh "
      "then check C:\\Users\\anna\\Desktop\\report.xlsx and \\\\fileserver\\share\\q4\\budget.docx. "
      "Open \"C:\\Program Files\\Tinyroute\\tinyroute.exe\" or '/opt/my app/run.sh', and attach "
      "invoice_march.pdf.",
      kMonday);
  EXPECT_EQ(x.paths,
            (Strings{"src/engine/engine.cpp", "/var/log/nginx/error.log", "~/projects/app/config.yaml",
                     "./scripts/deploy.sh", "C:\\Users\\anna\\Desktop\\report.xlsx",
                     "\\\\fileserver\\share\\q4\\budget.docx", "C:\\Program Files\\Tinyroute\\tinyroute.exe",
                     "/opt/my app/run.sh", "invoice_march.pdf"}));
  EXPECT_TRUE(x.numbers.empty());
}

TEST(Extract, SlashesThatAreNoPaths) {
  const Extraction x =
      extract_entities("Use and/or, 50 km/h, 1/2 of it, /s is a command; Node.js and e.g. are fine", kMonday);
  EXPECT_TRUE(x.paths.empty()) << x.paths.front();
}

TEST(Extract, NumbersWithUnits) {
  EXPECT_EQ(numbers_of(extract_entities("The disk is at 93% with 16GB free of 512 GB; p95 latency 250 ms, "
                                        "3.5 s worst, costs $120 and 20,000 "
                                        "users are affected.",
                                        kMonday)),
            (Numbers{{93, "%"}, {16, "gb"}, {512, "gb"}, {250, "ms"}, {3.5, "s"}, {120, "$"}, {20000, ""}}));
  EXPECT_EQ(
      numbers_of(extract_entities("Сервер потребляет 3,5 ГБ, счёт на 1500 руб., нагрузка 70 %", kMonday)),
      (Numbers{{3.5, "гб"}, {1500, "руб"}, {70, "%"}}));
  EXPECT_EQ(numbers_of(extract_entities("Refund invoice #4521 (-15.5 EUR) for ticket INC-1234", kMonday)),
            (Numbers{{4521, ""}, {-15.5, "eur"}}));
}

TEST(Extract, TimesVersionsAndIdentifiersAreNoNumbers) {
  EXPECT_TRUE(
      extract_entities("Meet at 14:30 or 7pm, upgrade to v2.1.3 on the x86 box, see RFC-2616", kMonday)
          .numbers.empty());
  const Extraction x = extract_entities("Book a table for two tomorrow at 7pm.", kMonday);
  EXPECT_TRUE(x.numbers.empty());
  EXPECT_EQ(dates_of(x), (Strings{"2026-12-08"}));
}

TEST(Extract, ConfiguredNamesAndMentions) {
  const Strings names = {"billing", "devops", "qwen2.5-coder:32b", "triage"};
  const Extraction x = extract_entities("@devops please ask Billing about it, and ping @maria; route to "
                                        "qwen2.5-coder:32b. Not devops@corp.com, "
                                        "not billing-service or rebilling.",
                                        kMonday, names);
  EXPECT_EQ(x.names, (Strings{"billing", "devops", "qwen2.5-coder:32b"}));
  EXPECT_EQ(x.mentions, (Strings{"@maria"}));
  EXPECT_EQ(x.emails, (Strings{"devops@corp.com"}));
}

TEST(Extract, NothingToExtract) {
  for (const char* text : {"", "   ", "Привет! Как дела?", "What is the balance on my checking account?",
                           "\xFF\xFE garbage \xC3\x28", "}}{{ \"\\u0000 ::: /// @ @@ ..."}) {
    const Extraction x = extract_entities(text, kMonday, {"billing"});
    EXPECT_FALSE(x.deadline) << text;
    EXPECT_TRUE(x.dates.empty()) << text;
    EXPECT_TRUE(x.emails.empty()) << text;
    EXPECT_TRUE(x.urls.empty()) << text;
    EXPECT_TRUE(x.paths.empty()) << text;
    EXPECT_TRUE(x.numbers.empty()) << text;
    EXPECT_TRUE(x.names.empty()) << text;
    EXPECT_TRUE(x.mentions.empty()) << text;
  }
}

TEST(Extract, RealLookingMessages) {
  const Strings agents = {"billing", "devops", "triage", "legal"};
  {
    const Extraction x = extract_entities("Hi devops, prod-api is returning HTTP 502 since the 09:40 deploy. "
                                          "Logs: /var/log/app/api.log, dashboard "
                                          "https://grafana.example.com/d/api-latency. Error rate is 12% on 3 "
                                          "of 8 pods. Please roll back by EOD "
                                          "and mail the postmortem to sre-lead@example.com.",
                                          kMonday, agents);
    EXPECT_EQ(x.deadline, "2026-12-07");
    EXPECT_EQ(x.names, (Strings{"devops"}));
    EXPECT_EQ(x.paths, (Strings{"/var/log/app/api.log"}));
    EXPECT_EQ(x.urls, (Strings{"https://grafana.example.com/d/api-latency"}));
    EXPECT_EQ(x.emails, (Strings{"sre-lead@example.com"}));
    EXPECT_EQ(numbers_of(x), (Numbers{{502, ""}, {12, "%"}, {3, ""}, {8, ""}}));
  }
  {
    const Extraction x = extract_entities(
        "Коллеги из billing, клиент ООО «Ромашка» оплатил счёт №1187 на 245 000 руб. дважды. Верните "
        "переплату "
        "до 15 декабря, скан платёжки в C:\\Docs\\payments\\1187.pdf. Вопросы — на buh@romashka.ru.",
        kMonday, agents);
    EXPECT_EQ(x.deadline, "2026-12-15");
    EXPECT_EQ(x.names, (Strings{"billing"}));
    EXPECT_EQ(x.paths, (Strings{"C:\\Docs\\payments\\1187.pdf"}));
    EXPECT_EQ(x.emails, (Strings{"buh@romashka.ru"}));
    ASSERT_FALSE(x.numbers.empty());
    EXPECT_EQ(x.numbers.front().value, 1187);
  }
  {
    const Extraction x = extract_entities(
        "Legal: the NDA draft (contracts/nda-v3.docx) needs a signature before 2026-12-15T12:00:00Z. "
        "Counterparty contact: John <john.doe@partner.co.uk>.",
        kMonday, agents);
    EXPECT_EQ(x.deadline, "2026-12-15");
    EXPECT_EQ(x.names, (Strings{"legal"}));
    EXPECT_EQ(x.emails, (Strings{"john.doe@partner.co.uk"}));
    EXPECT_EQ(x.paths, (Strings{"contracts/nda-v3.docx"}));
  }
}

TEST(Extract, EnvelopeEntitiesStayWithinTheSchema) {
  std::string text = "by 2026-12-08; ";
  for (int i = 0; i < 10; ++i)
    text += "user" + std::to_string(i) + "@example.com /srv/data/file" + std::to_string(i) + ".csv ";
  text += "/a/very/long/path/that/goes/on/and/on/and/on/past/the/limit/of/the/schema.txt @devops";
  const Extraction x = extract_entities(text, kMonday, {"devops"});
  const MessageEntities e = envelope_entities(x);
  EXPECT_EQ(e.people.size(), 4u);
  EXPECT_EQ(e.files.size(), 4u);
  EXPECT_EQ(e.dates, (Strings{"2026-12-08"}));
  EXPECT_EQ(e.systems, (Strings{"devops"}));
  AgentMessage m;
  m.id = "3f0c8a4e-5d2b-4c1e-9a57-0b6e2f8d41c9";
  m.from = "user";
  m.to = "devops";
  m.kind = "task";
  m.intent = "unspecified";
  m.priority = "normal";
  m.language = "en";
  m.entities = e;
  m.deadline = x.deadline;
  m.correlation_id = m.id;
  m.created_at = "2026-12-07T09:00:00.000Z";
  m.body = text;
  EXPECT_TRUE(validate_json(agent_message_schema(), agent_message_json(m)).empty());
  const nlohmann::json j = extraction_json(x);
  EXPECT_EQ(j["deadline"], "2026-12-08");
  EXPECT_EQ(j["emails"].size(), 10u);
}

} // namespace
} // namespace tinyroute
