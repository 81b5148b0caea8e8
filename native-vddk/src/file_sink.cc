// The `file` target: a disk in the layout of docs/disk-model.md (descriptor +
// flat extent) or a raw image. A descriptor gets a new random CID, written
// atomically, before the first data or metadata write.
#include <fcntl.h>
#include <sys/stat.h>
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
  FileSink(const TargetSpec& t, bool forWrite) : path_(t.path), forWrite_(forWrite), flushBehind_(t.flushBehind) {}
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
    return true;
  }

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
    return FlushBehind(offset, len, err);
  }

  bool Read(uint64_t offset, uint8_t* data, size_t len, JobError& err) override {
    size_t done = 0;
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

  bool Close(JobError& err) override {
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
