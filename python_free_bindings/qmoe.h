/* qmoe.h — the C ABI of qmoe: quantize expert weights, inspect and dequantize them, build
 * expert banks and run the grouped expert GEMM (CPU reference or CUDA) from plain C.
 *
 * Plain C99. No C++ types and no exceptions cross this boundary; every fallible call returns
 * a qmoe_status_t and, on failure, leaves a message for qmoe_last_error(). A failing call
 * writes none of its outputs. Tensors are DLPack DLTensor views (dlpack/dlpack.h) that the
 * library only borrows for the duration of the call. Matrices are row-major, shapes are
 * written [rows, cols]. See docs/c_abi.md for linking, ownership and threading rules.
 */
#ifndef QMOE_H_
#define QMOE_H_

#include <dlpack/dlpack.h>
#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define QMOE_API
#else
#define QMOE_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- versions and errors ------------------------------------------------------------ */

/** Version of this header's ABI; bumped on any incompatible change. Compare it with
 *  qmoe_abi_version() to detect a header/library mismatch. */
#define QMOE_ABI_VERSION 1

/** Library version "major.minor.patch" (static storage, never NULL). */
QMOE_API const char* qmoe_version(void);
/** QMOE_ABI_VERSION of the library actually loaded. */
QMOE_API int qmoe_abi_version(void);

/* Every enum below ends with a ..._FORCE_INT32 enumerator, never a valid value: it fixes the
 * enum's size at 32 bits in every compiler (as Vulkan does). The library reads an enum
 * argument as a plain integer, so any value a C caller passes is defined behaviour: values
 * other than the listed ones give QMOE_STATUS_INVALID_ARGUMENT ("unknown" from
 * qmoe_status_name). */

/** Result of every fallible call; mirrors qmoe::StatusCode value for value. */
typedef enum {
  QMOE_STATUS_OK = 0,
  QMOE_STATUS_INVALID_ARGUMENT = 1, /**< the call is malformed: null, shape, dtype, device */
  QMOE_STATUS_UNSUPPORTED = 2,      /**< well-formed, but not available here (e.g. no CUDA) */
  QMOE_STATUS_OUT_OF_RANGE = 3,     /**< a value is not representable, or out of memory */
  QMOE_STATUS_CUDA_ERROR = 4,       /**< a CUDA runtime call failed */
  QMOE_STATUS_INTERNAL = 5,         /**< a bug in qmoe */
  QMOE_STATUS_FORCE_INT32 = 0x7fffffff
} qmoe_status_t;

/** Message of the last call on this thread that failed ("" if none has). Calls that succeed
 *  leave it unchanged. The pointer stays valid until the next failing call on this thread. */
QMOE_API const char* qmoe_last_error(void);
/** Short name of a status ("ok", "invalid argument", ...); "unknown" for other values. */
QMOE_API const char* qmoe_status_name(qmoe_status_t status);

/* ---- formats ------------------------------------------------------------------------ */

/** Bytes (NUL included) that hold any canonical format string. */
#define QMOE_FORMAT_STRING_MAX 32

/** Number of formats the library supports; index them with qmoe_format_name. */
QMOE_API int64_t qmoe_format_count(void);
/** Canonical string of format `index` in [0, qmoe_format_count()) in a stable order, e.g.
 *  "int4:g128"; NULL when index is out of range. Static storage. */
QMOE_API const char* qmoe_format_name(int64_t index);

/** Parses `format` (e.g. "int4:g128:asym") and writes its canonical string, NUL-terminated,
 *  into buf[buf_bytes]; *length (if not NULL) receives its strlen. buf may be NULL when
 *  buf_bytes is 0 (a length query). Errors: INVALID_ARGUMENT (unknown format, buf too small). */
QMOE_API qmoe_status_t qmoe_format_canonical(const char* format, char* buf, size_t buf_bytes,
                                             size_t* length);
/** Exact storage bits per weight of an unpadded [n, k_in] matrix in `format`, scales and
 *  zeros included (docs/formats.md §1). Errors: INVALID_ARGUMENT (unknown format, k_in < 1
 *  or not a multiple of the group size). */
QMOE_API qmoe_status_t qmoe_format_bits_per_weight(const char* format, int64_t k_in,
                                                   double* bits_per_weight);

/* ---- packed matrices ---------------------------------------------------------------- */

/** One weight matrix W[n, k] quantized and packed in the kernel layout. Immutable. */
typedef struct qmoe_packed qmoe_packed_t;

typedef enum {
  QMOE_QUANT_RTN = 0,     /**< round to nearest, range = group min/max (absmax if :sym) */
  QMOE_QUANT_RTN_MSE = 1, /**< round to nearest, range shrunk per group to minimise MSE */
  QMOE_QUANT_GPTQ = 2,    /**< GPTQ error feedback; needs calibration activations */
  QMOE_QUANT_FORCE_INT32 = 0x7fffffff
} qmoe_quant_method_t;

/** Quantizes w ([n, k] float32, kDLCPU) into `format` with `method`; *out receives a new
 *  handle (free with qmoe_packed_destroy). calib ([rows, k] float32, kDLCPU) is required by
 *  QMOE_QUANT_GPTQ and must be NULL otherwise; inputs never active in it (a zero column) get
 *  weight 0, as in reference GPTQ. Errors: INVALID_ARGUMENT (tensors, an empty w or a calib
 *  of 0 rows, unknown format or method, k not a multiple of the group, NaN/Inf, a calib that
 *  activates no input), OUT_OF_RANGE (fp16
 *  overflow). */
QMOE_API qmoe_status_t qmoe_quantize(const DLTensor* w, const char* format,
                                     qmoe_quant_method_t method, const DLTensor* calib,
                                     qmoe_packed_t** out);
/** Frees a packed matrix; NULL is a no-op. */
QMOE_API void qmoe_packed_destroy(qmoe_packed_t* packed);

/** Logical shape [n, k] of a packed matrix. Errors: INVALID_ARGUMENT (null pointers). */
QMOE_API qmoe_status_t qmoe_packed_shape(const qmoe_packed_t* packed, int64_t* n, int64_t* k);
/** Size in bytes of the packed blob (codes + scales + zeros, 256-byte aligned sections).
 *  Errors: INVALID_ARGUMENT (null pointers). */
QMOE_API qmoe_status_t qmoe_packed_bytes(const qmoe_packed_t* packed, int64_t* bytes);
/** Read-only pointer to the packed blob (qmoe_packed_bytes long), valid while the handle
 *  lives; the layout is docs/formats.md §2. Errors: INVALID_ARGUMENT (null pointers). */
QMOE_API qmoe_status_t qmoe_packed_data(const qmoe_packed_t* packed, const void** data);
/** Canonical format string of a packed matrix, written like qmoe_format_canonical.
 *  Errors: INVALID_ARGUMENT (null packed, buf too small). */
QMOE_API qmoe_status_t qmoe_packed_format(const qmoe_packed_t* packed, char* buf, size_t buf_bytes,
                                          size_t* length);

/** Reorders a gate/up weight matrix for QMOE_EPILOGUE_SILU_MUL_INTERLEAVED (qmoe_grouped_gemm_ex):
 *  w13 [2I, k] float32 (kDLCPU) with the gate projection in rows [0, I) and the up projection in
 *  rows [I, 2I) -> out (the same shape, float32, kDLCPU; may be w13 itself) with row 16 s + j =
 *  gate row 8 s + j and row 16 s + 8 + j = up row 8 s + j (j < 8). Quantize the result
 *  (qmoe_quantize treats rows independently: each row gets the codes and scales it gets in the
 *  original order). Errors: INVALID_ARGUMENT (tensors, 2I not a positive multiple of 16); out
 *  is written only on success. Since 0.4.0. */
QMOE_API qmoe_status_t qmoe_interleave_gate_up(const DLTensor* w13, DLTensor* out);

/** Dequantizes on the CPU into out ([n, k], kDLCPU): float32 gets the exact weights
 *  (q - z) * s; float16 gets them rounded once to nearest even, bfloat16 gets
 *  (q - z) * RNE_bf16(s) rounded once (docs/formats.md §1), bit-identical to what the GPU
 *  kernels use. Errors: INVALID_ARGUMENT (null packed, out's dtype/shape/device). */
QMOE_API qmoe_status_t qmoe_dequantize(const qmoe_packed_t* packed, DLTensor* out);

/* ---- expert banks and the CPU reference --------------------------------------------- */

/** E experts of one projection, all [n, k], each in its own format, on the host. Immutable. */
typedef struct qmoe_bank qmoe_bank_t;

/** Creates a bank from copies of experts[0, num_experts); the handles stay the caller's.
 *  Errors: INVALID_ARGUMENT (null pointers, num_experts < 1, experts of different shapes). */
QMOE_API qmoe_status_t qmoe_bank_create(qmoe_packed_t* const* experts, int64_t num_experts,
                                        qmoe_bank_t** out);
/** Frees a bank; NULL is a no-op. */
QMOE_API void qmoe_bank_destroy(qmoe_bank_t* bank);
/** Number of experts E and expert shape [n, k]. Errors: INVALID_ARGUMENT (null pointers). */
QMOE_API qmoe_status_t qmoe_bank_shape(const qmoe_bank_t* bank, int64_t* num_experts, int64_t* n,
                                       int64_t* k);

/** CPU reference grouped GEMM over tokens sorted by expert: rows [offsets[e], offsets[e+1])
 *  of x ([m, k] bfloat16 or float16, kDLCPU) times W_e^T (rounded to x's type) into y
 *  ([m, n] float64, kDLCPU), accumulated in float64. expert_offsets: E+1 int32, non-decreasing,
 *  offsets[0] = 0, offsets[E] = m. Errors: INVALID_ARGUMENT (tensors, offsets). */
QMOE_API qmoe_status_t qmoe_ref_grouped_gemm(const qmoe_bank_t* bank, const DLTensor* x,
                                             const int32_t* expert_offsets, DLTensor* y);

/* ---- CUDA ----------------------------------------------------------------------------
 * Without a usable device (or in a library built without CUDA) every call here returns
 * QMOE_STATUS_UNSUPPORTED before looking at its arguments. */

/** A bank copied to the current CUDA device. Immutable. */
typedef struct qmoe_device_bank qmoe_device_bank_t;

/** Uploads a host bank to the current device (allocates, synchronous); qmoe_grouped_gemm runs it
 *  on that device only (INVALID_ARGUMENT on another: upload a copy to each device). Errors:
 *  UNSUPPORTED, INVALID_ARGUMENT (null pointers), CUDA_ERROR (allocation or copy failed). */
QMOE_API qmoe_status_t qmoe_device_bank_upload(const qmoe_bank_t* bank, qmoe_device_bank_t** out);
/** Frees a device bank (its device memory too), whatever device is current; NULL is a no-op. */
QMOE_API void qmoe_device_bank_destroy(qmoe_device_bank_t* bank);

typedef enum {
  QMOE_KERNEL_AUTO = 0,    /**< by decode_max_tokens: 0 = one kernel per call, chosen from
                              the mean tokens per expert; 1..64 = per expert on device, decode
                              if its tokens <= decode_max_tokens (docs/dispatch.md §4) */
  QMOE_KERNEL_DECODE = 1,  /**< weight-streaming kernel for every expert */
  QMOE_KERNEL_PREFILL = 2, /**< tensor-core tile kernel for every expert */
  QMOE_KERNEL_FORCE_INT32 = 0x7fffffff
} qmoe_kernel_t;

/** The C++ API's default decode_max_tokens for QMOE_KERNEL_AUTO (valid range 0..64; 0 = the
 *  kernel chosen per call). */
#define QMOE_DEFAULT_DECODE_MAX_TOKENS 0

/** y[offsets[e]:offsets[e+1]] = x[same rows] * W_e^T for every expert, fp32 accumulation,
 *  output rounded to y's type. x [m, k] and y [m, n]: both bfloat16 or both float16;
 *  expert_offsets: int32 [E+1] read on device only, not validated (each expert's rows are
 *  clamped into [0, m]: bad offsets never reach outside x and y; a table that is not
 *  non-decreasing leaves its experts' results, and those of experts whose rows overlap,
 *  unspecified); offsets[0] need not be 0, and rows of y outside [offsets[0], offsets[E]) are
 *  not written; all kDLCUDA on the current device, the one the bank was uploaded to (device_id
 *  and the bank's device checked: INVALID_ARGUMENT otherwise); x and y data (after
 *  byte_offset) and the workspace 16-byte aligned (checked when the kernels are enqueued, not
 *  by the size query); with m = 0 nothing is enqueued and x and y data may be NULL.
 *  decode_max_tokens must be 0..64 whatever the kernel choice.
 *  CUB-style: with workspace NULL only *workspace_bytes is set (the tensor and option checks);
 *  the size depends on the tensors' shapes and the options (x's digits for the decode kernel's
 *  integer decode of int experts, which this call takes by its default rule, as
 *  qmoe::IntegerDecode::kAuto); otherwise *workspace_bytes is the workspace size and the
 *  kernels are enqueued on `stream`
 *  (a cudaStream_t; NULL = default stream). Never allocates or synchronises (graph-safe).
 *  Errors: UNSUPPORTED, INVALID_ARGUMENT (tensors, options, workspace too small),
 *  CUDA_ERROR (launch). */
QMOE_API qmoe_status_t qmoe_grouped_gemm(const qmoe_device_bank_t* bank, const DLTensor* x,
                                         const DLTensor* expert_offsets, DLTensor* y,
                                         qmoe_kernel_t kernel, int32_t decode_max_tokens,
                                         void* workspace, size_t* workspace_bytes, void* stream);

/** How the decode kernel multiplies int experts (qmoe::IntegerDecode,
 *  docs/dispatch.md §5). */
typedef enum {
  QMOE_INTEGER_DECODE_AUTO = 0, /**< the integer decode where it measured faster (the default) */
  QMOE_INTEGER_DECODE_OFF = 1,  /**< codes in bf16 / fp16 mma, scales on the fp32 sums */
  QMOE_INTEGER_DECODE_ON = 2,   /**< codes in integer mma, x as 16-bit fixed point per k-tile */
  QMOE_INTEGER_DECODE_FORCE_INT32 = 0x7fffffff
} qmoe_integer_decode_t;

/** What qmoe_grouped_gemm_ex writes to y (qmoe::Epilogue, docs/dispatch.md §8). */
typedef enum {
  QMOE_EPILOGUE_NONE = 0, /**< y [m, n] = x W^T (the default) */
  /** The gated SiLU of a gate/up bank whose rows interleave gate and up by 8 (row 16 s + j =
   *  gate row 8 s + j, row 16 s + 8 + j = up row 8 s + j, j < 8; qmoe_interleave_gate_up), n a
   *  multiple of 16: y [m, n / 2] = RNE(SiLU(gate) * up), fused in the decode kernel. */
  QMOE_EPILOGUE_SILU_MUL_INTERLEAVED = 1,
  QMOE_EPILOGUE_FORCE_INT32 = 0x7fffffff
} qmoe_epilogue_t;

/** Which tile kernel takes the experts the decode kernel leaves (qmoe::TileKernel,
 *  docs/dispatch.md §4). */
typedef enum {
  QMOE_TILE_KERNEL_AUTO = 0,     /**< by the device and the call's mean (the default) */
  QMOE_TILE_KERNEL_MMA_SYNC = 1, /**< the mma.sync kernel (the sm_80 path) on every device */
  /** the wgmma kernel for every expert; UNSUPPORTED where the device lacks its sm_90a code */
  QMOE_TILE_KERNEL_WGMMA = 2,
  QMOE_TILE_KERNEL_FORCE_INT32 = 0x7fffffff
} qmoe_tile_kernel_t;

/** Options of qmoe_grouped_gemm_ex (the C++ API's GroupedGemmArgs fields). Fill them with
 *  qmoe_grouped_gemm_options_init (the defaults, and struct_size), then change what you need. */
typedef struct {
  /** sizeof(qmoe_grouped_gemm_options_t) as the caller was compiled. The library takes the
   *  sizes of its own and of earlier headers (0.3.0's ends before `epilogue`, 0.4.0's before
   *  `tile_kernel`; the fields a caller's header lacks keep their defaults) and rejects any other
   * (QMOE_STATUS_INVALID_ARGUMENT). */
  uint32_t struct_size;
  qmoe_kernel_t kernel;                 /**< QMOE_KERNEL_AUTO */
  int32_t decode_max_tokens;            /**< QMOE_DEFAULT_DECODE_MAX_TOKENS (0..64) */
  qmoe_integer_decode_t integer_decode; /**< QMOE_INTEGER_DECODE_AUTO */
  /** 0 (default) or 1: the promise that expert_offsets and the bank are not written by the
   *  previous kernel in the stream and were final when it started (or, where it was itself
   *  launched early, as qmoe's kernels are, when it waited for its predecessor); e.g. a
   *  layer's down projection called right after its gate/up projection on the same offsets.
   *  On sm_90+ the decode kernel then builds its schedule and starts its first weight copies
   *  while that kernel finishes (docs/dispatch.md §7). A false promise is a race. */
  int32_t offsets_precede_previous_kernel;
  qmoe_epilogue_t epilogue;       /**< QMOE_EPILOGUE_NONE (since 0.4.0) */
  qmoe_tile_kernel_t tile_kernel; /**< QMOE_TILE_KERNEL_AUTO (since 0.5.0) */
} qmoe_grouped_gemm_options_t;

/** Writes the default options, struct_size included; NULL is a no-op. */
QMOE_API void qmoe_grouped_gemm_options_init(qmoe_grouped_gemm_options_t* options);

/** qmoe_grouped_gemm with every option of the C++ API; options NULL = the defaults. The same
 *  contract and errors, plus INVALID_ARGUMENT for an unknown struct_size, integer_decode,
 *  epilogue or tile_kernel, UNSUPPORTED for QMOE_TILE_KERNEL_WGMMA where the device lacks it,
 * offsets_precede_previous_kernel other than 0 or 1, and, with QMOE_EPILOGUE_SILU_MUL_INTERLEAVED,
 * n not a multiple of 16 or y not [m, n / 2]. */
QMOE_API qmoe_status_t qmoe_grouped_gemm_ex(const qmoe_device_bank_t* bank, const DLTensor* x,
                                            const DLTensor* expert_offsets, DLTensor* y,
                                            const qmoe_grouped_gemm_options_t* options,
                                            void* workspace, size_t* workspace_bytes, void* stream);

/** Arms a qmoe_grouped_gemm workspace (at least 256 bytes) for the decode kernel's on-demand
 *  work hand-out: writes its first 16 bytes on `stream` (a cudaStream_t; NULL = default
 *  stream; capturable). Call once after allocating it, and again after anything but qmoe wrote
 *  those bytes: calls keep a work counter there between them. A workspace never prepared gives
 *  the same results with work dealt round-robin (multi-round decode launches slower).
 *  Errors: UNSUPPORTED, INVALID_ARGUMENT (NULL or not 16-byte aligned workspace, fewer than
 *  256 bytes), CUDA_ERROR. */
QMOE_API qmoe_status_t qmoe_prepare_workspace(void* workspace, size_t workspace_bytes,
                                              void* stream);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* QMOE_H_ */
