#include "parallel/mpi_comm.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "parallel/comm_volume.h"
#include "parallel/mpi_runtime.h"

namespace rwkv::parallel {

namespace {

// MPI counts are ints: large buffers travel as several messages of at most
// 1 GiB, in order (MPI does not reorder messages between two ranks on one
// communicator and tag), so both sides split them identically.
size_t g_message_limit = size_t{1} << 30;
// The tag of the collectives' point-to-point messages, on the private duplicate.
constexpr int kCollectiveTag = 7;

class Requests {
 public:
  explicit Requests(MPI_Comm comm) : comm_(comm) {}
  void send(const void* data, size_t bytes, int peer, int tag) {
    const char* p = static_cast<const char*>(data);
    for (size_t done = 0; done < bytes; done += g_message_limit) {
      const int n = static_cast<int>(std::min(g_message_limit, bytes - done));
      requests_.emplace_back();
      check_mpi(MPI_Isend(p + done, n, MPI_BYTE, peer, tag, comm_, &requests_.back()), "MPI_Isend");
    }
  }
  void recv(void* data, size_t bytes, int peer, int tag) {
    char* p = static_cast<char*>(data);
    for (size_t done = 0; done < bytes; done += g_message_limit) {
      const int n = static_cast<int>(std::min(g_message_limit, bytes - done));
      requests_.emplace_back();
      check_mpi(MPI_Irecv(p + done, n, MPI_BYTE, peer, tag, comm_, &requests_.back()), "MPI_Irecv");
    }
  }
  void wait(const char* what) {
    if (requests_.empty()) return;
    check_mpi(MPI_Waitall(static_cast<int>(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE), what);
    requests_.clear();
  }

 private:
  MPI_Comm comm_;
  std::vector<MPI_Request> requests_;
};

char* bytes_of(const Tensor& t) { return static_cast<char*>(t.raw_data()); }

bool overlaps(const char* a, size_t a_bytes, const char* b, size_t b_bytes) {
  return a_bytes > 0 && b_bytes > 0 && a < b + b_bytes && b < a + a_bytes;
}

// out[i] = ((src[0][i] + src[1][i]) + ...) + src[n-1][i], added in Acc and
// stored in T: Acc = T for f32 and f64; for bf16 the sum is added in f32 and
// rounded to bf16 once, at the end (the most a bf16 wire allows; NCCL
// rounds after every hop instead), which keeps it independent of the
// chunking. Blocked so the inner loops vectorise; each block is read
// completely before it is written, so out may be one of the sources (the
// in-place all-reduce).
template <typename T, typename Acc = T>
void sum_sources(const std::vector<const T*>& src, T* out, int64_t len) {
  constexpr int64_t kBlock = 1024;
  const int64_t blocks = (len + kBlock - 1) / kBlock;
  const size_t n = src.size();
#pragma omp parallel for schedule(static) if (len > (int64_t{1} << 16))
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t begin = b * kBlock, count = std::min(kBlock, len - begin);
    Acc acc[kBlock];
    for (int64_t j = 0; j < count; ++j) acc[j] = load_as_float(src[0][begin + j]);
    for (size_t q = 1; q < n; ++q) {
      const T* s = src[q] + begin;
      for (int64_t j = 0; j < count; ++j) acc[j] += load_as_float(s[j]);
    }
    if constexpr (std::is_same_v<T, Acc>) {
      std::memcpy(out + begin, acc, static_cast<size_t>(count) * sizeof(T));
    } else {
      for (int64_t j = 0; j < count; ++j) out[begin + j] = store_from_float<T>(acc[j]);
    }
  }
}

}  // namespace

void MpiCommunicator::set_message_limit(size_t bytes) {
  RWKV_CHECK(bytes >= 1 && bytes <= (size_t{1} << 30), "MpiCommunicator::set_message_limit: ", bytes,
             " bytes is outside [1, 2^30]");
  g_message_limit = bytes;
}

size_t MpiCommunicator::message_limit() { return g_message_limit; }

MpiCommunicator::MpiCommunicator(MPI_Comm comm, std::string label, bool owned)
    : comm_(comm), label_(std::move(label)), owned_(owned) {
  RWKV_CHECK(comm != MPI_COMM_NULL, "MpiCommunicator(", label_, "): MPI_COMM_NULL");
  check_mpi(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
  check_mpi(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
  check_mpi(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
  check_mpi(MPI_Comm_dup(comm_, &collectives_), "MPI_Comm_dup");
  check_mpi(MPI_Comm_set_errhandler(collectives_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;  // too late to free; MPI has released everything
  if (collectives_ != MPI_COMM_NULL) MPI_Comm_free(&collectives_);
  if (owned_ && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

std::string MpiCommunicator::name() const {
  return str_cat("mpi ", label_, " group (rank ", rank_, " of ", size_, ")");
}

void MpiCommunicator::sum_in_rank_order(DType dtype, const char* own, const std::vector<const char*>& received,
                                        char* out, int64_t len) const {
  auto sources = [&](auto zero) {
    using T = decltype(zero);
    std::vector<const T*> src(static_cast<size_t>(size_));
    for (int q = 0; q < size_; ++q)
      src[static_cast<size_t>(q)] = reinterpret_cast<const T*>(q == rank_ ? own : received[static_cast<size_t>(q)]);
    return src;
  };
  switch (dtype) {
    case DType::F32: sum_sources<float>(sources(float{}), reinterpret_cast<float*>(out), len); break;
    case DType::F64: sum_sources<double>(sources(double{}), reinterpret_cast<double*>(out), len); break;
    case DType::BF16: sum_sources<bf16, float>(sources(bf16{}), reinterpret_cast<bf16*>(out), len); break;
    default: RWKV_FAIL("sum_in_rank_order: no sum for dtype ", dtype_name(dtype));
  }
}

void MpiCommunicator::do_reduce_scatter_sum(const Tensor& in, Tensor& out) {
  const size_t chunk = out.nbytes();
  const char* src = bytes_of(in);
  char* dst = bytes_of(out);
  const char* own = src + static_cast<size_t>(rank_) * chunk;
  // In place is fine when out is exactly this rank's chunk; any other overlap
  // would overwrite data still to be sent or summed.
  RWKV_CHECK(!overlaps(dst, chunk, src, in.nbytes()) || dst == own, "reduce_scatter_sum on ", name(), ": out ",
             out.str(), " overlaps in ", in.str(), " other than as its chunk ", rank_);
  stats_.add(CommOp::ReduceScatter, reduce_scatter_bytes_sent(out.numel(), dtype_size(out.dtype()), size_),
             static_cast<uint64_t>(size_ - 1) * chunk);
  if (size_ == 1) {
    if (dst != src) std::memcpy(dst, src, chunk);
    return;
  }
  scratch_.resize(static_cast<size_t>(size_) * chunk);
  std::vector<const char*> received(static_cast<size_t>(size_), nullptr);
  Requests requests(collectives_);
  for (int q = 0; q < size_; ++q) {
    if (q == rank_) continue;
    char* slot = scratch_.data() + static_cast<size_t>(q) * chunk;
    received[static_cast<size_t>(q)] = slot;
    requests.recv(slot, chunk, q, kCollectiveTag);
  }
  for (int s = 1; s < size_; ++s) {  // start with the next rank: spreads the load
    const int q = (rank_ + s) % size_;
    requests.send(src + static_cast<size_t>(q) * chunk, chunk, q, kCollectiveTag);
  }
  requests.wait("reduce_scatter_sum (MPI_Waitall)");
  sum_in_rank_order(in.dtype(), own, received, dst, out.numel());
}

void MpiCommunicator::do_all_gather(const Tensor& in, Tensor& out) {
  const size_t chunk = in.nbytes();
  const char* src = bytes_of(in);
  char* dst = bytes_of(out);
  char* own = dst + static_cast<size_t>(rank_) * chunk;
  RWKV_CHECK(!overlaps(src, chunk, dst, out.nbytes()) || src == own, "all_gather on ", name(), ": in ", in.str(),
             " overlaps out ", out.str(), " other than as its chunk ", rank_);
  stats_.add(CommOp::AllGather, all_gather_bytes_sent(in.numel(), dtype_size(in.dtype()), size_),
             static_cast<uint64_t>(size_ - 1) * chunk);
  if (src != own) std::memcpy(own, src, chunk);
  if (size_ == 1) return;
  Requests requests(collectives_);
  for (int q = 0; q < size_; ++q)
    if (q != rank_) requests.recv(dst + static_cast<size_t>(q) * chunk, chunk, q, kCollectiveTag);
  for (int s = 1; s < size_; ++s) requests.send(own, chunk, (rank_ + s) % size_, kCollectiveTag);
  requests.wait("all_gather (MPI_Waitall)");
}

void MpiCommunicator::do_all_reduce_sum(Tensor& x) {
  // Reduce-scatter then all-gather on the balanced chunking: rank r sums
  // chunk r in rank order and sends the result to everyone.
  const int64_t n = x.numel();
  const size_t elem = dtype_size(x.dtype());
  const uint64_t sent = all_reduce_bytes_sent(n, static_cast<int64_t>(elem), size_, rank_);
  stats_.add(CommOp::AllReduce, sent, sent);  // pairwise exchange: what a rank sends it also receives
  if (size_ == 1 || n == 0) return;
  char* data = bytes_of(x);
  auto chunk_of = [&](int q) {
    ChunkRange c = balanced_chunk(n, size_, q);
    return std::pair<char*, size_t>(data + static_cast<size_t>(c.begin) * elem, static_cast<size_t>(c.length) * elem);
  };
  const auto [own, own_bytes] = chunk_of(rank_);
  scratch_.resize(static_cast<size_t>(size_) * own_bytes);
  std::vector<const char*> received(static_cast<size_t>(size_), nullptr);
  Requests requests(collectives_);
  // Phase 1 (reduce-scatter): every rank's copy of chunk r comes to rank r.
  for (int q = 0; q < size_; ++q) {
    if (q == rank_) continue;
    char* slot = scratch_.data() + static_cast<size_t>(q) * own_bytes;
    received[static_cast<size_t>(q)] = slot;
    requests.recv(slot, own_bytes, q, kCollectiveTag);
  }
  for (int s = 1; s < size_; ++s) {
    const int q = (rank_ + s) % size_;
    const auto [ptr, bytes] = chunk_of(q);
    requests.send(ptr, bytes, q, kCollectiveTag);
  }
  requests.wait("all_reduce_sum reduce-scatter phase (MPI_Waitall)");
  sum_in_rank_order(x.dtype(), own, received, own, static_cast<int64_t>(own_bytes / elem));
  // Phase 2 (all-gather): rank r's summed chunk goes to everyone.
  for (int q = 0; q < size_; ++q) {
    if (q == rank_) continue;
    const auto [ptr, bytes] = chunk_of(q);
    requests.recv(ptr, bytes, q, kCollectiveTag);
  }
  for (int s = 1; s < size_; ++s) requests.send(own, own_bytes, (rank_ + s) % size_, kCollectiveTag);
  requests.wait("all_reduce_sum all-gather phase (MPI_Waitall)");
}

void MpiCommunicator::do_broadcast(Tensor& x, int root) {
  const size_t bytes = x.nbytes();
  stats_.add(CommOp::Broadcast,
             broadcast_bytes_sent(x.numel(), static_cast<int64_t>(dtype_size(x.dtype())), size_, rank_, root),
             rank_ == root ? 0 : bytes);
  if (size_ == 1) return;
  Requests requests(collectives_);
  if (rank_ == root) {
    for (int s = 1; s < size_; ++s) requests.send(bytes_of(x), bytes, (root + s) % size_, kCollectiveTag);
  } else {
    requests.recv(bytes_of(x), bytes, root, kCollectiveTag);
  }
  requests.wait("broadcast (MPI_Waitall)");
}

void MpiCommunicator::do_send(const Tensor& x, int peer, int tag) {
  stats_.add(CommOp::SendRecv, x.nbytes(), 0);
  const char* p = bytes_of(x);
  for (size_t done = 0; done < x.nbytes(); done += g_message_limit) {
    const int n = static_cast<int>(std::min(g_message_limit, x.nbytes() - done));
    check_mpi(MPI_Send(p + done, n, MPI_BYTE, peer, tag, comm_), "send (MPI_Send)");
  }
}

void MpiCommunicator::do_recv(Tensor& x, int peer, int tag) {
  stats_.add(CommOp::SendRecv, 0, x.nbytes());
  char* p = bytes_of(x);
  for (size_t done = 0; done < x.nbytes(); done += g_message_limit) {
    const int n = static_cast<int>(std::min(g_message_limit, x.nbytes() - done));
    MPI_Status status;
    check_mpi(MPI_Recv(p + done, n, MPI_BYTE, peer, tag, comm_, &status), "recv (MPI_Recv)");
    int got = 0;
    MPI_Get_count(&status, MPI_BYTE, &got);
    RWKV_CHECK(got == n, "recv on ", name(), ": expected ", x.nbytes(), " bytes for ", x.str(), " from rank ", peer,
               " (tag ", tag, "), but the message has ", done + static_cast<size_t>(got),
               "\n  ---> HINT: sender and receiver must agree on the tensor's element count and dtype");
  }
}

void MpiCommunicator::do_send_recv(const Tensor& to_send, int dst, Tensor& to_recv, int src, int tag) {
  stats_.add(CommOp::SendRecv, to_send.nbytes(), to_recv.nbytes());
  Requests requests(comm_);
  requests.recv(bytes_of(to_recv), to_recv.nbytes(), src, tag);
  requests.send(bytes_of(to_send), to_send.nbytes(), dst, tag);
  requests.wait("send_recv (MPI_Waitall)");
}

void MpiCommunicator::do_barrier() {
  stats_.add(CommOp::Barrier, 0, 0);
  check_mpi(MPI_Barrier(collectives_), "barrier (MPI_Barrier)");
}

}  // namespace rwkv::parallel
