// The copy pipeline, free of Napi: a reader thread fills a fixed ring of
// buffers from the source files (verifying extent checksums first), and the
// writer thread (which owns the sink) drains it in order. Memory is
// bufferCount * bufferBytes whatever the disk size.
#ifndef VMRESTORE_COPY_JOB_H
#define VMRESTORE_COPY_JOB_H

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "sink.h"
#include "spec.h"

namespace vmrestore {

class CopyJob {
 public:
  using ProgressFn = std::function<void(const Progress&)>;

  CopyJob(std::unique_ptr<CopySpec> spec, ProgressFn progress);
  ~CopyJob();
  // Runs the whole job on the calling thread (the addon's writer thread);
  // starts and joins the reader thread itself.
  void Run();
  void Cancel();

  const JobError& error() const { return error_; }
  const CopyResult& result() const { return result_; }

 private:
  // Bytes for [targetOffset, targetOffset+len) of the target, in one buffer:
  // a piece of one extent, or several extents that follow each other on the
  // target (packed, so a disk of 1 MiB blocks is written in bufferBytes
  // requests). Extents firstExtent..extent are in it; `ended` of them end in
  // it, the last one (`extent`) too when lastOfExtent.
  struct Chunk {
    size_t buf;
    uint64_t targetOffset;
    size_t len;
    uint32_t firstExtent;
    uint32_t extent;
    uint32_t ended;
    bool lastOfExtent;
  };
  struct FreeDeleter {
    void operator()(uint8_t* p) const { std::free(p); }
  };

  void ReaderMain();
  bool ReadFully(int fd, uint64_t off, uint8_t* dst, size_t len, uint32_t extent, JobError& err) const;
  bool VerifyCheck(uint32_t index, int fd, size_t buf, JobError& err);
  bool CheckDigest(uint32_t index, const uint8_t got[32], JobError& err);
  bool AcquireFree(size_t& buf);
  void ReleaseFree(size_t buf);
  bool Stopping() const { return cancelled_.load() || stop_.load(); }
  void WriterLoop(Sink& sink);
  bool CheckCapacity(const Sink& sink);
  bool VerifyChunk(const Chunk& c, const uint8_t* want, const uint8_t* got, JobError& err) const;
  bool VerifyMetadata(Sink& sink, JobError& err) const;
  // Read-back while writing (spec readBack): chunks written, handed to the
  // verifier thread once a flush made them durable.
  size_t ReadBackRoom() const;
  bool StartVerifier();
  void HandToVerifier(std::vector<Chunk> written);
  void FinishVerifier(bool allWritten);
  void VerifierMain(Sink& sink);
  bool FillFromSource(const Chunk& c, uint8_t* dst, JobError& err) const;
  bool ThrottleReadBack(size_t len);
  void MaybeProgress(bool force, int64_t checkpointExtents = -1, uint64_t checkpointBytes = 0);
  void FlusherMain(Sink& sink);
  void StopFlusher();
  bool TakeFlushed();
  bool Throttle(size_t len);
  bool WaitForCaps(size_t len, uint64_t sliceNs, const std::function<bool()>& goOn);
  bool MaybeCheckpoint(Sink& sink, const Chunk& c);
  using Runs = std::vector<std::pair<size_t, size_t>>;  // (offset in the chunk, length)
  Runs RunsOf(const Chunk& c, const uint8_t* data, bool zeroSkip);
  bool WriteBatch(Sink& sink, const std::vector<Chunk>& batch, bool zeroSkip);
  std::string ExtentsOf(const Chunk& first, const Chunk& last) const;

  std::unique_ptr<CopySpec> spec_;
  ProgressFn progress_;
  std::vector<std::unique_ptr<uint8_t, FreeDeleter>> bufs_;
  std::vector<int> fds_;
  // Check ranges already verified by this job (source, offset, length): reader thread only.
  std::set<std::tuple<uint32_t, uint64_t, uint64_t>> verified_;
  std::unique_ptr<uint8_t, FreeDeleter> scratch_;  // verify: what the target holds (a gathered batch of it)

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<size_t> free_;
  std::deque<Chunk> full_;
  bool readerDone_ = false;
  JobError readerError_;

  std::atomic<bool> cancelled_{false};
  std::atomic<bool> stop_{false};
  JobError error_;
  CopyResult result_;
  uint64_t bytesTotal_ = 0, bytesDone_ = 0;
  uint64_t startNs_ = 0, lastProgressNs_ = 0;
  // Durable checkpoints (writer thread): extents and bytes since the last one.
  uint64_t cpExtents_ = 0, cpBytes_ = 0, cpBytesDone_ = 0;
  // Checkpoints flushed on a thread of their own (sinks with
  // ConcurrentFlush): the writer keeps writing while the fsync runs, hands
  // a checkpoint over when the flusher is free, and reports it once flushed.
  struct Checkpoint {
    uint64_t extents = 0, bytes = 0;
    std::vector<Chunk> written;  // readBack: what the flush makes durable
  };
  std::thread flusher_;
  std::mutex fmu_;
  std::condition_variable fcv_;
  bool flushWanted_ = false, flushBusy_ = false, flusherQuit_ = false, flushedReady_ = false;
  Checkpoint flushWant_, flushed_;
  JobError flushErr_;
  std::string transport_;
  // readBack: written since the last flush was handed over (writer), and
  // the verifier's queue of durable chunks, its buffers and its error.
  std::vector<Chunk> unflushed_;
  std::unique_ptr<Sink> readSink_;
  std::thread verifier_;
  std::mutex vmu_;
  std::condition_variable vcv_;
  std::deque<Chunk> durable_;
  bool durableDone_ = false, verifierQuit_ = false;
  JobError verifyErr_;
  std::unique_ptr<uint8_t, FreeDeleter> want_;  // readBack: the source bytes of a read-back batch
  std::atomic<uint64_t> bytesReadBack_{0};
};

}  // namespace vmrestore

#endif
