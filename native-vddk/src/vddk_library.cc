#include "vddk_library.h"

#include <dlfcn.h>
#include <pthread.h>

#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

#include "vix_errors.h"

namespace vmrestore {

namespace {

constexpr size_t kMaxMessages = 200;

// Everything here lives for the whole process and is never destroyed: the
// control thread may still be parked on its queue during exit.
struct State {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::function<void()>> tasks;
  bool threadStarted = false;

  std::mutex loadMu;
  void* dl = nullptr;
  std::string libDir;
  VddkApi api{};
  bool initialized = false;

  std::mutex msgMu;
  std::vector<std::string> messages;
  size_t dropped = 0;
};

State& St() {
  static State* s = new State();
  return *s;
}

void Queue(const char* level, const char* fmt, va_list ap) {
  char buf[1024];
  va_list copy;
  va_copy(copy, ap);
  std::vsnprintf(buf, sizeof(buf), fmt, copy);
  va_end(copy);
  std::string line = std::string(level) + ": " + buf;
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  State& s = St();
  std::lock_guard<std::mutex> lock(s.msgMu);
  if (s.messages.size() < kMaxMessages)
    s.messages.push_back(std::move(line));
  else
    s.dropped++;
}

void LogFn(const char* fmt, va_list ap) { Queue("log", fmt, ap); }
void WarnFn(const char* fmt, va_list ap) { Queue("warn", fmt, ap); }
void PanicFn(const char* fmt, va_list ap) { Queue("panic", fmt, ap); }

void ControlLoop() {
  pthread_setname_np(pthread_self(), "vddk-control");
  State& s = St();
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(s.mu);
      s.cv.wait(lock, [&] { return !s.tasks.empty(); });
      task = std::move(s.tasks.front());
      s.tasks.pop_front();
    }
    task();
  }
}

template <typename T>
bool Sym(void* dl, const char* name, T& out, JobError& err) {
  out = reinterpret_cast<T>(dlsym(dl, name));
  if (!out) err.Set("LIBRARY_NOT_FOUND", std::string("VDDK library lacks ") + name);
  return out != nullptr;
}

}  // namespace

void RunOnControlThread(const std::function<void()>& fn) {
  State& s = St();
  std::promise<void> done;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    if (!s.threadStarted) {
      std::thread(ControlLoop).detach();
      s.threadStarted = true;
    }
    s.tasks.push_back([&] {
      fn();
      done.set_value();
    });
  }
  s.cv.notify_one();
  done.get_future().wait();
}

const VddkApi* LoadVddk(const std::string& libDir, const std::string* configFile, JobError& err) {
  State& s = St();
  std::lock_guard<std::mutex> lock(s.loadMu);
  if (s.initialized) {
    if (s.libDir != libDir) {
      err.Set("LIBRARY_MISMATCH", "VDDK already initialized from " + s.libDir + "; cannot also use " + libDir);
      return nullptr;
    }
    return &s.api;
  }
  if (!s.dl) {
    std::string tried;
    for (const char* name : {"libvixDiskLib.so.8", "libvixDiskLib.so.7", "libvixDiskLib.so.6"}) {
      std::string path = libDir + "/" + name;
      s.dl = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (s.dl) break;
      const char* why = dlerror();
      tried += std::string("\n  ") + (why ? why : path);
    }
    if (!s.dl) {
      err.Set("LIBRARY_NOT_FOUND", "cannot load libvixDiskLib.so.8, .7 or .6 from " + libDir + ":" + tried);
      return nullptr;
    }
  }
  VddkApi a{};
  bool ok = Sym(s.dl, "VixDiskLib_InitEx", a.InitEx, err) && Sym(s.dl, "VixDiskLib_ConnectEx", a.ConnectEx, err) &&
            Sym(s.dl, "VixDiskLib_Disconnect", a.Disconnect, err) &&
            Sym(s.dl, "VixDiskLib_PrepareForAccess", a.PrepareForAccess, err) &&
            Sym(s.dl, "VixDiskLib_EndAccess", a.EndAccess, err) && Sym(s.dl, "VixDiskLib_Open", a.Open, err) &&
            Sym(s.dl, "VixDiskLib_Close", a.Close, err) && Sym(s.dl, "VixDiskLib_GetInfo", a.GetInfo, err) &&
            Sym(s.dl, "VixDiskLib_FreeInfo", a.FreeInfo, err) && Sym(s.dl, "VixDiskLib_Write", a.Write, err) &&
            Sym(s.dl, "VixDiskLib_Read", a.Read, err) &&
            Sym(s.dl, "VixDiskLib_ReadMetadata", a.ReadMetadata, err) &&
            Sym(s.dl, "VixDiskLib_WriteMetadata", a.WriteMetadata, err) &&
            Sym(s.dl, "VixDiskLib_GetMetadataKeys", a.GetMetadataKeys, err) &&
            Sym(s.dl, "VixDiskLib_Flush", a.Flush, err) &&
            Sym(s.dl, "VixDiskLib_GetTransportMode", a.GetTransportMode, err) &&
            Sym(s.dl, "VixDiskLib_GetErrorText", a.GetErrorText, err) &&
            Sym(s.dl, "VixDiskLib_FreeErrorText", a.FreeErrorText, err);
  if (!ok) return nullptr;
  VixError e = VIX_OK;
  std::string config = configFile ? *configFile : "";
  RunOnControlThread([&] {
    e = a.InitEx(VIXDISKLIB_VERSION_MAJOR, VIXDISKLIB_VERSION_MINOR, LogFn, WarnFn, PanicFn, libDir.c_str(),
                 configFile ? config.c_str() : nullptr);
  });
  if (!CheckVix(&a, e, "VixDiskLib_InitEx", err)) return nullptr;
  s.api = a;
  s.libDir = libDir;
  s.initialized = true;
  return &s.api;
}

bool CheckVix(const VddkApi* api, VixError e, const char* fn, JobError& err) {
  if (e == VIX_OK) return true;
  std::string text;
  if (api && api->GetErrorText) {
    char* t = api->GetErrorText(e, nullptr);
    if (t) {
      text = t;
      api->FreeErrorText(t);
    }
  }
  if (text.empty()) text = "VixError " + std::to_string(e);
  if (!err) {
    err.Set(VixErrorName(e), text + " (" + fn + ", VixError " + std::to_string(e) + ")");
    err.hasVix = true;
    err.vixError = e;
  }
  return false;
}

std::vector<std::string> TakeVddkMessages() {
  State& s = St();
  std::lock_guard<std::mutex> lock(s.msgMu);
  std::vector<std::string> out;
  out.swap(s.messages);
  if (s.dropped) out.push_back("(" + std::to_string(s.dropped) + " more VDDK messages dropped)");
  s.dropped = 0;
  return out;
}

}  // namespace vmrestore
