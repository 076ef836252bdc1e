#include "trainer/train_loop.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>

#include "checkpoint/checkpoint_store.h"
#include "checkpoint/safetensors.h"
#include "core/log.h"
#include "core/memory_stats.h"
#include "core/threads.h"
#include "core/timer.h"
#include "data/sampler.h"
#include "data/prepare.h"
#include "data/token_dataset.h"
#include "core/file_io.h"
#include "data/tokenizer.h"
#include "kernels/gemm_peak.h"
#include "core/cuda_allocator.h"
#include "trainer/device_groups.h"
#include "kernels/reduce.h"
#include "launch/controller_client.h"
#include "parallel/data_parallel.h"
#include "parallel/flat_layout.h"
#include "parallel/zero_optimizer.h"
#include "parallel/mpi_runtime.h"
#include "parallel/process_groups.h"
#include "trainer/checkpoint_export.h"
#include "trainer/checkpoint_resume.h"
#include "trainer/frozen_parameters.h"
#include "trainer/checkpoint_saver.h"
#include "trainer/lr_schedule.h"
#include "trainer/pipeline_schedule.h"
#include "trainer/optimizer.h"
#include "trainer/rwkv4_model.h"
#include "trainer/training_data.h"
#include "trainer/zero_checkpoint.h"

namespace rwkv::trainer {

double training_flops_per_token(const ModelConfig& m) {
  const double C = static_cast<double>(m.n_embd), F = static_cast<double>(m.dim_ffn);
  const double matmul_params = static_cast<double>(m.n_layer) * (5.0 * C * C + 2.0 * C * F) +
                               static_cast<double>(m.vocab_size) * C;
  return 6.0 * matmul_params;
}

namespace {

rwkv::LrSchedule make_schedule(const TrainSection& t, int64_t total_steps) {
  rwkv::LrSchedule s;
  s.lr_init = t.lr_init;
  s.lr_final = t.lr_final;
  s.warmup_steps = t.warmup_steps;
  s.total_steps = total_steps;
  s.decay = t.lr_schedule;
  s.cooldown_fraction = t.cooldown_fraction;
  return s;
}

// Splits windows [B, T+1] into inputs [B, T] and next-token targets [B, T].
void split_windows(const std::vector<int32_t>& windows, int64_t B, int64_t T, Tensor& inputs, Tensor& targets) {
  int32_t* in = inputs.data<int32_t>();
  int32_t* out = targets.data<int32_t>();
  for (int64_t b = 0; b < B; ++b) {
    const int32_t* w = windows.data() + b * (T + 1);
    std::copy(w, w + T, in + b * T);
    std::copy(w + 1, w + T + 1, out + b * T);
  }
}

std::string mib(int64_t bytes) { return str_cat(bytes / (1024 * 1024), "MiB"); }

// A barrier over every rank of the job (no-op for one process).
struct MpiCommunicatorBarrier {
  parallel::ProcessGroups* groups;
  void operator()() const {
    if (groups) groups->world().barrier();
  }
};

}  // namespace

TrainSummary run_training(const TrainConfig& config, const TrainOptions& options, parallel::ProcessGroups* groups) {
  const ModelConfig& mc = config.model;
  const TrainSection& tc = config.train;
  const ParallelConfig& pc = config.parallel;
  const int64_t world = pc.dp * pc.tp * pc.pp;
  RWKV_CHECK(world == 1 || groups != nullptr, "parallel layout dp=", pc.dp, " x tp=", pc.tp, " x pp=", pc.pp, " = ",
             world, " ranks needs that many processes\n  ---> HINT: mpirun -np ", world, " rwkv-train --config ...");
  const int dp_rank = groups ? groups->topology().dp_rank() : 0;
  const int tp_rank = groups ? groups->topology().tp_rank() : 0;
  const int pp_rank = groups ? groups->topology().pp_rank() : 0;
  // One rank speaks for the job: tp and dp rank 0 of the last pipeline stage (it has the loss).
  const bool log_here = dp_rank == 0 && tp_rank == 0 && pp_rank == pc.pp - 1;
  auto say = [&](const auto&... parts) {
    if (log_here) log_info(parts...);
  };
  const Device requested = config.device == DeviceKind::Cuda ? Device::cuda() : Device::cpu();
  if (requested.is_cuda()) {
    RWKV_CHECK(cuda_available(), options.config_path, ": device is cuda, but ", cuda_unavailable_reason(),
               "\n  ---> HINT: run on a GPU node, or set device: cpu");
  }
  // Each rank's GPU (node-local rank), and the communicators its tensors
  // travel on: NCCL between GPUs, MPI between CPU processes.
  const Device device = select_rank_device(requested, groups);
  DeviceGroups comms(groups, device);
  const int local_ranks = groups ? parallel::node_info(groups->world().handle()).local_size : 1;
  set_num_threads(tc.threads > 0 ? static_cast<int>(tc.threads) : std::max(1, hardware_threads() / local_ranks));

  // --- data: the tokenizer must fit the model, and every token the vocabulary
  const std::unique_ptr<data::Tokenizer> tokenizer = data::load_tokenizer(config.data.tokenizer);
  RWKV_CHECK(tokenizer->vocab_size() <= mc.vocab_size, options.config_path, ": model.vocab_size is ", mc.vocab_size,
             " but data.tokenizer (", tokenizer->name(), ") has ", tokenizer->vocab_size(),
             " tokens\n  ---> HINT: set model.vocab_size to at least ", tokenizer->vocab_size());
  // Each data-parallel rank reads its rows of the global batch (data/sampler.h).
  data::BatchLayout layout{mc.ctx_len, tc.micro_batch, tc.micro_batch * tc.grad_accum * pc.dp, pc.dp};
  layout.validate();
  const TrainingData train_data(config, layout, options.config_path);
  const std::vector<ValidationSet> valid_sets = open_validation_sets(config);
  const int64_t steps = total_steps(config);
  const int64_t B = tc.micro_batch, T = mc.ctx_len;
  say("data: tokenizer ", tokenizer->name(), ", sampler ", to_string(config.data.sampler),
      config.data.train_weights.empty() ? std::string() : str_cat(", a mixture of ", config.data.train.size(), " datasets"));
  for (const std::string& line : train_data.describe(static_cast<uint64_t>(steps * layout.global_batch)))
    say("data: ", line);

  // --- model and optimizer: this rank's pipeline stage and tensor-parallel slice
  const Rwkv4Shape shape{mc.n_layer, mc.n_embd, mc.vocab_size, mc.dim_ffn};
  Rwkv4Partition part = Rwkv4Partition::whole(shape);
  part.tp_size = pc.tp;
  part.tp_rank = tp_rank;
  std::tie(part.layer_begin, part.layer_end) = stage_layers(mc.n_layer, pc.pp, pp_rank, stage_boundaries(pc.stage_layers));
  part.padded_vocab = padded_vocab_size(mc.vocab_size, pc.tp, pc.vocab_pad_multiple);
  Rwkv4Model model(shape, DType::F32, tc.recompute, device, part, comms.tp(), tc.precision);
  if (tc.precision == Precision::BF16)
    say("precision: bf16 (bf16 GEMM operands and activations; f32 master weights, gradients and AdamW state)");
  const PipelineStage stage{comms.pp(), pp_rank, static_cast<int>(pc.pp)};
  // Gradients over dp: a bucketed all-reduce, or with ZeRO-1 a reduce-scatter
  // into this rank's shard, AdamW on the shard, and an all-gather of the parameters.
  const bool zero = pc.zero && pc.dp > 1;
  std::unique_ptr<parallel::BucketedReduction> dp_reduction;  // GradAllReducer or ZeroOneSync
  parallel::ZeroOneSync* zero_sync = nullptr;                 // dp_reduction with ZeRO-1
  // The dtype the buckets travel in: the gradients' f32, or bf16 (half the bytes).
  const std::optional<DType> wire =
      pc.grad_reduce_dtype == Precision::BF16 ? std::optional<DType>(DType::BF16) : std::nullopt;
  if (zero) {
    auto sync = std::make_unique<parallel::ZeroOneSync>(model.params(), *comms.dp(), pc.bucket_bytes(),
                                                        parallel::kZeroAlign, wire);
    zero_sync = sync.get();
    dp_reduction = std::move(sync);
  } else if (pc.dp > 1) {
    dp_reduction = std::make_unique<parallel::GradAllReducer>(model.grads(), *comms.dp(), pc.bucket_bytes(), wire);
  }
  if (dp_reduction != nullptr && wire)
    say("dp gradient reduction in bf16 (each bucket rounded to bf16 on the wire; f32 accumulation and AdamW)");
  const bool overlap = dp_reduction != nullptr && pc.overlap_grad_reduce;
  init_rwkv4_reference(model.params(), shape, static_cast<uint64_t>(tc.seed), tc.lr_init);
  if (!tc.layerwise_lr) {
    for (NamedTensor& e : model.params().entries()) e.lr_multiplier = 1.0f;
  }
  // train.freeze: lr 0 (no update, no weight decay) and, each step, a zeroed
  // gradient (no share of the clipped norm, AdamW moments that stay 0).
  const FrozenParameters frozen = frozen_parameters(tc.freeze, shape, options.config_path);
  std::vector<bool> is_frozen(model.params().entries().size(), false);
  for (size_t i = 0; i < is_frozen.size(); ++i) {
    NamedTensor& e = model.params().entries()[i];
    if (!frozen.contains(e.name)) continue;
    is_frozen[i] = true;
    e.lr_multiplier = 0.0f;
  }
  const double frozen_flops = frozen_flops_per_token(config);  // work a step skips; left out of the MFU
  if (!frozen.names.empty()) {
    model.set_frozen(is_frozen);  // backward skips their weight-gradient GEMMs
    say("freeze: ", frozen.names.size(), " tensors (", frozen.parameters, " of ", parameter_count(mc),
        " parameters) keep their values; a step skips ",
        100.0 * frozen_flops / training_flops_per_token(mc), "% of the model FLOPs");
  }
  AdamWSettings settings;
  settings.beta1 = static_cast<float>(tc.beta1);
  settings.beta2 = static_cast<float>(tc.beta2);
  settings.eps = static_cast<float>(tc.adam_eps);
  settings.weight_decay = static_cast<float>(tc.weight_decay);
  settings.grad_clip = static_cast<float>(tc.grad_clip);
  // Plain: AdamW moments for every local parameter. ZeRO-1: only this dp
  // rank's shard of the f32 masters and their moments (3 S instead of 2 N
  // floats beside the weights; in bf16 the masters of the copied tensors are
  // then freed: 4 bytes a parameter); the checkpoint holds the shards as they
  // are (zero_checkpoint.h), so no rank ever gathers them.
  const int64_t local_parameters = model.params().numel();
  int64_t master_bytes_released = 0;
  std::optional<AdamWOptimizer> optimizer;
  std::unique_ptr<parallel::ShardedAdamW> sharded;
  std::vector<ShardRegion> zero_regions;
  if (zero) {
    sharded = std::make_unique<parallel::ShardedAdamW>(model.params(), zero_sync->partition(), dp_rank, settings);
    zero_regions = shard_regions(zero_sync->partition(), dp_rank, model.params());
    master_bytes_released = model.release_copied_masters();
    if (const int64_t freed = master_bytes_released; freed > 0)
      say("ZeRO-1: the f32 masters of the bf16-copied tensors live only as dp shards (", mib(freed),
          " freed on this rank)");
  } else {
    optimizer.emplace(model.params(), settings);
    optimizer->set_param_copies(model.compute_copies());  // bf16: AdamW rewrites the compute copies
  }
  const rwkv::LrSchedule schedule = make_schedule(tc, steps);
  const double flops_per_token = training_flops_per_token(mc) - frozen_flops;
  const double stated_peak = options.peak_gflops > 0 ? options.peak_gflops : tc.peak_gflops;
  const double peak = stated_peak > 0 ? stated_peak : measure_gemm_peak_gflops(device, 0.5);
  // The step log's memory: host RSS on the CPU; on a GPU the bytes the
  // caching allocator hands out now and at peak (what limits the batch).
  auto memory_now = [&]() -> std::string {
    if (!device.is_cuda()) return mib(host_memory().resident_bytes);
    const CachingAllocatorStats gpu = cuda_memory_stats(device.index);
    return str_cat(mib(static_cast<int64_t>(gpu.bytes_in_use)), " gpu_peak=", mib(static_cast<int64_t>(gpu.peak_bytes_in_use)),
                   " gpu_reserved=", mib(static_cast<int64_t>(gpu.bytes_reserved)));
  };
  // MFU of the job: its tokens/s against every rank's peak (each rank does
  // about 1/world of the model's FLOPs).
  auto job_mfu = [&](double tok_s) { return tok_s * flops_per_token / (peak * 1e9 * static_cast<double>(world)); };
  say("model: RWKV-4 L", mc.n_layer, " C", mc.n_embd, " F", mc.dim_ffn, " V", mc.vocab_size, " (",
      parameter_count(mc), " parameters); layout dp=", pc.dp, " x tp=", pc.tp, " x pp=", pc.pp,
      pc.pp > 1 ? str_cat(" (", to_string(pc.schedule), ")") : std::string(), "; this rank holds ",
      local_parameters, " on ", device.str(), " with ", num_threads(), " CPU threads; MFU against ",
      stated_peak > 0 ? "the stated " : "the measured ", peak, " GFLOP/s per rank");
  say("train: ", steps, " steps of ", layout.global_batch, " x ", T, " tokens (micro_batch ", B, " x grad_accum ",
           tc.grad_accum, "), lr ", tc.lr_init, " -> ", tc.lr_final, " (", to_string(tc.lr_schedule), ", warmup ",
           tc.warmup_steps, tc.lr_schedule == LrDecay::Wsd ? str_cat(", cooldown ", tc.cooldown_fraction) : std::string(), ")",
           tc.dropout > 0 ? str_cat(", dropout ", tc.dropout) : std::string());

  std::vector<int32_t> windows(static_cast<size_t>(B * (T + 1)));
  const float loss_scale = 1.0f / static_cast<float>(B * T * tc.grad_accum);
  const float l2wrap_scale = tc.l2wrap ? 1.0f / static_cast<float>(tc.grad_accum) : 0.0f;

  // A value known on the last pipeline stage, averaged over dp and then given
  // to every rank (collectives every rank takes part in, in the same order).
  auto share_from_last_stage = [&](double value, bool average_over_dp) {
    if (!groups) return value;
    Tensor x = Tensor::from_vector<double>({value}, {1});
    if (average_over_dp && pc.dp > 1) {
      groups->dp().all_reduce_sum(x);
      x.data<double>()[0] /= static_cast<double>(pc.dp);
    }
    if (pc.pp > 1) groups->pp().broadcast(x, static_cast<int>(pc.pp - 1));
    return x.data<double>()[0];
  };
  // The global gradient norm: each parameter counted once over the tp and pp
  // ranks (replicated ones on tp rank 0 only); dp replicas agree after the reduction.
  // The tensors' sums of squares come back in one batch (one host
  // synchronisation on a GPU) and are added in list order.
  auto global_grad_norm = [&]() {
    std::vector<Tensor> counted;
    if (zero) {
      // The dp-averaged gradient exists only as shards: sum this shard's
      // pieces (replicated tensors on tp rank 0 only), then over dp.
      for (const parallel::ShardPiece& piece : zero_sync->partition().pieces(dp_rank)) {
        const NamedTensor& g = model.grads().entries()[static_cast<size_t>(piece.tensor)];
        if (g.tp_replicated && tp_rank > 0) continue;
        counted.push_back(zero_sync->grad_shard().slice_rows(piece.shard_offset, piece.length));
      }
    } else {
      for (const NamedTensor& g : model.grads().entries())
        if (!(g.tp_replicated && tp_rank > 0)) counted.push_back(g.value);
    }
    double local = 0.0;
    for (double s : sums_of_squares(counted)) local += s;
    if (zero) {
      Tensor x = Tensor::from_vector<double>({local}, {1});
      groups->dp().all_reduce_sum(x);
      local = x.data<double>()[0];
    }
    if (groups && pc.tp * pc.pp > 1) {
      Tensor x = Tensor::from_vector<double>({local}, {1});
      groups->mp().all_reduce_sum(x);
      local = x.data<double>()[0];
    }
    return std::sqrt(local);
  };

  // The loss on each held-out set (data.valid entry), over at most
  // eval_batches full micro-batches of it, and their mean over all windows.
  struct Evaluation {
    double loss = std::nan("");
    std::vector<double> per_set;
  };
  auto evaluate = [&]() -> Evaluation {
    model.set_dropout(std::nullopt);  // evaluation sees every unit; the next step sets its masks again
    Evaluation result;
    double weighted = 0.0;
    int64_t all_batches = 0;
    for (const ValidationSet& set : valid_sets) {
      // Every dp replica evaluates the same windows (the held-out set is small).
      data::SequentialSampler eval_sampler(*set.data, data::BatchLayout{T, B, B, 1});
      const int64_t batches = std::min<int64_t>(tc.eval_batches, eval_sampler.num_steps());
      int64_t full = 0;
      while (full < batches && eval_sampler.fill(full, 0, 0, windows.data()) == B) ++full;  // partial batches would mix in padding
      if (full == 0) {
        result.per_set.push_back(std::nan(""));
        continue;
      }
      const double loss = run_pipeline_eval(model, stage, full, B, T, [&](int64_t i, Tensor& tok, Tensor& tgt) {
        eval_sampler.fill(i, 0, 0, windows.data());
        split_windows(windows, B, T, tok, tgt);
      });
      result.per_set.push_back(share_from_last_stage(loss, false));
      weighted += result.per_set.back() * static_cast<double>(full);
      all_batches += full;
    }
    // One set: its loss as it is (x * n / n need not give back x's last bit).
    if (all_batches > 0) result.loss = result.per_set.size() == 1 ? result.per_set[0] : weighted / static_cast<double>(all_batches);
    return result;
  };
  auto eval_line = [&](int64_t at_step, const Evaluation& e) {
    std::string line = str_cat("eval step=", at_step, " val_loss=", e.loss, " val_ppl=", std::exp(e.loss));
    if (valid_sets.size() > 1) {
      for (size_t k = 0; k < valid_sets.size(); ++k) line += str_cat(k == 0 ? " |" : "", " ", valid_sets[k].name, "=", e.per_set[k]);
    }
    return line;
  };

  // --- resume: the newest committed checkpoint (auto), none (never), or a directory
  const CheckpointConfig& cc = config.checkpoint;
  checkpoint::CheckpointStore store(cc.dir, cc.keep_last, cc.keep_every);
  int64_t start_step = 0;
  const std::string digest = config_digest_hex(config);
  // Each rank reads its own slices of every parameter and its moments, from
  // whatever layout wrote them (only the stored slices that overlap its own).
  std::vector<ResumeTarget> targets;
  for (size_t i = 0; optimizer && i < model.params().entries().size(); ++i) {
    NamedTensor& p = model.params().entries()[i];
    targets.push_back({p.name, "param", p.offset(), &p.value});
    targets.push_back({p.name, "adam_m", p.offset(), &optimizer->first_moment().entries()[i].value});
    targets.push_back({p.name, "adam_v", p.offset(), &optimizer->second_moment().entries()[i].value});
  }
  // ZeRO-1: each box of this rank's shard (masters and moments), read
  // straight into the shard; the all-gather below makes the weights.
  std::vector<Tensor> zero_views;
  zero_views.reserve(3 * zero_regions.size());
  for (const ShardRegion& r : zero_regions) {
    const std::string& name = model.params().entries()[static_cast<size_t>(r.tensor)].name;
    zero_views.push_back(region_view(sharded->master_shard(), r));
    targets.push_back({name, "param", r.global_offset, &zero_views.back()});
    zero_views.push_back(region_view(sharded->first_moment(), r));
    targets.push_back({name, "adam_m", r.global_offset, &zero_views.back()});
    zero_views.push_back(region_view(sharded->second_moment(), r));
    targets.push_back({name, "adam_v", r.global_offset, &zero_views.back()});
  }
  Timer resume_timer;
  const std::optional<ResumedCheckpoint> resumed =
      resume_from_checkpoint(cc.resume, store, targets, groups ? &groups->world() : nullptr);
  if (resumed) {
    const checkpoint::Manifest& m = resumed->manifest;
    RWKV_CHECK(m.step <= steps, resumed->dir, ": the checkpoint is at step ", m.step, ", past this run's ", steps,
               " steps\n  ---> HINT: raise train.steps to continue training");
    if (optimizer) optimizer->set_steps_taken(m.step);
    if (sharded) sharded->set_steps_taken(m.step);
    start_step = m.step;
    if (m.config_digest == kImportedConfigDigest) {
      say("resume: the checkpoint holds imported weights (rwkv-ckpt import) with zero AdamW moments and no "
          "training config of its own; training continues from them with this run's settings");
    } else if (m.config_digest != digest && log_here) {
      // Which keys changed, from the canonical config the checkpoint keeps
      // (an imported checkpoint has none; one from an older version may not read).
      std::string changed;
      try {
        if (!m.config_yaml.empty()) {
          const TrainConfig before = load_config_text(m.config_yaml, resumed->dir + " (its config)");
          for (const std::string& d : config_differences(before, config)) changed += "\n  " + d;
        }
      } catch (const Error&) {
        changed.clear();
      }
      log_warn("resume: this run's config (digest ", digest, ") differs from the checkpoint's (", m.config_digest,
               "); the model shapes match, so training continues with the new settings",
               changed.empty() ? std::string() : str_cat(". Changed (checkpoint -> now):", changed));
    }
    say("resume: step ", m.step, " from ", resumed->dir, " (written by dp=", m.layout.dp, " x tp=", m.layout.tp,
        " x pp=", m.layout.pp, "); this rank read and verified ", resumed->bytes_read, " of the checkpoint's ", resumed->total_bytes,
        " bytes in ", resume_timer.millis(), " ms");
  } else if (cc.resume == "auto" && !store.committed_steps().empty()) {
    say("resume: no committed checkpoint in ", cc.dir, " could be read; training starts from step 0");
  }
  // ZeRO-1: every rank's weights (the bf16 copies, and the masters of the
  // tensors without one) from every rank's master shard.
  // With the masters of the bf16-copied tensors released, the bf16 buckets
  // land in the copies in place and stay in flight into the next forward,
  // which waits for each block's buckets just before the block
  // (ZeroOneSync::start_all_gather_params; docs/parallel.md). Without
  // released masters (fp32) no bucket is bf16-only and all complete here.
  auto gather_weights = [&] {
    zero_sync->start_all_gather_params(sharded->master_shard(), model.params(), model.compute_copies(),
                                       model.compute_copies_flat());
  };
  if (zero) {
    model.set_weights_needed_hook([sync = zero_sync](size_t end_entry) {
      sync->wait_gathered(sync->layout().offset(static_cast<int>(end_entry)));
    });
  }
  // The weights from the init's or the checkpoint's f32 masters: cast into
  // the bf16 copies, or with ZeRO-1 gathered from every rank's master shard.
  if (zero) {
    gather_weights();
  } else {
    model.refresh_compute_copies();
  }
  const int64_t save_interval = cc.interval;
  // What a checkpoint holds: every parameter with its AdamW moments.
  auto save_request = [&](int64_t completed_steps) {
    checkpoint::SaveRequest request;
    request.step = completed_steps;
    request.tokens = completed_steps * layout.global_batch * T;
    request.config_yaml = config_to_yaml(config);
    request.config_digest = digest;
    request.rank = groups ? groups->topology().rank() : 0;
    request.world = static_cast<int>(world);
    request.layout = {pc.dp, pc.tp, pc.pp, pc.zero};
    // ZeRO-1: every dp rank writes the boxes of its shard of the masters and
    // moments (tp rank 0 those of tp-replicated tensors), and nothing else.
    for (const ShardRegion& r : zero_regions) {
      const NamedTensor& p = model.params().entries()[static_cast<size_t>(r.tensor)];
      if (p.tp_replicated && tp_rank > 0) continue;
      request.tensors.push_back({p.name, "param", region_view(sharded->master_shard(), r), p.global(), r.global_offset});
      request.tensors.push_back({p.name, "adam_m", region_view(sharded->first_moment(), r), p.global(), r.global_offset});
      request.tensors.push_back({p.name, "adam_v", region_view(sharded->second_moment(), r), p.global(), r.global_offset});
    }
    // Without ZeRO-1 dp replicas hold the same values: dp rank 0 writes;
    // tp-replicated tensors: tp rank 0 writes; vocabulary padding rows are not saved.
    if (zero || dp_rank != 0) return request;
    for (size_t i = 0; i < model.params().entries().size(); ++i) {
      const NamedTensor& p = model.params().entries()[i];
      if (p.tp_replicated && tp_rank > 0) continue;
      const int64_t rows = p.value.ndim() == 2 ? std::min(p.value.dim(0), p.global()[0] - p.offset()[0]) : 0;
      auto real = [&](const Tensor& t) { return rows > 0 && rows < t.dim(0) ? t.slice_rows(0, rows) : t; };
      request.tensors.push_back({p.name, "param", real(p.value), p.global(), p.offset()});
      request.tensors.push_back({p.name, "adam_m", real(optimizer->first_moment().entries()[i].value), p.global(), p.offset()});
      request.tensors.push_back({p.name, "adam_v", real(optimizer->second_moment().entries()[i].value), p.global(), p.offset()});
    }
    return request;
  };
  CheckpointSaver saver(store, SaverSettings{save_interval, cc.interval_minutes, cc.async},
                        groups ? &groups->world() : nullptr);

  // --- the controller (rwkv-launch sets RWKV_CONTROLLER; or controller.enabled):
  // heartbeats with metrics, checkpoints when it asks, stop when it says.
  std::unique_ptr<launch::ControllerClient> controller;
  const int world_rank = groups ? groups->topology().rank() : 0;
  if (std::getenv("RWKV_CONTROLLER") || config.controller.enabled) {
    launch::ClientOptions co;
    if (std::getenv("RWKV_CONTROLLER")) {
      co = launch::client_options_from_env(world_rank, static_cast<int>(world));
    } else {
      co.address = config.controller.address;
      co.job = std::getenv("RWKV_JOB") ? std::getenv("RWKV_JOB") : "rwkv-train";
      co.token = config.controller.token_file.empty() ? std::string() : rwkv::read_file(config.controller.token_file);
      while (!co.token.empty() && (co.token.back() == '\n' || co.token.back() == ' ')) co.token.pop_back();
      co.rank = world_rank;
      co.world_size = static_cast<int>(world);
    }
    co.heartbeat_s = config.controller.heartbeat_s;
    controller = std::make_unique<launch::ControllerClient>(co);
    launch::RankInfo info;
    info.config_digest = digest;
    info.total_steps = steps;
    info.start_step = start_step;
    info.checkpoint_dir = cc.dir;
    info.checkpoint_interval = cc.interval;
    info.heartbeat_timeout_s = config.controller.heartbeat_timeout_s;
    info.keep_last = cc.keep_last;
    info.keep_every = cc.keep_every;
    controller->register_rank(info);
    say("controller: registered with ", co.address, " as rank ", world_rank, " of job ", co.job,
        "; checkpoints are committed by the controller");
  }
  // With a controller, it decides when to checkpoint and commits what the ranks write.
  auto controller_checkpoint = [&](const launch::ControllerCommand& cmd, int64_t completed) {
    if (!cmd.checkpoint_at(completed)) return;
    try {
      const checkpoint::SaveRequest request = save_request(completed);
      std::vector<std::string> names;
      if (world == 1) {
        names = store.write_partial(request);
      } else {
        MpiCommunicatorBarrier barrier{groups};
        names = store.write_rank_shard(request);
        barrier();  // every shard is on disk before the manifest is assembled
        if (request.rank == 0) {
          store.write_manifest(request);
          names.push_back(checkpoint::kManifestName);
        }
      }
      std::vector<launch::ShardFile> files;
      const std::string partial = store.path_for(completed) + ".partial";
      for (const std::string& n : names) files.push_back(launch::describe_file(partial, n));
      const std::string committed = controller->ack_checkpoint(completed, files);
      say("checkpoint: step ", completed, " written and acknowledged", committed.empty() ? std::string() : " (" + committed + ")");
    } catch (const Error& e) {
      controller->fail_checkpoint(completed, e.what());
      throw;
    }
  };

  TrainSummary summary;
  summary.optimizer_state_bytes =
      sharded ? static_cast<uint64_t>(2 * sharded->first_moment().numel()) * dtype_size(sharded->first_moment().dtype())
              : static_cast<uint64_t>(2 * local_parameters) * dtype_size(DType::F32);
  summary.master_bytes_released = static_cast<uint64_t>(master_bytes_released);
  if (resumed) {
    summary.resumed_step = resumed->manifest.step;
    summary.resume_bytes_read = resumed->bytes_read;
    summary.resume_bytes_total = resumed->total_bytes;
  }
  if (!valid_sets.empty() && tc.eval_interval > 0) {
    const Evaluation first = evaluate();
    summary.first_eval_loss = first.loss;
    say(eval_line(0, first));
  }
  Timer run_timer;
  bool stopped_early = false;
  launch::ControllerCommand pending_command;
  double interval_loss = 0.0;
  int64_t interval_steps = 0;
  // Bytes sent so far per group: a step's traffic is the difference.
  auto bytes_sent_so_far = [&]() {
    StepCommBytes b;
    if (groups) {
      // Host scalars travel on the MPI groups, device tensors on NCCL's (GPU).
      b.tp = groups->tp().stats().total_sent() + comms.extra_bytes_sent(parallel::GroupKind::Tp);
      b.dp = groups->dp().stats().total_sent() + comms.extra_bytes_sent(parallel::GroupKind::Dp);
      b.pp = groups->pp().stats().total_sent() + comms.extra_bytes_sent(parallel::GroupKind::Pp);
      b.mp = groups->mp().stats().total_sent();
      b.world = groups->world().stats().total_sent();
    }
    return b;
  };
  PipelineTiming pipeline_timing;
  // A step's micro-batches go to the device in one copy, packed while the
  // GPU is idle: before the first step, then each next step's right after
  // this step's reads (pipeline_schedule.h, pack_step_batches).
  auto pack_batches_of = [&](int64_t step) {
    return pack_step_batches(model, stage, tc.grad_accum, B, T, [&](int64_t micro, Tensor& tok, Tensor& tgt) {
      train_data.fill(step, micro, dp_rank, windows.data());
      split_windows(windows, B, T, tok, tgt);
    });
  };
  Tensor next_batches = start_step < steps ? pack_batches_of(start_step) : Tensor();
  for (int64_t step = start_step; step < steps; ++step) {
    Timer step_timer;
    const Tensor step_batches = std::move(next_batches);
    const StepCommBytes sent_before = bytes_sent_so_far();
    model.grads().zero_all();
    // Overlap: as the last backward finishes each block, its time_mix
    // partial gradients are summed over tp, then every dp bucket lying wholly
    // in the final gradients starts its all-reduce (plain dp) or its
    // reduce-scatter into this rank's shard (ZeRO-1) while the earlier
    // blocks' backward runs. Without overlap all of it comes after.
    size_t tp_reduced_from = model.grads().entries().size();
    Rwkv4Model::GradsFinalHook on_final;
    if (overlap) {
      dp_reduction->begin_overlap(model.grads());
      on_final = [&](size_t first_entry) {
        if (first_entry >= tp_reduced_from) return;
        model.reduce_tp_partial_grads(first_entry, tp_reduced_from);
        tp_reduced_from = first_entry;
        dp_reduction->grads_final_from(static_cast<int>(first_entry));
      };
    }
    if (tc.dropout > 0) {
      // Row b of micro-batch m on this dp rank is global sample
      // step G + (m B + b) dp + dp_rank (data/sampler.h): its masks' name.
      const auto dp = static_cast<uint64_t>(pc.dp);
      model.set_dropout(Rwkv4Model::DropoutPlan{static_cast<float>(tc.dropout), static_cast<uint64_t>(tc.seed),
                                                static_cast<uint64_t>(step * layout.global_batch + dp_rank),
                                                static_cast<uint64_t>(B) * dp, dp});
    }
    double loss = run_pipeline_step(model, stage, pc.schedule, tc.grad_accum, B, T, step_batches, loss_scale,
                                    l2wrap_scale, &pipeline_timing, on_final, /*read_loss=*/false);
    if (overlap) {
      model.reduce_tp_partial_grads(0, tp_reduced_from);
      summary.dp_buckets_started_early = dp_reduction->buckets_started_early();
      dp_reduction->finish_overlap();
    } else {
      model.reduce_tp_partial_grads();
      if (dp_reduction) dp_reduction->reduce_mean(model.grads());
    }
    const double lr = schedule.at(step);
    // The step's reads from the device: the gradient norm (the clip needs it
    // before the update), then the loss, which by then is long computed, so
    // the host waits for the GPU once here and nowhere else in the step.
    if (!frozen.names.empty()) {
      if (zero) {
        for (const parallel::ShardPiece& piece : zero_sync->partition().pieces(dp_rank))
          if (is_frozen[static_cast<size_t>(piece.tensor)])
            zero_sync->grad_shard().slice_rows(piece.shard_offset, piece.length).zero_();
      } else {
        for (size_t i = 0; i < is_frozen.size(); ++i)
          if (is_frozen[i]) model.grads().entries()[i].value.zero_();
      }
    }
    double grad_norm = global_grad_norm();
    if (stage.last()) loss = model.end_loss_sum() / static_cast<double>(tc.grad_accum);
    if (step + 1 < steps) next_batches = pack_batches_of(step + 1);  // the GPU's queue is empty now
    loss = share_from_last_stage(loss, true);
    if (zero) {
      sharded->update(model.params(), zero_sync->grad_shard(), lr, clip_factor(grad_norm, settings.grad_clip));
      gather_weights();
      summary.zero_gathers_overlapped = zero_sync->gathers_in_flight();
    } else {
      grad_norm = optimizer->step_with_norm(model.params(), model.grads(), lr, grad_norm);
    }
    RWKV_CHECK(std::isfinite(loss) && std::isfinite(grad_norm), "step ", step + 1, ": the loss or gradient norm is not finite (loss ",
               loss, ", grad norm ", grad_norm, ")\n  ---> HINT: lower train.lr_init, or check the data");
    const double ms = step_timer.millis();
    {
      const StepCommBytes now = bytes_sent_so_far();
      summary.last_step_sent = {now.tp - sent_before.tp, now.dp - sent_before.dp, now.pp - sent_before.pp,
                                now.mp - sent_before.mp, now.world - sent_before.world};
    }
    if (step == start_step) summary.first_loss = loss;
    summary.losses.push_back(loss);
    interval_loss += loss;
    ++interval_steps;
    const double tokens = static_cast<double>(layout.global_batch * T);
    if ((step + 1) % tc.log_interval == 0 || step + 1 == steps) {
      const double tok_s = tokens / (ms / 1e3);
      const double mfu = job_mfu(tok_s);
      char line[256];
      std::snprintf(line, sizeof line, "step=%lld/%lld loss=%.4f lr=%.3e gnorm=%.3f ms=%.1f tok/s=%.0f mfu=%.1f%% mem=%s",
                    static_cast<long long>(step + 1), static_cast<long long>(steps), interval_loss / static_cast<double>(interval_steps),
                    lr, grad_norm, ms, tok_s, 100.0 * mfu, memory_now().c_str());
      say(line);
      summary.final_loss = interval_loss / static_cast<double>(interval_steps);
      interval_loss = 0.0;
      interval_steps = 0;
    }
    std::optional<Evaluation> evaluation;
    if (!valid_sets.empty() && tc.eval_interval > 0 && ((step + 1) % tc.eval_interval == 0 || step + 1 == steps)) {
      evaluation = evaluate();
      summary.last_eval_loss = evaluation->loss;
      summary.last_eval_losses = evaluation->per_set;
      say(eval_line(step + 1, *evaluation));
    }
    if (controller) {
      std::map<std::string, double> metrics;
      if (log_here) {
        const double tok_s = static_cast<double>(layout.global_batch * T) / (ms / 1e3);
        metrics = {{"loss", loss}, {"lr", lr}, {"grad_norm", grad_norm}, {"tokens_per_s", tok_s},
                   {"mfu", job_mfu(tok_s)}};
        if (evaluation && evaluation->loss >= 0 && (step + 1) % tc.eval_interval == 0) {
          metrics["val_loss"] = evaluation->loss;
          for (size_t k = 0; valid_sets.size() > 1 && k < valid_sets.size(); ++k)
            if (evaluation->per_set[k] >= 0) metrics["val_loss/" + valid_sets[k].name] = evaluation->per_set[k];
        }
      }
      // A checkpoint or stop may be announced for a later step: keep it until then.
      launch::ControllerCommand reply = controller->heartbeat(step + 1, metrics, step + 1 == steps);
      if (groups && world > 1) {
        // Every rank must act on the same command at the same step: rank 0's.
        Tensor c = Tensor::from_vector<int64_t>({static_cast<int64_t>(reply.kind), reply.step}, {2});
        groups->world().broadcast(c, 0);
        reply.kind = static_cast<launch::ControllerCommand::Kind>(c.data<int64_t>()[0]);
        reply.step = c.data<int64_t>()[1];
      }
      if (reply.kind != launch::ControllerCommand::Kind::None) pending_command = reply;
      const launch::ControllerCommand cmd = pending_command;
      if (cmd.kind != launch::ControllerCommand::Kind::None && (cmd.step == 0 || cmd.step <= step + 1))
        pending_command = launch::ControllerCommand{};
      if (cmd.stop_now()) {
        say("controller: stop (", cmd.reason, ") after step ", step + 1);
        controller->finish(launch::Outcome::Stopped, step + 1, cmd.reason);
        stopped_early = true;
        break;
      }
      controller_checkpoint(cmd, step + 1);
      if (cmd.stop_after_checkpoint() && cmd.step == step + 1) {
        say("controller: stop after the checkpoint of step ", step + 1, " (", cmd.reason, ")");
        controller->finish(launch::Outcome::Stopped, step + 1, cmd.reason);
        stopped_early = true;
        break;
      }
    } else {
      saver.poll();  // commits a background save once every rank has written its shard
      if (saver.due(step + 1, step + 1 == steps)) saver.save(save_request(step + 1));
    }
  }
  if (controller && !stopped_early) controller->finish(launch::Outcome::Completed, steps);
  summary.pipeline_s = pipeline_timing.total_s;
  summary.pipeline_compute_s = pipeline_timing.compute_s;
  saver.finish();
  if (cc.async && saver.saves() > 0)
    say("checkpoint: training waited ", saver.blocked_ms(), " ms in total for ", saver.saves(), " background save(s)");
  if (options.on_finish) {
    if (model.masters_released()) {  // the whole f32 model back from the shards
      model.restore_copied_masters();
      zero_sync->all_gather_params(sharded->master_shard(), model.params());
    }
    options.on_finish(model.params());
  }
  summary.steps = static_cast<int64_t>(summary.losses.size());
  summary.tokens = summary.steps * layout.global_batch * T;
  summary.seconds = run_timer.seconds();

  if (world > 1) {
    // Every rank's peak memory, reported by the rank that speaks for the job.
    // On GPUs also each rank's peak GPU bytes in use (the caching allocator's count).
    const double gpu_peak = device.is_cuda() ? static_cast<double>(cuda_memory_stats(device.index).peak_bytes_in_use) : 0.0;
    Tensor mine = Tensor::from_vector<double>({static_cast<double>(host_memory().peak_resident_bytes), gpu_peak}, {2});
    Tensor all = Tensor::empty({2 * world}, DType::F64);
    groups->world().all_gather(mine, all);
    std::string per_rank;
    for (int64_t r = 0; r < world; ++r) {
      per_rank += str_cat(r ? ", " : "", "rank ", r, " ", mib(static_cast<int64_t>(all.data<double>()[2 * r])));
      if (device.is_cuda()) per_rank += str_cat(" (gpu ", mib(static_cast<int64_t>(all.data<double>()[2 * r + 1])), ")");
    }
    say("memory: peak resident per rank: ", per_rank);
    say("done: ", summary.steps, " steps, ", summary.tokens, " tokens in ", summary.seconds, " s (",
        static_cast<double>(summary.tokens) / summary.seconds, " tok/s); loss ", summary.first_loss, " -> ",
        summary.final_loss, "; peak memory of this rank ", mib(host_memory().peak_resident_bytes));
    return summary;
  }
  // --- final weights: one safetensors file with the reference names
  std::filesystem::create_directories(config.checkpoint.dir);
  summary.weights_path = (std::filesystem::path(config.checkpoint.dir) / "rwkv-final.safetensors").string();
  checkpoint::NamedTensors tensors;
  for (const NamedTensor& e : model.params().entries()) tensors.emplace_back(e.name, e.value);
  checkpoint::write_safetensors(summary.weights_path, tensors,
                                {{"format", "rwkv-dist"}, {"model", "rwkv4"}, {"step", std::to_string(steps)},
                                 {"config", config_to_yaml(config)}});
  say("done: ", summary.steps, " steps, ", summary.tokens, " tokens in ", summary.seconds, " s (",
           static_cast<double>(summary.tokens) / summary.seconds, " tok/s); loss ", summary.first_loss, " -> ",
           summary.final_loss, summary.last_eval_loss >= 0 ? str_cat(", val_loss ", summary.last_eval_loss) : std::string(),
           "; peak memory ", mib(host_memory().peak_resident_bytes), "; weights: ", summary.weights_path);
  return summary;
}

}  // namespace rwkv::trainer
