// The parts of VMware's public VixDiskLib C ABI (vixDiskLib.h, VDDK 6.7 - 8.x)
// that vmrestore uses, restated so the addon can dlopen() the library at run
// time instead of linking against it. The simulator (sim/) implements the
// same declarations, so a layout mistake here would be a mistake in both:
// keep the field order exactly as in VMware's header.
#ifndef VMRESTORE_VIXDISKLIB_H
#define VMRESTORE_VIXDISKLIB_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef uint64_t VixError;
typedef char Bool;  // vm_basic_types.h
typedef uint64_t VixDiskLibSectorType;

#define VIX_OK 0
#define VIX_ERROR_CODE(err) ((err) & 0xFFFF)

// Error codes (low 16 bits of a VixError), from vix.h / vixDiskLib.h.
#define VIX_E_FAIL 1
#define VIX_E_OUT_OF_MEMORY 2
#define VIX_E_INVALID_ARG 3
#define VIX_E_FILE_NOT_FOUND 4
#define VIX_E_OBJECT_IS_BUSY 5
#define VIX_E_NOT_SUPPORTED 6
#define VIX_E_FILE_ERROR 7
#define VIX_E_DISK_FULL 8
#define VIX_E_INCORRECT_FILE_TYPE 9
#define VIX_E_CANCELLED 10
#define VIX_E_FILE_READ_ONLY 11
#define VIX_E_FILE_ALREADY_EXISTS 12
#define VIX_E_FILE_ACCESS_ERROR 13
#define VIX_E_FILE_ALREADY_LOCKED 15
#define VIX_E_FILE_NAME_INVALID 22
#define VIX_E_BUFFER_TOOSMALL 24
#define VIX_E_OBJECT_NOT_FOUND 25
#define VIX_E_HOST_NOT_CONNECTED 26
#define VIX_E_AUTHENTICATION_FAIL 35
#define VIX_E_HOST_CONNECTION_LOST 36
#define VIX_E_DISK_INVAL 16000
#define VIX_E_DISK_NOINIT 16001
#define VIX_E_DISK_NOIO 16002
#define VIX_E_DISK_PARTIALCHAIN 16003
#define VIX_E_DISK_NEEDSREPAIR 16006
#define VIX_E_DISK_OUTOFRANGE 16007
#define VIX_E_DISK_CID_MISMATCH 16008
#define VIX_E_DISK_CANTSHRINK 16009
#define VIX_E_DISK_PARTMISMATCH 16010
#define VIX_E_DISK_UNSUPPORTEDDISKVERSION 16011
#define VIX_E_DISK_OPENPARENT 16012
#define VIX_E_DISK_NOTSUPPORTED 16013
#define VIX_E_DISK_NEEDKEY 16014
#define VIX_E_DISK_INVALIDCHAIN 16030
#define VIX_E_DISK_INVALID_CONNECTION 16054
#define VIX_E_DISK_CAPACITY_MISMATCH 16067

#define VIXDISKLIB_VERSION_MAJOR 8
#define VIXDISKLIB_VERSION_MINOR 0

#define VIXDISKLIB_SECTOR_SIZE 512

#define VIXDISKLIB_FLAG_OPEN_UNBUFFERED 1
#define VIXDISKLIB_FLAG_OPEN_SINGLE_LINK 2
#define VIXDISKLIB_FLAG_OPEN_READ_ONLY 4

typedef void *VixDiskLibConnection;
typedef void *VixDiskLibHandle;

typedef void VixDiskLibGenericLogFunc(const char *fmt, va_list args);

typedef enum {
  VIXDISKLIB_CRED_UID = 1,
  VIXDISKLIB_CRED_SESSIONID = 2,
  VIXDISKLIB_CRED_TICKETID = 3,
  VIXDISKLIB_CRED_SSPI = 4,
  VIXDISKLIB_CRED_UNKNOWN = 256
} VixDiskLibCredType;

typedef enum {
  VIXDISKLIB_SPEC_VMX = 0,
  VIXDISKLIB_SPEC_VSTORAGE_OBJECT = 1,
  VIXDISKLIB_SPEC_UNKNOWN = 2
} VixDiskLibSpecType;

typedef struct {
  char *userName;
  char *password;
} VixDiskLibUidPasswdCreds;

typedef struct {
  char *cookie;
  char *userName;
  char *key;
} VixDiskLibSessionIdCreds;

typedef struct {
  char *id;
  char *datastoreMoRef;
  char *ssId;
} VixDiskLibVStorageObjectSpec;

// Layout of VDDK 6.7 and later (the 6.5 fields first, then the vStorage
// object spec appended at the end, so older callers stay compatible).
typedef struct {
  char *vmxSpec;  // "moref=vm-N"
  char *serverName;
  char *thumbPrint;
  long privateUse;
  VixDiskLibCredType credType;
  union {
    VixDiskLibUidPasswdCreds uid;
    VixDiskLibSessionIdCreds sessionId;
    void *ticketId;
  } creds;
  uint32_t port;
  uint32_t nfcHostPort;
  char *vimApiVer;
  char reserved[8];
  void *reserved2;
  union {
    VixDiskLibVStorageObjectSpec vStorageObjSpec;
  } spec;
  VixDiskLibSpecType specType;
} VixDiskLibConnectParams;

typedef struct {
  uint32_t cylinders;
  uint32_t heads;
  uint32_t sectors;
} VixDiskLibGeometry;

typedef enum {
  VIXDISKLIB_ADAPTER_IDE = 1,
  VIXDISKLIB_ADAPTER_SCSI_BUSLOGIC = 2,
  VIXDISKLIB_ADAPTER_SCSI_LSILOGIC = 3,
  VIXDISKLIB_ADAPTER_UNKNOWN = 256
} VixDiskLibAdapterType;

typedef struct {
  VixDiskLibGeometry biosGeo;
  VixDiskLibGeometry physGeo;
  VixDiskLibSectorType capacity;  // in sectors
  VixDiskLibAdapterType adapterType;
  int numLinks;
  char *parentFileNameHint;
  char *uuid;
} VixDiskLibInfo;

// Function types, one per entry point we resolve with dlsym().
typedef VixError (*VixDiskLib_InitEx_t)(uint32_t majorVersion, uint32_t minorVersion,
                                        VixDiskLibGenericLogFunc *log, VixDiskLibGenericLogFunc *warn,
                                        VixDiskLibGenericLogFunc *panic, const char *libDir,
                                        const char *configFile);
typedef void (*VixDiskLib_Exit_t)(void);
typedef VixError (*VixDiskLib_ConnectEx_t)(const VixDiskLibConnectParams *connectParams, Bool readOnly,
                                           const char *snapshotRef, const char *transportModes,
                                           VixDiskLibConnection *connection);
typedef VixError (*VixDiskLib_Disconnect_t)(VixDiskLibConnection connection);
typedef VixError (*VixDiskLib_PrepareForAccess_t)(const VixDiskLibConnectParams *connectParams,
                                                  const char *identity);
typedef VixError (*VixDiskLib_EndAccess_t)(const VixDiskLibConnectParams *connectParams, const char *identity);
typedef VixError (*VixDiskLib_Open_t)(const VixDiskLibConnection connection, const char *path, uint32_t flags,
                                      VixDiskLibHandle *diskHandle);
typedef VixError (*VixDiskLib_Close_t)(VixDiskLibHandle diskHandle);
typedef VixError (*VixDiskLib_GetInfo_t)(VixDiskLibHandle diskHandle, VixDiskLibInfo **info);
typedef void (*VixDiskLib_FreeInfo_t)(VixDiskLibInfo *info);
typedef VixError (*VixDiskLib_Read_t)(VixDiskLibHandle diskHandle, VixDiskLibSectorType startSector,
                                      VixDiskLibSectorType numSectors, uint8_t *readBuffer);
typedef VixError (*VixDiskLib_Write_t)(VixDiskLibHandle diskHandle, VixDiskLibSectorType startSector,
                                       VixDiskLibSectorType numSectors, const uint8_t *writeBuffer);
typedef VixError (*VixDiskLib_ReadMetadata_t)(VixDiskLibHandle diskHandle, const char *key, char *buf,
                                              size_t bufLen, size_t *requiredLen);
typedef VixError (*VixDiskLib_WriteMetadata_t)(VixDiskLibHandle diskHandle, const char *key, const char *val);
typedef VixError (*VixDiskLib_GetMetadataKeys_t)(VixDiskLibHandle diskHandle, char *keys, size_t maxLen,
                                                 size_t *requiredLen);
typedef VixError (*VixDiskLib_Flush_t)(VixDiskLibHandle diskHandle);
typedef const char *(*VixDiskLib_GetTransportMode_t)(VixDiskLibHandle diskHandle);
typedef char *(*VixDiskLib_GetErrorText_t)(VixError err, const char *locale);
typedef void (*VixDiskLib_FreeErrorText_t)(char *errMsg);

#ifdef __cplusplus
}
#endif

#endif
