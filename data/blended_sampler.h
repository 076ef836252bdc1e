// A weighted mixture of datasets (Megatron's blended dataset, without state):
// each training sample g is taken from one component dataset k, chosen so
// that component k supplies a share w_k / sum(w) of every stretch of samples,
// and within k the samples are read in that dataset's own order (RWKV-LM's
// magic-prime order over k's windows, or k's windows in sequence).
//
// Shares. With the period P = 2^16, component k gets n_k of every P samples:
// n_k = floor(P w_k / W) (W = sum of weights), plus one for the components
// with the largest remainders until sum n_k = P (Hamilton's method; ties go
// to the lower index). Every n_k must be at least 1.
//
// Interleaving within a period. Positions i = 0..P-1 are dealt one at a time
// to the component with the largest deficit
//
//     d_k(i) = n_k * (i + 1) - P * c_k(i)        (c_k(i): positions k has so far)
//
// among those with c_k < n_k (ties: the lower index). All in integers, so
// every machine and compiler deals the same table. Each component's count
// stays within about one sample of its share at every prefix.
//
// Sample g: position i = g mod P of period b = g / P; its component is
// table[i].component and its index within the component is
//
//     j = b * n_k + table[i].rank                 (rank: c_k(i) at position i)
//
// so component k reads its samples j = 0, 1, 2, ... exactly once each, in
// order of g. j then goes through k's own window order. Nothing depends on
// anything but g, so a resumed run, and every data-parallel size (g is the
// global sample index of sampler.h), reads the same windows.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/sampler.h"
#include "data/token_dataset.h"

namespace rwkv::data {

enum class WindowOrder { MagicPrime, Sequential };

struct MixtureComponent {
  std::string name;              // for messages and logs: the config entry (a path or glob)
  const TokenDataset* data = nullptr;
  double weight = 0.0;           // > 0; only the ratios matter
};

class BlendedSampler {
 public:
  static constexpr uint32_t kPeriod = 1u << 16;

  BlendedSampler(std::vector<MixtureComponent> components, BatchLayout layout, WindowOrder order);

  size_t num_components() const { return components_.size(); }
  const MixtureComponent& component(size_t k) const { return components_.at(k); }
  // n_k: samples of every kPeriod that component k supplies.
  uint32_t period_share(size_t k) const { return share_.at(k); }
  double fraction(size_t k) const { return static_cast<double>(share_.at(k)) / kPeriod; }
  // Distinct windows of component k: its magic prime, or its whole windows.
  uint64_t windows_per_epoch(size_t k) const { return windows_.at(k); }
  // Passes over component k's windows that the first num_samples samples make.
  double epochs(size_t k, uint64_t num_samples) const;
  const BatchLayout& layout() const { return layout_; }
  WindowOrder order() const { return order_; }

  struct Pick {
    uint32_t component;
    uint64_t index;  // j: the sample's index within its component
  };
  Pick pick(uint64_t global_sample) const;
  // First token of component k's window for its sample j.
  int64_t window_start(size_t k, uint64_t index) const;

  // tokens: [micro_batch, ctx_len + 1], row-major, as MagicPrimeSampler::fill.
  void fill(int64_t step, int64_t micro_step, int64_t dp_rank, int32_t* tokens) const;

 private:
  struct Slot {
    uint32_t component;
    uint32_t rank;  // c_k at this position: how many earlier positions of the period went to k
  };
  static std::vector<Slot> deal_period(const std::vector<uint32_t>& shares, uint32_t period);
  std::vector<MixtureComponent> components_;
  BatchLayout layout_;
  WindowOrder order_;
  std::vector<uint32_t> share_;    // n_k, summing to kPeriod
  std::vector<uint64_t> windows_;  // per component: magic prime or whole windows
  std::vector<uint64_t> factor_;   // per component: magic-prime multiplier (MagicPrime order)
  std::vector<Slot> table_;        // [kPeriod]
};

// n_k for weights w (Hamilton's method over `period`, as above). Throws, naming
// the component, for a weight that is not a finite number > 0 or whose share
// rounds to nothing.
std::vector<uint32_t> mixture_shares(const std::vector<MixtureComponent>& components, uint32_t period);

}  // namespace rwkv::data
