// CUDA emulator: kernel launches. launch(kernel, grid, block, shared, stream,
// args...) is what `kernel<<<grid, block, shared, stream>>>(args...)` does on
// a GPU, run on the CPU: the arguments are converted to the kernel's
// parameter types once (as the launch copies them to the device), every
// pointer argument is checked to be null or emulated device memory of the
// current device (a host pointer handed to a kernel is the classic GPU bug
// that a CPU run would otherwise hide), then the grid runs before launch
// returns (streams are synchronous here). A bad launch records its error for
// cudaGetLastError, as on a GPU, and reports what was wrong.
#pragma once

#include <cstddef>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "cuda_runtime_api.h"

namespace cuda_emulator {

// Checks one pointer argument (index counts from 0); false after recording
// cudaErrorInvalidValue and reporting.
bool check_kernel_pointer(const void* ptr, int index, const char* type_name);

// Runs body(context) once for every thread of the grid (blocks in order, the
// threads of a block as fibers), after validating the launch configuration
// and stream; records a launch error instead when they are invalid.
void run_grid(dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream, void (*body)(void*), void* context);

// Orders the launch with other streams' work (src/stream_order.h): each
// pointer argument is an access, a write unless it points to const.
// `signature` names the kernel's parameter types for messages.
void order_kernel(cudaStream_t stream, const char* signature, const void* const* pointers, const bool* writes,
                  size_t count);

template <typename T>
void collect_pointer(const T& value, const void** pointers, bool* writes, size_t& count) {
  if constexpr (std::is_pointer_v<T>) {
    pointers[count] = static_cast<const void*>(value);
    writes[count] = !std::is_const_v<std::remove_pointer_t<T>>;
    ++count;
  }
}

template <typename T>
bool check_kernel_argument(const T& value, int index) {
  if constexpr (std::is_pointer_v<T>) {
    return check_kernel_pointer(static_cast<const void*>(value), index, typeid(T).name());
  } else {
    return true;
  }
}

template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
            Args&&... args) {
  static_assert(sizeof...(Params) == sizeof...(Args), "kernel launched with the wrong number of arguments");
  using Arguments = std::tuple<std::decay_t<Params>...>;
  Arguments arguments(std::forward<Args>(args)...);
  bool valid = true;
  std::apply(
      [&valid](const auto&... value) {
        int index = 0;
        ((valid = check_kernel_argument(value, index++) && valid), ...);
      },
      arguments);
  if (!valid) return;
  const void* pointers[sizeof...(Params) + 1] = {};
  bool writes[sizeof...(Params) + 1] = {};
  size_t pointer_count = 0;
  std::apply([&](const auto&... value) { (collect_pointer(value, pointers, writes, pointer_count), ...); }, arguments);
  order_kernel(stream, __PRETTY_FUNCTION__, pointers, writes, pointer_count);
  struct Context {
    void (*kernel)(Params...);
    Arguments* arguments;
  } context{kernel, &arguments};
  // Each thread gets its own copies of the parameters, as each GPU thread
  // reads them from constant memory and may modify its copy.
  run_grid(grid, block, shared_bytes, stream,
           [](void* c) {
             auto* ctx = static_cast<Context*>(c);
             std::apply(ctx->kernel, *ctx->arguments);
           },
           &context);
}

}  // namespace cuda_emulator
