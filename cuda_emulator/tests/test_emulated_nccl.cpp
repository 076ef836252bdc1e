// The CUDA emulator's NCCL over MPI (cuda_emulator/src/nccl.cpp): every
// collective and data type the CUDA backend can use, groups, communicators
// over subsets of the job, and the misuse the emulator must reject. Run it
// under mpirun with 2 and with 3 processes (some cases need 3: a subset that
// leaves a process out, odd rank counts in the reductions); 1 works too.
//
// Device buffers come from cudaMalloc and are only ever touched through
// cudaMemcpy: the emulator keeps device memory inaccessible to host code.
// Every process runs the same tests in the same order; a collective test that
// fails on one process may leave the others waiting, so expectations that
// could differ between ranks are EXPECTs and setup failures abort the job.
#include <gtest/gtest.h>
#include <mpi.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "cuda_runtime_api.h"
#include "nccl.h"
#include "stream_order.h"

namespace {

int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

int world_size() {
  int n = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

// A setup step every rank needs; a failure on one rank would leave the others
// hanging in the next collective, so it ends the job instead.
void require(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "[world rank %d] setup failed: %s (%s)\n", world_rank(), what, ncclGetLastError(nullptr));
  MPI_Abort(MPI_COMM_WORLD, 2);
}

template <class T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t n) : n_(n) {
    require(cudaMalloc(&ptr_, (n == 0 ? 1 : n) * sizeof(T)) == cudaSuccess, "cudaMalloc");
  }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) { upload(host); }
  ~DeviceBuffer() { cudaFree(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* get() const { return static_cast<T*>(ptr_); }
  void upload(const std::vector<T>& host) {
    require(host.size() == n_, "upload size");
    require(cudaMemcpy(ptr_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice) == cudaSuccess, "cudaMemcpy H2D");
  }
  std::vector<T> download() const {
    std::vector<T> host(n_);
    require(cudaMemcpy(host.data(), ptr_, n_ * sizeof(T), cudaMemcpyDeviceToHost) == cudaSuccess, "cudaMemcpy D2H");
    return host;
  }

 private:
  void* ptr_ = nullptr;
  size_t n_ = 0;
};

// bfloat16 of values that are exact in it (the top half of the float).
uint16_t bf16(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  EXPECT_EQ(u & 0xffffu, 0u) << f << " is not exact in bfloat16";
  return static_cast<uint16_t>(u >> 16);
}
float from_bf16(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }

// binary16 of zero and normal values exact in it.
uint16_t f16(float f) {
  if (f == 0.0f) return 0;
  const uint32_t u = std::bit_cast<uint32_t>(f);
  const int exponent = static_cast<int>((u >> 23) & 0xffu) - 127 + 15;
  EXPECT_TRUE(exponent > 0 && exponent < 31 && (u & 0x1fffu) == 0) << f << " is not exact in float16";
  return static_cast<uint16_t>(((u >> 16) & 0x8000u) | (static_cast<uint32_t>(exponent) << 10) | ((u >> 13) & 0x3ffu));
}
float from_f16(uint16_t h) {
  const uint32_t exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
  const float sign = (h & 0x8000u) != 0 ? -1.0f : 1.0f;
  if (exponent == 31) return mantissa != 0 ? NAN : sign * INFINITY;
  if (exponent == 0) return sign * std::ldexp(static_cast<float>(mantissa), -24);
  return sign * std::ldexp(1.0f + static_cast<float>(mantissa) / 1024.0f, static_cast<int>(exponent) - 15);
}

// Builds a communicator over the processes of group (nccl rank = rank in
// group); group rank `maker` makes the id, as parallel/nccl_comm.cpp does
// with 0.
ncclComm_t make_comm(MPI_Comm group, int maker = 0) {
  int rank = 0, size = 0;
  MPI_Comm_rank(group, &rank);
  MPI_Comm_size(group, &size);
  ncclUniqueId id{};
  if (rank == maker) require(ncclGetUniqueId(&id) == ncclSuccess, "ncclGetUniqueId");
  MPI_Bcast(&id, sizeof id, MPI_BYTE, maker, group);
  ncclComm_t comm = nullptr;
  require(ncclCommInitRank(&comm, size, id, rank) == ncclSuccess, "ncclCommInitRank");
  return comm;
}

ncclComm_t g_world = nullptr;  // over MPI_COMM_WORLD on device 0, made in main

class Nccl : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(cudaSetDevice(0), cudaSuccess); }
  const int rank = world_rank();
  const int n = world_size();
};

// The collective tests run twice: each operation in one MPI call, and split
// into MPI calls of at most 3 elements (the path for counts beyond INT_MAX).
class NcclCollectives : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
    if (GetParam() > 0) setenv("RWKV_CUDA_EMULATOR_NCCL_MAX_COUNT", std::to_string(GetParam()).c_str(), 1);
  }
  void TearDown() override { unsetenv("RWKV_CUDA_EMULATOR_NCCL_MAX_COUNT"); }
  const int rank = world_rank();
  const int n = world_size();
};

INSTANTIATE_TEST_SUITE_P(MpiCallSize, NcclCollectives, ::testing::Values(0, 3),
                         [](const ::testing::TestParamInfo<int>& param) {
                           return param.param == 0 ? std::string("Whole") : "SplitBy" + std::to_string(param.param);
                         });

TEST_F(Nccl, CountAndRankMatchTheWorld) {
  int count = -1, r = -1;
  ASSERT_EQ(ncclCommCount(g_world, &count), ncclSuccess);
  ASSERT_EQ(ncclCommUserRank(g_world, &r), ncclSuccess);
  EXPECT_EQ(count, n);
  EXPECT_EQ(r, rank);
}

// Sum of (rank + 1) + i % 5 over the ranks, in every type, out of place and
// in place. The values stay small enough to be exact in every type.
template <class Storage, class Encode, class Decode>
void sum_in_every_arrangement(ncclDataType_t type, Encode encode, Decode decode, int rank, int n) {
  const size_t count = 13;
  std::vector<Storage> input(count);
  for (size_t i = 0; i < count; ++i) input[i] = encode(static_cast<double>(rank + 1 + static_cast<int>(i % 5)));
  for (bool in_place : {false, true}) {
    SCOPED_TRACE(in_place ? "in place" : "out of place");
    DeviceBuffer<Storage> send(input), recv(count);
    Storage* out = in_place ? send.get() : recv.get();
    ASSERT_EQ(ncclAllReduce(send.get(), out, count, type, ncclSum, g_world, nullptr), ncclSuccess);
    const std::vector<Storage> got = in_place ? send.download() : recv.download();
    for (size_t i = 0; i < count; ++i)
      EXPECT_EQ(decode(got[i]), n * (n + 1) / 2.0 + n * static_cast<double>(i % 5)) << "element " << i;
    if (!in_place) {
      EXPECT_EQ(send.download(), input) << "out of place must leave sendbuff alone";
    }
  }
}

TEST_P(NcclCollectives, AllReduceSumEveryType) {
  auto as = [](auto zero) {
    return std::pair{[](double v) { return static_cast<decltype(zero)>(v); },
                     [](decltype(zero) v) { return static_cast<double>(v); }};
  };
  auto [e8, d8] = as(int8_t{});
  sum_in_every_arrangement<int8_t>(ncclInt8, e8, d8, rank, n);
  auto [eu8, du8] = as(uint8_t{});
  sum_in_every_arrangement<uint8_t>(ncclUint8, eu8, du8, rank, n);
  auto [e32, d32] = as(int32_t{});
  sum_in_every_arrangement<int32_t>(ncclInt32, e32, d32, rank, n);
  auto [eu32, du32] = as(uint32_t{});
  sum_in_every_arrangement<uint32_t>(ncclUint32, eu32, du32, rank, n);
  auto [e64, d64] = as(int64_t{});
  sum_in_every_arrangement<int64_t>(ncclInt64, e64, d64, rank, n);
  auto [eu64, du64] = as(uint64_t{});
  sum_in_every_arrangement<uint64_t>(ncclUint64, eu64, du64, rank, n);
  auto [ef, df] = as(float{});
  sum_in_every_arrangement<float>(ncclFloat32, ef, df, rank, n);
  auto [ed, dd] = as(double{});
  sum_in_every_arrangement<double>(ncclFloat64, ed, dd, rank, n);
  sum_in_every_arrangement<uint16_t>(
      ncclBfloat16, [](double v) { return bf16(static_cast<float>(v)); },
      [](uint16_t h) { return static_cast<double>(from_bf16(h)); }, rank, n);
  sum_in_every_arrangement<uint16_t>(
      ncclFloat16, [](double v) { return f16(static_cast<float>(v)); },
      [](uint16_t h) { return static_cast<double>(from_f16(h)); }, rank, n);
}

TEST_P(NcclCollectives, AllReduceProdMaxMinAvg) {
  const size_t count = 9;
  double factorial = 1;
  for (int r = 1; r <= n; ++r) factorial *= r;

  {  // f64, value (rank + 1) * k with k = 1 + i % 3
    std::vector<double> input(count);
    for (size_t i = 0; i < count; ++i) input[i] = (rank + 1) * (1.0 + static_cast<double>(i % 3));
    for (ncclRedOp_t op : {ncclProd, ncclMax, ncclMin, ncclAvg}) {
      SCOPED_TRACE(testing::Message() << "f64 op " << op);
      DeviceBuffer<double> send(input), recv(count);
      ASSERT_EQ(ncclAllReduce(send.get(), recv.get(), count, ncclFloat64, op, g_world, nullptr), ncclSuccess);
      const std::vector<double> got = recv.download();
      for (size_t i = 0; i < count; ++i) {
        const double k = 1.0 + static_cast<double>(i % 3);
        const double want = op == ncclProd  ? factorial * std::pow(k, n)
                            : op == ncclMax ? n * k
                            : op == ncclMin ? k
                                            : (n + 1) / 2.0 * k;
        EXPECT_EQ(got[i], want) << "element " << i;
      }
    }
  }
  {  // int32 max and min in place, value rank * 10 - i
    for (ncclRedOp_t op : {ncclMax, ncclMin}) {
      std::vector<int32_t> input(count);
      for (size_t i = 0; i < count; ++i) input[i] = rank * 10 - static_cast<int32_t>(i);
      DeviceBuffer<int32_t> buf(input);
      ASSERT_EQ(ncclAllReduce(buf.get(), buf.get(), count, ncclInt32, op, g_world, nullptr), ncclSuccess);
      const std::vector<int32_t> got = buf.download();
      for (size_t i = 0; i < count; ++i)
        EXPECT_EQ(got[i], (op == ncclMax ? (n - 1) * 10 : 0) - static_cast<int32_t>(i)) << "int32 op " << op;
    }
  }
  {  // int64 average truncates like integer division: value rank + 10 * i
    std::vector<int64_t> input(count);
    for (size_t i = 0; i < count; ++i) input[i] = rank + 10 * static_cast<int64_t>(i);
    DeviceBuffer<int64_t> buf(input);
    ASSERT_EQ(ncclAllReduce(buf.get(), buf.get(), count, ncclInt64, ncclAvg, g_world, nullptr), ncclSuccess);
    const std::vector<int64_t> got = buf.download();
    for (size_t i = 0; i < count; ++i) {
      const int64_t sum = n * (n - 1) / 2 + 10 * static_cast<int64_t>(i) * n;
      EXPECT_EQ(got[i], sum / n) << "element " << i;
    }
  }
  {  // bf16 max and avg, value rank + 1 + i % 4
    for (ncclRedOp_t op : {ncclMax, ncclAvg}) {
      std::vector<uint16_t> input(count);
      for (size_t i = 0; i < count; ++i) input[i] = bf16(static_cast<float>(rank + 1 + static_cast<int>(i % 4)));
      DeviceBuffer<uint16_t> send(input), recv(count);
      ASSERT_EQ(ncclAllReduce(send.get(), recv.get(), count, ncclBfloat16, op, g_world, nullptr), ncclSuccess);
      const std::vector<uint16_t> got = recv.download();
      for (size_t i = 0; i < count; ++i) {
        const float k = static_cast<float>(i % 4);
        EXPECT_EQ(from_bf16(got[i]), op == ncclMax ? n + k : (n + 1) / 2.0f + k) << "bf16 op " << op << " at " << i;
      }
    }
  }
  {  // f16 product and minimum, value rank + 1
    for (ncclRedOp_t op : {ncclProd, ncclMin}) {
      DeviceBuffer<uint16_t> buf(std::vector<uint16_t>(count, f16(static_cast<float>(rank + 1))));
      ASSERT_EQ(ncclAllReduce(buf.get(), buf.get(), count, ncclFloat16, op, g_world, nullptr), ncclSuccess);
      for (uint16_t h : buf.download()) EXPECT_EQ(from_f16(h), op == ncclProd ? factorial : 1.0) << "f16 op " << op;
    }
  }
  {  // uint64 sum beyond 32 bits, int8 max of negative values
    DeviceBuffer<uint64_t> big(std::vector<uint64_t>(count, (uint64_t{1} << 40) * static_cast<uint64_t>(rank + 1)));
    ASSERT_EQ(ncclAllReduce(big.get(), big.get(), count, ncclUint64, ncclSum, g_world, nullptr), ncclSuccess);
    for (uint64_t v : big.download()) EXPECT_EQ(v, (uint64_t{1} << 40) * static_cast<uint64_t>(n * (n + 1) / 2));
    DeviceBuffer<int8_t> small(std::vector<int8_t>(count, static_cast<int8_t>(rank - 5)));
    ASSERT_EQ(ncclAllReduce(small.get(), small.get(), count, ncclInt8, ncclMax, g_world, nullptr), ncclSuccess);
    for (int8_t v : small.download()) EXPECT_EQ(v, n - 1 - 5);
  }
}

// Rank 0 contributes a, rank 1 b, the others 0 (adding zero is exact in any
// order, so the one rounding step is that of a + b).
template <class Encode, class Decode>
std::vector<float> half_sums(ncclDataType_t type, Encode encode, Decode decode, const std::vector<float>& a,
                             const std::vector<float>& b, int rank) {
  std::vector<uint16_t> input(a.size());
  for (size_t i = 0; i < a.size(); ++i) input[i] = rank == 0 ? encode(a[i]) : rank == 1 ? encode(b[i]) : encode(0.0f);
  DeviceBuffer<uint16_t> buf(input);
  EXPECT_EQ(ncclAllReduce(buf.get(), buf.get(), a.size(), type, ncclSum, g_world, nullptr), ncclSuccess);
  std::vector<float> out;
  for (uint16_t h : buf.download()) out.push_back(decode(h));
  return out;
}

TEST_F(Nccl, HalfPrecisionSumsRoundToNearestEven) {
  if (n < 2) GTEST_SKIP() << "needs two processes";
  // bfloat16 keeps 8 significant bits: 257 ties between 256 and 258 and goes
  // to 256 (even); 259 ties between 258 and 260 and goes to 260.
  EXPECT_EQ(half_sums(ncclBfloat16, bf16, from_bf16, {256, 258, 0.5f}, {1, 1, 0.25f}, rank),
            (std::vector<float>{256, 260, 0.75f}));
  // binary16 keeps 11: 2049 goes to 2048, 2051 to 2052.
  EXPECT_EQ(half_sums(ncclFloat16, f16, from_f16, {2048, 2050, 0.5f}, {1, 1, 0.25f}, rank),
            (std::vector<float>{2048, 2052, 0.75f}));

  // A NaN stays a NaN through the sum.
  DeviceBuffer<uint16_t> buf(std::vector<uint16_t>(2, rank == 0 ? uint16_t{0x7fc0} : bf16(1.0f)));
  ASSERT_EQ(ncclAllReduce(buf.get(), buf.get(), 2, ncclBfloat16, ncclSum, g_world, nullptr), ncclSuccess);
  for (uint16_t h : buf.download()) EXPECT_TRUE(std::isnan(from_bf16(h))) << std::hex << h;
}

TEST_P(NcclCollectives, ReduceScatter) {
  const size_t per_rank = 7, total = per_rank * static_cast<size_t>(n);
  std::vector<float> input(total);
  for (size_t j = 0; j < total; ++j) input[j] = static_cast<float>(rank) + 0.25f * static_cast<float>(j);
  auto want = [&](size_t j) { return static_cast<float>(n * (n - 1) / 2) + 0.25f * static_cast<float>(j) * n; };
  const size_t own = static_cast<size_t>(rank) * per_rank;

  {  // out of place, f32 sum
    DeviceBuffer<float> send(input), recv(per_rank);
    ASSERT_EQ(ncclReduceScatter(send.get(), recv.get(), per_rank, ncclFloat32, ncclSum, g_world, nullptr),
              ncclSuccess);
    const std::vector<float> got = recv.download();
    for (size_t j = 0; j < per_rank; ++j) EXPECT_EQ(got[j], want(own + j)) << "element " << j;
    EXPECT_EQ(send.download(), input);
  }
  {  // in place: recvbuff is this rank's block of sendbuff
    DeviceBuffer<float> buf(input);
    ASSERT_EQ(ncclReduceScatter(buf.get(), buf.get() + own, per_rank, ncclFloat32, ncclSum, g_world, nullptr),
              ncclSuccess);
    const std::vector<float> got = buf.download();
    for (size_t j = 0; j < per_rank; ++j) EXPECT_EQ(got[own + j], want(own + j)) << "element " << j;
  }
  {  // in place, bf16 average of rank + 1 + j % 4
    std::vector<uint16_t> halves(total);
    for (size_t j = 0; j < total; ++j) halves[j] = bf16(static_cast<float>(rank + 1 + static_cast<int>(j % 4)));
    DeviceBuffer<uint16_t> buf(halves);
    ASSERT_EQ(ncclReduceScatter(buf.get(), buf.get() + own, per_rank, ncclBfloat16, ncclAvg, g_world, nullptr),
              ncclSuccess);
    const std::vector<uint16_t> got = buf.download();
    for (size_t j = own; j < own + per_rank; ++j)
      EXPECT_EQ(from_bf16(got[j]), (n + 1) / 2.0f + static_cast<float>(j % 4)) << "element " << j;
  }
}

TEST_P(NcclCollectives, AllGather) {
  const size_t per_rank = 5, total = per_rank * static_cast<size_t>(n);
  const size_t own = static_cast<size_t>(rank) * per_rank;
  {  // bytes, out of place, as parallel/nccl_comm.cpp gathers every dtype
    std::vector<uint8_t> mine(per_rank);
    for (size_t j = 0; j < per_rank; ++j) mine[j] = static_cast<uint8_t>(rank * 16 + static_cast<int>(j));
    DeviceBuffer<uint8_t> send(mine), recv(total);
    ASSERT_EQ(ncclAllGather(send.get(), recv.get(), per_rank, ncclUint8, g_world, nullptr), ncclSuccess);
    const std::vector<uint8_t> got = recv.download();
    for (size_t j = 0; j < total; ++j)
      EXPECT_EQ(got[j], static_cast<uint8_t>(static_cast<int>(j / per_rank) * 16 + static_cast<int>(j % per_rank)))
          << "byte " << j;
  }
  {  // f32, in place: sendbuff is this rank's block of recvbuff, the rest garbage
    std::vector<float> buffer(total, -99.0f);
    for (size_t j = 0; j < per_rank; ++j) buffer[own + j] = static_cast<float>(rank) + 0.5f * static_cast<float>(j);
    DeviceBuffer<float> buf(buffer);
    ASSERT_EQ(ncclAllGather(buf.get() + own, buf.get(), per_rank, ncclFloat32, g_world, nullptr), ncclSuccess);
    const std::vector<float> got = buf.download();
    for (size_t j = 0; j < total; ++j)
      EXPECT_EQ(got[j], static_cast<float>(j / per_rank) + 0.5f * static_cast<float>(j % per_rank)) << "element " << j;
  }
}

TEST_P(NcclCollectives, BroadcastFromTheLastRank) {
  const int root = n - 1;  // not rank 0, so the root is really honoured
  const size_t count = 11;
  std::vector<double> payload(count);
  for (size_t i = 0; i < count; ++i) payload[i] = 1.5 * static_cast<double>(i) - 4;
  {  // out of place; sendbuff is ignored (here null) except on the root
    DeviceBuffer<double> send(rank == root ? payload : std::vector<double>(count, 7.0)), recv(count);
    const double* source = rank == root ? send.get() : nullptr;
    ASSERT_EQ(ncclBroadcast(source, recv.get(), count, ncclFloat64, root, g_world, nullptr), ncclSuccess);
    EXPECT_EQ(recv.download(), payload);
  }
  {  // in place, int32
    std::vector<int32_t> values(count);
    for (size_t i = 0; i < count; ++i) values[i] = rank == root ? static_cast<int32_t>(i * i) : -1;
    DeviceBuffer<int32_t> buf(values);
    ASSERT_EQ(ncclBroadcast(buf.get(), buf.get(), count, ncclInt32, root, g_world, nullptr), ncclSuccess);
    const std::vector<int32_t> got = buf.download();
    for (size_t i = 0; i < count; ++i) EXPECT_EQ(got[i], static_cast<int32_t>(i * i));
  }
}

// Everyone sends to the next rank and receives from the previous one inside
// a group: without the group's posting of both sides together, every rank
// would wait in its send. Two messages go to the same peer and must arrive
// in order. On a non-default stream, as parallel/nccl_comm.cpp uses.
TEST_P(NcclCollectives, SendRecvRingInAGroup) {
  const int next = (rank + 1) % n, prev = (rank + n - 1) % n;
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  auto message = [](int from, size_t count, int salt) {
    std::vector<float> m(count);
    for (size_t j = 0; j < count; ++j) m[j] = static_cast<float>(from * 1000 + salt * 100) + static_cast<float>(j);
    return m;
  };
  DeviceBuffer<float> first_out(message(rank, 37, 1)), second_out(message(rank, 11, 2));
  DeviceBuffer<float> first_in(37), second_in(11);
  ASSERT_EQ(ncclGroupStart(), ncclSuccess);
  ASSERT_EQ(ncclSend(first_out.get(), 37, ncclFloat32, next, g_world, stream), ncclSuccess);
  ASSERT_EQ(ncclSend(second_out.get(), 11, ncclFloat32, next, g_world, stream), ncclSuccess);
  ASSERT_EQ(ncclRecv(first_in.get(), 37, ncclFloat32, prev, g_world, stream), ncclSuccess);
  ASSERT_EQ(ncclRecv(second_in.get(), 11, ncclFloat32, prev, g_world, stream), ncclSuccess);
  ASSERT_EQ(ncclGroupEnd(), ncclSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  EXPECT_EQ(first_in.download(), message(prev, 37, 1));
  EXPECT_EQ(second_in.download(), message(prev, 11, 2));
  ASSERT_EQ(cudaStreamDestroy(stream), cudaSuccess);
}

// Outside a group a send blocks until its receive: ranks 0 and 1 take turns.
TEST_F(Nccl, BlockingSendThenRecvOutsideAGroup) {
  if (n < 2) GTEST_SKIP() << "needs two processes";
  DeviceBuffer<int32_t> out(std::vector<int32_t>(4, rank + 40)), in(4);
  if (rank == 0) {
    ASSERT_EQ(ncclSend(out.get(), 4, ncclInt32, 1, g_world, nullptr), ncclSuccess);
    ASSERT_EQ(ncclRecv(in.get(), 4, ncclInt32, 1, g_world, nullptr), ncclSuccess);
    EXPECT_EQ(in.download(), std::vector<int32_t>(4, 41));
  } else if (rank == 1) {
    ASSERT_EQ(ncclRecv(in.get(), 4, ncclInt32, 0, g_world, nullptr), ncclSuccess);
    ASSERT_EQ(ncclSend(out.get(), 4, ncclInt32, 0, g_world, nullptr), ncclSuccess);
    EXPECT_EQ(in.download(), std::vector<int32_t>(4, 40));
  }
}

// Nested groups run at the outermost end, collectives and point-to-point
// together.
TEST_F(Nccl, NestedGroupsRunCollectivesAndPointToPointAtTheOuterEnd) {
  const int next = (rank + 1) % n, prev = (rank + n - 1) % n;
  DeviceBuffer<float> sum(std::vector<float>(6, static_cast<float>(rank + 1)));
  DeviceBuffer<int32_t> out(std::vector<int32_t>(3, rank)), in(3);
  DeviceBuffer<int32_t> bcast(std::vector<int32_t>(2, rank == 0 ? 77 : 0));
  ASSERT_EQ(ncclGroupStart(), ncclSuccess);
  ASSERT_EQ(ncclAllReduce(sum.get(), sum.get(), 6, ncclFloat32, ncclSum, g_world, nullptr), ncclSuccess);
  ASSERT_EQ(ncclGroupStart(), ncclSuccess);
  ASSERT_EQ(ncclSend(out.get(), 3, ncclInt32, next, g_world, nullptr), ncclSuccess);
  ASSERT_EQ(ncclRecv(in.get(), 3, ncclInt32, prev, g_world, nullptr), ncclSuccess);
  ASSERT_EQ(ncclGroupEnd(), ncclSuccess);
  ASSERT_EQ(ncclBroadcast(bcast.get(), bcast.get(), 2, ncclInt32, 0, g_world, nullptr), ncclSuccess);
  ASSERT_EQ(ncclGroupEnd(), ncclSuccess);
  EXPECT_EQ(sum.download(), std::vector<float>(6, static_cast<float>(n * (n + 1) / 2)));
  EXPECT_EQ(in.download(), std::vector<int32_t>(3, prev));
  EXPECT_EQ(bcast.download(), std::vector<int32_t>(2, 77));
}

// Messages past MPI's eager limit take the rendezvous path, where the peer
// may copy straight out of this process's (emulated device) memory.
TEST_F(Nccl, LargeBuffersTakeTheRendezvousPath) {
  const size_t count = size_t{3} << 20;  // 12 MiB of f32
  const int next = (rank + 1) % n, prev = (rank + n - 1) % n;
  std::vector<float> input(count);
  for (size_t i = 0; i < count; ++i) input[i] = static_cast<float>(rank) + static_cast<float>(i % 1024);
  DeviceBuffer<float> send(input), recv(count);
  ASSERT_EQ(ncclAllReduce(send.get(), recv.get(), count, ncclFloat32, ncclSum, g_world, nullptr), ncclSuccess);
  const std::vector<float> sum = recv.download();
  size_t wrong = 0;
  for (size_t i = 0; i < count; ++i)
    wrong += sum[i] != static_cast<float>(n * (n - 1) / 2) + static_cast<float>(n) * static_cast<float>(i % 1024);
  EXPECT_EQ(wrong, 0u);

  ASSERT_EQ(ncclGroupStart(), ncclSuccess);
  ASSERT_EQ(ncclSend(send.get(), count, ncclFloat32, next, g_world, nullptr), ncclSuccess);
  ASSERT_EQ(ncclRecv(recv.get(), count, ncclFloat32, prev, g_world, nullptr), ncclSuccess);
  ASSERT_EQ(ncclGroupEnd(), ncclSuccess);
  const std::vector<float> got = recv.download();
  wrong = 0;
  for (size_t i = 0; i < count; ++i) wrong += got[i] != static_cast<float>(prev) + static_cast<float>(i % 1024);
  EXPECT_EQ(wrong, 0u);
}

// Collectives take part in the emulator's stream-order checks: the pattern of
// parallel/nccl_comm.cpp (the NCCL stream waits for an event after the
// compute stream's work, and the compute stream for one after the
// collective) is clean; leaving out either wait is a race on a GPU.
TEST_F(Nccl, CollectivesOnTheirOwnStreamAreOrderChecked) {
  cudaStream_t nccl_stream = nullptr;
  cudaEvent_t compute_done = nullptr, comm_done = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&nccl_stream, cudaStreamNonBlocking), cudaSuccess);
  ASSERT_EQ(cudaEventCreateWithFlags(&compute_done, cudaEventDisableTiming), cudaSuccess);
  ASSERT_EQ(cudaEventCreateWithFlags(&comm_done, cudaEventDisableTiming), cudaSuccess);
  DeviceBuffer<float> buf(std::vector<float>(16, 1.0f));
  const size_t bytes = 16 * sizeof(float);
  auto compute_writes = [&] { ASSERT_EQ(cudaMemsetAsync(buf.get(), 0, bytes, nullptr), cudaSuccess); };
  auto nccl_waits_for_compute = [&] {
    ASSERT_EQ(cudaEventRecord(compute_done, nullptr), cudaSuccess);
    ASSERT_EQ(cudaStreamWaitEvent(nccl_stream, compute_done, 0), cudaSuccess);
  };
  auto all_reduce = [&] {
    ASSERT_EQ(ncclAllReduce(buf.get(), buf.get(), 16, ncclFloat32, ncclSum, g_world, nccl_stream), ncclSuccess);
  };

  setenv("RWKV_CUDA_EMULATOR_RACES", "report", 1);  // the races below are made on purpose
  uint64_t before = cuda_emulator::stream_races_found();
  compute_writes();
  nccl_waits_for_compute();
  all_reduce();
  ASSERT_EQ(cudaEventRecord(comm_done, nccl_stream), cudaSuccess);
  ASSERT_EQ(cudaStreamWaitEvent(nullptr, comm_done, 0), cudaSuccess);
  compute_writes();
  EXPECT_EQ(cuda_emulator::stream_races_found(), before) << "events order every access";

  before = cuda_emulator::stream_races_found();
  compute_writes();
  all_reduce();  // reads and writes what the compute stream may still be writing
  EXPECT_GT(cuda_emulator::stream_races_found(), before) << "the NCCL stream did not wait";

  nccl_waits_for_compute();
  all_reduce();
  before = cuda_emulator::stream_races_found();
  compute_writes();  // may overwrite the buffer while the all-reduce still works on it
  EXPECT_GT(cuda_emulator::stream_races_found(), before) << "the compute stream did not wait";

  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  ASSERT_EQ(cudaEventDestroy(compute_done), cudaSuccess);
  ASSERT_EQ(cudaEventDestroy(comm_done), cudaSuccess);
  ASSERT_EQ(cudaStreamDestroy(nccl_stream), cudaSuccess);
}

TEST_F(Nccl, ZeroCountIsANoOp) {
  EXPECT_EQ(ncclAllReduce(nullptr, nullptr, 0, ncclFloat32, ncclSum, g_world, nullptr), ncclSuccess);
  EXPECT_EQ(ncclReduceScatter(nullptr, nullptr, 0, ncclBfloat16, ncclSum, g_world, nullptr), ncclSuccess);
  EXPECT_EQ(ncclAllGather(nullptr, nullptr, 0, ncclUint8, g_world, nullptr), ncclSuccess);
  EXPECT_EQ(ncclBroadcast(nullptr, nullptr, 0, ncclUint8, 0, g_world, nullptr), ncclSuccess);
  EXPECT_EQ(ncclSend(nullptr, 0, ncclUint8, (rank + 1) % n, g_world, nullptr), ncclSuccess);
  EXPECT_EQ(ncclRecv(nullptr, 0, ncclUint8, (rank + n - 1) % n, g_world, nullptr), ncclSuccess);
}

// The NCCL communicator of a subset of the job is built by its members alone.
// On 3+ processes: ranks 0 and 2 build one (world rank 2 makes the id and is
// nccl rank 0) while rank 1, which never joins, builds a 1-rank communicator
// of its own; then ids X = {0, 1} and Y = {1, 2} are built with rank 1 doing
// Y first and 0 doing X at once. Any collective over MPI_COMM_WORLD inside
// ncclCommInitRank would hang here. Last, a world communicator in reversed
// order whose id comes from world rank 1.
TEST_F(Nccl, CommunicatorsOverSubsetsNeedNoWorldCollective) {
  constexpr int kIdTag = 11;
  if (n >= 3 && rank <= 2) {
    ncclComm_t comm = nullptr;
    if (rank == 1) {
      ncclUniqueId id{};
      ASSERT_EQ(ncclGetUniqueId(&id), ncclSuccess);
      ASSERT_EQ(ncclCommInitRank(&comm, 1, id, 0), ncclSuccess);
      DeviceBuffer<float> buf(std::vector<float>(3, 5.0f));
      ASSERT_EQ(ncclAllReduce(buf.get(), buf.get(), 3, ncclFloat32, ncclSum, comm, nullptr), ncclSuccess);
      EXPECT_EQ(buf.download(), std::vector<float>(3, 5.0f));
    } else {
      ncclUniqueId id{};
      if (rank == 2) {
        ASSERT_EQ(ncclGetUniqueId(&id), ncclSuccess);
        MPI_Send(&id, sizeof id, MPI_BYTE, 0, kIdTag, MPI_COMM_WORLD);
      } else {
        MPI_Recv(&id, sizeof id, MPI_BYTE, 2, kIdTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      }
      const int nccl_rank = rank == 2 ? 0 : 1;
      ASSERT_EQ(ncclCommInitRank(&comm, 2, id, nccl_rank), ncclSuccess);
      int count = 0, r = -1;
      ASSERT_EQ(ncclCommCount(comm, &count), ncclSuccess);
      ASSERT_EQ(ncclCommUserRank(comm, &r), ncclSuccess);
      EXPECT_EQ(count, 2);
      EXPECT_EQ(r, nccl_rank);
      DeviceBuffer<int32_t> buf(std::vector<int32_t>(4, rank));
      ASSERT_EQ(ncclAllReduce(buf.get(), buf.get(), 4, ncclInt32, ncclSum, comm, nullptr), ncclSuccess);
      EXPECT_EQ(buf.download(), std::vector<int32_t>(4, 2));
      // nccl rank 0 is world rank 2: its value is what everyone receives.
      DeviceBuffer<int32_t> b(std::vector<int32_t>(2, rank * 10));
      ASSERT_EQ(ncclBroadcast(b.get(), b.get(), 2, ncclInt32, 0, comm, nullptr), ncclSuccess);
      EXPECT_EQ(b.download(), std::vector<int32_t>(2, 20));
    }
    ASSERT_EQ(ncclCommDestroy(comm), ncclSuccess);

    // X = {0, 1} made by 0, Y = {1, 2} made by 2; rank 1 builds Y, then X.
    ncclUniqueId x{}, y{};
    ncclComm_t cx = nullptr, cy = nullptr;
    if (rank == 0) {
      ASSERT_EQ(ncclGetUniqueId(&x), ncclSuccess);
      MPI_Send(&x, sizeof x, MPI_BYTE, 1, kIdTag, MPI_COMM_WORLD);
      ASSERT_EQ(ncclCommInitRank(&cx, 2, x, 0), ncclSuccess);
    } else if (rank == 2) {
      ASSERT_EQ(ncclGetUniqueId(&y), ncclSuccess);
      MPI_Send(&y, sizeof y, MPI_BYTE, 1, kIdTag, MPI_COMM_WORLD);
      ASSERT_EQ(ncclCommInitRank(&cy, 2, y, 1), ncclSuccess);
    } else {
      MPI_Recv(&x, sizeof x, MPI_BYTE, 0, kIdTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      MPI_Recv(&y, sizeof y, MPI_BYTE, 2, kIdTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      ASSERT_EQ(ncclCommInitRank(&cy, 2, y, 0), ncclSuccess);
      ASSERT_EQ(ncclCommInitRank(&cx, 2, x, 1), ncclSuccess);
    }
    for (ncclComm_t c : {cx, cy}) {
      if (c == nullptr) continue;
      DeviceBuffer<int32_t> buf(std::vector<int32_t>(1, 1 << rank));
      ASSERT_EQ(ncclAllReduce(buf.get(), buf.get(), 1, ncclInt32, ncclSum, c, nullptr), ncclSuccess);
      EXPECT_EQ(buf.download()[0], c == cx ? 0b011 : 0b110);
      ASSERT_EQ(ncclCommDestroy(c), ncclSuccess);
    }
  }

  // The world, ranked backwards, the id made by world rank 1 (a middle nccl
  // rank on 3 processes, the first on 2).
  const int maker = n > 1 ? 1 : 0;
  ncclUniqueId id{};
  if (rank == maker) {
    ASSERT_EQ(ncclGetUniqueId(&id), ncclSuccess);
  }
  MPI_Bcast(&id, sizeof id, MPI_BYTE, maker, MPI_COMM_WORLD);
  ncclComm_t reversed = nullptr;
  ASSERT_EQ(ncclCommInitRank(&reversed, n, id, n - 1 - rank), ncclSuccess);
  DeviceBuffer<int32_t> mine(std::vector<int32_t>(1, rank)), all(static_cast<size_t>(n));
  ASSERT_EQ(ncclAllGather(mine.get(), all.get(), 1, ncclInt32, reversed, nullptr), ncclSuccess);
  std::vector<int32_t> backwards(static_cast<size_t>(n));
  for (int r = 0; r < n; ++r) backwards[static_cast<size_t>(r)] = n - 1 - r;
  EXPECT_EQ(all.download(), backwards);
  ASSERT_EQ(ncclCommDestroy(reversed), ncclSuccess);
}

// ---- what the emulator rejects -------------------------------------------------
// Every check happens before any communication, so each rank sees the same
// error and nobody is left waiting.

bool last_error_mentions(const char* text) {
  return std::string(ncclGetLastError(nullptr)).find(text) != std::string::npos;
}

TEST_F(Nccl, RejectsAGarbageIdAndBadRanks) {
  ncclUniqueId garbage;
  std::memset(&garbage, 0x5a, sizeof garbage);
  ncclComm_t comm = reinterpret_cast<ncclComm_t>(&garbage);  // must be cleared on failure
  EXPECT_EQ(ncclCommInitRank(&comm, n, garbage, rank), ncclInvalidArgument);
  EXPECT_EQ(comm, nullptr);
  EXPECT_TRUE(last_error_mentions("unique id")) << ncclGetLastError(nullptr);

  ncclUniqueId id{};
  ASSERT_EQ(ncclGetUniqueId(&id), ncclSuccess);
  EXPECT_EQ(ncclCommInitRank(&comm, 0, id, 0), ncclInvalidArgument);
  EXPECT_EQ(ncclCommInitRank(&comm, n, id, n), ncclInvalidArgument);
  EXPECT_EQ(ncclCommInitRank(&comm, n, id, -1), ncclInvalidArgument);
  EXPECT_EQ(ncclCommInitRank(&comm, n + 1, id, 0), ncclInvalidArgument);
}

TEST_F(Nccl, RejectsHostPointers) {
  std::vector<float> host(8, 1.0f);
  DeviceBuffer<float> dev(8);
  EXPECT_EQ(ncclAllReduce(host.data(), dev.get(), 8, ncclFloat32, ncclSum, g_world, nullptr), ncclInvalidArgument);
  EXPECT_TRUE(last_error_mentions("sendbuff")) << ncclGetLastError(nullptr);
  EXPECT_TRUE(last_error_mentions("not emulated device memory")) << ncclGetLastError(nullptr);
  EXPECT_EQ(ncclAllReduce(host.data(), host.data(), 8, ncclFloat32, ncclSum, g_world, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclBroadcast(host.data(), host.data(), 8, ncclFloat32, 0, g_world, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclSend(host.data(), 8, ncclFloat32, (rank + 1) % n, g_world, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclRecv(host.data(), 8, ncclFloat32, (rank + 1) % n, g_world, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclAllGather(dev.get(), host.data(), 1, ncclFloat32, g_world, nullptr), ncclInvalidArgument);
}

TEST_F(Nccl, RejectsBuffersTooSmallOnAnotherDeviceOrOverlapping) {
  const size_t un = static_cast<size_t>(n);
  DeviceBuffer<float> four(4), big(4 * un + 4);
  // Past the end of the allocation.
  EXPECT_EQ(ncclAllReduce(four.get(), four.get(), 5, ncclFloat32, ncclSum, g_world, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclAllReduce(four.get() + 1, four.get() + 1, 4, ncclFloat32, ncclSum, g_world, nullptr),
            ncclInvalidArgument);
  // reduce-scatter reads recvcount * n elements, all-gather writes as many.
  if (n >= 2) {
    EXPECT_EQ(ncclReduceScatter(four.get(), big.get(), 4, ncclFloat32, ncclSum, g_world, nullptr),
              ncclInvalidArgument);
    EXPECT_EQ(ncclAllGather(big.get(), four.get(), 4, ncclFloat32, g_world, nullptr), ncclInvalidArgument);
  }
  EXPECT_EQ(ncclSend(four.get(), 3, ncclFloat64, (rank + 1) % n, g_world, nullptr), ncclInvalidArgument);

  // Memory of device 1 for a communicator of device 0.
  ASSERT_EQ(cudaSetDevice(1), cudaSuccess);
  {
    DeviceBuffer<float> other(4);
    ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
    EXPECT_EQ(ncclAllReduce(four.get(), other.get(), 4, ncclFloat32, ncclSum, g_world, nullptr), ncclInvalidArgument);
    EXPECT_TRUE(last_error_mentions("on device 1")) << ncclGetLastError(nullptr);
    ASSERT_EQ(cudaSetDevice(1), cudaSuccess);
  }
  // A stream of device 1 (while device 0 is current): NCCL's launch fails.
  {
    cudaStream_t other_stream = nullptr;
    ASSERT_EQ(cudaStreamCreate(&other_stream), cudaSuccess);
    ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
    EXPECT_EQ(ncclAllReduce(four.get(), four.get(), 4, ncclFloat32, ncclSum, g_world, other_stream),
              ncclUnhandledCudaError);
    cudaGetLastError();  // the failed launch is CUDA's last error too
    ASSERT_EQ(cudaSetDevice(1), cudaSuccess);
    ASSERT_EQ(cudaStreamDestroy(other_stream), cudaSuccess);
  }
  // The current device is not the communicator's.
  EXPECT_EQ(ncclAllReduce(four.get(), four.get(), 4, ncclFloat32, ncclSum, g_world, nullptr), ncclInvalidUsage);
  EXPECT_TRUE(last_error_mentions("current device")) << ncclGetLastError(nullptr);
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);

  // Out of place, but the buffers overlap.
  EXPECT_EQ(ncclAllReduce(big.get(), big.get() + 2, 4, ncclFloat32, ncclSum, g_world, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclAllGather(big.get() + 1, big.get(), 2, ncclFloat32, g_world, nullptr), ncclInvalidArgument);
}

TEST_F(Nccl, RejectsBadRootsPeersTypesOperatorsAndHandles) {
  DeviceBuffer<float> buf(4);
  EXPECT_EQ(ncclBroadcast(buf.get(), buf.get(), 4, ncclFloat32, n, g_world, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclBroadcast(buf.get(), buf.get(), 4, ncclFloat32, -1, g_world, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclSend(buf.get(), 4, ncclFloat32, n, g_world, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclRecv(buf.get(), 4, ncclFloat32, -1, g_world, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclAllReduce(buf.get(), buf.get(), 4, static_cast<ncclDataType_t>(42), ncclSum, g_world, nullptr),
            ncclInvalidArgument);
  EXPECT_EQ(ncclAllReduce(buf.get(), buf.get(), 4, ncclFloat32, static_cast<ncclRedOp_t>(9), g_world, nullptr),
            ncclInvalidArgument);
  EXPECT_EQ(ncclAllReduce(buf.get(), buf.get(), 4, ncclFloat32, ncclSum, nullptr, nullptr), ncclInvalidArgument);
  int count = 0;
  EXPECT_EQ(ncclCommCount(reinterpret_cast<ncclComm_t>(&count), &count), ncclInvalidArgument);
  EXPECT_EQ(ncclCommDestroy(nullptr), ncclSuccess);

  // A destroyed communicator is no longer accepted.
  ncclUniqueId id{};
  ASSERT_EQ(ncclGetUniqueId(&id), ncclSuccess);
  ncclComm_t solo = nullptr;
  ASSERT_EQ(ncclCommInitRank(&solo, 1, id, 0), ncclSuccess);
  ASSERT_EQ(ncclCommDestroy(solo), ncclSuccess);
  EXPECT_EQ(ncclCommCount(solo, &count), ncclInvalidArgument);
}

// An operation rejected inside a group fails there, and the group end
// reports it and runs nothing of the group (on every rank alike, so no peer
// waits for the accepted operations).
TEST_F(Nccl, ARejectedOperationFailsItsGroup) {
  std::vector<float> host(4);
  DeviceBuffer<float> buf(std::vector<float>(4, 1.0f));
  ASSERT_EQ(ncclGroupStart(), ncclSuccess);
  EXPECT_EQ(ncclAllReduce(buf.get(), buf.get(), 4, ncclFloat32, ncclSum, g_world, nullptr), ncclSuccess);
  EXPECT_EQ(ncclAllReduce(host.data(), host.data(), 4, ncclFloat32, ncclSum, g_world, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclGroupEnd(), ncclInvalidArgument);
  EXPECT_EQ(buf.download(), std::vector<float>(4, 1.0f)) << "the accepted all-reduce must not have run";

  EXPECT_EQ(ncclGroupEnd(), ncclInvalidUsage) << "no group is open any more";
  // The next operation runs normally.
  ASSERT_EQ(ncclAllReduce(buf.get(), buf.get(), 4, ncclFloat32, ncclSum, g_world, nullptr), ncclSuccess);
  EXPECT_EQ(buf.download(), std::vector<float>(4, static_cast<float>(n)));
}

// NCCL needs the receive count to equal the send count; MPI would accept a
// shorter message silently.
TEST_F(Nccl, ReportsASendShorterThanItsRecv) {
  if (n < 2) GTEST_SKIP() << "needs two processes";
  DeviceBuffer<int32_t> buf(std::vector<int32_t>(5, 3));
  if (rank == 0) {
    EXPECT_EQ(ncclSend(buf.get(), 3, ncclInt32, 1, g_world, nullptr), ncclSuccess);
  } else if (rank == 1) {
    EXPECT_EQ(ncclRecv(buf.get(), 5, ncclInt32, 0, g_world, nullptr), ncclRemoteError);
    EXPECT_TRUE(last_error_mentions("counts must match")) << ncclGetLastError(nullptr);
  }
}

TEST_F(Nccl, ErrorStringsNameTheCode) {
  EXPECT_STREQ(ncclGetErrorString(ncclSuccess), "no error");
  EXPECT_NE(std::string(ncclGetErrorString(ncclInvalidArgument)).find("invalid argument"), std::string::npos);
  EXPECT_NE(std::string(ncclGetErrorString(ncclInvalidUsage)).find("invalid usage"), std::string::npos);
  EXPECT_NE(std::string(ncclGetErrorString(ncclSystemError)).find("system error"), std::string::npos);
  EXPECT_NE(std::string(ncclGetErrorString(ncclRemoteError)).find("remote"), std::string::npos);
  EXPECT_STREQ(ncclGetErrorString(static_cast<ncclResult_t>(99)), "unknown result code");
}

// Only world rank 0 prints gtest's usual report; the others print their
// failures, prefixed with their rank, so nothing is lost.
class RankFailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit RankFailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (!result.failed()) return;
    std::fprintf(stderr, "[world rank %d] %s:%d: failure\n%s\n", rank_,
                 result.file_name() != nullptr ? result.file_name() : "?", result.line_number(), result.message());
  }

 private:
  int rank_;
};

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  const int rank = world_rank();
  if (rank != 0) {
    ::testing::TestEventListeners& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new RankFailurePrinter(rank));
  }
  require(cudaSetDevice(0) == cudaSuccess, "cudaSetDevice");
  g_world = make_comm(MPI_COMM_WORLD);
  int result = RUN_ALL_TESTS();
  require(ncclCommDestroy(g_world) == ncclSuccess, "ncclCommDestroy");
  // The job fails when any rank failed.
  int worst = 0;
  MPI_Allreduce(&result, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  return worst;
}
