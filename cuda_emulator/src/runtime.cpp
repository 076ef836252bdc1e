// CUDA emulator: the runtime API (cuda_runtime_api.h) on the CPU.
//
// Streams and events are real objects that remember their device, so the
// checks a GPU makes still happen here (a stream of one device used with
// another current, an unknown handle), but work runs when it is issued:
// every stream is synchronous. That is one legal schedule of the program;
// ordering bugs between streams need a GPU (or a later, reordering mode).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <string>

#include "cuda_emulator/inspect.h"
#include "cuda_runtime_api.h"
#include "device_memory.h"
#include "emulator_internal.h"
#include "stream_order.h"

struct CUstream_st {
  int device;
};
struct CUevent_st {
  int device;
  unsigned int flags;
  bool recorded;
  std::chrono::steady_clock::time_point when;
};

namespace cuda_emulator {

namespace {

int env_int(const char* name, int fallback, int lo, int hi) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return fallback;
  char* end = nullptr;
  const long parsed = std::strtol(value, &end, 10);
  if (*end != '\0' || parsed < lo || parsed > hi) {
    std::fprintf(stderr, "cuda emulator: %s=%s is not an integer in [%d, %d]; using %d\n", name, value, lo, hi,
                 fallback);
    return fallback;
  }
  return static_cast<int>(parsed);
}

thread_local int this_thread_device = 0;
std::atomic<uint64_t> synchronizations{0};
std::atomic<uint64_t> stalls{0};
std::atomic<bool> work_in_flight{false};
thread_local cudaError_t last_error = cudaSuccess;

std::recursive_mutex device_work_mutex;
thread_local int access_depth = 0;

std::mutex handles_mutex;
std::set<const CUstream_st*> streams;
std::set<const CUevent_st*> events;

bool valid_device(int device) { return device >= 0 && device < device_count(); }

// The device a stream belongs to; -1 for an unknown handle. The null stream
// is the current device's default stream.
int stream_device(cudaStream_t stream) {
  if (stream == nullptr) return current_device();
  std::lock_guard<std::mutex> lock(handles_mutex);
  return streams.count(stream) != 0 ? stream->device : -1;
}

bool known_event(cudaEvent_t event) {
  std::lock_guard<std::mutex> lock(handles_mutex);
  return events.count(event) != 0;
}

}  // namespace

cudaError_t check_stream(cudaStream_t stream, const char* call) {
  const int device = stream_device(stream);
  if (device < 0) return fail(cudaErrorInvalidResourceHandle, std::string(call) + ": unknown stream handle");
  if (device != current_device()) {
    return fail(cudaErrorInvalidResourceHandle, std::string(call) + ": the stream belongs to device " +
                                                    std::to_string(device) + " but device " +
                                                    std::to_string(current_device()) + " is current");
  }
  return cudaSuccess;
}

namespace {

const char* memcpy_kind_name(cudaMemcpyKind kind) {
  switch (kind) {
    case cudaMemcpyHostToHost: return "HostToHost";
    case cudaMemcpyHostToDevice: return "HostToDevice";
    case cudaMemcpyDeviceToHost: return "DeviceToHost";
    case cudaMemcpyDeviceToDevice: return "DeviceToDevice";
    case cudaMemcpyDefault: return "Default";
  }
  return "?";
}

// A copy's source and destination must be where its kind says: device sides
// wholly inside one device allocation, host sides not device memory.
cudaError_t check_copy_spans(void* dst, size_t dst_bytes, const void* src, size_t src_bytes, cudaMemcpyKind kind,
                             const char* call) {
  const bool dst_device = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool src_device = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (kind == cudaMemcpyDefault) return cudaSuccess;  // either side may be either
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault) {
    return fail(cudaErrorInvalidMemcpyDirection, std::string(call) + ": invalid copy kind");
  }
  auto side = [&](const void* p, size_t count, bool on_device, const char* which) -> cudaError_t {
    const int owner = device_of_range(p, count);
    if (on_device && owner < 0) {
      return fail(cudaErrorInvalidValue, std::string(call) + " (" + memcpy_kind_name(kind) + ", " +
                                             std::to_string(count) + " bytes): the " + which + " " +
                                             describe_pointer(p) + " is not " + std::to_string(count) +
                                             " bytes of device memory");
    }
    if (!on_device && device_of_range(p, 1) >= 0) {
      return fail(cudaErrorInvalidValue, std::string(call) + " (" + memcpy_kind_name(kind) + "): the " + which +
                                             " " + describe_pointer(p) +
                                             " is device memory where the copy kind says host");
    }
    return cudaSuccess;
  };
  if (cudaError_t e = side(dst, dst_bytes, dst_device, "destination"); e != cudaSuccess) return e;
  return side(src, src_bytes, src_device, "source");
}

cudaError_t check_copy(void* dst, const void* src, size_t count, cudaMemcpyKind kind, const char* call) {
  return check_copy_spans(dst, count, src, count, kind, call);
}

}  // namespace

int device_count() {
  static const int count = env_int("RWKV_CUDA_EMULATOR_DEVICES", 8, 0, 1024);
  return count;
}

int sm_count() {
  static const int count = env_int("RWKV_CUDA_EMULATOR_SMS", 4, 1, 1024);
  return count;
}

int current_device() { return this_thread_device; }

uint64_t host_synchronizations() { return synchronizations.load(); }
uint64_t host_stalls() { return stalls.load(); }
void count_host_synchronization() {
  ++synchronizations;
  if (work_in_flight.exchange(false)) ++stalls;
}
void note_device_work() { work_in_flight = true; }

// What a "synchronous" copy (cudaMemcpy, cudaMemcpy2D) makes the host wait
// for, CUDA's API synchronisation rules: a copy from the host (pageable
// memory) first waits for the stream's earlier work, a copy to the host
// returns once it is done, a device-to-device copy does not wait at all. A
// copy touching another GPU's memory is serialised with that GPU's default
// stream too (like cudaMemcpyPeer), modelled as the host waiting for it.
// async_copy() issues the copy on the default stream.
template <typename AsyncCopy>
cudaError_t synchronous_copy(void* dst, const void* src, AsyncCopy&& async_copy) {
  const int dst_owner = device_of_range(dst, 1), src_owner = device_of_range(src, 1);
  bool touches_peer = false;  // another GPU's memory
  for (const int owner : {dst_owner, src_owner}) {
    if (owner < 0 || owner == this_thread_device) continue;
    host_waited_for_default_stream(owner);
    touches_peer = true;
  }
  const bool host_waits = dst_owner < 0 || src_owner < 0;
  if (host_waits) {
    count_host_synchronization();
    host_waited_for_stream(nullptr);
  }
  const cudaError_t status = async_copy();
  if (status == cudaSuccess && (host_waits || touches_peer)) {
    // Later work on this GPU and the peers is ordered after the copy.
    host_waited_for_stream(nullptr);
    if (host_waits) work_in_flight = false;  // the copy itself was waited for
  }
  return status;
}

DeviceAccess::DeviceAccess() {
  device_work_mutex.lock();
  if (access_depth++ == 0) open_device_memory();
}

DeviceAccess::~DeviceAccess() {
  if (--access_depth == 0) close_device_memory();
  device_work_mutex.unlock();
}

void report(const std::string& message) { std::fprintf(stderr, "cuda emulator: %s\n", message.c_str()); }

cudaError_t fail(cudaError_t error, const std::string& message) {
  report(message);
  last_error = error;
  return error;
}

}  // namespace cuda_emulator

using cuda_emulator::fail;

const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInitializationError: return "cudaErrorInitializationError";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidPitchValue: return "cudaErrorInvalidPitchValue";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidPitchValue: return "invalid pitch argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
  }
  return "unknown error";
}

cudaError_t cudaGetLastError() {
  const cudaError_t error = cuda_emulator::last_error;
  cuda_emulator::last_error = cudaSuccess;
  return error;
}

cudaError_t cudaPeekAtLastError() { return cuda_emulator::last_error; }

cudaError_t cudaGetDeviceCount(int* count) {
  if (count == nullptr) return fail(cudaErrorInvalidValue, "cudaGetDeviceCount: null count");
  *count = cuda_emulator::device_count();
  if (*count == 0) return fail(cudaErrorNoDevice, "cudaGetDeviceCount: RWKV_CUDA_EMULATOR_DEVICES=0");
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  if (!cuda_emulator::valid_device(device)) {
    return fail(cudaErrorInvalidDevice, "cudaSetDevice(" + std::to_string(device) + "): there are " +
                                            std::to_string(cuda_emulator::device_count()) + " emulated devices");
  }
  cuda_emulator::this_thread_device = device;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  if (device == nullptr) return fail(cudaErrorInvalidValue, "cudaGetDevice: null device");
  *device = cuda_emulator::this_thread_device;
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() {
  cuda_emulator::count_host_synchronization();
  cuda_emulator::host_waited_for_device(cuda_emulator::this_thread_device);
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (value == nullptr) return fail(cudaErrorInvalidValue, "cudaDeviceGetAttribute: null value");
  if (!cuda_emulator::valid_device(device)) return fail(cudaErrorInvalidDevice, "cudaDeviceGetAttribute: bad device");
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = 1024; return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = 48 * 1024; return cudaSuccess;
    case cudaDevAttrWarpSize: *value = 32; return cudaSuccess;
    case cudaDevAttrMultiProcessorCount: *value = cuda_emulator::sm_count(); return cudaSuccess;
    case cudaDevAttrComputeCapabilityMajor: *value = 9; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMinor: *value = 0; return cudaSuccess;
  }
  return fail(cudaErrorInvalidValue, "cudaDeviceGetAttribute: attribute " + std::to_string(attr) +
                                         " is not emulated");
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  if (free_bytes == nullptr || total_bytes == nullptr) return fail(cudaErrorInvalidValue, "cudaMemGetInfo: null");
  *total_bytes = cuda_emulator::device_memory_budget();
  *free_bytes = *total_bytes - cuda_emulator::device_bytes_in_use(cuda_emulator::this_thread_device);
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** ptr, size_t size) {
  if (ptr == nullptr) return fail(cudaErrorInvalidValue, "cudaMalloc: null result pointer");
  *ptr = nullptr;
  if (size == 0) return cudaSuccess;
  *ptr = cuda_emulator::allocate_device_memory(cuda_emulator::this_thread_device, size);
  if (*ptr == nullptr) {
    // Out of memory is an expected condition (the caching allocator frees
    // its cache and retries), so no report: just the error, as on a GPU.
    cuda_emulator::last_error = cudaErrorMemoryAllocation;
    return cudaErrorMemoryAllocation;
  }
  return cudaSuccess;
}

cudaError_t cudaMallocAsync(void** ptr, size_t size, cudaStream_t stream) {
  if (cudaError_t e = cuda_emulator::check_stream(stream, "cudaMallocAsync"); e != cudaSuccess) return e;
  return cudaMalloc(ptr, size);
}

cudaError_t cudaFree(void* ptr) {
  if (ptr == nullptr) return cudaSuccess;
  size_t bytes = 0;
  int device = 0;
  if (!cuda_emulator::free_device_memory(ptr, &bytes, &device)) {
    return fail(cudaErrorInvalidValue, "cudaFree: " + cuda_emulator::describe_pointer(ptr) +
                                           " is not the start of a live device allocation (double free?)");
  }
  cuda_emulator::count_host_synchronization();
  cuda_emulator::memory_freed(ptr, bytes, device);
  return cudaSuccess;
}

cudaError_t cudaFreeAsync(void* ptr, cudaStream_t stream) {
  if (cudaError_t e = cuda_emulator::check_stream(stream, "cudaFreeAsync"); e != cudaSuccess) return e;
  return cudaFree(ptr);
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count, cudaMemcpyKind kind, cudaStream_t stream) {
  if (cudaError_t e = cuda_emulator::check_stream(stream, "cudaMemcpyAsync"); e != cudaSuccess) return e;
  if (count == 0) return cudaSuccess;
  if (cudaError_t e = cuda_emulator::check_copy(dst, src, count, kind, "cudaMemcpy"); e != cudaSuccess) return e;
  cuda_emulator::order_copy(stream, "cudaMemcpy", dst, count, src, count);
  const cuda_emulator::DeviceAccess access;
  std::memmove(dst, src, count);
  return cudaSuccess;
}

// Synchronous: the host waits for the copy, hence for the default stream's
// work before it (non-blocking streams are not implied).
cudaError_t cudaMemcpy(void* dst, const void* src, size_t count, cudaMemcpyKind kind) {
  return cuda_emulator::synchronous_copy(dst, src, [&] { return cudaMemcpyAsync(dst, src, count, kind, nullptr); });
}

// height rows of width bytes; row r starts at r * pitch on each side.
cudaError_t cudaMemcpy2DAsync(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t height,
                              cudaMemcpyKind kind, cudaStream_t stream) {
  if (cudaError_t e = cuda_emulator::check_stream(stream, "cudaMemcpy2DAsync"); e != cudaSuccess) return e;
  if (width == 0 || height == 0) return cudaSuccess;
  if (width > dpitch || width > spitch) {
    return fail(cudaErrorInvalidPitchValue, "cudaMemcpy2D: width " + std::to_string(width) +
                                                " exceeds a pitch (dpitch " + std::to_string(dpitch) + ", spitch " +
                                                std::to_string(spitch) + ")");
  }
  // The checks see each side's whole span (the last row ends at (height - 1) * pitch + width).
  const size_t dst_span = (height - 1) * dpitch + width, src_span = (height - 1) * spitch + width;
  if (cudaError_t e = cuda_emulator::check_copy_spans(dst, dst_span, src, src_span, kind, "cudaMemcpy2D");
      e != cudaSuccess) {
    return e;
  }
  cuda_emulator::order_copy(stream, "cudaMemcpy2D", dst, dst_span, src, src_span);
  const cuda_emulator::DeviceAccess access;
  for (size_t r = 0; r < height; ++r) {
    std::memmove(static_cast<char*>(dst) + r * dpitch, static_cast<const char*>(src) + r * spitch, width);
  }
  return cudaSuccess;
}

cudaError_t cudaMemcpy2D(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t height,
                         cudaMemcpyKind kind) {
  return cuda_emulator::synchronous_copy(
      dst, src, [&] { return cudaMemcpy2DAsync(dst, dpitch, src, spitch, width, height, kind, nullptr); });
}

cudaError_t cudaMemsetAsync(void* ptr, int value, size_t count, cudaStream_t stream) {
  if (cudaError_t e = cuda_emulator::check_stream(stream, "cudaMemsetAsync"); e != cudaSuccess) return e;
  if (count == 0) return cudaSuccess;
  if (cuda_emulator::device_of_range(ptr, count) < 0) {
    return fail(cudaErrorInvalidValue, "cudaMemset of " + std::to_string(count) + " bytes at " +
                                           cuda_emulator::describe_pointer(ptr) + ": not that much device memory");
  }
  cuda_emulator::order_operation(stream, "cudaMemset", {{ptr, count, true}});
  const cuda_emulator::DeviceAccess access;
  std::memset(ptr, value, count);
  return cudaSuccess;
}

cudaError_t cudaMemset(void* ptr, int value, size_t count) { return cudaMemsetAsync(ptr, value, count, nullptr); }

cudaError_t cudaPointerGetAttributes(cudaPointerAttributes* attributes, const void* ptr) {
  if (attributes == nullptr) return fail(cudaErrorInvalidValue, "cudaPointerGetAttributes: null attributes");
  const int device = cuda_emulator::device_of_range(ptr, 1);
  *attributes = cudaPointerAttributes{};
  if (device < 0) {
    // CUDA 11+: plain host memory is "unregistered", not an error.
    attributes->type = cudaMemoryTypeUnregistered;
    attributes->device = -2;
    attributes->hostPointer = const_cast<void*>(ptr);
  } else {
    attributes->type = cudaMemoryTypeDevice;
    attributes->device = device;
    attributes->devicePointer = const_cast<void*>(ptr);
  }
  return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int) {
  if (stream == nullptr) return fail(cudaErrorInvalidValue, "cudaStreamCreate: null stream");
  *stream = new CUstream_st{cuda_emulator::this_thread_device};
  std::lock_guard<std::mutex> lock(cuda_emulator::handles_mutex);
  cuda_emulator::streams.insert(*stream);
  cuda_emulator::register_stream(*stream, cuda_emulator::this_thread_device);
  return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, cudaStreamDefault); }

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  std::lock_guard<std::mutex> lock(cuda_emulator::handles_mutex);
  if (stream == nullptr || cuda_emulator::streams.erase(stream) == 0) {
    return fail(cudaErrorInvalidResourceHandle, "cudaStreamDestroy: unknown stream handle");
  }
  delete stream;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  if (cuda_emulator::stream_device(stream) < 0) {
    return fail(cudaErrorInvalidResourceHandle, "cudaStreamSynchronize: unknown stream handle");
  }
  cuda_emulator::count_host_synchronization();
  cuda_emulator::host_waited_for_stream(stream);
  return cudaSuccess;
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int) {
  // A stream may wait for an event of another device; the stream itself must exist.
  if (cuda_emulator::stream_device(stream) < 0) {
    return fail(cudaErrorInvalidResourceHandle, "cudaStreamWaitEvent: unknown stream handle");
  }
  if (!cuda_emulator::known_event(event)) {
    return fail(cudaErrorInvalidResourceHandle, "cudaStreamWaitEvent: unknown event handle");
  }
  cuda_emulator::stream_waits(stream, event);
  return cudaSuccess;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags) {
  if (event == nullptr) return fail(cudaErrorInvalidValue, "cudaEventCreate: null event");
  *event = new CUevent_st{cuda_emulator::this_thread_device, flags, false, {}};
  std::lock_guard<std::mutex> lock(cuda_emulator::handles_mutex);
  cuda_emulator::events.insert(*event);
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, cudaEventDefault); }

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  std::lock_guard<std::mutex> lock(cuda_emulator::handles_mutex);
  if (event == nullptr || cuda_emulator::events.erase(event) == 0) {
    return fail(cudaErrorInvalidResourceHandle, "cudaEventDestroy: unknown event handle");
  }
  cuda_emulator::event_forgotten(event);
  delete event;
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  if (!cuda_emulator::known_event(event)) {
    return fail(cudaErrorInvalidResourceHandle, "cudaEventRecord: unknown event handle");
  }
  // An event is recorded on a stream of its own device (CUDA's rule).
  const int device = cuda_emulator::stream_device(stream);
  if (device < 0) return fail(cudaErrorInvalidResourceHandle, "cudaEventRecord: unknown stream handle");
  if (device != event->device) {
    return fail(cudaErrorInvalidResourceHandle, "cudaEventRecord: an event of device " +
                                                    std::to_string(event->device) + " on a stream of device " +
                                                    std::to_string(device));
  }
  cuda_emulator::event_recorded(event, stream);
  event->recorded = true;
  event->when = std::chrono::steady_clock::now();
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  if (!cuda_emulator::known_event(event)) {
    return fail(cudaErrorInvalidResourceHandle, "cudaEventSynchronize: unknown event handle");
  }
  cuda_emulator::count_host_synchronization();
  cuda_emulator::host_waited_for_event(event);
  return cudaSuccess;
}

// Always complete here; a host that saw "complete" is ordered after the event.
cudaError_t cudaEventQuery(cudaEvent_t event) { return cudaEventSynchronize(event); }

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (ms == nullptr) return fail(cudaErrorInvalidValue, "cudaEventElapsedTime: null result");
  if (!cuda_emulator::known_event(start) || !cuda_emulator::known_event(end)) {
    return fail(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime: unknown event handle");
  }
  if ((start->flags & cudaEventDisableTiming) != 0 || (end->flags & cudaEventDisableTiming) != 0) {
    return fail(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime: an event was created with timing disabled");
  }
  if (!start->recorded || !end->recorded) return fail(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime: "
                                                                                      "an event was never recorded");
  *ms = std::chrono::duration<float, std::milli>(end->when - start->when).count();
  return cudaSuccess;
}
