// NCCL communicator (built with RWKV_HAVE_NCCL). Host code over the NCCL and
// CUDA runtime APIs; no kernels of its own.
#include "parallel/nccl_comm.h"

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <vector>

#include "kernels/cuda/cuda_common.h"
#include "parallel/comm_volume.h"
#include "parallel/mpi_runtime.h"

namespace rwkv::parallel {

namespace {

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(const MpiCommunicator& group, int cuda_device);
  ~NcclCommunicator() override;

  int size() const override { return size_; }
  int rank() const override { return rank_; }
  Device device() const override { return Device::cuda(device_); }
  std::string name() const override {
    return str_cat("nccl ", label_, " group (rank ", rank_, " of ", size_, ", cuda:", device_, ")");
  }
  void synchronize() override;

 protected:
  bool supports_sum(DType dtype) const override {
    return dtype == DType::F32 || dtype == DType::BF16 || dtype == DType::F64;
  }
  void do_all_reduce_sum(Tensor& x) override;
  Ticket do_all_reduce_sum_start(Tensor& x) override;
  void do_wait_started() override;
  void do_reduce_scatter_sum(const Tensor& in, Tensor& out) override;
  Ticket do_reduce_scatter_sum_start(const Tensor& in, Tensor& out) override;
  void do_all_gather(const Tensor& in, Tensor& out) override;
  Ticket do_all_gather_start(const Tensor& in, Tensor& out) override;
  void do_wait_for(Ticket ticket) override;
  void do_broadcast(Tensor& x, int root) override;
  void do_send(const Tensor& x, int peer, int tag) override;
  void do_recv(Tensor& x, int peer, int tag) override;
  void do_send_recv(const Tensor& to_send, int dst, Tensor& to_recv, int src, int tag) override;
  void do_barrier() override;

 private:
  void check(ncclResult_t result, const char* what) const;
  void release() noexcept;
  // Orders this communicator's stream after the compute stream's work so far
  // (begin) and the compute stream after the communication (end).
  void begin();
  void end();
  bool enqueue_all_reduce(Tensor& x);
  bool enqueue_reduce_scatter(const Tensor& in, Tensor& out);
  bool enqueue_all_gather(const Tensor& in, Tensor& out);
  // After an operation enqueued without end(): its ticket (event recorded on
  // the NCCL stream), and wait_started() now has something to wait for.
  Ticket issue_ticket();

  std::string label_;
  int size_ = 1, rank_ = 0, device_ = 0;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t compute_done_ = nullptr, comm_done_ = nullptr;
  float* barrier_word_ = nullptr;  // [1] on the device: what the barrier all-reduces
  bool started_ = false;           // *_start calls the compute stream does not wait for yet
  // The *_start operations' tickets: ticket t's completion is recorded in
  // ticket_events_[t % kTicketEvents]. A slot recorded again by a later
  // operation before t is waited for makes wait_for(t) wait for that later
  // one: later, never too early (the NCCL stream is in order). Created on
  // first use.
  static constexpr size_t kTicketEvents = 256;
  std::vector<cudaEvent_t> ticket_events_;
  Ticket next_ticket_ = 1;  // 0: no operation (complete)
};

ncclDataType_t sum_type(DType dtype) {
  switch (dtype) {
    case DType::F32: return ncclFloat32;
    case DType::BF16: return ncclBfloat16;
    case DType::F64: return ncclFloat64;
    default: RWKV_FAIL("NCCL: no sum type for dtype ", dtype_name(dtype));
  }
}

// Collectives that only move data treat every tensor as bytes.
size_t byte_count(const Tensor& t) { return t.nbytes(); }

NcclCommunicator::NcclCommunicator(const MpiCommunicator& group, int cuda_device)
    : label_(group.label()), size_(group.size()), rank_(group.rank()), device_(cuda_device) {
  cuda::check_cuda(cudaSetDevice(device_), "cudaSetDevice (NCCL communicator)");
  // The id is 128 opaque bytes; the MPI group carries it to the other ranks,
  // with rank 0's status: if making the id failed there, every rank must
  // hear it, not wait for an id that never comes.
  struct {
    int status;
    ncclUniqueId id;
  } message{};
  if (rank_ == 0) message.status = static_cast<int>(ncclGetUniqueId(&message.id));
  check_mpi(MPI_Bcast(&message, static_cast<int>(sizeof message), MPI_BYTE, 0, group.handle()),
            "MPI_Bcast (NCCL unique id)");
  check(static_cast<ncclResult_t>(message.status), "ncclGetUniqueId (on group rank 0)");
  check(ncclCommInitRank(&comm_, size_, message.id, rank_), "ncclCommInitRank");
  try {
    cuda::check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
    cuda::check_cuda(cudaEventCreateWithFlags(&compute_done_, cudaEventDisableTiming), "cudaEventCreateWithFlags");
    cuda::check_cuda(cudaEventCreateWithFlags(&comm_done_, cudaEventDisableTiming), "cudaEventCreateWithFlags");
    cuda::check_cuda(cudaMalloc(reinterpret_cast<void**>(&barrier_word_), sizeof(float)), "cudaMalloc (barrier word)");
    cuda::check_cuda(cudaMemset(barrier_word_, 0, sizeof(float)), "cudaMemset (barrier word)");
  } catch (...) {
    release();  // a throwing constructor runs no destructor
    throw;
  }
}

NcclCommunicator::~NcclCommunicator() { release(); }

void NcclCommunicator::release() noexcept {
  // Errors are ignored here: a destructor cannot report them, and a failed
  // job is being torn down anyway.
  cudaSetDevice(device_);
  if (stream_ != nullptr) cudaStreamSynchronize(stream_);
  if (comm_ != nullptr) ncclCommDestroy(comm_);
  if (barrier_word_ != nullptr) cudaFree(barrier_word_);
  for (cudaEvent_t e : ticket_events_) cudaEventDestroy(e);
  ticket_events_.clear();
  if (compute_done_ != nullptr) cudaEventDestroy(compute_done_);
  if (comm_done_ != nullptr) cudaEventDestroy(comm_done_);
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
  comm_ = nullptr;
  barrier_word_ = nullptr;
  compute_done_ = comm_done_ = nullptr;
  stream_ = nullptr;
}

void NcclCommunicator::check(ncclResult_t result, const char* what) const {
  if (result == ncclSuccess) return;
  // NCCL ignores the argument (it may be null, as before ncclCommInitRank succeeds).
  const char* detail = ncclGetLastError(comm_);
  RWKV_FAIL("NCCL error in ", what, " on ", name(), ": ", ncclGetErrorString(result),
            detail != nullptr && *detail != '\0' ? str_cat(" (", detail, ")") : std::string(),
            "\n  ---> HINT: run with NCCL_DEBUG=WARN (or INFO) for NCCL's own account");
}

void NcclCommunicator::begin() {
  cuda::check_cuda(cudaSetDevice(device_), "cudaSetDevice");
  cuda::check_cuda(cudaEventRecord(compute_done_, cuda::kStream), "cudaEventRecord");
  cuda::check_cuda(cudaStreamWaitEvent(stream_, compute_done_, 0), "cudaStreamWaitEvent");
}

void NcclCommunicator::end() {
  cuda::check_cuda(cudaEventRecord(comm_done_, stream_), "cudaEventRecord");
  cuda::check_cuda(cudaStreamWaitEvent(cuda::kStream, comm_done_, 0), "cudaStreamWaitEvent");
}

void NcclCommunicator::synchronize() {
  cuda::check_cuda(cudaSetDevice(device_), "cudaSetDevice");
  cuda::check_cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize (NCCL stream)");
}

// Counts and enqueues an in-place all-reduce after the compute stream's work
// so far; false when there is nothing to reduce.
bool NcclCommunicator::enqueue_all_reduce(Tensor& x) {
  const uint64_t sent = all_reduce_bytes_sent(x.numel(), static_cast<int64_t>(dtype_size(x.dtype())), size_, rank_);
  stats_.add(CommOp::AllReduce, sent, sent);
  if (x.numel() == 0) return false;
  begin();
  check(ncclAllReduce(x.raw_data(), x.raw_data(), static_cast<size_t>(x.numel()), sum_type(x.dtype()), ncclSum, comm_,
                      stream_),
        "ncclAllReduce");
  return true;
}

void NcclCommunicator::do_all_reduce_sum(Tensor& x) {
  if (enqueue_all_reduce(x)) end();
}

// Overlap: the NCCL stream waits for the gradients computed so far (begin),
// but the compute stream is not made to wait for the reduction (no end())
// until do_wait_for / do_wait_started, so backward of the next layers runs
// beside it.
Communicator::Ticket NcclCommunicator::do_all_reduce_sum_start(Tensor& x) {
  return enqueue_all_reduce(x) ? issue_ticket() : 0;
}

Communicator::Ticket NcclCommunicator::issue_ticket() {
  if (ticket_events_.empty()) {
    ticket_events_.assign(kTicketEvents, nullptr);
    for (cudaEvent_t& e : ticket_events_)
      cuda::check_cuda(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreateWithFlags (tickets)");
  }
  const Ticket ticket = next_ticket_++;
  cuda::check_cuda(cudaEventRecord(ticket_events_[ticket % kTicketEvents], stream_), "cudaEventRecord");
  started_ = true;  // wait_started() covers it too
  return ticket;
}

void NcclCommunicator::do_wait_started() {
  if (!started_) return;
  cuda::check_cuda(cudaSetDevice(device_), "cudaSetDevice");
  end();  // the NCCL stream is in order: its last event covers every started reduction
  started_ = false;
}

// Counts and enqueues a reduce-scatter after the compute stream's work so
// far; false when there is nothing to move.
bool NcclCommunicator::enqueue_reduce_scatter(const Tensor& in, Tensor& out) {
  stats_.add(CommOp::ReduceScatter,
             reduce_scatter_bytes_sent(out.numel(), static_cast<int64_t>(dtype_size(out.dtype())), size_),
             static_cast<uint64_t>(size_ - 1) * out.nbytes());
  if (out.numel() == 0) return false;
  begin();
  check(ncclReduceScatter(in.raw_data(), out.raw_data(), static_cast<size_t>(out.numel()), sum_type(in.dtype()),
                          ncclSum, comm_, stream_),
        "ncclReduceScatter");
  return true;
}

void NcclCommunicator::do_reduce_scatter_sum(const Tensor& in, Tensor& out) {
  if (enqueue_reduce_scatter(in, out)) end();
}

// Overlap, as do_all_reduce_sum_start.
Communicator::Ticket NcclCommunicator::do_reduce_scatter_sum_start(const Tensor& in, Tensor& out) {
  return enqueue_reduce_scatter(in, out) ? issue_ticket() : 0;
}

// Counts and enqueues an all-gather after the compute stream's work so far;
// false when there is nothing to move.
bool NcclCommunicator::enqueue_all_gather(const Tensor& in, Tensor& out) {
  stats_.add(CommOp::AllGather, all_gather_bytes_sent(in.numel(), static_cast<int64_t>(dtype_size(in.dtype())), size_),
             static_cast<uint64_t>(size_ - 1) * in.nbytes());
  if (in.numel() == 0) return false;
  begin();
  check(ncclAllGather(in.raw_data(), out.raw_data(), byte_count(in), ncclUint8, comm_, stream_), "ncclAllGather");
  return true;
}

void NcclCommunicator::do_all_gather(const Tensor& in, Tensor& out) {
  if (enqueue_all_gather(in, out)) end();
}

// Overlap: the compute stream runs on (the next forward) and waits for this
// gather only where it reads out (do_wait_for).
Communicator::Ticket NcclCommunicator::do_all_gather_start(const Tensor& in, Tensor& out) {
  return enqueue_all_gather(in, out) ? issue_ticket() : 0;
}

void NcclCommunicator::do_wait_for(Ticket ticket) {
  if (ticket == 0) return;
  RWKV_CHECK(ticket < next_ticket_, "wait_for on ", name(), ": ticket ", ticket, " was never handed out");
  cuda::check_cuda(cudaSetDevice(device_), "cudaSetDevice");
  cuda::check_cuda(cudaStreamWaitEvent(cuda::kStream, ticket_events_[ticket % kTicketEvents], 0), "cudaStreamWaitEvent");
}

void NcclCommunicator::do_broadcast(Tensor& x, int root) {
  stats_.add(CommOp::Broadcast,
             broadcast_bytes_sent(x.numel(), static_cast<int64_t>(dtype_size(x.dtype())), size_, rank_, root),
             rank_ == root ? 0 : x.nbytes());
  if (x.numel() == 0) return;
  begin();
  check(ncclBroadcast(x.raw_data(), x.raw_data(), byte_count(x), ncclUint8, root, comm_, stream_), "ncclBroadcast");
  end();
}

void NcclCommunicator::do_send(const Tensor& x, int peer, int) {
  stats_.add(CommOp::SendRecv, x.nbytes(), 0);
  if (x.numel() == 0) return;
  begin();
  check(ncclSend(x.raw_data(), byte_count(x), ncclUint8, peer, comm_, stream_), "ncclSend");
  end();
}

void NcclCommunicator::do_recv(Tensor& x, int peer, int) {
  stats_.add(CommOp::SendRecv, 0, x.nbytes());
  if (x.numel() == 0) return;
  begin();
  check(ncclRecv(x.raw_data(), byte_count(x), ncclUint8, peer, comm_, stream_), "ncclRecv");
  end();
}

void NcclCommunicator::do_send_recv(const Tensor& to_send, int dst, Tensor& to_recv, int src, int) {
  stats_.add(CommOp::SendRecv, to_send.nbytes(), to_recv.nbytes());
  begin();
  // One group: NCCL posts both sides together, so two ranks exchanging with
  // each other cannot block on their sends.
  check(ncclGroupStart(), "ncclGroupStart");
  if (to_send.numel() > 0)
    check(ncclSend(to_send.raw_data(), byte_count(to_send), ncclUint8, dst, comm_, stream_), "ncclSend");
  if (to_recv.numel() > 0)
    check(ncclRecv(to_recv.raw_data(), byte_count(to_recv), ncclUint8, src, comm_, stream_), "ncclRecv");
  check(ncclGroupEnd(), "ncclGroupEnd");
  end();
}

void NcclCommunicator::do_barrier() {
  stats_.add(CommOp::Barrier, 0, 0);
  // A one-element all-reduce completes only once every rank has issued it;
  // waiting for it on the host makes it a barrier.
  begin();
  check(ncclAllReduce(barrier_word_, barrier_word_, 1, ncclFloat32, ncclSum, comm_, stream_),
        "ncclAllReduce (barrier)");
  end();
  synchronize();
}

}  // namespace

bool nccl_available() { return true; }

int select_cuda_device(MPI_Comm comm) {
  int count = 0;
  cudaError_t status = cudaGetDeviceCount(&count);
  RWKV_CHECK(status == cudaSuccess && count > 0, "select_cuda_device: no CUDA device is visible (",
             status == cudaSuccess ? "0 devices" : cudaGetErrorString(status),
             ")\n  ---> HINT: check nvidia-smi and CUDA_VISIBLE_DEVICES, or train on the CPU");
  return node_info(comm).local_rank % count;
}

std::unique_ptr<Communicator> make_nccl_communicator(const MpiCommunicator& group, int cuda_device) {
  return std::make_unique<NcclCommunicator>(group, cuda_device);
}

}  // namespace rwkv::parallel
