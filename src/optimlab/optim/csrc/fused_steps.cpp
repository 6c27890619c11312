// optimlab's fused CPU steps: one pass over every element of every tensor of a param group.
//
// Built at first use by optimlab.optim.fused_cpu (torch.utils.cpp_extension.load). Each update rule
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
#include <cstdint>
#include <vector>

namespace {

enum Kind : int64_t {
  kSGD = 0,          // torch.optim.SGD: heavy ball / Nesterov / none (mom_mode 0 none, 1 update, 2 fresh buffer = g)
  kEMA = 1,          // sgdm-ema: m <- lerp(m, g, 1-beta); p <- p - lr m
  kRSGDM = 2,        // rsgdm, t >= 2: m <- lerp(m, g, 1-beta); p <- p - lr(1-beta) g; p <- p - lr beta m
  kRSGDMFirst = 3,   // rsgdm, t = 1: p <- p - lr(1-beta) g
  kTMSGD = 4,        // tm-sgd SGD phase: v <- d; p <- p - lr v   (d = g or the heavy-ball buffer)
  kTMMulti = 5,      // tm-sgd multi-step: v <- v + c1 v_k + c2 d; p <- p + unit v
};

struct Coef {
  double lr, wd, sign, momentum, dampening, nesterov, mom_mode, beta, c1, c2, unit;
};

Coef unpack(const std::vector<double>& c) {
  TORCH_CHECK(c.size() == 11, "optimlab fused step: expected 11 coefficients, got ", c.size());
  return Coef{c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10]};
}

struct Job {
  int64_t t, begin, end;
};

constexpr int64_t kChunk = 1 << 14;

template <typename T>
inline T lerp(T self, T end, T w) {  // torch's CPU lerp formula
  return w < T(0.5) ? self + w * (end - self) : end - (end - self) * (T(1) - w);
}

template <typename T>
inline T heavy_ball(T* mb, int64_t i, T g, int mode, T mom, T one_minus_damp) {
  if (mode == 2) {
    mb[i] = g;
  } else if (mode == 1) {
    T b = mb[i] * mom;
    mb[i] = b + one_minus_damp * g;
  }
  return mb[i];
}

template <typename T, int64_t K>
void run_rows(T* p, T* g_raw, T* b1, T* b2, T* b3, int64_t begin, int64_t end, int64_t row, const Coef& c,
              bool write_grad) {
  const T lr = T(c.lr), wd = T(c.wd), sign = T(c.sign), beta = T(c.beta), w = T(1.0 - c.beta);
  const T mom = T(c.momentum), omd = T(1.0 - c.dampening), c1 = T(c.c1), c2 = T(c.c2), unit = T(c.unit);
  const T a_g = T(-c.lr * (1.0 - c.beta)), a_m = T(-c.lr * c.beta), neg_lr = T(-c.lr);
  const int mode = int(c.mom_mode);
  const bool nesterov = c.nesterov != 0.0;
  const int64_t span = row > 0 ? row : end - begin;
  for (int64_t r0 = begin; r0 < end; r0 += span) {
    const int64_t r1 = std::min(end, r0 + span);
    T mean = T(0);
    if (row > 0) {
      double s = 0.0;
      for (int64_t i = r0; i < r1; ++i) s += double(sign * g_raw[i] + wd * p[i]);
      mean = T(s / double(r1 - r0));
    }
    for (int64_t i = r0; i < r1; ++i) {
      T g = sign * g_raw[i] + wd * p[i];
      if (row > 0) {
        g = g - mean;
      }
      if (write_grad) g_raw[i] = sign * g;
      if constexpr (K == kSGD) {
        T d = g;
        if (mode != 0) {
          T b = heavy_ball(b1, i, g, mode, mom, omd);
          d = nesterov ? g + mom * b : b;
        }
        p[i] = p[i] + neg_lr * d;
      } else if constexpr (K == kEMA) {
        b1[i] = lerp(b1[i], g, w);
        p[i] = p[i] + neg_lr * b1[i];
      } else if constexpr (K == kRSGDM) {
        b1[i] = lerp(b1[i], g, w);
        T q = p[i] + a_g * g;
        p[i] = q + a_m * b1[i];
      } else if constexpr (K == kRSGDMFirst) {
        p[i] = p[i] + a_g * g;
      } else if constexpr (K == kTMSGD) {
        T d = mode != 0 ? heavy_ball(b3, i, g, mode, mom, T(1)) : g;
        if (c.lr == 0.0) {
          b1[i] = T(0);
        } else {
          b1[i] = d;
          p[i] = p[i] + neg_lr * d;
        }
      } else {  // kTMMulti
        T d = mode != 0 ? heavy_ball(b3, i, g, mode, mom, T(1)) : g;
        T v = b1[i] + c1 * b2[i];
        v = v + c2 * d;
        b1[i] = v;
        p[i] = p[i] + unit * v;
      }
    }
  }
  (void)beta;
}

template <typename T>
T* ptr(const std::vector<at::Tensor>& xs, size_t t) {
  return xs.empty() ? nullptr : xs[t].data_ptr<T>();
}

void check_list(const std::vector<at::Tensor>& xs, const std::vector<at::Tensor>& params, const char* what) {
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
  TORCH_CHECK(kind >= kSGD && kind <= kTMMulti, "optimlab fused step: unknown kind ", kind);
  TORCH_CHECK(rows.size() == params.size(), "optimlab fused step: rows must have one entry per parameter");
  const auto dtype = params[0].scalar_type();
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kDouble, "optimlab fused step: float32 or float64 only, got ", dtype);
  for (auto& p : params) {
    TORCH_CHECK(p.scalar_type() == dtype, "optimlab fused step: all parameters of one call share a dtype");
    TORCH_CHECK(p.device().is_cpu() && p.is_contiguous(), "optimlab fused step: contiguous CPU parameters only");
  }
  check_list(grads, params, "grads");
  check_list(b1, params, "buffer 1");
  check_list(b2, params, "buffer 2");
  check_list(b3, params, "buffer 3");
  std::vector<Job> jobs;
  for (size_t t = 0; t < params.size(); ++t) {
    const int64_t n = params[t].numel();
    const int64_t r = rows[t];
    TORCH_CHECK(r >= 0 && (r == 0 || n % r == 0), "optimlab fused step: bad row length ", r, " for ", n, " elements");
    const int64_t span = r > 0 ? std::max<int64_t>(1, kChunk / r) * r : kChunk;
    for (int64_t b = 0; b < n; b += span) jobs.push_back(Job{int64_t(t), b, std::min(n, b + span)});
  }
  AT_DISPATCH_FLOATING_TYPES(dtype, "optimlab_fused_step", [&] {
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
        switch (kind) {
          case kSGD: run_rows<scalar_t, kSGD>(P[t], G[t], B1[t], B2[t], B3[t], job.begin, job.end, rows[t], c, write_grad); break;
          case kEMA: run_rows<scalar_t, kEMA>(P[t], G[t], B1[t], B2[t], B3[t], job.begin, job.end, rows[t], c, write_grad); break;
          case kRSGDM: run_rows<scalar_t, kRSGDM>(P[t], G[t], B1[t], B2[t], B3[t], job.begin, job.end, rows[t], c, write_grad); break;
          case kRSGDMFirst: run_rows<scalar_t, kRSGDMFirst>(P[t], G[t], B1[t], B2[t], B3[t], job.begin, job.end, rows[t], c, write_grad); break;
          case kTMSGD: run_rows<scalar_t, kTMSGD>(P[t], G[t], B1[t], B2[t], B3[t], job.begin, job.end, rows[t], c, write_grad); break;
          default: run_rows<scalar_t, kTMMulti>(P[t], G[t], B1[t], B2[t], B3[t], job.begin, job.end, rows[t], c, write_grad); break;
        }
      }
    });
  });
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "optimlab fused CPU optimizer steps (one pass over all tensors)";
  m.def("step", &step, "one fused optimizer step over lists of tensors");
}
