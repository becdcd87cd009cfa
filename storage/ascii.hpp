// ASCII case folding for DNS names, which compare case-insensitively
// (RFC 4343) and are stored in lower case: the writer folds what it stores
// and the reader folds what it is asked for, with this one function.
#pragma once

#include <string>
#include <string_view>

namespace dmarcd::storage {

inline std::string AsciiLower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace dmarcd::storage
