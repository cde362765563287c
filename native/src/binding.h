// What the binding's translation units share: argument checks that name the argument, the guard
// that turns C++ errors into JavaScript ones, and the entry points one unit gives another.
#pragma once

#include <napi.h>
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <cmath>
#include <exception>
#include <string>
#include <vector>

namespace retinagrade {

// ---------------------------------------------------------------------------------------------
// Argument helpers: wrong JavaScript types become TypeErrors that name the argument.

[[noreturn]] inline void TypeFail(const Napi::CallbackInfo& info, size_t i, const char* expected) {
  throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + ": expected " + expected);
}

inline bool IsMissing(const Napi::CallbackInfo& info, size_t i) {
  return i >= info.Length() || info[i].IsUndefined() || info[i].IsNull();
}

inline double NumberArg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsNumber()) TypeFail(info, i, "a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

// True when `v` is a whole number an int64 holds (casting NaN or huge values is undefined).
inline bool IsInt64(double v) { return std::isfinite(v) && std::fabs(v) < 9.2e18 && v == std::trunc(v); }

inline int64_t IntArg(const Napi::CallbackInfo& info, size_t i) {
  double v = NumberArg(info, i);
  if (!IsInt64(v)) TypeFail(info, i, "an integer");
  return static_cast<int64_t>(v);
}

inline bool BoolArg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsBoolean()) TypeFail(info, i, "a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

inline std::string StringArg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsString()) TypeFail(info, i, "a string");
  return info[i].As<Napi::String>().Utf8Value();
}

// The tensor of a Tensor handle, and those of an array of them (binding.cc owns the handles).
at::Tensor& TensorArg(const Napi::CallbackInfo& info, size_t i);
std::vector<at::Tensor> TensorListArg(const Napi::CallbackInfo& info, size_t i);
// A new Tensor handle that owns `t`.
Napi::Value TensorValue(Napi::Env env, at::Tensor t);

// ---------------------------------------------------------------------------------------------
// Error translation: every exported function runs inside this guard. In a worker thread being
// terminated no error can reach JavaScript; node-addon-api then drops it (binding.gyp's
// NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS) rather than let the C++ runtime end the process.

using Fn = Napi::Value (*)(const Napi::CallbackInfo&);

template <Fn F>
Napi::Value Guarded(const Napi::CallbackInfo& info) {
  try {
    return F(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw Napi::Error::New(info.Env(), e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
}

// Registers c10d's stores, process groups and collectives (distributed.cc).
void ExportDistributed(Napi::Env env, Napi::Object exports);
// at::conv2d, except where training under bf16 autocast with few output positions (small_map_conv.cc).
at::Tensor Conv2d(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias, std::vector<int64_t> stride,
                  std::vector<int64_t> padding, std::vector<int64_t> dilation, int64_t groups);
// Registers the optimizers' fused updates (adam.cc).
void ExportOptimizers(Napi::Env env, Napi::Object exports);

}  // namespace retinagrade
