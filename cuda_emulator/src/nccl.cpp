// CUDA emulator: the NCCL API (cuda_emulator/include/nccl.h) carried by MPI
// between the processes of an mpirun job, so the CUDA backend's NCCL
// communicator (parallel/nccl_comm.cpp) runs unchanged on CPU-only machines.
// One NCCL rank per process; the program calls MPI_Init itself.
//
// Building a communicator without a collective over MPI_COMM_WORLD. Real
// NCCL lets any subset of processes form a communicator: the processes of one
// data-parallel group call ncclCommInitRank while the others never do, or do
// so for other groups in another order. A world collective (MPI_Comm_split,
// MPI_Comm_create) would deadlock there. So the unique id names the world
// rank of the process that made it (the root) and a per-process serial;
// every other member sends (nccl rank, world rank) to the root on
// MPI_COMM_WORLD with a reserved tag derived from the serial, the root
// answers each with the world ranks ordered by nccl rank, and the members
// alone build the communicator with MPI_Comm_create_group, which is
// collective only over its group. The id's maker must therefore itself be a
// member (any nccl rank), as parallel/nccl_comm.cpp arranges: group rank 0
// makes the id and calls ncclCommInitRank with it.
//
// Groups (ncclGroupStart/End nest; the depth is per thread). Inside a group
// every operation is checked when it is called, returning its error there,
// and queued; the outermost ncclGroupEnd runs the queue: first it posts all
// sends and receives (MPI_Issend/MPI_Irecv), then runs the queued collectives
// in call order, then waits for the sends and receives. So two ranks that
// send to each other inside a group cannot deadlock, and collectives queued
// beside point-to-point traffic progress while it is in flight. If an
// operation was rejected at enqueue, ncclGroupEnd returns that error and
// runs nothing, as NCCL discards a failed group.
//
// Outside a group each operation runs at once and synchronously: the
// emulator runs every stream synchronously. The stream must still be one of
// the communicator's device, and each operation's buffers are handed to the
// stream-order checker (stream_order.h) as accesses on that stream, so a
// collective on the NCCL stream that is not ordered by events after the
// compute stream's writes (or before its later writes) is reported as on a
// GPU it would be a race. A send is synchronous (MPI_Issend): like an NCCL
// send it completes only once the peer receives, so a program that relies on
// MPI's eager buffering of small messages deadlocks here as on GPUs.
//
// Device memory is PROT_NONE outside a cuda_emulator::DeviceAccess, so every
// MPI call that touches device buffers runs inside one.
//
// MPI 3.1 counts are int; an operation larger than that is split into
// several MPI calls (RWKV_CUDA_EMULATOR_NCCL_MAX_COUNT lowers the limit so
// tests exercise the split paths with small buffers).
#include "nccl.h"

#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "emulator_internal.h"
#include "stream_order.h"

// The communicator behind ncclComm_t (declared opaque in nccl.h).
struct ncclComm {
  MPI_Comm mpi = MPI_COMM_NULL;  // exactly the members, ranked by nccl rank
  int rank = 0;
  int size = 1;
  int device = 0;  // the current CUDA device at ncclCommInitRank, as NCCL binds it
};

namespace {

using cuda_emulator::describe_pointer;
using cuda_emulator::device_of_range;

// ---------------------------------------------------------------------------
// Errors: every failure is reported on stderr and kept as the thread's last
// error, so ncclGetLastError gives the caller the same text.

thread_local std::string t_last_error;

template <class... Parts>
std::string cat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}

ncclResult_t fail(ncclResult_t code, const std::string& message) {
  const std::string text = "NCCL: " + message;
  cuda_emulator::report(text);
  t_last_error = text;
  return code;
}

// The program owns MPI's lifetime; the emulator only uses it.
ncclResult_t require_mpi(const char* fn) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized == 0)
    return fail(ncclInvalidUsage, cat(fn, ": MPI is not initialized; the emulated NCCL runs over MPI, so the program "
                                          "must call MPI_Init before using NCCL"));
  if (finalized != 0) return fail(ncclInvalidUsage, cat(fn, ": called after MPI_Finalize"));
  return ncclSuccess;
}

// Turns a failed MPI call into an NCCL error naming the call. A truncated
// message means the peer sent more than was posted for it: the other side's
// fault, hence ncclRemoteError; anything else is a local system error.
ncclResult_t mpi_failure(const std::string& where, const char* call, int rc) {
  int error_class = rc;
  MPI_Error_class(rc, &error_class);
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  if (MPI_Error_string(rc, text, &length) != MPI_SUCCESS) std::snprintf(text, sizeof text, "MPI error %d", rc);
  const ncclResult_t code = error_class == MPI_ERR_TRUNCATE ? ncclRemoteError : ncclSystemError;
  return fail(code, cat(where, ": ", call, " failed: ", text));
}

std::string where_in(const char* fn, const ncclComm* comm) {
  return cat(fn, " (rank ", comm->rank, " of ", comm->size, ", device ", comm->device, ")");
}

// ---------------------------------------------------------------------------
// Communicators alive in this process, so a destroyed or garbage handle is an
// error rather than a crash.

std::mutex g_comms_mutex;
std::set<const ncclComm*> g_comms;

ncclResult_t check_comm(const char* fn, const ncclComm* comm) {
  if (comm == nullptr) return fail(ncclInvalidArgument, cat(fn, ": comm is null"));
  std::lock_guard lock(g_comms_mutex);
  if (g_comms.count(comm) == 0)
    return fail(ncclInvalidArgument,
                cat(fn, ": comm ", static_cast<const void*>(comm),
                    " is not a live communicator of this process (destroyed, or never made by ncclCommInitRank)"));
  return ncclSuccess;
}

// ---------------------------------------------------------------------------
// Data types and reduction operators.

bool valid_type(int type) { return type >= ncclInt8 && type <= ncclBfloat16; }
bool valid_op(int op) { return op >= ncclSum && op <= ncclAvg; }

const char* type_name(ncclDataType_t type) {
  switch (type) {
    case ncclInt8: return "ncclInt8";
    case ncclUint8: return "ncclUint8";
    case ncclInt32: return "ncclInt32";
    case ncclUint32: return "ncclUint32";
    case ncclInt64: return "ncclInt64";
    case ncclUint64: return "ncclUint64";
    case ncclFloat16: return "ncclFloat16";
    case ncclFloat32: return "ncclFloat32";
    case ncclFloat64: return "ncclFloat64";
    case ncclBfloat16: return "ncclBfloat16";
  }
  return "unknown type";
}

size_t type_size(ncclDataType_t type) {
  switch (type) {
    case ncclInt8:
    case ncclUint8: return 1;
    case ncclFloat16:
    case ncclBfloat16: return 2;
    case ncclInt32:
    case ncclUint32:
    case ncclFloat32: return 4;
    case ncclInt64:
    case ncclUint64:
    case ncclFloat64: return 8;
  }
  return 0;
}

// The halves travel as uint16 and reduce through the user operators below;
// MPI has no 16-bit floating types of its own.
MPI_Datatype mpi_type(ncclDataType_t type) {
  switch (type) {
    case ncclInt8: return MPI_INT8_T;
    case ncclUint8: return MPI_UINT8_T;
    case ncclInt32: return MPI_INT32_T;
    case ncclUint32: return MPI_UINT32_T;
    case ncclInt64: return MPI_INT64_T;
    case ncclUint64: return MPI_UINT64_T;
    case ncclFloat16:
    case ncclBfloat16: return MPI_UINT16_T;
    case ncclFloat32: return MPI_FLOAT;
    case ncclFloat64: return MPI_DOUBLE;
  }
  return MPI_DATATYPE_NULL;
}

// bfloat16 is the top half of an IEEE float.
float bf16_to_float(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }

uint16_t float_to_bf16(float f) {
  uint32_t u = std::bit_cast<uint32_t>(f);
  // Rounding a NaN could carry it into infinity; keep it a (quiet) NaN.
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest, ties to even; overflow carries into infinity
  return static_cast<uint16_t>(u >> 16);
}

// IEEE binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits.
float f16_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));  // inf, NaN
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign != 0 ? -magnitude : magnitude;
  }
  return std::bit_cast<float>(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

uint16_t float_to_f16(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  const auto sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t magnitude = u & 0x7fffffffu;
  if (magnitude > 0x7f800000u)  // NaN: keep it NaN and quiet, with what of the payload fits
    return static_cast<uint16_t>(sign | 0x7e00u | ((magnitude >> 13) & 0x3ffu));
  if (magnitude >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65520 rounds to infinity
  if (magnitude >= 0x38800000u) {  // normal in binary16 (>= 2^-14): rebias the exponent, round away 13 bits
    uint32_t v = magnitude - (112u << 23);
    v += 0xfffu + ((v >> 13) & 1u);  // ties to even; a carry correctly bumps the exponent
    return static_cast<uint16_t>(sign | (v >> 13));
  }
  // Subnormal or zero in binary16: a count of 2^-24 quanta. Scaling by a power
  // of two is exact, and nearbyint rounds ties to even (the default mode).
  const float quanta = std::bit_cast<float>(magnitude) * 16777216.0f;
  return static_cast<uint16_t>(sign | static_cast<uint16_t>(std::nearbyint(quanta)));
}

enum class Arith { Sum, Prod, Max, Min };

// A reduction of 16-bit floats as NCCL does it: widen to float, combine, and
// round back after every step. Max and min return one of the inputs
// unchanged and propagate NaN.
template <float (*ToFloat)(uint16_t), uint16_t (*FromFloat)(float), Arith A>
void half_reduce(void* in, void* inout, int* len, MPI_Datatype*) {
  const auto* a = static_cast<const uint16_t*>(in);
  auto* b = static_cast<uint16_t*>(inout);
  for (int i = 0; i < *len; ++i) {
    const float x = ToFloat(a[i]), y = ToFloat(b[i]);
    if constexpr (A == Arith::Sum) {
      b[i] = FromFloat(x + y);
    } else if constexpr (A == Arith::Prod) {
      b[i] = FromFloat(x * y);
    } else {
      if (std::isnan(y)) continue;
      if (std::isnan(x) || (A == Arith::Max ? x > y : x < y)) b[i] = a[i];
    }
  }
}

// The eight user operators (bf16 and f16 times sum, prod, max, min), made once
// per process on first use, which is after MPI_Init.
struct HalfOps {
  MPI_Op bf16[4] = {MPI_OP_NULL, MPI_OP_NULL, MPI_OP_NULL, MPI_OP_NULL};
  MPI_Op f16[4] = {MPI_OP_NULL, MPI_OP_NULL, MPI_OP_NULL, MPI_OP_NULL};
  int rc = MPI_SUCCESS;
};

const HalfOps& half_ops() {
  static const HalfOps ops = [] {
    HalfOps made;
    MPI_User_function* bf16[4] = {half_reduce<bf16_to_float, float_to_bf16, Arith::Sum>,
                                  half_reduce<bf16_to_float, float_to_bf16, Arith::Prod>,
                                  half_reduce<bf16_to_float, float_to_bf16, Arith::Max>,
                                  half_reduce<bf16_to_float, float_to_bf16, Arith::Min>};
    MPI_User_function* f16[4] = {half_reduce<f16_to_float, float_to_f16, Arith::Sum>,
                                 half_reduce<f16_to_float, float_to_f16, Arith::Prod>,
                                 half_reduce<f16_to_float, float_to_f16, Arith::Max>,
                                 half_reduce<f16_to_float, float_to_f16, Arith::Min>};
    for (int i = 0; i < 4 && made.rc == MPI_SUCCESS; ++i) {
      made.rc = MPI_Op_create(bf16[i], 1, &made.bf16[i]);
      if (made.rc == MPI_SUCCESS) made.rc = MPI_Op_create(f16[i], 1, &made.f16[i]);
    }
    return made;
  }();
  return ops;
}

// The MPI operator for op on type; average reduces as a sum and divides after.
MPI_Op mpi_op(ncclDataType_t type, ncclRedOp_t op) {
  const int index = op == ncclAvg ? 0 : static_cast<int>(op);
  if (type == ncclBfloat16) return half_ops().bf16[index];
  if (type == ncclFloat16) return half_ops().f16[index];
  static const MPI_Op predefined[4] = {MPI_SUM, MPI_PROD, MPI_MAX, MPI_MIN};
  return predefined[index];
}

template <class T>
void divide_as(void* data, size_t count, int n) {
  auto* p = static_cast<T*>(data);
  for (size_t i = 0; i < count; ++i) p[i] = static_cast<T>(p[i] / static_cast<T>(n));
}

// ncclAvg: the summed result divided by the number of ranks, in the type's
// own arithmetic (integers truncate, halves divide in float and round once).
// NCCL itself scales floating-point inputs by 1/nranks before summing, so in
// the last bit the two can differ when the values are not exact.
void divide_by_ranks(void* data, size_t count, ncclDataType_t type, int n) {
  switch (type) {
    case ncclInt8: divide_as<int8_t>(data, count, n); break;
    case ncclUint8: divide_as<uint8_t>(data, count, n); break;
    case ncclInt32: divide_as<int32_t>(data, count, n); break;
    case ncclUint32: divide_as<uint32_t>(data, count, n); break;
    case ncclInt64: divide_as<int64_t>(data, count, n); break;
    case ncclUint64: divide_as<uint64_t>(data, count, n); break;
    case ncclFloat32: divide_as<float>(data, count, n); break;
    case ncclFloat64: divide_as<double>(data, count, n); break;
    case ncclFloat16:
    case ncclBfloat16: {
      const bool bf = type == ncclBfloat16;
      auto* p = static_cast<uint16_t*>(data);
      for (size_t i = 0; i < count; ++i) {
        const float v = (bf ? bf16_to_float(p[i]) : f16_to_float(p[i])) / static_cast<float>(n);
        p[i] = bf ? float_to_bf16(v) : float_to_f16(v);
      }
      break;
    }
  }
}

// The most elements one MPI call carries: MPI 3.1 counts are int.
size_t max_mpi_count() {
  const size_t limit = static_cast<size_t>(INT_MAX);
  const char* text = std::getenv("RWKV_CUDA_EMULATOR_NCCL_MAX_COUNT");
  if (text == nullptr || *text == '\0') return limit;
  char* end = nullptr;
  const unsigned long long value = std::strtoull(text, &end, 10);
  if (*end != '\0' || value == 0 || value > limit) return limit;
  return static_cast<size_t>(value);
}

// ---------------------------------------------------------------------------
// Operations: checked when called, then run at once or queued in a group.

enum class Kind { AllReduce, ReduceScatter, AllGather, Broadcast, Send, Recv };

struct Op {
  Kind kind;
  const char* fn;  // the API function, for messages
  const void* send = nullptr;
  void* recv = nullptr;
  size_t count = 0;  // AllReduce/Broadcast/p2p: elements; ReduceScatter: per rank out; AllGather: per rank in
  ncclDataType_t type = ncclUint8;
  ncclRedOp_t op = ncclSum;
  int peer = 0;  // Broadcast: root; Send/Recv: the peer
  ncclComm* comm = nullptr;
  cudaStream_t stream = nullptr;
};

struct GroupState {
  int depth = 0;
  std::vector<Op> queued;
  ncclResult_t first_error = ncclSuccess;  // of an operation rejected at enqueue
};

thread_local GroupState t_group;

bool overlap(const void* a, size_t a_bytes, const void* b, size_t b_bytes) {
  const auto x = reinterpret_cast<uintptr_t>(a), y = reinterpret_cast<uintptr_t>(b);
  return x < y + b_bytes && y < x + a_bytes;
}

// ptr must be count elements of emulated device memory on the communicator's
// device: NCCL only moves device memory, and on a GPU a host pointer or one
// into another GPU's memory would fault in the kernel.
ncclResult_t check_buffer(const Op& op, const char* what, const void* ptr, size_t count) {
  const size_t size = type_size(op.type);
  if (count > SIZE_MAX / size)
    return fail(ncclInvalidArgument, cat(where_in(op.fn, op.comm), ": ", what, " of ", count, " x ",
                                         type_name(op.type), " overflows the address space"));
  const size_t bytes = count * size;
  if (ptr == nullptr) return fail(ncclInvalidArgument, cat(where_in(op.fn, op.comm), ": ", what, " is null"));
  const int device = device_of_range(ptr, bytes);
  if (device == op.comm->device) return ncclSuccess;
  std::string problem;
  if (device >= 0)
    problem = cat("it is on device ", device);
  else if (device_of_range(ptr, 1) >= 0)
    problem = "it runs past the end of its device allocation";
  else
    problem = "it is not emulated device memory";
  return fail(ncclInvalidArgument, cat(where_in(op.fn, op.comm), ": ", what, " [", ptr, ", +", bytes,
                                       " bytes) must be device memory on the communicator's device ", op.comm->device,
                                       ", but ", problem, ": ", describe_pointer(ptr)));
}

ncclResult_t check_op(Op& op) {
  if (ncclResult_t r = require_mpi(op.fn); r != ncclSuccess) return r;
  if (ncclResult_t r = check_comm(op.fn, op.comm); r != ncclSuccess) return r;
  const std::string where = where_in(op.fn, op.comm);
  if (!valid_type(op.type))
    return fail(ncclInvalidArgument, cat(where, ": invalid datatype ", static_cast<int>(op.type)));
  const bool reduces = op.kind == Kind::AllReduce || op.kind == Kind::ReduceScatter;
  if (reduces && !valid_op(op.op))
    return fail(ncclInvalidArgument, cat(where, ": invalid reduction operator ", static_cast<int>(op.op)));
  if (cuda_emulator::current_device() != op.comm->device)
    return fail(ncclInvalidUsage, cat(where, ": the current device is ", cuda_emulator::current_device(),
                                      " but the communicator belongs to device ", op.comm->device,
                                      " (NCCL works on the stream of the communicator's device)"));
  // A stream of another device (or no stream at all) makes NCCL's kernel
  // launch fail: a CUDA error, as NCCL reports it.
  if (cuda_emulator::check_stream(op.stream, op.fn) != cudaSuccess)
    return fail(ncclUnhandledCudaError, cat(where, ": the stream is not a stream of the communicator's device"));
  const bool p2p = op.kind == Kind::Send || op.kind == Kind::Recv;
  if ((op.kind == Kind::Broadcast || p2p) && (op.peer < 0 || op.peer >= op.comm->size))
    return fail(ncclInvalidArgument, cat(where, ": ", op.kind == Kind::Broadcast ? "root " : "peer ", op.peer,
                                         " is not a rank of this ", op.comm->size, "-rank communicator"));
  if (op.count == 0) return ncclSuccess;  // nothing moves; the caller skips queueing it

  const size_t n = static_cast<size_t>(op.comm->size), size = type_size(op.type);
  const uintptr_t send = reinterpret_cast<uintptr_t>(op.send), recv = reinterpret_cast<uintptr_t>(op.recv);
  // in_place: the one arrangement in which the buffers may overlap.
  auto check_two = [&](size_t send_count, size_t recv_count, bool in_place) -> ncclResult_t {
    if (ncclResult_t r = check_buffer(op, "sendbuff", op.send, send_count); r != ncclSuccess) return r;
    if (ncclResult_t r = check_buffer(op, "recvbuff", op.recv, recv_count); r != ncclSuccess) return r;
    if (!in_place && overlap(op.send, send_count * size, op.recv, recv_count * size))
      return fail(ncclInvalidArgument, cat(where, ": sendbuff ", op.send, " and recvbuff ", op.recv,
                                           " overlap but are not the in-place arrangement"));
    return ncclSuccess;
  };
  const size_t own_block = static_cast<size_t>(op.comm->rank) * op.count * size;  // this rank's offset in bytes
  switch (op.kind) {
    case Kind::AllReduce: return check_two(op.count, op.count, send == recv);
    case Kind::ReduceScatter:
      if (op.count > SIZE_MAX / size / n)
        return fail(ncclInvalidArgument, cat(where, ": recvcount ", op.count, " overflows"));
      return check_two(op.count * n, op.count, recv == send + own_block);
    case Kind::AllGather:
      if (op.count > SIZE_MAX / size / n)
        return fail(ncclInvalidArgument, cat(where, ": sendcount ", op.count, " overflows"));
      return check_two(op.count, op.count * n, send == recv + own_block);
    case Kind::Broadcast:
      // sendbuff matters only on the root (NCCL ignores it elsewhere).
      if (op.comm->rank == op.peer) return check_two(op.count, op.count, send == recv);
      return check_buffer(op, "recvbuff", op.recv, op.count);
    case Kind::Send: return check_buffer(op, "sendbuff", op.send, op.count);
    case Kind::Recv: return check_buffer(op, "recvbuff", op.recv, op.count);
  }
  return ncclSuccess;
}

// The pieces [offset, offset + n) an operation of count elements is split
// into for MPI's int counts.
template <class F>
int for_each_piece(size_t count, F&& f) {
  const size_t limit = max_mpi_count();
  for (size_t offset = 0; offset < count; offset += limit) {
    const int rc = f(offset, static_cast<int>(std::min(limit, count - offset)));
    if (rc != MPI_SUCCESS) return rc;
  }
  return MPI_SUCCESS;
}

// Runs one collective; the caller holds a DeviceAccess.
ncclResult_t run_collective(const Op& op) {
  const MPI_Comm comm = op.comm->mpi;
  const MPI_Datatype type = mpi_type(op.type);
  const size_t size = type_size(op.type), n = static_cast<size_t>(op.comm->size);
  const size_t rank = static_cast<size_t>(op.comm->rank);
  const auto* send = static_cast<const char*>(op.send);
  auto* recv = static_cast<char*>(op.recv);
  const std::string where = where_in(op.fn, op.comm);
  int rc = MPI_SUCCESS;
  const char* call = "";
  const bool reduces = op.kind == Kind::AllReduce || op.kind == Kind::ReduceScatter;
  if (reduces && (op.type == ncclBfloat16 || op.type == ncclFloat16) && half_ops().rc != MPI_SUCCESS)
    return mpi_failure(where, "MPI_Op_create (the 16-bit float reductions)", half_ops().rc);

  switch (op.kind) {
    case Kind::AllReduce: {
      call = "MPI_Allreduce";
      const MPI_Op mop = mpi_op(op.type, op.op);
      const bool in_place = op.send == op.recv;
      rc = for_each_piece(op.count, [&](size_t offset, int pieces) {
        return MPI_Allreduce(in_place ? MPI_IN_PLACE : send + offset * size, recv + offset * size, pieces, type, mop,
                             comm);
      });
      if (rc == MPI_SUCCESS && op.op == ncclAvg) divide_by_ranks(recv, op.count, op.type, op.comm->size);
      break;
    }
    case Kind::ReduceScatter: {
      const MPI_Op mop = mpi_op(op.type, op.op);
      const size_t block = op.count * size;  // bytes each rank ends up with
      const bool in_place = recv == send + rank * block;
      if (op.count <= max_mpi_count()) {
        call = "MPI_Reduce_scatter_block";
        if (!in_place) {
          rc = MPI_Reduce_scatter_block(send, recv, static_cast<int>(op.count), type, mop, comm);
        } else {
          // MPI's in-place form leaves the result at the start of the buffer,
          // NCCL's at this rank's block: reduce into scratch and copy over, so
          // no other part of sendbuff is written.
          std::vector<char> scratch(block);
          rc = MPI_Reduce_scatter_block(send, scratch.data(), static_cast<int>(op.count), type, mop, comm);
          if (rc == MPI_SUCCESS) std::memcpy(recv, scratch.data(), block);
        }
      } else {
        // Too large for one call: one reduce per destination block, in pieces.
        call = "MPI_Reduce";
        for (size_t root = 0; root < n && rc == MPI_SUCCESS; ++root) {
          rc = for_each_piece(op.count, [&](size_t offset, int pieces) {
            const char* in = send + root * block + offset * size;
            if (root != rank) return MPI_Reduce(in, nullptr, pieces, type, mop, static_cast<int>(root), comm);
            return MPI_Reduce(in_place ? MPI_IN_PLACE : in, recv + offset * size, pieces, type, mop,
                              static_cast<int>(root), comm);
          });
        }
      }
      if (rc == MPI_SUCCESS && op.op == ncclAvg) divide_by_ranks(recv, op.count, op.type, op.comm->size);
      break;
    }
    case Kind::AllGather: {
      const size_t block = op.count * size;
      const bool in_place = send == recv + rank * block;
      if (op.count <= max_mpi_count()) {
        call = "MPI_Allgather";
        const int pieces = static_cast<int>(op.count);
        rc = MPI_Allgather(in_place ? MPI_IN_PLACE : send, pieces, type, recv, pieces, type, comm);
      } else {
        // Too large for one call: every rank broadcasts its block, in pieces.
        call = "MPI_Bcast";
        if (!in_place) std::memcpy(recv + rank * block, send, block);
        for (size_t root = 0; root < n && rc == MPI_SUCCESS; ++root) {
          rc = for_each_piece(op.count, [&](size_t offset, int pieces) {
            return MPI_Bcast(recv + root * block + offset * size, pieces, type, static_cast<int>(root), comm);
          });
        }
      }
      break;
    }
    case Kind::Broadcast: {
      call = "MPI_Bcast";
      if (op.comm->rank == op.peer && op.send != op.recv) std::memcpy(recv, send, op.count * size);
      rc = for_each_piece(op.count, [&](size_t offset, int pieces) {
        return MPI_Bcast(recv + offset * size, pieces, type, op.peer, comm);
      });
      break;
    }
    case Kind::Send:
    case Kind::Recv: return fail(ncclInternalError, cat(where, ": a point-to-point operation reached run_collective"));
  }
  return rc == MPI_SUCCESS ? ncclSuccess : mpi_failure(where, call, rc);
}

// The tag of emulated point-to-point messages on a communicator's private
// MPI communicator; MPI's in-order matching per peer gives NCCL's rule that
// the k-th send to a peer meets that peer's k-th receive from us.
constexpr int kP2pTag = 0;

// Tells the stream-order checker what op reads and writes on its stream. On a
// GPU the group's kernels are enqueued at ncclGroupEnd, so that is when the
// accesses are placed in the stream's order; the host does not wait for them
// (the emulator does, but that is not what the program may rely on).
void order_on_stream(const Op& op) {
  const size_t bytes = op.count * type_size(op.type), n = static_cast<size_t>(op.comm->size);
  cuda_emulator::Access read{op.send, bytes, false}, write{op.recv, bytes, true};
  if (op.kind == Kind::ReduceScatter) read.bytes *= n;
  if (op.kind == Kind::AllGather) write.bytes *= n;
  if (op.kind == Kind::Broadcast && op.comm->rank != op.peer) read.begin = nullptr;  // not read off the root
  const cuda_emulator::Access accesses[2] = {read, write};
  cuda_emulator::order_operation(op.stream, op.fn, accesses, 2);
}

// Runs operations that passed check_op: a whole group, or one call outside a
// group. Sends and receives are posted first and waited for last, so any
// pairing of them within the group completes.
ncclResult_t run_ops(const std::vector<Op>& ops) {
  if (ops.empty()) return ncclSuccess;
  for (const Op& op : ops) order_on_stream(op);
  cuda_emulator::DeviceAccess access;  // device buffers are readable and writable only inside

  struct Posted {
    size_t op;   // index into ops
    int pieces;  // elements this request carries
  };
  std::vector<MPI_Request> requests;
  std::vector<Posted> posted;
  for (size_t i = 0; i < ops.size(); ++i) {
    const Op& op = ops[i];
    if (op.kind != Kind::Send && op.kind != Kind::Recv) continue;
    const size_t size = type_size(op.type);
    const MPI_Datatype type = mpi_type(op.type);
    const bool is_send = op.kind == Kind::Send;
    const int rc = for_each_piece(op.count, [&](size_t offset, int pieces) {
      requests.emplace_back(MPI_REQUEST_NULL);
      posted.push_back({i, pieces});
      if (is_send)
        return MPI_Issend(static_cast<const char*>(op.send) + offset * size, pieces, type, op.peer, kP2pTag,
                          op.comm->mpi, &requests.back());
      return MPI_Irecv(static_cast<char*>(op.recv) + offset * size, pieces, type, op.peer, kP2pTag, op.comm->mpi,
                       &requests.back());
    });
    // After a failed MPI call the job cannot go on consistently; requests
    // already posted are abandoned rather than waited for (which could hang).
    if (rc != MPI_SUCCESS)
      return mpi_failure(cat(where_in(op.fn, op.comm), " to/from peer ", op.peer), is_send ? "MPI_Issend" : "MPI_Irecv",
                         rc);
  }

  // Blocking collectives while the sends and receives are in flight: MPI
  // progresses those too, so a peer waiting on one of them is not stuck.
  for (const Op& op : ops) {
    if (op.kind == Kind::Send || op.kind == Kind::Recv) continue;
    if (ncclResult_t r = run_collective(op); r != ncclSuccess) return r;
  }

  if (requests.empty()) return ncclSuccess;
  std::vector<MPI_Status> statuses(requests.size());
  const int rc = MPI_Waitall(static_cast<int>(requests.size()), requests.data(), statuses.data());
  for (size_t k = 0; k < posted.size(); ++k) {
    const Op& op = ops[posted[k].op];
    const std::string where =
        cat(where_in(op.fn, op.comm), op.kind == Kind::Send ? " to peer " : " from peer ", op.peer);
    if (rc == MPI_ERR_IN_STATUS && statuses[k].MPI_ERROR != MPI_SUCCESS && statuses[k].MPI_ERROR != MPI_ERR_PENDING)
      return mpi_failure(where, "MPI_Waitall", statuses[k].MPI_ERROR);
    if (rc != MPI_SUCCESS) continue;
    if (op.kind == Kind::Recv) {
      // A shorter message is legal in MPI but not in NCCL, where both sides
      // must agree on the count; catch the mismatch here.
      int got = 0;
      MPI_Get_count(&statuses[k], mpi_type(op.type), &got);
      if (got != posted[k].pieces)
        return fail(ncclRemoteError, cat(where, ": expected ", posted[k].pieces, " elements of ", type_name(op.type),
                                         " but the peer sent ", got, " (ncclSend and ncclRecv counts must match)"));
    }
  }
  if (rc != MPI_SUCCESS) return mpi_failure(where_in(ops.front().fn, ops.front().comm), "MPI_Waitall", rc);
  return ncclSuccess;
}

// Checks op, then runs it now or queues it in the open group.
ncclResult_t submit(Op op) {
  const ncclResult_t r = check_op(op);
  if (r != ncclSuccess) {
    if (t_group.depth > 0 && t_group.first_error == ncclSuccess) t_group.first_error = r;
    return r;
  }
  if (op.count == 0) return ncclSuccess;
  if (t_group.depth > 0) {
    t_group.queued.push_back(op);
    return ncclSuccess;
  }
  return run_ops({op});
}

// ---------------------------------------------------------------------------
// The unique id and the rendezvous that builds a communicator.

constexpr uint64_t kIdMagic = 0x31554d454c43434eull;  // "NCCLEMU1" little-endian
// Tags on MPI_COMM_WORLD reserved for the rendezvous (the standard guarantees
// MPI_TAG_UB >= 32767). Programs must not receive on MPI_COMM_WORLD with
// these tags or MPI_ANY_TAG while a communicator is being built.
constexpr int kRendezvousTagBase = 32000;
constexpr int kRendezvousTagSpan = 500;

struct IdContents {
  uint64_t magic;
  uint64_t serial;  // per process, so ids from one root differ
  int32_t root;     // the world rank that made the id and collects the members
  int32_t world_size;
};
static_assert(sizeof(IdContents) <= NCCL_UNIQUE_ID_BYTES);

// A member's request to the root: who it is.
struct Join {
  uint64_t magic;
  uint64_t serial;
  int32_t nranks;
  int32_t rank;
  int32_t world_rank;
};

// The root's answer to each member: the world ranks ordered by nccl rank
// follow it, or, when ok is 0, why the communicator cannot be built.
struct Answer {
  uint64_t magic;
  uint64_t serial;
  int32_t ok;
  char reason[236];
};

std::atomic<uint64_t> g_id_serial{0};

int rendezvous_tag(uint64_t serial) { return kRendezvousTagBase + static_cast<int>(serial % kRendezvousTagSpan); }

// The root: collects the other members' requests, checks them, and sends
// each the ordered member list. members[rank] is already this process.
ncclResult_t collect_members(const IdContents& id, int nranks, int rank, std::vector<int>& members, int tag) {
  const char* fn = "ncclCommInitRank";
  std::string problem;
  std::vector<int> senders;
  for (int i = 1; i < nranks; ++i) {
    Join join{};
    MPI_Status status;
    int rc = MPI_Recv(&join, sizeof join, MPI_BYTE, MPI_ANY_SOURCE, tag, MPI_COMM_WORLD, &status);
    if (rc != MPI_SUCCESS) return mpi_failure(cat(fn, " (root of a ", nranks, "-rank communicator)"), "MPI_Recv", rc);
    int bytes = 0;
    MPI_Get_count(&status, MPI_BYTE, &bytes);
    senders.push_back(status.MPI_SOURCE);
    std::string bad;
    if (bytes != static_cast<int>(sizeof join) || join.magic != kIdMagic || join.serial != id.serial)
      bad = cat("world rank ", status.MPI_SOURCE, " sent a message on the reserved tag ", tag,
                " that is not a request for this id");
    else if (join.nranks != nranks)
      bad = cat("world rank ", status.MPI_SOURCE, " asked for ", join.nranks, " ranks, the root for ", nranks);
    else if (join.rank < 0 || join.rank >= nranks || join.world_rank != status.MPI_SOURCE)
      bad = cat("world rank ", status.MPI_SOURCE, " sent a malformed request (rank ", join.rank, ")");
    else if (members[join.rank] >= 0)
      bad = cat("nccl rank ", join.rank, " was claimed by world ranks ", members[join.rank], " and ", join.world_rank);
    else
      members[join.rank] = join.world_rank;
    if (!bad.empty() && problem.empty()) problem = bad;
  }
  // Everyone who asked gets an answer, success or not, so none of them hangs.
  std::vector<char> message(sizeof(Answer) + sizeof(int) * static_cast<size_t>(nranks));
  Answer answer{kIdMagic, id.serial, problem.empty() ? 1 : 0, {}};
  std::snprintf(answer.reason, sizeof answer.reason, "%s", problem.c_str());
  std::memcpy(message.data(), &answer, sizeof answer);
  std::memcpy(message.data() + sizeof answer, members.data(), sizeof(int) * members.size());
  for (int sender : senders) {
    int rc = MPI_Send(message.data(), static_cast<int>(message.size()), MPI_BYTE, sender, tag, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpi_failure(cat(fn, " (answering world rank ", sender, ")"), "MPI_Send", rc);
  }
  if (!problem.empty())
    return fail(ncclInvalidUsage, cat(fn, ": rank ", rank, " of ", nranks, " (the id's root): ", problem));
  return ncclSuccess;
}

// A non-root member: asks the root and waits for the member list.
ncclResult_t join_root(const IdContents& id, int nranks, int rank, int world_rank, std::vector<int>& members, int tag) {
  const char* fn = "ncclCommInitRank";
  Join join{kIdMagic, id.serial, nranks, rank, world_rank};
  int rc = MPI_Send(&join, sizeof join, MPI_BYTE, id.root, tag, MPI_COMM_WORLD);
  if (rc != MPI_SUCCESS) return mpi_failure(cat(fn, " (asking root world rank ", id.root, ")"), "MPI_Send", rc);
  std::vector<char> message(sizeof(Answer) + sizeof(int) * static_cast<size_t>(nranks));
  MPI_Status status;
  rc = MPI_Recv(message.data(), static_cast<int>(message.size()), MPI_BYTE, id.root, tag, MPI_COMM_WORLD, &status);
  if (rc != MPI_SUCCESS) return mpi_failure(cat(fn, " (waiting for root world rank ", id.root, ")"), "MPI_Recv", rc);
  Answer answer{};
  std::memcpy(&answer, message.data(), sizeof answer);
  if (answer.magic != kIdMagic || answer.serial != id.serial)
    return fail(ncclInternalError, cat(fn, ": root world rank ", id.root, " answered for another id"));
  if (answer.ok == 0) {
    answer.reason[sizeof answer.reason - 1] = '\0';
    return fail(ncclInvalidUsage,
                cat(fn, ": rank ", rank, " of ", nranks, ": the id's root world rank ", id.root, " refused: ",
                    answer.reason));
  }
  std::memcpy(members.data(), message.data() + sizeof answer, sizeof(int) * members.size());
  return ncclSuccess;
}

}  // namespace

// ---------------------------------------------------------------------------
// The API.

const char* ncclGetErrorString(ncclResult_t result) {
  switch (result) {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError: return "unhandled cuda error (the cuda emulator's report on stderr says which)";
    case ncclSystemError: return "unhandled system error (the cuda emulator's report on stderr names the MPI call)";
    case ncclInternalError: return "internal error - please report this issue to the cuda emulator's maintainers";
    case ncclInvalidArgument: return "invalid argument (the cuda emulator's report on stderr says which)";
    case ncclInvalidUsage: return "invalid usage (the cuda emulator's report on stderr says how)";
    case ncclRemoteError: return "remote process exited or there was a network error";
    case ncclInProgress: return "NCCL operation in progress";
  }
  return "unknown result code";
}

// Like NCCL's, the message is the calling thread's last failure, whatever the
// communicator.
const char* ncclGetLastError(ncclComm_t) { return t_last_error.c_str(); }

ncclResult_t ncclGetUniqueId(ncclUniqueId* unique_id) {
  if (ncclResult_t r = require_mpi("ncclGetUniqueId"); r != ncclSuccess) return r;
  if (unique_id == nullptr) return fail(ncclInvalidArgument, "ncclGetUniqueId: unique_id is null");
  IdContents id{kIdMagic, g_id_serial.fetch_add(1), 0, 0};
  MPI_Comm_rank(MPI_COMM_WORLD, &id.root);
  MPI_Comm_size(MPI_COMM_WORLD, &id.world_size);
  std::memset(unique_id->internal, 0, sizeof unique_id->internal);
  std::memcpy(unique_id->internal, &id, sizeof id);
  return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId comm_id, int rank) {
  const char* fn = "ncclCommInitRank";
  if (ncclResult_t r = require_mpi(fn); r != ncclSuccess) return r;
  if (comm == nullptr) return fail(ncclInvalidArgument, cat(fn, ": comm is null"));
  *comm = nullptr;
  if (nranks <= 0) return fail(ncclInvalidArgument, cat(fn, ": nranks is ", nranks, "; it must be positive"));
  if (rank < 0 || rank >= nranks)
    return fail(ncclInvalidArgument, cat(fn, ": rank ", rank, " is outside [0, ", nranks, ")"));
  IdContents id{};
  std::memcpy(&id, comm_id.internal, sizeof id);
  int world_rank = 0, world_size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  if (id.magic != kIdMagic)
    return fail(ncclInvalidArgument, cat(fn, ": the unique id was not made by ncclGetUniqueId (garbage, or never "
                                             "broadcast from the rank that made it)"));
  if (id.world_size != world_size || id.root < 0 || id.root >= world_size)
    return fail(ncclInvalidArgument, cat(fn, ": the unique id comes from another MPI job (root world rank ", id.root,
                                         " of ", id.world_size, ", this job has ", world_size, ")"));
  if (nranks > world_size)
    return fail(ncclInvalidArgument, cat(fn, ": nranks ", nranks, " exceeds the ", world_size,
                                         " processes of the job (the emulator runs one rank per process)"));
  int* tag_ub = nullptr;
  int has_tag_ub = 0;
  MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &tag_ub, &has_tag_ub);
  if (has_tag_ub == 0 || *tag_ub < kRendezvousTagBase + kRendezvousTagSpan - 1)
    return fail(ncclSystemError, cat(fn, ": MPI_TAG_UB is below the tags the emulator reserves"));
  const int tag = rendezvous_tag(id.serial);

  // members[r] = the world rank of nccl rank r.
  std::vector<int> members(static_cast<size_t>(nranks), -1);
  members[static_cast<size_t>(rank)] = world_rank;
  if (nranks > 1) {
    const ncclResult_t r = world_rank == id.root ? collect_members(id, nranks, rank, members, tag)
                                                 : join_root(id, nranks, rank, world_rank, members, tag);
    if (r != ncclSuccess) return r;
  }

  // Collective over the members only; the group's order makes MPI rank r the
  // world process of nccl rank r.
  MPI_Group world_group = MPI_GROUP_NULL, group = MPI_GROUP_NULL;
  MPI_Comm mpi = MPI_COMM_NULL;
  int rc = MPI_Comm_group(MPI_COMM_WORLD, &world_group);
  if (rc == MPI_SUCCESS) rc = MPI_Group_incl(world_group, nranks, members.data(), &group);
  if (rc == MPI_SUCCESS) rc = MPI_Comm_create_group(MPI_COMM_WORLD, group, tag, &mpi);
  if (group != MPI_GROUP_NULL) MPI_Group_free(&group);
  if (world_group != MPI_GROUP_NULL) MPI_Group_free(&world_group);
  if (rc != MPI_SUCCESS) return mpi_failure(cat(fn, " (rank ", rank, " of ", nranks, ")"), "MPI_Comm_create_group", rc);
  MPI_Comm_set_errhandler(mpi, MPI_ERRORS_RETURN);
  int mpi_rank = -1;
  MPI_Comm_rank(mpi, &mpi_rank);
  if (mpi_rank != rank) {
    MPI_Comm_free(&mpi);
    return fail(ncclInternalError, cat(fn, ": built an MPI communicator in which rank ", rank, " is ", mpi_rank));
  }

  auto* made = new ncclComm{mpi, rank, nranks, cuda_emulator::current_device()};
  {
    std::lock_guard lock(g_comms_mutex);
    g_comms.insert(made);
  }
  *comm = made;
  return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  const char* fn = "ncclCommDestroy";
  if (comm == nullptr) return ncclSuccess;  // as NCCL: destroying nothing is fine
  if (ncclResult_t r = check_comm(fn, comm); r != ncclSuccess) return r;
  for (const Op& op : t_group.queued)
    if (op.comm == comm)
      return fail(ncclInvalidUsage, cat(where_in(fn, comm), ": the open group still holds a ", op.fn,
                                        " on this communicator; call ncclGroupEnd first"));
  {
    std::lock_guard lock(g_comms_mutex);
    g_comms.erase(comm);
  }
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized == 0 && comm->mpi != MPI_COMM_NULL) MPI_Comm_free(&comm->mpi);
  delete comm;
  return ncclSuccess;
}

ncclResult_t ncclCommCount(const ncclComm_t comm, int* count) {
  if (ncclResult_t r = check_comm("ncclCommCount", comm); r != ncclSuccess) return r;
  if (count == nullptr) return fail(ncclInvalidArgument, "ncclCommCount: count is null");
  *count = comm->size;
  return ncclSuccess;
}

ncclResult_t ncclCommUserRank(const ncclComm_t comm, int* rank) {
  if (ncclResult_t r = check_comm("ncclCommUserRank", comm); r != ncclSuccess) return r;
  if (rank == nullptr) return fail(ncclInvalidArgument, "ncclCommUserRank: rank is null");
  *rank = comm->rank;
  return ncclSuccess;
}

ncclResult_t ncclAllReduce(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype,
                           ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream) {
  return submit({Kind::AllReduce, "ncclAllReduce", sendbuff, recvbuff, count, datatype, op, 0, comm, stream});
}

ncclResult_t ncclReduceScatter(const void* sendbuff, void* recvbuff, size_t recvcount, ncclDataType_t datatype,
                               ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream) {
  return submit(
      {Kind::ReduceScatter, "ncclReduceScatter", sendbuff, recvbuff, recvcount, datatype, op, 0, comm, stream});
}

ncclResult_t ncclAllGather(const void* sendbuff, void* recvbuff, size_t sendcount, ncclDataType_t datatype,
                           ncclComm_t comm, cudaStream_t stream) {
  return submit({Kind::AllGather, "ncclAllGather", sendbuff, recvbuff, sendcount, datatype, ncclSum, 0, comm, stream});
}

ncclResult_t ncclBroadcast(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, int root,
                           ncclComm_t comm, cudaStream_t stream) {
  return submit({Kind::Broadcast, "ncclBroadcast", sendbuff, recvbuff, count, datatype, ncclSum, root, comm, stream});
}

ncclResult_t ncclSend(const void* sendbuff, size_t count, ncclDataType_t datatype, int peer, ncclComm_t comm,
                      cudaStream_t stream) {
  return submit({Kind::Send, "ncclSend", sendbuff, nullptr, count, datatype, ncclSum, peer, comm, stream});
}

ncclResult_t ncclRecv(void* recvbuff, size_t count, ncclDataType_t datatype, int peer, ncclComm_t comm,
                      cudaStream_t stream) {
  return submit({Kind::Recv, "ncclRecv", nullptr, recvbuff, count, datatype, ncclSum, peer, comm, stream});
}

ncclResult_t ncclGroupStart() {
  ++t_group.depth;
  return ncclSuccess;
}

ncclResult_t ncclGroupEnd() {
  if (t_group.depth == 0) return fail(ncclInvalidUsage, "ncclGroupEnd: no ncclGroupStart is open on this thread");
  if (--t_group.depth > 0) return ncclSuccess;
  std::vector<Op> ops = std::move(t_group.queued);
  const ncclResult_t first_error = t_group.first_error;
  t_group = GroupState{};
  if (first_error != ncclSuccess)
    return fail(first_error, cat("ncclGroupEnd: an operation of the group was rejected (reported above); the ",
                                 ops.size(), " accepted operations of the group were discarded, not run"));
  return run_ops(ops);
}
