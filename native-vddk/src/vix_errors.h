// Names and texts of the VixError codes vmrestore knows, shared by the addon
// (to give each VixError a stable string code) and the simulator (for
// VixDiskLib_GetErrorText and VDDK_SIM_FAIL parsing).
#ifndef VMRESTORE_VIX_ERRORS_H
#define VMRESTORE_VIX_ERRORS_H

#include <cstring>
#include <string>

#include "vixdisklib.h"

namespace vmrestore {

struct VixErrorEntry {
  uint32_t code;
  const char* name;
  const char* text;
};

inline const VixErrorEntry* VixErrorTable(size_t& count) {
  static const VixErrorEntry kTable[] = {
      {VIX_OK, "VIX_OK", "The operation was successful"},
      {VIX_E_FAIL, "VIX_E_FAIL", "Unknown error"},
      {VIX_E_OUT_OF_MEMORY, "VIX_E_OUT_OF_MEMORY", "Memory allocation failed: out of memory"},
      {VIX_E_INVALID_ARG, "VIX_E_INVALID_ARG", "One of the parameters was invalid"},
      {VIX_E_FILE_NOT_FOUND, "VIX_E_FILE_NOT_FOUND", "A file was not found"},
      {VIX_E_OBJECT_IS_BUSY, "VIX_E_OBJECT_IS_BUSY", "This function cannot be performed because the handle is executing another function"},
      {VIX_E_NOT_SUPPORTED, "VIX_E_NOT_SUPPORTED", "The operation is not supported"},
      {VIX_E_FILE_ERROR, "VIX_E_FILE_ERROR", "A file access error occurred on the host or guest operating system"},
      {VIX_E_DISK_FULL, "VIX_E_DISK_FULL", "An error occurred while writing a file; the disk is full"},
      {VIX_E_INCORRECT_FILE_TYPE, "VIX_E_INCORRECT_FILE_TYPE", "An error occurred while accessing a file: wrong file type"},
      {VIX_E_CANCELLED, "VIX_E_CANCELLED", "The operation was canceled"},
      {VIX_E_FILE_READ_ONLY, "VIX_E_FILE_READ_ONLY", "The file is write-protected"},
      {VIX_E_FILE_ALREADY_EXISTS, "VIX_E_FILE_ALREADY_EXISTS", "The file already exists"},
      {VIX_E_FILE_ACCESS_ERROR, "VIX_E_FILE_ACCESS_ERROR", "You do not have access rights to this file"},
      {VIX_E_FILE_ALREADY_LOCKED, "VIX_E_FILE_ALREADY_LOCKED", "The file is in use"},
      {VIX_E_FILE_NAME_INVALID, "VIX_E_FILE_NAME_INVALID", "The file name is not valid"},
      {VIX_E_BUFFER_TOOSMALL, "VIX_E_BUFFER_TOOSMALL", "One of the parameters was invalid: buffer too small"},
      {VIX_E_OBJECT_NOT_FOUND, "VIX_E_OBJECT_NOT_FOUND", "The object was not found"},
      {VIX_E_HOST_NOT_CONNECTED, "VIX_E_HOST_NOT_CONNECTED", "Not connected to the host"},
      {VIX_E_AUTHENTICATION_FAIL, "VIX_E_AUTHENTICATION_FAIL", "Authentication failed"},
      {VIX_E_HOST_CONNECTION_LOST, "VIX_E_HOST_CONNECTION_LOST", "The connection to the host was lost"},
      {VIX_E_DISK_INVAL, "VIX_E_DISK_INVAL", "One of the parameters supplied is invalid"},
      {VIX_E_DISK_NOINIT, "VIX_E_DISK_NOINIT", "The disk library has not been initialized"},
      {VIX_E_DISK_NOIO, "VIX_E_DISK_NOIO", "The called function requires the virtual disk to be opened for I/O"},
      {VIX_E_DISK_PARTIALCHAIN, "VIX_E_DISK_PARTIALCHAIN", "The called function cannot be performed on partial chains"},
      {VIX_E_DISK_NEEDSREPAIR, "VIX_E_DISK_NEEDSREPAIR", "The specified virtual disk needs repair"},
      {VIX_E_DISK_OUTOFRANGE, "VIX_E_DISK_OUTOFRANGE", "You have requested access to an area of the virtual disk that is out of bounds"},
      {VIX_E_DISK_CID_MISMATCH, "VIX_E_DISK_CID_MISMATCH", "The parent virtual disk has been modified since the child was created"},
      {VIX_E_DISK_CANTSHRINK, "VIX_E_DISK_CANTSHRINK", "The specified virtual disk cannot be shrunk"},
      {VIX_E_DISK_PARTMISMATCH, "VIX_E_DISK_PARTMISMATCH", "The partition table on the physical disk has changed since the disk was created"},
      {VIX_E_DISK_UNSUPPORTEDDISKVERSION, "VIX_E_DISK_UNSUPPORTEDDISKVERSION", "The disk was created by an unsupported product version"},
      {VIX_E_DISK_OPENPARENT, "VIX_E_DISK_OPENPARENT", "The parent of this virtual disk could not be opened"},
      {VIX_E_DISK_NOTSUPPORTED, "VIX_E_DISK_NOTSUPPORTED", "The specified feature isn't supported by this version"},
      {VIX_E_DISK_NEEDKEY, "VIX_E_DISK_NEEDKEY", "One or more required keys were not provided"},
      {VIX_E_DISK_INVALIDCHAIN, "VIX_E_DISK_INVALIDCHAIN", "The disk chain is not valid"},
      {VIX_E_DISK_INVALID_CONNECTION, "VIX_E_DISK_INVALID_CONNECTION", "The connection is not valid"},
      {VIX_E_DISK_CAPACITY_MISMATCH, "VIX_E_DISK_CAPACITY_MISMATCH", "The capacity of the disk does not match"},
  };
  count = sizeof(kTable) / sizeof(kTable[0]);
  return kTable;
}

// Stable string code of a VixError ("VIX_E_<n>" for codes not in the table).
inline std::string VixErrorName(VixError err) {
  size_t n;
  const VixErrorEntry* t = VixErrorTable(n);
  uint32_t code = static_cast<uint32_t>(VIX_ERROR_CODE(err));
  for (size_t i = 0; i < n; i++)
    if (t[i].code == code) return t[i].name;
  return "VIX_E_" + std::to_string(code);
}

inline bool VixErrorByName(const std::string& name, VixError& out) {
  size_t n;
  const VixErrorEntry* t = VixErrorTable(n);
  for (size_t i = 0; i < n; i++)
    if (name == t[i].name) {
      out = t[i].code;
      return true;
    }
  return false;
}

}  // namespace vmrestore

#endif
