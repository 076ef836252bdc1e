// Every parallel layout trains like the single-rank run: rwkv-train's
// training loop on this job's ranks (layout from RWKV_TEST_LAYOUT, e.g.
// "2 2 1 1f1b"), and on every rank also the single-rank reference in-process.
// The loss of every step and, after the last step, every parameter slice must
// match within fp32 tolerance (the layouts sum in other orders).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "checkpoint/checkpoint_store.h"
#include "mpi_test_util.h"
#include "training_fixture.h"
#include "parallel/data_parallel.h"
#include "parallel/flat_layout.h"
#include "parallel/process_groups.h"
#include "tests/unit/test_util.h"
#include "trainer/config.h"
#include "trainer/device_groups.h"
#include "trainer/precision_plan.h"
#include "trainer/rwkv4_model.h"
#include "trainer/train_loop.h"

namespace rwkv::parallel {
namespace {

namespace fs = std::filesystem;

struct Layout {
  int dp = 1, tp = 1, pp = 1;
  std::string schedule = "1f1b";
  bool zero = false;
  bool uneven = false;  // pp 2 with stage_layers [1, 3]
  bool bf16_wire = false;  // parallel.grad_reduce_dtype: bf16 (the dp gradient buckets rounded on the wire)
  bool blend = false;      // data.train_weights: a mixture of two datasets (the reference trains on it too)
  bool dropout = false;    // train.dropout 0.2 (the reference too: the masks follow the samples)
  bool freeze = false;     // train.freeze [emb.weight, "blocks.0.*", "blocks.2.att.*"] (the reference too)
};

Layout layout_from_env() {
  Layout l;
  if (const char* env = std::getenv("RWKV_TEST_LAYOUT")) {
    std::istringstream in(env);
    in >> l.dp >> l.tp >> l.pp >> l.schedule;
    std::string flag;
    while (in >> flag) {
      l.zero = l.zero || flag == "zero";
      l.uneven = l.uneven || flag == "uneven";
      l.bf16_wire = l.bf16_wire || flag == "bf16wire";
      l.blend = l.blend || flag == "blend";
      l.dropout = l.dropout || flag == "dropout";
      l.freeze = l.freeze || flag == "freeze";
    }
  }
  return l;
}

TEST(MpiLayouts, EveryLayoutTrainsLikeOneRank) {
  const Layout layout = layout_from_env();
  ASSERT_EQ(layout.dp * layout.tp * layout.pp, test::world_size()) << "RWKV_TEST_LAYOUT does not match -np";
  // RWKV_TEST_DEVICE=cuda (label cuda): the same checks with every rank on a
  // GPU of its own and NCCL between them, against the single-GPU run.
  const char* device_env = std::getenv("RWKV_TEST_DEVICE");
  const bool on_gpu = device_env != nullptr && std::string(device_env) == "cuda";
  // RWKV_TEST_PRECISION=bf16 (GPU only): bf16 mixed precision in the layout
  // and the reference. Both round activations to bf16, but after sums in
  // different orders, so the bounds are bf16's (docs/testing.md): losses 2e-2
  // relative, and per tensor a mean parameter difference below lr / 10 after
  // 4 AdamW steps (see below).
  const char* precision_env = std::getenv("RWKV_TEST_PRECISION");
  const bool bf16 = precision_env != nullptr && std::string(precision_env) == "bf16";
  // A bf16 gradient wire rounds each replica's gradient (2^-9 relative)
  // before the dp sum, where the reference does not round at all. Where the
  // replicas' gradients nearly cancel, the rounded sum can change sign, and
  // AdamW then moves that element by a step the other way: the parameters
  // get bf16's per-tensor mean bound below; losses 1e-4 relative (measured
  // 5e-6 relative and a worst mean parameter difference of 2.4e-5).
  const bool wire = layout.bf16_wire && layout.dp > 1;
  const double loss_rtol = bf16 ? 2e-2 : wire ? 1e-4 : 2e-5, param_rtol = 1e-3, param_atol = 1e-4;
  constexpr double kBf16MeanParamDiff = 5e-4;  // lr / 6
  constexpr size_t kBf16MinElements = 256;     // smaller tensors: a few flipped elements dominate the mean
  double worst_mean_abs = 0.0;
  if (on_gpu && (!cuda_available() || cuda_device_count() < test::world_size()))
    GTEST_SKIP() << "needs " << test::world_size() << " GPUs (one per rank), found "
                 << (cuda_available() ? cuda_device_count() : 0) << ": " << (cuda_available() ? "" : cuda_unavailable_reason());
  std::string tag = std::getenv("RWKV_TEST_LAYOUT") ? std::getenv("RWKV_TEST_LAYOUT") : "1 1 1";
  for (char& c : tag) c = c == ' ' ? '_' : c;
  const fs::path dir = fs::temp_directory_path() / ("rwkv_layouts_" + tag + "_" + std::to_string(::getppid()));
  const std::string prefix = test::write_training_dataset(dir);
  // Checkpoints: the single-rank reference runs write into a directory of
  // their own on every rank; the layouts into one directory all ranks share.
  auto config_for = [&](int dp, int tp, int pp, const std::string& schedule, bool zero) {
    const fs::path ckpt = dp * tp * pp == 1 ? dir / ("ckpt_rank" + std::to_string(test::world_rank())) : dir / "ckpt_main";
    const std::string stages = layout.uneven && pp == 2 ? "[1, 3]" : "";
    trainer::TrainConfig c =
        test::small_run_config(prefix, test::SmallRun{dp, tp, pp, schedule, zero, stages, layout.blend}, ckpt.string());
    if (on_gpu) c.device = trainer::DeviceKind::Cuda;
    if (layout.dropout) c.train.dropout = 0.2;
    if (layout.freeze) c.train.freeze = {"emb.weight", "blocks.0.*", "blocks.2.att.*"};
    if (bf16) c.train.precision = Precision::BF16;
    // Small dp buckets (4 KiB, dozens of them for this model), so that the
    // overlapped reduction really starts buckets in the middle of backward.
    c.parallel.bucket_mib = 1.0 / 256;
    if (layout.bf16_wire && dp * tp * pp > 1) c.parallel.grad_reduce_dtype = Precision::BF16;
    return c;
  };
  auto snapshot = [](const ParameterStore& p) {
    ParameterStore copy = p.zeros_like();
    for (size_t i = 0; i < p.entries().size(); ++i) copy.entries()[i].value.copy_from(p.entries()[i].value);
    return copy;
  };
  // The reference, on this rank alone.
  ParameterStore reference;
  trainer::TrainOptions ref_options;
  ref_options.on_finish = [&](const ParameterStore& p) { reference = snapshot(p); };
  const trainer::TrainConfig ref_config = config_for(1, 1, 1, "1f1b", false);
  const trainer::TrainSummary expected = trainer::run_training(ref_config, ref_options, nullptr);

  ProcessGroups groups(layout.dp, layout.tp, layout.pp);
  // Which communicators the model's tensors travel on: on the CPU the MPI
  // groups themselves (none for a group of one); a GPU layout takes NCCL for
  // the same groups.
  {
    const trainer::DeviceGroups comms(&groups, Device::cpu());
    EXPECT_EQ(comms.tp(), layout.tp > 1 ? &groups.tp() : nullptr);
    EXPECT_EQ(comms.dp(), layout.dp > 1 ? static_cast<Communicator*>(&groups.dp()) : nullptr);
    EXPECT_EQ(comms.pp(), layout.pp > 1 ? static_cast<Communicator*>(&groups.pp()) : nullptr);
    for (const auto& [kind, size] : {std::pair{GroupKind::Tp, layout.tp}, {GroupKind::Dp, layout.dp}, {GroupKind::Pp, layout.pp}}) {
      EXPECT_EQ(comms.kind(kind), size > 1 ? trainer::DeviceCommKind::Mpi : trainer::DeviceCommKind::None);
      EXPECT_EQ(trainer::device_comm_kind(Device::cuda(0), size),
                size > 1 ? trainer::DeviceCommKind::Nccl : trainer::DeviceCommKind::None);
      EXPECT_EQ(comms.extra_bytes_sent(kind), 0u);
    }
    EXPECT_EQ(trainer::select_rank_device(Device::cpu(), &groups), Device::cpu());
  }
  ParameterStore mine;
  trainer::TrainOptions options;
  options.on_finish = [&](const ParameterStore& p) { mine = snapshot(p); };
  const trainer::TrainSummary got =
      trainer::run_training(config_for(layout.dp, layout.tp, layout.pp, layout.schedule, layout.zero), options, &groups);

  // Every byte each rank sent in the last step, per group, equals the formula
  // (tensor-parallel blocks, pipeline transfers, gradient reduction, scalars).
  {
    const trainer::TrainConfig config = config_for(layout.dp, layout.tp, layout.pp, layout.schedule, layout.zero);
    const trainer::RankCoordinates coords{groups.tp().rank(), groups.dp().rank(), groups.pp().rank(), groups.mp().rank()};
    const trainer::StepCommBytes want = trainer::expected_step_bytes(config, coords, mine);
    EXPECT_EQ(got.last_step_sent, want) << "sent " << got.last_step_sent.str() << "\n  formula " << want.str();
    EXPECT_EQ(got.last_step_sent.total() > 0, test::world_size() > 1);
    std::printf("rank %d sent in the last step: %s\n", test::world_rank(), got.last_step_sent.str().c_str());
  }
  // ZeRO-1 keeps only this rank's shard of the AdamW moments.
  {
    const parallel::FlatLayout flat(mine);
    const int64_t bucket = bucket_elems_for(config_for(1, 1, 1, "1f1b", true).parallel.bucket_bytes(), DType::F32);
    const int64_t moments =
        layout.zero && layout.dp > 1 ? ZeroPartition(flat, layout.dp, kZeroAlign, bucket).shard_numel() : flat.numel();
    EXPECT_EQ(got.optimizer_state_bytes, static_cast<uint64_t>(2 * moments * 4));
    // ZeRO-1 in bf16 frees the f32 master of every tensor with a bf16 copy:
    // those masters exist only as dp shards until the final all-gather.
    uint64_t copied = 0;
    const PrecisionPlan plan(bf16 ? Precision::BF16 : Precision::FP32);
    for (const NamedTensor& p : mine.entries())
      if (plan.param(p.name).has_copy()) copied += static_cast<uint64_t>(p.value.numel()) * 4;
    EXPECT_EQ(got.master_bytes_released, layout.zero && layout.dp > 1 ? copied : 0);
    if (layout.zero && bf16) {
      EXPECT_GT(copied, 0u);
      // The bf16 buckets' gathers land in the copies in place and run into
      // the next forward; the f32 buckets (LayerNorm, time_* runs) complete.
      EXPECT_GT(got.zero_gathers_overlapped, 0);
    } else {
      EXPECT_EQ(got.zero_gathers_overlapped, 0);
    }
  }
  ASSERT_EQ(got.losses.size(), expected.losses.size());
  for (size_t i = 0; i < got.losses.size(); ++i)
    EXPECT_NEAR(got.losses[i], expected.losses[i], loss_rtol * std::abs(expected.losses[i])) << "step " << i + 1;
  ParameterStore expected_slices = mine.zeros_like();
  copy_partition_slices(reference, expected_slices);
  for (size_t i = 0; i < mine.entries().size(); ++i) {
    const NamedTensor& p = mine.entries()[i];
    // Adam divides by sqrt(v): a gradient element near zero that a different
    // summation order nudges can move its parameter by a few percent of an lr
    // step (lr 3e-3 here), so the bound is 1e-4 absolute after 4 steps.
    if (!bf16 && !wire) {
      rwkv::test::expect_close(p.value, expected_slices.entries()[i].value, param_rtol, param_atol, p.name);
      continue;
    }
    // bf16 (and the bf16 wire): AdamW moves each parameter by up to ~lr a step whatever its
    // gradient, and a near-zero gradient element whose sign the bf16 rounding
    // flips moves the other way, so single elements may differ by a step
    // (3e-3). The mean difference stays far below: a wrong slice or sum
    // would shift most elements of a tensor by O(lr). Tensors of a few
    // elements (time_first, time_decay slices) are left to the loss check: a
    // handful of flips dominates their mean.
    if (p.value.numel() < static_cast<int64_t>(kBf16MinElements)) continue;
    const std::vector<double> a = rwkv::test::as_doubles(p.value), b = rwkv::test::as_doubles(expected_slices.entries()[i].value);
    double mean_abs = 0.0;
    for (size_t j = 0; j < a.size(); ++j) mean_abs += std::abs(a[j] - b[j]);
    mean_abs /= static_cast<double>(std::max<size_t>(a.size(), 1));
    EXPECT_LE(mean_abs, kBf16MeanParamDiff) << p.name;
    worst_mean_abs = std::max(worst_mean_abs, mean_abs);
  }
  if (bf16 || wire)
    std::printf("rank %d %s: worst per-tensor mean parameter difference %.3g (bound %.3g)\n", test::world_rank(),
                bf16 ? "bf16" : "bf16 wire", worst_mean_abs, kBf16MeanParamDiff);
  double worst_loss = 0.0;
  for (size_t i = 0; i < got.losses.size() && i < expected.losses.size(); ++i)
    worst_loss = std::max(worst_loss, std::abs(got.losses[i] - expected.losses[i]) / std::abs(expected.losses[i]));
  std::printf("rank %d: worst relative loss difference from the single-rank run %.3g (bound %.3g)\n",
              test::world_rank(), worst_loss, loss_rtol);

  // The other pipeline schedule computes exactly the same step: GPipe and
  // 1F1B run the same micro-batches and accumulate their gradients in the
  // same order, so losses and parameters agree to the last bit.
  if (layout.pp > 1) {
    const std::string other = layout.schedule == "gpipe" ? "1f1b" : "gpipe";
    ParameterStore theirs;
    trainer::TrainOptions other_options;
    other_options.on_finish = [&](const ParameterStore& p) { theirs = snapshot(p); };
    const trainer::TrainSummary other_run = trainer::run_training(
        config_for(layout.dp, layout.tp, layout.pp, other, layout.zero), other_options, &groups);
    EXPECT_EQ(other_run.losses, got.losses) << layout.schedule << " vs " << other;
    for (size_t i = 0; i < mine.entries().size(); ++i)
      rwkv::test::expect_close(theirs.entries()[i].value, mine.entries()[i].value, 0.0, 0.0,
                               mine.entries()[i].name + " (" + other + ")");
  }
  // Data parallelism overlaps the bucket all-reduces (plain) or
  // reduce-scatters (ZeRO-1) with the last backward (the default): buckets
  // started while earlier blocks' backward still ran, and bit for bit the
  // same training as reducing everything after backward.
  if (layout.dp > 1) {
    EXPECT_GT(got.dp_buckets_started_early, 0);
    trainer::TrainConfig after = config_for(layout.dp, layout.tp, layout.pp, layout.schedule, layout.zero);
    after.parallel.overlap_grad_reduce = false;
    ParameterStore theirs;
    trainer::TrainOptions after_options;
    after_options.on_finish = [&](const ParameterStore& p) { theirs = snapshot(p); };
    const trainer::TrainSummary after_run = trainer::run_training(after, after_options, &groups);
    EXPECT_EQ(after_run.dp_buckets_started_early, 0);
    EXPECT_EQ(after_run.losses, got.losses) << "overlapped vs after backward";
    EXPECT_EQ(after_run.last_step_sent, got.last_step_sent);
    for (size_t i = 0; i < mine.entries().size(); ++i)
      rwkv::test::expect_close(theirs.entries()[i].value, mine.entries()[i].value, 0.0, 0.0,
                               mine.entries()[i].name + " (overlap off)");
  }
  // ZeRO-1 against plain data parallelism on the same layout: the shard of
  // the averaged gradient is the same elements as the all-reduced one, so the
  // AdamW updates agree; only the global gradient norm is summed in another
  // order (shard pieces, then over dp), which can move the clip factor by an
  // ulp: losses within 1e-6 relative, parameters within 1e-6 relative + 1e-7.
  if (layout.zero && layout.dp > 1) {
    ParameterStore plain;
    trainer::TrainOptions plain_options;
    plain_options.on_finish = [&](const ParameterStore& p) { plain = snapshot(p); };
    const trainer::TrainSummary plain_run = trainer::run_training(
        config_for(layout.dp, layout.tp, layout.pp, layout.schedule, false), plain_options, &groups);
    ASSERT_EQ(plain_run.losses.size(), got.losses.size());
    for (size_t i = 0; i < got.losses.size(); ++i)
      EXPECT_NEAR(got.losses[i], plain_run.losses[i], 1e-6 * std::abs(plain_run.losses[i])) << "zero vs dp, step " << i + 1;
    for (size_t i = 0; i < mine.entries().size(); ++i)
      rwkv::test::expect_close(mine.entries()[i].value, plain.entries()[i].value, 1e-6, 1e-7,
                               mine.entries()[i].name + " (zero vs dp)");
  }

  // The layout's checkpoint of step 2 (every rank wrote its shard, rank 0 the
  // manifest) reshards into one rank: resuming there continues with the
  // reference's losses.
  const fs::path shared = dir / "ckpt_layout";
  trainer::TrainConfig saving = config_for(layout.dp, layout.tp, layout.pp, layout.schedule, layout.zero);
  saving.checkpoint.dir = shared.string();
  const trainer::TrainSummary layout_run = trainer::run_training(saving, trainer::TrainOptions{}, &groups);
  // Background saves (each rank writes its shard on a thread; the commit
  // comes at a later step) give the same files, hash for hash.
  {
    trainer::TrainConfig async_saving = saving;
    async_saving.checkpoint.dir = (dir / "ckpt_async").string();
    async_saving.checkpoint.async = true;
    const trainer::TrainSummary async_run = trainer::run_training(async_saving, trainer::TrainOptions{}, &groups);
    EXPECT_EQ(async_run.losses, layout_run.losses);
    for (const char* step : {"step_00000002", "step_00000004"}) {
      const checkpoint::LoadedCheckpoint sync_ckpt((shared / step).string()),
          async_ckpt((fs::path(async_saving.checkpoint.dir) / step).string());
      ASSERT_EQ(async_ckpt.manifest().files.size(), sync_ckpt.manifest().files.size()) << step;
      for (size_t f = 0; f < sync_ckpt.manifest().files.size(); ++f)
        EXPECT_EQ(async_ckpt.manifest().files[f].xxh3, sync_ckpt.manifest().files[f].xxh3)
            << step << " " << sync_ckpt.manifest().files[f].name;
    }
  }
  // The same layout resumed from its own step-2 checkpoint continues bit for bit
  // (every collective sums in a fixed order).
  {
    trainer::TrainConfig resuming = saving;
    resuming.checkpoint.dir = (dir / "ckpt_layout_resume").string();
    if (test::world_rank() == 0) fs::create_directories(resuming.checkpoint.dir);
    MPI_Barrier(MPI_COMM_WORLD);
    if (test::world_rank() == 0)
      fs::copy(shared / "step_00000002", fs::path(resuming.checkpoint.dir) / "step_00000002", fs::copy_options::recursive);
    MPI_Barrier(MPI_COMM_WORLD);
    resuming.checkpoint.resume = "auto";
    const trainer::TrainSummary resumed = trainer::run_training(resuming, trainer::TrainOptions{}, &groups);
    ASSERT_EQ(resumed.losses.size(), 2u);
    EXPECT_EQ(resumed.losses, std::vector<double>(layout_run.losses.begin() + 2, layout_run.losses.end()));
  }
  // ZeRO-1 in other buckets (16 KiB: about 18 per rank; 25 MiB: one, the
  // one-shard-per-rank layout of earlier versions) reads the same moment
  // shards out of the step-2 checkpoint: the checkpoint holds tensor boxes,
  // not partitions. The gradient norm adds the shard's pieces in another
  // order, so the clip factor may move an ulp: losses within 1e-6.
  if (layout.zero && layout.dp > 1) {
    for (double bucket_mib : {1.0 / 64, 25.0}) {
      trainer::TrainConfig resuming = saving;
      resuming.parallel.bucket_mib = bucket_mib;
      resuming.checkpoint.dir = (dir / ("ckpt_buckets_" + std::to_string(bucket_mib))).string();
      resuming.checkpoint.resume = shared.string() + "/step_00000002";
      const trainer::TrainSummary resumed = trainer::run_training(resuming, trainer::TrainOptions{}, &groups);
      ASSERT_EQ(resumed.losses.size(), 2u);
      for (size_t i = 0; i < 2; ++i)
        EXPECT_NEAR(resumed.losses[i], layout_run.losses[i + 2], 1e-6 * std::abs(layout_run.losses[i + 2]))
            << "bucket_mib " << bucket_mib << " step " << i + 3;
    }
  }
  // A resume across layouts starts from the other layout's weights, which in
  // bf16 differ from the reference's by bf16 noise: its later losses then
  // differ by about as much (measured under the emulator: 7e-4 relative).
  const double cross_layout_rtol = bf16 || wire ? 5e-3 : 2e-4;
  // And back: the single-rank run's checkpoint of step 2 reshards into this layout.
  {
    trainer::TrainConfig resuming = saving;
    resuming.checkpoint.dir = (dir / "ckpt_back").string();
    resuming.checkpoint.resume = ref_config.checkpoint.dir + "/step_00000002";  // this rank's copy of the reference's
    const trainer::TrainSummary resumed = trainer::run_training(resuming, trainer::TrainOptions{}, &groups);
    ASSERT_EQ(resumed.losses.size(), 2u);
    for (size_t i = 0; i < 2; ++i)
      EXPECT_NEAR(resumed.losses[i], expected.losses[i + 2], cross_layout_rtol * std::abs(expected.losses[i + 2]))
          << "step " << i + 3;
  }
  if (test::world_rank() == 0) {
    fs::remove_all(shared / "step_00000004");
    trainer::TrainConfig resuming = ref_config;
    resuming.checkpoint.dir = shared.string();
    resuming.checkpoint.resume = "auto";
    const trainer::TrainSummary resumed = trainer::run_training(resuming, trainer::TrainOptions{}, nullptr);
    ASSERT_EQ(resumed.losses.size(), 2u);
    for (size_t i = 0; i < 2; ++i)
      EXPECT_NEAR(resumed.losses[i], expected.losses[i + 2], cross_layout_rtol * std::abs(expected.losses[i + 2]))
          << "resumed step " << i + 3;
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (test::world_rank() == 0) fs::remove_all(dir);
}

}  // namespace
}  // namespace rwkv::parallel
