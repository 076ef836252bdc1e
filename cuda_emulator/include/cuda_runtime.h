// CUDA emulator: what <cuda_runtime.h> gives a .cu file, the host API plus
// the device side (builtin indices, __syncthreads, warp shuffles, intrinsics)
// and kernel launches run by the emulator's block scheduler.
#pragma once

#include "cuda_runtime_api.h"
#include "cuda_emulator/device_builtins.h"
#include "cuda_emulator/launch.h"
