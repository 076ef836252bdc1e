#include "data/blended_sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "data/magic_prime.h"

namespace rwkv::data {

std::vector<uint32_t> mixture_shares(const std::vector<MixtureComponent>& components, uint32_t period) {
  RWKV_CHECK(!components.empty(), "data mixture: no datasets to mix");
  RWKV_CHECK(components.size() <= period, "data mixture: ", components.size(), " datasets, more than the ", period,
             " samples of a mixing period\n  ---> HINT: merge small datasets into one entry (a glob)");
  double total = 0.0;
  for (size_t k = 0; k < components.size(); ++k) {
    const double w = components[k].weight;
    RWKV_CHECK(std::isfinite(w) && w > 0.0, "data mixture: the weight of dataset ", k, " (", components[k].name,
               ") is ", w, "; expected a finite number > 0\n  ---> HINT: leave a dataset out of the list instead of "
               "giving it weight 0");
    total += w;
  }
  RWKV_CHECK(std::isfinite(total), "data mixture: the weights add up to ", total,
             "\n  ---> HINT: only the ratios matter; use smaller numbers, e.g. fractions of 1");
  // Hamilton's method: the floor of each quota, then one more for the largest remainders.
  std::vector<uint32_t> shares(components.size());
  std::vector<double> remainder(components.size());
  uint64_t dealt = 0;
  for (size_t k = 0; k < components.size(); ++k) {
    const double quota = static_cast<double>(period) * components[k].weight / total;
    const double whole = std::floor(quota);
    shares[k] = static_cast<uint32_t>(whole);
    remainder[k] = quota - whole;
    dealt += shares[k];
  }
  std::vector<size_t> order(components.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return remainder[a] > remainder[b]; });
  for (size_t i = 0; dealt < period && i < order.size(); ++i, ++dealt) ++shares[order[i]];
  RWKV_CHECK(dealt == period, "data mixture: internal error: shares add up to ", dealt, ", not ", period);
  for (size_t k = 0; k < components.size(); ++k) {
    RWKV_CHECK(shares[k] >= 1, "data mixture: dataset ", k, " (", components[k].name, ") has weight ",
               components[k].weight, " of ", total, " in all, a share below 1/", period,
               " of the samples, which rounds to none\n  ---> HINT: raise its weight, or leave it out");
  }
  return shares;
}

// The dealing of one period (see the header): position i goes to the
// component with the largest deficit n_k (i + 1) - P c_k among those not yet full.
std::vector<BlendedSampler::Slot> BlendedSampler::deal_period(const std::vector<uint32_t>& shares, uint32_t period) {
  std::vector<Slot> table(period);
  std::vector<uint32_t> dealt(shares.size(), 0);
  for (uint32_t i = 0; i < period; ++i) {
    size_t best = shares.size();
    int64_t best_deficit = 0;
    for (size_t k = 0; k < shares.size(); ++k) {
      if (dealt[k] == shares[k]) continue;
      const int64_t deficit = static_cast<int64_t>(shares[k]) * (i + 1) - static_cast<int64_t>(period) * dealt[k];
      if (best == shares.size() || deficit > best_deficit) {
        best = k;
        best_deficit = deficit;
      }
    }
    table[i] = Slot{static_cast<uint32_t>(best), dealt[best]++};
  }
  return table;
}

BlendedSampler::BlendedSampler(std::vector<MixtureComponent> components, BatchLayout layout, WindowOrder order)
    : components_(std::move(components)), layout_(layout), order_(order) {
  layout_.validate();
  share_ = mixture_shares(components_, kPeriod);
  const uint64_t ctx = static_cast<uint64_t>(layout_.ctx_len);
  for (const MixtureComponent& c : components_) {
    RWKV_CHECK(c.data != nullptr, "data mixture: dataset ", c.name, " is not open");
    const uint64_t tokens = static_cast<uint64_t>(c.data->num_tokens());
    if (order_ == WindowOrder::MagicPrime) {
      const uint64_t prime = magic_prime_for(tokens, ctx);
      RWKV_CHECK(prime > 0, "data mixture: dataset ", c.name, " has ", tokens, " tokens, too few for ctx_len=", ctx,
                 ": the magic-prime sampler needs at least 3 x ctx_len tokens\n  ---> HINT: add data to it, "
                 "merge it with another entry, or use a shorter ctx_len");
      windows_.push_back(prime);
      factor_.push_back(magic_prime_factor(prime));
    } else {
      const uint64_t windows = tokens > 0 ? (tokens - 1) / ctx : 0;
      RWKV_CHECK(windows > 0, "data mixture: dataset ", c.name, " has ", tokens, " tokens, fewer than ctx_len + 1 = ",
                 ctx + 1, "\n  ---> HINT: add data to it, merge it with another entry, or use a shorter ctx_len");
      windows_.push_back(windows);
      factor_.push_back(0);
    }
  }
  table_ = deal_period(share_, kPeriod);
}

double BlendedSampler::epochs(size_t k, uint64_t num_samples) const {
  // Samples of k among the first num_samples: whole periods, then the table's prefix.
  const uint64_t periods = num_samples / kPeriod, rest = num_samples % kPeriod;
  uint64_t count = periods * share_.at(k);
  for (uint64_t i = 0; i < rest; ++i) count += table_[i].component == k ? 1 : 0;
  return static_cast<double>(count) / static_cast<double>(windows_.at(k));
}

BlendedSampler::Pick BlendedSampler::pick(uint64_t global_sample) const {
  const Slot& slot = table_[global_sample % kPeriod];
  const uint64_t period = global_sample / kPeriod;
  return Pick{slot.component, period * share_[slot.component] + slot.rank};
}

int64_t BlendedSampler::window_start(size_t k, uint64_t index) const {
  const uint64_t window = order_ == WindowOrder::MagicPrime ? magic_prime_chunk(windows_.at(k), factor_.at(k), index)
                                                            : index % windows_.at(k);
  return static_cast<int64_t>(window) * layout_.ctx_len;
}

void BlendedSampler::fill(int64_t step, int64_t micro_step, int64_t dp_rank, int32_t* tokens) const {
  const int64_t width = layout_.ctx_len + 1;
  for (int64_t row = 0; row < layout_.micro_batch; ++row) {
    const Pick p = pick(global_sample_index(layout_, step, micro_step, dp_rank, row));
    components_[p.component].data->read(window_start(p.component, p.index), width, tokens + row * width);
  }
}

}  // namespace rwkv::data
