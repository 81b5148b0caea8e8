// Minimal SHA-256 (FIPS 180-4) for extent checks; no OpenSSL dependency,
// because Node's bundled OpenSSL symbols are not a stable addon ABI.
#ifndef VMRESTORE_SHA256_H
#define VMRESTORE_SHA256_H

#include <cstddef>
#include <cstdint>
#include <string>

namespace vmrestore {

class Sha256 {
 public:
  Sha256();
  void Update(const uint8_t* data, size_t len);
  void Final(uint8_t out[32]);

 private:
  void Block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t bufLen_ = 0;
  uint64_t total_ = 0;
};

// Lower-case hex of n bytes (digests in messages and results).
std::string Hex(const uint8_t* d, size_t n);

}  // namespace vmrestore

#endif
