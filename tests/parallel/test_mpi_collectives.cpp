// The MPI communicator's collectives against locally computed references,
// bit for bit, with their byte counters against comm_volume.h. Runs on any
// number of ranks (ctest runs it on 1, 2, 3 and 4).
#include <gtest/gtest.h>

#include "core/error.h"
#include "mpi_test_util.h"
#include "parallel/comm_volume.h"

namespace rwkv::parallel {
namespace {

using namespace rwkv::parallel::test;

// Sizes that do not divide by 2, 3 or 4, an empty one and a single element.
const std::vector<int64_t> kSizes = {0, 1, 7, 130, 4099};

template <typename T>
void check_all_reduce(MpiCommunicator& comm, uint64_t seed) {
  const int n = comm.size(), r = comm.rank();
  for (int64_t numel : kSizes) {
    Tensor x = rank_tensor<T>(r, seed, {numel});
    comm.reset_stats();
    comm.all_reduce_sum(x);
    EXPECT_TRUE(bitwise_equal(x.to_vector<T>(), rank_order_sum<T>(n, seed, numel))) << "numel " << numel;
    EXPECT_EQ(comm.stats().sent(CommOp::AllReduce), all_reduce_bytes_sent(numel, sizeof(T), n, r));
    EXPECT_EQ(comm.stats().count(CommOp::AllReduce), 1u);
  }
}

TEST(MpiCollectives, AllReduceSumIsTheRankOrderSumF32) {
  WorldComm w;
  check_all_reduce<float>(w.comm, 1);
}

TEST(MpiCollectives, AllReduceSumIsTheRankOrderSumF64) {
  WorldComm w;
  check_all_reduce<double>(w.comm, 2);
}

TEST(MpiCollectives, AllReduceWithMessagesSplitIntoPieces) {
  WorldComm w;
  MessageLimit limit(12);  // 3 floats: chunks travel as several messages of odd sizes
  check_all_reduce<float>(w.comm, 3);
  check_all_reduce<double>(w.comm, 4);
}

template <typename T>
void check_reduce_scatter(MpiCommunicator& comm, uint64_t seed) {
  const int n = comm.size(), r = comm.rank();
  for (int64_t m : {0, 1, 5, 333}) {
    Tensor in = rank_tensor<T>(r, seed, {n, m});
    Tensor out = Tensor::zeros({m}, DTypeOf<T>::value);
    comm.reset_stats();
    comm.reduce_scatter_sum(in, out);
    EXPECT_TRUE(bitwise_equal(out.to_vector<T>(), rank_order_sum<T>(n, seed, m, int64_t{r} * m))) << "m " << m;
    EXPECT_EQ(comm.stats().sent(CommOp::ReduceScatter), reduce_scatter_bytes_sent(m, sizeof(T), n));
    EXPECT_EQ(comm.stats().received(CommOp::ReduceScatter), uint64_t(n - 1) * m * sizeof(T));
    // In place: out is this rank's chunk of in.
    Tensor again = rank_tensor<T>(r, seed, {int64_t{n} * m});
    Tensor own = again.slice_rows(int64_t{r} * m, m);
    comm.reduce_scatter_sum(again, own);
    EXPECT_TRUE(bitwise_equal(own.to_vector<T>(), out.to_vector<T>()));
  }
}

TEST(MpiCollectives, ReduceScatterSumF32AndF64) {
  WorldComm w;
  check_reduce_scatter<float>(w.comm, 5);
  check_reduce_scatter<double>(w.comm, 6);
  MessageLimit limit(20);
  check_reduce_scatter<float>(w.comm, 7);
}

// bf16 sums (the bf16 gradient wire): each element's contributions added in
// f32 in rank order and rounded to bf16 once. Inputs are bf16(value_at).
bf16 rounded_value(int rank, uint64_t seed, int64_t i) { return float_to_bf16(static_cast<float>(value_at(rank, seed, i))); }

Tensor bf16_rank_tensor(int rank, uint64_t seed, int64_t numel, int64_t offset = 0) {
  Tensor t = Tensor::empty({numel}, DType::BF16);
  for (int64_t i = 0; i < numel; ++i) t.data<bf16>()[i] = rounded_value(rank, seed, offset + i);
  return t;
}

std::vector<uint16_t> bf16_rank_order_sum(int ranks, uint64_t seed, int64_t numel, int64_t offset = 0) {
  std::vector<uint16_t> out(static_cast<size_t>(numel));
  for (int64_t i = 0; i < numel; ++i) {
    float acc = bf16_to_float(rounded_value(0, seed, offset + i));
    for (int q = 1; q < ranks; ++q) acc += bf16_to_float(rounded_value(q, seed, offset + i));
    out[static_cast<size_t>(i)] = float_to_bf16(acc).bits;
  }
  return out;
}

std::vector<uint16_t> bf16_bits(const Tensor& t) {
  std::vector<uint16_t> out(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) out[static_cast<size_t>(i)] = t.data<bf16>()[i].bits;
  return out;
}

TEST(MpiCollectives, Bf16SumsAddInF32InRankOrderAndRoundOnce) {
  WorldComm w;
  MpiCommunicator& comm = w.comm;
  const int n = comm.size(), r = comm.rank();
  for (int64_t numel : kSizes) {
    Tensor x = bf16_rank_tensor(r, 21, numel);
    comm.reset_stats();
    comm.all_reduce_sum(x);
    const std::vector<uint16_t> want = bf16_rank_order_sum(n, 21, numel);
    EXPECT_EQ(bf16_bits(x), want) << "numel " << numel;
    EXPECT_EQ(comm.stats().sent(CommOp::AllReduce), all_reduce_bytes_sent(numel, 2, n, r));
  }
  // Rounding once differs from rounding after every addition somewhere (so
  // the test above pins the rule down), once there is more than one addition.
  if (n >= 3) {
    int differ = 0;
    for (int64_t i = 0; i < 4099; ++i) {
      bf16 acc = rounded_value(0, 21, i);
      for (int q = 1; q < n; ++q) acc = float_to_bf16(bf16_to_float(acc) + bf16_to_float(rounded_value(q, 21, i)));
      differ += acc.bits != bf16_rank_order_sum(n, 21, 1, i)[0] ? 1 : 0;
    }
    EXPECT_GT(differ, 0);
  }
  // Reduce-scatter, out of place and in place, and with split messages: the same bits.
  MessageLimit limit(6);  // 3 bf16 elements a message
  for (int64_t m : {0, 1, 5, 333}) {
    Tensor in = bf16_rank_tensor(r, 22, int64_t{n} * m);
    Tensor out = Tensor::zeros({m}, DType::BF16);
    comm.reset_stats();
    comm.reduce_scatter_sum(in, out);
    EXPECT_EQ(bf16_bits(out), bf16_rank_order_sum(n, 22, m, int64_t{r} * m)) << "m " << m;
    EXPECT_EQ(comm.stats().sent(CommOp::ReduceScatter), reduce_scatter_bytes_sent(m, 2, n));
    Tensor again = bf16_rank_tensor(r, 22, int64_t{n} * m);
    Tensor own_again = again.slice_rows(int64_t{r} * m, m);
    comm.reduce_scatter_sum(again, own_again);
    EXPECT_EQ(bf16_bits(own_again), bf16_bits(out)) << "in place, m " << m;
  }
}

TEST(MpiCollectives, AllGatherAnyDtypeAndInPlace) {
  WorldComm w;
  MpiCommunicator& comm = w.comm;
  const int n = comm.size(), r = comm.rank();
  for (int64_t m : {0, 1, 9, 250}) {
    Tensor in = rank_tensor<double>(r, 8, {m});
    Tensor out = Tensor::empty({n, m}, DType::F64);
    comm.reset_stats();
    comm.all_gather(in, out);
    std::vector<double> expected;
    for (int q = 0; q < n; ++q) {
      auto part = rank_tensor<double>(q, 8, {m}).to_vector<double>();
      expected.insert(expected.end(), part.begin(), part.end());
    }
    EXPECT_TRUE(bitwise_equal(out.to_vector<double>(), expected));
    EXPECT_EQ(comm.stats().sent(CommOp::AllGather), all_gather_bytes_sent(m, 8, n));
    // In place: the input is this rank's chunk of the output.
    Tensor buf = Tensor::zeros({int64_t{n} * m}, DType::F64);
    Tensor mine = buf.slice_rows(int64_t{r} * m, m);
    mine.copy_from(in);
    comm.all_gather(mine, buf);
    EXPECT_TRUE(bitwise_equal(buf.to_vector<double>(), expected));
  }
  // Integers travel as bytes (token ids, ranks).
  Tensor id = Tensor::from_vector<int32_t>({r * 10, r * 10 + 1}, {2});
  Tensor ids = Tensor::empty({n, 2}, DType::I32);
  MessageLimit limit(3);  // splits an element: pieces are bytes, not elements
  comm.all_gather(id, ids);
  for (int q = 0; q < n; ++q) {
    EXPECT_EQ(ids.to_vector<int32_t>()[static_cast<size_t>(2 * q)], q * 10);
    EXPECT_EQ(ids.to_vector<int32_t>()[static_cast<size_t>(2 * q + 1)], q * 10 + 1);
  }
}

TEST(MpiCollectives, BroadcastFromEveryRoot) {
  WorldComm w;
  MpiCommunicator& comm = w.comm;
  const int n = comm.size(), r = comm.rank();
  for (int root = 0; root < n; ++root) {
    Tensor x = rank_tensor<float>(r, 9, {3, 37});
    comm.reset_stats();
    comm.broadcast(x, root);
    EXPECT_TRUE(bitwise_equal(x.to_vector<float>(), rank_tensor<float>(root, 9, {3, 37}).to_vector<float>()));
    EXPECT_EQ(comm.stats().sent(CommOp::Broadcast), broadcast_bytes_sent(111, 4, n, r, root));
    EXPECT_EQ(comm.stats().received(CommOp::Broadcast), r == root ? 0u : 444u);
  }
}

TEST(MpiCollectives, SendRecvAroundTheRing) {
  WorldComm w;
  MpiCommunicator& comm = w.comm;
  const int n = comm.size(), r = comm.rank();
  if (n == 1) GTEST_SKIP() << "needs two ranks";
  const int next = (r + 1) % n, prev = (r + n - 1) % n;
  // send_recv: everyone sends to the next rank at once without deadlock.
  Tensor out = rank_tensor<float>(r, 10, {2, 50});
  Tensor in = Tensor::zeros({2, 50}, DType::F32);
  comm.reset_stats();
  comm.send_recv(out, next, in, prev, /*tag=*/3);
  EXPECT_TRUE(bitwise_equal(in.to_vector<float>(), rank_tensor<float>(prev, 10, {2, 50}).to_vector<float>()));
  EXPECT_EQ(comm.stats().sent(CommOp::SendRecv), 400u);
  EXPECT_EQ(comm.stats().received(CommOp::SendRecv), 400u);
  // Blocking send/recv down a pipeline 0 -> 1 -> ... -> n-1, two tags in
  // opposite order to show that tags keep messages apart; f64, split messages.
  MessageLimit limit(40);
  Tensor a = Tensor::zeros({11}, DType::F64), b = Tensor::zeros({11}, DType::F64);
  if (r > 0) {
    comm.recv(b, r - 1, /*tag=*/2);
    comm.recv(a, r - 1, /*tag=*/1);
  } else {
    a = rank_tensor<double>(0, 11, {11});
    b = rank_tensor<double>(0, 12, {11});
  }
  if (r < n - 1) {
    comm.send(a, r + 1, 1);
    comm.send(b, r + 1, 2);
  }
  EXPECT_TRUE(bitwise_equal(a.to_vector<double>(), rank_tensor<double>(0, 11, {11}).to_vector<double>()));
  EXPECT_TRUE(bitwise_equal(b.to_vector<double>(), rank_tensor<double>(0, 12, {11}).to_vector<double>()));
}

TEST(MpiCollectives, ResultsAreBitIdenticalOnEveryRankAndRunToRun) {
  WorldComm w;
  MpiCommunicator& comm = w.comm;
  Tensor x = rank_tensor<float>(comm.rank(), 13, {1001});
  Tensor y = x.clone();
  comm.all_reduce_sum(x);
  comm.all_reduce_sum(y);
  EXPECT_EQ(hash_bytes(x), hash_bytes(y));
  EXPECT_TRUE(same_on_all_ranks(hash_bytes(x)));
  // all_reduce == reduce_scatter + all_gather on any chunking: the per-element
  // sum order does not depend on who owns the element.
  const int n = comm.size();
  const int64_t m = 1001 / n + 1;
  Tensor padded = Tensor::zeros({int64_t{n} * m}, DType::F32);
  padded.slice_rows(0, 1001).copy_from(rank_tensor<float>(comm.rank(), 13, {1001}));
  Tensor shard = Tensor::empty({m}, DType::F32), gathered = Tensor::empty({int64_t{n} * m}, DType::F32);
  comm.reduce_scatter_sum(padded, shard);
  comm.all_gather(shard, gathered);
  EXPECT_TRUE(bitwise_equal(gathered.slice_rows(0, 1001).to_vector<float>(), x.to_vector<float>()));
}

TEST(MpiCollectives, BadArgumentsThrowBeforeCommunicating) {
  WorldComm w;
  MpiCommunicator& comm = w.comm;
  const int n = comm.size();
  Tensor ints = Tensor::zeros({4}, DType::I32);
  try {
    comm.all_reduce_sum(ints);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("MPI sums f32, bf16 and f64 tensors"), std::string::npos) << e.what();
  }
  Tensor in = Tensor::zeros({int64_t{n} * 3 + 1}, DType::F32), out = Tensor::zeros({3}, DType::F32);
  try {
    comm.reduce_scatter_sum(in, out);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("reduce_scatter_sum on mpi world group"), std::string::npos) << e.what();
  }
  Tensor g_out = Tensor::zeros({int64_t{n} * 3}, DType::F64);
  EXPECT_THROW(comm.all_gather(out, g_out), Error);  // dtype mismatch
  EXPECT_THROW(comm.broadcast(out, n), Error);
  EXPECT_THROW(comm.send(out, comm.rank()), Error);
  EXPECT_THROW(comm.recv(out, -1), Error);
  Tensor undefined;
  EXPECT_THROW(comm.all_reduce_sum(undefined), Error);
  comm.barrier();  // everyone is still in step
  EXPECT_EQ(comm.stats().count(CommOp::Barrier), 1u);
}

}  // namespace
}  // namespace rwkv::parallel
