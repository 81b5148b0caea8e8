// Napi glue only: copy JS arguments into the baton (spec.h) on the main
// thread, run the work on a thread this addon owns, and turn results and
// recorded errors into JS on the main thread through a thread-safe function.
// Arguments were validated by src/index.ts; nothing here re-checks them.
#include <napi.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "copy_job.h"
#include "hash_blocks.h"
#include "rate_limiter.h"
#include "sha256.h"
#include "sink.h"
#include "spec.h"
#include "vddk_library.h"

namespace vmrestore {

namespace {

// One running copy or diskInfo call.
struct Task {
  virtual ~Task() = default;
  virtual void Run(const std::function<void(const Progress&)>& progress) = 0;  // worker thread
  virtual void Cancel() {}
  virtual const JobError& Error() const = 0;
  virtual Napi::Value Result(Napi::Env env) = 0;  // main thread
};

struct Message {
  uint64_t id;
  bool done;
  Progress progress;
};

void CallJs(Napi::Env env, Napi::Function callback, void* context, Message* raw);
using Tsfn = Napi::TypedThreadSafeFunction<void, Message, CallJs>;

struct Running {
  std::unique_ptr<Task> task;
  std::thread thread;
  Napi::Promise::Deferred deferred;
  Tsfn tsfn;
};

// Per-environment state (main thread and each worker_thread get their own).
struct Addon {
  Napi::FunctionReference errorClass;
  std::map<uint64_t, std::unique_ptr<Running>> running;
  uint64_t nextId = 1;
};

Napi::Value MakeError(Napi::Env env, const JobError& e) {
  Addon* addon = env.GetInstanceData<Addon>();
  Napi::Object err;
  if (addon && !addon->errorClass.IsEmpty()) {
    std::vector<napi_value> args{Napi::String::New(env, e.message), Napi::String::New(env, e.code)};
    if (e.hasVix) args.push_back(Napi::Number::New(env, static_cast<double>(e.vixError)));
    err = addon->errorClass.New(args);
  } else {
    err = Napi::Error::New(env, e.message).Value();
    err.Set("code", e.code);
  }
  return err;
}

void CallJs(Napi::Env env, Napi::Function callback, void*, Message* raw) {
  std::unique_ptr<Message> msg(raw);
  if (env == nullptr) return;  // environment shutting down
  Addon* addon = env.GetInstanceData<Addon>();
  auto it = addon->running.find(msg->id);
  if (it == addon->running.end()) return;
  std::unique_ptr<Running> done;
  if (msg->done) {
    // Bookkeeping first, without JS: it must happen even if JS cannot run.
    done = std::move(it->second);
    addon->running.erase(it);
    done->thread.join();  // the worker has posted its last message and is returning
  }
  // Any Napi call can throw while a worker_thread is being terminated (JS
  // can no longer run); such a throw must not escape into libuv.
  try {
    if (done) {
      const JobError& err = done->task->Error();
      if (err)
        done->deferred.Reject(MakeError(env, err));
      else
        done->deferred.Resolve(done->task->Result(env));
      return;
    }
    if (callback.IsEmpty() || !callback.IsFunction()) return;
    Napi::Object p = Napi::Object::New(env);
    p.Set("bytesDone", static_cast<double>(msg->progress.bytesDone));
    p.Set("bytesTotal", static_cast<double>(msg->progress.bytesTotal));
    p.Set("extentsDone", static_cast<double>(msg->progress.extentsDone));
    p.Set("rateBytesPerSec", msg->progress.rateBytesPerSec);
    if (msg->progress.bytesVerified >= 0) p.Set("bytesVerified", static_cast<double>(msg->progress.bytesVerified));
    if (msg->progress.checkpointExtents >= 0) {
      Napi::Object cp = Napi::Object::New(env);
      cp.Set("extentsDone", static_cast<double>(msg->progress.checkpointExtents));
      cp.Set("bytesDone", static_cast<double>(msg->progress.checkpointBytes));
      cp.Set("transport", msg->progress.transport);
      p.Set("checkpoint", cp);
    }
    callback.Call({p});  // the facade wraps onProgress; a throw here must not kill the job
  } catch (const Napi::Error&) {
  }
}

std::string Str(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
}

bool Has(const Napi::Object& o, const char* key) { return o.Get(key).IsString(); }

uint64_t U64(const Napi::Object& o, const char* key) {
  return static_cast<uint64_t>(o.Get(key).As<Napi::Number>().Int64Value());
}

// A RateLimiter handed to JS: an External owning one reference to the
// limiter (each copy using it holds another), tagged so that no other
// External can be taken for one.
using LimiterRef = std::shared_ptr<RateLimiter>;
constexpr napi_type_tag kLimiterTag = {0x7a3c51e2d94b4f06ULL, 0xb1e8c0f4a2d36957ULL};

LimiterRef* LimiterOf(const Napi::Value& v) {
  if (!v.IsExternal()) return nullptr;
  auto ext = v.As<Napi::External<LimiterRef>>();
  return ext.CheckTypeTag(&kLimiterTag) ? ext.Data() : nullptr;
}

Napi::Value CreateRateLimiter(const Napi::CallbackInfo& info) {
  auto ref = std::make_unique<LimiterRef>(std::make_shared<RateLimiter>(
      static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value())));
  auto ext = Napi::External<LimiterRef>::New(info.Env(), ref.release(), [](Napi::Env, LimiterRef* p) { delete p; });
  ext.TypeTag(&kLimiterTag);
  return ext;
}

Napi::Value RateLimiterSet(const Napi::CallbackInfo& info) {
  LimiterRef* l = LimiterOf(info[0]);
  if (!l) throw Napi::TypeError::New(info.Env(), "not a rate limiter");
  (*l)->Set(static_cast<uint64_t>(info[1].As<Napi::Number>().Int64Value()));
  return info.Env().Undefined();
}

Napi::Value RateLimiterGet(const Napi::CallbackInfo& info) {
  LimiterRef* l = LimiterOf(info[0]);
  if (!l) throw Napi::TypeError::New(info.Env(), "not a rate limiter");
  return Napi::Number::New(info.Env(), static_cast<double>((*l)->Get()));
}

TargetSpec ParseTarget(const Napi::Object& t) {
  TargetSpec s;
  s.kind = Str(t, "kind");
  s.path = Str(t, "path");
  s.fresh = t.Get("fresh").ToBoolean();
  if (t.Get("direct").IsBoolean()) s.direct = t.Get("direct").ToBoolean();
  if (t.Get("queueDepth").IsNumber()) s.queueDepth = t.Get("queueDepth").As<Napi::Number>().Uint32Value();
  if (t.Get("flushBehind").IsNumber()) s.flushBehind = static_cast<uint64_t>(t.Get("flushBehind").As<Napi::Number>().Int64Value());
  s.libDir = Str(t, "libDir");
  s.server = Str(t, "server");
  s.thumbprint = Str(t, "thumbprint");
  s.username = Str(t, "username");
  s.password = Str(t, "password");
  s.hasPassword = Has(t, "password");
  s.cookie = Str(t, "cookie");
  s.hasCookie = Has(t, "cookie");
  s.vmMoref = Str(t, "vmMoref");
  s.snapshotMoref = Str(t, "snapshotMoref");
  s.hasSnapshot = Has(t, "snapshotMoref");
  s.diskPath = Str(t, "diskPath");
  s.configFile = Str(t, "configFile");
  s.hasConfigFile = Has(t, "configFile");
  if (t.Get("transports").IsArray()) {
    Napi::Array a = t.Get("transports").As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) s.transports.push_back(a.Get(i).As<Napi::String>().Utf8Value());
  }
  return s;
}

std::unique_ptr<CopySpec> ParseCopy(const Napi::Object& o) {
  auto spec = std::make_unique<CopySpec>();
  Napi::Array sources = o.Get("sources").As<Napi::Array>();
  for (uint32_t i = 0; i < sources.Length(); i++) spec->sources.push_back(sources.Get(i).As<Napi::String>());
  Napi::Array extents = o.Get("extents").As<Napi::Array>();
  for (uint32_t i = 0; i < extents.Length(); i++) {
    Napi::Object e = extents.Get(i).As<Napi::Object>();
    ExtentSpec x;
    x.source = static_cast<uint32_t>(U64(e, "source"));
    x.sourceOffset = U64(e, "sourceOffset");
    x.targetOffset = U64(e, "targetOffset");
    x.length = U64(e, "length");
    if (e.Get("check").IsObject()) {
      Napi::Object c = e.Get("check").As<Napi::Object>();
      x.hasCheck = true;
      x.checkOffset = U64(c, "offset");
      x.checkLength = U64(c, "length");
      Napi::Buffer<uint8_t> sha = c.Get("sha256").As<Napi::Buffer<uint8_t>>();  // 32 bytes, decoded in TS
      std::memcpy(x.sha256, sha.Data(), 32);
    }
    spec->extents.push_back(x);
  }
  spec->target = ParseTarget(o.Get("target").As<Napi::Object>());
  spec->progressIntervalMs = static_cast<uint32_t>(U64(o, "progressIntervalMs"));
  spec->bufferBytes = static_cast<size_t>(U64(o, "bufferBytes"));
  spec->bufferCount = static_cast<size_t>(U64(o, "bufferCount"));
  spec->verify = o.Get("verify").ToBoolean();
  spec->readBack = o.Get("readBack").ToBoolean();
  if (o.Get("readBackDirect").IsBoolean()) spec->readBackDirect = o.Get("readBackDirect").ToBoolean();
  if (o.Get("checkpointExtents").IsNumber()) spec->checkpointExtents = U64(o, "checkpointExtents");
  if (o.Get("checkpointBytes").IsNumber()) spec->checkpointBytes = U64(o, "checkpointBytes");
  Napi::Array md = o.Get("metadata").As<Napi::Array>();  // [[key, value], ...]
  for (uint32_t i = 0; i < md.Length(); i++) {
    Napi::Array kv = md.Get(i).As<Napi::Array>();
    spec->metadata.emplace_back(kv.Get(0u).As<Napi::String>(), kv.Get(1u).As<Napi::String>());
  }
  // The job's own cap first, then the shared ones.
  // Both optional in the raw API (validate.ts always sets them).
  uint64_t own = o.Get("maxBytesPerSec").IsNumber() ? U64(o, "maxBytesPerSec") : 0;
  if (own > 0) spec->limiters.push_back(std::make_shared<RateLimiter>(own));
  Napi::Array limiters = o.Get("rateLimiters").IsArray() ? o.Get("rateLimiters").As<Napi::Array>() : Napi::Array::New(o.Env());  // Externals from createRateLimiter
  for (uint32_t i = 0; i < limiters.Length(); i++) {
    LimiterRef* l = LimiterOf(limiters.Get(i));
    if (!l) throw Napi::TypeError::New(o.Env(), "rateLimiters[" + std::to_string(i) + "] is not a rate limiter");
    spec->limiters.push_back(*l);
  }
  return spec;
}

Napi::Array Strings(Napi::Env env, const std::vector<std::string>& v) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (uint32_t i = 0; i < v.size(); i++) a.Set(i, v[i]);
  return a;
}

class CopyTask : public Task {
 public:
  explicit CopyTask(std::unique_ptr<CopySpec> spec) : spec_(std::move(spec)) {}
  void Run(const std::function<void(const Progress&)>& progress) override {
    job_ = std::make_unique<CopyJob>(std::move(spec_), progress);
    // Publish first, then look: with Cancel() doing the opposite, one of the
    // two always sees the other (both atomics are sequentially consistent).
    ready_ = true;
    if (cancelRequested_) job_->Cancel();
    job_->Run();
  }
  void Cancel() override {
    cancelRequested_ = true;
    if (ready_) job_->Cancel();
  }
  const JobError& Error() const override { return job_->error(); }
  Napi::Value Result(Napi::Env env) override {
    const CopyResult& r = job_->result();
    Napi::Object o = Napi::Object::New(env);
    o.Set("bytesWritten", static_cast<double>(r.bytesWritten));
    o.Set("bytesSkipped", static_cast<double>(r.bytesSkipped));
    o.Set("extentsWritten", static_cast<double>(r.extentsWritten));
    o.Set("bytesVerified", static_cast<double>(r.bytesVerified));
    o.Set("bytesDirect", static_cast<double>(r.bytesDirect));
    o.Set("transport", r.transport);
    o.Set("durationMs", r.durationMs);
    o.Set("warnings", Strings(env, r.warnings));
    return o;
  }

 private:
  std::unique_ptr<CopySpec> spec_;
  std::unique_ptr<CopyJob> job_;
  std::atomic<bool> cancelRequested_{false};
  std::atomic<bool> ready_{false};
};

class DiskInfoTask : public Task {
 public:
  explicit DiskInfoTask(TargetSpec t) : target_(std::move(t)) {}
  void Run(const std::function<void(const Progress&)>&) override {
    auto sink = MakeSink(target_, false);
    if (sink->Open(error_)) {
      result_.capacityBytes = sink->Capacity();
      result_.transport = sink->Transport();
      sink->ReadMetadata(result_.metadata, error_);
    }
    JobError closeErr;
    sink->Close(closeErr);
    if (!error_ && closeErr) error_ = closeErr;
    result_.warnings = sink->TakeWarnings();
  }
  const JobError& Error() const override { return error_; }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("capacityBytes", static_cast<double>(result_.capacityBytes));
    o.Set("transport", result_.transport);
    Napi::Object md = Napi::Object::New(env);
    for (const auto& kv : result_.metadata) md.Set(kv.first, kv.second);
    o.Set("metadata", md);
    o.Set("warnings", Strings(env, result_.warnings));
    return o;
  }

 private:
  TargetSpec target_;
  JobError error_;
  DiskInfoResult result_;
};

class HashTask : public Task {
 public:
  explicit HashTask(HashSpec s) : spec_(std::move(s)) {}
  void Run(const std::function<void(const Progress&)>& progress) override {
    HashBlocks(spec_, cancelled_, progress, result_, error_);
  }
  void Cancel() override { cancelled_ = true; }
  const JobError& Error() const override { return error_; }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("bytesHashed", static_cast<double>(result_.bytesHashed));
    Napi::Array ms = Napi::Array::New(env, result_.mismatches.size());
    for (size_t i = 0; i < result_.mismatches.size(); i++) {
      const HashMismatch& m = result_.mismatches[i];
      Napi::Object x = Napi::Object::New(env);
      x.Set("block", static_cast<double>(m.block));
      x.Set("sha256", Hex(m.sha256, 32));
      x.Set("bytesRead", static_cast<double>(m.bytesRead));
      ms.Set(static_cast<uint32_t>(i), x);
    }
    o.Set("mismatches", ms);
    return o;
  }

 private:
  HashSpec spec_;
  std::atomic<bool> cancelled_{false};
  JobError error_;
  HashResult result_;
};

// Starts `task` on its own thread; returns { promise, cancel }.
Napi::Object Start(Napi::Env env, std::unique_ptr<Task> task, Napi::Value onProgress) {
  Addon* addon = env.GetInstanceData<Addon>();
  uint64_t id = addon->nextId++;
  auto r = std::make_unique<Running>(Running{std::move(task), std::thread(), Napi::Promise::Deferred::New(env), Tsfn()});
  Napi::Function cb = onProgress.IsFunction() ? onProgress.As<Napi::Function>() : Napi::Function();
  r->tsfn = Tsfn::New(env, cb, "vmrestore-vddk", 0, 1);
  Napi::Object out = Napi::Object::New(env);
  out.Set("promise", r->deferred.Promise());
  Task* t = r->task.get();
  Tsfn tsfn = r->tsfn;
  r->thread = std::thread([t, tsfn, id]() mutable {
    t->Run([&](const Progress& p) { tsfn.NonBlockingCall(new Message{id, false, p}); });
    tsfn.BlockingCall(new Message{id, true, {}});
    tsfn.Release();
  });
  addon->running.emplace(id, std::move(r));
  out.Set("cancel", Napi::Function::New(env, [id](const Napi::CallbackInfo& info) {
            Addon* a = info.Env().GetInstanceData<Addon>();
            auto it = a->running.find(id);
            if (it != a->running.end()) it->second->task->Cancel();
          }));
  return out;
}

Napi::Value Copy(const Napi::CallbackInfo& info) {
  return Start(info.Env(), std::make_unique<CopyTask>(ParseCopy(info[0].As<Napi::Object>())), info[1]);
}

Napi::Value DiskInfo(const Napi::CallbackInfo& info) {
  return Start(info.Env(), std::make_unique<DiskInfoTask>(ParseTarget(info[0].As<Napi::Object>())),
               info.Env().Undefined());
}

// { path, offsets: Float64Array, lengths: Float64Array, sha256: Buffer, threads, stopAtFirst, progressIntervalMs }
Napi::Value HashBlocksJs(const Napi::CallbackInfo& info) {
  Napi::Object o = info[0].As<Napi::Object>();
  HashSpec s;
  s.path = Str(o, "path");
  Napi::Float64Array offs = o.Get("offsets").As<Napi::Float64Array>();
  Napi::Float64Array lens = o.Get("lengths").As<Napi::Float64Array>();
  for (size_t i = 0; i < offs.ElementLength(); i++) {
    s.offsets.push_back(static_cast<uint64_t>(offs[i]));
    s.lengths.push_back(static_cast<uint64_t>(lens[i]));
  }
  Napi::Buffer<uint8_t> sha = o.Get("sha256").As<Napi::Buffer<uint8_t>>();
  s.sha256.assign(sha.Data(), sha.Data() + sha.Length());
  s.threads = static_cast<uint32_t>(U64(o, "threads"));
  s.stopAtFirst = o.Get("stopAtFirst").ToBoolean();
  s.progressIntervalMs = static_cast<uint32_t>(U64(o, "progressIntervalMs"));
  return Start(info.Env(), std::make_unique<HashTask>(std::move(s)), info[1]);
}

Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  info.Env().GetInstanceData<Addon>()->errorClass = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

// At environment teardown (process exit, worker_thread end) cancel every
// job and wait for its thread, so no thread outlives the Napi state it posts to.
void Cleanup(Addon* addon) {
  for (auto& kv : addon->running) kv.second->task->Cancel();
  for (auto& kv : addon->running)
    if (kv.second->thread.joinable()) kv.second->thread.join();
  addon->running.clear();
}

Napi::Object InitImpl(Napi::Env env, Napi::Object exports) {
  auto* addon = new Addon();
  env.SetInstanceData<Addon>(addon);
  env.AddCleanupHook([addon]() { Cleanup(addon); });
  exports.Set("copy", Napi::Function::New(env, Copy, "copy"));
  exports.Set("diskInfo", Napi::Function::New(env, DiskInfo, "diskInfo"));
  exports.Set("hashBlocks", Napi::Function::New(env, HashBlocksJs, "hashBlocks"));
  exports.Set("createRateLimiter", Napi::Function::New(env, CreateRateLimiter, "createRateLimiter"));
  exports.Set("rateLimiterSet", Napi::Function::New(env, RateLimiterSet, "rateLimiterSet"));
  exports.Set("rateLimiterGet", Napi::Function::New(env, RateLimiterGet, "rateLimiterGet"));
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass, "setErrorClass"));
  return exports;
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports);
Napi::Object Init(Napi::Env env, Napi::Object exports) { return InitImpl(env, exports); }

}  // namespace vmrestore

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return vmrestore::Init(env, exports); }

NODE_API_MODULE(vddk, InitModule)
