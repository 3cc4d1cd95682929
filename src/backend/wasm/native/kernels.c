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
