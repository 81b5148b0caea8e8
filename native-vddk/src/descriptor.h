// A VMDK text descriptor as described in docs/disk-model.md. Shared by the
// addon's `file` target and the VDDK simulator so both read and write disks
// the same way.
#ifndef VMRESTORE_DESCRIPTOR_H
#define VMRESTORE_DESCRIPTOR_H

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace vmrestore {

class Descriptor {
 public:
  // Reads and parses `path`. Returns false with `err` set when the file
  // cannot be read or has no `RW <sectors> FLAT "<file>" 0` extent line.
  bool Load(const std::string& path, std::string& err);
  // Writes to a temporary file beside the descriptor, fsyncs and renames.
  bool SaveAtomic(std::string& err) const;

  const std::string& path() const { return path_; }
  uint64_t sectors() const { return sectors_; }
  // Absolute path of the flat extent (resolved against the descriptor's directory).
  std::string ExtentPath() const;
  // Absolute path of the parent descriptor, empty for a base disk.
  std::string ParentPath() const;

  // Top-level `key=value` entries (CID, parentCID, createType, ...).
  std::string Get(const std::string& key) const;
  void Set(const std::string& key, const std::string& value);

  // Disk database: keys without the "ddb." prefix, as VixDiskLib names them.
  std::map<std::string, std::string> Metadata() const;
  void SetMetadata(const std::string& key, const std::string& value);

 private:
  std::string path_;
  std::vector<std::string> lines_;
  uint64_t sectors_ = 0;
  std::string extentFile_;
};

// True when the file starts like a text descriptor (not a raw image).
bool LooksLikeDescriptor(const std::string& path);
// Eight lowercase hex digits from a non-deterministic source.
std::string RandomCid();
std::string DirName(const std::string& path);

}  // namespace vmrestore

#endif
