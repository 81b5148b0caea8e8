// Test-only VDDK simulator: a libvixDiskLib.so.8 with VMware's C ABI, backed
// by local files in the layout of docs/disk-model.md. It exists so the addon
// can be tested without VMware's binaries, and it is stricter than the real
// library: every misuse that would crash or corrupt a real VDDK returns
// VIX_E_INVALID_ARG and logs a "MISUSE:" line (VDDK_SIM_ABORT_ON_MISUSE=1
// aborts instead).
//
// Settings, each from the environment variable or, when present, from the
// matching line of the configFile given to InitEx ("sim.datastores = ...").
// The config file is re-read on every call, so a test process (whose
// environment cannot change after start under jest) can reconfigure it.
//   VDDK_SIM_DATASTORES  sim.datastores  "LocalDS_0=/abs/dir;LocalDS_1=/abs/dir2"
//   VDDK_SIM_LOG         sim.log         file to append one line per call to
//   VDDK_SIM_FAIL        sim.fail        "Write:3:VIX_E_DISK_OUTOFRANGE,Open:1:4": fail the Nth
//                                        call (counts restart when the value changes)
//   VDDK_SIM_REQUIRE_1K  sim.require1k   "0" turns off the 1 KiB write rule (on by default)
//   VDDK_SIM_UNAVAILABLE sim.unavailable "san,hotadd": transports this "proxy" cannot use
//   VDDK_SIM_ABORT_ON_MISUSE sim.abortOnMisuse "1": abort() on misuse
//   VDDK_SIM_WRITE_DELAY_MS sim.writeDelayMs  sleep this long in every Write (slow storage)
//   VDDK_SIM_CORRUPT_WRITE_AT sim.corruptWriteAt  a disk byte offset: the Write covering it stores
//                                        that byte flipped and reports success (silent corruption)
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../src/descriptor.h"
#include "../src/vix_errors.h"
#include "../src/vixdisklib.h"

using vmrestore::Descriptor;

namespace {

struct Fault {
  std::string fn;
  long nth;
  VixError err;
};

struct Connection {
  std::string snapshot;
  std::string transport;
  bool readOnly;
};

struct Handle {
  Connection* conn;
  std::string opened;   // descriptor the caller opened
  Descriptor target;    // descriptor whose extent receives I/O
  int fd = -1;
  uint64_t sectors = 0;
  bool readOnly = false;
  bool cidChanged = false;
};

struct Sim {
  std::mutex mu;
  bool inited = false;
  std::map<std::string, std::string> datastores;
  std::string faultSpec;
  std::vector<Fault> faults;
  std::map<std::string, long> calls;
  bool controlThreadSet = false;
  long controlThread = 0;
  std::atomic<int> controlBusy{0};
  std::set<void*> connections;
  std::set<void*> handles;
  VixDiskLibGenericLogFunc* logFn = nullptr;
  VixDiskLibGenericLogFunc* warnFn = nullptr;
};

// Sends a message through the caller's InitEx callback, as VDDK does.
void Emit(VixDiskLibGenericLogFunc* f, const char* fmt, ...) {
  if (!f) return;
  va_list ap;
  va_start(ap, fmt);
  f(fmt, ap);
  va_end(ap);
}

Sim& S() {
  static Sim* sim = new Sim();  // never destroyed: callers may run during exit
  return *sim;
}

long Tid() { return static_cast<long>(syscall(SYS_gettid)); }

std::mutex configMu;
std::string configPath;  // from InitEx

// Value of a setting: the config file line "<key> = <value>" if any, else the env var.
std::string Setting(const char* env, const char* key) {
  std::string path;
  {
    std::lock_guard<std::mutex> lock(configMu);
    path = configPath;
  }
  if (!path.empty()) {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
      size_t eq = line.find('=');
      if (eq == std::string::npos) continue;
      std::string k = line.substr(0, eq);
      k.erase(k.find_last_not_of(" \t") + 1);
      if (k != key) continue;
      std::string v = line.substr(eq + 1);
      v.erase(0, v.find_first_not_of(" \t\""));
      size_t end = v.find_last_not_of(" \t\"\r");
      v.erase(end == std::string::npos ? 0 : end + 1);
      return v;
    }
  }
  const char* e = std::getenv(env);
  return e ? e : "";
}

void Log(const std::string& line) {
  std::string path = Setting("VDDK_SIM_LOG", "sim.log");
  if (path.empty()) return;
  static std::mutex logMu;
  std::lock_guard<std::mutex> lock(logMu);
  FILE* f = std::fopen(path.c_str(), "a");
  if (!f) return;
  std::fprintf(f, "%s\n", line.c_str());
  std::fclose(f);
}

std::string Q(const char* s) { return s ? std::string("\"") + s + "\"" : "NULL"; }

VixError Misuse(const char* fn, const std::string& what) {
  Log(std::string("MISUSE: ") + fn + " tid=" + std::to_string(Tid()) + " " + what);
  if (Setting("VDDK_SIM_ABORT_ON_MISUSE", "sim.abortOnMisuse") == "1") std::abort();
  return VIX_E_INVALID_ARG;
}

void ParseDatastores(const std::string& spec, std::map<std::string, std::string>& out) {
  std::stringstream ss(spec);
  std::string item;
  while (std::getline(ss, item, ';')) {
    size_t eq = item.find('=');
    if (eq != std::string::npos) out[item.substr(0, eq)] = item.substr(eq + 1);
  }
}

void ParseFaults(const std::string& spec, std::vector<Fault>& out) {
  std::stringstream ss(spec);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t c1 = item.find(':'), c2 = c1 == std::string::npos ? c1 : item.find(':', c1 + 1);
    if (c2 == std::string::npos) continue;
    Fault f{item.substr(0, c1), std::atol(item.substr(c1 + 1, c2 - c1 - 1).c_str()), VIX_E_FAIL};
    std::string code = item.substr(c2 + 1);
    if (!vmrestore::VixErrorByName(code, f.err)) f.err = std::strtoull(code.c_str(), nullptr, 0);
    out.push_back(f);
  }
}

// Every entry point starts here: log the call, check InitEx ran, and apply
// any injected fault for the Nth call of this function.
VixError Enter(const char* fn, const std::string& args, bool needInit = true) {
  Log(std::string(fn) + " tid=" + std::to_string(Tid()) + (args.empty() ? "" : " " + args));
  Sim& s = S();
  // The fault spec is re-read on every call; a new value restarts the counts,
  // so one test process can inject different faults in turn.
  std::string spec = Setting("VDDK_SIM_FAIL", "sim.fail");
  std::lock_guard<std::mutex> lock(s.mu);
  if (spec != s.faultSpec) {
    s.faultSpec = spec;
    s.faults.clear();
    s.calls.clear();
    ParseFaults(spec, s.faults);
  }
  long n = ++s.calls[fn];
  if (needInit && !s.inited) return Misuse(fn, "called before VixDiskLib_InitEx");
  for (const auto& f : s.faults)
    if ((f.fn == fn || "VixDiskLib_" + f.fn == fn) && f.nth == n) {
      Log(std::string("FAULT: ") + fn + " call " + std::to_string(n) + " -> " + vmrestore::VixErrorName(f.err));
      return f.err;
    }
  return VIX_OK;
}

// VDDK requires ConnectEx/Disconnect/Open/Close to be serialized, in
// practice on one thread: remember the first thread and refuse any other,
// and refuse overlapping calls.
class ControlCall {
 public:
  explicit ControlCall(const char* fn) {
    Sim& s = S();
    long tid = Tid();
    {
      std::lock_guard<std::mutex> lock(s.mu);
      if (!s.controlThreadSet) {
        s.controlThreadSet = true;
        s.controlThread = tid;
      } else if (s.controlThread != tid) {
        err_ = Misuse(fn, "control call on thread " + std::to_string(tid) + " but earlier control calls ran on thread " +
                              std::to_string(s.controlThread));
      }
    }
    if (s.controlBusy.fetch_add(1) != 0 && err_ == VIX_OK) err_ = Misuse(fn, "concurrent with another control call");
  }
  ~ControlCall() { S().controlBusy.fetch_sub(1); }
  VixError err() const { return err_; }

 private:
  VixError err_ = VIX_OK;
};

bool LiveHandle(void* h) {
  std::lock_guard<std::mutex> lock(S().mu);
  return S().handles.count(h) != 0;
}

bool LiveConnection(void* c) {
  std::lock_guard<std::mutex> lock(S().mu);
  return S().connections.count(c) != 0;
}

bool ResolveDatastorePath(const std::string& dsPath, std::string& out) {
  if (dsPath.size() < 3 || dsPath[0] != '[') return false;
  size_t close = dsPath.find(']');
  if (close == std::string::npos) return false;
  std::string ds = dsPath.substr(1, close - 1);
  std::string rel = dsPath.substr(close + 1);
  while (!rel.empty() && rel[0] == ' ') rel.erase(0, 1);
  std::string live = Setting("VDDK_SIM_DATASTORES", "sim.datastores");
  std::lock_guard<std::mutex> lock(S().mu);
  ParseDatastores(live, S().datastores);
  auto it = S().datastores.find(ds);
  if (it == S().datastores.end()) return false;
  out = it->second + "/" + rel;
  return true;
}

VixError CheckParams(const char* fn, const VixDiskLibConnectParams* p) {
  if (!p) return Misuse(fn, "NULL connectParams");
  if (!p->vmxSpec || std::strncmp(p->vmxSpec, "moref=", 6) != 0)
    return Misuse(fn, "vmxSpec must be \"moref=<vm moref>\", got " + Q(p->vmxSpec));
  if (!p->serverName) return Misuse(fn, "NULL serverName");
  return VIX_OK;
}

const char* const kTransports[] = {"file", "san", "hotadd", "nbdssl", "nbd"};

bool KnownTransport(const std::string& t) {
  for (const char* k : kTransports)
    if (t == k) return true;
  return false;
}

bool Unavailable(const std::string& t) {
  // The file transport needs a local disk, never a server connection.
  std::string list = "," + Setting("VDDK_SIM_UNAVAILABLE", "sim.unavailable") + ",";
  return t == "file" || list.find("," + t + ",") != std::string::npos;
}

bool Require1K() {
  return Setting("VDDK_SIM_REQUIRE_1K", "sim.require1k") != "0";
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) VixError VixDiskLib_InitEx(uint32_t major, uint32_t minor,
                                                                  VixDiskLibGenericLogFunc* log,
                                                                  VixDiskLibGenericLogFunc* warn,
                                                                  VixDiskLibGenericLogFunc* panic,
                                                                  const char* libDir, const char* configFile) {
  std::ostringstream a;
  a << "version=" << major << "." << minor << " libDir=" << Q(libDir) << " configFile=" << Q(configFile);
  VixError e = Enter("VixDiskLib_InitEx", a.str(), false);
  if (e != VIX_OK) return e;
  if (!log || !warn || !panic) return Misuse("VixDiskLib_InitEx", "log, warn and panic callbacks must not be NULL");
  Sim& s = S();
  {
    std::lock_guard<std::mutex> lock(configMu);
    configPath = configFile ? configFile : "";
  }
  std::map<std::string, std::string> ds;
  ParseDatastores(Setting("VDDK_SIM_DATASTORES", "sim.datastores"), ds);
  {
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.inited) {
      Log("MISUSE: VixDiskLib_InitEx called twice");
      return VIX_E_INVALID_ARG;
    }
    s.inited = true;
    s.datastores = ds;
  }
  {
    std::lock_guard<std::mutex> lock(s.mu);
    s.logFn = log;
    s.warnFn = warn;
  }
  Emit(log, "VixDiskLib: simulator %u.%u initialized with %zu datastore(s)\n", major, minor, ds.size());
  if (ds.empty()) Emit(warn, "VixDiskLib: no datastores configured (VDDK_SIM_DATASTORES)\n");
  return VIX_OK;
}

__attribute__((visibility("default"))) void VixDiskLib_Exit(void) {
  Enter("VixDiskLib_Exit", "", false);
  std::lock_guard<std::mutex> lock(S().mu);
  S().inited = false;
}

__attribute__((visibility("default"))) VixError VixDiskLib_PrepareForAccess(const VixDiskLibConnectParams* p,
                                                                           const char* identity) {
  VixError e = Enter("VixDiskLib_PrepareForAccess",
                     std::string("vmxSpec=") + Q(p ? p->vmxSpec : nullptr) + " identity=" + Q(identity));
  if (e != VIX_OK) return e;
  if (!identity) return Misuse("VixDiskLib_PrepareForAccess", "NULL identity");
  return CheckParams("VixDiskLib_PrepareForAccess", p);
}

__attribute__((visibility("default"))) VixError VixDiskLib_EndAccess(const VixDiskLibConnectParams* p,
                                                                    const char* identity) {
  VixError e = Enter("VixDiskLib_EndAccess",
                     std::string("vmxSpec=") + Q(p ? p->vmxSpec : nullptr) + " identity=" + Q(identity));
  if (e != VIX_OK) return e;
  if (!identity) return Misuse("VixDiskLib_EndAccess", "NULL identity");
  return CheckParams("VixDiskLib_EndAccess", p);
}

__attribute__((visibility("default"))) VixError VixDiskLib_ConnectEx(const VixDiskLibConnectParams* p, Bool readOnly,
                                                                    const char* snapshotRef,
                                                                    const char* transportModes,
                                                                    VixDiskLibConnection* connection) {
  const char* fn = "VixDiskLib_ConnectEx";
  std::ostringstream a;
  if (p) {
    a << "vmxSpec=" << Q(p->vmxSpec) << " server=" << Q(p->serverName) << " thumbPrint=" << Q(p->thumbPrint)
      << " credType=" << p->credType;
    if (p->credType == VIXDISKLIB_CRED_UID) a << " user=" << Q(p->creds.uid.userName);
    if (p->credType == VIXDISKLIB_CRED_SESSIONID) a << " cookie=" << (p->creds.sessionId.cookie ? "set" : "NULL");
  }
  a << " readOnly=" << static_cast<int>(readOnly) << " snapshot=" << Q(snapshotRef)
    << " transports=" << Q(transportModes);
  VixError e = Enter(fn, a.str());
  if (e != VIX_OK) return e;
  ControlCall cc(fn);
  if (cc.err() != VIX_OK) return cc.err();
  if (!connection) return Misuse(fn, "NULL connection out-parameter");
  if ((e = CheckParams(fn, p)) != VIX_OK) return e;
  if (!p->thumbPrint) return Misuse(fn, "NULL thumbPrint for a server connection");
  if (p->credType == VIXDISKLIB_CRED_UID) {
    if (!p->creds.uid.userName || !p->creds.uid.password) return Misuse(fn, "credType UID with NULL userName/password");
  } else if (p->credType == VIXDISKLIB_CRED_SESSIONID) {
    if (!p->creds.sessionId.cookie) return Misuse(fn, "credType SESSIONID with NULL cookie");
  } else {
    return Misuse(fn, "unsupported credType " + std::to_string(p->credType));
  }
  std::string modes = transportModes ? transportModes : "san:hotadd:nbdssl:nbd";
  std::stringstream ss(modes);
  std::string m, chosen;
  while (std::getline(ss, m, ':')) {
    if (!KnownTransport(m)) return Misuse(fn, "unknown transport mode \"" + m + "\" in " + Q(transportModes));
    if (chosen.empty() && !Unavailable(m)) chosen = m;
  }
  if (chosen.empty()) {
    Log(std::string(fn) + ": none of the transports " + modes + " is available");
    return VIX_E_NOT_SUPPORTED;
  }
  auto* c = new Connection{snapshotRef ? snapshotRef : "", chosen, readOnly != 0};
  {
    std::lock_guard<std::mutex> lock(S().mu);
    S().connections.insert(c);
  }
  *connection = c;
  Log(std::string(fn) + " -> transport=" + chosen);
  Emit(S().logFn, "VixDiskLib: connected to %s using transport %s\n", p->serverName, chosen.c_str());
  return VIX_OK;
}

__attribute__((visibility("default"))) VixError VixDiskLib_Disconnect(VixDiskLibConnection connection) {
  const char* fn = "VixDiskLib_Disconnect";
  VixError e = Enter(fn, "");
  if (e != VIX_OK) return e;
  ControlCall cc(fn);
  if (cc.err() != VIX_OK) return cc.err();
  {
    std::lock_guard<std::mutex> lock(S().mu);
    if (!S().connections.count(connection)) return Misuse(fn, "unknown or already disconnected connection");
    for (void* h : S().handles)
      if (static_cast<Handle*>(h)->conn == connection) return Misuse(fn, "disks of this connection are still open");
    S().connections.erase(connection);
  }
  delete static_cast<Connection*>(connection);
  return VIX_OK;
}

__attribute__((visibility("default"))) VixError VixDiskLib_Open(const VixDiskLibConnection connection, const char* path,
                                                               uint32_t flags, VixDiskLibHandle* diskHandle) {
  const char* fn = "VixDiskLib_Open";
  VixError e = Enter(fn, "path=" + Q(path) + " flags=" + std::to_string(flags));
  if (e != VIX_OK) return e;
  ControlCall cc(fn);
  if (cc.err() != VIX_OK) return cc.err();
  if (!path || !diskHandle) return Misuse(fn, "NULL path or handle out-parameter");
  if (!LiveConnection(connection)) return Misuse(fn, "unknown or disconnected connection");
  auto* conn = static_cast<Connection*>(connection);
  std::string local;
  if (!ResolveDatastorePath(path, local)) {
    Log(std::string(fn) + ": no datastore for " + path);
    return VIX_E_FILE_NOT_FOUND;
  }
  Descriptor opened;
  std::string err;
  if (access(local.c_str(), F_OK) != 0) return VIX_E_FILE_NOT_FOUND;
  if (!opened.Load(local, err)) {
    Log(std::string(fn) + ": " + err);
    return VIX_E_INCORRECT_FILE_TYPE;
  }
  auto h = std::make_unique<Handle>();
  h->conn = conn;
  h->opened = local;
  h->sectors = opened.sectors();
  h->readOnly = conn->readOnly || (flags & VIXDISKLIB_FLAG_OPEN_READ_ONLY);
  h->target = opened;
  // disk-model.md: SAN with a snapshot writes behind the snapshot, into the parent.
  if (conn->transport == "san" && !conn->snapshot.empty() && !opened.ParentPath().empty()) {
    if (!h->target.Load(opened.ParentPath(), err)) {
      Log(std::string(fn) + ": " + err);
      return VIX_E_DISK_OPENPARENT;
    }
  }
  h->fd = ::open(h->target.ExtentPath().c_str(), (h->readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
  if (h->fd < 0) {
    Log(std::string(fn) + ": cannot open extent " + h->target.ExtentPath());
    return VIX_E_FILE_NOT_FOUND;
  }
  Log(std::string(fn) + " -> opened=" + local + " target=" + h->target.ExtentPath() + " transport=" + conn->transport);
  {
    std::lock_guard<std::mutex> lock(S().mu);
    S().handles.insert(h.get());
  }
  *diskHandle = h.release();
  return VIX_OK;
}

__attribute__((visibility("default"))) VixError VixDiskLib_Close(VixDiskLibHandle diskHandle) {
  const char* fn = "VixDiskLib_Close";
  VixError e = Enter(fn, "");
  if (e != VIX_OK) return e;
  ControlCall cc(fn);
  if (cc.err() != VIX_OK) return cc.err();
  {
    std::lock_guard<std::mutex> lock(S().mu);
    if (!S().handles.erase(diskHandle)) return Misuse(fn, "unknown or already closed disk handle");
  }
  auto* h = static_cast<Handle*>(diskHandle);
  ::close(h->fd);
  delete h;
  return VIX_OK;
}

__attribute__((visibility("default"))) VixError VixDiskLib_GetInfo(VixDiskLibHandle diskHandle, VixDiskLibInfo** info) {
  const char* fn = "VixDiskLib_GetInfo";
  VixError e = Enter(fn, "");
  if (e != VIX_OK) return e;
  if (!LiveHandle(diskHandle)) return Misuse(fn, "use of an unknown or closed disk handle");
  if (!info) return Misuse(fn, "NULL info out-parameter");
  auto* h = static_cast<Handle*>(diskHandle);
  Descriptor d;
  std::string err;
  if (!d.Load(h->opened, err)) return VIX_E_FILE_ERROR;
  auto md = d.Metadata();
  auto num = [&](const char* k) { return static_cast<uint32_t>(std::strtoul(md[k].c_str(), nullptr, 10)); };
  auto* out = static_cast<VixDiskLibInfo*>(std::calloc(1, sizeof(VixDiskLibInfo)));
  out->biosGeo = {num("geometry.biosCylinders"), num("geometry.biosHeads"), num("geometry.biosSectors")};
  out->physGeo = {num("geometry.cylinders"), num("geometry.heads"), num("geometry.sectors")};
  out->capacity = h->sectors;
  const std::string& ad = md["adapterType"];
  out->adapterType = ad == "ide" ? VIXDISKLIB_ADAPTER_IDE
                     : ad == "buslogic" ? VIXDISKLIB_ADAPTER_SCSI_BUSLOGIC
                     : ad == "lsilogic" ? VIXDISKLIB_ADAPTER_SCSI_LSILOGIC
                                        : VIXDISKLIB_ADAPTER_UNKNOWN;
  int links = 1;
  for (std::string p = d.ParentPath(); !p.empty() && links < 256; links++) {
    Descriptor parent;
    if (!parent.Load(p, err)) break;
    p = parent.ParentPath();
  }
  out->numLinks = links;
  std::string hint = d.Get("parentFileNameHint");
  out->parentFileNameHint = hint.empty() ? nullptr : strdup(hint.c_str());
  out->uuid = md.count("uuid") ? strdup(md["uuid"].c_str()) : nullptr;
  *info = out;
  return VIX_OK;
}

__attribute__((visibility("default"))) void VixDiskLib_FreeInfo(VixDiskLibInfo* info) {
  Enter("VixDiskLib_FreeInfo", "");
  if (!info) return;
  std::free(info->parentFileNameHint);
  std::free(info->uuid);
  std::free(info);
}

static VixError CheckIo(const char* fn, VixDiskLibHandle diskHandle, VixDiskLibSectorType start,
                        VixDiskLibSectorType n, const void* buf) {
  if (!LiveHandle(diskHandle)) return Misuse(fn, "use of an unknown or closed disk handle");
  if (!buf) return Misuse(fn, "NULL buffer");
  if (Require1K() && (start % 2 != 0 || n % 2 != 0))
    return Misuse(fn, "I/O not 1 KiB aligned: startSector=" + std::to_string(start) + " numSectors=" +
                          std::to_string(n) + " (both must be even)");
  auto* h = static_cast<Handle*>(diskHandle);
  if (start + n > h->sectors || start + n < start) return VIX_E_DISK_OUTOFRANGE;
  return VIX_OK;
}

__attribute__((visibility("default"))) VixError VixDiskLib_Read(VixDiskLibHandle diskHandle,
                                                               VixDiskLibSectorType start, VixDiskLibSectorType n,
                                                               uint8_t* buf) {
  const char* fn = "VixDiskLib_Read";
  VixError e = Enter(fn, "start=" + std::to_string(start) + " n=" + std::to_string(n));
  if (e != VIX_OK || (e = CheckIo(fn, diskHandle, start, n, buf)) != VIX_OK) return e;
  auto* h = static_cast<Handle*>(diskHandle);
  size_t len = n * VIXDISKLIB_SECTOR_SIZE, done = 0;
  while (done < len) {
    ssize_t r = ::pread(h->fd, buf + done, len - done, static_cast<off_t>(start * VIXDISKLIB_SECTOR_SIZE + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return VIX_E_FILE_ERROR;
    if (r == 0) {
      std::memset(buf + done, 0, len - done);
      break;
    }
    done += static_cast<size_t>(r);
  }
  return VIX_OK;
}

__attribute__((visibility("default"))) VixError VixDiskLib_Write(VixDiskLibHandle diskHandle,
                                                                VixDiskLibSectorType start, VixDiskLibSectorType n,
                                                                const uint8_t* buf) {
  const char* fn = "VixDiskLib_Write";
  std::string file = LiveHandle(diskHandle) ? static_cast<Handle*>(diskHandle)->target.ExtentPath() : "?";
  VixError e = Enter(fn, "file=" + file + " start=" + std::to_string(start) + " n=" + std::to_string(n));
  if (e != VIX_OK || (e = CheckIo(fn, diskHandle, start, n, buf)) != VIX_OK) return e;
  auto* h = static_cast<Handle*>(diskHandle);
  if (h->readOnly) return VIX_E_FILE_READ_ONLY;
  long delayMs = std::atol(Setting("VDDK_SIM_WRITE_DELAY_MS", "sim.writeDelayMs").c_str());
  if (delayMs > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delayMs));
  if (!h->cidChanged) {
    std::string err;
    std::string cid = vmrestore::RandomCid();
    h->target.Set("CID", cid);
    if (!h->target.SaveAtomic(err)) {
      Log(std::string(fn) + ": " + err);
      return VIX_E_FILE_ERROR;
    }
    h->cidChanged = true;
    Log(std::string(fn) + ": new CID " + cid + " in " + h->target.path());
  }
  size_t len = n * VIXDISKLIB_SECTOR_SIZE, done = 0;
  std::vector<uint8_t> bad;
  std::string corruptAt = Setting("VDDK_SIM_CORRUPT_WRITE_AT", "sim.corruptWriteAt");
  if (!corruptAt.empty()) {
    uint64_t at = std::strtoull(corruptAt.c_str(), nullptr, 10), first = start * VIXDISKLIB_SECTOR_SIZE;
    if (at >= first && at < first + len) {
      bad.assign(buf, buf + len);
      bad[at - first] ^= 0xff;
      buf = bad.data();
      Log(std::string(fn) + ": corrupting byte " + std::to_string(at) + " (sim.corruptWriteAt)");
    }
  }
  while (done < len) {
    ssize_t r = ::pwrite(h->fd, buf + done, len - done, static_cast<off_t>(start * VIXDISKLIB_SECTOR_SIZE + done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return errno == ENOSPC ? VIX_E_DISK_FULL : VIX_E_FILE_ERROR;
    done += static_cast<size_t>(r);
  }
  return VIX_OK;
}

__attribute__((visibility("default"))) VixError VixDiskLib_Flush(VixDiskLibHandle diskHandle) {
  const char* fn = "VixDiskLib_Flush";
  VixError e = Enter(fn, "");
  if (e != VIX_OK) return e;
  if (!LiveHandle(diskHandle)) return Misuse(fn, "use of an unknown or closed disk handle");
  return ::fsync(static_cast<Handle*>(diskHandle)->fd) == 0 ? VIX_OK : VIX_E_FILE_ERROR;
}

__attribute__((visibility("default"))) VixError VixDiskLib_ReadMetadata(VixDiskLibHandle diskHandle, const char* key,
                                                                       char* buf, size_t bufLen,
                                                                       size_t* requiredLen) {
  const char* fn = "VixDiskLib_ReadMetadata";
  VixError e = Enter(fn, "key=" + Q(key));
  if (e != VIX_OK) return e;
  if (!LiveHandle(diskHandle)) return Misuse(fn, "use of an unknown or closed disk handle");
  if (!key) return Misuse(fn, "NULL key");
  auto md = static_cast<Handle*>(diskHandle)->target.Metadata();
  auto it = md.find(key);
  if (it == md.end()) return VIX_E_DISK_INVAL;
  if (requiredLen) *requiredLen = it->second.size() + 1;
  if (!buf || bufLen < it->second.size() + 1) return VIX_E_BUFFER_TOOSMALL;
  std::memcpy(buf, it->second.c_str(), it->second.size() + 1);
  return VIX_OK;
}

__attribute__((visibility("default"))) VixError VixDiskLib_GetMetadataKeys(VixDiskLibHandle diskHandle, char* keys,
                                                                          size_t maxLen, size_t* requiredLen) {
  const char* fn = "VixDiskLib_GetMetadataKeys";
  VixError e = Enter(fn, "");
  if (e != VIX_OK) return e;
  if (!LiveHandle(diskHandle)) return Misuse(fn, "use of an unknown or closed disk handle");
  std::string all;
  for (const auto& kv : static_cast<Handle*>(diskHandle)->target.Metadata()) all += kv.first + '\0';
  all += '\0';
  if (requiredLen) *requiredLen = all.size();
  if (!keys || maxLen < all.size()) return VIX_E_BUFFER_TOOSMALL;
  std::memcpy(keys, all.data(), all.size());
  return VIX_OK;
}

__attribute__((visibility("default"))) VixError VixDiskLib_WriteMetadata(VixDiskLibHandle diskHandle, const char* key,
                                                                        const char* val) {
  const char* fn = "VixDiskLib_WriteMetadata";
  VixError e = Enter(fn, "key=" + Q(key) + " val=" + Q(val));
  if (e != VIX_OK) return e;
  if (!LiveHandle(diskHandle)) return Misuse(fn, "use of an unknown or closed disk handle");
  if (!key || !val) return Misuse(fn, "NULL key or value");
  auto* h = static_cast<Handle*>(diskHandle);
  if (h->readOnly) return VIX_E_FILE_READ_ONLY;
  h->target.SetMetadata(key, val);
  std::string err;
  return h->target.SaveAtomic(err) ? VIX_OK : VIX_E_FILE_ERROR;
}

__attribute__((visibility("default"))) const char* VixDiskLib_GetTransportMode(VixDiskLibHandle diskHandle) {
  const char* fn = "VixDiskLib_GetTransportMode";
  if (Enter(fn, "") != VIX_OK) return nullptr;
  if (!LiveHandle(diskHandle)) {
    Misuse(fn, "use of an unknown or closed disk handle");
    return nullptr;
  }
  // Stable storage: the connection outlives the handle.
  return static_cast<Handle*>(diskHandle)->conn->transport.c_str();
}

__attribute__((visibility("default"))) char* VixDiskLib_GetErrorText(VixError err, const char* locale) {
  Enter("VixDiskLib_GetErrorText", "err=" + std::to_string(err) + " locale=" + Q(locale), false);
  size_t n;
  const vmrestore::VixErrorEntry* t = vmrestore::VixErrorTable(n);
  std::string text = "Unknown error";
  for (size_t i = 0; i < n; i++)
    if (t[i].code == VIX_ERROR_CODE(err)) text = t[i].text;
  return strdup(text.c_str());
}

__attribute__((visibility("default"))) void VixDiskLib_FreeErrorText(char* errMsg) {
  Enter("VixDiskLib_FreeErrorText", "", false);
  std::free(errMsg);
}

__attribute__((visibility("default"))) VixError VixDiskLib_Cleanup(const VixDiskLibConnectParams* p,
                                                                  uint32_t* numCleanedUp, uint32_t* numRemaining) {
  VixError e = Enter("VixDiskLib_Cleanup", "");
  if (e != VIX_OK) return e;
  if ((e = CheckParams("VixDiskLib_Cleanup", p)) != VIX_OK) return e;
  if (numCleanedUp) *numCleanedUp = 0;
  if (numRemaining) *numRemaining = 0;
  return VIX_OK;
}

}  // extern "C"
