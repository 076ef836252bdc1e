// The weighted mixture of datasets (data/blended_sampler.h): Hamilton shares,
// the largest-deficit dealing, every component's samples once each in its
// own window order, one component being exactly RWKV-LM's sampler, global
// batches independent of the data-parallel size, and clear errors.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "data/binidx_writer.h"
#include "data/blended_sampler.h"
#include "data/magic_prime.h"
#include "test_util.h"

namespace rwkv::data {
namespace {

using testing::ScratchDir;

// One shard whose token at stream position i is offset + i, so a window's
// first token tells which dataset it came from and where it starts.
std::string write_offset_dataset(const ScratchDir& dir, const std::string& name, int64_t total, int32_t offset) {
  const std::string prefix = dir / name;
  BinIdxWriter writer(prefix, TokenDType::I32);
  for (int64_t next = 0; next < total;) {
    const int64_t length = std::min<int64_t>(total - next, 50);
    std::vector<int32_t> doc;
    for (int64_t k = 0; k < length; ++k) doc.push_back(offset + static_cast<int32_t>(next + k));
    writer.add_document(doc);
    next += length;
  }
  writer.commit();
  return prefix;
}

std::vector<MixtureComponent> weighted(const std::vector<double>& weights) {
  std::vector<MixtureComponent> out;
  for (size_t k = 0; k < weights.size(); ++k) out.push_back({"set" + std::to_string(k), nullptr, weights[k]});
  return out;
}

constexpr uint32_t P = BlendedSampler::kPeriod;

TEST(BlendedSampler, SharesFollowHamiltonsMethod) {
  // 0.7 P = 45875.2 and 0.3 P = 19660.8: floors 45875 + 19660 = 65535, the one
  // left over goes to the larger remainder (0.8).
  EXPECT_EQ(mixture_shares(weighted({0.7, 0.3}), P), (std::vector<uint32_t>{45875, 19661}));
  // 3:1:1 = 39321.6, 13107.2, 13107.2.
  EXPECT_EQ(mixture_shares(weighted({3, 1, 1}), P), (std::vector<uint32_t>{39322, 13107, 13107}));
  // Equal remainders (1/3 each): the lower index first.
  EXPECT_EQ(mixture_shares(weighted({1, 1, 1}), P), (std::vector<uint32_t>{21846, 21845, 21845}));
  // Only ratios matter.
  EXPECT_EQ(mixture_shares(weighted({70, 30}), P), mixture_shares(weighted({0.7, 0.3}), P));
  EXPECT_EQ(mixture_shares(weighted({5}), P), (std::vector<uint32_t>{P}));
  // A small period, worked by hand: 10 x (0.5, 0.25, 0.25) = 5, 2.5, 2.5 -> 5, 3, 2.
  EXPECT_EQ(mixture_shares(weighted({0.5, 0.25, 0.25}), 10), (std::vector<uint32_t>{5, 3, 2}));
}

TEST(BlendedSampler, DealsTheLargestDeficitFirst) {
  ScratchDir dir;
  TokenDataset a(std::vector<std::string>{write_offset_dataset(dir, "a", 4000, 0)});
  TokenDataset b(std::vector<std::string>{write_offset_dataset(dir, "b", 4000, 100000)});
  BlendedSampler sampler({{"a", &a, 0.7}, {"b", &b, 0.3}}, BatchLayout{10, 1, 1, 1}, WindowOrder::MagicPrime);
  // n = (45875, 19661). Deficits n_k (i + 1) - P c_k, by hand:
  //   i=0: 45875, 19661 -> a      i=1: 26214, 39322 -> b      i=2: 72089, -6553 -> a
  //   i=3: 52428, 13108 -> a      i=4: 32767, 32769 -> b      i=5: 78642, -13106 -> a
  const std::vector<uint32_t> want = {0, 1, 0, 0, 1, 0};
  for (uint64_t g = 0; g < want.size(); ++g) EXPECT_EQ(sampler.pick(g).component, want[g]) << "sample " << g;
  EXPECT_EQ(sampler.pick(4).index, 1u);  // b's second sample
  EXPECT_EQ(sampler.pick(5).index, 3u);  // a's fourth
}

TEST(BlendedSampler, EveryComponentGetsItsShareOfEveryStretchAndItsSamplesOnceInOrder) {
  ScratchDir dir;
  std::vector<TokenDataset> sets;
  sets.reserve(4);
  for (int k = 0; k < 4; ++k) {
    sets.emplace_back(std::vector<std::string>{write_offset_dataset(dir, "s" + std::to_string(k), 1000, 0)});
  }
  const std::vector<double> weights = {5, 2, 1, 0.25};
  std::vector<MixtureComponent> components;
  for (int k = 0; k < 4; ++k) components.push_back({"s" + std::to_string(k), &sets[k], weights[k]});
  BlendedSampler sampler(components, BatchLayout{10, 1, 1, 1}, WindowOrder::MagicPrime);
  uint32_t total_share = 0;
  for (size_t k = 0; k < 4; ++k) {
    total_share += sampler.period_share(k);
    EXPECT_NEAR(sampler.fraction(k), weights[k] / 8.25, 1.0 / P);
  }
  EXPECT_EQ(total_share, P);
  // Over two and a half periods: component k's index j counts up 0, 1, 2, ...
  // (each of its samples once, in order of g), and every prefix holds within
  // one sample of k's share.
  std::vector<uint64_t> seen(4, 0);
  double worst = 0.0;
  for (uint64_t g = 0; g < 2 * P + P / 2; ++g) {
    const BlendedSampler::Pick p = sampler.pick(g);
    ASSERT_LT(p.component, 4u);
    ASSERT_EQ(p.index, seen[p.component]) << "sample " << g;
    ++seen[p.component];
    for (size_t k = 0; k < 4; ++k) {
      const double expected = static_cast<double>(g + 1) * sampler.period_share(k) / P;
      worst = std::max(worst, std::abs(static_cast<double>(seen[k]) - expected));
    }
    if (g + 1 == 2 * P) {  // whole periods hold exactly the shares
      for (size_t k = 0; k < 4; ++k) EXPECT_EQ(seen[k], 2u * sampler.period_share(k)) << "component " << k;
    }
  }
  EXPECT_LT(worst, 1.0);
  // epochs(): samples of k among the first n, over k's windows.
  EXPECT_DOUBLE_EQ(sampler.epochs(0, 2 * P + P / 2), static_cast<double>(seen[0]) / sampler.windows_per_epoch(0));
  EXPECT_DOUBLE_EQ(sampler.epochs(3, P), static_cast<double>(sampler.period_share(3)) / sampler.windows_per_epoch(3));
}

TEST(BlendedSampler, OneDatasetReadsExactlyWhatTheMagicPrimeSamplerReads) {
  ScratchDir dir;
  TokenDataset data(std::vector<std::string>{write_offset_dataset(dir, "only", 50000, 0)});
  const BatchLayout layout{16, 2, 8, 2};
  MagicPrimeSampler reference(data, layout);
  BlendedSampler blended({{"only", &data, 2.5}}, layout, WindowOrder::MagicPrime);
  EXPECT_EQ(blended.windows_per_epoch(0), reference.magic_prime());
  std::vector<int32_t> want(2 * 17), got(2 * 17);
  for (int64_t step : {0, 1, 9, 8191, 8192, 100000}) {  // across the period's end (8192 steps x 8 = P)
    for (int64_t micro = 0; micro < layout.grad_accum(); ++micro) {
      for (int64_t rank = 0; rank < 2; ++rank) {
        reference.fill(step, micro, rank, want.data());
        blended.fill(step, micro, rank, got.data());
        ASSERT_EQ(got, want) << "step " << step << " micro " << micro << " rank " << rank;
      }
    }
  }
}

// Every row: ctx + 1 consecutive tokens of one dataset, at the window its
// index j has in that dataset's own order.
void expect_rows_follow_component_order(WindowOrder order) {
  ScratchDir dir;
  const int64_t ctx = 10;
  TokenDataset big(std::vector<std::string>{write_offset_dataset(dir, "big", 3000, 0)});
  TokenDataset small(std::vector<std::string>{write_offset_dataset(dir, "small", 800, 100000)});
  const BatchLayout layout{ctx, 4, 8, 2};
  BlendedSampler sampler({{"big", &big, 1.0}, {"small", &small, 3.0}}, layout, order);
  if (order == WindowOrder::MagicPrime) {
    EXPECT_EQ(sampler.windows_per_epoch(0), magic_prime_for(3000, ctx));
    EXPECT_EQ(sampler.windows_per_epoch(1), magic_prime_for(800, ctx));
  } else {
    EXPECT_EQ(sampler.windows_per_epoch(0), 299u);  // (3000 - 1) / 10
    EXPECT_EQ(sampler.windows_per_epoch(1), 79u);
  }
  std::vector<int32_t> tokens(4 * 11);
  std::map<uint32_t, std::set<int32_t>> starts;  // component -> window starts seen in its first epoch
  for (int64_t step = 0; step < 60; ++step) {
    for (int64_t rank = 0; rank < 2; ++rank) {
      sampler.fill(step, 0, rank, tokens.data());
      for (int64_t row = 0; row < 4; ++row) {
        const int32_t* window = tokens.data() + row * (ctx + 1);
        const BlendedSampler::Pick p = sampler.pick(global_sample_index(layout, step, 0, rank, row));
        const int32_t offset = p.component == 0 ? 0 : 100000;
        ASSERT_EQ(window[0] >= 100000, p.component == 1);
        for (int64_t k = 0; k <= ctx; ++k) ASSERT_EQ(window[k], window[0] + k);
        const uint64_t p_k = sampler.windows_per_epoch(p.component);
        const uint64_t expected_window = order == WindowOrder::MagicPrime
                                             ? magic_prime_chunk(p_k, magic_prime_factor(p_k), p.index)
                                             : p.index % p_k;
        ASSERT_EQ(window[0] - offset, static_cast<int32_t>(expected_window * ctx));
        if (p.index < p_k) starts[p.component].insert(window[0]);
      }
    }
  }
  // 480 samples at 1:3: 120 of big (of its 293 or 299 windows, all distinct),
  // 360 of small, more than one epoch of its windows: each once in the first.
  EXPECT_EQ(starts[0].size(), 120u);
  EXPECT_EQ(starts[1].size(), sampler.windows_per_epoch(1));
}

TEST(BlendedSampler, RowsFollowTheirDatasetsMagicPrimeOrder) { expect_rows_follow_component_order(WindowOrder::MagicPrime); }
TEST(BlendedSampler, RowsFollowTheirDatasetsSequentialOrder) { expect_rows_follow_component_order(WindowOrder::Sequential); }

TEST(BlendedSampler, GlobalBatchIsTheSameForEveryDataParallelSize) {
  ScratchDir dir;
  TokenDataset a(std::vector<std::string>{write_offset_dataset(dir, "a", 5000, 0)});
  TokenDataset b(std::vector<std::string>{write_offset_dataset(dir, "b", 9000, 100000)});
  std::map<int64_t, std::vector<std::multiset<int32_t>>> by_dp;
  for (int64_t dp : {1, 2, 4}) {
    const BatchLayout layout{12, 2, 8, dp};
    BlendedSampler sampler({{"a", &a, 0.35}, {"b", &b, 0.65}}, layout, WindowOrder::MagicPrime);
    std::vector<int32_t> tokens(2 * 13);
    for (int64_t step : {0, 3, 8192, 77777}) {
      std::multiset<int32_t> starts;
      for (int64_t micro = 0; micro < layout.grad_accum(); ++micro) {
        for (int64_t rank = 0; rank < dp; ++rank) {
          sampler.fill(step, micro, rank, tokens.data());
          starts.insert(tokens[0]);
          starts.insert(tokens[13]);
        }
      }
      by_dp[dp].push_back(starts);
    }
  }
  EXPECT_EQ(by_dp[1], by_dp[2]);
  EXPECT_EQ(by_dp[1], by_dp[4]);
}

TEST(BlendedSampler, RefusesBadWeightsAndTooSmallDatasetsNamingTheEntry) {
  ScratchDir dir;
  TokenDataset a(std::vector<std::string>{write_offset_dataset(dir, "a", 5000, 0)});
  TokenDataset tiny(std::vector<std::string>{write_offset_dataset(dir, "tiny", 25, 0)});
  const BatchLayout layout{10, 1, 1, 1};
  auto message_of = [&](std::vector<MixtureComponent> components, WindowOrder order = WindowOrder::MagicPrime) {
    try {
      BlendedSampler sampler(std::move(components), layout, order);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  for (double bad : {0.0, -1.0, nan, inf}) {
    const std::string m = message_of({{"data/a", &a, 1.0}, {"data/b*", &a, bad}});
    EXPECT_NE(m.find("dataset 1 (data/b*)"), std::string::npos) << m;
    EXPECT_NE(m.find("finite number > 0"), std::string::npos) << m;
  }
  std::string m = message_of({{"data/a", &a, 1.0}, {"data/rare", &a, 1e-6}});
  EXPECT_NE(m.find("data/rare"), std::string::npos) << m;
  EXPECT_NE(m.find("rounds to none"), std::string::npos) << m;
  m = message_of({{"data/a", &a, 1.0}, {"data/tiny", &tiny, 1.0}});
  EXPECT_NE(m.find("data/tiny has 25 tokens"), std::string::npos) << m;
  m = message_of({{"data/a", &a, 1.0}, {"data/tiny", &tiny, 1.0}}, WindowOrder::Sequential);
  EXPECT_EQ(m, "no error");  // two whole windows of 11 are enough for the sequential order
  m = message_of({});
  EXPECT_NE(m.find("no datasets"), std::string::npos) << m;
}

}  // namespace
}  // namespace rwkv::data
