#include "hash_blocks.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

#include "sha256.h"

namespace vmrestore {

void HashBlocks(const HashSpec& spec, const std::atomic<bool>& cancelled, const std::function<void(const Progress&)>& progress,
                HashResult& result, JobError& err) {
  const size_t n = spec.offsets.size();
  uint64_t total = 0, maxLen = 0;
  for (uint64_t l : spec.lengths) {
    total += l;
    maxLen = std::max(maxLen, l);
  }
  int fd = ::open(spec.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    err.Set(errno == ENOENT ? "FILE_NOT_FOUND" : "IO_ERROR", "cannot open " + spec.path + ": " + std::strerror(errno));
    return;
  }
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  std::atomic<size_t> next{0};
  std::atomic<size_t> firstBad{SIZE_MAX};  // stopAtFirst: no block after it is started
  std::atomic<uint64_t> done{0};
  std::mutex mu;
  std::condition_variable cv;
  size_t running = 0;
  JobError ioErr;
  auto work = [&] {
    std::unique_ptr<uint8_t, void (*)(void*)> buf(static_cast<uint8_t*>(std::aligned_alloc(4096, std::max<uint64_t>(4096, (maxLen + 4095) / 4096 * 4096))), std::free);
    for (;;) {
      const size_t i = next.fetch_add(1);
      if (i >= n || cancelled.load() || (spec.stopAtFirst && i > firstBad.load())) break;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (ioErr) break;
      }
      if (!buf) {
        std::lock_guard<std::mutex> lock(mu);
        ioErr.Set("IO_ERROR", "out of memory for a block buffer");
        break;
      }
      uint64_t got = 0;
      const uint64_t len = spec.lengths[i];
      bool failed = false;
      while (got < len) {
        ssize_t r = ::pread(fd, buf.get() + got, len - got, static_cast<off_t>(spec.offsets[i] + got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
          std::lock_guard<std::mutex> lock(mu);
          ioErr.Set("IO_ERROR", "block " + std::to_string(i) + ": cannot read " + spec.path + " at byte " +
                                    std::to_string(spec.offsets[i] + got) + ": " + std::strerror(errno));
          failed = true;
          break;
        }
        if (r == 0) break;  // the file ended: a mismatch with bytesRead < length
        got += static_cast<uint64_t>(r);
      }
      if (failed) break;
      Sha256 h;
      h.Update(buf.get(), got);
      HashMismatch m;
      h.Final(m.sha256);
      if (got != len || std::memcmp(m.sha256, spec.sha256.data() + 32 * i, 32) != 0) {
        m.block = static_cast<uint32_t>(i);
        m.bytesRead = got;
        std::lock_guard<std::mutex> lock(mu);
        result.mismatches.push_back(m);
        size_t cur = firstBad.load();
        while (i < cur && !firstBad.compare_exchange_weak(cur, i)) {
        }
      }
      done.fetch_add(got);
    }
    std::lock_guard<std::mutex> lock(mu);
    running--;
    cv.notify_all();
  };
  const uint32_t threads = std::max<uint32_t>(1, std::min<uint32_t>(spec.threads, static_cast<uint32_t>(std::max<size_t>(n, 1))));
  std::vector<std::thread> pool;
  running = threads;
  for (uint32_t t = 0; t < threads; t++) pool.emplace_back(work);
  // This thread reports progress until the workers end.
  const auto start = std::chrono::steady_clock::now();
  {
    std::unique_lock<std::mutex> lock(mu);
    while (running > 0) {
      cv.wait_for(lock, std::chrono::milliseconds(std::max<uint32_t>(spec.progressIntervalMs, 10)));
      if (running > 0 && progress) {
        Progress p;
        p.bytesDone = done.load();
        p.bytesTotal = total;
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        p.rateBytesPerSec = secs > 0 ? p.bytesDone / secs : 0;
        lock.unlock();
        progress(p);
        lock.lock();
      }
    }
  }
  for (auto& t : pool) t.join();
  ::close(fd);
  result.bytesHashed = done.load();
  std::sort(result.mismatches.begin(), result.mismatches.end(), [](const HashMismatch& a, const HashMismatch& b) { return a.block < b.block; });
  if (spec.stopAtFirst && result.mismatches.size() > 1) result.mismatches.resize(1);
  if (ioErr) {
    err = ioErr;
    return;
  }
  if (cancelled.load()) err.Set("CANCELLED", "hashBlocks cancelled");
}

}  // namespace vmrestore
