// extract_entities: masks first (URLs, e-mail addresses, paths, numeric dates), then one pass of
// tokens over the lower-cased rest for worded dates and numbers. Byte offsets are shared by the text
// and its lower-cased copy (lower-casing keeps every character's length), so what is reported is
// always a slice of the original.
#include "message/extract.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <set>

#include "core/utf8.h"

namespace tinyroute {

namespace {

using nlohmann::json;

// ---- dates ----------------------------------------------------------------------------------------

// Days since 1970-01-01 (H. Hinnant's civil calendar algorithms).
long days_from_civil(int y, int m, int d) {
  y -= m <= 2 ? 1 : 0;
  const long era = (y >= 0 ? y : y - 399) / 400;
  const long yoe = y - era * 400;
  const long doy = (153L * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

CivilDate civil_from_days(long z) {
  z += 719468;
  const long era = (z >= 0 ? z : z - 146096) / 146097;
  const long doe = z - era * 146097;
  const long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const long mp = (5 * doy + 2) / 153;
  const int d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  const int m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  return {static_cast<int>(yoe + era * 400 + (m <= 2 ? 1 : 0)), m, d};
}

int days_in_month(int y, int m) {
  static constexpr std::array<int, 12> n = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : n[static_cast<std::size_t>(m - 1)];
}

bool valid_date(int y, int m, int d) {
  return y >= 1900 && y <= 2200 && m >= 1 && m <= 12 && d >= 1 && d <= days_in_month(y, m);
}

long to_days(const CivilDate& c) {
  return days_from_civil(c.year, c.month, c.day);
}

int weekday_mon0(const CivilDate& c) { // Monday 0 .. Sunday 6
  const long z = to_days(c);
  return static_cast<int>(((z % 7) + 7 + 3) % 7); // 1970-01-01 was a Thursday
}

// ---- characters -----------------------------------------------------------------------------------

bool ascii_alpha(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool ascii_digit(unsigned char c) {
  return c >= '0' && c <= '9';
}
bool space(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
// A byte that starts or continues a letter: ASCII letters, '_', and multi-byte sequences other than
// the punctuation blocks (lead bytes C2: « » and the like; E2: dashes, quotes, € ₽ №).
bool letter_lead(unsigned char c) {
  return ascii_alpha(c) || c == '_' || (c >= 0xC3 && c != 0xE2 && c < 0xF8);
}
std::size_t char_len(unsigned char c) {
  return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

// Lower case for ASCII and Cyrillic, keeping every character's byte length.
std::string lower(std::string_view s) {
  std::string out(s);
  for (std::size_t i = 0; i < out.size(); ++i) {
    auto c = static_cast<unsigned char>(out[i]);
    if (c >= 'A' && c <= 'Z') {
      out[i] = static_cast<char>(c + 32);
    } else if (c == 0xD0 && i + 1 < out.size()) {
      const auto n = static_cast<unsigned char>(out[i + 1]);
      if (n >= 0x90 && n <= 0x9F) { // А..П
        out[i + 1] = static_cast<char>(n + 0x20);
      } else if (n >= 0xA0 && n <= 0xAF) { // Р..Я
        out[i] = static_cast<char>(0xD1);
        out[i + 1] = static_cast<char>(n - 0x20);
      } else if (n == 0x81) { // Ё
        out[i] = static_cast<char>(0xD1);
        out[i + 1] = static_cast<char>(0x91);
      }
      ++i;
    }
  }
  return out;
}

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}

template <typename Set> bool in(const Set& set, std::string_view v) {
  return std::find(set.begin(), set.end(), v) != set.end();
}

// ---- tokens ---------------------------------------------------------------------------------------

enum class Kind { word, number, punct };

struct Piece {
  std::size_t begin = 0, end = 0;
  Kind kind = Kind::punct;
  std::string text;       // lower case
  std::string digits;     // a number's numeric part
  std::string suffix;     // letters written right after a number (16gb, 10th), lower case
  bool gap_before = true; // whitespace or a masked span between it and the token before
  bool used = false;      // part of a date
};

std::vector<Piece> tokenize(const std::string& low, const std::vector<bool>& masked) {
  std::vector<Piece> out;
  std::size_t i = 0;
  bool gap = true;
  const std::size_t n = low.size();
  const auto letter_at = [&](std::size_t k) {
    return k < n && !masked[k] && (letter_lead(static_cast<unsigned char>(low[k])) || ascii_digit(low[k]));
  };
  while (i < n) {
    const auto c = static_cast<unsigned char>(low[i]);
    if (masked[i] || space(c)) {
      gap = true;
      ++i;
      continue;
    }
    Piece t;
    t.begin = i;
    t.gap_before = gap;
    gap = false;
    if (ascii_digit(c)) {
      t.kind = Kind::number;
      std::size_t k = i;
      while (k < n && !masked[k] &&
             (ascii_digit(low[k]) ||
              ((low[k] == '.' || low[k] == ',') && k + 1 < n && !masked[k + 1] && ascii_digit(low[k + 1]))))
        ++k;
      t.digits = low.substr(i, k - i);
      std::size_t s = k;
      while (letter_at(s)) s += char_len(static_cast<unsigned char>(low[s]));
      t.suffix = low.substr(k, s - k);
      i = s;
    } else if (letter_lead(c)) {
      t.kind = Kind::word;
      std::size_t k = i;
      while (letter_at(k)) k += char_len(static_cast<unsigned char>(low[k]));
      i = k;
    } else {
      t.kind = Kind::punct;
      i = std::min(n, i + char_len(c));
    }
    t.end = i;
    t.text = low.substr(t.begin, t.end - t.begin);
    out.push_back(std::move(t));
  }
  return out;
}

// ---- vocabularies ---------------------------------------------------------------------------------

int month_of(const std::string& w) {
  static const std::array<std::array<const char*, 3>, 12> en = {{{"january", "jan", ""},
                                                                 {"february", "feb", ""},
                                                                 {"march", "mar", ""},
                                                                 {"april", "apr", ""},
                                                                 {"may", "", ""},
                                                                 {"june", "jun", ""},
                                                                 {"july", "jul", ""},
                                                                 {"august", "aug", ""},
                                                                 {"september", "sep", "sept"},
                                                                 {"october", "oct", ""},
                                                                 {"november", "nov", ""},
                                                                 {"december", "dec", ""}}};
  for (std::size_t m = 0; m < en.size(); ++m)
    for (const char* f : en[m])
      if (*f && w == f) return static_cast<int>(m + 1);
  // Russian: full forms by stem (января, январе...), abbreviations exactly.
  static const std::array<const char*, 12> stems = {"январ",   "феврал", "март",  "апрел",
                                                    "ма",      "июн",    "июл",   "август",
                                                    "сентябр", "октябр", "ноябр", "декабр"};
  static const std::array<const char*, 12> abbr = {"янв", "фев", "мар", "апр", "мая", "июн",
                                                   "июл", "авг", "сен", "окт", "ноя", "дек"};
  if (w == "май" || w == "мая" || w == "мае") return 5;
  for (std::size_t m = 0; m < stems.size(); ++m) {
    if (m != 4 && starts_with(w, stems[m])) return static_cast<int>(m + 1);
    if (w == abbr[m] || (m == 8 && w == "сент") || (m == 10 && w == "нояб")) return static_cast<int>(m + 1);
  }
  return 0;
}

// Monday 0 .. Sunday 6, or -1. Abbreviations count only where `abbreviations` (after a cue).
int weekday_of(const std::string& w, bool abbreviations) {
  static const std::array<const char*, 7> en = {"monday", "tuesday",  "wednesday", "thursday",
                                                "friday", "saturday", "sunday"};
  static const std::array<std::array<const char*, 3>, 7> en_abbr = {{{"mon", "", ""},
                                                                     {"tue", "tues", ""},
                                                                     {"wed", "", ""},
                                                                     {"thu", "thur", "thurs"},
                                                                     {"fri", "", ""},
                                                                     {"sat", "", ""},
                                                                     {"sun", "", ""}}};
  static const std::array<std::array<const char*, 4>, 7> ru = {
      {{"понедельник", "понедельника", "понедельнику", "понедельнике"},
       {"вторник", "вторника", "вторнику", "вторнике"},
       {"среда", "среду", "среды", "среде"},
       {"четверг", "четверга", "четвергу", "четверге"},
       {"пятница", "пятницу", "пятницы", "пятнице"},
       {"суббота", "субботу", "субботы", "субботе"},
       {"воскресенье", "воскресенья", "воскресенью", ""}}};
  for (std::size_t d = 0; d < 7; ++d) {
    if (w == en[d]) return static_cast<int>(d);
    for (const char* f : ru[d])
      if (*f && w == f) return static_cast<int>(d);
    if (abbreviations)
      for (const char* f : en_abbr[d])
        if (*f && w == f) return static_cast<int>(d);
  }
  return -1;
}

bool is_next(const std::string& w) {
  return w == "next" || starts_with(w, "следующ");
}

// Words between a deadline cue and its date ("by the end of", "до этой пятницы").
bool filler(const Piece& t) {
  static const std::array<const char*, 17> words = {"the",  "on",  "this",   "coming", "of",   "is",
                                                    "date", "at",  "latest", "в",      "во",   "на",
                                                    "это",  "эту", "этой",   "этот",   "этого"};
  if (t.kind == Kind::punct) return in(std::array<std::string_view, 4>{":", "-", ",", "—"}, t.text);
  return in(words, t.text) || is_next(t.text);
}

bool cue_at(const std::vector<Piece>& tokens, std::size_t k) {
  static const std::array<const char*, 13> cues = {"by",       "before", "until",  "till", "due",
                                                   "deadline", "eta",    "до",     "к",    "ко",
                                                   "срок",     "сроком", "дедлайн"};
  const std::string& w = tokens[k].text;
  if (in(cues, w)) return true;
  const auto prev = [&](const char* p) { return k > 0 && tokens[k - 1].text == p; };
  if (w == "than" && prev("later")) return true;                   // no later than
  if ((w == "позднее" || w == "позже") && prev("не")) return true; // не позднее
  return false;
}

// A deadline cue before token `i`, with at most four filler tokens between.
bool cued(const std::vector<Piece>& tokens, std::size_t i) {
  for (std::size_t k = i, steps = 0; k > 0 && steps < 5; ++steps) {
    --k;
    if (cue_at(tokens, k)) return true;
    if (!filler(tokens[k])) return false;
  }
  return false;
}

// ---- numbers --------------------------------------------------------------------------------------

std::optional<double> number_value(const std::string& digits) {
  const auto dots = std::count(digits.begin(), digits.end(), '.');
  const auto commas = std::count(digits.begin(), digits.end(), ',');
  // Thousands groups: "20,000", "1.000.000" (each separator followed by exactly three digits).
  const auto grouped = [&](char sep) {
    std::size_t first = digits.find(sep);
    if (first == 0 || first > 3) return false;
    for (std::size_t p = first; p != std::string::npos; p = digits.find(sep, p + 1)) {
      const std::size_t next = digits.find_first_of(".,", p + 1);
      const std::size_t len = (next == std::string::npos ? digits.size() : next) - p - 1;
      if (len != 3 && !(next != std::string::npos && digits[next] != sep && len == 3)) return false;
    }
    return true;
  };
  std::string plain;
  if (dots == 0 && commas == 0) {
    plain = digits;
  } else if (commas > 0 && dots <= 1 && grouped(',')) { // 20,000 and 20,000.5
    for (char c : digits)
      if (c != ',') plain += c;
  } else if (dots > 1 && commas == 0 && grouped('.')) { // 1.000.000
    for (char c : digits)
      if (c != '.') plain += c;
  } else if (dots + commas == 1) { // 3.5 and 3,5
    plain = digits;
    std::replace(plain.begin(), plain.end(), ',', '.');
  } else {
    return std::nullopt; // a version (1.2.3) or something else
  }
  double v = 0;
  const auto [end, ec] = std::from_chars(plain.data(), plain.data() + plain.size(), v);
  if (ec != std::errc() || end != plain.data() + plain.size()) return std::nullopt;
  return v;
}

bool unit_word(const std::string& w) {
  static const std::set<std::string> units = {
      "%",       "ms",      "s",      "sec",    "secs",    "second",   "seconds",   "min",     "mins",
      "minute",  "minutes", "h",      "hr",     "hrs",     "hour",     "hours",     "d",       "day",
      "days",    "week",    "weeks",  "month",  "months",  "year",     "years",     "b",       "kb",
      "mb",      "gb",      "tb",     "pb",     "kib",     "mib",      "gib",       "tib",     "k",
      "m",       "km",      "cm",     "mm",     "kg",      "g",        "mg",        "l",       "ml",
      "usd",     "eur",     "rub",    "gbp",    "dollars", "euros",    "rps",       "qps",     "rpm",
      "tps",     "px",      "ghz",    "mhz",    "hz",      "x",        "tokens",    "cores",   "vcpu",
      "мс",      "с",       "сек",    "мин",    "ч",       "час",      "часа",      "часов",   "день",
      "дня",     "дней",    "неделя", "недели", "недель",  "месяц",    "месяца",    "месяцев", "год",
      "года",    "лет",     "кб",     "мб",     "гб",      "тб",       "км",        "м",       "см",
      "мм",      "кг",      "г",      "руб",    "рубль",   "рубля",    "рублей",    "р",       "долларов",
      "доллара", "евро",    "шт",     "штук",   "процент", "процента", "процентов", "ядра",    "ядер"};
  return units.contains(w);
}

bool currency(const std::string& s) {
  return s == "$" || s == "€" || s == "£" || s == "₽";
}

// ---- raw-text finders (each returns spans of the original text) -----------------------------------

struct Span {
  std::size_t begin = 0, end = 0;
};

bool boundary_before(std::string_view s, std::size_t i) {
  if (i == 0) return true;
  const auto p = static_cast<unsigned char>(s[i - 1]);
  return !(ascii_alpha(p) || ascii_digit(p) || p == '_' || p >= 0x80);
}

// Drops closing punctuation that belongs to the sentence, not the span: a trailing full stop or comma,
// and a closing bracket or quote without its opening one inside.
std::size_t trim_trailing(std::string_view s, std::size_t begin, std::size_t end) {
  while (end > begin) {
    const char c = s[end - 1];
    const auto unbalanced = [&](char open, char close) {
      const auto span = s.substr(begin, end - begin);
      return c == close &&
             std::count(span.begin(), span.end(), open) < std::count(span.begin(), span.end(), close);
    };
    if (std::string_view(".,;:!?'\"*").find(c) != std::string_view::npos || unbalanced('(', ')') ||
        unbalanced('[', ']') || unbalanced('{', '}')) {
      --end;
      continue;
    }
    break;
  }
  return end;
}

std::vector<Span> find_urls(std::string_view s, const std::string& low, std::vector<bool>& masked) {
  std::vector<Span> out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (masked[i] || !boundary_before(s, i)) continue;
    const std::string_view rest = std::string_view(low).substr(i);
    if (!(starts_with(rest, "http://") || starts_with(rest, "https://") || starts_with(rest, "ftp://") ||
          starts_with(rest, "www.")))
      continue;
    std::size_t e = i;
    while (e < s.size() && !space(static_cast<unsigned char>(s[e])) &&
           std::string_view("<>\"`").find(s[e]) == std::string_view::npos)
      ++e;
    e = trim_trailing(s, i, e);
    const std::string_view url = s.substr(i, e - i);
    const std::size_t host = url.find("://") == std::string_view::npos ? 0 : url.find("://") + 3;
    if (url.size() <= host || url.find('.', host) == std::string_view::npos) continue;
    out.push_back({i, e});
    std::fill(masked.begin() + static_cast<std::ptrdiff_t>(i),
              masked.begin() + static_cast<std::ptrdiff_t>(e), true);
    i = e;
  }
  return out;
}

std::vector<Span> find_emails(std::string_view s, std::vector<bool>& masked) {
  std::vector<Span> out;
  const auto local_char = [](char c) {
    return ascii_alpha(c) || ascii_digit(c) || std::string_view("._%+-").find(c) != std::string_view::npos;
  };
  const auto domain_char = [](char c) { return ascii_alpha(c) || ascii_digit(c) || c == '.' || c == '-'; };
  for (std::size_t at = 0; at < s.size(); ++at) {
    if (s[at] != '@' || masked[at]) continue;
    std::size_t b = at;
    while (b > 0 && !masked[b - 1] && local_char(s[b - 1])) --b;
    while (b < at && (s[b] == '.' || s[b] == '-')) ++b;
    std::size_t e = at + 1;
    while (e < s.size() && !masked[e] && domain_char(s[e])) ++e;
    while (e > at + 1 && (s[e - 1] == '.' || s[e - 1] == '-')) --e;
    if (b == at || e == at + 1) continue;
    const std::string_view domain = s.substr(at + 1, e - at - 1);
    const std::size_t dot = domain.rfind('.');
    if (dot == std::string_view::npos || dot == 0 || domain.size() - dot - 1 < 2) continue;
    if (!std::all_of(domain.begin() + static_cast<std::ptrdiff_t>(dot) + 1, domain.end(),
                     [](char c) { return ascii_alpha(c); }))
      continue;
    out.push_back({b, e});
    std::fill(masked.begin() + static_cast<std::ptrdiff_t>(b),
              masked.begin() + static_cast<std::ptrdiff_t>(e), true);
    at = e;
  }
  return out;
}

bool known_extension(std::string_view name) {
  static const std::set<std::string> ext = {
      "pdf",     "doc",  "docx",   "xls",  "xlsx", "ppt", "pptx",  "csv", "tsv", "txt",  "md",   "rst",
      "log",     "json", "yaml",   "yml",  "toml", "ini", "conf",  "cfg", "xml", "html", "htm",  "css",
      "js",      "mjs",  "ts",     "tsx",  "jsx",  "py",  "ipynb", "rb",  "go",  "rs",   "java", "kt",
      "c",       "cc",   "cpp",    "cxx",  "h",    "hpp", "cs",    "php", "sh",  "bash", "ps1",  "bat",
      "sql",     "db",   "sqlite", "zip",  "tar",  "gz",  "tgz",   "bz2", "xz",  "7z",   "rar",  "png",
      "jpg",     "jpeg", "gif",    "svg",  "webp", "mp3", "mp4",   "wav", "mov", "gguf", "onnx", "pt",
      "parquet", "lock", "patch",  "diff", "eml",  "ics", "key",   "pem", "crt"};
  static const std::set<std::string> frameworks = {"node",  "vue",     "next",  "nuxt",
                                                   "react", "three",   "chart", "backbone",
                                                   "ember", "angular", "d3",    "express"};
  const std::size_t dot = name.rfind('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == name.size()) return false;
  const std::string e = lower(name.substr(dot + 1));
  const std::string stem = lower(name.substr(0, name.find('.')));
  return ext.contains(e) && !frameworks.contains(stem);
}

std::vector<Span> find_paths(std::string_view s, std::vector<bool>& masked) {
  std::vector<Span> out;
  const auto opener = [&](std::size_t i) {
    if (i == 0) return true;
    const char p = s[i - 1];
    return space(static_cast<unsigned char>(p)) ||
           std::string_view("(\"'`[<{=,").find(p) != std::string_view::npos;
  };
  const auto path_start = [&](std::size_t i) -> int { // 1 POSIX, 2 Windows or UNC
    const std::string_view r = s.substr(i);
    if (r.size() >= 3 && ascii_alpha(r[0]) && r[1] == ':' && (r[2] == '\\' || r[2] == '/')) return 2;
    if (r.size() >= 3 && r[0] == '\\' && r[1] == '\\' && (ascii_alpha(r[2]) || ascii_digit(r[2]))) return 2;
    if (starts_with(r, "~/") || starts_with(r, "./") || starts_with(r, "../")) return 1;
    if (r.size() >= 2 && r[0] == '/' && r[1] != '/' && !space(static_cast<unsigned char>(r[1]))) return 1;
    return 0;
  };
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (masked[i] || !opener(i)) continue;
    const int kind = path_start(i);
    if (kind == 0) continue;
    std::size_t e = i;
    const char q = i > 0 ? s[i - 1] : '\0';
    // A quoted path may hold spaces ("C:\Program Files\app.exe"): it ends at its closing quote.
    if (q == '"' || q == '\'' || q == '`') {
      const std::size_t close = s.find(q, i);
      const std::size_t nl = s.find('\n', i);
      if (close != std::string_view::npos && close - i <= 260 && (nl == std::string_view::npos || nl > close))
        e = close;
    }
    if (e == i) {
      while (e < s.size() && !masked[e] && !space(static_cast<unsigned char>(s[e])) &&
             std::string_view("<>\"'`|").find(s[e]) == std::string_view::npos)
        ++e;
      e = trim_trailing(s, i, e);
    }
    const std::string_view p = s.substr(i, e - i);
    if (kind == 1 && p[0] == '/') {
      // An absolute POSIX path has two segments or a file name, and a letter: not "/12/2026", "/s".
      const auto segments = std::count(p.begin(), p.end(), '/');
      const bool has_letter = std::any_of(p.begin(), p.end(), [](char c) { return ascii_alpha(c); });
      const bool file = p.find('.', p.rfind('/')) != std::string_view::npos;
      if (!has_letter || (segments < 2 && !file)) continue;
      if (p.find("//") != std::string_view::npos) continue;
    }
    if (p.size() < 3) continue;
    out.push_back({i, e});
    std::fill(masked.begin() + static_cast<std::ptrdiff_t>(i),
              masked.begin() + static_cast<std::ptrdiff_t>(e), true);
    i = e;
  }
  // Relative paths and bare file names with a known extension (src/main.py, report.pdf).
  const auto name_char = [](char c) {
    return ascii_alpha(c) || ascii_digit(c) || c == '_' || c == '-' || c == '.' || c == '/';
  };
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (masked[i] || !name_char(s[i]) || s[i] == '.' || s[i] == '-' || s[i] == '/') continue;
    if (i > 0 && (name_char(s[i - 1]) || std::string_view("/\\@:").find(s[i - 1]) != std::string_view::npos ||
                  static_cast<unsigned char>(s[i - 1]) >= 0x80))
      continue;
    std::size_t e = i;
    while (e < s.size() && !masked[e] && name_char(s[e])) ++e;
    std::size_t end = e;
    while (end > i && (s[end - 1] == '.' || s[end - 1] == '-')) --end;
    const bool joined =
        e < s.size() && (static_cast<unsigned char>(s[e]) >= 0x80 || s[e] == '/' || s[e] == '\\');
    if (!joined && known_extension(s.substr(i, end - i))) {
      out.push_back({i, end});
      std::fill(masked.begin() + static_cast<std::ptrdiff_t>(i),
                masked.begin() + static_cast<std::ptrdiff_t>(end), true);
    }
    i = e;
  }
  std::sort(out.begin(), out.end(), [](const Span& a, const Span& b) { return a.begin < b.begin; });
  return out;
}

struct DateSpan {
  Span span;
  CivilDate date;
  bool deadline = false;
};

// ISO (2026-12-10, also as a timestamp's head), yyyy/mm/dd and dd.mm.yyyy.
std::vector<DateSpan> find_numeric_dates(std::string_view s, std::vector<bool>& masked) {
  std::vector<DateSpan> out;
  const auto digits_at = [&](std::size_t i, std::size_t n) {
    if (i + n > s.size()) return -1;
    int v = 0;
    for (std::size_t k = i; k < i + n; ++k) {
      if (masked[k] || !ascii_digit(s[k])) return -1;
      v = v * 10 + (s[k] - '0');
    }
    return v;
  };
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (masked[i] || !ascii_digit(s[i])) continue;
    if (i > 0 && (ascii_alpha(s[i - 1]) || ascii_digit(s[i - 1]) ||
                  std::string_view("-./").find(s[i - 1]) != std::string_view::npos))
      continue;
    int y = -1, m = -1, d = -1;
    std::size_t e = 0;
    if (const int yy = digits_at(i, 4);
        yy >= 0 && i + 10 <= s.size() && (s[i + 4] == '-' || s[i + 4] == '/') && s[i + 7] == s[i + 4]) {
      y = yy, m = digits_at(i + 5, 2), d = digits_at(i + 8, 2), e = i + 10;
    } else {
      // dd.mm.yyyy with one- or two-digit day and month.
      std::size_t k = i;
      const auto part = [&](std::size_t max) {
        int v = 0;
        std::size_t n = 0;
        while (k < s.size() && !masked[k] && ascii_digit(s[k]) && n < max) v = v * 10 + (s[k++] - '0'), ++n;
        return n == 0 ? -1 : v;
      };
      d = part(2);
      if (k < s.size() && s[k] == '.') {
        ++k;
        m = part(2);
        if (m >= 0 && k < s.size() && s[k] == '.') {
          ++k;
          const std::size_t ys = k;
          y = part(4);
          if (k - ys != 4) y = -1;
          e = k;
        }
      }
    }
    if (y < 0 || m < 0 || d < 0 || !valid_date(y, m, d)) continue;
    if (e < s.size() && (ascii_digit(s[e]) ||
                         (ascii_alpha(s[e]) && !(s[e] == 'T' && e + 1 < s.size() && ascii_digit(s[e + 1])))))
      continue;
    out.push_back({{i, e}, {y, m, d}, false});
    std::fill(masked.begin() + static_cast<std::ptrdiff_t>(i),
              masked.begin() + static_cast<std::ptrdiff_t>(e), true);
    i = e;
  }
  return out;
}

// The date of `day` `month` [year]: a year not written is this one, or the next when the day has
// passed (a deadline of "1 March" written in December is next March's).
std::optional<CivilDate> month_day(const CivilDate& today, int month, int day, int year) {
  if (year > 0) {
    if (!valid_date(year, month, day)) return std::nullopt;
    return CivilDate{year, month, day};
  }
  for (int y : {today.year, today.year + 1}) {
    if (!valid_date(y, month, day)) continue;
    const CivilDate c{y, month, day};
    if (to_days(c) >= to_days(today)) return c;
  }
  return std::nullopt;
}

int small_int(const Piece& t) { // a day or a count: digits only, no suffix other than an ordinal one
  if (t.kind != Kind::number || t.digits.size() > 2) return -1;
  if (!t.suffix.empty() && !in(std::array<std::string_view, 5>{"st", "nd", "rd", "th", "е"}, t.suffix))
    return -1;
  int v = 0;
  for (char c : t.digits) {
    if (!ascii_digit(c)) return -1;
    v = v * 10 + (c - '0');
  }
  return v;
}

int year_of(const Piece& t) {
  if (t.kind != Kind::number || t.digits.size() != 4 || !(t.suffix.empty() || t.suffix == "г")) return -1;
  int v = 0;
  for (char c : t.digits) {
    if (!ascii_digit(c)) return -1;
    v = v * 10 + (c - '0');
  }
  return v >= 1900 && v <= 2200 ? v : -1;
}

// Worded dates starting at token i: the date and how many tokens it took, or nullopt.
struct WordDate {
  CivilDate date;
  std::size_t length = 0;
  bool deadline = false; // an end of a period: a deadline without a cue
};

std::optional<WordDate> word_date(const std::vector<Piece>& t, std::size_t i, const CivilDate& today) {
  const auto word = [&](std::size_t k) -> const std::string& {
    static const std::string none;
    return k < t.size() && t[k].kind != Kind::punct ? t[k].text : none;
  };
  const auto text = [&](std::size_t k) -> const std::string& {
    static const std::string none;
    return k < t.size() ? t[k].text : none;
  };
  const auto plus = [&](int days, std::size_t len, bool deadline = false) {
    return std::optional<WordDate>(WordDate{add_days(today, days), len, deadline});
  };
  const auto year_after = [&](std::size_t k, std::size_t& len) {
    std::size_t j = k;
    if (text(j) == ",") ++j;
    if (j < t.size() && year_of(t[j]) > 0) {
      const int y = year_of(t[j]);
      len = j + 1 - i;
      if (text(j + 1) == "г" || text(j + 1) == "года") ++len;
      return y;
    }
    return -1;
  };
  // 10 December [2026], 10th of Dec, 10-го декабря
  if (const int d = small_int(t[i]); d >= 1 && d <= 31) {
    std::size_t k = i + 1;
    if (text(k) == "-" && (text(k + 1) == "го" || text(k + 1) == "е")) k += 2;
    if (text(k) == "of") ++k;
    if (const int m = month_of(word(k)); m > 0) {
      std::size_t len = k + 1 - i;
      const int y = year_after(k + 1, len);
      if (auto c = month_day(today, m, d, y)) return WordDate{*c, len, false};
    }
  }
  const std::string& w = word(i);
  if (w.empty()) return std::nullopt;
  // December 10[th][, 2026]
  if (const int m = month_of(w); m > 0 && i + 1 < t.size()) {
    if (const int d = small_int(t[i + 1]); d >= 1 && d <= 31) {
      std::size_t len = 2;
      const int y = year_after(i + 2, len);
      if (auto c = month_day(today, m, d, y)) return WordDate{*c, len, false};
    }
  }
  if (w == "today" || w == "tonight" || w == "сегодня") return plus(0, 1);
  if (w == "tomorrow" || w == "завтра") return plus(1, 1);
  if (w == "послезавтра") return plus(2, 1);
  if (w == "yesterday" || w == "вчера") return plus(-1, 1);
  if (w == "day" && word(i + 1) == "after" && word(i + 2) == "tomorrow") return plus(2, 3);
  if (w == "eod" || w == "cob") return plus(0, 1, true);
  const auto to_friday = [&] { return (4 - weekday_mon0(today) + 7) % 7; };
  const auto to_month_end = [&] { return days_in_month(today.year, today.month) - today.day; };
  if (w == "eow") return plus(to_friday(), 1, true);
  if (w == "eom") return plus(to_month_end(), 1, true);
  // end of [the|this] day/week/month; конца/конец/концу дня/недели/месяца
  if (w == "end" && word(i + 1) == "of") {
    std::size_t k = i + 2;
    if (word(k) == "the" || word(k) == "this") ++k;
    if (word(k) == "day") return plus(0, k + 1 - i, true);
    if (word(k) == "week") return plus(to_friday(), k + 1 - i, true);
    if (word(k) == "month") return plus(to_month_end(), k + 1 - i, true);
  }
  if (w == "конца" || w == "конец" || w == "концу" || w == "конце") {
    std::size_t k = i + 1;
    if (word(k) == "этой" || word(k) == "этого" || word(k) == "рабочего") ++k;
    if (word(k) == "дня") return plus(0, k + 1 - i, true);
    if (word(k) == "недели") return plus(to_friday(), k + 1 - i, true);
    if (word(k) == "месяца") return plus(to_month_end(), k + 1 - i, true);
  }
  // in 3 days, within 2 weeks, in a week, через 3 дня, через неделю
  if (w == "in" || w == "within" || w == "через") {
    int n = -1;
    std::size_t k = i + 1;
    if (word(k) == "a" || word(k) == "one") {
      n = 1, ++k;
    } else if (k < t.size() && t[k].suffix.empty() && small_int(t[k]) > 0) {
      n = small_int(t[k]);
      ++k;
    }
    const std::string& unit = word(k);
    if (w == "через" && starts_with(unit, "недел") && n < 0) return plus(7, 2);
    if (n > 0) {
      if (unit == "day" || unit == "days" || unit == "дня" || unit == "дней" || unit == "день")
        return plus(n, k + 1 - i);
      if (unit == "week" || unit == "weeks" || starts_with(unit, "недел")) return plus(7 * n, k + 1 - i);
    }
  }
  // next week: its Monday
  if (is_next(w) && (word(i + 1) == "week" || starts_with(word(i + 1), "недел")))
    return plus(7 - weekday_mon0(today), 2);
  // Weekdays: the coming one (today included); after "next", the one in next week.
  const bool after_next = i > 0 && is_next(t[i - 1].text);
  const bool after_cue = i > 0 && (cue_at(t, i - 1) || t[i - 1].text == "on" || t[i - 1].text == "this" ||
                                   t[i - 1].text == "next");
  if (const int wd = weekday_of(w, after_cue); wd >= 0) {
    const int now = weekday_mon0(today);
    return plus(after_next ? 7 - now + wd : (wd - now + 7) % 7, 1);
  }
  return std::nullopt;
}

} // namespace

std::string iso_date(const CivilDate& date) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", date.year, date.month, date.day);
  return buf;
}

std::optional<CivilDate> parse_iso_date(std::string_view text) {
  if (text.size() < 10 || (text.size() > 10 && text[10] != 'T' && text[10] != 't' && text[10] != ' '))
    return std::nullopt;
  int v[3] = {0, 0, 0};
  const std::size_t at[3] = {0, 5, 8}, len[3] = {4, 2, 2};
  for (int k = 0; k < 3; ++k) {
    const auto [end, ec] = std::from_chars(text.data() + at[k], text.data() + at[k] + len[k], v[k]);
    if (ec != std::errc() || end != text.data() + at[k] + len[k]) return std::nullopt;
  }
  if (text[4] != '-' || text[7] != '-' || !valid_date(v[0], v[1], v[2])) return std::nullopt;
  return CivilDate{v[0], v[1], v[2]};
}

CivilDate add_days(const CivilDate& date, int days) {
  return civil_from_days(to_days(date) + days);
}

Extraction extract_entities(std::string_view text, const CivilDate& today,
                            const std::vector<std::string>& known_names) {
  Extraction out;
  const std::string s = sanitize_utf8(text);
  const std::string low = lower(s);
  std::vector<bool> masked(s.size(), false);
  const auto slice = [&](const Span& sp) { return s.substr(sp.begin, sp.end - sp.begin); };
  const auto add_unique = [](std::vector<std::string>& list, std::string v) {
    if (!in(list, v)) list.push_back(std::move(v));
  };

  for (const auto& sp : find_urls(s, low, masked)) add_unique(out.urls, slice(sp));
  for (const auto& sp : find_emails(s, masked)) add_unique(out.emails, slice(sp));
  for (const auto& sp : find_paths(s, masked)) add_unique(out.paths, slice(sp));

  // Known names: whole words, case-insensitive, outside URLs, addresses and paths.
  for (const auto& name : known_names) {
    const std::string n = lower(name);
    if (n.empty()) continue;
    for (std::size_t p = low.find(n); p != std::string::npos; p = low.find(n, p + 1)) {
      const std::size_t e = p + n.size();
      const auto word_byte = [&](std::size_t k) {
        const auto c = static_cast<unsigned char>(low[k]);
        return ascii_alpha(c) || ascii_digit(c) || c == '_' || c >= 0x80;
      };
      if (masked[p] || (p > 0 && (word_byte(p - 1) || low[p - 1] == '-')) ||
          (e < low.size() && (word_byte(e) || (low[e] == '-' && e + 1 < low.size() && word_byte(e + 1)))))
        continue;
      add_unique(out.names, name);
      break;
    }
  }
  // @mentions that name no known agent or system.
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '@' || masked[i] || !boundary_before(s, i)) continue;
    std::size_t e = i + 1;
    while (e < s.size() &&
           (ascii_alpha(s[e]) || ascii_digit(s[e]) || s[e] == '_' || s[e] == '-' || s[e] == '.'))
      ++e;
    while (e > i + 1 && (s[e - 1] == '.' || s[e - 1] == '-')) --e;
    if (e == i + 1) continue;
    const std::string mention = s.substr(i, e - i);
    const std::string bare = lower(mention.substr(1));
    if (std::none_of(known_names.begin(), known_names.end(),
                     [&](const std::string& k) { return lower(k) == bare; }))
      add_unique(out.mentions, mention);
    i = e;
  }

  std::vector<DateSpan> dates = find_numeric_dates(s, masked);
  std::vector<Piece> tokens = tokenize(low, masked);
  const auto first_token_from = [&](std::size_t byte) {
    return static_cast<std::size_t>(
        std::lower_bound(tokens.begin(), tokens.end(), byte,
                         [](const Piece& t, std::size_t b) { return t.begin < b; }) -
        tokens.begin());
  };
  for (auto& d : dates) d.deadline = cued(tokens, first_token_from(d.span.begin));
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const auto w = word_date(tokens, i, today);
    if (!w) continue;
    const Span sp{tokens[i].begin, tokens[i + w->length - 1].end};
    dates.push_back({sp, w->date, w->deadline || cued(tokens, i)});
    for (std::size_t k = i; k < i + w->length; ++k) tokens[k].used = true;
    i += w->length - 1;
  }
  std::sort(dates.begin(), dates.end(),
            [](const DateSpan& a, const DateSpan& b) { return a.span.begin < b.span.begin; });
  for (const auto& d : dates) {
    out.dates.push_back({slice(d.span), iso_date(d.date), d.deadline});
    if (d.deadline && (!out.deadline || iso_date(d.date) < *out.deadline)) out.deadline = iso_date(d.date);
  }

  // Numbers: not part of a date, a time of day (7pm, 14:30), an identifier (INC-1234, v2) or a version.
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    Piece& t = tokens[i];
    if (t.kind != Kind::number || t.used) continue;
    const Piece* prev = i > 0 ? &tokens[i - 1] : nullptr;
    const Piece* next = i + 1 < tokens.size() ? &tokens[i + 1] : nullptr;
    const bool next_adjacent = next && !next->gap_before;
    if (t.suffix == "am" || t.suffix == "pm" || (next && (next->text == "am" || next->text == "pm")))
      continue;
    if (next_adjacent && next->text == ":" && i + 2 < tokens.size() && tokens[i + 2].kind == Kind::number &&
        !tokens[i + 2].gap_before) {
      tokens[i + 2].used = true; // the minutes
      continue;
    }
    std::size_t begin = t.begin;
    std::string unit;
    bool negative = false;
    if (prev && !t.gap_before) {
      if (currency(prev->text)) {
        unit = prev->text;
        begin = prev->begin;
      } else if (prev->text == "-" && (i < 2 || prev->gap_before || tokens[i - 2].kind == Kind::punct)) {
        negative = true;
        begin = prev->begin;
      } else if (!in(std::array<std::string_view, 6>{"#", "№", "(", "\"", "+", "~"}, prev->text)) {
        continue; // INC-1234, x-86, a.5
      }
    }
    if (!t.suffix.empty() && !unit_word(t.suffix)) continue; // 3rd, 4th, x86-like identifiers
    if (next_adjacent && (next->kind == Kind::word || next->kind == Kind::number)) continue;
    if (next_adjacent && next->text == "-" && i + 2 < tokens.size() && !tokens[i + 2].gap_before &&
        tokens[i + 2].kind == Kind::word)
      continue; // 12-factor
    const auto value = number_value(t.digits);
    if (!value) continue;
    std::size_t end = t.end;
    if (!t.suffix.empty()) {
      unit = t.suffix;
    } else if (next && next->text == "%") {
      unit = "%";
      end = next->end;
    } else if (next && next->kind == Kind::word && unit_word(next->text) && unit.empty()) {
      unit = next->text;
      end = next->end;
    } else if (next && currency(next->text) && unit.empty()) {
      unit = next->text;
      end = next->end;
    }
    out.numbers.push_back({s.substr(begin, end - begin), negative ? -*value : *value, unit});
  }
  return out;
}

json extraction_json(const Extraction& x) {
  json dates = json::array();
  for (const auto& d : x.dates)
    dates.push_back({{"text", d.text}, {"date", d.date}, {"deadline", d.deadline}});
  json numbers = json::array();
  for (const auto& n : x.numbers) {
    json j = {{"text", n.text}, {"value", n.value}};
    if (!n.unit.empty()) j["unit"] = n.unit;
    numbers.push_back(std::move(j));
  }
  return {{"deadline", x.deadline ? json(*x.deadline) : json(nullptr)},
          {"dates", dates},
          {"emails", x.emails},
          {"urls", x.urls},
          {"paths", x.paths},
          {"mentions", x.mentions},
          {"names", x.names},
          {"numbers", numbers}};
}

MessageEntities envelope_entities(const Extraction& x) {
  MessageEntities e;
  const auto add = [](std::vector<std::string>& list, const std::string& v) {
    if (list.size() < 4 && utf8_length(v) <= 48 && !in(list, v)) list.push_back(v);
  };
  for (const auto& v : x.emails) add(e.people, v);
  for (const auto& v : x.mentions) add(e.people, v);
  for (const auto& d : x.dates) add(e.dates, d.date);
  for (const auto& v : x.names) add(e.systems, v);
  for (const auto& v : x.paths) add(e.files, v);
  return e;
}

} // namespace tinyroute
