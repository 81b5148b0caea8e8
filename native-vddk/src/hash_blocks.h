// hashBlocks(): the SHA-256 of many ranges of one file, on several threads
// (backup chain verification). Free of Napi, like copy_job.
#ifndef VMRESTORE_HASH_BLOCKS_H
#define VMRESTORE_HASH_BLOCKS_H

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "spec.h"

namespace vmrestore {

struct HashSpec {
  std::string path;
  std::vector<uint64_t> offsets, lengths;
  std::vector<uint8_t> sha256;  // 32 bytes per block: what each block must hash to
  uint32_t threads = 2;
  bool stopAtFirst = true;
  uint32_t progressIntervalMs = 250;
};

struct HashMismatch {
  uint32_t block = 0;
  uint8_t sha256[32] = {};
  uint64_t bytesRead = 0;  // less than the block's length: the file ended
};

struct HashResult {
  uint64_t bytesHashed = 0;
  std::vector<HashMismatch> mismatches;  // by block; with stopAtFirst only the first
};

// Blocks are handed out in order to `threads` threads, each reading into a
// buffer of its own and hashing with the SHA extensions where the CPU has
// them. With stopAtFirst, once block i differs no block after i is started,
// and every block before i still finishes: the first difference reported is
// the first in block order, as a sequential check would find.
void HashBlocks(const HashSpec& spec, const std::atomic<bool>& cancelled, const std::function<void(const Progress&)>& progress,
                HashResult& result, JobError& err);

}  // namespace vmrestore

#endif
