// A checkpoint written by one parallel layout resumes in another: the issue's
// pairs (1,2,2)<->(2,1,1), (1,1,4)<->(1,4,1), (2,2,2)<->(1,1,1), each way.
// RWKV_TEST_RESHARD="dpA tpA ppA dpB tpB ppB"; the job has max(A, B) ranks and
// each layout runs on the first ranks of the world.
//
// For each direction: the source layout trains 4 steps, saving at 2 and 4;
// the target layout resumes from the source's step 2 and trains steps 3-4.
// Its losses must equal the source's (fp32 tolerance: the layouts sum in
// other orders), and a rank that holds part of the model (tp or pp > 1) must
// read only part of the checkpoint. A slice damaged where only some ranks
// read it makes all of them fall back to the previous checkpoint.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "checkpoint/checkpoint_store.h"
#include "mpi_test_util.h"
#include "parallel/process_groups.h"
#include "trainer/train_loop.h"
#include "training_fixture.h"

namespace rwkv::parallel {
namespace {

namespace fs = std::filesystem;

struct Pair {
  test::SmallRun from, to;
};

Pair pair_from_env() {
  Pair p;
  const char* env = std::getenv("RWKV_TEST_RESHARD");
  if (env != nullptr) {
    std::istringstream in(env);
    in >> p.from.dp >> p.from.tp >> p.from.pp >> p.to.dp >> p.to.tp >> p.to.pp;
  }
  return p;
}

int ranks_of(const test::SmallRun& r) { return r.dp * r.tp * r.pp; }

// Runs fn on the first n ranks of the world (a communicator of their own);
// the other ranks wait.
template <class Fn>
void on_first_ranks(int n, Fn fn) {
  MPI_Comm sub;
  MPI_Comm_split(MPI_COMM_WORLD, test::world_rank() < n ? 0 : MPI_UNDEFINED, test::world_rank(), &sub);
  if (sub != MPI_COMM_NULL) {
    fn(sub);
    MPI_Comm_free(&sub);
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

std::string tag(const test::SmallRun& r) {
  return std::to_string(r.dp) + std::to_string(r.tp) + std::to_string(r.pp);
}

// Flips a byte of the stored slice that holds emb.weight's first row.
void damage_first_embedding_row(const std::string& dir) {
  const checkpoint::LoadedCheckpoint ckpt(dir);
  const checkpoint::ManifestTensor* emb = ckpt.manifest().find("emb.weight", "param");
  ASSERT_NE(emb, nullptr);
  for (const checkpoint::ManifestSlice& s : emb->slices) {
    if (s.offset[0] != 0 || s.offset[1] != 0) continue;
    const std::string path = dir + "/" + s.file;
    const checkpoint::SafetensorsFile file(path);
    const uint64_t begin = file.entry(s.key).begin;
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    uint64_t header = 0;
    f.read(reinterpret_cast<char*>(&header), sizeof header);  // safetensors: u64 header length, header, data
    f.seekp(static_cast<std::streamoff>(sizeof header + header + begin + 1));
    f.put('\x7f');
    return;
  }
  FAIL() << dir << ": no slice of emb.weight starts at row 0";
}

void reshard(const fs::path& dir, const std::string& prefix, const test::SmallRun& from, const test::SmallRun& to) {
  SCOPED_TRACE("(" + tag(from) + ") -> (" + tag(to) + ")");
  const fs::path source_dir = dir / ("from_" + tag(from) + "_to_" + tag(to));
  std::vector<double> source_losses;
  on_first_ranks(ranks_of(from), [&](MPI_Comm comm) {
    ProcessGroups groups(from.dp, from.tp, from.pp, comm);
    source_losses = trainer::run_training(test::small_run_config(prefix, from, source_dir.string()), {}, &groups).losses;
  });
  on_first_ranks(ranks_of(to), [&](MPI_Comm comm) {
    ProcessGroups groups(to.dp, to.tp, to.pp, comm);
    trainer::TrainConfig resuming = test::small_run_config(prefix, to, (source_dir / "resumed").string());
    resuming.checkpoint.resume = (source_dir / "step_00000002").string();
    const trainer::TrainSummary resumed = trainer::run_training(resuming, {}, &groups);
    EXPECT_EQ(resumed.resumed_step, 2);
    // The source's losses are known on the ranks that ran it: share rank 0's.
    std::vector<double> expected(4, 0.0);
    if (test::world_rank() == 0) expected = source_losses;
    MPI_Bcast(expected.data(), 4, MPI_DOUBLE, 0, comm);
    ASSERT_EQ(resumed.losses.size(), 2u);
    for (size_t i = 0; i < 2; ++i)
      EXPECT_NEAR(resumed.losses[i], expected[i + 2], 2e-4 * std::abs(expected[i + 2])) << "step " << i + 3;
    // Each rank reads (and hashes) only the stored slices that overlap its
    // own: a pipeline stage those of its layers. (A tensor-parallel rank
    // needs part of every tensor, so it reads every slice of a source that
    // stored whole tensors.)
    EXPECT_GT(resumed.resume_bytes_read, 0u);
    if (to.pp > 1) {
      EXPECT_LT(resumed.resume_bytes_read, resumed.resume_bytes_total * 3 / 4);
    }
  });
  // A damaged slice in the source's step 4 is seen only by the ranks that
  // read it; with --resume auto every rank must still fall back to step 2 together.
  if (test::world_rank() == 0) damage_first_embedding_row((source_dir / "step_00000004").string());
  MPI_Barrier(MPI_COMM_WORLD);
  on_first_ranks(ranks_of(to), [&](MPI_Comm comm) {
    ProcessGroups groups(to.dp, to.tp, to.pp, comm);
    trainer::TrainConfig resuming = test::small_run_config(prefix, to, source_dir.string());
    resuming.checkpoint.resume = "auto";
    EXPECT_EQ(trainer::run_training(resuming, {}, &groups).resumed_step, 2);
  });
}

TEST(MpiReshard, CheckpointResumesInAnotherLayoutBothWays) {
  const Pair pair = pair_from_env();
  ASSERT_EQ(std::max(ranks_of(pair.from), ranks_of(pair.to)), test::world_size())
      << "RWKV_TEST_RESHARD does not match -np";
  const fs::path dir = fs::temp_directory_path() / ("rwkv_reshard_" + tag(pair.from) + tag(pair.to) + "_" +
                                                    std::to_string(::getppid()));
  const std::string prefix = test::write_training_dataset(dir);
  reshard(dir, prefix, pair.from, pair.to);
  reshard(dir, prefix, pair.to, pair.from);
  MPI_Barrier(MPI_COMM_WORLD);
  if (test::world_rank() == 0) fs::remove_all(dir);
}

}  // namespace
}  // namespace rwkv::parallel
