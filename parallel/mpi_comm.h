// The MPI communicator: CPU tensors (f32, f64 and bf16 sums, bf16 added in
// f32 and rounded once; any dtype for the collectives that only move data), collectives written over MPI
// point-to-point so that their summation order is ours, not the MPI library's.
//
// Why not MPI_Allreduce: MPI leaves the order in which it adds floating-point
// contributions to the implementation (it may depend on the algorithm it picks
// for the message size, or on the arrival order), so neither bit-identical
// reruns nor identical results on every rank are guaranteed. Here every
// element is summed in rank order, x_0 + x_1 + ... + x_{n-1}, by the one rank
// that owns its chunk, and then copied to the others.
//
// Algorithms (pairwise exchange; n ranks, this rank r):
//   reduce_scatter  send chunk q of the input to rank q (q != r), receive
//                   chunk r from every rank, add the n contributions in rank order
//   all_gather      send the input to every rank, receive chunk q from rank q
//   all_reduce      the two above on the balanced chunking of comm_volume.h
//   broadcast       the root sends to every rank (linear)
// Each sends the same bytes as the ring algorithms (comm_volume.h), in one
// round of n - 1 concurrent messages instead of n - 1 sequential ring steps:
// fine for the group sizes of data/tensor parallelism on CPUs.
#pragma once

#include <mpi.h>

#include <string>
#include <vector>

#include "parallel/comm.h"

namespace rwkv::parallel {

class MpiCommunicator final : public Communicator {
 public:
  // Wraps comm (collective over it: duplicates it for the collectives' own
  // traffic). Takes ownership of comm when `owned` (MPI_Comm_free at the end).
  // label names the group in messages ("dp", "world", ...).
  MpiCommunicator(MPI_Comm comm, std::string label, bool owned);
  ~MpiCommunicator() override;

  int size() const override { return size_; }
  int rank() const override { return rank_; }
  Device device() const override { return Device::cpu(); }
  std::string name() const override;
  MPI_Comm handle() const { return comm_; }
  const std::string& label() const { return label_; }

  // MPI counts are ints, so buffers travel as messages of at most this many
  // bytes (1 GiB by default). Tests lower it to exercise the splitting.
  static void set_message_limit(size_t bytes);
  static size_t message_limit();

 protected:
  bool supports_sum(DType dtype) const override {
    return dtype == DType::F32 || dtype == DType::F64 || dtype == DType::BF16;
  }
  void do_all_reduce_sum(Tensor& x) override;
  void do_reduce_scatter_sum(const Tensor& in, Tensor& out) override;
  void do_all_gather(const Tensor& in, Tensor& out) override;
  void do_broadcast(Tensor& x, int root) override;
  void do_send(const Tensor& x, int peer, int tag) override;
  void do_recv(Tensor& x, int peer, int tag) override;
  void do_send_recv(const Tensor& to_send, int dst, Tensor& to_recv, int src, int tag) override;
  void do_barrier() override;

 private:
  // Sums the chunk this rank owns: own (len elements, this rank's contribution)
  // and received[q] for q != rank, in rank order, into out.
  void sum_in_rank_order(DType dtype, const char* own, const std::vector<const char*>& received, char* out,
                         int64_t len) const;

  MPI_Comm comm_ = MPI_COMM_NULL;         // the group's communicator: send / recv with user tags
  MPI_Comm collectives_ = MPI_COMM_NULL;  // a duplicate: collective traffic never meets user messages
  std::string label_;
  bool owned_ = false;
  int size_ = 1, rank_ = 0;
  std::vector<char> scratch_;  // received chunks of the reductions, reused between calls
};

}  // namespace rwkv::parallel
