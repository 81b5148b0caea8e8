// Where a copy writes: a local disk (file_sink.cc) or VixDiskLib (vddk_sink.cc).
// All methods run on the job's writer thread and report failures as data.
#ifndef VMRESTORE_SINK_H
#define VMRESTORE_SINK_H

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "spec.h"

namespace vmrestore {

class Sink {
 public:
  virtual ~Sink() = default;
  // Opens the disk; afterwards Capacity() and Transport() are valid.
  virtual bool Open(JobError& err) = 0;
  virtual uint64_t Capacity() const = 0;
  virtual std::string Transport() const = 0;
  virtual bool ReadMetadata(std::map<std::string, std::string>& out, JobError& err) = 0;
  virtual bool WriteMetadata(const std::vector<std::pair<std::string, std::string>>& kv, JobError& err) = 0;
  // offset and len are multiples of 1 KiB (checked in TypeScript).
  virtual bool Write(uint64_t offset, const uint8_t* data, size_t len, JobError& err) = 0;
  // Reads back what is on the disk (verification); same alignment as Write.
  virtual bool Read(uint64_t offset, uint8_t* data, size_t len, JobError& err) = 0;
  virtual bool Flush(JobError& err) = 0;
  // Whether Flush may run on another thread while Write runs (a file's
  // fsync may; VixDiskLib wants every call of a disk on one thread).
  virtual bool ConcurrentFlush() const { return false; }
  // Pieces that follow each other on the disk from `offset` on, written as
  // one request where the sink can (a file: one pwritev, which the kernel
  // turns into requests the device handles at once), else one Write each.
  using Pieces = std::vector<std::pair<const uint8_t*, size_t>>;
  virtual bool WriteGathered(uint64_t offset, const Pieces& pieces, JobError& err) {
    for (const auto& p : pieces) {
      if (!Write(offset, p.first, p.second, err)) return false;
      offset += p.second;
    }
    return true;
  }
  // Whether the copy should gather buffers that follow each other on the
  // disk: written with WriteGathered, read back (verify) with one Read.
  virtual bool GathersWrites() const { return false; }
  // Releases everything Open acquired; safe to call twice.
  virtual bool Close(JobError& err) = 0;
  // Messages the library produced (VDDK log/warn/panic), drained.
  virtual std::vector<std::string> TakeWarnings() { return {}; }
  // Bytes written or read with direct I/O (file target), so far.
  virtual uint64_t BytesDirect() const { return 0; }
};

std::unique_ptr<Sink> MakeFileSink(const TargetSpec& t, bool forWrite);
std::unique_ptr<Sink> MakeVddkSink(const TargetSpec& t, bool forWrite);

inline std::unique_ptr<Sink> MakeSink(const TargetSpec& t, bool forWrite) {
  return t.kind == "vddk" ? MakeVddkSink(t, forWrite) : MakeFileSink(t, forWrite);
}

}  // namespace vmrestore

#endif
