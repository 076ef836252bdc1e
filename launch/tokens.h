// Job and admin tokens: random secrets that rwkv-launch generates, keeps in
// 0600 files, and hands to the controller (both) and the ranks (job token).
// Every gRPC call carries one in its metadata under kTokenMetadataKey.
#pragma once

#include <string>

namespace rwkv::launch {

constexpr const char* kTokenMetadataKey = "x-rwkv-token";

// 64 lowercase hex digits from the kernel's random source (getrandom).
std::string generate_token();
// Writes the token to `path` with mode 0600 (created that way: never
// readable by others, not even for a moment).
void write_token_file(const std::string& path, const std::string& token);
// Reads a token file, trimming whitespace; errors name the file and say
// what was wrong (missing, empty, readable by others is only a warning).
std::string read_token_file(const std::string& path);
// Compares in time independent of where the strings differ.
bool tokens_equal(const std::string& a, const std::string& b);

}  // namespace rwkv::launch
