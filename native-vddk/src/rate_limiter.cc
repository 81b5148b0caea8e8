#include "rate_limiter.h"

#include <algorithm>
#include <chrono>

namespace vmrestore {

uint64_t NowNs() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

RateLimiter::RateLimiter(uint64_t bytesPerSec) : rate_(bytesPerSec), lastNs_(NowNs()) {}

// Adds `rate` bytes per second for the time since the last refill, up to
// one chunk of credit.
void RateLimiter::RefillLocked(uint64_t now, uint64_t rate) {
  if (now > lastNs_) tokens_ = std::min(burst_, tokens_ + static_cast<double>(rate) * (now - lastNs_) / 1e9);
  lastNs_ = now;
}

void RateLimiter::Set(uint64_t bytesPerSec) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    uint64_t now = NowNs();
    uint64_t old = rate_.load();
    if (old == 0 || bytesPerSec == 0) {
      tokens_ = 0;  // from or to unlimited: no debt or credit carried over
      lastNs_ = now;
    } else {
      RefillLocked(now, old);  // debt accrued so far is repaid at the old cap
    }
    rate_.store(bytesPerSec);
  }
  cv_.notify_all();
}

void RateLimiter::Wake() {
  // Taking the lock orders this with a waiter's check of its stop flag, so
  // the wake-up cannot fall between that check and its wait.
  { std::lock_guard<std::mutex> lock(mu_); }
  cv_.notify_all();
}

RateLimiter::Outcome RateLimiter::Acquire(uint64_t bytes, const std::atomic<bool>& stop, uint64_t maxWaitNs) {
  if (rate_.load(std::memory_order_relaxed) == 0) return Outcome::kPassed;  // unlimited: no lock
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t deadline = NowNs() + maxWaitNs;
  for (;;) {
    if (stop.load()) return Outcome::kStopped;
    uint64_t rate = rate_.load();
    if (rate == 0) return Outcome::kPassed;
    uint64_t now = NowNs();
    burst_ = static_cast<double>(bytes);
    RefillLocked(now, rate);
    if (tokens_ >= 0) {
      tokens_ -= static_cast<double>(bytes);
      return Outcome::kPassed;
    }
    if (now >= deadline) return Outcome::kTimedOut;
    // Sleep until the debt is repaid (plus a microsecond, so the next look
    // finds it repaid), the deadline, a new cap or a stop, whichever is first.
    const uint64_t left = deadline - now;
    const double needNs = -tokens_ / static_cast<double>(rate) * 1e9 + 1000;
    const uint64_t waitNs = needNs < static_cast<double>(left) ? static_cast<uint64_t>(needNs) : left;
    cv_.wait_for(lock, std::chrono::nanoseconds(waitNs));
  }
}

}  // namespace vmrestore
