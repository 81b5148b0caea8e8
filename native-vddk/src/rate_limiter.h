// A byte-rate cap shared by the copies that hold it: a token bucket that may
// run into debt. A chunk may pass once the bucket is not in debt, and passing
// takes its bytes; credit builds up to one chunk at most, so a write slower
// than the cap is made up by the next one, and the bytes passed by time t
// never exceed two chunks plus cap * t. The cap is one atomic, changeable at any time from any thread;
// 0 means unlimited and then Acquire takes no lock. Free of Napi.
#ifndef VMRESTORE_RATE_LIMITER_H
#define VMRESTORE_RATE_LIMITER_H

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace vmrestore {

// The monotonic clock (steady_clock) in nanoseconds: the limiter's and the copy job's.
uint64_t NowNs();

class RateLimiter {
 public:
  enum class Outcome { kPassed, kStopped, kTimedOut };

  explicit RateLimiter(uint64_t bytesPerSec);
  // Changes the cap; wakes every waiter so the new cap applies at once.
  void Set(uint64_t bytesPerSec);
  uint64_t Get() const { return rate_.load(std::memory_order_relaxed); }
  // Blocks (without spinning) until `bytes` may pass, `stop` becomes true
  // (then Wake() must be called to end the wait) or maxWaitNs have passed;
  // only kPassed takes the bytes.
  Outcome Acquire(uint64_t bytes, const std::atomic<bool>& stop, uint64_t maxWaitNs);
  // Wakes every waiter so it re-checks its stop flag.
  void Wake();

 private:
  void RefillLocked(uint64_t now, uint64_t rate);

  std::atomic<uint64_t> rate_;
  std::mutex mu_;
  std::condition_variable cv_;
  double tokens_ = 0;  // < 0: the debt to repay before the next chunk may pass
  double burst_ = 0;   // the credit limit: the size of the last chunk asked for
  uint64_t lastNs_ = 0;
};

}  // namespace vmrestore

#endif
