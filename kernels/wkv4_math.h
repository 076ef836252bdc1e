// WKV-4 per-channel recurrence, forward and backward, shared by the CPU and
// CUDA kernels. One (batch, channel) pair is one independent scan over time.
//
// Definition, with w = -exp(time_decay) < 0 and u = time_first:
//
//   wkv_t = (A_t + e^{u+k_t} v_t) / (B_t + e^{u+k_t})
//   A_t   = sum_{i<t} e^{(t-1-i) w + k_i} v_i,   B_t = sum_{i<t} e^{(t-1-i) w + k_i}
//   A_{t+1} = e^w A_t + e^{k_t} v_t,             B_{t+1} = e^w B_t + e^{k_t}
//
// Stability: A and B are kept as (aa, bb) times a shared e^{pp}; every exp
// takes a difference against the running maximum exponent, so no exp sees an
// argument above 0 and |k| in the thousands neither overflows nor loses the
// small terms. pp starts at -1e38 (an empty sum).
//
// Backward. Let D_t = B_t + e^{u+k_t} (the denominator) and g_t = dL/dwkv_t.
//   dL/du   = sum_t g_t e^{u+k_t} (v_t - wkv_t) / D_t
//   dL/dw   = sum_t g_t (A'_t - wkv_t B'_t) / D_t,  where A'_t = dA_t/dw = sum_{i<t} (t-1-i) e^{...} v_i
//             obeys A'_{t+1} = e^w (A'_t + A_t) (same for B'), kept on the same e^{pp} scale.
//   dL/dv_i = e^{k_i} [ g_i e^u / D_i + G_i ],
//   dL/dk_i = e^{k_i} [ g_i e^u (v_i - wkv_i) / D_i + v_i G_i - H_i ],
//             G_i = sum_{t>i} e^{(t-1-i) w} g_t / D_t,  H_i = sum_{t>i} e^{(t-1-i) w} g_t wkv_t / D_t,
//             G_{i-1} = e^w G_i + g_i / D_i (H alike), a reverse scan kept as (gg, hh) times e^{qq}.
// The forward sweep of the backward pass records wkv_t and the log-denominator
// ld_t = log D_t per step, which the reverse sweep reads back; e^{k_i + qq} and
// e^{u + k_i - ld_i} never have positive arguments either.
#pragma once

#include <cmath>

#include "core/hd.h"
#include "kernels/fast_exp.h"

namespace rwkv {

// "Minus infinity" for an empty exponent-shifted sum, finite so that
// differences stay defined.
constexpr float kWkvEmptyExponent = -1e38f;

template <typename T>
RWKV_HD T wkv_max(T a, T b) { return a > b ? a : b; }

template <typename T>
struct Wkv4Forward {
  T aa = 0, bb = 0, pp = static_cast<T>(kWkvEmptyExponent);

  // Returns wkv_t for input (k, v) at this step, then takes the step into the state.
  RWKV_HD T step(T w, T u, T k, T v) {
    T ww = u + k;
    T p = wkv_max(pp, ww);
    T e1 = exp_t(pp - p);
    T e2 = exp_t(ww - p);
    T y = (e1 * aa + e2 * v) / (e1 * bb + e2);
    ww = w + pp;
    p = wkv_max(ww, k);
    e1 = exp_t(ww - p);
    e2 = exp_t(k - p);
    aa = e1 * aa + e2 * v;
    bb = e1 * bb + e2;
    pp = p;
    return y;
  }
};

// Forward sweep of the backward pass: also carries A', B' and accumulates the
// gradients of w and u.
template <typename T>
struct Wkv4BackwardForwardSweep {
  T aa = 0, bb = 0, da = 0, db = 0, pp = static_cast<T>(kWkvEmptyExponent);
  T gw = 0, gu = 0;

  // Outputs wkv_t (y) and log D_t (ld) for this step.
  RWKV_HD void step(T w, T u, T k, T v, T gy, T& y, T& ld) {
    T ww = u + k;
    T p = wkv_max(pp, ww);
    T e1 = exp_t(pp - p);
    T e2 = exp_t(ww - p);
    T den = e1 * bb + e2;
    T inv = T(1) / den;
    y = (e1 * aa + e2 * v) * inv;
    ld = p + fast_log_t(den);  // den >= 1: one of its two terms is e^0
    gu += gy * e2 * (v - y) * inv;
    gw += gy * e1 * (da - y * db) * inv;
    ww = w + pp;
    p = wkv_max(ww, k);
    e1 = exp_t(ww - p);
    e2 = exp_t(k - p);
    da = e1 * (da + aa);
    db = e1 * (db + bb);
    aa = e1 * aa + e2 * v;
    bb = e1 * bb + e2;
    pp = p;
  }
};

// Reverse sweep: given wkv_t and log D_t from the forward sweep, produces the
// gradients of k_t and v_t, walking t from T-1 down to 0.
template <typename T>
struct Wkv4BackwardReverseSweep {
  T gg = 0, hh = 0, qq = static_cast<T>(kWkvEmptyExponent);

  RWKV_HD void step(T w, T u, T k, T v, T gy, T y, T ld, T& gk, T& gv) {
    T a = gy * exp_t(u + k - ld);
    T b = exp_t(k + qq);
    gv = a + b * gg;
    gk = a * (v - y) + b * (gg * v - hh);
    T ww = w + qq;
    T q = wkv_max(ww, -ld);
    T e1 = exp_t(ww - q);
    T e2 = exp_t(-ld - q) * gy;
    gg = e1 * gg + e2;
    hh = e1 * hh + e2 * y;
    qq = q;
  }
};

// w = -exp(time_decay); dL/dtime_decay = dL/dw * dw/dtime_decay = dL/dw * w.
template <typename T>
RWKV_HD T wkv4_decay(T time_decay) { return -exact_exp(time_decay); }

}  // namespace rwkv
