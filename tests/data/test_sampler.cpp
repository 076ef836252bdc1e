// The dataset over many shards and both samplers: every window once per
// epoch, global batches independent of the data-parallel size, RWKV-LM's
// exact sample order, and sequential evaluation windows.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "data/binidx_writer.h"
#include "data/magic_prime.h"
#include "data/sampler.h"
#include "data/token_dataset.h"
#include "test_util.h"

namespace rwkv::data {
namespace {

using testing::ScratchDir;

// Shards whose token at stream position i is i itself, so a window's first
// token tells where it starts. Split into shards of uneven sizes and documents.
std::vector<std::string> write_counting_shards(const ScratchDir& dir, int64_t total, std::vector<int64_t> shard_sizes) {
  std::vector<std::string> prefixes;
  int64_t next = 0;
  for (size_t s = 0; s < shard_sizes.size(); ++s) {
    std::string prefix = dir / ("count_" + std::to_string(s));
    BinIdxWriter writer(prefix, TokenDType::I32);
    int64_t end = s + 1 == shard_sizes.size() ? total : next + shard_sizes[s];
    while (next < end) {
      int64_t length = std::min<int64_t>(end - next, 7 + next % 13);  // documents of 7..19 tokens
      std::vector<int32_t> doc;
      for (int64_t k = 0; k < length; ++k) doc.push_back(static_cast<int32_t>(next + k));
      writer.add_document(doc);
      next += length;
    }
    writer.commit();
    prefixes.push_back(prefix);
  }
  return prefixes;
}

TEST(TokenDataset, ReadsAcrossShardAndDocumentBoundaries) {
  ScratchDir dir;
  TokenDataset data(write_counting_shards(dir, 2000, {500, 777, 0}));
  ASSERT_EQ(data.num_tokens(), 2000);
  EXPECT_EQ(data.num_shards(), 3u);
  std::vector<int32_t> out(1500);
  data.read(300, 1500, out.data());  // spans all three shards
  for (int64_t k = 0; k < 1500; ++k) ASSERT_EQ(out[k], 300 + k);
  EXPECT_THROW(data.read(1990, 11, out.data()), Error);
}

TEST(MagicPrimeSampler, FollowsRwkvLmsFormula) {
  // p = 2926181 (minipile, ctx 512): factor = int(p * (sqrt(5) - 1) / 2) and
  // chunk(ii) = factor * ii^3 mod p, computed in Python with exact integers.
  const uint64_t p = 2926181;
  const uint64_t factor = magic_prime_factor(p);
  EXPECT_EQ(factor, 1808479u);
  // Sample g uses ii = 1 + g.
  EXPECT_EQ(magic_prime_chunk(p, factor, 0), 1808479u);
  EXPECT_EQ(magic_prime_chunk(p, factor, 1), 2763108u);
  EXPECT_EQ(magic_prime_chunk(p, factor, 2), 2010037u);
  EXPECT_EQ(magic_prime_chunk(p, factor, 3), 1621597u);
  EXPECT_EQ(magic_prime_chunk(p, factor, 4), 743938u);
  EXPECT_EQ(magic_prime_chunk(p, factor, 999), 61539u);
  EXPECT_EQ(magic_prime_chunk(p, factor, 123456788), 306553u);
  EXPECT_EQ(magic_prime_chunk(p, factor, 1000000000006ull), 816730u);  // ii^3 overflows 64 bits
  EXPECT_EQ(magic_prime_factor(197), 121u);
  EXPECT_EQ(magic_prime_chunk(197, 121, 0), 121u);
  EXPECT_EQ(magic_prime_chunk(197, 121, 6), 133u);
}

TEST(MagicPrimeSampler, EveryWindowExactlyOncePerEpoch) {
  ScratchDir dir;
  const int64_t ctx = 10;
  TokenDataset data(write_counting_shards(dir, 2000, {600, 600}));
  BatchLayout layout{ctx, /*micro_batch=*/2, /*global_batch=*/8, /*dp_size=*/2};
  MagicPrimeSampler sampler(data, layout);
  const uint64_t p = sampler.magic_prime();
  ASSERT_EQ(p, 197u);  // largest prime = 2 mod 3 at most 2000/10 - 1
  EXPECT_EQ(sampler.factor(), 121u);

  // Walk whole steps through two epochs, reading real tokens.
  std::map<int64_t, int> visits_epoch0, visits_epoch1;
  std::vector<int32_t> tokens(static_cast<size_t>(layout.micro_batch * (ctx + 1)));
  const int64_t steps = static_cast<int64_t>((2 * p + layout.global_batch - 1) / layout.global_batch);
  for (int64_t step = 0; step < steps; ++step) {
    for (int64_t micro = 0; micro < layout.grad_accum(); ++micro) {
      for (int64_t rank = 0; rank < layout.dp_size; ++rank) {
        sampler.fill(step, micro, rank, tokens.data());
        for (int64_t row = 0; row < layout.micro_batch; ++row) {
          const int32_t* window = tokens.data() + row * (ctx + 1);
          for (int64_t k = 0; k <= ctx; ++k) ASSERT_EQ(window[k], window[0] + k);  // ctx+1 consecutive tokens
          ASSERT_EQ(window[0] % ctx, 0);
          uint64_t g = global_sample_index(layout, step, micro, rank, row);
          if (g < p) ++visits_epoch0[window[0]];
          else if (g < 2 * p) ++visits_epoch1[window[0]];
        }
      }
    }
  }
  ASSERT_EQ(visits_epoch0.size(), p);
  ASSERT_EQ(visits_epoch1.size(), p);
  for (auto& [start, count] : visits_epoch0) {
    EXPECT_EQ(count, 1) << start;
    EXPECT_LT(start / ctx, static_cast<int64_t>(p));
  }
  for (auto& [start, count] : visits_epoch1) EXPECT_EQ(count, 1) << start;
}

TEST(MagicPrimeSampler, GlobalBatchIsTheSameForEveryDataParallelSize) {
  ScratchDir dir;
  const int64_t ctx = 16;
  TokenDataset data(write_counting_shards(dir, 50000, {20000, 30000}));
  const int64_t global_batch = 8, micro_batch = 2;
  std::map<int64_t, std::vector<std::vector<int32_t>>> batches_by_dp;  // dp -> per step, sorted window starts
  std::map<int64_t, std::vector<std::vector<int32_t>>> ordered_by_dp;  // dp -> per step, windows ordered by g
  for (int64_t dp : {1, 2, 4}) {
    BatchLayout layout{ctx, micro_batch, global_batch, dp};
    MagicPrimeSampler sampler(data, layout);
    std::vector<int32_t> tokens(static_cast<size_t>(micro_batch * (ctx + 1)));
    for (int64_t step : {0, 1, 7, 1000, 123456}) {  // resuming at any step needs no state
      std::vector<int32_t> starts;
      std::vector<std::pair<uint64_t, int32_t>> by_g;
      for (int64_t micro = 0; micro < layout.grad_accum(); ++micro) {
        for (int64_t rank = 0; rank < dp; ++rank) {
          sampler.fill(step, micro, rank, tokens.data());
          for (int64_t row = 0; row < micro_batch; ++row) {
            int32_t start = tokens[static_cast<size_t>(row * (ctx + 1))];
            starts.push_back(start);
            by_g.emplace_back(global_sample_index(layout, step, micro, rank, row), start);
          }
        }
      }
      ASSERT_EQ(starts.size(), static_cast<size_t>(global_batch));
      std::sort(starts.begin(), starts.end());
      std::sort(by_g.begin(), by_g.end());
      std::vector<int32_t> ordered;
      for (size_t k = 0; k < by_g.size(); ++k) {
        EXPECT_EQ(by_g[k].first, static_cast<uint64_t>(step * global_batch) + k);  // exactly [step*G, (step+1)*G)
        ordered.push_back(by_g[k].second);
      }
      batches_by_dp[dp].push_back(starts);
      ordered_by_dp[dp].push_back(ordered);
    }
  }
  EXPECT_EQ(batches_by_dp[1], batches_by_dp[2]);
  EXPECT_EQ(batches_by_dp[1], batches_by_dp[4]);
  EXPECT_EQ(ordered_by_dp[1], ordered_by_dp[2]);
  EXPECT_EQ(ordered_by_dp[1], ordered_by_dp[4]);
}

TEST(MagicPrimeSampler, MatchesRwkvLmsRankInterleaving) {
  // RWKV-LM: ii = 1 + idx * world_size + rank with idx = step * micro_bsz + row.
  ScratchDir dir;
  TokenDataset data(write_counting_shards(dir, 5000, {5000}));
  BatchLayout layout{8, 3, 12, 4};  // no accumulation: RWKV-LM's setting
  MagicPrimeSampler sampler(data, layout);
  for (int64_t step = 0; step < 5; ++step) {
    for (int64_t rank = 0; rank < 4; ++rank) {
      for (int64_t row = 0; row < 3; ++row) {
        uint64_t idx = static_cast<uint64_t>(step * 3 + row);
        EXPECT_EQ(global_sample_index(layout, step, 0, rank, row) + 1, 1 + idx * 4 + static_cast<uint64_t>(rank));
      }
    }
  }
  Tensor batch = sampler.batch(2, 0, 1);
  EXPECT_EQ(batch.shape(), (Shape{3, 9}));
  EXPECT_EQ(batch.dtype(), DType::I32);
  EXPECT_EQ(batch.data<int32_t>()[0], sampler.window_start(global_sample_index(layout, 2, 0, 1, 0)));
}

TEST(MagicPrimeSampler, ValidatesItsInputs) {
  ScratchDir dir;
  TokenDataset data(write_counting_shards(dir, 2000, {2000}));
  try {
    MagicPrimeSampler sampler(data, {10, 3, 8, 2});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string message = e.what();
    for (const char* factor : {"global_batch=8", "micro_batch=3", "dp_size=2"}) {
      EXPECT_NE(message.find(factor), std::string::npos) << message;
    }
  }
  EXPECT_THROW(MagicPrimeSampler(data, {10, 1, 1, 1}, 199), Error);  // 199 % 3 == 1
  EXPECT_THROW(MagicPrimeSampler(data, {10, 1, 1, 1}, 211), Error);  // windows past the end
  EXPECT_THROW(MagicPrimeSampler(data, {1000, 1, 1, 1}), Error);     // fewer than 3 windows
  MagicPrimeSampler sampler(data, {10, 2, 4, 2});
  std::vector<int32_t> tokens(22);
  EXPECT_THROW(sampler.fill(0, 0, 2, tokens.data()), Error);  // rank out of range
  EXPECT_THROW(sampler.fill(0, 1, 0, tokens.data()), Error);  // micro-step out of range
}

TEST(MagicPrimeSampler, RejectsTokensBeyondTheVocabulary) {
  ScratchDir dir;
  TokenDataset data(write_counting_shards(dir, 2000, {2000}), /*vocab_size=*/1000);
  MagicPrimeSampler sampler(data, {10, 1, 1, 1});
  std::vector<int32_t> tokens(11);
  bool raised = false;
  for (int64_t step = 0; step < 200 && !raised; ++step) {
    try {
      sampler.fill(step, 0, 0, tokens.data());
    } catch (const Error& e) {
      raised = true;
      EXPECT_NE(std::string(e.what()).find("count_0.bin: token"), std::string::npos) << e.what();
    }
  }
  EXPECT_TRUE(raised);
}

TEST(SequentialSampler, WindowsInOrderThenPadding) {
  ScratchDir dir;
  const int64_t ctx = 10;
  TokenDataset data(write_counting_shards(dir, 205, {100}));
  BatchLayout layout{ctx, 2, 8, 2};
  SequentialSampler sampler(data, layout);
  EXPECT_EQ(sampler.num_windows(), 20);  // floor((205 - 1) / 10)
  EXPECT_EQ(sampler.num_steps(), 3);
  std::set<int32_t> starts;
  int64_t valid_rows = 0;
  std::vector<int32_t> tokens(static_cast<size_t>(2 * (ctx + 1)));
  for (int64_t step = 0; step < sampler.num_steps(); ++step) {
    for (int64_t micro = 0; micro < layout.grad_accum(); ++micro) {
      for (int64_t rank = 0; rank < 2; ++rank) {
        int64_t valid = sampler.fill(step, micro, rank, tokens.data(), /*pad_id=*/-1);
        for (int64_t row = 0; row < 2; ++row) {
          const int32_t* window = tokens.data() + row * (ctx + 1);
          uint64_t g = global_sample_index(layout, step, micro, rank, row);
          if (row < valid) {
            EXPECT_EQ(window[0], static_cast<int32_t>(g) * ctx);
            EXPECT_EQ(window[ctx], static_cast<int32_t>(g) * ctx + ctx);
            starts.insert(window[0]);
          } else {
            EXPECT_GE(g, 20u);
            EXPECT_EQ(window[0], -1);
          }
        }
        valid_rows += valid;
      }
    }
  }
  EXPECT_EQ(valid_rows, 20);
  EXPECT_EQ(starts.size(), 20u);
}

}  // namespace
}  // namespace rwkv::data
