// Process-wide VixDiskLib state: the dlopen()ed library, the one InitEx, the
// queue of messages from VDDK's log/warn/panic callbacks, and the
// "vddk-control" thread on which every ConnectEx/Disconnect/Open/Close runs
// (VDDK requires those calls serialized; one thread for the life of the
// process satisfies that even across worker_threads).
#ifndef VMRESTORE_VDDK_LIBRARY_H
#define VMRESTORE_VDDK_LIBRARY_H

#include <functional>
#include <string>
#include <vector>

#include "spec.h"
#include "vixdisklib.h"

namespace vmrestore {

struct VddkApi {
  VixDiskLib_InitEx_t InitEx;
  VixDiskLib_ConnectEx_t ConnectEx;
  VixDiskLib_Disconnect_t Disconnect;
  VixDiskLib_PrepareForAccess_t PrepareForAccess;
  VixDiskLib_EndAccess_t EndAccess;
  VixDiskLib_Open_t Open;
  VixDiskLib_Close_t Close;
  VixDiskLib_GetInfo_t GetInfo;
  VixDiskLib_FreeInfo_t FreeInfo;
  VixDiskLib_Read_t Read;
  VixDiskLib_Write_t Write;
  VixDiskLib_ReadMetadata_t ReadMetadata;
  VixDiskLib_WriteMetadata_t WriteMetadata;
  VixDiskLib_GetMetadataKeys_t GetMetadataKeys;
  VixDiskLib_Flush_t Flush;
  VixDiskLib_GetTransportMode_t GetTransportMode;
  VixDiskLib_GetErrorText_t GetErrorText;
  VixDiskLib_FreeErrorText_t FreeErrorText;
};

// Loads libvixDiskLib.so.8/.7/.6 from libDir and calls InitEx, once per
// process, on the control thread. Later calls must name the same libDir.
const VddkApi* LoadVddk(const std::string& libDir, const std::string* configFile, JobError& err);

// Runs fn on the vddk-control thread and waits for it.
void RunOnControlThread(const std::function<void()>& fn);

// Records a failed VixDiskLib call as a JobError (code from the VixError,
// text from GetErrorText). Returns false when e != VIX_OK.
bool CheckVix(const VddkApi* api, VixError e, const char* fn, JobError& err);

// Messages VDDK logged since the last call (bounded).
std::vector<std::string> TakeVddkMessages();

}  // namespace vmrestore

#endif
