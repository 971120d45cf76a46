// qmoe/io.hpp — checkpoint files: a strict safetensors reader/writer and the packed expert
// bank convention on top of it (docs/files.md). Every byte of a file is validated before
// anything is returned: a truncated or corrupt file is a Status, never a crash.
#pragma once
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "qmoe/packed.hpp"
#include "qmoe/status.hpp"

namespace qmoe {

/// Element types of safetensors tensors (the spec's strings: "BOOL", "U8", ..., "F64").
enum class TensorDType : uint8_t {
  kBool,
  kU8,
  kI8,
  kF8E4M3,
  kF8E5M2,
  kI16,
  kU16,
  kF16,
  kBF16,
  kI32,
  kU32,
  kF32,
  kI64,
  kU64,
  kF64,
};

/// The safetensors spelling of t ("F32", "BF16", ...).
const char* tensor_dtype_name(TensorDType t);
/// Bytes per element of t (1, 2, 4 or 8).
int64_t tensor_dtype_bytes(TensorDType t);
/// Parses a safetensors dtype string (case-sensitive). Errors: kInvalidArgument naming it.
Status parse_tensor_dtype(const std::string& text, TensorDType* out);

/// One tensor of a parsed file. shape may be empty (a scalar: 1 element) or hold zeros.
struct TensorInfo {
  TensorDType dtype = TensorDType::kU8;
  std::vector<int64_t> shape;
  int64_t offset = 0;  ///< bytes from the start of SafetensorsFile::buffer (not the data section)
  int64_t bytes = 0;   ///< elements x dtype bytes
};

/// A whole safetensors file held in memory: the raw bytes and the validated header.
struct SafetensorsFile {
  std::vector<uint8_t> buffer;  ///< the entire file, header included
  std::map<std::string, TensorInfo> tensors;
  std::map<std::string, std::string> metadata;  ///< the optional "__metadata__" object

  /// First byte of t's data (unaligned in general: copy with memcpy).
  const uint8_t* data(const TensorInfo& t) const { return buffer.data() + t.offset; }
};

/// Largest JSON header accepted, in bytes: bounds the work a hostile file can cause.
constexpr uint64_t kMaxSafetensorsHeaderBytes = uint64_t{100} << 20;

/// Validates `bytes` as a safetensors file and takes ownership of them. Checks: header length
/// vs size (and <= kMaxSafetensorsHeaderBytes), UTF-8 strict JSON of the documented subset, known
/// dtypes, shape x dtype size == data_offsets span without overflow, offsets contiguous from 0
/// to the end of the file (no gap, no overlap), unique non-empty names. Errors:
/// kInvalidArgument naming the tensor or header byte; out of memory: kOutOfRange. *out
/// untouched on error.
Status parse_safetensors(std::vector<uint8_t> bytes, SafetensorsFile* out);
/// Reads the file at `path` and parse_safetensors it: its 8-byte length and header first, so a
/// file they do not describe (whatever its size) is refused before its data is read. Errors
/// also for a missing or unreadable file, a short read and a file whose size changes while it
/// is read (kInvalidArgument with the path and the system's reason). One pass over the file.
Status read_safetensors(const std::string& path, SafetensorsFile* out);

/// Converts `count` elements of float tensor `name` (F32, F16, BF16 or F64), starting at flat
/// element `first`, to float32 (F64 rounds to nearest). Errors: unknown name, other dtypes,
/// range outside the tensor, null out (kInvalidArgument).
Status tensor_to_float(const SafetensorsFile& file, const std::string& name, int64_t first,
                       int64_t count, float* out);

/// Collects tensors (views) and metadata, then writes one safetensors file. Tensors are laid
/// out by decreasing element size (then insertion order), so each starts aligned to its
/// element size; the header is space-padded to a multiple of 8 bytes.
class SafetensorsWriter {
 public:
  /// Adds a view of prod(shape) x dtype bytes at `data`, which must stay valid until the last
  /// serialize/write. Errors (writer unchanged): empty or "__metadata__" name, name already
  /// added, negative dims, size overflow, null data for a non-empty tensor, name not UTF-8.
  Status add_tensor(const std::string& name, TensorDType dtype, std::vector<int64_t> shape,
                    const void* data);
  /// Adds a metadata entry. Errors (writer unchanged): key present with a different value,
  /// key or value not UTF-8.
  Status add_metadata(const std::string& key, const std::string& value);
  bool has_tensor(const std::string& name) const;
  /// Adds every tensor and metadata entry of `other` (its views, same lifetime rule), or none.
  /// Errors (writer unchanged): a tensor name already added, a metadata key set differently.
  Status merge(const SafetensorsWriter& other);

  /// The whole file image. Errors: header above kMaxSafetensorsHeaderBytes, tensors totalling
  /// more than int64 bytes (kInvalidArgument), out of memory (kOutOfRange).
  Status serialize(std::vector<uint8_t>* out) const;
  /// Streams the image to a temporary file beside `path` (`<path>.tmp.<pid>.<n>`, created
  /// exclusively: concurrent writers, and a file of that name, are never overwritten), then
  /// renames it to `path`, so a failure never leaves a partial file at `path` and a reader sees
  /// a whole image, the last rename's. Errors: as serialize; I/O: kInvalidArgument with the
  /// system's reason (the temporary file removed).
  Status write(const std::string& path) const;

 private:
  struct Entry {
    std::string name;
    TensorDType dtype;
    std::vector<int64_t> shape;
    const void* data;
    int64_t bytes;
  };
  Status check_metadata(const std::string& key, const std::string& value) const;
  /// The length + header bytes, and the tensors in data order.
  Status prefix(std::string* bytes, std::vector<const Entry*>* order) const;

  std::vector<Entry> tensors_;  ///< in insertion order
  std::set<std::string> names_;
  std::map<std::string, std::string> metadata_;
};

// ---- packed expert banks in safetensors (docs/files.md) ----------------------------------

/// Version of the bank convention, stored as metadata "qmoe.version". 2: scales and zeros in
/// parameter blocks (docs/formats.md §2.5); version 1 files (row-major) are not read.
constexpr int kBankFileVersion = 2;

/// Adds bank `name` (e.g. "layers.0.w13"): tensor "<name>.expert.<e>" (U8 [bytes], the packed
/// blob verbatim) per expert, metadata "<name>.format.<e>", "<name>.shape" = "n,k",
/// "<name>.experts" = E and "qmoe.version". The bank's blobs must outlive the writer's use.
/// Errors (writer unchanged): empty name, a tensor or metadata key that collides.
Status save_bank(SafetensorsWriter* writer, const std::string& name, const ExpertBank& bank);
/// Writes a file holding only bank `name`. Errors: as save_bank and SafetensorsWriter::write.
Status save_bank(const std::string& path, const std::string& name, const ExpertBank& bank);

/// Loads bank `name`, re-validating everything: version, metadata syntax, one U8 tensor of the
/// exact packed_layout size per expert and no stray ones, and every blob through unpack
/// (padding, scales, zeros, gap bytes). Errors: kInvalidArgument naming the bank and expert;
/// kUnsupported for another qmoe.version. *out untouched on error.
Status load_bank(const SafetensorsFile& file, const std::string& name, ExpertBank* out);
/// Names of the banks a file declares (metadata "<name>.experts"), sorted; none without
/// "qmoe.version". Declared is not valid: load_bank each. Errors: null out, out of memory.
Status bank_names(const SafetensorsFile& file, std::vector<std::string>* out);

}  // namespace qmoe
