/*
 * SIMD inner loops for the wasm training kernels (see ../native.ts). Compiled to a tiny standalone wasm
 * module that imports the tfjs wasm backend's linear memory, so every pointer here is a byte offset of a
 * tensor (or of scratch) on that heap. The module must not own memory: no static data, no stack arrays
 * (build.sh checks there is no data section), so it cannot clobber the backend's heap.
 *
 * Activation codes: 0 linear, 1 relu, 2 leaky relu (slope alpha > 0).
 */
#include <stdint.h>
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(#name)))

static inline v128_t act_mask_grad(v128_t g, v128_t y, int act, v128_t alpha) {
  /* dpre = dy * act'(pre); pre > 0 iff y > 0. */
  v128_t pos = wasm_f32x4_gt(y, wasm_f32x4_splat(0.0f));
  v128_t neg = act == 1 ? wasm_f32x4_splat(0.0f) : wasm_f32x4_mul(g, alpha);
  return wasm_v128_bitselect(g, neg, pos);
}

static inline float act_grad_scalar(float g, float y, int act, float alpha) {
  if (y > 0.0f) return g;
  return act == 1 ? 0.0f : g * alpha;
}

/*
 * Per-channel sums are accumulated in float32 over blocks of BLOCK_ROWS rows (in `blk`, 2*C floats of scratch)
 * and flushed into float64 totals: cheaper than float64 per element, and the float32 part only ever sums
 * BLOCK_ROWS terms (relative error ~1e-5 at worst, typically far less).
 */
#define BLOCK_ROWS 128

static void flush_block(float* b1, float* b2, double* s1, double* s2, int C) {
  for (int c = 0; c < C; c++) {
    s1[c] += b1[c];
    s2[c] += b2[c];
    b1[c] = 0.0f;
    b2[c] = 0.0f;
  }
}

/* s1[c] = sum_p x[p,c], s2[c] = sum_p x[p,c]^2, x is [P, C]; blk is 2*C floats of scratch. */
EXPORT(bn_sums)
void bn_sums(const float* x, int P, int C, double* s1, double* s2, float* blk) {
  float* b1 = blk;
  float* b2 = blk + C;
  for (int c = 0; c < C; c++) { s1[c] = 0.0; s2[c] = 0.0; b1[c] = 0.0f; b2[c] = 0.0f; }
  const int C4 = C & ~3;
  for (int p0 = 0; p0 < P; p0 += BLOCK_ROWS) {
    const int p1 = p0 + BLOCK_ROWS < P ? p0 + BLOCK_ROWS : P;
    for (int p = p0; p < p1; p++) {
      const float* row = x + (long)p * C;
      int c = 0;
      for (; c < C4; c += 4) {
        v128_t v = wasm_v128_load(row + c);
        wasm_v128_store(b1 + c, wasm_f32x4_add(wasm_v128_load(b1 + c), v));
        wasm_v128_store(b2 + c, wasm_f32x4_add(wasm_v128_load(b2 + c), wasm_f32x4_mul(v, v)));
      }
      for (; c < C; c++) { float v = row[c]; b1[c] += v; b2[c] += v * v; }
    }
    flush_block(b1, b2, s1, s2, C);
  }
}

/* y = act(x * scale[c] + shift[c]). */
EXPORT(bn_apply)
void bn_apply(const float* x, float* y, int P, int C, const float* scale, const float* shift, int act, float alpha) {
  const int C4 = C & ~3;
  const v128_t zero = wasm_f32x4_splat(0.0f);
  const v128_t va = wasm_f32x4_splat(alpha);
  for (int p = 0; p < P; p++) {
    const float* xr = x + (long)p * C;
    float* yr = y + (long)p * C;
    int c = 0;
    for (; c < C4; c += 4) {
      v128_t v = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(xr + c), wasm_v128_load(scale + c)), wasm_v128_load(shift + c));
      if (act == 1) v = wasm_f32x4_max(v, zero);
      else if (act == 2) v = wasm_v128_bitselect(v, wasm_f32x4_mul(v, va), wasm_f32x4_gt(v, zero));
      wasm_v128_store(yr + c, v);
    }
    for (; c < C; c++) {
      float v = xr[c] * scale[c] + shift[c];
      yr[c] = act == 0 ? v : (v > 0.0f ? v : (act == 1 ? 0.0f : v * alpha));
    }
  }
}

/* sdy[c] = sum dpre, sdyx[c] = sum dpre*(x - mean[c]), dpre = dy * act'(y); blk is 2*C floats of scratch. */
EXPORT(bn_grad_sums)
void bn_grad_sums(const float* dy, const float* x, const float* y, int P, int C, const float* mean, int act, float alpha,
                  double* sdy, double* sdyx, float* blk) {
  float* b1 = blk;
  float* b2 = blk + C;
  for (int c = 0; c < C; c++) { sdy[c] = 0.0; sdyx[c] = 0.0; b1[c] = 0.0f; b2[c] = 0.0f; }
  const int C4 = C & ~3;
  const v128_t va = wasm_f32x4_splat(alpha);
  for (int p0 = 0; p0 < P; p0 += BLOCK_ROWS) {
    const int p1 = p0 + BLOCK_ROWS < P ? p0 + BLOCK_ROWS : P;
    for (int p = p0; p < p1; p++) {
      const long o = (long)p * C;
      int c = 0;
      for (; c < C4; c += 4) {
        v128_t g = wasm_v128_load(dy + o + c);
        if (act != 0) g = act_mask_grad(g, wasm_v128_load(y + o + c), act, va);
        v128_t d = wasm_f32x4_mul(g, wasm_f32x4_sub(wasm_v128_load(x + o + c), wasm_v128_load(mean + c)));
        wasm_v128_store(b1 + c, wasm_f32x4_add(wasm_v128_load(b1 + c), g));
        wasm_v128_store(b2 + c, wasm_f32x4_add(wasm_v128_load(b2 + c), d));
      }
      for (; c < C; c++) {
        float g = dy[o + c];
        if (act != 0) g = act_grad_scalar(g, y[o + c], act, alpha);
        b1[c] += g;
        b2[c] += g * (x[o + c] - mean[c]);
      }
    }
    flush_block(b1, b2, sdy, sdyx, C);
  }
}

/* dx = k1[c]*dpre + k2[c]*x + k3[c]. */
EXPORT(bn_grad_apply)
void bn_grad_apply(const float* dy, const float* x, const float* y, float* dx, int P, int C, const float* k1, const float* k2,
                   const float* k3, int act, float alpha) {
  const int C4 = C & ~3;
  const v128_t va = wasm_f32x4_splat(alpha);
  for (int p = 0; p < P; p++) {
    const long o = (long)p * C;
    int c = 0;
    for (; c < C4; c += 4) {
      v128_t g = wasm_v128_load(dy + o + c);
      if (act != 0) g = act_mask_grad(g, wasm_v128_load(y + o + c), act, va);
      v128_t v = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(k1 + c), g),
                                wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(k2 + c), wasm_v128_load(x + o + c)), wasm_v128_load(k3 + c)));
      wasm_v128_store(dx + o + c, v);
    }
    for (; c < C; c++) {
      float g = dy[o + c];
      if (act != 0) g = act_grad_scalar(g, y[o + c], act, alpha);
      dx[o + c] = k1[c] * g + k2[c] * x[o + c] + k3[c];
    }
  }
}

/*
 * MaxPoolGrad for 2x2 windows, stride 2, no padding, over the windows fully inside the image
 * (oh < OHfull, ow < OWfull). dy goes to the first maximal element in row-major window order (ties to the
 * earliest, NaN never wins), like the cpu backend. dx must be zeroed by the caller.
 */
EXPORT(max_pool_grad_2x2)
void max_pool_grad_2x2(const float* x, const float* dy, float* dx, int N, int H, int W, int C, int OH, int OW, int OHfull,
                       int OWfull) {
  const int C4 = C & ~3;
  const long rowStride = (long)W * C;
  for (int n = 0; n < N; n++) {
    for (int oh = 0; oh < OHfull; oh++) {
      const long rowBase = ((long)n * H + 2 * oh) * rowStride;
      for (int ow = 0; ow < OWfull; ow++) {
        const long b0 = rowBase + (long)2 * ow * C, b1 = b0 + C, b2 = b0 + rowStride, b3 = b2 + C;
        const long o = (((long)n * OH + oh) * OW + ow) * C;
        int c = 0;
        for (; c < C4; c += 4) {
          v128_t v0 = wasm_v128_load(x + b0 + c), v1 = wasm_v128_load(x + b1 + c);
          v128_t v2 = wasm_v128_load(x + b2 + c), v3 = wasm_v128_load(x + b3 + c);
          v128_t g = wasm_v128_load(dy + o + c);
          /* Running max m with "strictly greater wins" masks, starting from -inf (NaN never wins). */
          v128_t m = wasm_f32x4_splat(-__builtin_inff());
          v128_t w0 = wasm_f32x4_gt(v0, m); m = wasm_v128_bitselect(v0, m, w0);
          v128_t w1 = wasm_f32x4_gt(v1, m); m = wasm_v128_bitselect(v1, m, w1);
          v128_t w2 = wasm_f32x4_gt(v2, m); m = wasm_v128_bitselect(v2, m, w2);
          v128_t w3 = wasm_f32x4_gt(v3, m);
          /* Winner = last position whose test succeeded. */
          v128_t s3 = w3;
          v128_t s2 = wasm_v128_andnot(w2, s3);
          v128_t s1 = wasm_v128_andnot(wasm_v128_andnot(w1, s3), w2);
          v128_t s0 = wasm_v128_andnot(wasm_v128_andnot(wasm_v128_andnot(w0, s3), w2), w1);
          wasm_v128_store(dx + b0 + c, wasm_v128_and(g, s0));
          wasm_v128_store(dx + b1 + c, wasm_v128_and(g, s1));
          wasm_v128_store(dx + b2 + c, wasm_v128_and(g, s2));
          wasm_v128_store(dx + b3 + c, wasm_v128_and(g, s3));
        }
        for (; c < C; c++) {
          float m = -__builtin_inff();
          long at = -1;
          if (x[b0 + c] > m) { m = x[b0 + c]; at = b0 + c; }
          if (x[b1 + c] > m) { m = x[b1 + c]; at = b1 + c; }
          if (x[b2 + c] > m) { m = x[b2 + c]; at = b2 + c; }
          if (x[b3 + c] > m) { at = b3 + c; }
          dx[b0 + c] = 0.0f; dx[b1 + c] = 0.0f; dx[b2 + c] = 0.0f; dx[b3 + c] = 0.0f;
          if (at >= 0) dx[at] = dy[o + c];
        }
      }
    }
  }
}

/* out[o, i] = scale * sum_r x[o, r, i] for x viewed as [outer, R, inner] (float64 accumulation in acc[inner]). */
EXPORT(reduce_middle)
void reduce_middle(const float* x, float* out, int outer, int R, int inner, float scale, double* acc) {
  if (inner == 1) {
    /* Contiguous rows: two float64x2 accumulators. */
    for (int o = 0; o < outer; o++) {
      const float* row = x + (long)o * R;
      v128_t a0 = wasm_f64x2_splat(0.0), a1 = wasm_f64x2_splat(0.0);
      int r = 0;
      for (; r + 4 <= R; r += 4) {
        v128_t v = wasm_v128_load(row + r);
        a0 = wasm_f64x2_add(a0, wasm_f64x2_promote_low_f32x4(v));
        a1 = wasm_f64x2_add(a1, wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(v, v, 2, 3, 0, 1)));
      }
      v128_t a = wasm_f64x2_add(a0, a1);
      double s = wasm_f64x2_extract_lane(a, 0) + wasm_f64x2_extract_lane(a, 1);
      for (; r < R; r++) s += row[r];
      out[o] = (float)(s * scale);
    }
    return;
  }
  const int I4 = inner & ~3;
  for (int o = 0; o < outer; o++) {
    for (int i = 0; i < inner; i++) acc[i] = 0.0;
    const float* base = x + (long)o * R * inner;
    for (int r = 0; r < R; r++) {
      const float* row = base + (long)r * inner;
      int i = 0;
      for (; i < I4; i += 4) {
        v128_t v = wasm_v128_load(row + i);
        wasm_v128_store(acc + i, wasm_f64x2_add(wasm_v128_load(acc + i), wasm_f64x2_promote_low_f32x4(v)));
        wasm_v128_store(acc + i + 2, wasm_f64x2_add(wasm_v128_load(acc + i + 2), wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(v, v, 2, 3, 0, 1))));
      }
      for (; i < inner; i++) acc[i] += row[i];
    }
    for (int i = 0; i < inner; i++) out[(long)o * inner + i] = (float)(acc[i] * scale);
  }
}

/* xT[c * plane + p] = x[p * C + c]: NHWC pixels to channel-major planes (4x4 SIMD transposes). */
EXPORT(to_channel_major)
void to_channel_major(const float* x, float* xT, int plane, int C) {
  const int P4 = plane & ~3, C4 = C & ~3;
  for (int p = 0; p < P4; p += 4) {
    const float* r0 = x + (long)p * C;
    int c = 0;
    for (; c < C4; c += 4) {
      v128_t a = wasm_v128_load(r0 + c), b = wasm_v128_load(r0 + C + c);
      v128_t d = wasm_v128_load(r0 + 2 * C + c), e = wasm_v128_load(r0 + 3 * C + c);
      v128_t ab_lo = wasm_i32x4_shuffle(a, b, 0, 4, 1, 5), ab_hi = wasm_i32x4_shuffle(a, b, 2, 6, 3, 7);
      v128_t de_lo = wasm_i32x4_shuffle(d, e, 0, 4, 1, 5), de_hi = wasm_i32x4_shuffle(d, e, 2, 6, 3, 7);
      wasm_v128_store(xT + (long)c * plane + p, wasm_i32x4_shuffle(ab_lo, de_lo, 0, 1, 4, 5));
      wasm_v128_store(xT + (long)(c + 1) * plane + p, wasm_i32x4_shuffle(ab_lo, de_lo, 2, 3, 6, 7));
      wasm_v128_store(xT + (long)(c + 2) * plane + p, wasm_i32x4_shuffle(ab_hi, de_hi, 0, 1, 4, 5));
      wasm_v128_store(xT + (long)(c + 3) * plane + p, wasm_i32x4_shuffle(ab_hi, de_hi, 2, 3, 6, 7));
    }
    for (; c < C; c++)
      for (int q = 0; q < 4; q++) xT[(long)c * plane + p + q] = r0[(long)q * C + c];
  }
  for (int p = P4; p < plane; p++)
    for (int c = 0; c < C; c++) xT[(long)c * plane + p] = x[(long)p * C + c];
}

/*
 * Transposed im2col for the filter gradient: col[K, count*OH*OW] with row k = (kh*KW + kw)*C + ci and column
 * (n*OH + oh)*OW + ow holding x[n, oh*sh + kh - pt, ow*sw + kw - pl, ci] (0 outside), read from the
 * channel-major copy xT[C][count][H][W].
 */
EXPORT(fill_col_t)
void fill_col_t(const float* xT, float* col, int count, int H, int W, int C, int OH, int OW, int KH, int KW, int sh, int sw,
                int pt, int pl) {
  const long cols = (long)count * OH * OW;
  long row = 0;
  for (int kh = 0; kh < KH; kh++) {
    for (int kw = 0; kw < KW; kw++) {
      /* Output columns whose input column ow*sw + kw - pl lies in [0, W). */
      int owLo = 0;
      while (owLo < OW && owLo * sw + kw - pl < 0) owLo++;
      int owHi = OW;
      while (owHi > owLo && (owHi - 1) * sw + kw - pl >= W) owHi--;
      for (int ci = 0; ci < C; ci++, row++) {
        float* dst = col + row * cols;
        for (int n = 0; n < count; n++) {
          const float* plane = xT + ((long)ci * count + n) * H * W;
          for (int oh = 0; oh < OH; oh++, dst += OW) {
            const int ih = oh * sh + kh - pt;
            if (ih < 0 || ih >= H) {
              for (int ow = 0; ow < OW; ow++) dst[ow] = 0.0f;
              continue;
            }
            const float* src = plane + (long)ih * W + kw - pl;
            int ow = 0;
            for (; ow < owLo; ow++) dst[ow] = 0.0f;
            if (sw == 1) {
              for (; ow < owHi; ow++) dst[ow] = src[ow];
            } else {
              for (; ow < owHi; ow++) dst[ow] = src[(long)ow * sw];
            }
            for (; ow < OW; ow++) dst[ow] = 0.0f;
          }
        }
      }
    }
  }
}

/* acc[i] += part[i]. */
EXPORT(add_into)
void add_into(float* acc, const float* part, int n) {
  int i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(acc + i, wasm_f32x4_add(wasm_v128_load(acc + i), wasm_v128_load(part + i)));
  for (; i < n; i++) acc[i] += part[i];
}

/*
 * Plain im2col for images [0, count) of x (NHWC, already offset to the first image): col[(n*OH + oh)*OW + ow, k]
 * with k = (kh*KW + kw)*C + ci, zero outside the image.
 */
EXPORT(im2col)
void im2col(const float* x, float* col, int count, int H, int W, int C, int OH, int OW, int KH, int KW, int sh, int sw, int pt,
            int pl) {
  const int K = KH * KW * C;
  float* dst = col;
  for (int n = 0; n < count; n++) {
    const float* img = x + (long)n * H * W * C;
    for (int oh = 0; oh < OH; oh++) {
      for (int ow = 0; ow < OW; ow++, dst += K) {
        float* d = dst;
        for (int kh = 0; kh < KH; kh++) {
          const int ih = oh * sh + kh - pt;
          for (int kw = 0; kw < KW; kw++, d += C) {
            const int iw = ow * sw + kw - pl;
            if (ih < 0 || ih >= H || iw < 0 || iw >= W) {
              for (int c = 0; c < C; c++) d[c] = 0.0f;
            } else {
              const float* s = img + ((long)ih * W + iw) * C;
              for (int c = 0; c < C; c++) d[c] = s[c];
            }
          }
        }
      }
    }
  }
}

/*
 * Winograd F(4x4, 3x3) for stride-1 3x3 convolutions (Lavin & Gray 2016). An output tile of 4x4 pixels is
 *   Y = A^T [ (G g G^T) (.) (B^T d B) ] A
 * for a 6x6 input patch d and the 3x3 filter g, so per tile and channel pair 36 multiplications replace 144,
 * and summed over input channels the 36 elementwise products become 36 matrix products [tiles x Ci] @ [Ci x Co],
 * which the backend runs on XNNPACK (../winograd.ts). These are the transforms around those products; they are
 * vectorised over 4 channels (C % 4 == 0). Tiles are numbered t = (n * TH + th) * TW + tw within a chunk of
 * images; the tile grid covers the output, pixels outside the input read as zero, outputs past the edge are
 * dropped. Matrices are stored k-major: X[k][t][c] with k = 6 * row + column of the 6x6 transform domain.
 *
 * The same identity gives the filter gradient: dL/dU = sum_t (A dY_t A^T) (.) (B^T d_t B), dL/dg = G^T dL/dU G.
 */

#define F4 wasm_f32x4_splat

/* r = B^T d for a 6-vector (stride in v128 elements). */
#define WINO_BT(d, ds, r, rs) do { \
    v128_t d0 = (d)[0 * (ds)], d1 = (d)[1 * (ds)], d2 = (d)[2 * (ds)], d3 = (d)[3 * (ds)], d4 = (d)[4 * (ds)], d5 = (d)[5 * (ds)]; \
    v128_t m42 = wasm_f32x4_sub(d4, d2); \
    (r)[0 * (rs)] = wasm_f32x4_add(wasm_f32x4_mul(F4(4.0f), d0), wasm_f32x4_sub(d4, wasm_f32x4_mul(F4(5.0f), d2))); \
    (r)[1 * (rs)] = wasm_f32x4_add(wasm_f32x4_mul(F4(-4.0f), wasm_f32x4_add(d1, d2)), wasm_f32x4_add(d3, d4)); \
    (r)[2 * (rs)] = wasm_f32x4_add(wasm_f32x4_mul(F4(4.0f), wasm_f32x4_sub(d1, d2)), wasm_f32x4_sub(d4, d3)); \
    (r)[3 * (rs)] = wasm_f32x4_add(wasm_f32x4_mul(F4(2.0f), wasm_f32x4_sub(d3, d1)), m42); \
    (r)[4 * (rs)] = wasm_f32x4_add(wasm_f32x4_mul(F4(2.0f), wasm_f32x4_sub(d1, d3)), m42); \
    (r)[5 * (rs)] = wasm_f32x4_add(wasm_f32x4_mul(F4(4.0f), d1), wasm_f32x4_sub(d5, wasm_f32x4_mul(F4(5.0f), d3))); \
  } while (0)

/* o = A^T m: 6-vector -> 4-vector. */
#define WINO_AT(m, ms, o, os) do { \
    v128_t m0 = (m)[0 * (ms)], m1 = (m)[1 * (ms)], m2 = (m)[2 * (ms)], m3 = (m)[3 * (ms)], m4 = (m)[4 * (ms)], m5 = (m)[5 * (ms)]; \
    v128_t p12 = wasm_f32x4_add(m1, m2), n12 = wasm_f32x4_sub(m1, m2); \
    v128_t p34 = wasm_f32x4_add(m3, m4), n34 = wasm_f32x4_sub(m3, m4); \
    (o)[0 * (os)] = wasm_f32x4_add(wasm_f32x4_add(m0, p12), p34); \
    (o)[1 * (os)] = wasm_f32x4_add(n12, wasm_f32x4_mul(F4(2.0f), n34)); \
    (o)[2 * (os)] = wasm_f32x4_add(p12, wasm_f32x4_mul(F4(4.0f), p34)); \
    (o)[3 * (os)] = wasm_f32x4_add(wasm_f32x4_add(n12, wasm_f32x4_mul(F4(8.0f), n34)), m5); \
  } while (0)

/* w = A e: 4-vector -> 6-vector (the transpose of WINO_AT). */
#define WINO_A(e, es, w, ws) do { \
    v128_t e0 = (e)[0 * (es)], e1 = (e)[1 * (es)], e2 = (e)[2 * (es)], e3 = (e)[3 * (es)]; \
    v128_t p02 = wasm_f32x4_add(e0, e2), p13 = wasm_f32x4_add(e1, e3); \
    v128_t q02 = wasm_f32x4_add(e0, wasm_f32x4_mul(F4(4.0f), e2)), q13 = wasm_f32x4_add(e1, wasm_f32x4_mul(F4(4.0f), e3)); \
    (w)[0 * (ws)] = e0; \
    (w)[1 * (ws)] = wasm_f32x4_add(p02, p13); \
    (w)[2 * (ws)] = wasm_f32x4_sub(p02, p13); \
    (w)[3 * (ws)] = wasm_f32x4_add(q02, wasm_f32x4_mul(F4(2.0f), q13)); \
    (w)[4 * (ws)] = wasm_f32x4_sub(q02, wasm_f32x4_mul(F4(2.0f), q13)); \
    (w)[5 * (ws)] = e3; \
  } while (0)

/* u = G g: 3-vector -> 6-vector. */
#define WINO_G(g, gs, u, us) do { \
    v128_t g0 = (g)[0 * (gs)], g1 = (g)[1 * (gs)], g2 = (g)[2 * (gs)]; \
    v128_t s02 = wasm_f32x4_add(g0, g2); \
    v128_t a = wasm_f32x4_add(wasm_f32x4_mul(F4(1.0f / 24.0f), g0), wasm_f32x4_mul(F4(1.0f / 6.0f), g2)); \
    v128_t b = wasm_f32x4_mul(F4(1.0f / 12.0f), g1); \
    (u)[0 * (us)] = wasm_f32x4_mul(F4(0.25f), g0); \
    (u)[1 * (us)] = wasm_f32x4_mul(F4(-1.0f / 6.0f), wasm_f32x4_add(s02, g1)); \
    (u)[2 * (us)] = wasm_f32x4_mul(F4(-1.0f / 6.0f), wasm_f32x4_sub(s02, g1)); \
    (u)[3 * (us)] = wasm_f32x4_add(a, b); \
    (u)[4 * (us)] = wasm_f32x4_sub(a, b); \
    (u)[5 * (us)] = g2; \
  } while (0)

/* g = G^T u: 6-vector -> 3-vector (the transpose of WINO_G). */
#define WINO_GT(u, us, g, gs) do { \
    v128_t u0 = (u)[0 * (us)], u1 = (u)[1 * (us)], u2 = (u)[2 * (us)], u3 = (u)[3 * (us)], u4 = (u)[4 * (us)], u5 = (u)[5 * (us)]; \
    v128_t p12 = wasm_f32x4_add(u1, u2), p34 = wasm_f32x4_add(u3, u4); \
    v128_t n12 = wasm_f32x4_sub(u2, u1), n34 = wasm_f32x4_sub(u3, u4); \
    (g)[0 * (gs)] = wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(F4(0.25f), u0), wasm_f32x4_mul(F4(-1.0f / 6.0f), p12)), wasm_f32x4_mul(F4(1.0f / 24.0f), p34)); \
    (g)[1 * (gs)] = wasm_f32x4_add(wasm_f32x4_mul(F4(1.0f / 6.0f), n12), wasm_f32x4_mul(F4(1.0f / 12.0f), n34)); \
    (g)[2 * (gs)] = wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(F4(-1.0f / 6.0f), p12), wasm_f32x4_mul(F4(1.0f / 6.0f), p34)), u5); \
  } while (0)

/*
 * The filter transform and its gradient are one separable 2-D transform between filter-shaped arrays, src[NI][NI]
 * and dst[NO][NO] planes of Ci x Co floats (HWIO, or k-major U): XFORM (an NI-vector to an NO-vector) down the
 * columns, mid[NO][NI], then along the rows, for every input channel and 4 output channels.
 */
#define WINO_FILTER_2D(src, dst, Ci, Co, NI, NO, XFORM) do { \
    const long plane = (long)(Ci) * (Co); \
    for (int ci = 0; ci < (Ci); ci++) { \
      for (int co = 0; co < (Co); co += 4) { \
        v128_t in[(NI) * (NI)], mid[(NO) * (NI)], out[(NO) * (NO)]; \
        const float* from = (src) + (long)ci * (Co) + co; \
        for (int i = 0; i < (NI) * (NI); i++) in[i] = wasm_v128_load(from + i * plane); \
        for (int j = 0; j < (NI); j++) XFORM(in + j, (NI), mid + j, (NI)); \
        for (int i = 0; i < (NO); i++) XFORM(mid + (NI) * i, 1, out + (NO) * i, 1); \
        float* to = (dst) + (long)ci * (Co) + co; \
        for (int k = 0; k < (NO) * (NO); k++) wasm_v128_store(to + k * plane, out[k]); \
      } \
    } \
  } while (0)

/* U[k][ci][co] = (G g G^T)[k] for the filter w[3][3][Ci][Co] (HWIO). */
EXPORT(wino_filter_transform)
void wino_filter_transform(const float* w, float* U, int Ci, int Co) { WINO_FILTER_2D(w, U, Ci, Co, 3, 6, WINO_G); }

/* dW[kh][kw][ci][co] = (G^T dU G)[kh][kw] for dU[k][ci][co]. */
EXPORT(wino_filter_grad_transform)
void wino_filter_grad_transform(const float* dU, float* dW, int Ci, int Co) { WINO_FILTER_2D(dU, dW, Ci, Co, 6, 3, WINO_GT); }

/*
 * V = B^T d B for every tile of `count` images x[count][H][W][C] (input pixel of tile (th, tw), patch (i, j):
 * row 4*th + i - pt, column 4*tw + j - pl), into V[k][t][c]; T is the number of tiles V holds per point k.
 */
EXPORT(wino_input_transform)
void wino_input_transform(const float* x, float* V, int count, int H, int W, int C, int TH, int TW, int pt, int pl, int T) {
  const long kStride = (long)T * C;
  const v128_t zero = wasm_f32x4_splat(0.0f);
  int t = 0;
  for (int n = 0; n < count; n++) {
    const float* img = x + (long)n * H * W * C;
    for (int th = 0; th < TH; th++) {
      const int ih0 = 4 * th - pt;
      for (int tw = 0; tw < TW; tw++, t++) {
        const int iw0 = 4 * tw - pl;
        const int inside = ih0 >= 0 && iw0 >= 0 && ih0 + 6 <= H && iw0 + 6 <= W;
        for (int c = 0; c < C; c += 4) {
          v128_t d[36], r[36];
          if (inside) {
            for (int i = 0; i < 6; i++)
              for (int j = 0; j < 6; j++) d[6 * i + j] = wasm_v128_load(img + ((long)(ih0 + i) * W + iw0 + j) * C + c);
          } else {
            /* Fully unrolled so d[] stays in locals (a variable index would put it on a stack we must not have). */
#pragma clang loop unroll(full)
            for (int i = 0; i < 6; i++) {
              const int ih = ih0 + i;
#pragma clang loop unroll(full)
              for (int j = 0; j < 6; j++) {
                const int iw = iw0 + j;
                d[6 * i + j] = zero;
                if (ih >= 0 && ih < H && iw >= 0 && iw < W) d[6 * i + j] = wasm_v128_load(img + ((long)ih * W + iw) * C + c);
              }
            }
          }
          for (int j = 0; j < 6; j++) WINO_BT(d + j, 6, r + j, 6);       /* columns */
          for (int i = 0; i < 6; i++) WINO_BT(r + 6 * i, 1, d + 6 * i, 1); /* rows */
          float* dst = V + (long)t * C + c;
          for (int k = 0; k < 36; k++) wasm_v128_store(dst + k * kStride, d[k]);
        }
      }
    }
  }
}

/* y[count][OH][OW][C] = A^T M A per tile, for M[k][t][c] with T tiles of row stride C. */
EXPORT(wino_output_transform)
void wino_output_transform(const float* M, float* y, int count, int OH, int OW, int C, int TH, int TW, int T) {
  const long kStride = (long)T * C;
  int t = 0;
  for (int n = 0; n < count; n++) {
    float* img = y + (long)n * OH * OW * C;
    for (int th = 0; th < TH; th++) {
      const int oh0 = 4 * th;
      const int rows = OH - oh0 < 4 ? OH - oh0 : 4;
      for (int tw = 0; tw < TW; tw++, t++) {
        const int ow0 = 4 * tw;
        const int cols = OW - ow0 < 4 ? OW - ow0 : 4;
        const float* src = M + (long)t * C;
        for (int c = 0; c < C; c += 4) {
          v128_t m[36], r[24], o[16];
          for (int k = 0; k < 36; k++) m[k] = wasm_v128_load(src + k * kStride + c);
          for (int j = 0; j < 6; j++) WINO_AT(m + j, 6, r + j, 6);       /* columns: r[4][6] */
          for (int i = 0; i < 4; i++) WINO_AT(r + 6 * i, 1, o + 4 * i, 1); /* rows: o[4][4] */
          if (rows == 4 && cols == 4) {
            for (int i = 0; i < 4; i++)
              for (int j = 0; j < 4; j++) wasm_v128_store(img + ((long)(oh0 + i) * OW + ow0 + j) * C + c, o[4 * i + j]);
          } else {
#pragma clang loop unroll(full)
            for (int i = 0; i < 4; i++)
#pragma clang loop unroll(full)
              for (int j = 0; j < 4; j++)
                if (i < rows && j < cols) wasm_v128_store(img + ((long)(oh0 + i) * OW + ow0 + j) * C + c, o[4 * i + j]);
          }
        }
      }
    }
  }
}

/* Wd[k][t][c] = A dY_t A^T for the 4x4 output-gradient tiles of dy[count][OH][OW][C] (zero past the edge). */
EXPORT(wino_output_grad_transform)
void wino_output_grad_transform(const float* dy, float* Wd, int count, int OH, int OW, int C, int TH, int TW, int T) {
  const long kStride = (long)T * C;
  const v128_t zero = wasm_f32x4_splat(0.0f);
  int t = 0;
  for (int n = 0; n < count; n++) {
    const float* img = dy + (long)n * OH * OW * C;
    for (int th = 0; th < TH; th++) {
      const int oh0 = 4 * th;
      const int rows = OH - oh0 < 4 ? OH - oh0 : 4;
      for (int tw = 0; tw < TW; tw++, t++) {
        const int ow0 = 4 * tw;
        const int cols = OW - ow0 < 4 ? OW - ow0 : 4;
        float* dst = Wd + (long)t * C;
        for (int c = 0; c < C; c += 4) {
          v128_t e[16], r[24], w[36];
          for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++)
              e[4 * i + j] = i < rows && j < cols ? wasm_v128_load(img + ((long)(oh0 + i) * OW + ow0 + j) * C + c) : zero;
          for (int j = 0; j < 4; j++) WINO_A(e + j, 4, r + j, 4);       /* columns: r[6][4] */
          for (int i = 0; i < 6; i++) WINO_A(r + 4 * i, 1, w + 6 * i, 1); /* rows: w[6][6] */
          for (int k = 0; k < 36; k++) wasm_v128_store(dst + k * kStride + c, w[k]);
        }
      }
    }
  }
}

/*
 * Filter gradient of a stride-1 convolution with 3 input channels (the RGB input layer), where im2col + GEMM
 * spends most of its time transposing: dW[kh][kw][c][co] += sum over output pixels (n, oh, ow) of
 * xp[n][oh + kh][ow + kw][c] * dy[n][oh][ow][co], for xp the zero-padded input [count][OH+KH-1][OW+KW-1][3].
 * Register tile: the 3 channels of one tap x 16 output channels (12 accumulators), over one output row at a
 * time so the row of dy stays in L1 for every tap. dW must be zeroed by the caller. CO % 16 == 0.
 */
EXPORT(filter_grad_c3)
void filter_grad_c3(const float* xp, const float* dy, float* dW, int count, int OH, int OW, int KH, int KW, int CO) {
  const int PW = OW + KW - 1, PH = OH + KH - 1;
  for (int n = 0; n < count; n++) {
    for (int oh = 0; oh < OH; oh++) {
      const float* dyRow = dy + ((long)n * OH + oh) * OW * CO;
      for (int kh = 0; kh < KH; kh++) {
        const float* xRow = xp + ((long)n * PH + oh + kh) * PW * 3;
        for (int kw = 0; kw < KW; kw++) {
          float* acc = dW + (long)(kh * KW + kw) * 3 * CO;
          for (int co = 0; co < CO; co += 16) {
            v128_t a00 = wasm_v128_load(acc + co), a01 = wasm_v128_load(acc + co + 4), a02 = wasm_v128_load(acc + co + 8), a03 = wasm_v128_load(acc + co + 12);
            v128_t a10 = wasm_v128_load(acc + CO + co), a11 = wasm_v128_load(acc + CO + co + 4), a12 = wasm_v128_load(acc + CO + co + 8), a13 = wasm_v128_load(acc + CO + co + 12);
            v128_t a20 = wasm_v128_load(acc + 2 * CO + co), a21 = wasm_v128_load(acc + 2 * CO + co + 4), a22 = wasm_v128_load(acc + 2 * CO + co + 8), a23 = wasm_v128_load(acc + 2 * CO + co + 12);
            const float* xs = xRow + kw * 3;
            const float* ds = dyRow + co;
            for (int ow = 0; ow < OW; ow++, xs += 3, ds += CO) {
              const v128_t d0 = wasm_v128_load(ds), d1 = wasm_v128_load(ds + 4), d2 = wasm_v128_load(ds + 8), d3 = wasm_v128_load(ds + 12);
              const v128_t x0 = wasm_v128_load32_splat(xs), x1 = wasm_v128_load32_splat(xs + 1), x2 = wasm_v128_load32_splat(xs + 2);
              a00 = wasm_f32x4_add(a00, wasm_f32x4_mul(x0, d0)); a01 = wasm_f32x4_add(a01, wasm_f32x4_mul(x0, d1));
              a02 = wasm_f32x4_add(a02, wasm_f32x4_mul(x0, d2)); a03 = wasm_f32x4_add(a03, wasm_f32x4_mul(x0, d3));
              a10 = wasm_f32x4_add(a10, wasm_f32x4_mul(x1, d0)); a11 = wasm_f32x4_add(a11, wasm_f32x4_mul(x1, d1));
              a12 = wasm_f32x4_add(a12, wasm_f32x4_mul(x1, d2)); a13 = wasm_f32x4_add(a13, wasm_f32x4_mul(x1, d3));
              a20 = wasm_f32x4_add(a20, wasm_f32x4_mul(x2, d0)); a21 = wasm_f32x4_add(a21, wasm_f32x4_mul(x2, d1));
              a22 = wasm_f32x4_add(a22, wasm_f32x4_mul(x2, d2)); a23 = wasm_f32x4_add(a23, wasm_f32x4_mul(x2, d3));
            }
            wasm_v128_store(acc + co, a00); wasm_v128_store(acc + co + 4, a01); wasm_v128_store(acc + co + 8, a02); wasm_v128_store(acc + co + 12, a03);
            wasm_v128_store(acc + CO + co, a10); wasm_v128_store(acc + CO + co + 4, a11); wasm_v128_store(acc + CO + co + 8, a12); wasm_v128_store(acc + CO + co + 12, a13);
            wasm_v128_store(acc + 2 * CO + co, a20); wasm_v128_store(acc + 2 * CO + co + 4, a21); wasm_v128_store(acc + 2 * CO + co + 8, a22); wasm_v128_store(acc + 2 * CO + co + 12, a23);
          }
        }
      }
    }
  }
}

/* xp[n][PH][PW][C] = x[n][h - pt][w - pl][c], zero outside (PH >= H + pt, PW >= W + pl). */
EXPORT(pad_images)
void pad_images(const float* x, float* xp, int count, int H, int W, int C, int PH, int PW, int pt, int pl) {
  for (int n = 0; n < count; n++) {
    const float* src = x + (long)n * H * W * C;
    float* dst = xp + (long)n * PH * PW * C;
    for (int h = 0; h < PH; h++) {
      const int ih = h - pt;
      float* row = dst + (long)h * PW * C;
      if (ih < 0 || ih >= H) {
        for (int i = 0; i < PW * C; i++) row[i] = 0.0f;
        continue;
      }
      const float* srow = src + (long)ih * W * C;
      for (int w = 0; w < PW; w++) {
        const int iw = w - pl;
        for (int c = 0; c < C; c++) row[w * C + c] = iw >= 0 && iw < W ? srow[iw * C + c] : 0.0f;
      }
    }
  }
}

/*
 * C[M][N] += sum_t A[t][m] * B[t][n] (A^T B with both operands row-major over t, row strides lda / ldb), for
 * the Winograd filter gradient dU_k = V_k^T (A dY A^T)_k: no transposed copy of V and no packing of the long
 * operand, which XNNPACK's fully-connected path needs. Register tile 4 x 8 over blocks of 64 rows of t (both
 * blocks stay in L1 while every tile of C passes over them). M % 4 == 0, N % 8 == 0.
 */
#define ATB_ROWS 64
EXPORT(gemm_atb_acc)
void gemm_atb_acc(const float* A, const float* B, float* C, int T, int M, int N, int lda, int ldb) {
  for (int t0 = 0; t0 < T; t0 += ATB_ROWS) {
    const int t1 = t0 + ATB_ROWS < T ? t0 + ATB_ROWS : T;
    for (int m = 0; m < M; m += 4) {
      for (int n = 0; n < N; n += 8) {
        float* c0 = C + (long)m * N + n;
        v128_t c00 = wasm_v128_load(c0), c01 = wasm_v128_load(c0 + 4);
        v128_t c10 = wasm_v128_load(c0 + N), c11 = wasm_v128_load(c0 + N + 4);
        v128_t c20 = wasm_v128_load(c0 + 2 * N), c21 = wasm_v128_load(c0 + 2 * N + 4);
        v128_t c30 = wasm_v128_load(c0 + 3 * N), c31 = wasm_v128_load(c0 + 3 * N + 4);
        const float* a = A + (long)t0 * lda + m;
        const float* b = B + (long)t0 * ldb + n;
        for (int t = t0; t < t1; t++, a += lda, b += ldb) {
          const v128_t b0 = wasm_v128_load(b), b1 = wasm_v128_load(b + 4);
          v128_t s = wasm_v128_load32_splat(a);
          c00 = wasm_f32x4_add(c00, wasm_f32x4_mul(s, b0)); c01 = wasm_f32x4_add(c01, wasm_f32x4_mul(s, b1));
          s = wasm_v128_load32_splat(a + 1);
          c10 = wasm_f32x4_add(c10, wasm_f32x4_mul(s, b0)); c11 = wasm_f32x4_add(c11, wasm_f32x4_mul(s, b1));
          s = wasm_v128_load32_splat(a + 2);
          c20 = wasm_f32x4_add(c20, wasm_f32x4_mul(s, b0)); c21 = wasm_f32x4_add(c21, wasm_f32x4_mul(s, b1));
          s = wasm_v128_load32_splat(a + 3);
          c30 = wasm_f32x4_add(c30, wasm_f32x4_mul(s, b0)); c31 = wasm_f32x4_add(c31, wasm_f32x4_mul(s, b1));
        }
        wasm_v128_store(c0, c00); wasm_v128_store(c0 + 4, c01);
        wasm_v128_store(c0 + N, c10); wasm_v128_store(c0 + N + 4, c11);
        wasm_v128_store(c0 + 2 * N, c20); wasm_v128_store(c0 + 2 * N + 4, c21);
        wasm_v128_store(c0 + 3 * N, c30); wasm_v128_store(c0 + 3 * N + 4, c31);
      }
    }
  }
}

/*
 * C[T][N] = A[T][K] B[K][N] (row-major, row strides lda / N / N) for the 36 Winograd products M_k = V_k U_k.
 * U_k (K x N, 16 KB for 64 x 64) stays in L1 while 4-row tiles of A stream past; register tile 4 x 8.
 * Small enough products that XNNPACK's per-call set-up (operator, packing, thread-pool wake-up) dominated.
 * T % 4 may be anything; K >= 1; N % 8 == 0.
 */
EXPORT(gemm_ab)
void gemm_ab(const float* A, const float* B, float* C, int T, int K, int N, int lda) {
  int t = 0;
  for (; t + 4 <= T; t += 4) {
    const float* a0 = A + (long)t * lda;
    for (int n = 0; n < N; n += 8) {
      v128_t c00 = wasm_f32x4_splat(0.0f), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
      const float* b = B + n;
      for (int k = 0; k < K; k++, b += N) {
        const v128_t b0 = wasm_v128_load(b), b1 = wasm_v128_load(b + 4);
        v128_t s = wasm_v128_load32_splat(a0 + k);
        c00 = wasm_f32x4_add(c00, wasm_f32x4_mul(s, b0)); c01 = wasm_f32x4_add(c01, wasm_f32x4_mul(s, b1));
        s = wasm_v128_load32_splat(a0 + lda + k);
        c10 = wasm_f32x4_add(c10, wasm_f32x4_mul(s, b0)); c11 = wasm_f32x4_add(c11, wasm_f32x4_mul(s, b1));
        s = wasm_v128_load32_splat(a0 + 2 * lda + k);
        c20 = wasm_f32x4_add(c20, wasm_f32x4_mul(s, b0)); c21 = wasm_f32x4_add(c21, wasm_f32x4_mul(s, b1));
        s = wasm_v128_load32_splat(a0 + 3 * lda + k);
        c30 = wasm_f32x4_add(c30, wasm_f32x4_mul(s, b0)); c31 = wasm_f32x4_add(c31, wasm_f32x4_mul(s, b1));
      }
      float* c = C + (long)t * N + n;
      wasm_v128_store(c, c00); wasm_v128_store(c + 4, c01);
      wasm_v128_store(c + N, c10); wasm_v128_store(c + N + 4, c11);
      wasm_v128_store(c + 2 * N, c20); wasm_v128_store(c + 2 * N + 4, c21);
      wasm_v128_store(c + 3 * N, c30); wasm_v128_store(c + 3 * N + 4, c31);
    }
  }
  for (; t < T; t++) {
    const float* a = A + (long)t * lda;
    for (int n = 0; n < N; n += 8) {
      v128_t c0 = wasm_f32x4_splat(0.0f), c1 = c0;
      const float* b = B + n;
      for (int k = 0; k < K; k++, b += N) {
        const v128_t s = wasm_v128_load32_splat(a + k);
        c0 = wasm_f32x4_add(c0, wasm_f32x4_mul(s, wasm_v128_load(b)));
        c1 = wasm_f32x4_add(c1, wasm_f32x4_mul(s, wasm_v128_load(b + 4)));
      }
      wasm_v128_store(C + (long)t * N + n, c0);
      wasm_v128_store(C + (long)t * N + n + 4, c1);
    }
  }
}

/*
 * Batch norm + activation + 2x2/stride-2 max pool ('valid': OH = H/2, OW = W/2) fused, so the full-size
 * activation is never stored: the forward writes only the pooled output, and the gradient recomputes each
 * window's activations from x. The window's winner is the first maximum (the rule of max_pool_grad_2x2).
 * Per pixel y = act(x * scale[c] + shift[c]).
 */
static inline v128_t act_apply(v128_t v, int act, v128_t alpha) {
  if (act == 1) return wasm_f32x4_max(v, wasm_f32x4_splat(0.0f));
  if (act == 2) return wasm_v128_bitselect(v, wasm_f32x4_mul(v, alpha), wasm_f32x4_gt(v, wasm_f32x4_splat(0.0f)));
  return v;
}

/* The 4 winner masks of a window (first maximum wins; NaN never wins). */
#define POOL_WINNERS(y0, y1, y2, y3, s0, s1, s2, s3) do { \
    v128_t m_ = wasm_f32x4_splat(-__builtin_inff()); \
    v128_t w0_ = wasm_f32x4_gt(y0, m_); m_ = wasm_v128_bitselect(y0, m_, w0_); \
    v128_t w1_ = wasm_f32x4_gt(y1, m_); m_ = wasm_v128_bitselect(y1, m_, w1_); \
    v128_t w2_ = wasm_f32x4_gt(y2, m_); m_ = wasm_v128_bitselect(y2, m_, w2_); \
    v128_t w3_ = wasm_f32x4_gt(y3, m_); \
    s3 = w3_; \
    s2 = wasm_v128_andnot(w2_, s3); \
    s1 = wasm_v128_andnot(wasm_v128_andnot(w1_, s3), w2_); \
    s0 = wasm_v128_andnot(wasm_v128_andnot(wasm_v128_andnot(w0_, s3), w2_), w1_); \
  } while (0)

/*
 * A window as the gradients recompute it, channels c..c+3 of the 2x2 window whose top-left input is at b0 (rows
 * `row` floats apart): declares its inputs x0..x3 (top-left, top-right, bottom-left, bottom-right), activations
 * y0..y3 = act(x * k + s) and winner masks s0..s3.
 */
#define POOL_WINDOW(b0, row, C, c, k, s, act, va) \
  const v128_t x0 = wasm_v128_load(b0 + c), x1 = wasm_v128_load(b0 + C + c), x2 = wasm_v128_load(b0 + row + c), x3 = wasm_v128_load(b0 + row + C + c); \
  const v128_t y0 = act_apply(wasm_f32x4_add(wasm_f32x4_mul(x0, k), s), act, va), y1 = act_apply(wasm_f32x4_add(wasm_f32x4_mul(x1, k), s), act, va); \
  const v128_t y2 = act_apply(wasm_f32x4_add(wasm_f32x4_mul(x2, k), s), act, va), y3 = act_apply(wasm_f32x4_add(wasm_f32x4_mul(x3, k), s), act, va); \
  v128_t s0, s1, s2, s3; \
  POOL_WINNERS(y0, y1, y2, y3, s0, s1, s2, s3)

EXPORT(bn_act_pool_apply)
void bn_act_pool_apply(const float* x, float* p, int N, int H, int W, int C, const float* scale, const float* shift, int act, float alpha) {
  const int OH = H / 2, OW = W / 2;
  const long row = (long)W * C;
  const v128_t va = wasm_f32x4_splat(alpha);
  for (int n = 0; n < N; n++)
    for (int oh = 0; oh < OH; oh++)
      for (int ow = 0; ow < OW; ow++) {
        const float* b0 = x + ((long)n * H + 2 * oh) * row + (long)2 * ow * C;
        float* out = p + (((long)n * OH + oh) * OW + ow) * C;
        for (int c = 0; c < C; c += 4) {
          const v128_t k = wasm_v128_load(scale + c), s = wasm_v128_load(shift + c);
          v128_t y0 = act_apply(wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(b0 + c), k), s), act, va);
          v128_t y1 = act_apply(wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(b0 + C + c), k), s), act, va);
          v128_t y2 = act_apply(wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(b0 + row + c), k), s), act, va);
          v128_t y3 = act_apply(wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(b0 + row + C + c), k), s), act, va);
          wasm_v128_store(out + c, wasm_f32x4_max(wasm_f32x4_max(y0, y1), wasm_f32x4_max(y2, y3)));
        }
      }
}

/* dpre of one window position: dp * act'(y) on the winner, 0 elsewhere. */
static inline v128_t pool_dpre(v128_t dp, v128_t y, v128_t winner, int act, v128_t alpha) {
  return wasm_v128_and(act_mask_grad(dp, y, act, alpha), winner);
}

/* sdy[c] = sum dpre, sdyx[c] = sum dpre * (x - mean[c]) over the winners; blk is 2*C floats of scratch. */
EXPORT(bn_act_pool_grad_sums)
void bn_act_pool_grad_sums(const float* dp, const float* x, int N, int H, int W, int C, const float* scale, const float* shift,
                           const float* mean, int act, float alpha, double* sdy, double* sdyx, float* blk) {
  const int OH = H / 2, OW = W / 2;
  const long row = (long)W * C;
  const v128_t va = wasm_f32x4_splat(alpha);
  float* b1 = blk;
  float* b2 = blk + C;
  for (int c = 0; c < C; c++) { sdy[c] = 0.0; sdyx[c] = 0.0; b1[c] = 0.0f; b2[c] = 0.0f; }
  for (int n = 0; n < N; n++)
    for (int oh = 0; oh < OH; oh++) {
      for (int ow = 0; ow < OW; ow++) {
        const float* b0 = x + ((long)n * H + 2 * oh) * row + (long)2 * ow * C;
        const float* g = dp + (((long)n * OH + oh) * OW + ow) * C;
        for (int c = 0; c < C; c += 4) {
          const v128_t k = wasm_v128_load(scale + c), s = wasm_v128_load(shift + c), m = wasm_v128_load(mean + c);
          POOL_WINDOW(b0, row, C, c, k, s, act, va);
          const v128_t gv = wasm_v128_load(g + c);
          const v128_t d0 = pool_dpre(gv, y0, s0, act, va), d1 = pool_dpre(gv, y1, s1, act, va);
          const v128_t d2 = pool_dpre(gv, y2, s2, act, va), d3 = pool_dpre(gv, y3, s3, act, va);
          const v128_t dsum = wasm_f32x4_add(wasm_f32x4_add(d0, d1), wasm_f32x4_add(d2, d3));
          const v128_t dx = wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(d0, wasm_f32x4_sub(x0, m)), wasm_f32x4_mul(d1, wasm_f32x4_sub(x1, m))),
                                           wasm_f32x4_add(wasm_f32x4_mul(d2, wasm_f32x4_sub(x2, m)), wasm_f32x4_mul(d3, wasm_f32x4_sub(x3, m))));
          wasm_v128_store(b1 + c, wasm_f32x4_add(wasm_v128_load(b1 + c), dsum));
          wasm_v128_store(b2 + c, wasm_f32x4_add(wasm_v128_load(b2 + c), dx));
        }
      }
      flush_block(b1, b2, sdy, sdyx, C);
    }
}

/* dx = k1 * dpre + k2 * x + k3 everywhere (dpre = 0 off the winners and in a dropped odd last row/column). */
EXPORT(bn_act_pool_grad_apply)
void bn_act_pool_grad_apply(const float* dp, const float* x, float* dx, int N, int H, int W, int C, const float* scale, const float* shift,
                            const float* k1, const float* k2, const float* k3, int act, float alpha) {
  const int OH = H / 2, OW = W / 2;
  const long row = (long)W * C;
  const v128_t va = wasm_f32x4_splat(alpha);
  for (int n = 0; n < N; n++) {
    for (int h = 0; h < H; h++) {
      const int oh = h / 2;
      const float* xr = x + ((long)n * H + h) * row;
      float* dr = dx + ((long)n * H + h) * row;
      if (oh >= OH) {
        for (int w = 0; w < W; w++)
          for (int c = 0; c < C; c += 4)
            wasm_v128_store(dr + (long)w * C + c, wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(k2 + c), wasm_v128_load(xr + (long)w * C + c)), wasm_v128_load(k3 + c)));
        continue;
      }
      /* Row h is the top (0) or bottom (1) row of its windows: recompute the whole window to find the winner. */
      const int bottom = h & 1;
      const float* top = xr - (long)bottom * row;
      for (int ow = 0; ow < OW; ow++) {
        const float* b0 = top + (long)2 * ow * C;
        const float* g = dp + (((long)n * OH + oh) * OW + ow) * C;
        for (int c = 0; c < C; c += 4) {
          const v128_t k = wasm_v128_load(scale + c), s = wasm_v128_load(shift + c);
          POOL_WINDOW(b0, row, C, c, k, s, act, va);
          const v128_t gv = wasm_v128_load(g + c);
          const v128_t a1 = wasm_v128_load(k1 + c), a2 = wasm_v128_load(k2 + c), a3 = wasm_v128_load(k3 + c);
          v128_t dl, drt, xl, xrt;
          if (!bottom) { dl = pool_dpre(gv, y0, s0, act, va); drt = pool_dpre(gv, y1, s1, act, va); xl = x0; xrt = x1; }
          else { dl = pool_dpre(gv, y2, s2, act, va); drt = pool_dpre(gv, y3, s3, act, va); xl = x2; xrt = x3; }
          float* o = dr + (long)2 * ow * C + c;
          wasm_v128_store(o, wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(a1, dl), wasm_f32x4_mul(a2, xl)), a3));
          wasm_v128_store(o + C, wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(a1, drt), wasm_f32x4_mul(a2, xrt)), a3));
        }
      }
      /* An odd last column is outside every window. */
      for (int w = 2 * OW; w < W; w++)
        for (int c = 0; c < C; c += 4)
          wasm_v128_store(dr + (long)w * C + c, wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(k2 + c), wasm_v128_load(xr + (long)w * C + c)), wasm_v128_load(k3 + c)));
    }
  }
}

/*
 * Pixel-permuting copies of NHWC images (SLA's rotations x channel permutations, image_copies.ts):
 *   y[b*M + j][h][w][c] = x[b][src_j(h, w)][perm_j[c]],  src_j(h, w) = origin_j + h*sh_j + w*sw_j (in floats).
 * `spec` holds M records of 4 + C int32: origin, sh, sw, rows (1 when each output row is an input row as is:
 * no rotation, no channel permutation), perm[0..C). A rotation by k quarter turns is a choice of origin and
 * strides, so one loop serves every copy; C = 3 (RGB) keeps the permutation in registers. (`rows` is decided
 * by the caller: testing perm here got SLP-vectorised into a <4 x i1> bitcast that needs a stack frame.)
 */
EXPORT(transform_copies)
void transform_copies(const float* x, float* y, int count, int H, int W, int C, int M, const int* spec) {
  const long img = (long)H * W * C;
  for (int b = 0; b < count; b++) {
    const float* xi = x + b * img;
    for (int j = 0; j < M; j++) {
      const int* s = spec + j * (4 + C);
      const int origin = s[0], sh = s[1], sw = s[2];
      const int* perm = s + 4;
      float* yo = y + ((long)b * M + j) * img;
      if (s[3]) {
        /* Rows as they are: vector copies. */
        const int n = W * C;
        for (int h = 0; h < H; h++, yo += n) {
          const float* row = xi + origin + (long)h * sh;
          int i = 0;
          for (; i + 4 <= n; i += 4) wasm_v128_store(yo + i, wasm_v128_load(row + i));
          for (; i < n; i++) yo[i] = row[i];
        }
      } else if (C == 3) {
        const int p0 = perm[0], p1 = perm[1], p2 = perm[2];
        for (int h = 0; h < H; h++) {
          const float* px = xi + origin + (long)h * sh;
          for (int w = 0; w < W; w++, px += sw, yo += 3) {
            yo[0] = px[p0];
            yo[1] = px[p1];
            yo[2] = px[p2];
          }
        }
      } else {
        for (int h = 0; h < H; h++) {
          const float* px = xi + origin + (long)h * sh;
          for (int w = 0; w < W; w++, px += sw, yo += C)
            for (int c = 0; c < C; c++) yo[c] = px[perm[c]];
        }
      }
    }
  }
}

/*
 * The gradient of transform_copies: each copy is a permutation, so dx[b] = sum_j (copy j's inverse map of
 * dy[b*M + j]), summed in order j = 0..M-1 (copy 0 assigns, the others add).
 */
EXPORT(transform_copies_grad)
void transform_copies_grad(const float* dy, float* dx, int count, int H, int W, int C, int M, const int* spec) {
  const long img = (long)H * W * C;
  for (int b = 0; b < count; b++) {
    float* di = dx + b * img;
    for (int j = 0; j < M; j++) {
      const int* s = spec + j * (4 + C);
      const int origin = s[0], sh = s[1], sw = s[2];
      const int* perm = s + 4;
      const float* g = dy + ((long)b * M + j) * img;
      for (int h = 0; h < H; h++) {
        float* px = di + origin + (long)h * sh;
        if (j == 0) {
          for (int w = 0; w < W; w++, px += sw, g += C)
            for (int c = 0; c < C; c++) px[perm[c]] = g[c];
        } else {
          for (int w = 0; w < W; w++, px += sw, g += C)
            for (int c = 0; c < C; c++) px[perm[c]] += g[c];
        }
      }
    }
  }
}
