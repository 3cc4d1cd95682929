/**
 * The exports of native/kernels.c as TypeScript calls them. A file of its own so that both the loader
 * (native.ts) and the helper thread (helper_thread.ts) can name them without importing each other.
 * Pointers are byte offsets into the backend heap; `double*` scratch comes from `scratch()` in native.ts.
 */
export interface NativeKernels {
  bn_sums(x: number, P: number, C: number, s1: number, s2: number, blk: number): void;
  bn_apply(x: number, y: number, P: number, C: number, scale: number, shift: number, act: number, alpha: number): void;
  bn_grad_sums(dy: number, x: number, y: number, P: number, C: number, mean: number, act: number, alpha: number, sdy: number, sdyx: number, blk: number): void;
  bn_grad_apply(dy: number, x: number, y: number, dx: number, P: number, C: number, k1: number, k2: number, k3: number, act: number, alpha: number): void;
  max_pool_grad_2x2(
    x: number,
    dy: number,
    dx: number,
    N: number,
    H: number,
    W: number,
    C: number,
    OH: number,
    OW: number,
    OHfull: number,
    OWfull: number,
  ): void;
  reduce_middle(x: number, out: number, outer: number, R: number, inner: number, scale: number, acc: number): void;
  to_channel_major(x: number, xT: number, plane: number, C: number): void;
  fill_col_t(xT: number, col: number, count: number, ...window: WindowArgs): void;
  add_into(acc: number, part: number, n: number): void;
  im2col(x: number, col: number, count: number, ...window: WindowArgs): void;
  filter_grad_c3(xp: number, dy: number, dW: number, count: number, OH: number, OW: number, KH: number, KW: number, CO: number): void;
  pad_images(x: number, xp: number, count: number, H: number, W: number, C: number, PH: number, PW: number, pt: number, pl: number): void;
  gemm_atb_acc(A: number, B: number, C: number, T: number, M: number, N: number, lda: number, ldb: number): void;
  gemm_ab(A: number, B: number, C: number, T: number, K: number, N: number, lda: number): void;
  bn_act_pool_apply(...args: [x: number, p: number, ...PoolWindows, act: number, alpha: number]): void;
  bn_act_pool_grad_sums(
    ...args: [dp: number, x: number, ...PoolWindows, mean: number, act: number, alpha: number, sdy: number, sdyx: number, blk: number]
  ): void;
  bn_act_pool_grad_apply(...args: [dp: number, x: number, dx: number, ...PoolWindows, k1: number, k2: number, k3: number, act: number, alpha: number]): void;
  wino_filter_transform(w: number, U: number, Ci: number, Co: number): void;
  wino_filter_grad_transform(dU: number, dW: number, Ci: number, Co: number): void;
  wino_input_transform(x: number, V: number, count: number, H: number, W: number, C: number, TH: number, TW: number, pt: number, pl: number, T: number): void;
  wino_output_transform(M: number, y: number, count: number, OH: number, OW: number, C: number, TH: number, TW: number, T: number): void;
  transform_copies(x: number, y: number, count: number, H: number, W: number, C: number, M: number, spec: number): void;
  transform_copies_grad(dy: number, dx: number, count: number, H: number, W: number, C: number, M: number, spec: number): void;
  wino_output_grad_transform(dy: number, Wd: number, count: number, OH: number, OW: number, C: number, TH: number, TW: number, T: number): void;
}

/**
 * A convolution's window as im2col and fill_col_t take it: input H, W, C, output OH, OW, filter KH, KW, strides
 * sh, sw, top and left padding pt, pl.
 */
export type WindowArgs = [H: number, W: number, C: number, OH: number, OW: number, KH: number, KW: number, sh: number, sw: number, pt: number, pl: number];

/**
 * What the batch norm + act + 2x2 pool passes take alike, in the middle of their C prototypes: N images of H x W
 * x C and the byte offsets of the per-channel scale and shift of y = act(x * scale + shift).
 */
export type PoolWindows = [N: number, H: number, W: number, C: number, scale: number, shift: number];
