#include "descriptor.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

namespace vmrestore {

namespace {

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

std::string Unquote(const std::string& s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') return s.substr(1, s.size() - 2);
  return s;
}

// Splits "key = value" / "key=value"; false when the line is not one.
bool SplitKeyValue(const std::string& line, std::string& key, std::string& value) {
  if (line.empty() || line[0] == '#') return false;
  size_t eq = line.find('=');
  if (eq == std::string::npos) return false;
  key = Trim(line.substr(0, eq));
  value = Unquote(Trim(line.substr(eq + 1)));
  return !key.empty() && key.find(' ') == std::string::npos;
}

std::string Resolve(const std::string& dir, const std::string& file) {
  if (!file.empty() && file[0] == '/') return file;
  return dir + "/" + file;
}

}  // namespace

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

bool Descriptor::Load(const std::string& path, std::string& err) {
  std::ifstream in(path);
  if (!in) {
    err = "cannot open descriptor " + path + ": " + std::strerror(errno);
    return false;
  }
  path_ = path;
  lines_.clear();
  sectors_ = 0;
  extentFile_.clear();
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines_.push_back(line);
    std::istringstream words(line);
    std::string access, type;
    uint64_t sectors = 0;
    if (extentFile_.empty() && (words >> access >> sectors >> type) && access == "RW" && type == "FLAT") {
      size_t q1 = line.find('"');
      size_t q2 = q1 == std::string::npos ? q1 : line.find('"', q1 + 1);
      if (q2 != std::string::npos) {
        extentFile_ = line.substr(q1 + 1, q2 - q1 - 1);
        sectors_ = sectors;
      }
    }
  }
  if (extentFile_.empty()) {
    err = "descriptor " + path + " has no RW <sectors> FLAT \"<file>\" 0 extent line";
    return false;
  }
  return true;
}

bool Descriptor::SaveAtomic(std::string& err) const {
  std::string text;
  for (const auto& l : lines_) text += l + "\n";
  std::string tmp = path_ + ".tmp-" + std::to_string(getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    err = "cannot create " + tmp + ": " + std::strerror(errno);
    return false;
  }
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = "cannot write " + tmp + ": " + std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      return false;
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    err = "cannot sync " + tmp + ": " + std::strerror(errno);
    ::unlink(tmp.c_str());
    return false;
  }
  if (::rename(tmp.c_str(), path_.c_str()) != 0) {
    err = "cannot rename " + tmp + ": " + std::strerror(errno);
    ::unlink(tmp.c_str());
    return false;
  }
  return true;
}

std::string Descriptor::ExtentPath() const { return Resolve(DirName(path_), extentFile_); }

std::string Descriptor::ParentPath() const {
  std::string hint = Get("parentFileNameHint");
  return hint.empty() ? "" : Resolve(DirName(path_), hint);
}

std::string Descriptor::Get(const std::string& key) const {
  std::string k, v;
  for (const auto& l : lines_)
    if (SplitKeyValue(l, k, v) && k == key) return v;
  return "";
}

void Descriptor::Set(const std::string& key, const std::string& value) {
  std::string k, v;
  for (auto& l : lines_) {
    if (SplitKeyValue(l, k, v) && k == key) {
      bool quoted = l.find('"') != std::string::npos;
      l = key + "=" + (quoted ? "\"" + value + "\"" : value);
      return;
    }
  }
  // New top-level keys go before the extent section.
  size_t at = 0;
  while (at < lines_.size() && lines_[at].rfind("# Extent", 0) != 0) at++;
  lines_.insert(lines_.begin() + static_cast<long>(at), key + "=\"" + value + "\"");
}

std::map<std::string, std::string> Descriptor::Metadata() const {
  std::map<std::string, std::string> out;
  std::string k, v;
  for (const auto& l : lines_)
    if (SplitKeyValue(l, k, v) && k.rfind("ddb.", 0) == 0) out[k.substr(4)] = v;
  return out;
}

void Descriptor::SetMetadata(const std::string& key, const std::string& value) {
  std::string k, v, full = "ddb." + key;
  std::string line = full + " = \"" + value + "\"";
  for (auto& l : lines_) {
    if (SplitKeyValue(l, k, v) && k == full) {
      l = line;
      return;
    }
  }
  lines_.push_back(line);
}

bool LooksLikeDescriptor(const std::string& path) {
  static const char kMagic[] = "# Disk DescriptorFile";
  char head[sizeof(kMagic) - 1];
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = ::pread(fd, head, sizeof(head), 0);
  ::close(fd);
  return n == static_cast<ssize_t>(sizeof(head)) && std::memcmp(head, kMagic, sizeof(head)) == 0;
}

std::string RandomCid() {
  static thread_local std::mt19937 gen{std::random_device{}()};
  uint32_t v;
  do v = static_cast<uint32_t>(gen()); while (v == 0xffffffffu);
  char buf[9];
  std::snprintf(buf, sizeof(buf), "%08x", v);
  return buf;
}

}  // namespace vmrestore
