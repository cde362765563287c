// The training convolution under bf16 autocast, where its output has only a few positions per
// image (ResNet-18's last stage at 64 px: 2x2). There libtorch's bf16 weight gradient (oneDNN's
// convolution, which walks the feature map in its own blocked layout) is no faster than fp32's;
// computed instead as one matrix product (the input unfolded into columns, times the output
// gradient) in oneDNN's bf16 GEMM, a 3x3 layer's whole training step there takes 0.5-0.75x the time,
// at one thread and at two (bench/engine/small-map-conv.ts). Forward pass and input gradient stay
// libtorch's.
//
// Built where libtorch runs on the system's oneDNN (Debian's libtorch with libdnnl-dev); against
// another libtorch, which carries a oneDNN of its own, every convolution is libtorch's.
#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "binding.h"

#ifdef RETINAGRADE_SYSTEM_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>

namespace retinagrade {
namespace {

// At most this many output positions per image take the matrix-product weight gradient: the
// product wins at 2x2 and loses from 4x4 (16 positions) on (bench/engine/small-map-conv.ts).
// RETINAGRADE_SMALL_MAP_POSITIONS overrides it for that benchmark (0: never).
int64_t MaxOutputPositions() {
  static const int64_t limit = [] {
    const char* env = std::getenv("RETINAGRADE_SMALL_MAP_POSITIONS");
    if (env == nullptr) return int64_t{4};
    char* end = nullptr;
    const long long value = std::strtoll(env, &end, 10);
    if (*env == '\0' || *end != '\0' || value < 0) {
      std::fprintf(stderr, "retinagrade: ignoring RETINAGRADE_SMALL_MAP_POSITIONS=%s (expected a whole number >= 0)\n", env);
      return int64_t{4};
    }
    return static_cast<int64_t>(value);
  }();
  return limit;
}

// a [m, k] times b [k, n], both contiguous bf16, accumulated and returned in float32. (at::mm of
// bf16 tensors rounds its result to bf16, and below a size libtorch hands it to a kernel that
// also accumulates in bf16.)
at::Tensor MatmulBf16ToFloat(const at::Tensor& a, const at::Tensor& b) {
  const int64_t m = a.size(0), k = a.size(1), n = b.size(1);
  if (m == 0 || k == 0 || n == 0) return at::zeros({m, n}, a.options().dtype(at::kFloat));  // oneDNN refuses empty products
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  using dt = dnnl::memory::data_type;
  using tag = dnnl::memory::format_tag;
  const dnnl::memory::desc aDesc({m, k}, dt::bf16, tag::ab), bDesc({k, n}, dt::bf16, tag::ab), cDesc({m, n}, dt::f32, tag::ab);
#if DNNL_VERSION_MAJOR >= 3
  const dnnl::matmul::primitive_desc product(engine, aDesc, bDesc, cDesc);
#else
  const dnnl::matmul::primitive_desc product(dnnl::matmul::desc(aDesc, bDesc, cDesc), engine);
#endif
  at::Tensor c = at::empty({m, n}, a.options().dtype(at::kFloat));
  dnnl::stream stream(engine);
  dnnl::matmul(product).execute(stream, {{DNNL_ARG_SRC, dnnl::memory(aDesc, engine, a.data_ptr())},
                                         {DNNL_ARG_WEIGHTS, dnnl::memory(bDesc, engine, b.data_ptr())},
                                         {DNNL_ARG_DST, dnnl::memory(cDesc, engine, c.data_ptr())}});
  stream.wait();
  return c;
}

struct SmallMapBf16Conv2d : public torch::autograd::Function<SmallMapBf16Conv2d> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& input, const at::Tensor& weight,
                            std::vector<int64_t> stride, std::vector<int64_t> padding, std::vector<int64_t> dilation) {
    // The casts autocast would make; under autocast the convolution below then casts nothing.
    at::Tensor x = input.to(at::kBFloat16), w = weight.to(at::kBFloat16);
    ctx->save_for_backward({x, w});
    ctx->saved_data["stride"] = stride;
    ctx->saved_data["padding"] = padding;
    ctx->saved_data["dilation"] = dilation;
    ctx->saved_data["inputType"] = static_cast<int64_t>(input.scalar_type());
    return at::convolution(x, w, c10::nullopt, stride, padding, dilation, /*transposed=*/false, {0, 0}, /*groups=*/1);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    TORCH_CHECK(!at::GradMode::is_enabled(),
                "a bf16 convolution on a map of at most ", MaxOutputPositions(),
                " positions has no second derivative here (its weight gradient is not differentiable): "
                "backpropagate without create_graph, or train in fp32");
    auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &w = saved[1];
    auto list = [&](const char* key) { return ctx->saved_data[key].toIntVector(); };
    const auto stride = list("stride"), padding = list("padding"), dilation = list("dilation");
    const at::Tensor gradOutput = grads[0].to(at::kBFloat16);
    at::Tensor gradInput, gradWeight;
    if (ctx->needs_input_grad(0)) {
      gradInput = std::get<0>(at::convolution_backward(gradOutput, x, w, c10::nullopt, stride, padding, dilation, false, {0, 0}, 1,
                                                       {true, false, false}))
                      .to(static_cast<at::ScalarType>(ctx->saved_data["inputType"].toInt()));
    }
    if (ctx->needs_input_grad(1)) {
      // gradWeight[out, in*kh*kw] = sum over images and positions of gradOutput[out] * column[in*kh*kw].
      const int64_t images = x.size(0), outChannels = w.size(0), positions = gradOutput.size(2) * gradOutput.size(3);
      const at::Tensor columns = at::im2col(x, {w.size(2), w.size(3)}, dilation, padding, stride);  // [images, in*kh*kw, positions]
      const at::Tensor rows =
          gradOutput.reshape({images, outChannels, positions}).permute({1, 0, 2}).contiguous().reshape({outChannels, images * positions});
      const at::Tensor columnRows = columns.permute({0, 2, 1}).contiguous().reshape({images * positions, columns.size(1)});
      gradWeight = MatmulBf16ToFloat(rows, columnRows).reshape(w.sizes());
    }
    return {gradInput, gradWeight, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// Output positions per image of a valid 2-D convolution (every stride and dilation positive).
int64_t OutputPositions(const at::Tensor& input, const at::Tensor& weight, const std::vector<int64_t>& stride,
                        const std::vector<int64_t>& padding, const std::vector<int64_t>& dilation) {
  int64_t positions = 1;
  for (int d = 0; d < 2; d++) {
    positions *= std::max<int64_t>(0, (input.size(2 + d) + 2 * padding[d] - dilation[d] * (weight.size(2 + d) - 1) - 1) / stride[d] + 1);
  }
  return positions;
}

// Whether this call is the one the small-map path computes: training a float32 weight under bf16
// autocast, no bias, no groups, a 2-D convolution libtorch itself would accept the arguments of.
bool TakesSmallMapPath(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias, const std::vector<int64_t>& stride,
                       const std::vector<int64_t>& padding, const std::vector<int64_t>& dilation, int64_t groups) {
  if (!(at::autocast::is_cpu_enabled() && at::autocast::get_autocast_cpu_dtype() == at::kBFloat16 && at::GradMode::is_enabled() &&
        weight.requires_grad() && !bias.defined() && groups == 1)) {
    return false;
  }
  if (input.dim() != 4 || weight.dim() != 4 || input.layout() != at::kStrided || weight.layout() != at::kStrided) return false;
  if (weight.scalar_type() != at::kFloat || (input.scalar_type() != at::kFloat && input.scalar_type() != at::kBFloat16)) return false;
  if (stride.size() != 2 || padding.size() != 2 || dilation.size() != 2 || input.size(1) != weight.size(1)) return false;
  for (int d = 0; d < 2; d++) {
    if (stride[d] < 1 || dilation[d] < 1 || padding[d] < 0) return false;
  }
  return OutputPositions(input, weight, stride, padding, dilation) <= MaxOutputPositions();
}

}  // namespace
}  // namespace retinagrade
#endif  // RETINAGRADE_SYSTEM_ONEDNN

namespace retinagrade {

at::Tensor Conv2d(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias, std::vector<int64_t> stride,
                  std::vector<int64_t> padding, std::vector<int64_t> dilation, int64_t groups) {
#ifdef RETINAGRADE_SYSTEM_ONEDNN
  if (TakesSmallMapPath(input, weight, bias, stride, padding, dilation, groups)) {
    return SmallMapBf16Conv2d::apply(input, weight, stride, padding, dilation);
  }
#endif
  return at::conv2d(input, weight, bias, stride, padding, dilation, groups);
}

}  // namespace retinagrade
