// Where tinyroute keeps what it fetches and learns: models/, heads/, llama.cpp builds.
#pragma once

#include <string>

namespace tinyroute {

// $TINYROUTE_CACHE, else $XDG_CACHE_HOME/tinyroute, else $HOME/.cache/tinyroute (HOME from the password
// database when unset). The same root as scripts/fetch-llama.sh, so one variable moves all of it.
// Throws Error(invalid_argument) when none of them gives a directory.
std::string cache_root();

} // namespace tinyroute
