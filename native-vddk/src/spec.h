// The baton: plain C++ copies of everything JS passed in (filled on the main
// thread, read on worker threads) and of everything the job produces
// (turned into JS on the main thread). No Napi types in here.
#ifndef VMRESTORE_SPEC_H
#define VMRESTORE_SPEC_H

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "rate_limiter.h"

namespace vmrestore {

// An error recorded as data on a worker thread.
struct JobError {
  std::string code;     // stable: CHECKSUM_MISMATCH, VIX_E_FILE_NOT_FOUND, ...
  std::string message;
  bool hasVix = false;
  uint64_t vixError = 0;
  explicit operator bool() const { return !code.empty(); }
  void Set(std::string c, std::string m) {
    if (code.empty()) {  // the first error wins
      code = std::move(c);
      message = std::move(m);
    }
  }
};

struct ExtentSpec {
  uint32_t source = 0;
  uint64_t sourceOffset = 0;
  uint64_t targetOffset = 0;
  uint64_t length = 0;
  bool hasCheck = false;
  uint64_t checkOffset = 0;
  uint64_t checkLength = 0;
  uint8_t sha256[32] = {};
};

struct TargetSpec {
  std::string kind;  // "file" | "vddk"
  // file
  std::string path;
  bool fresh = false;
  uint64_t flushBehind = 64ull << 20;  // bytes of writeback in flight before the oldest is waited for; 0 = off
  bool direct = true;                   // O_DIRECT for aligned writes and read-backs where the file system allows it
  uint32_t queueDepth = 8;              // buffers that follow each other on the target written in one request
  // vddk
  std::string libDir, server, thumbprint, username, password, cookie, vmMoref, snapshotMoref, diskPath, configFile;
  bool hasPassword = false, hasCookie = false, hasSnapshot = false, hasConfigFile = false;
  std::vector<std::string> transports;
};

struct CopySpec {
  std::vector<std::string> sources;
  std::vector<ExtentSpec> extents;
  TargetSpec target;
  uint32_t progressIntervalMs = 250;
  size_t bufferBytes = 4 << 20;
  size_t bufferCount = 4;
  std::vector<std::pair<std::string, std::string>> metadata;
  // Verify instead of write: read each extent back from the target (opened
  // read-only) and compare it with the source bytes; metadata is compared too.
  bool verify = false;
  // Read back while writing (file targets; extents that do not overlap on
  // the target): once a flush made a range durable, a thread of its own
  // reads it back (O_DIRECT unless readBackDirect is false) and compares it
  // with the source bytes; the copy ends once all of it compared equal, and
  // metadata is compared too.
  bool readBack = false;
  bool readBackDirect = true;
  // Byte-rate caps this job obeys (its own maxBytesPerSec and any shared
  // limiters); every byte written (or read back, in verify) passes them all.
  // Empty: the writer never looks at a limiter.
  std::vector<std::shared_ptr<RateLimiter>> limiters;
  // Durable checkpoints (write only): after every checkpointExtents whole
  // extents or checkpointBytes bytes, whichever comes first, the target is
  // flushed and a progress report carries the checkpoint. 0 = that rule is off.
  uint64_t checkpointExtents = 0;
  uint64_t checkpointBytes = 0;
};

struct CopyResult {
  uint64_t bytesWritten = 0;
  uint64_t bytesSkipped = 0;
  uint64_t extentsWritten = 0;
  uint64_t bytesVerified = 0;  // verify, or readBack: bytes read back and found equal
  uint64_t bytesDirect = 0;  // file target: bytes written or read back with O_DIRECT (the page cache bypassed)
  std::string transport;
  double durationMs = 0;
  std::vector<std::string> warnings;
};

struct DiskInfoResult {
  uint64_t capacityBytes = 0;
  std::map<std::string, std::string> metadata;
  std::string transport;
  std::vector<std::string> warnings;
};

struct Progress {
  uint64_t bytesDone = 0;
  uint64_t bytesTotal = 0;
  uint64_t extentsDone = 0;
  double rateBytesPerSec = 0;
  // A durable checkpoint: every extent before checkpointExtents is written
  // and flushed to the target (checkpointBytes of them). -1: not a checkpoint.
  int64_t checkpointExtents = -1;
  uint64_t checkpointBytes = 0;
  std::string transport;  // the target's transport, once it is open
  int64_t bytesVerified = -1;  // readBack: bytes read back and found equal so far; -1: not a readBack copy
};

}  // namespace vmrestore

#endif
