// Quantities with units, as rwkv-plan reads and prints them. Vendors quote
// link speeds in both bytes and bits (NVLink "600 GB/s", InfiniBand
// "200 Gb/s"), so a bandwidth carries its unit; a bare number is GB/s.
//
//   parse_bytes("80GiB")         80 * 2^30        (GiB, GB = 1e9, MiB, MB, TiB, TB; bare number = GiB)
//   parse_bandwidth("600GB/s")   600e9 bytes/s
//   parse_bandwidth("200Gb/s")   25e9 bytes/s     (bits: lower-case b)
//
// Errors name the flag, what was given and what is expected.
#pragma once

#include <cstdint>
#include <string>

namespace rwkv::planner {

// A finite decimal number (no units); `flag` names the option in errors.
double parse_number(const std::string& text, const std::string& flag);
// A whole number.
int64_t parse_integer(const std::string& text, const std::string& flag);
// Bytes: "80GiB", "80GB", "512MiB", "1.5TB"; a bare number is GiB.
double parse_bytes(const std::string& text, const std::string& flag);
// Bytes per second: "600GB/s", "200Gb/s", "25GB/s", "900 GB/s"; a bare number is GB/s.
double parse_bandwidth(const std::string& text, const std::string& flag);

// Readable forms for tables: "12.34 GiB", "1.23 s" / "45.6 ms", "123.4K".
std::string format_gib(double bytes);
std::string format_seconds(double seconds);
std::string format_count(double value);

}  // namespace rwkv::planner
