// Device availability and DeviceExpertBank: the owning device copy of an ExpertBank.
#include <cuda_runtime.h>

#include <string>
#include <utility>
#include <vector>

#include "cuda/decode/registry.cuh"
#include "qmoe/gpu.hpp"

namespace qmoe {

namespace {

Status cuda_failure(const char* what, cudaError_t err) {
  (void)cudaGetLastError();  // a failed runtime call must not surface as a later launch error
  return Status(StatusCode::kCudaError, std::string(what) + ": " + cudaGetErrorString(err));
}

/// The device decoder of one descriptor, or an error naming the expert.
Status check_desc(const ExpertDesc& d, int64_t e, int* decoder) {
  const std::string who = "DeviceExpertBank::upload: expert " + std::to_string(e);
  if (d.kind == static_cast<uint8_t>(FormatKind::kInt) && d.groups_pad != 1 && d.group_size != 32 &&
      d.group_size != 64 && d.group_size != 128)
    return invalid_argument(who + ": group size " + std::to_string(d.group_size) +
                            " is not 32, 64, 128 or per-channel");
  const int id = dev::decoder_id(d);
  if (id < 0) return unsupported(who + " has a format no device decoder handles");
  if (d.tile_bytes != dev::decoder_tile_bytes(id))
    return invalid_argument(who + ": descriptor tile_bytes " + std::to_string(d.tile_bytes) +
                            " does not match its format");
  *decoder = id;
  return Status::ok();
}

}  // namespace

bool has_device_decoder(const FormatSpec& f) {
  PackedLayout layout;  // any valid dims: the decoder depends on the format alone
  if (!packed_layout(f, kTileRows, kTileCols, &layout).is_ok()) return false;
  return dev::decoder_id(make_expert_desc(f, layout, 0)) >= 0;
}

Status current_device(int* device) {
  if (device == nullptr) return invalid_argument("current_device: null output");
  const cudaError_t err = cudaGetDevice(device);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    return unsupported(std::string("current_device: ") + cudaGetErrorString(err));
  }
  return Status::ok();
}

bool gpu_available() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return count > 0;
}

DeviceExpertBank::~DeviceExpertBank() {
  release();
}

DeviceExpertBank::DeviceExpertBank(DeviceExpertBank&& o) noexcept
    : view_(o.view_), blob_(o.blob_), descs_(o.descs_), bytes_(o.bytes_), device_(o.device_) {
  o.view_ = DeviceBankView{};
  o.blob_ = o.descs_ = nullptr;
  o.bytes_ = 0;
}

DeviceExpertBank& DeviceExpertBank::operator=(DeviceExpertBank&& o) noexcept {
  if (this != &o) {
    release();
    view_ = o.view_;
    blob_ = o.blob_;
    descs_ = o.descs_;
    bytes_ = o.bytes_;
    device_ = o.device_;
    o.view_ = DeviceBankView{};
    o.blob_ = o.descs_ = nullptr;
    o.bytes_ = 0;
  }
  return *this;
}

void DeviceExpertBank::release() {
  // Free on the device that holds the bank (the caller may have made another one current since
  // the upload), then give the caller back its own. A failed call here clears its error, which
  // must not surface as a later launch's.
  auto succeeded = [](cudaError_t err) {
    if (err != cudaSuccess) (void)cudaGetLastError();
    return err == cudaSuccess;
  };
  int current = -1;
  const bool switched = blob_ != nullptr && succeeded(cudaGetDevice(&current)) &&
                        device_ != current && succeeded(cudaSetDevice(device_));
  for (void* p : {blob_, descs_})
    if (p != nullptr) (void)succeeded(cudaFree(p));
  if (switched) (void)succeeded(cudaSetDevice(current));
  blob_ = descs_ = nullptr;
  view_ = DeviceBankView{};
  bytes_ = 0;
}

Status DeviceExpertBank::upload(const ExpertBank& bank, DeviceExpertBank* out) {
  if (out == nullptr) return invalid_argument("DeviceExpertBank::upload: null output");
  if (bank.num_experts() < 1) return invalid_argument("DeviceExpertBank::upload: empty bank");
  std::vector<uint8_t> image;
  std::vector<ExpertDesc> descs;
  QMOE_RETURN_IF_ERROR(bank.build_image(&image, &descs));
  uint32_t mask = 0;
  for (size_t e = 0; e < descs.size(); ++e) {
    int id = 0;
    QMOE_RETURN_IF_ERROR(check_desc(descs[e], static_cast<int64_t>(e), &id));
    mask |= 1u << id;
  }
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) {
    (void)cudaGetLastError();
    return unsupported("DeviceExpertBank::upload: no CUDA device");
  }

  DeviceExpertBank fresh;  // frees whatever was allocated if a later step fails
  fresh.device_ = device;
  const size_t desc_bytes = descs.size() * sizeof(ExpertDesc);
  cudaError_t err = cudaMalloc(&fresh.blob_, image.size());
  if (err != cudaSuccess) return cuda_failure("DeviceExpertBank::upload: cudaMalloc", err);
  err = cudaMalloc(&fresh.descs_, desc_bytes);
  if (err != cudaSuccess) return cuda_failure("DeviceExpertBank::upload: cudaMalloc", err);
  err = cudaMemcpy(fresh.blob_, image.data(), image.size(), cudaMemcpyHostToDevice);
  if (err != cudaSuccess) return cuda_failure("DeviceExpertBank::upload: cudaMemcpy", err);
  err = cudaMemcpy(fresh.descs_, descs.data(), desc_bytes, cudaMemcpyHostToDevice);
  if (err != cudaSuccess) return cuda_failure("DeviceExpertBank::upload: cudaMemcpy", err);

  fresh.bytes_ = static_cast<int64_t>(image.size() + desc_bytes);
  fresh.view_.blob = static_cast<const uint8_t*>(fresh.blob_);
  fresh.view_.descs = static_cast<const ExpertDesc*>(fresh.descs_);
  fresh.view_.num_experts = static_cast<int32_t>(bank.num_experts());
  fresh.view_.n = bank.n();
  fresh.view_.k = bank.k();
  fresh.view_.format_mask = mask;
  *out = std::move(fresh);
  return Status::ok();
}

}  // namespace qmoe
