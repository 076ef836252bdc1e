#include "stream_order.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "emulator_internal.h"

namespace cuda_emulator {

namespace {

using Clock = std::vector<uint64_t>;  // [stream id]: operations of that stream ordered before

void merge(Clock& into, const Clock& from) {
  if (into.size() < from.size()) into.resize(from.size(), 0);
  for (size_t i = 0; i < from.size(); ++i) into[i] = std::max(into[i], from[i]);
}

uint64_t at(const Clock& c, int id) { return static_cast<size_t>(id) < c.size() ? c[static_cast<size_t>(id)] : 0; }

struct StreamInfo {
  int device = 0;
  uint64_t operations = 0;  // enqueued so far; operation n has position n (from 1)
  Clock known;              // what this stream's next operation is ordered after
};

struct EventInfo {
  int stream = -1;
  Clock known;  // the recording stream's knowledge, itself included
};

struct Record {
  int stream;
  uint64_t position;
  Access access;
  std::string what;
};

// How many earlier accesses are compared with each new one. Work older than
// this is ordered by the step's synchronisations in practice; a window keeps
// the check linear.
constexpr size_t kWindow = 4096;

std::mutex mutex;
std::vector<StreamInfo> streams;                   // by id
std::map<const CUstream_st*, int> ids;             // non-null streams
std::vector<int> default_stream_of_device;         // device -> id
std::map<const CUevent_st*, EventInfo> event_info;
Clock host_known;                                  // what the host has waited for
std::deque<Record> history;
uint64_t races = 0;

int new_stream(int device) {
  streams.push_back(StreamInfo{device, 0, {}});
  return static_cast<int>(streams.size()) - 1;
}

int id_locked(cudaStream_t stream) {
  if (stream == nullptr) {
    const int device = current_device();
    if (default_stream_of_device.size() <= static_cast<size_t>(device)) {
      default_stream_of_device.resize(static_cast<size_t>(device) + 1, -1);
    }
    int& id = default_stream_of_device[static_cast<size_t>(device)];
    if (id < 0) id = new_stream(device);
    return id;
  }
  auto it = ids.find(stream);
  if (it != ids.end()) return it->second;
  const int id = new_stream(current_device());
  ids.emplace(stream, id);
  return id;
}

bool overlaps(const Access& a, const Access& b) {
  const auto a0 = reinterpret_cast<uintptr_t>(a.begin), b0 = reinterpret_cast<uintptr_t>(b.begin);
  if (a.bytes == 0 && b.bytes == 0) return a0 == b0;
  if (a.bytes == 0) return a0 >= b0 && a0 < b0 + b.bytes;
  if (b.bytes == 0) return b0 >= a0 && b0 < a0 + a.bytes;
  return a0 < b0 + b.bytes && b0 < a0 + a.bytes;
}

// A race fails the process: at exit (so every race of the run is reported
// first) the exit status becomes 70 unless RWKV_CUDA_EMULATOR_RACES=report.
// Read at each race, so a test that makes races on purpose can opt out.
void fail_at_exit() {
  const char* mode = std::getenv("RWKV_CUDA_EMULATOR_RACES");
  if (mode != nullptr && std::strcmp(mode, "report") == 0) return;
  static std::once_flag once;
  std::call_once(once, [] {
    std::atexit([] {
      std::fprintf(stderr,
                   "cuda emulator: %llu stream race(s) found (reported above); exiting with status 70 "
                   "(RWKV_CUDA_EMULATOR_RACES=report only reports them)\n",
                   static_cast<unsigned long long>(races));
      std::fflush(stderr);
      std::_Exit(70);
    });
  });
}

std::string stream_name(int id) {
  const StreamInfo& s = streams[static_cast<size_t>(id)];
  for (size_t d = 0; d < default_stream_of_device.size(); ++d)
    if (default_stream_of_device[d] == id) return "the default stream of device " + std::to_string(d);
  return "stream #" + std::to_string(id) + " of device " + std::to_string(s.device);
}

// The host has seen every operation of stream `id` complete, and so
// everything that stream was ordered after.
void host_learns_locked(int id) {
  const StreamInfo& s = streams[static_cast<size_t>(id)];
  merge(host_known, s.known);
  if (host_known.size() <= static_cast<size_t>(id)) host_known.resize(static_cast<size_t>(id) + 1, 0);
  host_known[static_cast<size_t>(id)] = std::max(host_known[static_cast<size_t>(id)], s.operations);
}

}  // namespace

int stream_id(cudaStream_t stream) {
  std::lock_guard<std::mutex> lock(mutex);
  return id_locked(stream);
}

void register_stream(cudaStream_t stream, int device) {
  std::lock_guard<std::mutex> lock(mutex);
  ids[stream] = new_stream(device);
}

void order_operation(cudaStream_t stream, const char* what, const Access* accesses, size_t count) {
  note_device_work();
  std::lock_guard<std::mutex> lock(mutex);
  const int id = id_locked(stream);
  StreamInfo& s = streams[static_cast<size_t>(id)];
  merge(s.known, host_known);
  const uint64_t position = ++s.operations;
  if (s.known.size() <= static_cast<size_t>(id)) s.known.resize(static_cast<size_t>(id) + 1, 0);
  s.known[static_cast<size_t>(id)] = position;  // in order with itself
  const bool several_streams = streams.size() > 1;
  for (size_t i = 0; i < count; ++i) {
    const Access& access = accesses[i];
    if (access.begin == nullptr) continue;
    if (several_streams) {
      for (const Record& r : history) {
        if (r.stream == id || (!r.access.write && !access.write)) continue;
        if (at(s.known, r.stream) >= r.position || !overlaps(r.access, access)) continue;
        ++races;
        fail_at_exit();
        report("stream race: " + std::string(what) + " on " + stream_name(id) + (access.write ? " writes " : " reads ") +
               describe_pointer(access.begin) + ", which " + r.what + " on " + stream_name(r.stream) +
               (r.access.write ? " writes" : " reads") + " with no event ordering the two (a GPU may run them "
               "in either order or at once: add cudaEventRecord + cudaStreamWaitEvent)");
        break;  // one report per access
      }
    }
    history.push_back(Record{id, position, access, what});
    if (history.size() > kWindow) history.pop_front();
  }
}

void order_copy(cudaStream_t stream, const char* what, const void* dst, size_t dst_bytes, const void* src,
                size_t src_bytes) {
  const Access accesses[2] = {{device_of_range(dst, 1) >= 0 ? dst : nullptr, dst_bytes, true},
                              {device_of_range(src, 1) >= 0 ? src : nullptr, src_bytes, false}};
  order_operation(stream, what, accesses, 2);
}

void event_recorded(cudaEvent_t event, cudaStream_t stream) {
  std::lock_guard<std::mutex> lock(mutex);
  const int id = id_locked(stream);
  StreamInfo& s = streams[static_cast<size_t>(id)];
  merge(s.known, host_known);
  EventInfo info{id, s.known};
  if (info.known.size() <= static_cast<size_t>(id)) info.known.resize(static_cast<size_t>(id) + 1, 0);
  info.known[static_cast<size_t>(id)] = s.operations;
  event_info[event] = std::move(info);
}

void stream_waits(cudaStream_t stream, cudaEvent_t event) {
  std::lock_guard<std::mutex> lock(mutex);
  const int id = id_locked(stream);
  auto it = event_info.find(event);
  if (it == event_info.end()) return;  // never recorded: waiting for it is a no-op, as in CUDA
  merge(streams[static_cast<size_t>(id)].known, it->second.known);
}

void event_forgotten(cudaEvent_t event) {
  std::lock_guard<std::mutex> lock(mutex);
  event_info.erase(event);
}

void host_waited_for_stream(cudaStream_t stream) {
  std::lock_guard<std::mutex> lock(mutex);
  host_learns_locked(id_locked(stream));
}

void host_waited_for_default_stream(int device) {
  std::lock_guard<std::mutex> lock(mutex);
  if (default_stream_of_device.size() <= static_cast<size_t>(device)) return;  // it never ran anything
  const int id = default_stream_of_device[static_cast<size_t>(device)];
  if (id >= 0) host_learns_locked(id);
}

void host_waited_for_event(cudaEvent_t event) {
  std::lock_guard<std::mutex> lock(mutex);
  auto it = event_info.find(event);
  if (it != event_info.end()) merge(host_known, it->second.known);
}

void host_waited_for_device(int device) {
  std::lock_guard<std::mutex> lock(mutex);
  for (size_t id = 0; id < streams.size(); ++id)
    if (streams[id].device == device) host_learns_locked(static_cast<int>(id));
}

void memory_freed(const void* begin, size_t bytes, int device) {
  host_waited_for_device(device);
  std::lock_guard<std::mutex> lock(mutex);
  const Access freed{begin, bytes, true};
  std::erase_if(history, [&](const Record& r) { return overlaps(r.access, freed); });
}

uint64_t stream_races_found() {
  std::lock_guard<std::mutex> lock(mutex);
  return races;
}

}  // namespace cuda_emulator
