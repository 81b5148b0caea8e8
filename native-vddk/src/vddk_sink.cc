// The `vddk` target: PrepareForAccess, ConnectEx and Open on the control
// thread, GetInfo/Read/Write/WriteMetadata/Flush on the job's writer thread, then
// Close, Disconnect and EndAccess back on the control thread.
#include <cstring>

#include "sink.h"
#include "vddk_library.h"

namespace vmrestore {

namespace {

constexpr const char* kIdentity = "vmrestore";

class VddkSink : public Sink {
 public:
  VddkSink(const TargetSpec& t, bool forWrite) : t_(t), forWrite_(forWrite) {
    vmxSpec_ = "moref=" + t_.vmMoref;
    for (size_t i = 0; i < t_.transports.size(); i++) transports_ += (i ? ":" : "") + t_.transports[i];
    std::memset(&params_, 0, sizeof(params_));
    params_.specType = VIXDISKLIB_SPEC_VMX;
    params_.vmxSpec = vmxSpec_.data();
    params_.serverName = t_.server.data();
    params_.thumbPrint = t_.thumbprint.data();
    if (t_.hasCookie) {
      params_.credType = VIXDISKLIB_CRED_SESSIONID;
      params_.creds.sessionId.cookie = t_.cookie.data();
      params_.creds.sessionId.userName = t_.username.data();
      params_.creds.sessionId.key = t_.password.data();
    } else {
      params_.credType = VIXDISKLIB_CRED_UID;
      params_.creds.uid.userName = t_.username.data();
      params_.creds.uid.password = t_.password.data();
    }
  }

  ~VddkSink() override {
    JobError ignored;
    Close(ignored);
  }

  bool Open(JobError& err) override {
    api_ = LoadVddk(t_.libDir, t_.hasConfigFile ? &t_.configFile : nullptr, err);
    if (!api_) return false;
    RunOnControlThread([&] {
      if (forWrite_) {
        if (!CheckVix(api_, api_->PrepareForAccess(&params_, kIdentity), "VixDiskLib_PrepareForAccess", err)) return;
        prepared_ = true;
      }
      if (!CheckVix(api_,
                    api_->ConnectEx(&params_, forWrite_ ? 0 : 1, t_.hasSnapshot ? t_.snapshotMoref.c_str() : nullptr,
                                    transports_.c_str(), &conn_),
                    "VixDiskLib_ConnectEx", err))
        return;
      uint32_t flags = forWrite_ ? VIXDISKLIB_FLAG_OPEN_UNBUFFERED : VIXDISKLIB_FLAG_OPEN_READ_ONLY;
      CheckVix(api_, api_->Open(conn_, t_.diskPath.c_str(), flags, &disk_), "VixDiskLib_Open", err);
    });
    if (err) return false;
    VixDiskLibInfo* info = nullptr;
    if (!CheckVix(api_, api_->GetInfo(disk_, &info), "VixDiskLib_GetInfo", err)) return false;
    capacity_ = info->capacity * VIXDISKLIB_SECTOR_SIZE;
    api_->FreeInfo(info);
    const char* mode = api_->GetTransportMode(disk_);
    transport_ = mode ? mode : "unknown";
    return true;
  }

  uint64_t Capacity() const override { return capacity_; }
  std::string Transport() const override { return transport_; }

  bool ReadMetadata(std::map<std::string, std::string>& out, JobError& err) override {
    size_t need = 0;
    api_->GetMetadataKeys(disk_, nullptr, 0, &need);  // sizing call: VIX_E_BUFFER_TOOSMALL expected
    std::vector<char> keys(need + 1, '\0');
    if (!CheckVix(api_, api_->GetMetadataKeys(disk_, keys.data(), keys.size(), nullptr),
                  "VixDiskLib_GetMetadataKeys", err))
      return false;
    for (const char* k = keys.data(); *k; k += std::strlen(k) + 1) {
      size_t len = 0;
      api_->ReadMetadata(disk_, k, nullptr, 0, &len);
      std::vector<char> val(len + 1, '\0');
      if (!CheckVix(api_, api_->ReadMetadata(disk_, k, val.data(), val.size(), nullptr), "VixDiskLib_ReadMetadata",
                    err))
        return false;
      out[k] = val.data();
    }
    return true;
  }

  bool WriteMetadata(const std::vector<std::pair<std::string, std::string>>& kv, JobError& err) override {
    for (const auto& p : kv)
      if (!CheckVix(api_, api_->WriteMetadata(disk_, p.first.c_str(), p.second.c_str()), "VixDiskLib_WriteMetadata",
                    err))
        return false;
    return true;
  }

  bool Write(uint64_t offset, const uint8_t* data, size_t len, JobError& err) override {
    return CheckVix(api_,
                    api_->Write(disk_, offset / VIXDISKLIB_SECTOR_SIZE, len / VIXDISKLIB_SECTOR_SIZE, data),
                    "VixDiskLib_Write", err);
  }

  bool Read(uint64_t offset, uint8_t* data, size_t len, JobError& err) override {
    return CheckVix(api_, api_->Read(disk_, offset / VIXDISKLIB_SECTOR_SIZE, len / VIXDISKLIB_SECTOR_SIZE, data),
                    "VixDiskLib_Read", err);
  }

  bool Flush(JobError& err) override { return CheckVix(api_, api_->Flush(disk_), "VixDiskLib_Flush", err); }

  bool Close(JobError& err) override {
    if (!api_ || (!disk_ && !conn_ && !prepared_)) return true;
    RunOnControlThread([&] {
      if (disk_) CheckVix(api_, api_->Close(disk_), "VixDiskLib_Close", err);
      if (conn_) CheckVix(api_, api_->Disconnect(conn_), "VixDiskLib_Disconnect", err);
      if (prepared_) CheckVix(api_, api_->EndAccess(&params_, kIdentity), "VixDiskLib_EndAccess", err);
    });
    disk_ = nullptr;
    conn_ = nullptr;
    prepared_ = false;
    return !err;
  }

  std::vector<std::string> TakeWarnings() override { return TakeVddkMessages(); }

 private:
  TargetSpec t_;
  bool forWrite_;
  std::string vmxSpec_, transports_;
  VixDiskLibConnectParams params_;
  const VddkApi* api_ = nullptr;
  bool prepared_ = false;
  VixDiskLibConnection conn_ = nullptr;
  VixDiskLibHandle disk_ = nullptr;
  uint64_t capacity_ = 0;
  std::string transport_;
};

}  // namespace

std::unique_ptr<Sink> MakeVddkSink(const TargetSpec& t, bool forWrite) {
  return std::make_unique<VddkSink>(t, forWrite);
}

}  // namespace vmrestore
