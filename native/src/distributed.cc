// PyTorch's distributed engine (c10d) for the binding: TCP stores for rendezvous, Gloo process
// groups and their collectives, as thinly as the ops in binding.cc (one c10d call per function).
//
// Whatever waits on the network (connecting to a store, the rendezvous, a collective) runs on a
// libuv thread and returns a promise, so the JavaScript thread never blocks on a peer; the peer
// that never arrives or dies surfaces as c10d's own timeout or connection error, rejected as a
// JavaScript error. Stores and groups cross into JavaScript as type-tagged externals that keep
// their c10d object alive until destroyed or collected. A collective's promise holds the group
// and the tensors it works on, so neither goes away under it.
#include "binding.h"

// libtorch's headers declare ProcessGroupGloo only for builds with Gloo, which every CPU build of
// libtorch >= 1.13 is (its symbols are in libtorch_cpu).
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO
#endif

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/autograd/custom_function.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace retinagrade {
namespace {

struct StoreRef {
  c10::intrusive_ptr<c10d::Store> store;
  int port;  // the TCP port of the store server (the chosen one when asked for port 0)
};

struct GroupRef {
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;  // null once destroyed
};

constexpr napi_type_tag kStoreTag = {0x7265'7469'6e61'0001ULL, 0x6331'3064'5374'6f72ULL};
constexpr napi_type_tag kGroupTag = {0x7265'7469'6e61'0002ULL, 0x6331'3064'4772'7570ULL};

template <typename T>
Napi::Value Wrap(Napi::Env env, std::unique_ptr<T> ref, const napi_type_tag& tag) {
  auto external = Napi::External<T>::New(env, ref.release(), [](Napi::Env, T* p) { delete p; });
  external.TypeTag(&tag);
  return external;
}

template <typename T>
T& RefArg(const Napi::CallbackInfo& info, size_t i, const napi_type_tag& tag, const char* what) {
  if (i >= info.Length() || !info[i].IsExternal() ||
      !info[i].As<Napi::External<T>>().CheckTypeTag(&tag)) {
    TypeFail(info, i, what);
  }
  return *info[i].As<Napi::External<T>>().Data();
}

StoreRef& StoreArg(const Napi::CallbackInfo& info, size_t i) {
  return RefArg<StoreRef>(info, i, kStoreTag, "a Store");
}

c10::intrusive_ptr<c10d::ProcessGroupGloo> GroupArg(const Napi::CallbackInfo& info, size_t i) {
  auto& ref = RefArg<GroupRef>(info, i, kGroupTag, "a ProcessGroup");
  if (!ref.group) throw Napi::Error::New(info.Env(), "the process group was already destroyed");
  return ref.group;
}

std::chrono::milliseconds MillisArg(const Napi::CallbackInfo& info, size_t i) {
  int64_t ms = IntArg(info, i);
  if (ms < 1) TypeFail(info, i, "a timeout of at least 1 ms");
  return std::chrono::milliseconds(ms);
}

// Runs `work` on a libuv thread; the promise resolves with `done`'s value on the JavaScript
// thread, or rejects with the error `work` threw (c10d's message, without its C++ backtrace).
class Task : public Napi::AsyncWorker {
 public:
  using Work = std::function<void()>;
  using Done = std::function<Napi::Value(Napi::Env)>;

  static Napi::Value Start(Napi::Env env, Work work, Done done) {
    auto* task = new Task(env, std::move(work), std::move(done));
    Napi::Promise promise = task->deferred_.Promise();
    task->Queue();  // the worker deletes itself once settled
    return promise;
  }

 protected:
  void Execute() override {
    try {
      work_();
    } catch (const c10::Error& e) {
      SetError(e.what_without_backtrace());
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override { deferred_.Resolve(done_(Env())); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Task(Napi::Env env, Work work, Done done)
      : Napi::AsyncWorker(env, "retinagrade:c10d"),
        deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)),
        done_(std::move(done)) {}

  Napi::Promise::Deferred deferred_;
  Work work_;
  Done done_;
};

Napi::Value Undefined(Napi::Env env) { return env.Undefined(); }

// ---------------------------------------------------------------------------------------------
// Stores

// tcpStore(host, port, isServer, timeoutMs): a server listens on host:port (port 0: any free port)
// and is also a client of itself; a client connects, retrying until the timeout.
Napi::Value TcpStore(const Napi::CallbackInfo& info) {
  std::string host = StringArg(info, 0);
  int64_t port = IntArg(info, 1);
  if (port < 0 || port > 65535) TypeFail(info, 1, "a port from 0 to 65535");
  c10d::TCPStoreOptions options;
  options.port = static_cast<uint16_t>(port);
  options.isServer = BoolArg(info, 2);
  options.waitWorkers = false;  // the process group's rendezvous waits for the ranks
  options.timeout = MillisArg(info, 3);
  auto made = std::make_shared<StoreRef>();
  return Task::Start(
      info.Env(),
      [made, host, options] {
        auto store = c10::make_intrusive<c10d::TCPStore>(host, options);
        made->port = store->getPort();
        made->store = std::move(store);
      },
      [made](Napi::Env env) { return Wrap(env, std::make_unique<StoreRef>(*made), kStoreTag); });
}

Napi::Value StorePort(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), StoreArg(info, 0).port);
}

// prefixStore(store, prefix): the keys of `store` under "prefix/", as PyTorch nests its groups.
Napi::Value PrefixStore(const Napi::CallbackInfo& info) {
  StoreRef& base = StoreArg(info, 0);
  auto ref = std::make_unique<StoreRef>(
      StoreRef{c10::make_intrusive<c10d::PrefixStore>(StringArg(info, 1), base.store), base.port});
  return Wrap(info.Env(), std::move(ref), kStoreTag);
}

// storeAdd(store, key, amount): adds to the counter at `key` and resolves with its new value.
Napi::Value StoreAdd(const Napi::CallbackInfo& info) {
  c10::intrusive_ptr<c10d::Store> store = StoreArg(info, 0).store;
  if (!store) throw Napi::Error::New(info.Env(), "argument 0: the store was already closed");
  std::string key = StringArg(info, 1);
  int64_t amount = IntArg(info, 2);
  auto value = std::make_shared<int64_t>(0);
  return Task::Start(
      info.Env(), [store, key, amount, value] { *value = store->add(key, amount); },
      [value](Napi::Env env) { return Napi::Number::New(env, static_cast<double>(*value)); });
}

// closeStore(store): drops this handle's reference (a server stops once no group uses it).
Napi::Value CloseStore(const Napi::CallbackInfo& info) {
  StoreArg(info, 0).store.reset();
  return info.Env().Undefined();
}

// ---------------------------------------------------------------------------------------------
// Process groups

// processGroupGloo(store, rank, worldSize, timeoutMs, device, deviceName): the rendezvous of
// `worldSize` ranks through `store`. `device` picks Gloo's transport address: "default" (the
// host name's address), "hostname" (the address of `deviceName`) or "interface" (a network
// interface named `deviceName`). `timeoutMs` bounds the rendezvous and every collective.
Napi::Value ProcessGroupGloo(const Napi::CallbackInfo& info) {
  c10::intrusive_ptr<c10d::Store> store = StoreArg(info, 0).store;
  if (!store) throw Napi::Error::New(info.Env(), "argument 0: the store was already closed");
  int64_t rank = IntArg(info, 1);
  int64_t size = IntArg(info, 2);
  if (size < 1 || size > 1 << 20) TypeFail(info, 2, "a world size from 1");
  if (rank < 0 || rank >= size) TypeFail(info, 1, "a rank from 0 to worldSize - 1");
  auto options = c10d::ProcessGroupGloo::Options::create(MillisArg(info, 3));
  std::string device = StringArg(info, 4);
  if (device == "default") {
    options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  } else if (device == "hostname") {
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(StringArg(info, 5)));
  } else if (device == "interface") {
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(StringArg(info, 5)));
  } else {
    TypeFail(info, 4, "'default', 'hostname' or 'interface'");
  }
  auto made = std::make_shared<GroupRef>();
  return Task::Start(
      info.Env(),
      [made, store, rank, size, options] {
        made->group = c10::make_intrusive<c10d::ProcessGroupGloo>(store, static_cast<int>(rank),
                                                                   static_cast<int>(size), options);
      },
      [made](Napi::Env env) { return Wrap(env, std::make_unique<GroupRef>(*made), kGroupTag); });
}

// setSequenceNumber(group): rank 0 draws the group's collective sequence number and the others
// read it from the store, as torch.distributed does after forming a group.
Napi::Value SetSequenceNumber(const Napi::CallbackInfo& info) {
  auto group = GroupArg(info, 0);
  return Task::Start(info.Env(), [group] { group->setSequenceNumberForGroup(); }, Undefined);
}

// destroyProcessGroup(group): drops the group; its threads end once pending collectives settle.
Napi::Value DestroyProcessGroup(const Napi::CallbackInfo& info) {
  RefArg<GroupRef>(info, 0, kGroupTag, "a ProcessGroup").group.reset();
  return info.Env().Undefined();
}

// ---------------------------------------------------------------------------------------------
// Collectives: in place, on dense CPU tensors; each returns a promise settled when the
// collective has completed on this rank.

c10d::ReduceOp ReduceOpArg(const Napi::CallbackInfo& info, size_t i) {
  std::string name = StringArg(info, i);
  if (name == "sum") return c10d::ReduceOp::SUM;
  if (name == "product") return c10d::ReduceOp::PRODUCT;
  if (name == "min") return c10d::ReduceOp::MIN;
  if (name == "max") return c10d::ReduceOp::MAX;
  TypeFail(info, i, "'sum', 'product', 'min' or 'max' (Gloo has no average: sum, then divide)");
}

// Starts a collective on the libuv thread and waits there for it to complete.
template <typename Launch>
Napi::Value Collective(Napi::Env env, Launch launch) {
  return Task::Start(env, [launch]() mutable { launch()->wait(); }, Undefined);
}

// allreduce(group, tensor, op): every rank's `tensor` becomes the reduction over all ranks.
Napi::Value Allreduce(const Napi::CallbackInfo& info) {
  auto group = GroupArg(info, 0);
  std::vector<at::Tensor> tensors{TensorArg(info, 1)};
  c10d::AllreduceOptions options;
  options.reduceOp = ReduceOpArg(info, 2);
  return Collective(info.Env(), [group, tensors, options]() mutable { return group->allreduce(tensors, options); });
}

// broadcast(group, tensor, root): every rank's `tensor` becomes rank `root`'s.
Napi::Value Broadcast(const Napi::CallbackInfo& info) {
  auto group = GroupArg(info, 0);
  std::vector<at::Tensor> tensors{TensorArg(info, 1)};
  c10d::BroadcastOptions options;
  options.rootRank = IntArg(info, 2);
  return Collective(info.Env(), [group, tensors, options]() mutable { return group->broadcast(tensors, options); });
}

// allgather(group, outputs, input): outputs[r] becomes rank r's `input` (worldSize outputs).
Napi::Value Allgather(const Napi::CallbackInfo& info) {
  auto group = GroupArg(info, 0);
  std::vector<std::vector<at::Tensor>> outputs{TensorListArg(info, 1)};
  std::vector<at::Tensor> inputs{TensorArg(info, 2)};
  return Collective(info.Env(), [group, outputs, inputs]() mutable { return group->allgather(outputs, inputs); });
}

// barrier(group): settles once every rank has reached it.
Napi::Value Barrier(const Napi::CallbackInfo& info) {
  auto group = GroupArg(info, 0);
  return Collective(info.Env(), [group]() mutable { return group->barrier(); });
}

// allreduceAutograd(group, tensor): a new tensor, the sum of `tensor` over all ranks, whose
// gradient is the sum of the ranks' gradients (torch.distributed.nn.functional.all_reduce), for
// statistics that span the ranks inside a forward pass (synchronized batch norm). It waits on
// this thread, in the forward pass and in the backward pass alike: only for small tensors, whose
// allreduce takes less than a millisecond on a local network.
struct AllreduceSum : public torch::autograd::Function<AllreduceSum> {
  static at::Tensor Reduce(const c10::intrusive_ptr<c10d::ProcessGroupGloo>& group, const at::Tensor& t) {
    std::vector<at::Tensor> tensors{t.detach().clone(at::MemoryFormat::Contiguous)};
    group->allreduce(tensors)->wait();
    return tensors[0];
  }
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& input,
                            c10::intrusive_ptr<c10d::ProcessGroupGloo> group) {
    ctx->saved_data["group"] = c10::IValue::make_capsule(group);
    return Reduce(group, input);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto group = c10::static_intrusive_pointer_cast<c10d::ProcessGroupGloo>(ctx->saved_data["group"].toCapsule());
    return {Reduce(group, grads[0]), at::Tensor()};
  }
};

Napi::Value AllreduceAutograd(const Napi::CallbackInfo& info) {
  auto group = GroupArg(info, 0);
  return TensorValue(info.Env(), AllreduceSum::apply(TensorArg(info, 1), group));
}

}  // namespace

void ExportDistributed(Napi::Env env, Napi::Object exports) {
#define EXPORT(NAME, FN) exports.Set(NAME, Napi::Function::New<Guarded<FN>>(env, NAME))
  EXPORT("tcpStore", TcpStore);
  EXPORT("storePort", StorePort);
  EXPORT("prefixStore", PrefixStore);
  EXPORT("storeAdd", StoreAdd);
  EXPORT("closeStore", CloseStore);
  EXPORT("processGroupGloo", ProcessGroupGloo);
  EXPORT("setSequenceNumber", SetSequenceNumber);
  EXPORT("destroyProcessGroup", DestroyProcessGroup);
  EXPORT("allreduce", Allreduce);
  EXPORT("broadcast", Broadcast);
  EXPORT("allgather", Allgather);
  EXPORT("barrier", Barrier);
  EXPORT("allreduceAutograd", AllreduceAutograd);
#undef EXPORT
}

}  // namespace retinagrade
