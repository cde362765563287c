// Adam's update of one parameter in a single pass over its four arrays (parameter, gradient and
// the two moments). As separate ATen ops (torch.optim.Adam's way) the same update reads and writes
// some eighteen arrays and allocates three temporaries: for ResNet-18's 11 M weights it takes 2-3x
// as long as this pass (bench/engine, "Adam step ms").
//
// Each element follows the arithmetic of torch.optim.Adam's single-tensor update as ATen's AVX2
// and AVX-512 kernels compute it (add with alpha, lerp_, mul_, addcmul_, sqrt, div, add,
// addcdiv_), rounding for rounding: where those kernels fuse a multiply and an add into one
// rounding (add's alpha term, lerp, addcmul), so does this, with std::fma; elsewhere each
// operation rounds on its own (binding.gyp compiles with -std=c++17, under which GCC contracts
// nothing). test/torch/adam-step.test.ts holds the two to the bit there, and to float32's
// precision where ATen runs its baseline kernels, which fuse nothing.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <torch/csrc/autograd/variable.h>

#include <cmath>

#include "binding.h"

namespace retinagrade {
namespace {

// The step's scalars, each computed by the caller in double and rounded to the tensors' type here,
// as ATen rounds a Scalar argument.
template <typename T>
struct AdamScalars {
  T l2Decay;             // the gradient gains l2Decay * param (Adam's weight decay), or 0
  T decayFactor;         // multiplies the parameter first (AdamW's decoupled decay), or 1
  T firstMomentWeight;   // 1 - beta1: exp_avg.lerp_(grad, 1 - beta1)
  T beta2;
  T secondMomentWeight;  // 1 - beta2
  T biasCorrection2Sqrt; // sqrt(1 - beta2^step)
  T eps;
  T stepSize;            // -lr / (1 - beta1^step)
};

// ATen's lerp: self + weight * (end - self) for |weight| < 0.5, end - (end - self) * (1 - weight) otherwise.
template <typename T>
inline T Lerp(T self, T end, T weight) {
  return std::abs(weight) < T(0.5) ? std::fma(weight, end - self, self) : end - (end - self) * (T(1) - weight);
}

// Elements per parallel chunk (ATen's own grain). The chunks run on libtorch's OpenMP threads
// where binding.gyp builds with OpenMP (Debian's libtorch, whose libgomp is the system's); against
// another libtorch, which carries an OpenMP runtime of its own, on the calling thread.
constexpr int64_t kGrainSize = 32768;

// L2 and Decoupled are compile-time so that the loop has no branch and vectorizes.
template <bool L2, bool Decoupled, typename T>
__attribute__((always_inline)) inline void AdamUpdate(T* param, const T* grad, T* expAvg, T* expAvgSq, int64_t begin, int64_t end,
                                                      const AdamScalars<T>& s) {
#pragma omp simd
  for (int64_t i = begin; i < end; i++) {
    T g = L2 ? std::fma(param[i], s.l2Decay, grad[i]) : grad[i];
    T p = Decoupled ? param[i] * s.decayFactor : param[i];
    T m = Lerp(expAvg[i], g, s.firstMomentWeight);
    T v = std::fma(s.secondMomentWeight * g, g, expAvgSq[i] * s.beta2);
    T denominator = std::sqrt(v) / s.biasCorrection2Sqrt + s.eps;
    param[i] = p + s.stepSize * m / denominator;
    expAvg[i] = m;
    expAvgSq[i] = v;
  }
}

template <typename T>
__attribute__((always_inline)) inline void AdamUpdate(T* param, const T* grad, T* expAvg, T* expAvgSq, int64_t begin, int64_t end,
                                                      const AdamScalars<T>& s) {
  if (s.l2Decay != T(0)) {
    AdamUpdate<true, false>(param, grad, expAvg, expAvgSq, begin, end, s);
  } else if (s.decayFactor != T(1)) {
    AdamUpdate<false, true>(param, grad, expAvg, expAvgSq, begin, end, s);
  } else {
    AdamUpdate<false, false>(param, grad, expAvg, expAvgSq, begin, end, s);
  }
}

// The update compiled once per instruction set, the CPU's best picked at load time: std::fma is
// one instruction from x86-64-v3 (AVX2 with FMA) on, and the loop vectorizes.
#if defined(__x86_64__)
#define PER_INSTRUCTION_SET __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define PER_INSTRUCTION_SET
#endif
PER_INSTRUCTION_SET void AdamUpdatePerIsa(float* p, const float* g, float* m, float* v, int64_t begin, int64_t end,
                                          const AdamScalars<float>& s) {
  AdamUpdate(p, g, m, v, begin, end, s);
}
PER_INSTRUCTION_SET void AdamUpdatePerIsa(double* p, const double* g, double* m, double* v, int64_t begin, int64_t end,
                                          const AdamScalars<double>& s) {
  AdamUpdate(p, g, m, v, begin, end, s);
}

// (param, grad, expAvg, expAvgSq, l2Decay, decayFactor, beta1, beta2, biasCorrection2Sqrt, eps,
//  stepSize): updates param, expAvg and expAvgSq in place.
Napi::Value AdamStep(const Napi::CallbackInfo& info) {
  at::Tensor& param = TensorArg(info, 0);
  const at::Tensor grad = TensorArg(info, 1).contiguous();
  at::Tensor& expAvg = TensorArg(info, 2);
  at::Tensor& expAvgSq = TensorArg(info, 3);
  const double l2Decay = NumberArg(info, 4), decayFactor = NumberArg(info, 5), beta1 = NumberArg(info, 6),
               beta2 = NumberArg(info, 7), biasCorrection2Sqrt = NumberArg(info, 8), eps = NumberArg(info, 9),
               stepSize = NumberArg(info, 10);
  for (const at::Tensor* t : {&param, &expAvg, &expAvgSq}) {
    TORCH_CHECK(t->is_contiguous(), "adamStep: the parameter and its moments must be contiguous");
  }
  for (const at::Tensor* t : {&grad, static_cast<const at::Tensor*>(&expAvg), static_cast<const at::Tensor*>(&expAvgSq)}) {
    TORCH_CHECK(t->scalar_type() == param.scalar_type() && t->sizes() == param.sizes(),
                "adamStep: the gradient and moments must have the parameter's dtype and shape ", param.sizes());
  }
  TORCH_CHECK(l2Decay == 0 || decayFactor == 1, "adamStep: weight decay is either L2 (Adam) or decoupled (AdamW), not both");
  AT_DISPATCH_FLOATING_TYPES(param.scalar_type(), "adamStep", [&] {
    using T = scalar_t;
    const AdamScalars<T> s{T(l2Decay), T(decayFactor), T(1 - beta1), T(beta2), T(1 - beta2), T(biasCorrection2Sqrt), T(eps), T(stepSize)};
    T* p = param.data_ptr<T>();
    const T* g = grad.data_ptr<T>();
    T* m = expAvg.data_ptr<T>();
    T* v = expAvgSq.data_ptr<T>();
    at::parallel_for(0, param.numel(), kGrainSize, [&](int64_t begin, int64_t end) { AdamUpdatePerIsa(p, g, m, v, begin, end, s); });
  });
  // Written through raw pointers: count the writes as in-place ops do, so that a graph which saved
  // one of these tensors refuses to backpropagate through the old values.
  for (const at::Tensor* t : {&param, &expAvg, &expAvgSq}) torch::autograd::impl::bump_version(*t);
  return info.Env().Undefined();
}

}  // namespace

void ExportOptimizers(Napi::Env env, Napi::Object exports) {
  exports.Set("adamStep", Napi::Function::New<Guarded<AdamStep>>(env, "adamStep"));
}

}  // namespace retinagrade
