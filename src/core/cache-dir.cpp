#include "core/cache-dir.h"

#include <pwd.h>
#include <unistd.h>

#include <array>
#include <cstdlib>

#include "tinyroute/error.h"

namespace tinyroute {

std::string cache_root() {
  auto env = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v != nullptr ? v : "";
  };
  if (std::string root = env("TINYROUTE_CACHE"); !root.empty()) return root;
  std::string base = env("XDG_CACHE_HOME");
  if (base.empty()) {
    std::string home = env("HOME");
    if (home.empty()) {
      std::array<char, 4096> buf{};
      passwd pw{};
      passwd* found = nullptr;
      if (::getpwuid_r(::getuid(), &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr &&
          found->pw_dir != nullptr) {
        home = found->pw_dir;
      }
    }
    if (home.empty()) {
      throw Error(ErrorCode::invalid_argument,
                  "no cache directory: set TINYROUTE_CACHE (or HOME / XDG_CACHE_HOME)");
    }
    base = home + "/.cache";
  }
  return base + "/tinyroute";
}

} // namespace tinyroute
