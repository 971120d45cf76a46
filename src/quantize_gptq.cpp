// GPTQ (Frantar et al. 2022, "GPTQ: Accurate Post-Training Quantization for Generative
// Pre-trained Transformers"): columns are quantized one at a time and each column's rounding
// error is fed back into the columns not yet quantized through the upper Cholesky factor U of
// H^-1, H = X^T X, so the layer output X W^T moves as little as possible. Linear algebra in
// double; every O(K^3) and O(N K^2) part runs through one cache-blocked multiply-accumulate.
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <numeric>
#include <string>

#include "src/quantize_internal.hpp"

namespace qmoe::quant {

namespace {

/// Which part of a product is needed / nonzero, so triangular work is not done twice.
enum class Triangle : uint8_t {
  kNone,
  kUpperC,  ///< only C[i][j] with j >= i is needed (a few entries below it are written too)
  kUpperA,  ///< A is upper triangular: A[i][p] = 0 for p < i is skipped
};

// Blocking of matmul_acc. Rows of C updated together, so each B value loaded feeds 4 FMAs.
constexpr int64_t kMicroRows = 4;
// Columns of C per tile: 4 rows x 256 doubles = 8 KiB of C stay in L1 over the depth loop.
constexpr int64_t kColTile = 256;
// Depth per tile: a 128 x 256 panel of B (256 KiB) stays in L2 across a row block.
constexpr int64_t kDepthTile = 128;
// Rows of C per parallel work item.
constexpr int64_t kRowBlock = 64;
// Width of the Cholesky / triangular-inverse panels (serial, O(K^2 * kPanel) work).
constexpr int64_t kPanel = 64;
// Calibration rows converted to double at a time when X^T X is formed.
constexpr int64_t kCalibChunk = 256;

/// c[i][j_lo..j_hi) += alpha * sum_p a(i, p) b[p][j] for `rows` (<= 4) consecutive rows i, p in
/// [p_lo, p_hi). a points at a(row 0, 0), c at row 0 of C.
void micro_kernel(int64_t rows, int64_t p_lo, int64_t p_hi, int64_t j_lo, int64_t j_hi,
                  double alpha, const double* a, int64_t a_row, int64_t a_col, const double* b,
                  int64_t ldb, double* c, int64_t ldc) {
  if (rows == kMicroRows) {
    double* c0 = c;
    double* c1 = c + ldc;
    double* c2 = c + 2 * ldc;
    double* c3 = c + 3 * ldc;
    for (int64_t p = p_lo; p < p_hi; ++p) {
      const double a0 = alpha * a[p * a_col], a1 = alpha * a[a_row + p * a_col];
      const double a2 = alpha * a[2 * a_row + p * a_col], a3 = alpha * a[3 * a_row + p * a_col];
      const double* bp = b + p * ldb;
#pragma omp simd
      for (int64_t j = j_lo; j < j_hi; ++j) {
        const double bj = bp[j];
        c0[j] += a0 * bj;
        c1[j] += a1 * bj;
        c2[j] += a2 * bj;
        c3[j] += a3 * bj;
      }
    }
    return;
  }
  for (int64_t r = 0; r < rows; ++r) {
    double* cr = c + r * ldc;
    for (int64_t p = p_lo; p < p_hi; ++p) {
      const double ar = alpha * a[r * a_row + p * a_col];
      const double* bp = b + p * ldb;
#pragma omp simd
      for (int64_t j = j_lo; j < j_hi; ++j) cr[j] += ar * bp[j];
    }
  }
}

/// C[m, n] += alpha * A[m, depth] * B[depth, n]. B and C row-major (leading dims ldb, ldc);
/// A read as a[i * a_row + p * a_col], so a transposed operand needs no copy.
void matmul_acc(int64_t m, int64_t n, int64_t depth, double alpha, const double* a, int64_t a_row,
                int64_t a_col, const double* b, int64_t ldb, double* c, int64_t ldc, Triangle tri) {
  const int64_t row_blocks = (m + kRowBlock - 1) / kRowBlock;
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t rb = 0; rb < row_blocks; ++rb) {
    const int64_t i_lo = rb * kRowBlock, i_hi = std::min(m, i_lo + kRowBlock);
    for (int64_t j0 = tri == Triangle::kUpperC ? i_lo : 0; j0 < n; j0 += kColTile) {
      const int64_t j1 = std::min(n, j0 + kColTile);
      for (int64_t p0 = tri == Triangle::kUpperA ? i_lo : 0; p0 < depth; p0 += kDepthTile) {
        const int64_t p1 = std::min(depth, p0 + kDepthTile);
        for (int64_t i = i_lo; i < i_hi; i += kMicroRows) {
          const int64_t j_lo = tri == Triangle::kUpperC ? std::max(j0, i) : j0;
          const int64_t p_lo = tri == Triangle::kUpperA ? std::max(p0, i) : p0;
          if (j_lo >= j1 || p_lo >= p1) continue;
          micro_kernel(std::min(kMicroRows, i_hi - i), p_lo, p1, j_lo, j1, alpha, a + i * a_row,
                       a_row, a_col, b, ldb, c + i * ldc, ldc);
        }
      }
    }
  }
}

/// In place: the upper triangle of a [k, k] becomes R with R^T R = A (lower triangle zeroed).
/// Right-looking blocked: a panel of rows is finished serially, the trailing matrix is
/// updated by matmul_acc. False when A is not positive definite.
bool cholesky_upper(std::vector<double>* a_mat, int64_t k) {
  double* a = a_mat->data();
  for (int64_t kb = 0; kb < k; kb += kPanel) {
    const int64_t e = std::min(k, kb + kPanel);
    for (int64_t j = kb; j < e; ++j) {
      double* rj = a + j * k;
      for (int64_t p = kb; p < j; ++p) {
        const double f = a[p * k + j];
        const double* rp = a + p * k;
#pragma omp simd
        for (int64_t c = j; c < k; ++c) rj[c] -= f * rp[c];
      }
      const double d = rj[j];
      if (!(d > 0.0) || !std::isfinite(d)) return false;
      const double s = std::sqrt(d);
      rj[j] = s;
      for (int64_t c = j + 1; c < k; ++c) rj[c] /= s;
    }
    if (e < k)  // A22 -= R12^T R12, R12 = rows kb..e, columns e..k
      matmul_acc(k - e, k - e, e - kb, -1.0, a + kb * k + e, 1, k, a + kb * k + e, k, a + e * k + e,
                 k, Triangle::kUpperC);
  }
  for (int64_t i = 1; i < k; ++i) std::fill(a + i * k, a + i * k + i, 0.0);
  return true;
}

/// X = R^-1 for an upper-triangular R [k, k] (zero below the diagonal), by block columns:
/// X12 = -X11 R12 X22 (the leading block X11 is already known).
void invert_upper(const std::vector<double>& r_mat, int64_t k, std::vector<double>* x_mat) {
  x_mat->assign(static_cast<size_t>(k * k), 0.0);
  const double* r = r_mat.data();
  double* x = x_mat->data();
  std::vector<double> t;
  for (int64_t jb = 0; jb < k; jb += kPanel) {
    const int64_t je = std::min(k, jb + kPanel), width = je - jb;
    for (int64_t c = jb; c < je; ++c) {  // diagonal block: back substitution, R x = e_c
      x[c * k + c] = 1.0 / r[c * k + c];
      for (int64_t i = c - 1; i >= jb; --i) {
        double s = 0.0;
        for (int64_t l = i + 1; l <= c; ++l) s += r[i * k + l] * x[l * k + c];
        x[i * k + c] = -s / r[i * k + i];
      }
    }
    if (jb == 0) continue;
    t.assign(static_cast<size_t>(jb * width), 0.0);  // T = X11 R12  [jb, width]
    matmul_acc(jb, width, jb, 1.0, x, k, 1, r + jb, k, t.data(), width, Triangle::kUpperA);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < jb; ++i) {
      for (int64_t c = 0; c < width; ++c) {
        double s = 0.0;
        for (int64_t l = 0; l <= c; ++l) s += t[i * width + l] * x[(jb + l) * k + jb + c];
        x[i * k + jb + c] = -s;
      }
    }
  }
}

/// H = X^T X [k, k] from calibration rows, or the caller's H made exactly symmetric.
/// Errors on non-finite entries.
Status build_hessian(const QuantizeOptions& opt, int64_t k, std::vector<double>* h_mat) {
  h_mat->assign(static_cast<size_t>(k * k), 0.0);
  double* h = h_mat->data();
  if (opt.hessian != nullptr) {
    for (int64_t i = 0; i < k * k; ++i) {
      if (!std::isfinite(opt.hessian[i]))
        return invalid_argument("quantize: GPTQ hessian entry (" + std::to_string(i / k) + ", " +
                                std::to_string(i % k) + ") is not finite");
    }
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = 0; j < k; ++j)
        h[i * k + j] = 0.5 * (static_cast<double>(opt.hessian[i * k + j]) + opt.hessian[j * k + i]);
    return Status::ok();
  }
  std::vector<double> x;
  for (int64_t r0 = 0; r0 < opt.calib_rows; r0 += kCalibChunk) {
    const int64_t rows = std::min(kCalibChunk, opt.calib_rows - r0);
    const float* src = opt.calib + r0 * k;
    x.resize(static_cast<size_t>(rows * k));
    for (int64_t i = 0; i < rows * k; ++i) {
      if (!std::isfinite(src[i]))
        return invalid_argument("quantize: GPTQ calibration value (" + std::to_string(r0 + i / k) +
                                ", " + std::to_string(i % k) + ") is not finite");
      x[i] = src[i];
    }
    matmul_acc(k, k, rows, 1.0, x.data(), 1, k, x.data(), k, h, k, Triangle::kUpperC);
  }
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = i + 1; j < k; ++j) h[j * k + i] = h[i * k + j];
  return Status::ok();
}

/// Upper bound of the bytes GPTQ holds at once for [n, k] weights: four [k, k] double
/// matrices while U is formed (H reordered, its Cholesky factor, the factor's inverse, U),
/// plus the double working copy of the weights and their codes.
int64_t gptq_peak_bytes(int64_t n, int64_t k) {
  return 4 * k * k * int64_t{sizeof(double)} + n * k * int64_t{sizeof(double) + sizeof(uint16_t)};
}

/// Int formats: one affine grid (scale, zero) per (row, group), stored into the logical matrix
/// as it is chosen.
class AffineGrids {
 public:
  AffineGrids(const FormatSpec& f, int64_t n, int64_t groups, const GroupSearch& search,
              LogicalMatrix* m)
      : f_(f),
        groups_(groups),
        max_code_((1 << f.bits) - 1),
        search_(search),
        m_(m),
        params_(static_cast<size_t>(n * groups)) {}
  /// Chooses the grid of (r, grp) from the group's current weights x[0, len). False when its
  /// scale overflows fp16.
  bool fit(int64_t r, int64_t grp, const double* x, int64_t len) {
    GroupParams& p = params_[static_cast<size_t>(r * groups_ + grp)];
    if (!find_group_params(x, len, search_, &p)) return false;
    m_->scales[static_cast<size_t>(r * groups_ + grp)] = p.scale_bits;
    if (!f_.symmetric)
      m_->zeros[static_cast<size_t>(r * groups_ + grp)] = static_cast<uint8_t>(p.zero);
    return true;
  }
  int code(int64_t r, int64_t grp, double w) const {
    return quantize_value(w, params_[static_cast<size_t>(r * groups_ + grp)], max_code_);
  }
  double value(int64_t r, int64_t grp, int q) const {
    return dequantize_value(q, params_[static_cast<size_t>(r * groups_ + grp)]);
  }

 private:
  FormatSpec f_;
  int64_t groups_;
  int max_code_;
  GroupSearch search_;
  LogicalMatrix* m_;
  std::vector<GroupParams> params_;
};

/// LUT formats: one table per row (the row is the format's one group), fitted by Lloyd with
/// the inputs' weights diag(H): an input the calibration excites more pulls the table harder.
class TableGrids {
 public:
  TableGrids(const FormatSpec& f, int64_t n, int64_t k, std::vector<double> column_weight,
             LogicalMatrix* m)
      : bits_(f.bits),
        entries_(f.lut_entries()),
        weight_(std::move(column_weight)),
        m_(m),
        tables_(static_cast<size_t>(n)),
        scratch_(static_cast<size_t>(omp_get_max_threads())) {
    for (TableScratch& s : scratch_) s.reserve(k);
  }
  bool fit(int64_t r, int64_t /*grp*/, const double* x, int64_t len) {
    RowTable& t = tables_[static_cast<size_t>(r)];
    if (!fit_row_table(x, weight_.data(), len, bits_, &scratch_[omp_get_thread_num()], &t))
      return false;
    std::copy(t.bits, t.bits + entries_, m_->scales.begin() + r * entries_);
    return true;
  }
  int code(int64_t r, int64_t, double w) const {
    return nearest_entry(w, tables_[static_cast<size_t>(r)]);
  }
  double value(int64_t r, int64_t, int q) const { return tables_[static_cast<size_t>(r)].value[q]; }

 private:
  int bits_, entries_;
  std::vector<double> weight_;  ///< [k], original column order
  LogicalMatrix* m_;
  std::vector<RowTable> tables_;
  std::vector<TableScratch> scratch_;  ///< one per thread
};

/// Physical memory of this machine in bytes, or -1 when the system does not say.
int64_t physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), page_bytes = sysconf(_SC_PAGESIZE);
  return pages > 0 && page_bytes > 0 ? int64_t{pages} * page_bytes : -1;
}

}  // namespace

Status inverse_cholesky_upper(const std::vector<double>& h, int64_t k, std::vector<double>* u) {
  // U^T U = H^-1 <=> H = V V^T with V = U^-1 upper. Reversing row and column order (J)
  // turns that into an ordinary Cholesky: J H J = (J V J)(J V J)^T with J V J lower, so
  // J H J = R^T R gives V = J R^T J and U = J R^-T J. One Cholesky and one triangular
  // inverse instead of inverting H and factoring again.
  std::vector<double> r(static_cast<size_t>(k * k));
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < k; ++j) r[i * k + j] = h[(k - 1 - i) * k + (k - 1 - j)];
  if (!cholesky_upper(&r, k))
    return invalid_argument("quantize: GPTQ Hessian is not positive definite after damping");
  std::vector<double> r_inv;
  invert_upper(r, k, &r_inv);
  u->assign(static_cast<size_t>(k * k), 0.0);
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = i; j < k; ++j) (*u)[i * k + j] = r_inv[(k - 1 - j) * k + (k - 1 - i)];
  return Status::ok();
}

Status quantize_gptq(const float* w, int64_t n, int64_t k, const FormatSpec& f,
                     const GroupSearch& search, const QuantizeOptions& opt, LogicalMatrix* out) {
  // Refused up front: with overcommitted memory a too-large allocation does not fail, it
  // succeeds and the process is killed while the Hessian is being filled.
  const int64_t need = gptq_peak_bytes(n, k), have = physical_memory_bytes();
  if (have > 0 && need > have)
    return out_of_range("quantize: GPTQ of a [" + std::to_string(n) + ", " + std::to_string(k) +
                        "] matrix needs about " + std::to_string(need) +
                        " bytes (four [K, K] double matrices), more than the " +
                        std::to_string(have) + " bytes of memory of this machine");
  std::vector<double> h;
  QMOE_RETURN_IF_ERROR(build_hessian(opt, k, &h));

  // Dead inputs (H_ii = 0: never active in calibration) cannot move the output: their weights
  // become 0 and H_ii = 1 keeps H invertible (as the reference implementation does).
  std::vector<char> dead(static_cast<size_t>(k));
  // A LUT table's fit weights: H_ii (an input's energy), 0 for dead inputs and for negative
  // diagonals a caller's H may hold (damping can still make it positive definite).
  std::vector<double> diag(static_cast<size_t>(k));
  double diag_sum = 0.0;
  int64_t dead_inputs = 0;
  for (int64_t i = 0; i < k; ++i) {
    dead[i] = h[i * k + i] == 0.0;
    dead_inputs += dead[i];
    if (dead[i]) h[i * k + i] = 1.0;
    diag[i] = dead[i] ? 0.0 : std::max(h[i * k + i], 0.0);
    diag_sum += h[i * k + i];
  }
  // With no input active every weight would become 0: a calibration set that never reaches this
  // matrix (an expert no calibration token was routed to, padded with zero rows) is refused
  // rather than turned into an all-zero matrix.
  if (dead_inputs == k)
    return invalid_argument(
        "quantize: GPTQ's calibration activates no input (diag(H) is 0 everywhere): every weight "
        "would be 0; calibrate with activations that reach this matrix, or quantize it by RTN");
  // Processing order: act_order takes the most active inputs first (decreasing H_ii).
  std::vector<int64_t> order(static_cast<size_t>(k));
  std::iota(order.begin(), order.end(), int64_t{0});
  if (opt.act_order)
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return h[a * k + a] > h[b * k + b]; });
  std::vector<int64_t> position(static_cast<size_t>(k));
  for (int64_t i = 0; i < k; ++i) position[order[i]] = i;

  std::vector<double> u;
  {
    const double damp = opt.damp * diag_sum / static_cast<double>(k);
    std::vector<double> hp(static_cast<size_t>(k * k));  // H in processing order, damped
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = 0; j < k; ++j) hp[i * k + j] = h[order[i] * k + order[j]];
    for (int64_t i = 0; i < k; ++i) hp[i * k + i] += damp;
    h.clear();
    h.shrink_to_fit();
    QMOE_RETURN_IF_ERROR(inverse_cholesky_upper(hp, k, &u));
  }

  // Weights in processing order, [n, k] double; updated in place by the error feedback.
  std::vector<double> wq(static_cast<size_t>(n * k));
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < n; ++r)
    for (int64_t i = 0; i < k; ++i) wq[r * k + i] = dead[order[i]] ? 0.0 : w[r * k + order[i]];

  // Groups stay defined on the original columns. A group's scale and zero are chosen when its
  // first column (in processing order) is reached, from the current, error-updated weights of
  // all its columns; without act_order that is the reference GPTQ's order of events.
  const int64_t g = f.group_len(k), groups = k / g;
  std::vector<char> group_start(static_cast<size_t>(k), 0);
  {
    std::vector<char> seen(static_cast<size_t>(groups), 0);
    for (int64_t i = 0; i < k; ++i) {
      const int64_t grp = order[i] / g;
      if (!seen[grp]) seen[grp] = group_start[i] = 1;
    }
  }

  LogicalMatrix m = LogicalMatrix::sized(f, n, k);
  const bool trellis = f.kind == FormatKind::kTrellis;
  // Trellis and vector formats: one 128-column block per lazy batch.
  const bool by_blocks = trellis || f.kind == FormatKind::kVector;
  const int64_t block = by_blocks ? kTileCols : std::min<int64_t>(opt.block_size, k);
  std::vector<double> err(static_cast<size_t>(n * block));  // scaled errors of the block's columns
  std::atomic<int64_t> overflow_row{-1};
  // One group of scratch per thread, allocated here: a throw inside the region would terminate.
  std::vector<double> scratch(static_cast<size_t>(omp_get_max_threads() * g));

  // After a batch of columns [i1, i2): an overflowing scale or table is an error; otherwise the
  // batch's scaled errors reach the later columns, W[:, i2:] -= Err U[i1:i2, i2:].
  const auto feed_forward = [&](int64_t i1, int64_t i2) -> Status {
    if (overflow_row.load() >= 0)
      return out_of_range("quantize: a GPTQ group scale, table or block scale of row " +
                          std::to_string(overflow_row.load()) + " overflows fp16 (weights too " +
                          "large for " + f.to_string() + ")");
    if (i2 < k)
      matmul_acc(n, k - i2, i2 - i1, -1.0, err.data(), i2 - i1, 1, u.data() + i1 * k + i2, k,
                 wq.data() + i2, k, Triangle::kNone);
    return Status::ok();
  };

  // Lazy batches: inside a block of columns the feedback is applied eagerly, row by row (rows
  // are independent); the block's effect on the later columns is one matmul.
  const auto run_columns = [&](auto& grids) -> Status {
    for (int64_t i1 = 0; i1 < k; i1 += block) {
      const int64_t i2 = std::min(k, i1 + block), width = i2 - i1;
#pragma omp parallel
      {
        double* x = scratch.data() + omp_get_thread_num() * g;
#pragma omp for schedule(static)
        for (int64_t r = 0; r < n; ++r) {
          double* wr = wq.data() + r * k;
          double* er = err.data() + r * width;
          for (int64_t i = i1; i < i2; ++i) {
            const int64_t col = order[i], grp = col / g;
            if (group_start[i]) {
              // Columns past this block still owe the feedback of columns i1..i-1.
              for (int64_t t = 0; t < g; ++t) {
                const int64_t pos = position[grp * g + t];
                double v = wr[pos];
                if (pos >= i2)
                  for (int64_t l = i1; l < i; ++l) v -= er[l - i1] * u[l * k + pos];
                x[t] = v;
              }
              if (!grids.fit(r, grp, x, g)) {
                keep_first(&overflow_row, r);
                break;
              }
            }
            const int q = grids.code(r, grp, wr[i]);
            m.codes[r * k + col] = static_cast<uint16_t>(q);
            const double e = (wr[i] - grids.value(r, grp, q)) / u[i * k + i];
            er[i - i1] = e;
            const double* ui = u.data() + i * k;
#pragma omp simd
            for (int64_t j = i + 1; j < i2; ++j) wr[j] -= e * ui[j];
          }
        }
      }
      QMOE_RETURN_IF_ERROR(feed_forward(i1, i2));
    }
    return Status::ok();
  };
  // Trellis and vector formats (no act_order: order is the identity): each 128-column block is
  // quantized jointly per row (one Viterbi path; 32 vectors at one scale), so there is no
  // feedback inside a block; its error d is fed to the later columns as the optimal update given
  // the block fixed, d U_BB^-1 U_B,rest (U_BB the block's diagonal block of U), found by a
  // forward solve. `searches`: one block coder per thread.
  const auto run_blocks = [&](auto& searches) -> Status {
    for (int64_t i1 = 0; i1 < k; i1 += block) {
      const int64_t i2 = i1 + block;
#pragma omp parallel
      {
        auto& coder = searches[static_cast<size_t>(omp_get_thread_num())];
        double* x = scratch.data() + omp_get_thread_num() * g;
        float decoded[kTileCols];
#pragma omp for schedule(static)
        for (int64_t r = 0; r < n; ++r) {
          const double* wr = wq.data() + r * k + i1;
          double* er = err.data() + r * block;
          uint16_t* codes = m.codes.data() + r * k + i1;
          uint16_t& scale = m.scales[static_cast<size_t>(r * groups + i1 / block)];
          std::copy(wr, wr + block, x);
          if (!coder.quantize_block(x, opt.gptq_mse_scales, codes, &scale)) {
            keep_first(&overflow_row, r);
            continue;
          }
          coder.decode_block(codes, scale, decoded);
          for (int64_t j = 0; j < block; ++j) {  // er U_BB = w - decoded
            double d = wr[j] - decoded[j];
            for (int64_t i = 0; i < j; ++i) d -= er[i] * u[(i1 + i) * k + i1 + j];
            er[j] = d / u[(i1 + j) * k + i1 + j];
          }
        }
      }
      QMOE_RETURN_IF_ERROR(feed_forward(i1, i2));
    }
    return Status::ok();
  };
  if (trellis) {
    std::vector<TrellisSearch> searches(static_cast<size_t>(omp_get_max_threads()),
                                        TrellisSearch(f.bits, f.values_per_state));
    QMOE_RETURN_IF_ERROR(run_blocks(searches));
  } else if (f.kind == FormatKind::kVector) {
    std::vector<VectorSearch> searches(static_cast<size_t>(omp_get_max_threads()),
                                       VectorSearch(f.bits));
    QMOE_RETURN_IF_ERROR(run_blocks(searches));
  } else if (f.kind == FormatKind::kLut) {
    TableGrids grids(f, n, k, std::move(diag), &m);
    QMOE_RETURN_IF_ERROR(run_columns(grids));
  } else {
    AffineGrids grids(f, n, groups, search, &m);
    QMOE_RETURN_IF_ERROR(run_columns(grids));
  }
  *out = std::move(m);
  return Status::ok();
}

}  // namespace qmoe::quant
