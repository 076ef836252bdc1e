#include "core/error.h"

namespace rwkv {

void throw_error(const std::string& message) { throw Error(message); }

}  // namespace rwkv
