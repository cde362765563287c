// Thin Node-API binding over libtorch's ATen ops and autograd.
//
// One exported function per ATen op; no model logic lives here (docs/ARCHITECTURE.md). Every entry
// point is wrapped by `Guarded`, which turns c10::Error and std::exception into JavaScript
// errors, so a bad shape or dtype never aborts the process. Tensors cross into JavaScript as
// opaque `TensorHandle` objects; the TypeScript layer (src/torch) gives them a typed API.
#include <napi.h>
#include <torch/torch.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>

#include "binding.h"
#include "cpu_allocator.h"

#include <dlfcn.h>
#include <sched.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

using retinagrade::BoolArg;
using retinagrade::Guarded;
using retinagrade::IntArg;
using retinagrade::IsInt64;
using retinagrade::IsMissing;
using retinagrade::NumberArg;
using retinagrade::StringArg;
using retinagrade::TensorArg;
using retinagrade::TensorListArg;
using retinagrade::TypeFail;

namespace {

// ---------------------------------------------------------------------------------------------
// Handles

// The memory tensors hold, reported to V8 so that its garbage collector runs when unreferenced
// tensors hold a lot. Counted per storage, not per handle: views, expands and grad() share their
// base's storage (counted per handle, an expand counted its whole broadcast size).
class StorageLedger {
 public:
  // Counts the storage of `t` unless another handle already does; returns the key for Release.
  const c10::StorageImpl* Retain(napi_env env, const at::Tensor& t) {
    if (!t.defined() || !t.has_storage()) return nullptr;
    const c10::StorageImpl* key = t.storage().unsafeGetStorageImpl();
    Entry& entry = entries_[key];
    if (entry.handles++ == 0) {
      // Clamped: V8 ends the process on a change of 2^60 bytes or more.
      entry.bytes = static_cast<int64_t>(std::min<size_t>(t.storage().nbytes(), kMaxCountedBytes));
      Adjust(env, entry.bytes);
    }
    return key;
  }

  // Runs in finalizers, also while a stopping thread's environment is torn down: never throws.
  void Release(napi_env env, const c10::StorageImpl* key) noexcept {
    auto it = entries_.find(key);
    if (it == entries_.end() || --it->second.handles > 0) return;
    Adjust(env, -it->second.bytes);
    entries_.erase(it);
  }

 private:
  static constexpr size_t kMaxCountedBytes = size_t{1} << 40;
  struct Entry {
    int64_t handles = 0;
    int64_t bytes = 0;
  };
  // A hint to the garbage collector: a failure (a stopping thread) is not worth an exception.
  static void Adjust(napi_env env, int64_t change) noexcept {
    int64_t total = 0;
    if (change != 0) napi_adjust_external_memory(env, change, &total);
  }
  std::unordered_map<const c10::StorageImpl*, Entry> entries_;

 public:
  // Storages some handle of this thread still holds (not disposed, not yet collected).
  size_t LiveStorages() const { return entries_.size(); }
};

// Per-environment state, so the addon also loads in worker threads. Handles share the ledger, so
// that it outlives them whatever order a stopping environment finalizes them and this in.
struct AddonData {
  Napi::FunctionReference tensorCtor;
  Napi::FunctionReference generatorCtor;
  std::shared_ptr<StorageLedger> ledger = std::make_shared<StorageLedger>();
};

AddonData& Data(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

class TensorHandle : public Napi::ObjectWrap<TensorHandle> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "TensorHandle", {});
  }

  // Called by Wrap only: moves the tensor out of the slot Wrap passes in.
  explicit TensorHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorHandle>(info) {
    if (info.Length() != 1 || !info[0].IsExternal()) {
      throw Napi::TypeError::New(info.Env(), "TensorHandle cannot be constructed from JavaScript");
    }
    tensor_ = std::move(*info[0].As<Napi::External<at::Tensor>>().Data());
    ledger_ = Data(info.Env()).ledger;
    storage_ = ledger_->Retain(info.Env(), tensor_);
  }

  // A finalizer: it must not throw, or the C++ runtime terminates the process.
  ~TensorHandle() override { Release(Env()); }

  static Napi::Object Wrap(Napi::Env env, at::Tensor tensor) {
    // If no object can be made (the thread is stopping), `tensor` still holds the tensor and
    // frees it on return; once made, the object holds it.
    return Data(env).tensorCtor.New({Napi::External<at::Tensor>::New(env, &tensor)});
  }

  void Release(napi_env env) noexcept {
    if (storage_ != nullptr) ledger_->Release(env, storage_);
    storage_ = nullptr;
    tensor_.reset();
    disposed_ = true;
  }

  at::Tensor& tensor() { return tensor_; }
  bool disposed() const { return disposed_; }

 private:
  at::Tensor tensor_;
  std::shared_ptr<StorageLedger> ledger_;
  const c10::StorageImpl* storage_ = nullptr;
  bool disposed_ = false;
};

class GeneratorHandle : public Napi::ObjectWrap<GeneratorHandle> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "GeneratorHandle", {});
  }
  explicit GeneratorHandle(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<GeneratorHandle>(info) {
    uint64_t seed = 0;
    if (info.Length() >= 1 && info[0].IsNumber()) {
      seed = static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value());
    }
    generator_ = at::make_generator<at::CPUGeneratorImpl>(seed);
  }
  at::Generator& generator() { return generator_; }

 private:
  at::Generator generator_;
};

// ---------------------------------------------------------------------------------------------
// Argument helpers beyond binding.h's: wrong JavaScript types become TypeErrors naming the argument.

at::Tensor OptTensorArg(const Napi::CallbackInfo& info, size_t i) {
  return IsMissing(info, i) ? at::Tensor() : TensorArg(info, i);
}

std::optional<double> OptNumberArg(const Napi::CallbackInfo& info, size_t i) {
  if (IsMissing(info, i)) return std::nullopt;
  return NumberArg(info, i);
}

std::vector<int64_t> IntListArg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsArray()) TypeFail(info, i, "an array of integers");
  auto arr = info[i].As<Napi::Array>();
  std::vector<int64_t> out(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); ++k) {
    Napi::Value v = arr.Get(k);
    if (!v.IsNumber()) TypeFail(info, i, "an array of integers");
    double d = v.As<Napi::Number>().DoubleValue();
    if (!IsInt64(d)) TypeFail(info, i, "an array of integers");
    out[k] = static_cast<int64_t>(d);
  }
  return out;
}

}  // namespace

// Declared in binding.h for distributed.cc; defined here, beside the handles.
namespace retinagrade {

at::Tensor& TensorArg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsObject() ||
      !info[i].As<Napi::Object>().InstanceOf(Data(info.Env()).tensorCtor.Value())) {
    TypeFail(info, i, "a Tensor");
  }
  auto* handle = TensorHandle::Unwrap(info[i].As<Napi::Object>());
  if (handle->disposed()) {
    throw Napi::Error::New(info.Env(), "argument " + std::to_string(i) +
                                           ": tensor was already disposed");
  }
  return handle->tensor();
}

std::vector<at::Tensor> TensorListArg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsArray()) TypeFail(info, i, "an array of Tensors");
  auto arr = info[i].As<Napi::Array>();
  auto ctor = Data(info.Env()).tensorCtor.Value();
  std::vector<at::Tensor> out;
  out.reserve(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); ++k) {
    Napi::Value v = arr.Get(k);
    if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(ctor)) {
      TypeFail(info, i, "an array of Tensors");
    }
    auto* handle = TensorHandle::Unwrap(v.As<Napi::Object>());
    if (handle->disposed()) {
      throw Napi::Error::New(info.Env(), "argument " + std::to_string(i) +
                                             ": a tensor in the list was already disposed");
    }
    out.push_back(handle->tensor());
  }
  return out;
}

Napi::Value TensorValue(Napi::Env env, at::Tensor t) { return TensorHandle::Wrap(env, std::move(t)); }

}  // namespace retinagrade

namespace {

at::Generator& GeneratorArg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsObject() ||
      !info[i].As<Napi::Object>().InstanceOf(Data(info.Env()).generatorCtor.Value())) {
    TypeFail(info, i, "a Generator");
  }
  return GeneratorHandle::Unwrap(info[i].As<Napi::Object>())->generator();
}

at::ScalarType DtypeFromName(Napi::Env env, const std::string& name) {
  if (name == "float32") return at::kFloat;
  if (name == "float64") return at::kDouble;
  if (name == "int64") return at::kLong;
  if (name == "int32") return at::kInt;
  if (name == "uint8") return at::kByte;
  if (name == "bool") return at::kBool;
  if (name == "bfloat16") return at::kBFloat16;
  throw Napi::TypeError::New(env, "unknown dtype '" + name +
                                      "' (expected float32, float64, int64, int32, uint8, bool, bfloat16)");
}

const char* DtypeName(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "float32";
    case at::kDouble: return "float64";
    case at::kLong: return "int64";
    case at::kInt: return "int32";
    case at::kByte: return "uint8";
    case at::kBool: return "bool";
    case at::kBFloat16: return "bfloat16";
    default: return "unsupported";
  }
}

at::ScalarType DtypeArg(const Napi::CallbackInfo& info, size_t i) {
  return DtypeFromName(info.Env(), StringArg(info, i));
}

at::TensorOptions Options(at::ScalarType dtype) { return at::TensorOptions().dtype(dtype); }

Napi::Value Out(const Napi::CallbackInfo& info, at::Tensor t) {
  return TensorHandle::Wrap(info.Env(), std::move(t));
}

// The one rule for an `out` argument (argument `i`): when given, `into` writes the result there
// (the op's _out form) and nothing is returned; when missing, `make`'s new tensor is returned.
template <typename Make, typename Into>
Napi::Value NewOrInto(const Napi::CallbackInfo& info, size_t i, Make make, Into into) {
  if (IsMissing(info, i)) return Out(info, make());
  into(TensorArg(info, i));
  return info.Env().Undefined();
}

// A JavaScript number as a Scalar for `t`: integral when both are, so that in-place updates of
// integer tensors (counters) keep their dtype, as Python ints do in PyTorch.
at::Scalar ScalarFor(const at::Tensor& t, double v) {
  if (at::isIntegralType(t.scalar_type(), /*includeBool=*/true) && IsInt64(v)) {
    return at::Scalar(static_cast<int64_t>(v));
  }
  return at::Scalar(v);
}

// A binary op whose second operand may be a Tensor or a JavaScript number.
template <typename TT, typename TS>
Napi::Value Binary(const Napi::CallbackInfo& info, TT withTensor, TS withScalar) {
  const at::Tensor& a = TensorArg(info, 0);
  if (info.Length() > 1 && info[1].IsNumber()) {
    return Out(info, withScalar(a, ScalarFor(a, info[1].As<Napi::Number>().DoubleValue())));
  }
  return Out(info, withTensor(a, TensorArg(info, 1)));
}

// ---------------------------------------------------------------------------------------------
// Creation, data transfer, metadata

// The element count of `shape`, checked: a product that wrapped around could match the data's.
int64_t Numel(Napi::Env env, const std::vector<int64_t>& shape) {
  int64_t numel = 1;
  for (int64_t d : shape) {
    if (d < 0) throw Napi::RangeError::New(env, "shape has a negative dimension");
    if (__builtin_mul_overflow(numel, d, &numel)) {
      std::string dims;
      for (int64_t e : shape) dims += (dims.empty() ? "" : ", ") + std::to_string(e);
      throw Napi::RangeError::New(env, "shape [" + dims + "] has more than 2^63 - 1 elements");
    }
  }
  return numel;
}

Napi::Value FromData(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsTypedArray()) TypeFail(info, 0, "a TypedArray");
  auto array = info[0].As<Napi::TypedArray>();
  auto shape = IntListArg(info, 1);
  at::ScalarType target = DtypeArg(info, 2);
  at::ScalarType source;
  switch (array.TypedArrayType()) {
    case napi_float32_array: source = at::kFloat; break;
    case napi_float64_array: source = at::kDouble; break;
    case napi_int32_array: source = at::kInt; break;
    case napi_bigint64_array: source = at::kLong; break;
    case napi_uint8_array:
    case napi_uint8_clamped_array: source = at::kByte; break;
    default: TypeFail(info, 0, "a Float32Array, Float64Array, Int32Array, BigInt64Array or Uint8Array");
  }
  int64_t numel = Numel(info.Env(), shape);
  if (numel != static_cast<int64_t>(array.ElementLength())) {
    throw Napi::RangeError::New(info.Env(), "data has " + std::to_string(array.ElementLength()) +
                                                " elements but shape needs " +
                                                std::to_string(numel));
  }
  auto buffer = array.ArrayBuffer();
  auto* ptr = static_cast<uint8_t*>(buffer.Data()) + array.ByteOffset();
  at::Tensor view = at::from_blob(ptr, shape, Options(source));
  return Out(info, source == target ? view.clone() : view.to(target));
}

Napi::Value ToData(const Napi::CallbackInfo& info) {
  at::Tensor t = TensorArg(info, 0).detach().contiguous();
  Napi::Env env = info.Env();
  size_t n = static_cast<size_t>(t.numel());
  auto copy = [&](size_t bytes) {
    auto buffer = Napi::ArrayBuffer::New(env, bytes);
    if (bytes > 0) std::memcpy(buffer.Data(), t.data_ptr(), bytes);
    return buffer;
  };
  switch (t.scalar_type()) {
    case at::kFloat: return Napi::Float32Array::New(env, n, copy(n * 4), 0);
    case at::kDouble: return Napi::Float64Array::New(env, n, copy(n * 8), 0);
    case at::kInt: return Napi::Int32Array::New(env, n, copy(n * 4), 0);
    case at::kLong: return Napi::BigInt64Array::New(env, n, copy(n * 8), 0);
    case at::kByte:
    case at::kBool: return Napi::Uint8Array::New(env, n, copy(n), 0);
    default: throw Napi::TypeError::New(env, "tensor has an unsupported dtype");
  }
}

Napi::Value Item(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), TensorArg(info, 0).item().toDouble());
}

Napi::Value Shape(const Napi::CallbackInfo& info) {
  const at::Tensor& t = TensorArg(info, 0);
  auto out = Napi::Array::New(info.Env(), t.dim());
  for (int64_t d = 0; d < t.dim(); ++d) {
    out.Set(static_cast<uint32_t>(d), Napi::Number::New(info.Env(), static_cast<double>(t.size(d))));
  }
  return out;
}

Napi::Value Dtype(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), DtypeName(TensorArg(info, 0).scalar_type()));
}

Napi::Value Dispose(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsObject() ||
      !info[0].As<Napi::Object>().InstanceOf(Data(info.Env()).tensorCtor.Value())) {
    TypeFail(info, 0, "a Tensor");
  }
  TensorHandle::Unwrap(info[0].As<Napi::Object>())->Release(info.Env());
  return info.Env().Undefined();
}

Napi::Value Zeros(const Napi::CallbackInfo& info) {
  return Out(info, at::zeros(IntListArg(info, 0), Options(DtypeArg(info, 1))));
}
Napi::Value Ones(const Napi::CallbackInfo& info) {
  return Out(info, at::ones(IntListArg(info, 0), Options(DtypeArg(info, 1))));
}
Napi::Value Full(const Napi::CallbackInfo& info) {
  return Out(info, at::full(IntListArg(info, 0), NumberArg(info, 1), Options(DtypeArg(info, 2))));
}
// Uninitialized memory, for a tensor that an in-place op (e.g. copyInPlace) fills completely.
Napi::Value Empty(const Napi::CallbackInfo& info) {
  return Out(info, at::empty(IntListArg(info, 0), Options(DtypeArg(info, 1))));
}
Napi::Value Arange(const Napi::CallbackInfo& info) {
  return Out(info, at::arange(NumberArg(info, 0), NumberArg(info, 1), NumberArg(info, 2),
                              Options(DtypeArg(info, 3))));
}
Napi::Value To(const Napi::CallbackInfo& info) {
  return Out(info, TensorArg(info, 0).to(DtypeArg(info, 1)));
}
Napi::Value Clone(const Napi::CallbackInfo& info) { return Out(info, TensorArg(info, 0).clone()); }

// ---------------------------------------------------------------------------------------------
// Autograd

Napi::Value RequiresGrad(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), TensorArg(info, 0).requires_grad());
}
Napi::Value SetRequiresGrad(const Napi::CallbackInfo& info) {
  TensorArg(info, 0).set_requires_grad(BoolArg(info, 1));
  return info.Env().Undefined();
}
Napi::Value Grad(const Napi::CallbackInfo& info) {
  const at::Tensor& g = TensorArg(info, 0).grad();
  if (!g.defined()) return info.Env().Undefined();
  return Out(info, g);
}
Napi::Value ClearGrad(const Napi::CallbackInfo& info) {
  TensorArg(info, 0).mutable_grad().reset();
  return info.Env().Undefined();
}
Napi::Value Backward(const Napi::CallbackInfo& info) {
  TensorArg(info, 0).backward(OptTensorArg(info, 1));
  return info.Env().Undefined();
}
Napi::Value Detach(const Napi::CallbackInfo& info) { return Out(info, TensorArg(info, 0).detach()); }
Napi::Value SetGradEnabled(const Napi::CallbackInfo& info) {
  bool previous = at::GradMode::is_enabled();
  at::GradMode::set_enabled(BoolArg(info, 0));
  return Napi::Boolean::New(info.Env(), previous);
}

// ---------------------------------------------------------------------------------------------
// CPU autocast. ATen keeps its state per thread: it applies to the ops of the thread that sets it.

// Sets whether autocast is on and the dtype it casts to; returns whether it was on.
Napi::Value SetAutocastCpu(const Napi::CallbackInfo& info) {
  bool previous = at::autocast::is_cpu_enabled();
  at::autocast::set_autocast_cpu_dtype(DtypeArg(info, 1));
  at::autocast::set_cpu_enabled(BoolArg(info, 0));
  return Napi::Boolean::New(info.Env(), previous);
}
// Autocast keeps the casts of weights until this is called (PyTorch calls it on leaving autocast).
Napi::Value ClearAutocastCache(const Napi::CallbackInfo& info) {
  at::autocast::clear_cache();
  return info.Env().Undefined();
}

// ---------------------------------------------------------------------------------------------
// Elementwise math

Napi::Value Add(const Napi::CallbackInfo& info) {
  double alpha = OptNumberArg(info, 2).value_or(1.0);
  return Binary(
      info, [&](const at::Tensor& a, const at::Tensor& b) { return at::add(a, b, ScalarFor(a, alpha)); },
      [&](const at::Tensor& a, const at::Scalar& b) { return at::add(a, b, ScalarFor(a, alpha)); });
}
Napi::Value Sub(const Napi::CallbackInfo& info) {
  double alpha = OptNumberArg(info, 2).value_or(1.0);
  return Binary(
      info, [&](const at::Tensor& a, const at::Tensor& b) { return at::sub(a, b, ScalarFor(a, alpha)); },
      [&](const at::Tensor& a, const at::Scalar& b) { return at::sub(a, b, ScalarFor(a, alpha)); });
}

#define BINARY_OP(NAME, ATEN)                                                             \
  Napi::Value NAME(const Napi::CallbackInfo& info) {                                      \
    return Binary(                                                                        \
        info, [](const at::Tensor& a, const at::Tensor& b) { return ATEN(a, b); },       \
        [](const at::Tensor& a, const at::Scalar& b) { return ATEN(a, b); });            \
  }
BINARY_OP(Mul, at::mul)
BINARY_OP(Div, at::div)
BINARY_OP(Pow, at::pow)
BINARY_OP(Eq, at::eq)
BINARY_OP(Lt, at::lt)
BINARY_OP(Gt, at::gt)
#undef BINARY_OP

#define TENSOR_BINARY_OP(NAME, ATEN)                                  \
  Napi::Value NAME(const Napi::CallbackInfo& info) {                  \
    return Out(info, ATEN(TensorArg(info, 0), TensorArg(info, 1)));   \
  }
TENSOR_BINARY_OP(Minimum, at::minimum)
TENSOR_BINARY_OP(Matmul, at::matmul)
// (input, batch1, batch2, out?): input + batch1 @ batch2 per batch entry; input broadcasts to the
// result.
Napi::Value Baddbmm(const Napi::CallbackInfo& info) {
  const at::Tensor &input = TensorArg(info, 0), &batch1 = TensorArg(info, 1), &batch2 = TensorArg(info, 2);
  return NewOrInto(info, 3, [&] { return at::baddbmm(input, batch1, batch2); },
                   [&](at::Tensor& out) { at::baddbmm_out(out, input, batch1, batch2); });
}
#undef TENSOR_BINARY_OP

#define UNARY_OP(NAME, ATEN) \
  Napi::Value NAME(const Napi::CallbackInfo& info) { return Out(info, ATEN(TensorArg(info, 0))); }
UNARY_OP(Neg, at::neg)
UNARY_OP(Exp, at::exp)
UNARY_OP(Log, at::log)
UNARY_OP(Sqrt, at::sqrt)
UNARY_OP(Abs, at::abs)
UNARY_OP(Floor, at::floor)
UNARY_OP(Round, at::round)
UNARY_OP(Relu, at::relu)
UNARY_OP(Silu, at::silu)
UNARY_OP(Sigmoid, at::sigmoid)
UNARY_OP(Tanh, at::tanh)
UNARY_OP(LogicalNot, at::logical_not)
#undef UNARY_OP

Napi::Value Clamp(const Napi::CallbackInfo& info) {
  auto lo = OptNumberArg(info, 1);
  auto hi = OptNumberArg(info, 2);
  return Out(info, at::clamp(TensorArg(info, 0),
                             lo ? c10::optional<at::Scalar>(*lo) : c10::nullopt,
                             hi ? c10::optional<at::Scalar>(*hi) : c10::nullopt));
}
Napi::Value Where(const Napi::CallbackInfo& info) {
  return Out(info, at::where(TensorArg(info, 0), TensorArg(info, 1), TensorArg(info, 2)));
}
Napi::Value MaskedFill(const Napi::CallbackInfo& info) {
  return Out(info, at::masked_fill(TensorArg(info, 0), TensorArg(info, 1), NumberArg(info, 2)));
}
Napi::Value LeakyRelu(const Napi::CallbackInfo& info) {
  return Out(info, at::leaky_relu(TensorArg(info, 0), NumberArg(info, 1)));
}
Napi::Value Gelu(const Napi::CallbackInfo& info) {
  std::string approximate = IsMissing(info, 1) ? "none" : StringArg(info, 1);
  return Out(info, at::gelu(TensorArg(info, 0), approximate));
}
Napi::Value Softmax(const Napi::CallbackInfo& info) {
  return Out(info, at::softmax(TensorArg(info, 0), IntArg(info, 1)));
}
Napi::Value LogSoftmax(const Napi::CallbackInfo& info) {
  return Out(info, at::log_softmax(TensorArg(info, 0), IntArg(info, 1)));
}
Napi::Value Dropout(const Napi::CallbackInfo& info) {
  return Out(info, at::dropout(TensorArg(info, 0), NumberArg(info, 1), BoolArg(info, 2)));
}

// ---------------------------------------------------------------------------------------------
// Reductions (dims === undefined reduces over everything)

Napi::Value Sum(const Napi::CallbackInfo& info) {
  const at::Tensor& x = TensorArg(info, 0);
  if (IsMissing(info, 1)) return Out(info, at::sum(x));
  return Out(info, at::sum(x, at::IntArrayRef(IntListArg(info, 1)), BoolArg(info, 2)));
}
Napi::Value Mean(const Napi::CallbackInfo& info) {
  const at::Tensor& x = TensorArg(info, 0);
  if (IsMissing(info, 1)) return Out(info, at::mean(x));
  return Out(info, at::mean(x, at::IntArrayRef(IntListArg(info, 1)), BoolArg(info, 2)));
}
// (t, dims?, keepdim, out?): missing dims are an empty list, which ATen reduces over all dims.
#define EXTREME_OP(NAME, ATEN)                                                                     \
  Napi::Value NAME(const Napi::CallbackInfo& info) {                                               \
    const at::Tensor& x = TensorArg(info, 0);                                                      \
    std::vector<int64_t> dims = IsMissing(info, 1) ? std::vector<int64_t>() : IntListArg(info, 1); \
    bool keepdim = BoolArg(info, 2);                                                               \
    return NewOrInto(info, 3, [&] { return at::ATEN(x, dims, keepdim); },                         \
                     [&](at::Tensor& out) { at::ATEN##_out(out, x, dims, keepdim); });             \
  }
EXTREME_OP(Amax, amax)
EXTREME_OP(Amin, amin)
#undef EXTREME_OP
Napi::Value Argmax(const Napi::CallbackInfo& info) {
  const at::Tensor& x = TensorArg(info, 0);
  if (IsMissing(info, 1)) return Out(info, at::argmax(x));
  return Out(info, at::argmax(x, IntArg(info, 1), BoolArg(info, 2)));
}
Napi::Value Var(const Napi::CallbackInfo& info) {
  const at::Tensor& x = TensorArg(info, 0);
  bool unbiased = BoolArg(info, 2);
  if (IsMissing(info, 1)) return Out(info, at::var(x, unbiased));
  return Out(info, at::var(x, at::IntArrayRef(IntListArg(info, 1)), unbiased, BoolArg(info, 3)));
}
Napi::Value Logsumexp(const Napi::CallbackInfo& info) {
  return Out(info, at::logsumexp(TensorArg(info, 0), IntListArg(info, 1), BoolArg(info, 2)));
}
Napi::Value Cumsum(const Napi::CallbackInfo& info) {
  return Out(info, at::cumsum(TensorArg(info, 0), IntArg(info, 1)));
}

// ---------------------------------------------------------------------------------------------
// Shapes and indexing

Napi::Value Reshape(const Napi::CallbackInfo& info) {
  return Out(info, TensorArg(info, 0).reshape(IntListArg(info, 1)));
}
Napi::Value View(const Napi::CallbackInfo& info) {
  return Out(info, TensorArg(info, 0).view(IntListArg(info, 1)));
}
Napi::Value Permute(const Napi::CallbackInfo& info) {
  return Out(info, TensorArg(info, 0).permute(IntListArg(info, 1)));
}
Napi::Value Transpose(const Napi::CallbackInfo& info) {
  return Out(info, TensorArg(info, 0).transpose(IntArg(info, 1), IntArg(info, 2)));
}
Napi::Value Contiguous(const Napi::CallbackInfo& info) {
  return Out(info, TensorArg(info, 0).contiguous());
}
Napi::Value Unsqueeze(const Napi::CallbackInfo& info) {
  return Out(info, TensorArg(info, 0).unsqueeze(IntArg(info, 1)));
}
Napi::Value Squeeze(const Napi::CallbackInfo& info) {
  return Out(info, TensorArg(info, 0).squeeze(IntArg(info, 1)));
}
Napi::Value Expand(const Napi::CallbackInfo& info) {
  return Out(info, TensorArg(info, 0).expand(IntListArg(info, 1)));
}
Napi::Value Flatten(const Napi::CallbackInfo& info) {
  return Out(info, TensorArg(info, 0).flatten(IntArg(info, 1), IntArg(info, 2)));
}
Napi::Value Cat(const Napi::CallbackInfo& info) {
  return Out(info, at::cat(TensorListArg(info, 0), IntArg(info, 1)));
}
Napi::Value Stack(const Napi::CallbackInfo& info) {
  return Out(info, at::stack(TensorListArg(info, 0), IntArg(info, 1)));
}
Napi::Value Slice(const Napi::CallbackInfo& info) {
  return Out(info, at::slice(TensorArg(info, 0), IntArg(info, 1), IntArg(info, 2), IntArg(info, 3),
                             IntArg(info, 4)));
}
// (t, dim, index, out?)
Napi::Value IndexSelect(const Napi::CallbackInfo& info) {
  const at::Tensor& x = TensorArg(info, 0);
  int64_t dim = IntArg(info, 1);
  const at::Tensor& index = TensorArg(info, 2);
  return NewOrInto(info, 3, [&] { return at::index_select(x, dim, index); },
                   [&](at::Tensor& out) { at::index_select_out(out, x, dim, index); });
}
Napi::Value Gather(const Napi::CallbackInfo& info) {
  return Out(info, at::gather(TensorArg(info, 0), IntArg(info, 1), TensorArg(info, 2)));
}
Napi::Value Flip(const Napi::CallbackInfo& info) {
  return Out(info, at::flip(TensorArg(info, 0), IntListArg(info, 1)));
}
Napi::Value Pad(const Napi::CallbackInfo& info) {
  const at::Tensor& x = TensorArg(info, 0);
  auto pad = IntListArg(info, 1);
  std::string mode = StringArg(info, 2);
  if (mode == "constant") return Out(info, at::constant_pad_nd(x, pad, NumberArg(info, 3)));
  // Like torch's F.pad: two values pad the last dim, four the last two.
  if ((mode == "reflect" || mode == "replicate") && pad.size() != 2 && pad.size() != 4) {
    throw Napi::RangeError::New(info.Env(), mode + " padding takes 2 or 4 values, got " + std::to_string(pad.size()));
  }
  if (mode == "reflect") return Out(info, pad.size() == 2 ? at::reflection_pad1d(x, pad) : at::reflection_pad2d(x, pad));
  if (mode == "replicate") return Out(info, pad.size() == 2 ? at::replication_pad1d(x, pad) : at::replication_pad2d(x, pad));
  throw Napi::TypeError::New(info.Env(), "pad mode must be constant, reflect or replicate, got '" +
                                             mode + "'");
}

// ---------------------------------------------------------------------------------------------
// Neural-network kernels

Napi::Value Linear(const Napi::CallbackInfo& info) {
  return Out(info, at::linear(TensorArg(info, 0), TensorArg(info, 1), OptTensorArg(info, 2)));
}
Napi::Value Conv2d(const Napi::CallbackInfo& info) {
  return Out(info, retinagrade::Conv2d(TensorArg(info, 0), TensorArg(info, 1), OptTensorArg(info, 2), IntListArg(info, 3),
                                       IntListArg(info, 4), IntListArg(info, 5), IntArg(info, 6)));
}
// Inference in oneDNN's own blocked layout ("mkldnn" tensors): libtorch's CPU convolution runs
// in oneDNN, and given contiguous tensors it reorders the input, the weights and the output
// around every call; at a grading server's batch sizes those reorders cost more than the
// arithmetic. Weights reordered once (mkldnnConvWeight) and activations kept in oneDNN's layout
// between layers leave one reorder in and one out per forward pass. No autograd.
Napi::Value ToMkldnn(const Napi::CallbackInfo& info) {
  return Out(info, TensorArg(info, 0).to_mkldnn());
}
Napi::Value ToDense(const Napi::CallbackInfo& info) {
  return Out(info, TensorArg(info, 0).to_dense());
}
Napi::Value MkldnnConvWeight(const Napi::CallbackInfo& info) {
  // (weight, padding, stride, dilation, groups)
  return Out(info, at::mkldnn_reorder_conv2d_weight(TensorArg(info, 0).to_mkldnn(), IntListArg(info, 1), IntListArg(info, 2),
                                                     IntListArg(info, 3), IntArg(info, 4)));
}
Napi::Value MkldnnConv2d(const Napi::CallbackInfo& info) {
  // (x, weight, bias?, padding, stride, dilation, groups): x and weight mkldnn tensors
  return Out(info, at::mkldnn_convolution(TensorArg(info, 0), TensorArg(info, 1), OptTensorArg(info, 2),
                                          IntListArg(info, 3), IntListArg(info, 4), IntListArg(info, 5),
                                          IntArg(info, 6)));
}
Napi::Value BatchNorm(const Napi::CallbackInfo& info) {
  // (input, weight?, bias?, runningMean?, runningVar?, training, momentum, eps)
  return Out(info, at::batch_norm(TensorArg(info, 0), OptTensorArg(info, 1), OptTensorArg(info, 2),
                                  OptTensorArg(info, 3), OptTensorArg(info, 4), BoolArg(info, 5),
                                  NumberArg(info, 6), NumberArg(info, 7), /*cudnn_enabled=*/false));
}
// libtorch 1.13's CPU max pooling of a contiguous (NCHW) batch of more than one image is 3-10x
// slower than pooling the same batch channels-last, conversions both ways included (a grading
// server's batches spent a third of their forward pass in it), while its backward pass is faster
// on contiguous tensors. So such a batch is pooled channels-last and the result made contiguous;
// under autograd, the backward pass scatters the gradient through the argmax indices (positions
// within each plane, whatever the memory layout) on contiguous tensors, as at::max_pool2d's own
// backward does: the same values and gradients (test/torch/max-pool.test.ts).
struct ChannelsLastMaxPool : public torch::autograd::Function<ChannelsLastMaxPool> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& input, std::vector<int64_t> kernel,
                            std::vector<int64_t> stride, std::vector<int64_t> padding, std::vector<int64_t> dilation,
                            bool ceil) {
    auto [pooled, indices] =
        at::max_pool2d_with_indices(input.contiguous(at::MemoryFormat::ChannelsLast), kernel, stride, padding, dilation, ceil);
    ctx->save_for_backward({input, indices.contiguous()});
    ctx->saved_data["kernel"] = kernel;
    ctx->saved_data["stride"] = stride;
    ctx->saved_data["padding"] = padding;
    ctx->saved_data["dilation"] = dilation;
    ctx->saved_data["ceil"] = ceil;
    return pooled.contiguous();
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    auto list = [&](const char* key) { return ctx->saved_data[key].toIntVector(); };
    at::Tensor grad = at::max_pool2d_with_indices_backward(grads[0].contiguous(), saved[0], list("kernel"), list("stride"),
                                                           list("padding"), list("dilation"), ctx->saved_data["ceil"].toBool(),
                                                           saved[1]);
    return {grad, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};
Napi::Value MaxPool2d(const Napi::CallbackInfo& info) {
  at::Tensor input = TensorArg(info, 0);
  auto kernel = IntListArg(info, 1), stride = IntListArg(info, 2), padding = IntListArg(info, 3), dilation = IntListArg(info, 4);
  bool ceil = BoolArg(info, 5);
  if (input.is_mkldnn() || input.dim() != 4 || input.size(0) < 2 || !input.is_contiguous()) {
    return Out(info, at::max_pool2d(input, kernel, stride, padding, dilation, ceil));
  }
  if (at::GradMode::is_enabled() && input.requires_grad()) {
    return Out(info, ChannelsLastMaxPool::apply(input, kernel, stride, padding, dilation, ceil));
  }
  at::Tensor pooled = at::max_pool2d(input.contiguous(at::MemoryFormat::ChannelsLast), kernel, stride, padding, dilation, ceil);
  return Out(info, pooled.contiguous());
}
Napi::Value AvgPool2d(const Napi::CallbackInfo& info) {
  return Out(info, at::avg_pool2d(TensorArg(info, 0), IntListArg(info, 1), IntListArg(info, 2),
                                  IntListArg(info, 3), BoolArg(info, 4), BoolArg(info, 5)));
}
Napi::Value AdaptiveAvgPool2d(const Napi::CallbackInfo& info) {
  return Out(info, at::adaptive_avg_pool2d(TensorArg(info, 0), IntListArg(info, 1)));
}
Napi::Value Interpolate(const Napi::CallbackInfo& info) {
  // (input, [outH, outW], mode, alignCorners, antialias)
  const at::Tensor& x = TensorArg(info, 0);
  auto size = IntListArg(info, 1);
  std::string mode = StringArg(info, 2);
  if (mode == "nearest") return Out(info, at::upsample_nearest2d(x, size, c10::nullopt, c10::nullopt));
  if (mode != "bilinear") {
    throw Napi::TypeError::New(info.Env(), "interpolate mode must be bilinear or nearest, got '" +
                                               mode + "'");
  }
  bool alignCorners = BoolArg(info, 3);
  if (BoolArg(info, 4)) {
    return Out(info, at::_upsample_bilinear2d_aa(x, size, alignCorners, c10::nullopt, c10::nullopt));
  }
  return Out(info, at::upsample_bilinear2d(x, size, alignCorners, c10::nullopt, c10::nullopt));
}
Napi::Value AffineGrid(const Napi::CallbackInfo& info) {
  return Out(info, at::affine_grid_generator(TensorArg(info, 0), IntListArg(info, 1),
                                             BoolArg(info, 2)));
}
Napi::Value GridSample(const Napi::CallbackInfo& info) {
  // (input, grid, mode, paddingMode, alignCorners) with torch's string names.
  std::string mode = StringArg(info, 2);
  std::string padding = StringArg(info, 3);
  int64_t modeId = mode == "bilinear" ? 0 : mode == "nearest" ? 1 : -1;
  int64_t paddingId = padding == "zeros" ? 0 : padding == "border" ? 1 : padding == "reflection" ? 2 : -1;
  if (modeId < 0) throw Napi::TypeError::New(info.Env(), "grid_sample mode must be bilinear or nearest");
  if (paddingId < 0) {
    throw Napi::TypeError::New(info.Env(), "grid_sample padding must be zeros, border or reflection");
  }
  return Out(info, at::grid_sampler(TensorArg(info, 0), TensorArg(info, 1), modeId, paddingId,
                                    BoolArg(info, 4)));
}

// ---------------------------------------------------------------------------------------------
// In-place updates for optimizers and running statistics (called under no-grad)

Napi::Value AddInPlace(const Napi::CallbackInfo& info) {
  at::Tensor& a = TensorArg(info, 0);
  double alpha = OptNumberArg(info, 2).value_or(1.0);
  if (info.Length() > 1 && info[1].IsNumber()) {
    a.add_(ScalarFor(a, info[1].As<Napi::Number>().DoubleValue()), ScalarFor(a, alpha));
  } else {
    a.add_(TensorArg(info, 1), ScalarFor(a, alpha));
  }
  return info.Env().Undefined();
}
Napi::Value MulInPlace(const Napi::CallbackInfo& info) {
  at::Tensor& a = TensorArg(info, 0);
  if (info.Length() > 1 && info[1].IsNumber()) {
    a.mul_(ScalarFor(a, info[1].As<Napi::Number>().DoubleValue()));
  } else {
    a.mul_(TensorArg(info, 1));
  }
  return info.Env().Undefined();
}
// (self, tensor1, tensor2, out?, value = 1): self + value * tensor1 * tensor2 (addcmul) or
// tensor1 / tensor2 (addcdiv), broadcasting. `out` may be one of the inputs (the op is
// elementwise): that is how the optimizers update in place.
#define POINTWISE_OP(NAME, ATEN)                                                                 \
  Napi::Value NAME(const Napi::CallbackInfo& info) {                                             \
    const at::Tensor &self = TensorArg(info, 0), &t1 = TensorArg(info, 1), &t2 = TensorArg(info, 2); \
    at::Scalar value = ScalarFor(self, OptNumberArg(info, 4).value_or(1.0));                     \
    return NewOrInto(info, 3, [&] { return at::ATEN(self, t1, t2, value); },                     \
                     [&](at::Tensor& out) { at::ATEN##_out(out, self, t1, t2, value); });        \
  }
POINTWISE_OP(Addcmul, addcmul)
POINTWISE_OP(Addcdiv, addcdiv)
#undef POINTWISE_OP
Napi::Value LerpInPlace(const Napi::CallbackInfo& info) {
  TensorArg(info, 0).lerp_(TensorArg(info, 1), NumberArg(info, 2));
  return info.Env().Undefined();
}
Napi::Value DivInPlace(const Napi::CallbackInfo& info) {
  at::Tensor& a = TensorArg(info, 0);
  if (info.Length() > 1 && info[1].IsNumber()) {
    a.div_(ScalarFor(a, info[1].As<Napi::Number>().DoubleValue()));
  } else {
    a.div_(TensorArg(info, 1));
  }
  return info.Env().Undefined();
}
Napi::Value ClampInPlace(const Napi::CallbackInfo& info) {
  auto lo = OptNumberArg(info, 1);
  auto hi = OptNumberArg(info, 2);
  TensorArg(info, 0).clamp_(lo ? c10::optional<at::Scalar>(*lo) : c10::nullopt,
                            hi ? c10::optional<at::Scalar>(*hi) : c10::nullopt);
  return info.Env().Undefined();
}
Napi::Value FloorInPlace(const Napi::CallbackInfo& info) {
  TensorArg(info, 0).floor_();
  return info.Env().Undefined();
}
Napi::Value AbsInPlace(const Napi::CallbackInfo& info) {
  TensorArg(info, 0).abs_();
  return info.Env().Undefined();
}
Napi::Value CopyInPlace(const Napi::CallbackInfo& info) {
  TensorArg(info, 0).copy_(TensorArg(info, 1));
  return info.Env().Undefined();
}
Napi::Value FillInPlace(const Napi::CallbackInfo& info) {
  TensorArg(info, 0).fill_(NumberArg(info, 1));
  return info.Env().Undefined();
}

// ---------------------------------------------------------------------------------------------
// Random numbers from a seeded generator

Napi::Value NewGenerator(const Napi::CallbackInfo& info) {
  return Data(info.Env()).generatorCtor.New({Napi::Number::New(info.Env(), static_cast<double>(IntArg(info, 0)))});
}
Napi::Value Rand(const Napi::CallbackInfo& info) {
  return Out(info, at::rand(IntListArg(info, 0), GeneratorArg(info, 1), Options(DtypeArg(info, 2))));
}
Napi::Value Randn(const Napi::CallbackInfo& info) {
  return Out(info, at::randn(IntListArg(info, 0), GeneratorArg(info, 1), Options(DtypeArg(info, 2))));
}
Napi::Value Randint(const Napi::CallbackInfo& info) {
  return Out(info, at::randint(IntArg(info, 0), IntArg(info, 1), IntListArg(info, 2),
                               GeneratorArg(info, 3), Options(at::kLong)));
}
Napi::Value Randperm(const Napi::CallbackInfo& info) {
  return Out(info, at::randperm(IntArg(info, 0), GeneratorArg(info, 1), Options(at::kLong)));
}
Napi::Value Multinomial(const Napi::CallbackInfo& info) {
  return Out(info, at::multinomial(TensorArg(info, 0), IntArg(info, 1), BoolArg(info, 2),
                                   GeneratorArg(info, 3)));
}
Napi::Value Bernoulli(const Napi::CallbackInfo& info) {
  return Out(info, at::bernoulli(TensorArg(info, 0), GeneratorArg(info, 1)));
}
Napi::Value ManualSeed(const Napi::CallbackInfo& info) {
  torch::manual_seed(static_cast<uint64_t>(IntArg(info, 0)));
  return info.Env().Undefined();
}

// ---------------------------------------------------------------------------------------------
// Runtime

// libtorch's thread count is one for the process: the calling thread takes it at once, every
// other thread at its next parallel op if it has not run one yet. Each thread that computes runs
// a team of its own of that many threads.
Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  int64_t n = IntArg(info, 0);
  if (n < 1 || n > INT_MAX) {
    throw Napi::RangeError::New(info.Env(), "thread count must be an integer from 1 to " + std::to_string(INT_MAX));
  }
  at::set_num_threads(static_cast<int>(n));
  return info.Env().Undefined();
}
Napi::Value GetNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), at::get_num_threads());
}
Napi::Value Version(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), TORCH_VERSION);
}
Napi::Value CpuCacheStats(const Napi::CallbackInfo& info) {
  auto stats = retinagrade::GetCpuCacheStats();
  auto out = Napi::Object::New(info.Env());
  auto set = [&](const char* key, size_t v) { out.Set(key, Napi::Number::New(info.Env(), static_cast<double>(v))); };
  set("liveBytes", stats.liveBytes);
  set("cachedBytes", stats.cachedBytes);
  set("peakBytes", stats.peakBytes);
  set("peakLiveBytes", stats.peakLiveBytes);
  set("capBytes", stats.capBytes);
  set("windowRequests", stats.windowRequests);
  set("hits", stats.hits);
  set("misses", stats.misses);
  set("minBytes", stats.minBytes);
  set("grownBytes", stats.grownBytes);
  return out;
}
Napi::Value EmptyCpuCache(const Napi::CallbackInfo& info) {
  retinagrade::EmptyCpuCache();
  return info.Env().Undefined();
}
// The external memory V8 counts for this thread (the handles' storages, typed arrays, ...).
Napi::Value ExternalMemory(const Napi::CallbackInfo& info) {
  int64_t total = Napi::MemoryManagement::AdjustExternalMemory(info.Env(), 0);
  return Napi::Number::New(info.Env(), static_cast<double>(total));
}

// Storages this thread's tensor handles hold: what a leak check counts.
Napi::Value LiveStorages(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(Data(info.Env()).ledger->LiveStorages()));
}

// RETINAGRADE_THREADS, else every core the process may run on (Node's availableParallelism).
int DefaultNumThreads() {
  cpu_set_t cpus;
  int cores = sched_getaffinity(0, sizeof(cpus), &cpus) == 0 ? CPU_COUNT(&cpus) : 0;
  if (cores < 1) cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const char* env = std::getenv("RETINAGRADE_THREADS");
  if (env == nullptr || *env == '\0') return cores;
  char* end = nullptr;
  long n = std::strtol(env, &end, 10);
  if (*end == '\0' && n >= 1 && n <= INT_MAX) return static_cast<int>(n);
  std::fprintf(stderr, "retinagrade: ignoring RETINAGRADE_THREADS=%s (expected a whole number from 1)\n", env);
  return cores;
}

// A libtorch linked against OpenBLAS's pthread build (Debian's) gets a second pool of threads,
// one per core, beside libtorch's own: every matrix product above OpenBLAS's size threshold is
// split over them, and they then spin in sched_yield for a while. libtorch already runs its ops
// on its own threads, so the pool only takes cores from them: a grading server lost a third of
// its CPU to it (BENCHMARKS.md, Serving). OpenBLAS runs in the calling thread instead, unless
// OPENBLAS_NUM_THREADS is set. Looked up at run time: a libtorch built with MKL has no such symbol.
void KeepOpenBlasInCallingThread() {
  if (std::getenv("OPENBLAS_NUM_THREADS") != nullptr) return;
  using SetThreads = void (*)(int);
  if (auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) set(1);
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // Once per process, by the first thread (main or worker) to load the addon, before any tensor
  // is made: large tensor blocks are cached instead of re-faulted every step
  // (native/src/cpu_allocator.cc), and the default thread count is set; a worker thread that
  // loads the addon later must not reset a count the process chose. (Debian's libtorch would
  // start with one thread.) The OpenMP wait policy cannot be set here: libgomp reads the
  // environment when it is loaded, before this runs (src/torch/native.ts sets it).
  static std::once_flag configured;
  std::call_once(configured, [] {
    retinagrade::InstallCpuAllocator();
    at::set_num_threads(DefaultNumThreads());
    KeepOpenBlasInCallingThread();
  });
  auto* data = new AddonData();
  data->tensorCtor = Napi::Persistent(TensorHandle::Define(env));
  data->generatorCtor = Napi::Persistent(GeneratorHandle::Define(env));
  env.SetInstanceData<AddonData>(data);

#define EXPORT(NAME, FN) exports.Set(NAME, Napi::Function::New<Guarded<FN>>(env, NAME))
  EXPORT("fromData", FromData);
  EXPORT("toData", ToData);
  EXPORT("item", Item);
  EXPORT("shape", Shape);
  EXPORT("dtype", Dtype);
  EXPORT("dispose", Dispose);
  EXPORT("zeros", Zeros);
  EXPORT("ones", Ones);
  EXPORT("full", Full);
  EXPORT("empty", Empty);
  EXPORT("arange", Arange);
  EXPORT("to", To);
  EXPORT("clone", Clone);

  EXPORT("requiresGrad", RequiresGrad);
  EXPORT("setRequiresGrad", SetRequiresGrad);
  EXPORT("grad", Grad);
  EXPORT("clearGrad", ClearGrad);
  EXPORT("backward", Backward);
  EXPORT("detach", Detach);
  EXPORT("setGradEnabled", SetGradEnabled);
  EXPORT("setAutocastCpu", SetAutocastCpu);
  EXPORT("clearAutocastCache", ClearAutocastCache);

  EXPORT("add", Add);
  EXPORT("sub", Sub);
  EXPORT("mul", Mul);
  EXPORT("div", Div);
  EXPORT("pow", Pow);
  EXPORT("eq", Eq);
  EXPORT("lt", Lt);
  EXPORT("gt", Gt);
  EXPORT("minimum", Minimum);
  EXPORT("matmul", Matmul);
  EXPORT("baddbmm", Baddbmm);
  EXPORT("neg", Neg);
  EXPORT("exp", Exp);
  EXPORT("log", Log);
  EXPORT("sqrt", Sqrt);
  EXPORT("abs", Abs);
  EXPORT("floor", Floor);
  EXPORT("round", Round);
  EXPORT("relu", Relu);
  EXPORT("silu", Silu);
  EXPORT("sigmoid", Sigmoid);
  EXPORT("tanh", Tanh);
  EXPORT("logicalNot", LogicalNot);
  EXPORT("clamp", Clamp);
  EXPORT("where", Where);
  EXPORT("maskedFill", MaskedFill);
  EXPORT("leakyRelu", LeakyRelu);
  EXPORT("gelu", Gelu);
  EXPORT("softmax", Softmax);
  EXPORT("logSoftmax", LogSoftmax);
  EXPORT("dropout", Dropout);

  EXPORT("sum", Sum);
  EXPORT("mean", Mean);
  EXPORT("amax", Amax);
  EXPORT("amin", Amin);
  EXPORT("argmax", Argmax);
  EXPORT("var", Var);
  EXPORT("logsumexp", Logsumexp);
  EXPORT("cumsum", Cumsum);

  EXPORT("reshape", Reshape);
  EXPORT("view", View);
  EXPORT("permute", Permute);
  EXPORT("transpose", Transpose);
  EXPORT("contiguous", Contiguous);
  EXPORT("unsqueeze", Unsqueeze);
  EXPORT("squeeze", Squeeze);
  EXPORT("expand", Expand);
  EXPORT("flatten", Flatten);
  EXPORT("cat", Cat);
  EXPORT("stack", Stack);
  EXPORT("slice", Slice);
  EXPORT("indexSelect", IndexSelect);
  EXPORT("gather", Gather);
  EXPORT("flip", Flip);
  EXPORT("pad", Pad);

  EXPORT("linear", Linear);
  EXPORT("conv2d", Conv2d);
  EXPORT("toMkldnn", ToMkldnn);
  EXPORT("toDense", ToDense);
  EXPORT("mkldnnConvWeight", MkldnnConvWeight);
  EXPORT("mkldnnConv2d", MkldnnConv2d);
  EXPORT("batchNorm", BatchNorm);
  EXPORT("maxPool2d", MaxPool2d);
  EXPORT("avgPool2d", AvgPool2d);
  EXPORT("adaptiveAvgPool2d", AdaptiveAvgPool2d);
  EXPORT("interpolate", Interpolate);
  EXPORT("affineGrid", AffineGrid);
  EXPORT("gridSample", GridSample);

  EXPORT("addInPlace", AddInPlace);
  EXPORT("mulInPlace", MulInPlace);
  EXPORT("addcmul", Addcmul);
  EXPORT("addcdiv", Addcdiv);
  EXPORT("lerpInPlace", LerpInPlace);
  EXPORT("divInPlace", DivInPlace);
  EXPORT("clampInPlace", ClampInPlace);
  EXPORT("absInPlace", AbsInPlace);
  EXPORT("floorInPlace", FloorInPlace);
  EXPORT("copyInPlace", CopyInPlace);
  EXPORT("fillInPlace", FillInPlace);

  EXPORT("generator", NewGenerator);
  EXPORT("rand", Rand);
  EXPORT("randn", Randn);
  EXPORT("randint", Randint);
  EXPORT("randperm", Randperm);
  EXPORT("multinomial", Multinomial);
  EXPORT("bernoulli", Bernoulli);
  EXPORT("manualSeed", ManualSeed);

  EXPORT("setNumThreads", SetNumThreads);
  EXPORT("getNumThreads", GetNumThreads);
  EXPORT("version", Version);
  EXPORT("cpuCacheStats", CpuCacheStats);
  EXPORT("emptyCpuCache", EmptyCpuCache);
  EXPORT("externalMemory", ExternalMemory);
  EXPORT("liveStorages", LiveStorages);
#undef EXPORT
  retinagrade::ExportDistributed(env, exports);
  retinagrade::ExportOptimizers(env, exports);
  return exports;
}

NODE_API_MODULE(retinagrade_torch, Init)
