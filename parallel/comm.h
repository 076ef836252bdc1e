// A communicator: the collectives and point-to-point transfers of one process
// group (a tp, dp, pp group or the world), over tensors on one kind of device.
//
//   MpiCommunicator  (parallel/mpi_comm.h)   CPU tensors, our own algorithms over MPI point-to-point
//   NCCL             (parallel/nccl_comm.h)  CUDA tensors, NCCL collectives on a stream of its own
//
// Semantics, n = size(), r = rank():
//   all_reduce_sum(x)           x <- x_0 + x_1 + ... + x_{n-1}           (every rank)
//   reduce_scatter_sum(in, out) in has n * out.numel() elements, seen as n chunks;
//                               out <- sum over ranks of chunk r
//   all_gather(in, out)         out has n * in.numel() elements; chunk q <- rank q's in
//   broadcast(x, root)          x <- root's x
//   send / recv                 one tensor to / from a peer (blocking)
//   send_recv                   a send and a receive that cannot deadlock each other
//   barrier()                   returns once every rank has entered it
// Tensors are contiguous (all rwkv tensors are); shapes may differ from rank to
// rank as long as the element counts above hold. Every rank of the group must
// call the collectives in the same order (the MPI rule).
//
// Determinism: the MPI implementation sums every element in rank order,
// ((x_0 + x_1) + x_2) + ..., in the tensor's dtype, whatever the chunking, so
// results are bit-identical on every rank, from run to run, and equal between
// all_reduce_sum and reduce_scatter_sum + all_gather. See docs/parallel.md.
//
// Byte counters: each call adds the bytes this rank puts on the wire (and the
// bytes it receives) to stats(), per kind of operation, so tests and benches
// can compare a training step's traffic with the formulas of comm_volume.h.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "core/device.h"
#include "core/tensor.h"

namespace rwkv::parallel {

enum class CommOp : int { AllReduce = 0, ReduceScatter, AllGather, Broadcast, SendRecv, Barrier };
inline constexpr int kCommOpCount = 6;
const char* comm_op_name(CommOp op);  // "all_reduce", "reduce_scatter", ...

struct CommStats {
  std::array<uint64_t, kCommOpCount> bytes_sent{};
  std::array<uint64_t, kCommOpCount> bytes_received{};
  std::array<uint64_t, kCommOpCount> calls{};

  uint64_t sent(CommOp op) const { return bytes_sent[static_cast<int>(op)]; }
  uint64_t received(CommOp op) const { return bytes_received[static_cast<int>(op)]; }
  uint64_t count(CommOp op) const { return calls[static_cast<int>(op)]; }
  uint64_t total_sent() const;
  uint64_t total_received() const;
  void add(CommOp op, uint64_t sent_bytes, uint64_t received_bytes);
  // "all_reduce: 3 calls, 1.50 MiB sent; reduce_scatter: ..." (ops with calls only)
  std::string str() const;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  Communicator() = default;
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  virtual int size() const = 0;
  virtual int rank() const = 0;
  // Where its tensors must live: the CPU for MPI, this rank's GPU for NCCL.
  virtual Device device() const = 0;
  // For messages: e.g. "mpi dp group (rank 1 of 2)".
  virtual std::string name() const = 0;

  // The operations check their arguments (defined, on device(), element counts,
  // dtypes the implementation supports) and throw rwkv::Error naming the
  // operation, the group and the tensor before anything is sent.
  void all_reduce_sum(Tensor& x);
  void reduce_scatter_sum(const Tensor& in, Tensor& out);
  void all_gather(const Tensor& in, Tensor& out);
  void broadcast(Tensor& x, int root);
  void send(const Tensor& x, int peer, int tag = 0);
  void recv(Tensor& x, int peer, int tag = 0);
  void send_recv(const Tensor& to_send, int dst, Tensor& to_recv, int src, int tag = 0);
  void barrier();

  // Operations the caller may overlap with its own work. Each returns a
  // ticket: the compute stream waits for that operation (and every one this
  // communicator started before it: the communication stream runs in order)
  // only at wait_for(ticket); wait_started() covers every one started so far.
  // Until then the operation's tensors stay untouched (out unread). MPI
  // completes each before returning (its calls block; every ticket is 0, a
  // complete operation); NCCL enqueues it on its stream and lets the compute
  // stream run ahead.
  //
  //   all_reduce_sum_start      plain DP's gradient buckets during backward
  //   reduce_scatter_sum_start  ZeRO-1's gradient shards during backward
  //   all_gather_start          ZeRO-1's parameter gather during the next forward
  //
  // Tickets are consecutive per communicator; a bf16 gradient wire
  // (data_parallel.h) waits for one bucket's ticket before reusing its slot.
  using Ticket = uint64_t;
  Ticket all_reduce_sum_start(Tensor& x);
  Ticket reduce_scatter_sum_start(const Tensor& in, Tensor& out);
  Ticket all_gather_start(const Tensor& in, Tensor& out);
  void wait_for(Ticket ticket) { do_wait_for(ticket); }
  void wait_started() { do_wait_started(); }

  // Waits until the operations issued so far are complete. A no-op for MPI (its
  // calls return complete); NCCL operations are asynchronous on their stream.
  virtual void synchronize() {}

  const CommStats& stats() const { return stats_; }
  void reset_stats() { stats_ = CommStats{}; }

 protected:
  // Element types the sum reductions accept (the others move bytes only).
  virtual bool supports_sum(DType dtype) const = 0;

  virtual void do_all_reduce_sum(Tensor& x) = 0;
  // The *_start operations default to the blocking ones (complete: ticket 0).
  virtual Ticket do_all_reduce_sum_start(Tensor& x) {
    do_all_reduce_sum(x);
    return 0;
  }
  virtual Ticket do_reduce_scatter_sum_start(const Tensor& in, Tensor& out) {
    do_reduce_scatter_sum(in, out);
    return 0;
  }
  virtual Ticket do_all_gather_start(const Tensor& in, Tensor& out) {
    do_all_gather(in, out);
    return 0;
  }
  virtual void do_wait_started() {}
  virtual void do_wait_for(Ticket) {}
  virtual void do_reduce_scatter_sum(const Tensor& in, Tensor& out) = 0;
  virtual void do_all_gather(const Tensor& in, Tensor& out) = 0;
  virtual void do_broadcast(Tensor& x, int root) = 0;
  virtual void do_send(const Tensor& x, int peer, int tag) = 0;
  virtual void do_recv(Tensor& x, int peer, int tag) = 0;
  virtual void do_send_recv(const Tensor& to_send, int dst, Tensor& to_recv, int src, int tag) = 0;
  virtual void do_barrier() = 0;

  CommStats stats_;

 private:
  void check_tensor(const char* op, const char* what, const Tensor& t) const;
  void check_sum_dtype(const char* op, const Tensor& t) const;
  void check_peer(const char* op, const char* what, int peer) const;
  void check_reduce_scatter(const char* op, const Tensor& in, const Tensor& out) const;
  void check_all_gather(const char* op, const Tensor& in, const Tensor& out) const;
};

}  // namespace rwkv::parallel
