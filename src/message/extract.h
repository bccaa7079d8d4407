// Deterministic extraction from a message's text, no model: deadlines and dates (English and Russian,
// relative ones resolved against a given day), e-mail addresses, URLs, file paths, numbers with their
// units, @mentions and the names of configured agents or systems. The bus fills an envelope's
// entities and deadline from it, so routing a message needs no generation.
//
// Rules, in order: URLs, then e-mail addresses, then paths are found on the raw text and masked, so
// the dates and numbers inside them are not read again. Dates are ISO (2026-12-10), dd.mm.yyyy,
// month names with a day (10 December, Dec 10, 10 декабря), relative words (today, tomorrow, сегодня,
// завтра, послезавтра, in 3 days, через 3 дня), weekdays (Friday, next Friday, пятница) and ends of
// periods (EOD, end of the week, конца месяца). A date is a deadline when a cue precedes it (by,
// before, until, due, deadline, no later than, до, к, не позднее, срок); ends of periods always are.
// The deadline is the earliest such date. Slash dates (10/12/2026) are read as no date: which
// number is the month differs by country.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tinyroute/agent-message.h"

namespace tinyroute {

struct CivilDate {
  int year = 1970;
  int month = 1; // 1..12
  int day = 1;   // 1..31
};

std::string iso_date(const CivilDate& date); // YYYY-MM-DD
// The date of "YYYY-MM-DD" or of an RFC 3339 timestamp ("YYYY-MM-DDT..."); nullopt when invalid.
std::optional<CivilDate> parse_iso_date(std::string_view text);
CivilDate add_days(const CivilDate& date, int days);

struct ExtractedDate {
  std::string text;      // as written
  std::string date;      // YYYY-MM-DD
  bool deadline = false; // a deadline cue precedes it, or it is an end of a period
};

struct ExtractedNumber {
  std::string text; // as written, with its unit or currency sign
  double value = 0;
  std::string unit; // lower case as written ("gb", "%", "$", "руб"), or empty
};

struct Extraction {
  std::optional<std::string> deadline; // YYYY-MM-DD: the earliest date marked deadline
  std::vector<ExtractedDate> dates;    // in text order
  std::vector<std::string> emails;
  std::vector<std::string> urls;
  std::vector<std::string> paths;    // POSIX, Windows and UNC paths, and file names with a known extension
  std::vector<std::string> mentions; // @name, written with the @
  std::vector<std::string> names;    // the `known_names` the text names (as configured), in list order
  std::vector<ExtractedNumber> numbers;
};

// Relative dates resolve against `today` (the message's own date, so the same message always gives
// the same answer). `known_names` match whole words, case-insensitively, with or without a leading @.
Extraction extract_entities(std::string_view text, const CivilDate& today,
                            const std::vector<std::string>& known_names = {});

// Everything found, for a message's metadata.
nlohmann::json extraction_json(const Extraction& extraction);

// The envelope's entities within agent-message.v1's limits (4 items each, 48 characters; longer ones
// are left out rather than cut): people are e-mail addresses and @mentions that are no known name,
// dates the ISO dates, systems the known names named, files the paths.
MessageEntities envelope_entities(const Extraction& extraction);

} // namespace tinyroute
