// RFC 4122 identifiers for message envelopes: random (version 4) and the text form of any 16 bytes.
#pragma once

#include <string>

namespace tinyroute {

std::string format_uuid(const unsigned char (&bytes)[16]); // 8-4-4-4-12 lower-case hex
std::string random_uuid();                                 // version 4, from std::random_device

} // namespace tinyroute
