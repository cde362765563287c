// The training convolution under bf16 autocast, where its output has only a few positions per
// image (ResNet-18's last stage at 64 px: 2x2). There libtorch's bf16 weight gradient (oneDNN's
// convolution, which walks the feature map in its own blocked layout) is no faster than fp32's;
// the same gradient as one matrix product (the input unfolded into columns, times the output
// gradient) in oneDNN's bf16 GEMM takes a fraction of its time, at one thread and at two
// (BENCHMARKS.md, bf16). Forward pass and input gradient stay libtorch's.
#include <ATen/autocast_mode.h>
#include <oneapi/dnnl/dnnl.hpp>
#include <torch/torch.h>

#include "binding.h"

namespace retinagrade {
namespace {

// At most this many output positions per image take the matrix-product weight gradient: timed
// both ways on each convolution shape of ResNet-18 at 64 px and of the compact CNN, batch 32 and
// 64, it wins at 2x2 and loses from 4x4 on.
constexpr int64_t kMaxOutputPositions = 4;

// a [m, k] times b [k, n], both contiguous bf16, accumulated and returned in float32. (at::mm of
// bf16 tensors rounds its result to bf16, and below a size libtorch hands it to a kernel that
// also accumulates in bf16.)
at::Tensor MatmulBf16ToFloat(const at::Tensor& a, const at::Tensor& b) {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  using dt = dnnl::memory::data_type;
  using tag = dnnl::memory::format_tag;
  const int64_t m = a.size(0), k = a.size(1), n = b.size(1);
  const dnnl::memory::desc aDesc({m, k}, dt::bf16, tag::ab), bDesc({k, n}, dt::bf16, tag::ab), cDesc({m, n}, dt::f32, tag::ab);
  const dnnl::matmul::primitive_desc product(dnnl::matmul::desc(aDesc, bDesc, cDesc), engine);
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
    ctx->saved_data["weightType"] = static_cast<int64_t>(weight.scalar_type());
    return at::convolution(x, w, c10::nullopt, stride, padding, dilation, /*transposed=*/false, {0, 0}, /*groups=*/1);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &w = saved[1];
    auto list = [&](const char* key) { return ctx->saved_data[key].toIntVector(); };
    auto type = [&](const char* key) { return static_cast<at::ScalarType>(ctx->saved_data[key].toInt()); };
    const auto stride = list("stride"), padding = list("padding"), dilation = list("dilation");
    const at::Tensor gradOutput = grads[0].to(at::kBFloat16);
    at::Tensor gradInput, gradWeight;
    if (ctx->needs_input_grad(0)) {
      gradInput = std::get<0>(at::convolution_backward(gradOutput, x, w, c10::nullopt, stride, padding, dilation, false, {0, 0}, 1,
                                                       {true, false, false}))
                      .to(type("inputType"));
    }
    if (ctx->needs_input_grad(1)) {
      // gradWeight[out, in*kh*kw] = sum over images and positions of gradOutput[out] * column[in*kh*kw].
      const int64_t images = x.size(0), outChannels = w.size(0), positions = gradOutput.size(2) * gradOutput.size(3);
      const at::Tensor columns = at::im2col(x, {w.size(2), w.size(3)}, dilation, padding, stride);  // [images, in*kh*kw, positions]
      const at::Tensor rows =
          gradOutput.reshape({images, outChannels, positions}).permute({1, 0, 2}).contiguous().reshape({outChannels, -1});
      const at::Tensor columnRows = columns.permute({0, 2, 1}).contiguous().reshape({images * positions, columns.size(1)});
      gradWeight = MatmulBf16ToFloat(rows, columnRows).reshape(w.sizes()).to(type("weightType"));
    }
    return {gradInput, gradWeight, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

int64_t OutputPositions(const at::Tensor& input, const at::Tensor& weight, at::IntArrayRef stride, at::IntArrayRef padding,
                        at::IntArrayRef dilation) {
  int64_t positions = 1;
  for (int d = 0; d < 2; d++) {
    positions *= (input.size(2 + d) + 2 * padding[d] - dilation[d] * (weight.size(2 + d) - 1) - 1) / stride[d] + 1;
  }
  return positions;
}

}  // namespace

at::Tensor Conv2d(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias, std::vector<int64_t> stride,
                  std::vector<int64_t> padding, std::vector<int64_t> dilation, int64_t groups) {
  const bool smallMapBf16Training = at::autocast::is_cpu_enabled() && at::autocast::get_autocast_cpu_dtype() == at::kBFloat16 &&
                                    at::GradMode::is_enabled() && weight.requires_grad() && !bias.defined() && groups == 1 &&
                                    input.dim() == 4 && weight.dim() == 4 && input.layout() == at::kStrided &&
                                    stride.size() == 2 && padding.size() == 2 && dilation.size() == 2 &&
                                    OutputPositions(input, weight, stride, padding, dilation) <= kMaxOutputPositions;
  if (smallMapBf16Training) return SmallMapBf16Conv2d::apply(input, weight, stride, padding, dilation);
  return at::conv2d(input, weight, bias, stride, padding, dilation, groups);
}

}  // namespace retinagrade
