// One error type for everything a user or a caller can get wrong. The message
// is the whole story: what was wrong, where, what was expected, and a hint.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace rwkv {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Concatenates any streamable values: str_cat("shape ", 3, "x", 4).
template <typename... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}

[[noreturn]] void throw_error(const std::string& message);

}  // namespace rwkv

// RWKV_CHECK(cond, parts...): throws rwkv::Error with the concatenated parts.
#define RWKV_CHECK(cond, ...)                                 \
  do {                                                        \
    if (!(cond)) ::rwkv::throw_error(::rwkv::str_cat(__VA_ARGS__)); \
  } while (0)

#define RWKV_FAIL(...) ::rwkv::throw_error(::rwkv::str_cat(__VA_ARGS__))
