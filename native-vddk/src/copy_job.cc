#include "copy_job.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "sha256.h"

namespace vmrestore {

namespace {

bool AllZero(const uint8_t* p, size_t len) {
  // Compare word-wise; buffers are page aligned and len is a multiple of 1 KiB.
  const uint64_t* w = reinterpret_cast<const uint64_t*>(p);
  for (size_t i = 0; i < len / 8; i++)
    if (w[i]) return false;
  return true;
}

}  // namespace

CopyJob::CopyJob(std::unique_ptr<CopySpec> spec, ProgressFn progress)
    : spec_(std::move(spec)), progress_(std::move(progress)) {
  for (const auto& e : spec_->extents) bytesTotal_ += e.length;
}

CopyJob::~CopyJob() {
  for (int fd : fds_)
    if (fd >= 0) ::close(fd);
}

void CopyJob::Cancel() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled_ = true;
  }
  cv_.notify_all();
  { std::lock_guard<std::mutex> lock(vmu_); }  // a verifier between its check and its wait sees cancelled_
  vcv_.notify_all();
  for (const auto& l : spec_->limiters) l->Wake();  // a writer may be waiting on a cap
}

bool CopyJob::CheckCapacity(const Sink& sink) {
  uint64_t cap = sink.Capacity();
  for (size_t i = 0; i < spec_->extents.size(); i++) {
    const auto& e = spec_->extents[i];
    if (e.targetOffset + e.length > cap) {
      error_.Set("CAPACITY_MISMATCH", "extent " + std::to_string(i) + " ends at byte " +
                                          std::to_string(e.targetOffset + e.length) + " but the target holds " +
                                          std::to_string(cap) + " bytes; nothing was written");
      return false;
    }
  }
  return true;
}

void CopyJob::Run() {
  startNs_ = NowNs();
  const bool verify = spec_->verify;
  std::unique_ptr<Sink> sink = MakeSink(spec_->target, !verify);
  const bool opened = sink->Open(error_);
  if (opened) transport_ = sink->Transport();
  if (opened && CheckCapacity(*sink) &&
      (verify ? VerifyMetadata(*sink, error_) : sink->WriteMetadata(spec_->metadata, error_))) {
    for (const auto& path : spec_->sources) {
      int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        error_.Set("IO_ERROR", "cannot open source " + path + ": " + std::strerror(errno));
        break;
      }
      fds_.push_back(fd);
    }
    if (!error_ && verify) {
      const size_t gathered = sink->GathersWrites() ? std::max<size_t>(1, spec_->target.queueDepth) : 1;
      scratch_.reset(static_cast<uint8_t*>(std::aligned_alloc(4096, spec_->bufferBytes * gathered)));
      if (!scratch_) error_.Set("IO_ERROR", "out of memory for the verify buffer");
    }
    if (!error_) {
      for (size_t i = 0; i < spec_->bufferCount; i++) {
        auto* p = static_cast<uint8_t*>(std::aligned_alloc(4096, spec_->bufferBytes));
        if (!p) {
          error_.Set("IO_ERROR", "out of memory for copy buffers");
          break;
        }
        bufs_.emplace_back(p);
        free_.push_back(i);
      }
    }
    if (!error_ && spec_->readBack) StartVerifier();
    if (!error_) {
      std::thread reader([this] { ReaderMain(); });
      const bool asyncCheckpoints = !verify && sink->ConcurrentFlush() && (spec_->checkpointExtents > 0 || spec_->checkpointBytes > 0);
      if (asyncCheckpoints) {
        Sink* s = sink.get();
        flusher_ = std::thread([this, s] { FlusherMain(*s); });
      }
      WriterLoop(*sink);
      stop_ = true;
      cv_.notify_all();
      reader.join();
      if (asyncCheckpoints) {
        StopFlusher();
        if (!error_ && !cancelled_) TakeFlushed();  // a checkpoint flushed after the last chunk
      }
      if (!error_ && cancelled_) error_.Set("CANCELLED", "copy cancelled");
      if (!error_ && readerError_) error_ = readerError_;
    }
    // Persist what was written even when the job failed part-way; only a
    // successful job reports a flush failure as its error.
    if (!verify) {
      JobError flushErr;
      sink->Flush(flushErr);
      if (!error_ && flushErr) error_ = flushErr;
    }
    FinishVerifier(!error_);
  }
  JobError closeErr;
  sink->Close(closeErr);
  if (!error_ && closeErr) error_ = closeErr;
  result_.transport = sink->Transport();
  result_.bytesDirect = sink->BytesDirect();
  if (spec_->readBack) result_.bytesVerified = bytesReadBack_;
  result_.warnings = sink->TakeWarnings();
  result_.durationMs = static_cast<double>(NowNs() - startNs_) / 1e6;
  if (!error_) MaybeProgress(true);
}

void CopyJob::WriterLoop(Sink& sink) {
  const bool zeroSkip = spec_->target.kind == "file" && spec_->target.fresh;
  const bool gather = sink.GathersWrites() && spec_->target.queueDepth > 1;
  const size_t depth = spec_->target.queueDepth;
  for (;;) {
    Chunk c;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return cancelled_ || stop_ || !full_.empty() || readerDone_; });
      if (cancelled_ || stop_) return;  // stop_: the read-back failed
      if (full_.empty()) return;  // reader finished (or failed) and everything before it is written
      c = full_.front();
      full_.pop_front();
    }
    // Chunks already read that follow this one on the target join it in one
    // request (up to queueDepth of them) where the sink gathers: one
    // pwritev, or one read back into the scratch area.
    std::vector<Chunk> batch{c};
    if (gather) {
      std::lock_guard<std::mutex> lock(mu_);
      while (!full_.empty() && batch.size() < depth && full_.front().targetOffset == batch.back().targetOffset + batch.back().len) {
        batch.push_back(full_.front());
        full_.pop_front();
      }
    }
    if (spec_->verify) {
      bool ok = true;
      for (const auto& b : batch)
        if (!(ok = spec_->limiters.empty() || Throttle(b.len))) break;
      const uint64_t len = batch.back().targetOffset + batch.back().len - c.targetOffset;
      if (ok && !sink.Read(c.targetOffset, scratch_.get(), len, error_)) {
        error_.message = ExtentsOf(batch.front(), batch.back()) + ": " + error_.message;
        ok = false;
      }
      for (const auto& b : batch) {
        ok = ok && VerifyChunk(b, bufs_[b.buf].get(), scratch_.get() + (b.targetOffset - c.targetOffset), error_);
        ReleaseFree(b.buf);
        if (!ok) continue;
        result_.bytesVerified += b.len;
        bytesDone_ += b.len;
        result_.extentsWritten += b.ended;
      }
      if (!ok) return;
      MaybeProgress(false);
      continue;
    }
    const bool ok = WriteBatch(sink, batch, zeroSkip);
    for (const auto& b : batch) ReleaseFree(b.buf);
    if (!ok || !TakeFlushed()) return;
    for (const auto& b : batch) {
      bytesDone_ += b.len;
      result_.extentsWritten += b.ended;
      if (spec_->readBack) unflushed_.push_back(b);  // counted before a flush can hand it over
      if (!MaybeCheckpoint(sink, b)) return;
    }
    MaybeProgress(false);
  }
}

std::string CopyJob::ExtentsOf(const Chunk& first, const Chunk& last) const {
  return first.firstExtent == last.extent ? "extent " + std::to_string(last.extent)
                                          : "extents " + std::to_string(first.firstExtent) + ".." + std::to_string(last.extent);
}

// The runs of a chunk to write: all of it, or on a fresh file target its
// parts that are not all zeros (in 64 KiB granules): the target reads as
// zeros already, and a thin disk stays unallocated there.
CopyJob::Runs CopyJob::RunsOf(const Chunk& c, const uint8_t* data, bool zeroSkip) {
  if (!zeroSkip) return {{0, c.len}};
  constexpr size_t kGranule = 64 * 1024;
  auto zero = [&](size_t at) { return AllZero(data + at, std::min(kGranule, c.len - at)); };
  auto next = [&](size_t at) { return at + std::min(kGranule, c.len - at); };
  Runs runs;
  size_t at = 0;
  while (at < c.len) {
    size_t z = at;
    while (z < c.len && zero(z)) z = next(z);
    result_.bytesSkipped += z - at;
    if (z >= c.len) break;
    size_t end = next(z);
    while (end < c.len && !zero(end)) end = next(end);
    runs.emplace_back(z, end - z);
    at = end;
  }
  return runs;
}

// Writes chunks that follow each other on the target: each run that is not
// skipped, runs that touch joined into one WriteGathered.
bool CopyJob::WriteBatch(Sink& sink, const std::vector<Chunk>& batch, bool zeroSkip) {
  Sink::Pieces pieces;
  uint64_t start = 0, end = 0;  // of the pieces
  // Caps are passed chunk by chunk, before any write of the batch: grants
  // stay the size they were without gathering (a grant is never waited for
  // after it, so larger ones would let a capped copy end early).
  std::vector<Runs> runs;
  for (const auto& c : batch) {
    runs.push_back(RunsOf(c, bufs_[c.buf].get(), zeroSkip));
    uint64_t len = 0;
    for (const auto& r : runs.back()) len += r.second;
    if (len > 0 && !spec_->limiters.empty() && !Throttle(len)) return false;
  }
  auto write = [&]() {
    if (pieces.empty()) return true;
    const bool ok = pieces.size() == 1 ? sink.Write(start, pieces[0].first, pieces[0].second, error_)
                                       : sink.WriteGathered(start, pieces, error_);
    if (!ok) {
      error_.message = ExtentsOf(batch.front(), batch.back()) + ": " + error_.message;
      return false;
    }
    result_.bytesWritten += end - start;
    pieces.clear();
    return true;
  };
  for (size_t i = 0; i < batch.size(); i++) {
    const Chunk& c = batch[i];
    const uint8_t* data = bufs_[c.buf].get();
    for (const auto& r : runs[i]) {
      const uint64_t at = c.targetOffset + r.first;
      if (!pieces.empty() && at != end && !write()) return false;
      if (pieces.empty()) start = end = at;
      pieces.emplace_back(data + r.first, r.second);
      end += r.second;
    }
  }
  return write();
}

// A durable checkpoint once enough whole extents are written: the sink is
// flushed (fsync; VixDiskLib_Flush), then reported, so the caller may
// record that a resumed copy starts at the next extent. Chunks arrive in
// extent order, so "extent i is done" means every extent before it is too.
// The last extent is not a checkpoint: the copy's own end is.
bool CopyJob::MaybeCheckpoint(Sink& sink, const Chunk& c) {
  cpBytes_ += c.len;
  if (c.ended == 0) return true;
  cpExtents_ += c.ended;
  const uint64_t done = static_cast<uint64_t>(c.extent) + (c.lastOfExtent ? 1 : 0);  // the first extent not whole yet
  const bool due = (spec_->checkpointExtents > 0 && cpExtents_ >= spec_->checkpointExtents) ||
                   (spec_->checkpointBytes > 0 && cpBytes_ >= spec_->checkpointBytes);
  if (!due || done >= spec_->extents.size()) return true;
  const bool async = flusher_.joinable();
  if (async) {
    std::lock_guard<std::mutex> lock(fmu_);
    if (flushBusy_) return true;  // still due: taken at the first extent end after the running flush
  } else if (!sink.Flush(error_)) {
    return false;
  }
  // Bytes of the whole extents only: a chunk may end inside the next one.
  uint64_t partial = 0;
  if (!c.lastOfExtent) {
    const auto& e = spec_->extents[c.extent];
    partial = c.targetOffset + c.len - e.targetOffset;
  }
  cpBytesDone_ += cpBytes_ - partial;
  cpBytes_ = partial;
  cpExtents_ = 0;
  if (!async) {
    HandToVerifier(std::move(unflushed_));
    unflushed_.clear();
    MaybeProgress(true, static_cast<int64_t>(done), cpBytesDone_);
    return true;
  }
  {
    std::lock_guard<std::mutex> lock(fmu_);
    flushWant_ = Checkpoint{done, cpBytesDone_, std::move(unflushed_)};
    unflushed_.clear();
    flushWanted_ = flushBusy_ = true;
  }
  fcv_.notify_all();
  return true;
}

// The flusher thread: flushes the sink for each checkpoint handed to it
// (every write of the checkpoint's extents returned before the hand-over,
// so the fsync covers them) and leaves it for the writer to report.
void CopyJob::FlusherMain(Sink& sink) {
  std::unique_lock<std::mutex> lock(fmu_);
  for (;;) {
    fcv_.wait(lock, [&] { return flusherQuit_ || flushWanted_; });
    if (!flushWanted_) return;  // asked to quit, nothing pending
    Checkpoint cp = std::move(flushWant_);
    flushWanted_ = false;
    lock.unlock();
    JobError err;
    const bool ok = sink.Flush(err);
    if (ok) HandToVerifier(std::move(cp.written));
    lock.lock();
    flushBusy_ = false;
    if (!ok) {
      flushErr_ = err;
      return;
    }
    flushed_ = cp;
    flushedReady_ = true;
  }
}

void CopyJob::StopFlusher() {
  {
    std::lock_guard<std::mutex> lock(fmu_);
    flusherQuit_ = true;
  }
  fcv_.notify_all();
  flusher_.join();
}

// Writer thread: reports a checkpoint the flusher has flushed; false (the
// error set) if a flush failed.
bool CopyJob::TakeFlushed() {
  if (!flusher_.joinable() && !flushedReady_ && !flushErr_) return true;
  Checkpoint cp;
  {
    std::lock_guard<std::mutex> lock(fmu_);
    if (flushErr_) {
      error_.Set(flushErr_.code, flushErr_.message);
      return false;
    }
    if (!flushedReady_) return true;
    flushedReady_ = false;
    cp = flushed_;
  }
  MaybeProgress(true, static_cast<int64_t>(cp.extents), cp.bytes);
  return true;
}

// Reads the chunk's range back from the target and compares it with the
// source bytes (whose block checksum the reader verified).
bool CopyJob::VerifyChunk(const Chunk& c, const uint8_t* want, const uint8_t* got, JobError& err) const {
  if (std::memcmp(got, want, c.len) == 0) return true;
  size_t at = 0;
  while (at < c.len && got[at] == want[at]) at++;
  uint64_t diskOff = c.targetOffset + at;
  uint32_t ei = c.firstExtent;  // packed extents follow each other on the target
  while (ei < c.extent && spec_->extents[ei].targetOffset + spec_->extents[ei].length <= diskOff) ei++;
  const auto& e = spec_->extents[ei];
  uint64_t srcOff = e.sourceOffset + (diskOff - e.targetOffset);
  std::string block = e.hasCheck ? "; its backup block is bytes " + std::to_string(e.checkOffset) + ".." +
                                       std::to_string(e.checkOffset + e.checkLength) + " of " +
                                       spec_->sources[e.source] + " (sha256 " + Hex(e.sha256, 32) + ")"
                                 : "; source " + spec_->sources[e.source] + " at byte " + std::to_string(srcOff);
  err.Set("VERIFY_MISMATCH", "the disk differs from the backup at byte " + std::to_string(diskOff) +
                                 " (extent " + std::to_string(ei) + ", disk bytes " +
                                 std::to_string(e.targetOffset) + ".." + std::to_string(e.targetOffset + e.length) +
                                 ")" + block);
  return false;
}

bool CopyJob::VerifyMetadata(Sink& sink, JobError& err) const {
  if (spec_->metadata.empty()) return true;
  std::map<std::string, std::string> have;
  if (!sink.ReadMetadata(have, err)) return false;
  for (const auto& kv : spec_->metadata) {
    auto it = have.find(kv.first);
    if (it == have.end() || it->second != kv.second) {
      err.Set("VERIFY_MISMATCH", "disk metadata " + kv.first + " is " +
                                     (it == have.end() ? std::string("missing") : "\"" + it->second + "\"") +
                                     ", the backup saved \"" + kv.second + "\"");
      return false;
    }
  }
  return true;
}

// Read-back while writing (spec readBack): the verifier thread reads back,
// through a read-only sink of its own, the chunks each flush made durable
// (gathered into one read of up to ReadBackRoom() bytes), reads what
// they should hold from the sources again and compares. The writer never
// waits for it; the copy ends once it has compared everything. Extents do
// not overlap on the target (validated), so a range read back is final.
// Up to 4 buffers per read-back (16 MiB by default): the device sees many
// requests in flight, and several copies at once (range streams, disks in
// parallel) do not each hold two areas of queueDepth buffers.
size_t CopyJob::ReadBackRoom() const {
  return spec_->bufferBytes * std::min<size_t>(4, std::max<size_t>(1, spec_->target.queueDepth));
}

bool CopyJob::StartVerifier() {
  TargetSpec t = spec_->target;
  t.direct = spec_->readBackDirect;
  readSink_ = MakeSink(t, false);
  if (!readSink_->Open(error_)) {
    error_.message = "read-back: " + error_.message;
    return false;
  }
  const size_t room = ReadBackRoom();
  scratch_.reset(static_cast<uint8_t*>(std::aligned_alloc(4096, room)));
  want_.reset(static_cast<uint8_t*>(std::aligned_alloc(4096, room)));
  if (!scratch_ || !want_) {
    error_.Set("IO_ERROR", "out of memory for the read-back buffers");
    return false;
  }
  Sink* s = readSink_.get();
  verifier_ = std::thread([this, s] { VerifierMain(*s); });
  return true;
}

void CopyJob::HandToVerifier(std::vector<Chunk> written) {
  if (!spec_->readBack || written.empty()) return;
  {
    std::lock_guard<std::mutex> lock(vmu_);
    durable_.insert(durable_.end(), written.begin(), written.end());
  }
  vcv_.notify_all();
}

// The end of the copy: everything written is durable (the final flush
// returned), so the rest goes to the verifier and the copy waits for it;
// after a failure the verifier just stops.
void CopyJob::FinishVerifier(bool allWritten) {
  if (!verifier_.joinable()) return;
  if (allWritten) HandToVerifier(std::move(unflushed_));
  {
    std::lock_guard<std::mutex> lock(vmu_);
    if (allWritten) durableDone_ = true;
    else verifierQuit_ = true;
  }
  vcv_.notify_all();
  verifier_.join();
  JobError closeErr;
  readSink_->Close(closeErr);
  if (!error_ && verifyErr_) error_ = verifyErr_;
}

// Caps for the read-back (every byte read back passes them, as in verify),
// waited for in 100 ms slices; false once the copy stops.
bool CopyJob::ThrottleReadBack(size_t len) {
  return WaitForCaps(len, 100ull * 1000000, [this] {
    std::lock_guard<std::mutex> lock(vmu_);
    return !verifierQuit_;
  });
}

// What chunk c should hold, read from the sources again: the extents in it
// follow each other on the target.
bool CopyJob::FillFromSource(const Chunk& c, uint8_t* dst, JobError& err) const {
  uint64_t at = c.targetOffset;
  const uint64_t end = c.targetOffset + c.len;
  for (uint32_t i = c.firstExtent; i <= c.extent && at < end; i++) {
    const auto& e = spec_->extents[i];
    if (e.targetOffset + e.length <= at) continue;
    const uint64_t to = std::min(end, e.targetOffset + e.length);
    if (!ReadFully(fds_[e.source], e.sourceOffset + (at - e.targetOffset), dst + (at - c.targetOffset),
                   static_cast<size_t>(to - at), i, err))
      return false;
    at = to;
  }
  return true;
}

void CopyJob::VerifierMain(Sink& sink) {
  JobError err;
  const size_t room = ReadBackRoom();
  for (;;) {
    std::vector<Chunk> batch;
    {
      std::unique_lock<std::mutex> lock(vmu_);
      vcv_.wait(lock, [&] { return verifierQuit_ || cancelled_ || !durable_.empty() || durableDone_; });
      if (verifierQuit_ || cancelled_) return;
      if (durable_.empty()) break;  // all of it read back and equal
      size_t len = 0;
      do {
        len += durable_.front().len;
        batch.push_back(durable_.front());
        durable_.pop_front();
      } while (!durable_.empty() && durable_.front().targetOffset == batch.back().targetOffset + batch.back().len &&
               len + durable_.front().len <= room);
    }
    bool ok = true;
    for (const auto& c : batch)
      if (!ThrottleReadBack(c.len)) return;
    const Chunk& first = batch.front();
    const uint64_t len = batch.back().targetOffset + batch.back().len - first.targetOffset;
    if (!sink.Read(first.targetOffset, scratch_.get(), static_cast<size_t>(len), err)) {
      err.message = "read-back of " + ExtentsOf(first, batch.back()) + ": " + err.message;
      break;
    }
    for (const auto& c : batch) {
      uint8_t* want = want_.get() + (c.targetOffset - first.targetOffset);
      if (!(ok = FillFromSource(c, want, err) && VerifyChunk(c, want, scratch_.get() + (c.targetOffset - first.targetOffset), err))) break;
      bytesReadBack_ += c.len;
    }
    if (!ok) break;
  }
  if (!err) VerifyMetadata(sink, err);
  if (!err) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    verifyErr_ = err;
    stop_ = true;  // the reader and the writer stop: the copy fails with this error
  }
  cv_.notify_all();
}

void CopyJob::MaybeProgress(bool force, int64_t checkpointExtents, uint64_t checkpointBytes) {
  if (!progress_) return;
  uint64_t now = NowNs();
  if (!force && now - lastProgressNs_ < uint64_t(spec_->progressIntervalMs) * 1000000) return;
  lastProgressNs_ = now;
  double secs = static_cast<double>(now - startNs_) / 1e9;
  Progress p;
  p.bytesDone = bytesDone_;
  p.bytesTotal = bytesTotal_;
  p.extentsDone = result_.extentsWritten;
  p.rateBytesPerSec = secs > 0 ? bytesDone_ / secs : 0;
  if (spec_->readBack) p.bytesVerified = static_cast<int64_t>(bytesReadBack_.load());
  if (checkpointExtents >= 0) {
    p.checkpointExtents = checkpointExtents;
    p.checkpointBytes = checkpointBytes;
    p.transport = transport_;
  }
  progress_(p);
}

// Waits until every limiter lets `len` bytes through; false once cancelled.
// The wait is cut into slices of the progress interval (at most 1 s) so
// progress keeps being reported while the job is held back by a cap.
bool CopyJob::Throttle(size_t len) {
  const uint64_t sliceMs =
      progress_ && spec_->progressIntervalMs > 0 ? std::min<uint64_t>(spec_->progressIntervalMs, 1000) : 1000;
  return WaitForCaps(len, sliceMs * 1000000, [this] {
    MaybeProgress(false);
    return true;
  });
}

// Waits until every limiter lets `len` bytes through, in slices of sliceNs;
// after each slice that did not pass, `goOn` runs and may end the wait.
// False once cancelled or ended.
bool CopyJob::WaitForCaps(size_t len, uint64_t sliceNs, const std::function<bool()>& goOn) {
  for (const auto& l : spec_->limiters) {
    for (;;) {
      RateLimiter::Outcome o = l->Acquire(len, cancelled_, sliceNs);
      if (o == RateLimiter::Outcome::kPassed) break;
      if (o == RateLimiter::Outcome::kStopped || !goOn()) return false;
    }
  }
  return true;
}

bool CopyJob::AcquireFree(size_t& buf) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return Stopping() || !free_.empty(); });
  if (Stopping()) return false;
  buf = free_.front();
  free_.pop_front();
  return true;
}

void CopyJob::ReleaseFree(size_t buf) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(buf);
  }
  cv_.notify_all();
}

bool CopyJob::ReadFully(int fd, uint64_t off, uint8_t* dst, size_t len, uint32_t extent, JobError& err) const {
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::pread(fd, dst + done, len - done, static_cast<off_t>(off + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const auto& e = spec_->extents[extent];
      err.Set("IO_ERROR", "extent " + std::to_string(extent) + ": cannot read source " +
                              spec_->sources[e.source] + " at byte " + std::to_string(off + done) + ": " +
                              (n < 0 ? std::strerror(errno) : "end of file"));
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

// Hashes the extent's check range through one ring buffer before any of the
// extent is queued for writing.
bool CopyJob::VerifyCheck(uint32_t index, int fd, size_t buf, JobError& err) {
  const auto& e = spec_->extents[index];
  Sha256 h;
  uint8_t* p = bufs_[buf].get();
  for (uint64_t off = 0; off < e.checkLength; off += spec_->bufferBytes) {
    if (Stopping()) return false;
    size_t len = static_cast<size_t>(std::min<uint64_t>(spec_->bufferBytes, e.checkLength - off));
    if (!ReadFully(fd, e.checkOffset + off, p, len, index, err)) return false;
    h.Update(p, len);
  }
  uint8_t got[32];
  h.Final(got);
  return CheckDigest(index, got, err);
}

bool CopyJob::CheckDigest(uint32_t index, const uint8_t got[32], JobError& err) {
  const auto& e = spec_->extents[index];
  if (std::memcmp(got, e.sha256, 32) == 0) return true;
  err.Set("CHECKSUM_MISMATCH", "extent " + std::to_string(index) + " (source " + std::to_string(e.source) +
                                   " bytes " + std::to_string(e.checkOffset) + ".." +
                                   std::to_string(e.checkOffset + e.checkLength) + ", target offset " +
                                   std::to_string(e.targetOffset) + "): sha256 " + Hex(got, 32) + " expected " +
                                   Hex(e.sha256, 32) + "; the extent was not written");
  return false;
}

void CopyJob::ReaderMain() {
  JobError err;
  // The buffer being filled; handed to the writer when full, when the next
  // bytes do not follow it on the target, or at the end.
  Chunk cur{};
  bool open = false;
  auto hand = [&] {
    if (!open) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      full_.push_back(cur);
    }
    cv_.notify_all();
    open = false;
  };
  for (uint32_t i = 0; i < spec_->extents.size() && !err && !Stopping(); i++) {
    const auto& e = spec_->extents[i];
    int fd = fds_[e.source];
    // An extent that is exactly its block, in one buffer: hashed from the
    // bytes read for writing (one read instead of two). Otherwise the block
    // is read and hashed first, once per job even when newer points split
    // it into several extents.
    const bool inlineCheck = e.hasCheck && e.checkOffset == e.sourceOffset && e.checkLength == e.length && e.length <= spec_->bufferBytes &&
                             !verified_.count({e.source, e.checkOffset, e.checkLength});
    if (e.hasCheck && !inlineCheck && verified_.insert({e.source, e.checkOffset, e.checkLength}).second) {
      if (spec_->bufferCount < 2) hand();  // the check needs a buffer of its own
      size_t buf;
      if (!AcquireFree(buf)) break;
      bool ok = VerifyCheck(i, fd, buf, err);
      ReleaseFree(buf);
      if (!ok) break;
    }
    if (inlineCheck && open && spec_->bufferBytes - cur.len < e.length) hand();  // the block whole in one buffer
    bool failed = false;
    for (uint64_t off = 0; off < e.length;) {
      if (open && (cur.len == spec_->bufferBytes || cur.targetOffset + cur.len != e.targetOffset + off)) hand();
      if (!open) {
        size_t buf;
        if (!AcquireFree(buf)) {
          failed = true;
          break;
        }
        cur = Chunk{buf, e.targetOffset + off, 0, i, i, 0, false};
        open = true;
      }
      uint8_t* dst = bufs_[cur.buf].get() + cur.len;
      size_t len = static_cast<size_t>(std::min<uint64_t>(spec_->bufferBytes - cur.len, e.length - off));
      if (!ReadFully(fd, e.sourceOffset + off, dst, len, i, err)) {
        failed = true;
        break;
      }
      if (inlineCheck) {
        Sha256 h;
        h.Update(dst, len);
        uint8_t got[32];
        h.Final(got);
        if (!CheckDigest(i, got, err)) {
          failed = true;
          break;
        }
        verified_.insert({e.source, e.checkOffset, e.checkLength});
      }
      cur.len += len;
      off += len;
      cur.extent = i;
      cur.lastOfExtent = off >= e.length;
      if (cur.lastOfExtent) cur.ended++;
    }
    if (failed) break;
  }
  // The last buffer; after a failure too, as far as it holds whole extents
  // (those before the failing one are written, as if they were not packed).
  if (open && !Stopping() && cur.len > 0 && cur.lastOfExtent) hand();
  if (open) ReleaseFree(cur.buf);  // not handed: a stop, or no whole extent in it
  {
    std::lock_guard<std::mutex> lock(mu_);
    readerDone_ = true;
    readerError_ = err;
  }
  cv_.notify_all();
}

}  // namespace vmrestore
