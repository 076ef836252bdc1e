// Helpers of the multi-rank tests: every rank can generate every rank's input
// (a pure function of rank and seed), so references are computed locally.
#pragma once

#include <mpi.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/tensor.h"
#include "parallel/mpi_comm.h"

namespace rwkv::parallel::test {

inline int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}
inline int world_size() {
  int n = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

// Values spread over six orders of magnitude and both signs, so that
// floating-point addition order shows in the low bits.
inline double value_at(int rank, uint64_t seed, int64_t i) {
  uint64_t x = (seed + 1) * 0x9E3779B97F4A7C15ull ^ (static_cast<uint64_t>(rank) + 1) * 0xBF58476D1CE4E5B9ull ^
               (static_cast<uint64_t>(i) + 1) * 0x94D049BB133111EBull;
  x ^= x >> 31;
  x *= 0xD6E8FEB86659FD93ull;
  x ^= x >> 32;
  const double u = static_cast<double>(x >> 11) / 9007199254740992.0;  // [0, 1)
  const int exponent = static_cast<int>((x >> 3) % 7) - 3;
  return (u - 0.5) * std::pow(10.0, exponent);
}

template <typename T>
Tensor rank_tensor(int rank, uint64_t seed, const Shape& shape) {
  Tensor t = Tensor::empty(shape, DTypeOf<T>::value);
  T* p = t.data<T>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<T>(value_at(rank, seed, i));
  return t;
}

// x_0 + x_1 + ... + x_{n-1} in T, in rank order: what the MPI communicator computes.
template <typename T>
std::vector<T> rank_order_sum(int ranks, uint64_t seed, int64_t numel, int64_t offset = 0) {
  std::vector<T> out(static_cast<size_t>(numel));
  for (int64_t i = 0; i < numel; ++i) {
    T acc = static_cast<T>(value_at(0, seed, offset + i));
    for (int q = 1; q < ranks; ++q) acc += static_cast<T>(value_at(q, seed, offset + i));
    out[static_cast<size_t>(i)] = acc;
  }
  return out;
}

template <typename T>
bool bitwise_equal(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

// FNV-1a over the bytes of a tensor: compares results across ranks cheaply.
inline uint64_t hash_bytes(const Tensor& t) {
  const auto* p = static_cast<const unsigned char*>(t.raw_data());
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < t.nbytes(); ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

// True on every rank when every rank of comm passed the same value.
inline bool same_on_all_ranks(uint64_t value, MPI_Comm comm = MPI_COMM_WORLD) {
  int n = 0;
  MPI_Comm_size(comm, &n);
  std::vector<uint64_t> all(static_cast<size_t>(n));
  MPI_Allgather(&value, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, comm);
  for (uint64_t v : all)
    if (v != value) return false;
  return true;
}

// A world communicator for one test (freed at the end of it).
struct WorldComm {
  MpiCommunicator comm;
  WorldComm() : comm(dup_world(), "world", true) {}
  static MPI_Comm dup_world() {
    MPI_Comm c;
    MPI_Comm_dup(MPI_COMM_WORLD, &c);
    return c;
  }
};

// Lowers the MPI message limit for one scope (exercises message splitting).
struct MessageLimit {
  size_t saved = MpiCommunicator::message_limit();
  explicit MessageLimit(size_t bytes) { MpiCommunicator::set_message_limit(bytes); }
  ~MessageLimit() { MpiCommunicator::set_message_limit(saved); }
};

}  // namespace rwkv::parallel::test
