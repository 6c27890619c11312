// optimlab's fused CPU steps: one pass over every element of every tensor of a param group.
//
// Built at first use by optimlab.optim.compiled (torch.utils.cpp_extension.load). Each update rule
// reads the gradient, the parameter and its state once and writes them once, element by element,
// in the order of optimlab's unfused (per-tensor) path. With `rows[t] > 0` the effective gradient of
// tensor t is first centred per row of rows[t] elements (WGD's "filter" mean, over a row while it is
// in cache). The work is cut into chunks of whole rows (~16K elements) over all tensors and run on
// torch's intra-op threads (at::parallel_for), so torch.set_num_threads applies.
//
// Coefficients are runtime doubles: a change of lr or momentum (a scheduler) rebuilds nothing.

#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace {

enum Kind : int64_t {
  kSGD = 0,          // torch.optim.SGD: none / heavy ball / Nesterov (mom_mode 0 none, 1 update, 2 fresh: buffer = g)
  kEMA = 1,          // sgdm-ema: m <- lerp(m, g, 1-beta); p <- p - lr m
                     // (rsgdm runs as kSGD: Nesterov on its heavy-ball buffer at lr(1-beta); see rsgdm.py)
  kTMSGD = 2,        // tm-sgd SGD phase: v <- d; p <- p - lr v   (d = g, or the heavy-ball buffer)
  kTMMulti = 3,      // tm-sgd multi-step: v <- v + c1 v_k + c2 d; p <- p + unit v
  kAdam = 4,         // torch.optim.Adam/AdamW (mom_mode 1: amsgrad): p <- decay_mul p; m <- lerp(m, g, 1-beta1);
                     // v <- beta2 v + (1-beta2) g g; p <- p - step_size m / (sqrt(v or max v) / bc2_sqrt + eps)
};

// Internal variants: the branches of a kind (momentum or not, Nesterov) are template arguments, so
// every inner loop is branch-free. A fresh heavy-ball buffer (mom_mode 2) is the update of a ZERO
// buffer with momentum 0 and no dampening (0·0 + 1·g = g exactly); the caller allocates it zeroed.
enum Variant {
  vPlain, vHeavy, vNesterov, vEMA, vTM, vTMMom, vTMMulti, vTMMultiMom, vEMAHigh,
  vAdam, vAdamHigh, vAdamAms, vAdamAmsHigh
};

struct Coef {
  double lr, wd, sign, momentum, dampening, nesterov, mom_mode, beta, c1, c2, unit;
  double beta2, eps, step_size, bc2_sqrt, decay_mul;  // Adam
};

Coef unpack(const std::vector<double>& c) {
  TORCH_CHECK(c.size() == 16, "optimlab fused step: expected 16 coefficients, got ", c.size());
  return Coef{c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10], c[11], c[12], c[13], c[14], c[15]};
}

template <typename T>
struct Consts {
  T wd, sign, w, hb_mom, hb_omd, nest_mom, c1, c2, unit, neg_lr;
  T beta2, one_minus_beta2, eps, neg_step_size, bc2_sqrt, decay_mul;
  bool zero_lr;
  explicit Consts(const Coef& c) {
    const bool fresh = c.mom_mode == 2.0;
    wd = T(c.wd);
    sign = T(c.sign);
    w = 1.0 - c.beta < 0.5 ? T(1.0 - c.beta) : T(1.0 - c.beta) - T(1);  // the lerp coefficient (see lerp)
    hb_mom = fresh ? T(0) : T(c.momentum);            // buffer <- hb_mom * buffer + hb_omd * g
    hb_omd = fresh ? T(1) : T(1.0 - c.dampening);
    nest_mom = T(c.momentum);
    c1 = T(c.c1);
    c2 = T(c.c2);
    unit = T(c.unit);
    neg_lr = T(-c.lr);
    zero_lr = c.lr == 0.0;
    beta2 = T(c.beta2);
    one_minus_beta2 = T(1.0 - c.beta2);
    eps = T(c.eps);
    neg_step_size = T(-c.step_size);
    bc2_sqrt = T(c.bc2_sqrt);
    decay_mul = T(c.decay_mul);
  }
};

struct Job {
  int64_t t, begin, end;
};

constexpr int64_t kChunk = 1 << 14;

// torch's CPU lerp: self + w (end - self) for w < 0.5, else end - (end - self)(1 - w), written as
// base + c (end - self) with c = w or w - 1 (the same rounding: w - 1 = -(1 - w) exactly). Which of
// the two is a template argument, so the loop has no branch and vectorizes.
template <typename T, bool LOW>
inline T lerp(T self, T end, T c) {
  return (LOW ? self : end) + c * (end - self);
}

// The update of element i given its effective gradient g (sign, decay and centring applied).
template <typename T, int V>
inline void update(T* __restrict__ p, T g, T* __restrict__ b1, T* __restrict__ b2, T* __restrict__ b3, int64_t i,
                   const Consts<T>& k) {
  if constexpr (V == vPlain) {
    p[i] = p[i] + k.neg_lr * g;
  } else if constexpr (V == vHeavy || V == vNesterov) {
    T b = b1[i] * k.hb_mom;
    b = b + k.hb_omd * g;
    b1[i] = b;
    const T d = V == vNesterov ? g + k.nest_mom * b : b;
    p[i] = p[i] + k.neg_lr * d;
  } else if constexpr (V == vEMA || V == vEMAHigh) {
    const T m = lerp<T, V == vEMA>(b1[i], g, k.w);
    b1[i] = m;
    p[i] = p[i] + k.neg_lr * m;
  } else if constexpr (V >= vAdam) {  // torch's _single_tensor_adam, element by element
    constexpr bool kLow = V == vAdam || V == vAdamAms;
    const T q = p[i] * k.decay_mul;  // AdamW's decoupled decay (1 otherwise: exact)
    const T m = lerp<T, kLow>(b1[i], g, k.w);
    b1[i] = m;
    T v = b2[i] * k.beta2;
    v = v + k.one_minus_beta2 * g * g;
    b2[i] = v;
    if constexpr (V == vAdamAms || V == vAdamAmsHigh) {
      v = b3[i] > v ? b3[i] : v;
      b3[i] = v;
    }
    const T denom = std::sqrt(v) / k.bc2_sqrt + k.eps;
    p[i] = q + k.neg_step_size * (m / denom);
  } else {  // tm-sgd: d = g, or the heavy-ball buffer b3 <- mom b3 + g
    T d = g;
    if constexpr (V == vTMMom || V == vTMMultiMom) {
      T b = b3[i] * k.hb_mom;
      d = b + g;
      b3[i] = d;
    }
    if constexpr (V == vTM || V == vTMMom) {
      const T moved = p[i] + k.neg_lr * d;  // lr = 0: no step and a zero displacement (selects, no branch)
      b1[i] = k.zero_lr ? T(0) : d;
      p[i] = k.zero_lr ? p[i] : moved;
    } else {
      T v = b1[i] + k.c1 * b2[i];
      v = v + k.c2 * d;
      b1[i] = v;
      p[i] = p[i] + k.unit * v;
    }
  }
}

// Mean of sign*g + wd*p over [r0, r1): a SIMD reduction in the tensor's dtype (partial sums in
// vector lanes, as torch's own float32 mean sums in float32 with partial sums).
template <typename T>
inline T row_mean(const T* __restrict__ p, const T* __restrict__ g, int64_t r0, int64_t r1, T sign, T wd) {
  T s = T(0);
#pragma omp simd reduction(+ : s)
  for (int64_t i = r0; i < r1; ++i) s += sign * g[i] + wd * p[i];
  return s / T(r1 - r0);
}

template <typename T, int V, bool CENTRE, bool WRITE_GRAD>
inline void update_range(T* __restrict__ p, T* __restrict__ g_raw, T* __restrict__ b1, T* __restrict__ b2,
                         T* __restrict__ b3, int64_t r0, int64_t r1, T mean, const Consts<T>& k) {
  for (int64_t i = r0; i < r1; ++i) {
    T g = k.sign * g_raw[i] + k.wd * p[i];
    if constexpr (CENTRE) g = g - mean;
    if constexpr (WRITE_GRAD) g_raw[i] = k.sign * g;
    update<T, V>(p, g, b1, b2, b3, i, k);
  }
}

// One job: [begin, end) of one tensor. Centred: rows of `row` elements; the mean of row r + 1 is
// summed in the same loop that updates row r (one stream over memory, the row being updated is in
// cache from the previous iteration's sum), instead of a separate pass per row.
template <typename T, int V, bool CENTRE, bool WRITE_GRAD>
void run_job(T* __restrict__ p, T* __restrict__ g_raw, T* __restrict__ b1, T* __restrict__ b2,
             T* __restrict__ b3, int64_t begin, int64_t end, int64_t row, const Consts<T>& k) {
  if constexpr (!CENTRE) {
    update_range<T, V, false, WRITE_GRAD>(p, g_raw, b1, b2, b3, begin, end, T(0), k);
  } else {
    T mean = row_mean(p, g_raw, begin, begin + row, k.sign, k.wd);
    for (int64_t r0 = begin; r0 < end; r0 += row) {
      const int64_t nxt = r0 + row;
      if (nxt >= end) {
        update_range<T, V, true, WRITE_GRAD>(p, g_raw, b1, b2, b3, r0, nxt, mean, k);
        break;
      }
      T s = T(0);
#pragma omp simd reduction(+ : s)
      for (int64_t j = 0; j < row; ++j) {
        const int64_t i = r0 + j;
        s += k.sign * g_raw[nxt + j] + k.wd * p[nxt + j];
        T g = k.sign * g_raw[i] + k.wd * p[i];
        g = g - mean;
        if constexpr (WRITE_GRAD) g_raw[i] = k.sign * g;
        update<T, V>(p, g, b1, b2, b3, i, k);
      }
      mean = s / T(row);
    }
  }
}

template <typename T, int V>
void run_any(T* p, T* g, T* b1, T* b2, T* b3, const Job& job, int64_t row, bool write_grad, const Consts<T>& k) {
  if (row > 0) {
    if (write_grad) {
      run_job<T, V, true, true>(p, g, b1, b2, b3, job.begin, job.end, row, k);
    } else {
      run_job<T, V, true, false>(p, g, b1, b2, b3, job.begin, job.end, row, k);
    }
  } else if (write_grad) {
    run_job<T, V, false, true>(p, g, b1, b2, b3, job.begin, job.end, row, k);
  } else {
    run_job<T, V, false, false>(p, g, b1, b2, b3, job.begin, job.end, row, k);
  }
}

int variant(int64_t kind, const Coef& c) {
  const bool mom = c.mom_mode != 0.0;
  switch (kind) {
    case kSGD: return !mom ? vPlain : (c.nesterov != 0.0 ? vNesterov : vHeavy);
    case kEMA: return 1.0 - c.beta < 0.5 ? vEMA : vEMAHigh;
    case kTMSGD: return mom ? vTMMom : vTM;
    case kAdam: {
      const bool low = 1.0 - c.beta < 0.5;
      return mom ? (low ? vAdamAms : vAdamAmsHigh) : (low ? vAdam : vAdamHigh);
    }
    default: return mom ? vTMMultiMom : vTMMulti;
  }
}

template <typename T>
T* ptr(const std::vector<at::Tensor>& xs, size_t t) {
  return xs.empty() ? nullptr : xs[t].data_ptr<T>();
}

void check_list(const std::vector<at::Tensor>& xs, const std::vector<at::Tensor>& params, const char* what,
                bool needed) {
  TORCH_CHECK(!needed || !xs.empty(), "optimlab fused step: this update needs ", what);
  if (xs.empty()) return;
  TORCH_CHECK(xs.size() == params.size(), "optimlab fused step: ", what, " has ", xs.size(), " tensors, params ",
              params.size());
  for (size_t t = 0; t < xs.size(); ++t) {
    TORCH_CHECK(xs[t].device().is_cpu() && xs[t].scalar_type() == params[t].scalar_type() &&
                    xs[t].is_contiguous() && xs[t].numel() == params[t].numel(),
                "optimlab fused step: ", what, "[", t, "] must be a contiguous CPU tensor like its parameter");
  }
}

}  // namespace

void step(int64_t kind, std::vector<at::Tensor> params, std::vector<at::Tensor> grads, std::vector<at::Tensor> b1,
          std::vector<at::Tensor> b2, std::vector<at::Tensor> b3, std::vector<int64_t> rows, std::vector<double> coef,
          bool write_grad) {
  const Coef c = unpack(coef);
  if (params.empty()) return;
  TORCH_CHECK(kind >= kSGD && kind <= kAdam, "optimlab fused step: unknown kind ", kind);
  TORCH_CHECK(rows.size() == params.size(), "optimlab fused step: rows must have one entry per parameter");
  const auto dtype = params[0].scalar_type();
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kDouble, "optimlab fused step: float32 or float64 only, got ", dtype);
  for (auto& p : params) {
    TORCH_CHECK(p.scalar_type() == dtype, "optimlab fused step: all parameters of one call share a dtype");
    TORCH_CHECK(p.device().is_cpu() && p.is_contiguous(), "optimlab fused step: contiguous CPU parameters only");
  }
  const int v = variant(kind, c);
  check_list(grads, params, "grads", true);
  check_list(b1, params, "buffer 1", v != vPlain);
  check_list(b2, params, "buffer 2", v == vTMMulti || v == vTMMultiMom || v >= vAdam);
  check_list(b3, params, "buffer 3", v == vTMMom || v == vTMMultiMom || v == vAdamAms || v == vAdamAmsHigh);
  std::vector<Job> jobs;
  for (size_t t = 0; t < params.size(); ++t) {
    const int64_t n = params[t].numel();
    const int64_t r = rows[t];
    TORCH_CHECK(r >= 0 && (r == 0 || n % r == 0), "optimlab fused step: bad row length ", r, " for ", n, " elements");
    const int64_t span = r > 0 ? std::max<int64_t>(1, 4 * kChunk / r) * r : kChunk;  // centred: ~64K, whole rows
    for (int64_t b = 0; b < n; b += span) jobs.push_back(Job{int64_t(t), b, std::min(n, b + span)});
  }
  AT_DISPATCH_FLOATING_TYPES(dtype, "optimlab_fused_step", [&] {
    const Consts<scalar_t> k(c);
    std::vector<scalar_t*> P(params.size()), G(params.size()), B1(params.size()), B2(params.size()), B3(params.size());
    for (size_t t = 0; t < params.size(); ++t) {
      P[t] = params[t].data_ptr<scalar_t>();
      G[t] = grads[t].data_ptr<scalar_t>();
      B1[t] = ptr<scalar_t>(b1, t);
      B2[t] = ptr<scalar_t>(b2, t);
      B3[t] = ptr<scalar_t>(b3, t);
    }
    at::parallel_for(0, int64_t(jobs.size()), 1, [&](int64_t jb, int64_t je) {
      for (int64_t j = jb; j < je; ++j) {
        const Job& job = jobs[j];
        const size_t t = size_t(job.t);
scalar_t *pp = P[t], *gg = G[t], *x1 = B1[t], *x2 = B2[t], *x3 = B3[t];
        const int64_t r = rows[t];
        switch (v) {
          case vPlain: run_any<scalar_t, vPlain>(pp, gg, x1, x2, x3, job, r, write_grad, k); break;
          case vHeavy: run_any<scalar_t, vHeavy>(pp, gg, x1, x2, x3, job, r, write_grad, k); break;
          case vNesterov: run_any<scalar_t, vNesterov>(pp, gg, x1, x2, x3, job, r, write_grad, k); break;
          case vEMA: run_any<scalar_t, vEMA>(pp, gg, x1, x2, x3, job, r, write_grad, k); break;
          case vEMAHigh: run_any<scalar_t, vEMAHigh>(pp, gg, x1, x2, x3, job, r, write_grad, k); break;
          case vAdam: run_any<scalar_t, vAdam>(pp, gg, x1, x2, x3, job, r, write_grad, k); break;
          case vAdamHigh: run_any<scalar_t, vAdamHigh>(pp, gg, x1, x2, x3, job, r, write_grad, k); break;
          case vAdamAms: run_any<scalar_t, vAdamAms>(pp, gg, x1, x2, x3, job, r, write_grad, k); break;
          case vAdamAmsHigh: run_any<scalar_t, vAdamAmsHigh>(pp, gg, x1, x2, x3, job, r, write_grad, k); break;
          case vTM: run_any<scalar_t, vTM>(pp, gg, x1, x2, x3, job, r, write_grad, k); break;
          case vTMMom: run_any<scalar_t, vTMMom>(pp, gg, x1, x2, x3, job, r, write_grad, k); break;
          case vTMMulti: run_any<scalar_t, vTMMulti>(pp, gg, x1, x2, x3, job, r, write_grad, k); break;
          default: run_any<scalar_t, vTMMultiMom>(pp, gg, x1, x2, x3, job, r, write_grad, k); break;
        }
      }
    });
  });
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "optimlab fused CPU optimizer steps (one pass over all tensors)";
  m.def("step", &step, "one fused optimizer step over lists of tensors");
}
