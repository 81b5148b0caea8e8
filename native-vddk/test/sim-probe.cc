// Calls the simulator directly, the wrong way, one scenario per run
// (argv[1]); prints "<step> <VixError>" lines for sim-misuse.test.ts.
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "../src/vixdisklib.h"

extern "C" {
VixError VixDiskLib_InitEx(uint32_t, uint32_t, VixDiskLibGenericLogFunc*, VixDiskLibGenericLogFunc*,
                           VixDiskLibGenericLogFunc*, const char*, const char*);
VixError VixDiskLib_ConnectEx(const VixDiskLibConnectParams*, Bool, const char*, const char*, VixDiskLibConnection*);
VixError VixDiskLib_Disconnect(VixDiskLibConnection);
VixError VixDiskLib_Open(const VixDiskLibConnection, const char*, uint32_t, VixDiskLibHandle*);
VixError VixDiskLib_Close(VixDiskLibHandle);
VixError VixDiskLib_Write(VixDiskLibHandle, VixDiskLibSectorType, VixDiskLibSectorType, const uint8_t*);
VixError VixDiskLib_GetInfo(VixDiskLibHandle, VixDiskLibInfo**);
}

static void Quiet(const char*, va_list) {}

static void Report(const char* step, VixError e) { std::printf("%s %llu\n", step, static_cast<unsigned long long>(e)); }

int main(int argc, char** argv) {
  std::string s = argc > 1 ? argv[1] : "";
  const char* disk = argc > 2 ? argv[2] : "[LocalDS_0] vm1/vm1.vmdk";
  VixDiskLibConnectParams p;
  std::memset(&p, 0, sizeof(p));
  p.vmxSpec = const_cast<char*>("moref=vm-1");
  p.serverName = const_cast<char*>("vc");
  p.thumbPrint = const_cast<char*>("aa");
  p.credType = VIXDISKLIB_CRED_UID;
  p.creds.uid.userName = const_cast<char*>("u");
  p.creds.uid.password = const_cast<char*>("p");
  VixDiskLibConnection conn = nullptr;
  VixDiskLibHandle h = nullptr;
  static uint8_t buf[4096];

  if (s == "noinit") {
    Report("ConnectEx", VixDiskLib_ConnectEx(&p, 0, nullptr, "nbd", &conn));
    return 0;
  }
  if (s == "nullcallbacks") {
    Report("InitEx", VixDiskLib_InitEx(8, 0, nullptr, Quiet, Quiet, nullptr, nullptr));
    return 0;
  }
  Report("InitEx", VixDiskLib_InitEx(8, 0, Quiet, Quiet, Quiet, nullptr, nullptr));
  if (s == "nullparams") {
    Report("ConnectEx", VixDiskLib_ConnectEx(nullptr, 0, nullptr, "nbd", &conn));
    Report("ConnectEx2", VixDiskLib_ConnectEx(&p, 0, nullptr, "nbd", &conn));
    Report("Open", VixDiskLib_Open(conn, nullptr, 0, &h));
    Report("GetInfo", VixDiskLib_GetInfo(nullptr, nullptr));
    return 0;
  }
  if (s == "transport") {
    Report("ConnectEx", VixDiskLib_ConnectEx(&p, 0, nullptr, "nbd:fibre", &conn));
    return 0;
  }
  Report("ConnectEx", VixDiskLib_ConnectEx(&p, 0, nullptr, "nbd", &conn));
  if (s == "threads") {
    std::thread t([&] { Report("OpenOtherThread", VixDiskLib_Open(conn, disk, 0, &h)); });
    t.join();
    return 0;
  }
  Report("Open", VixDiskLib_Open(conn, disk, 0, &h));
  if (s == "unaligned") {
    Report("WriteOddStart", VixDiskLib_Write(h, 1, 2, buf));
    Report("WriteOddCount", VixDiskLib_Write(h, 0, 1, buf));
    Report("WriteAligned", VixDiskLib_Write(h, 2, 8, buf));
  }
  if (s == "closed") {
    Report("Close", VixDiskLib_Close(h));
    Report("WriteAfterClose", VixDiskLib_Write(h, 0, 2, buf));
    Report("CloseAgain", VixDiskLib_Close(h));
    h = nullptr;
  }
  if (s == "disconnectopen") Report("DisconnectWithOpenDisk", VixDiskLib_Disconnect(conn));
  if (h) Report("Close", VixDiskLib_Close(h));
  Report("Disconnect", VixDiskLib_Disconnect(conn));
  return 0;
}
