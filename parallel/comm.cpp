#include "parallel/comm.h"

#include <cstdio>

namespace rwkv::parallel {

const char* comm_op_name(CommOp op) {
  switch (op) {
    case CommOp::AllReduce: return "all_reduce";
    case CommOp::ReduceScatter: return "reduce_scatter";
    case CommOp::AllGather: return "all_gather";
    case CommOp::Broadcast: return "broadcast";
    case CommOp::SendRecv: return "send_recv";
    case CommOp::Barrier: return "barrier";
  }
  return "?";
}

uint64_t CommStats::total_sent() const {
  uint64_t total = 0;
  for (uint64_t b : bytes_sent) total += b;
  return total;
}

uint64_t CommStats::total_received() const {
  uint64_t total = 0;
  for (uint64_t b : bytes_received) total += b;
  return total;
}

void CommStats::add(CommOp op, uint64_t sent_bytes, uint64_t received_bytes) {
  const int i = static_cast<int>(op);
  bytes_sent[i] += sent_bytes;
  bytes_received[i] += received_bytes;
  calls[i] += 1;
}

std::string CommStats::str() const {
  std::string out;
  for (int i = 0; i < kCommOpCount; ++i) {
    if (calls[i] == 0) continue;
    char buf[160];
    std::snprintf(buf, sizeof buf, "%s%s: %llu calls, %llu bytes sent, %llu received", out.empty() ? "" : "; ",
                  comm_op_name(static_cast<CommOp>(i)), static_cast<unsigned long long>(calls[i]),
                  static_cast<unsigned long long>(bytes_sent[i]), static_cast<unsigned long long>(bytes_received[i]));
    out += buf;
  }
  return out.empty() ? "no communication" : out;
}

// ---- argument checks shared by every implementation -----------------------

void Communicator::check_tensor(const char* op, const char* what, const Tensor& t) const {
  RWKV_CHECK(t.defined(), op, " on ", name(), ": ", what, " is an undefined tensor");
  RWKV_CHECK(t.device() == device(), op, " on ", name(), ": ", what, " ", t.str(), " is on ", t.device().str(),
             ", but this communicator works on ", device().str(), "\n  ---> HINT: ",
             device().is_cpu() ? "the MPI communicator takes CPU tensors; GPU tensors go through NCCL"
                               : "copy the tensor to this rank's GPU first");
}

void Communicator::check_sum_dtype(const char* op, const Tensor& t) const {
  RWKV_CHECK(
      supports_sum(t.dtype()), op, " on ", name(), ": cannot sum ", t.str(), " (dtype ", dtype_name(t.dtype()),
      ")\n  ---> HINT: ", device().is_cpu() ? "MPI sums f32, bf16 and f64 tensors" : "NCCL sums f32, bf16 and f64 tensors");
}

void Communicator::check_peer(const char* op, const char* what, int peer) const {
  RWKV_CHECK(peer >= 0 && peer < size(), op, " on ", name(), ": ", what, " ", peer, " is outside the group [0, ",
             size(), ")");
  RWKV_CHECK(peer != rank(), op, " on ", name(), ": ", what, " ", peer,
             " is this rank itself; a rank does not message itself");
}

void Communicator::all_reduce_sum(Tensor& x) {
  const char* op = "all_reduce_sum";
  check_tensor(op, "x", x);
  check_sum_dtype(op, x);
  do_all_reduce_sum(x);
}

Communicator::Ticket Communicator::all_reduce_sum_start(Tensor& x) {
  const char* op = "all_reduce_sum_start";
  check_tensor(op, "x", x);
  check_sum_dtype(op, x);
  return do_all_reduce_sum_start(x);
}

void Communicator::reduce_scatter_sum(const Tensor& in, Tensor& out) {
  check_reduce_scatter("reduce_scatter_sum", in, out);
  do_reduce_scatter_sum(in, out);
}

Communicator::Ticket Communicator::reduce_scatter_sum_start(const Tensor& in, Tensor& out) {
  check_reduce_scatter("reduce_scatter_sum_start", in, out);
  return do_reduce_scatter_sum_start(in, out);
}

void Communicator::check_reduce_scatter(const char* op, const Tensor& in, const Tensor& out) const {
  check_tensor(op, "in", in);
  check_tensor(op, "out", out);
  check_sum_dtype(op, in);
  RWKV_CHECK(in.dtype() == out.dtype(), op, " on ", name(), ": in ", in.str(), " and out ", out.str(),
             " have different dtypes");
  RWKV_CHECK(in.numel() == int64_t{size()} * out.numel(), op, " on ", name(), ": in ", in.str(), " has ", in.numel(),
             " elements, expected group size ", size(), " x out's ", out.numel(), " = ", int64_t{size()} * out.numel(),
             "\n  ---> HINT: pad the input to a multiple of the group size");
}

void Communicator::all_gather(const Tensor& in, Tensor& out) {
  check_all_gather("all_gather", in, out);
  do_all_gather(in, out);
}

Communicator::Ticket Communicator::all_gather_start(const Tensor& in, Tensor& out) {
  check_all_gather("all_gather_start", in, out);
  return do_all_gather_start(in, out);
}

void Communicator::check_all_gather(const char* op, const Tensor& in, const Tensor& out) const {
  check_tensor(op, "in", in);
  check_tensor(op, "out", out);
  RWKV_CHECK(in.dtype() == out.dtype(), op, " on ", name(), ": in ", in.str(), " and out ", out.str(),
             " have different dtypes");
  RWKV_CHECK(out.numel() == int64_t{size()} * in.numel(), op, " on ", name(), ": out ", out.str(), " has ", out.numel(),
             " elements, expected group size ", size(), " x in's ", in.numel(), " = ", int64_t{size()} * in.numel());
}

void Communicator::broadcast(Tensor& x, int root) {
  const char* op = "broadcast";
  check_tensor(op, "x", x);
  RWKV_CHECK(root >= 0 && root < size(), op, " on ", name(), ": root ", root, " is outside the group [0, ", size(),
             ")");
  do_broadcast(x, root);
}

void Communicator::send(const Tensor& x, int peer, int tag) {
  const char* op = "send";
  check_tensor(op, "x", x);
  check_peer(op, "destination", peer);
  RWKV_CHECK(tag >= 0, op, " on ", name(), ": tag ", tag, " is negative");
  do_send(x, peer, tag);
}

void Communicator::recv(Tensor& x, int peer, int tag) {
  const char* op = "recv";
  check_tensor(op, "x", x);
  check_peer(op, "source", peer);
  RWKV_CHECK(tag >= 0, op, " on ", name(), ": tag ", tag, " is negative");
  do_recv(x, peer, tag);
}

void Communicator::send_recv(const Tensor& to_send, int dst, Tensor& to_recv, int src, int tag) {
  const char* op = "send_recv";
  check_tensor(op, "to_send", to_send);
  check_tensor(op, "to_recv", to_recv);
  check_peer(op, "destination", dst);
  check_peer(op, "source", src);
  RWKV_CHECK(tag >= 0, op, " on ", name(), ": tag ", tag, " is negative");
  do_send_recv(to_send, dst, to_recv, src, tag);
}

void Communicator::barrier() { do_barrier(); }

}  // namespace rwkv::parallel
