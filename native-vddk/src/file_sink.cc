// The `file` target: a disk in the layout of docs/disk-model.md (descriptor +
// flat extent) or a raw image. A descriptor gets a new random CID, written
// atomically, before the first data or metadata write.
//
// Direct I/O: the data file is opened twice, buffered and (where the file
// system allows it) O_DIRECT. A write or read whose offset, length and
// buffer meet the file's direct-I/O alignment (statx STATX_DIOALIGN; the
// copy's buffers are page aligned and whole-block extents are 1 MiB aligned)
// goes through the O_DIRECT descriptor, the rest through the page cache
// (with flush-behind). Linux keeps the two coherent: a direct write first
// writes back and then drops cached pages of its range. fsync on either
// descriptor makes both durable.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>

#include "descriptor.h"
#include "sink.h"

namespace vmrestore {

namespace {

class FileSink : public Sink {
 public:
  FileSink(const TargetSpec& t, bool forWrite)
      : path_(t.path), forWrite_(forWrite), flushBehind_(t.flushBehind), wantDirect_(t.direct) {}
  ~FileSink() override {
    JobError ignored;
    Close(ignored);
  }

  bool Open(JobError& err) override {
    if (::access(path_.c_str(), F_OK) != 0) {
      err.Set("FILE_NOT_FOUND", "target " + path_ + " does not exist");
      return false;
    }
    std::string dataPath = path_;
    if (LooksLikeDescriptor(path_)) {
      std::string why;
      if (!desc_.Load(path_, why)) {
        err.Set("INVALID_DESCRIPTOR", why);
        return false;
      }
      isDescriptor_ = true;
      dataPath = desc_.ExtentPath();
      capacity_ = desc_.sectors() * 512;
    }
    fd_ = ::open(dataPath.c_str(), (forWrite_ ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (fd_ < 0) {
      err.Set(errno == ENOENT ? "FILE_NOT_FOUND" : "IO_ERROR",
              "cannot open " + dataPath + ": " + std::strerror(errno));
      return false;
    }
    if (!isDescriptor_) {
      struct stat st;
      if (::fstat(fd_, &st) != 0) {
        err.Set("IO_ERROR", "cannot stat " + dataPath + ": " + std::strerror(errno));
        return false;
      }
      capacity_ = static_cast<uint64_t>(st.st_size);
    }
    if (wantDirect_) OpenDirect(dataPath);
    return true;
  }

  uint64_t BytesDirect() const override { return bytesDirect_; }

  uint64_t Capacity() const override { return capacity_; }
  std::string Transport() const override { return "file"; }

  bool ReadMetadata(std::map<std::string, std::string>& out, JobError&) override {
    if (isDescriptor_) out = desc_.Metadata();
    return true;
  }

  bool WriteMetadata(const std::vector<std::pair<std::string, std::string>>& kv, JobError& err) override {
    if (kv.empty()) return true;
    if (!isDescriptor_) {
      warnings_.push_back("writeMetadata ignored: " + path_ + " is a raw image without a descriptor");
      return true;
    }
    for (const auto& p : kv) desc_.SetMetadata(p.first, p.second);
    return TouchDescriptor(err, true);
  }

  bool Write(uint64_t offset, const uint8_t* data, size_t len, JobError& err) override {
    if (!TouchDescriptor(err, false)) return false;
    size_t done = 0;
    if (DirectFits(offset, data, len)) {
      done = DirectIo(true, offset, const_cast<uint8_t*>(data), len, err);
      if (err) return false;
      if (done == len) return true;
    }
    const size_t directDone = done;
    while (done < len) {
      ssize_t n = ::pwrite(fd_, data + done, len - done, static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        err.Set("IO_ERROR", "write at byte " + std::to_string(offset + done) + " failed: " +
                                std::strerror(n < 0 ? errno : EIO));
        return false;
      }
      done += static_cast<size_t>(n);
    }
    return FlushBehind(offset + directDone, len - directDone, err);
  }

  bool Read(uint64_t offset, uint8_t* data, size_t len, JobError& err) override {
    size_t done = 0;
    if (DirectFits(offset, data, len)) {
      done = DirectIo(false, offset, data, len, err);
      if (err) return false;
      if (done == len) return true;
    }
    while (done < len) {
      ssize_t n = ::pread(fd_, data + done, len - done, static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        err.Set("IO_ERROR", "read at byte " + std::to_string(offset + done) + " failed: " + std::strerror(errno));
        return false;
      }
      if (n == 0) {  // a sparse extent shorter than the disk: the rest reads as zeros
        std::memset(data + done, 0, len - done);
        break;
      }
      done += static_cast<size_t>(n);
    }
    return true;
  }

  bool Flush(JobError& err) override {
    if (::fsync(fd_) != 0) {
      err.Set("IO_ERROR", std::string("fsync failed: ") + std::strerror(errno));
      return false;
    }
    return true;
  }

  bool ConcurrentFlush() const override { return true; }
  bool GathersWrites() const override { return true; }

  // One pwritev on the O_DIRECT descriptor when every piece meets the
  // alignment: a 4 MiB buffer per piece, up to queueDepth of them, reach
  // the device as that many requests at once (ext4 serializes direct
  // writes that allocate, so requests in flight must come from one call).
  bool WriteGathered(uint64_t offset, const Pieces& pieces, JobError& err) override {
    bool direct = pieces.size() > 1;
    uint64_t off = offset, total = 0;
    for (const auto& p : pieces) {
      direct = direct && DirectFits(off, p.first, p.second);
      off += p.second;
      total += p.second;
    }
    if (!direct) return Sink::WriteGathered(offset, pieces, err);
    if (!TouchDescriptor(err, false)) return false;
    std::vector<iovec> iov;
    for (const auto& p : pieces) iov.push_back(iovec{const_cast<uint8_t*>(p.first), p.second});
    uint64_t done = 0;
    size_t first = 0;
    while (done < total) {
      ssize_t n = ::pwritev(dfd_, iov.data() + first, static_cast<int>(iov.size() - first), static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EINVAL) {  // refused: the rest through Write (the page cache from now on)
        ::close(dfd_);
        dfd_ = -1;
        break;
      }
      if (n <= 0) {
        err.Set("IO_ERROR", "write at byte " + std::to_string(offset + done) + " failed: " + std::strerror(n < 0 ? errno : EIO));
        return false;
      }
      done += static_cast<uint64_t>(n);
      bytesDirect_ += static_cast<uint64_t>(n);
      for (size_t left = static_cast<size_t>(n); first < iov.size() && left > 0;) {  // skip what was written
        if (left >= iov[first].iov_len) {
          left -= iov[first].iov_len;
          first++;
        } else {
          iov[first].iov_base = static_cast<uint8_t*>(iov[first].iov_base) + left;
          iov[first].iov_len -= left;
          left = 0;
        }
      }
    }
    for (off = offset + done; first < iov.size(); first++) {
      if (!Write(off, static_cast<const uint8_t*>(iov[first].iov_base), iov[first].iov_len, err)) return false;
      off += iov[first].iov_len;
    }
    return true;
  }

  bool Close(JobError& err) override {
    if (dfd_ >= 0) ::close(dfd_);  // nothing buffered on it: fd_'s close reports the inode's errors
    dfd_ = -1;
    if (fd_ >= 0 && ::close(fd_) != 0) err.Set("IO_ERROR", std::string("close failed: ") + std::strerror(errno));
    fd_ = -1;
    return !err;
  }

  std::vector<std::string> TakeWarnings() override { return std::move(warnings_); }

 private:
  // New CID before the first write after open (disk-model.md); `force`
  // rewrites even when the CID already changed (metadata updates).
  bool TouchDescriptor(JobError& err, bool force) {
    if (!isDescriptor_ || (cidChanged_ && !force)) return true;
    if (!cidChanged_) desc_.Set("CID", RandomCid());
    std::string why;
    if (!desc_.SaveAtomic(why)) {
      err.Set("IO_ERROR", why);
      return false;
    }
    cidChanged_ = true;
    return true;
  }

  // The O_DIRECT descriptor, if the file system gives the file direct I/O.
  // Kernels before 6.1 do not report the alignment: 4096 then covers every
  // device's logical block and page size.
  void OpenDirect(const std::string& dataPath) {
    struct stat st;
    if (::fstat(fd_, &st) != 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) return;
    memAlign_ = offAlign_ = 4096;
#ifdef STATX_DIOALIGN
    struct statx sx;
    if (::statx(fd_, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 && (sx.stx_mask & STATX_DIOALIGN)) {
      if (sx.stx_dio_offset_align == 0 || sx.stx_dio_mem_align == 0) return;  // no direct I/O for this file
      memAlign_ = sx.stx_dio_mem_align;
      offAlign_ = sx.stx_dio_offset_align;
    }
#endif
    dfd_ = ::open(dataPath.c_str(), (forWrite_ ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_DIRECT);  // EINVAL (tmpfs): buffered only
  }

  bool DirectFits(uint64_t offset, const uint8_t* p, size_t len) const {
    return dfd_ >= 0 && len > 0 && offset % offAlign_ == 0 && len % offAlign_ == 0 &&
           reinterpret_cast<uintptr_t>(p) % memAlign_ == 0;
  }

  // Direct write or read of [offset, offset+len); returns the bytes done.
  // Less than len without an error: the rest goes through the page cache
  // (EINVAL: the file system refused this request, and direct I/O is off
  // from now on; a short read: the end of a sparse extent).
  size_t DirectIo(bool write, uint64_t offset, uint8_t* p, size_t len, JobError& err) {
    size_t done = 0;
    while (done < len) {
      ssize_t n = write ? ::pwrite(dfd_, p + done, len - done, static_cast<off_t>(offset + done))
                        : ::pread(dfd_, p + done, len - done, static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EINVAL) {
        ::close(dfd_);
        dfd_ = -1;
        break;
      }
      if (n < 0) {
        err.Set("IO_ERROR", std::string(write ? "write" : "read") + " at byte " + std::to_string(offset + done) +
                                " failed: " + std::strerror(errno));
        break;
      }
      if (n == 0 || (!write && static_cast<size_t>(n) % offAlign_ != 0)) {  // end of file: finish buffered
        done += static_cast<size_t>(n);
        break;
      }
      done += static_cast<size_t>(n);
    }
    bytesDirect_ += done;
    return done;
  }

  // Flush-behind: writeback of each written range starts at once
  // (SYNC_FILE_RANGE_WRITE, asynchronous), and once more than flushBehind_
  // bytes are in flight the oldest range is waited for. The device is kept
  // busy from the first write instead of when the page cache's dirty limit
  // is hit, the dirty pages a copy leaves stay bounded, and the fsync that
  // ends each copy (before its checkpoint is recorded) has little left to
  // do. 0 = off (the page cache decides, and the final fsync does it all).
  bool FlushBehind(uint64_t offset, size_t len, JobError& err) {
    if (flushBehind_ == 0 || len == 0) return true;
    if (::sync_file_range(fd_, static_cast<off_t>(offset), static_cast<off_t>(len), SYNC_FILE_RANGE_WRITE) != 0) {
      if (errno == ENOSYS || errno == EINVAL || errno == ESPIPE) {  // not a regular file (a block device is fine; a pipe is not)
        flushBehind_ = 0;
        return true;
      }
      err.Set("IO_ERROR", "write at byte " + std::to_string(offset) + " failed: " + std::strerror(errno));
      return false;
    }
    inFlight_.push_back({offset, len});
    inFlightBytes_ += len;
    while (inFlightBytes_ > flushBehind_ && !inFlight_.empty()) {
      auto r = inFlight_.front();
      inFlight_.pop_front();
      inFlightBytes_ -= r.second;
      if (::sync_file_range(fd_, static_cast<off_t>(r.first), static_cast<off_t>(r.second),
                            SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER) != 0) {
        err.Set("IO_ERROR", "write at byte " + std::to_string(r.first) + " failed: " + std::strerror(errno));
        return false;
      }
    }
    return true;
  }

  std::string path_;
  bool forWrite_;
  uint64_t flushBehind_;
  bool wantDirect_;
  int dfd_ = -1;  // O_DIRECT, or -1
  uint64_t memAlign_ = 4096, offAlign_ = 4096;
  uint64_t bytesDirect_ = 0;
  std::deque<std::pair<uint64_t, size_t>> inFlight_;
  uint64_t inFlightBytes_ = 0;
  bool isDescriptor_ = false;
  bool cidChanged_ = false;
  Descriptor desc_;
  int fd_ = -1;
  uint64_t capacity_ = 0;
  std::vector<std::string> warnings_;
};

}  // namespace

std::unique_ptr<Sink> MakeFileSink(const TargetSpec& t, bool forWrite) {
  return std::make_unique<FileSink>(t, forWrite);
}

}  // namespace vmrestore
