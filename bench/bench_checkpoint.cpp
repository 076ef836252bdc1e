// Checkpoint speed: how fast a rank writes and reads its checkpoint, and how
// long training is blocked by a background save.
//
//   rwkv-bench-checkpoint [--shape 169m|430m|tiny] [--dir DIR] [--repeats N]
//
// The checkpoint holds what rwkv-train saves: every parameter of the shape
// with its two AdamW moments (f32), so 12 bytes per parameter. Measured:
//   save GB/s         CheckpointStore::save (shard written and fsynced, hashed,
//                     manifest, rename, commit marker) / checkpoint bytes
//   load GB/s         open with every file hashed, then read every tensor
//   load (slices)     the same with per-slice verification (what a resuming rank does)
//   async blocked ms  time inside save_async (the host snapshot): training waits only that long
//   async total ms    until the background write is committed
// The page cache is warm for the load (the file was just written): load GB/s
// is the memory-and-hash rate, not the disk's. Prints readable lines, then
// one JSON line.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "checkpoint/checkpoint_store.h"
#include "core/threads.h"
#include "core/timer.h"
#include "trainer/rwkv4_model.h"

namespace {

using namespace rwkv;

Rwkv4Shape shape_named(const std::string& name) {
  if (name == "tiny") return {4, 128, 257, 512};
  if (name == "169m") return {12, 768, 50277, 3072};
  if (name == "430m") return {24, 1024, 50277, 4096};
  std::fprintf(stderr, "rwkv-bench-checkpoint: --shape expects tiny, 169m or 430m, got '%s'\n", name.c_str());
  std::exit(2);
}

checkpoint::SaveRequest request_for(const ParameterStore& params, int64_t step) {
  checkpoint::SaveRequest r;
  r.step = step;
  for (const NamedTensor& p : params.entries())
    for (const char* kind : {"param", "adam_m", "adam_v"}) r.tensors.push_back({p.name, kind, p.value, {}, {}});
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::string shape_name = "169m";
  std::string dir = (std::filesystem::temp_directory_path() / ("rwkv_bench_ckpt_" + std::to_string(::getpid()))).string();
  int repeats = 2;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "usage: rwkv-bench-checkpoint [--shape tiny|169m|430m] [--dir DIR] [--repeats N]\n");
      return 2;
    }
    const std::string v = argv[++i];
    if (a == "--shape") shape_name = v;
    else if (a == "--dir") dir = v;
    else if (a == "--repeats") repeats = std::max(1, std::atoi(v.c_str()));
    else {
      std::fprintf(stderr, "rwkv-bench-checkpoint: unknown flag %s\n", a.c_str());
      return 2;
    }
  }
  const Rwkv4Shape shape = shape_named(shape_name);
  ParameterStore params = declare_rwkv4_parameters(shape, DType::F32);
  init_rwkv4_reference(params, shape, 1, 1e-4);
  const checkpoint::SaveRequest base = request_for(params, 1);
  double bytes = 0;
  for (const checkpoint::CheckpointTensor& t : base.tensors) bytes += static_cast<double>(t.tensor.numel()) * 4.0;

  double save_s = 1e30, load_s = 1e30, slice_load_s = 1e30, blocked_ms = 1e30, async_ms = 1e30;
  std::filesystem::remove_all(dir);
  checkpoint::CheckpointStore store(dir, 1, 0);
  for (int r = 0; r < repeats; ++r) {
    checkpoint::SaveRequest req = base;
    req.step = 2 * r + 1;
    Timer t;
    const std::string written = store.save(req);
    save_s = std::min(save_s, t.seconds());

    t.reset();
    {
      checkpoint::LoadedCheckpoint c(written, checkpoint::Verify::AllFiles);
      for (NamedTensor& p : params.entries()) c.read_into(p.name, "param", p.value);
      for (NamedTensor& p : params.entries()) c.read_into(p.name, "adam_m", p.value);
      for (NamedTensor& p : params.entries()) c.read_into(p.name, "adam_v", p.value);
    }
    load_s = std::min(load_s, t.seconds());
    t.reset();
    {
      checkpoint::LoadedCheckpoint c(written, checkpoint::Verify::WhenRead);
      for (const char* kind : {"param", "adam_m", "adam_v"})
        for (NamedTensor& p : params.entries()) c.read_region(p.name, kind, {}, p.value);
    }
    slice_load_s = std::min(slice_load_s, t.seconds());

    req.step = 2 * r + 2;
    t.reset();
    store.save_async(req);
    blocked_ms = std::min(blocked_ms, t.millis());
    store.wait();
    async_ms = std::min(async_ms, t.millis());
  }
  std::filesystem::remove_all(dir);
  const double gb = bytes / 1e9;
  std::printf("checkpoint of RWKV-4 %s (L%lld C%lld V%lld): %.3f GB (params + AdamW moments, f32), best of %d, %d threads\n",
              shape_name.c_str(), (long long)shape.n_layer, (long long)shape.n_embd, (long long)shape.vocab_size, gb,
              repeats, num_threads());
  std::printf("  save              %7.2f GB/s  (%.2f s; written, fsynced, hashed, committed)\n", gb / save_s, save_s);
  std::printf("  load (all files)  %7.2f GB/s  (%.2f s; every file hashed, every tensor read)\n", gb / load_s, load_s);
  std::printf("  load (slices)     %7.2f GB/s  (%.2f s; each slice hashed as it is read)\n", gb / slice_load_s, slice_load_s);
  std::printf("  async save: training blocked %.1f ms (host snapshot), committed after %.1f ms\n", blocked_ms, async_ms);
  std::printf("{\"bench\":\"checkpoint\",\"shape\":\"%s\",\"bytes\":%.0f,\"save_gb_s\":%.3f,\"load_gb_s\":%.3f,"
              "\"slice_load_gb_s\":%.3f,\"async_blocked_ms\":%.2f,\"async_total_ms\":%.2f}\n",
              shape_name.c_str(), bytes, gb / save_s, gb / load_s, gb / slice_load_s, blocked_ms, async_ms);
  return 0;
}
