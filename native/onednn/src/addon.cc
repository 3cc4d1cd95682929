// fewshot-onednn: oneDNN kernels that compute in place on the tfjs wasm backend's heap.
//
// Every call receives a Float32Array view of the whole wasm memory (plain or shared) plus float offsets of the
// tensors in it: no copies in or out. Layouts are tfjs's: activations NHWC, filters HWIO, matrices row-major.
// oneDNN's logical dimension order is always N,C,H,W / O,I,H,W; the format tags describe the memory.
//
// Primitives are built once per shape (a descriptor costs tens of microseconds, a JIT kernel milliseconds)
// and kept in a map keyed by kind + shape. Filters are reordered from HWIO into the layout the primitive
// prefers (a few KB-MB, every call: the filter changes every step). Convolutions run direct on NHWC or, where
// the caller asks (src/backend/wasm/onednn_kernels.ts), Winograd with the activations reordered to oneDNN's
// blocked layout and back inside the call. Native scratch (those blocked copies, batch norm's full-size
// activations) lives in a few arenas shared by every layer, grown to the largest use.
//
// The batch norm + ReLU + 2x2 max-pool op keeps the semantics of src/backend/wasm/batch_norm_pool.ts: the
// forward returns only the pooled output and the batch statistics; the backward recomputes the activations
// from x and the saved statistics (oneDNN's use_global_stats), so nothing full-size outlives a call.

#include <napi.h>
#include <omp.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"

using namespace dnnl;
using tag = memory::format_tag;
using dt = memory::data_type;

namespace {

engine& eng() {
  static engine e(engine::kind::cpu, 0);
  return e;
}
stream& strm() {
  static stream s(eng());
  return s;
}

// Executes with the step named in the error ("could not execute a primitive" alone does not say which).
void exec(const char* step, const primitive& p, const std::unordered_map<int, memory>& args) {
  try {
    p.execute(strm(), args);
  } catch (const dnnl::error& e) {
    throw std::runtime_error(std::string(step) + ": " + e.what());
  }
}

// ---- arguments.

float* heapBase(const Napi::CallbackInfo& info) {
  if (!info[0].IsTypedArray()) throw Napi::TypeError::New(info.Env(), "argument 0 must be a Float32Array view of the wasm heap");
  return info[0].As<Napi::Float32Array>().Data();
}

float* at(const Napi::CallbackInfo& info, float* base, size_t i) { return base + info[i].As<Napi::Number>().Int64Value(); }

// The tensors at arguments 1 .. N: float offsets into the heap view at argument 0.
template <size_t N>
std::array<float*, N> heapArgs(const Napi::CallbackInfo& info) {
  float* base = heapBase(info);
  std::array<float*, N> p;
  for (size_t i = 0; i < N; i++) p[i] = at(info, base, i + 1);
  return p;
}

std::vector<int64_t> ints(const Napi::CallbackInfo& info, size_t i) {
  auto a = info[i].As<Napi::Array>();
  std::vector<int64_t> v(a.Length());
  for (uint32_t k = 0; k < a.Length(); k++) v[k] = a.Get(k).As<Napi::Number>().Int64Value();
  return v;
}

std::string keyOf(const char* kind, const std::vector<int64_t>& g) {
  std::string k(kind);
  for (auto v : g) k += "," + std::to_string(v);
  return k;
}

// ---- convolution. Geometry g: N, H, W, CI, OH, OW, CO, KH, KW, sh, sw, pt, pl, pb, pr, algorithm (0 direct on
// NHWC, 1 Winograd F(4x4, 3x3) in oneDNN's blocked layout with the activations reordered in and out per call).

struct ConvShape {
  memory::desc x, w, y;  // user layouts: nhwc, hwio, nhwc
  memory::dims strides, padL, padR;
  algorithm alg;
  explicit ConvShape(const std::vector<int64_t>& g)
      : x({g[0], g[3], g[1], g[2]}, dt::f32, tag::nhwc),
        w({g[6], g[3], g[7], g[8]}, dt::f32, tag::hwio),
        y({g[0], g[6], g[4], g[5]}, dt::f32, tag::nhwc),
        strides{g[9], g[10]},
        padL{g[11], g[12]},
        padR{g[13], g[14]},
        alg(g[15] == 1 ? algorithm::convolution_winograd : algorithm::convolution_direct) {}
  static memory::desc any(const memory::desc& d) { return memory::desc(d.dims(), dt::f32, tag::any); }
  // Direct convolutions keep the activations in NHWC (no reorders); Winograd needs its blocked layout.
  memory::desc xArg() const { return alg == algorithm::convolution_direct ? x : any(x); }
  memory::desc yArg() const { return alg == algorithm::convolution_direct ? y : any(y); }
  convolution_forward::primitive_desc forwardHint() const {
    return convolution_forward::primitive_desc(
        convolution_forward::desc(prop_kind::forward_training, alg, xArg(), any(w), yArg(), strides, padL, padR), eng());
  }
};

// Scratch for activations in the primitive's layout (Winograd): one arena per operand role, grown to the largest
// use and shared by every layer and pass (calls run one at a time), so the native memory this costs is one
// layer's blocked input and output, not one copy per layer and pass.
// 64-byte aligned, as oneDNN allocates its own buffers: its JIT kernels use aligned vector loads on them.
struct Arena {
  float* data = nullptr;
  size_t floats = 0;
};
Arena arenas[5];  // 0 input, 1 output, 2 filter of a convolution; 3, 4 batch norm + pool / add + act + pool scratch

float* arena(int i, size_t floats) {
  Arena& a = arenas[i];
  if (a.floats < floats) {
    std::free(a.data);
    size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
    a.data = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (a.data == nullptr) throw std::runtime_error("out of memory for oneDNN scratch (" + std::to_string(bytes >> 20) + " MiB)");
    a.floats = floats;
  }
  return a.data;
}

// One operand in the primitive's layout: the user's memory itself, or an arena and the reorders to and from it.
struct Operand {
  memory::desc user, prim;
  bool reordered = false;
  int role = 0;
  void init(const memory::desc& u, const memory::desc& p, int role) {
    user = u;
    prim = p;
    reordered = p != u;
    this->role = role;
  }
  memory scratch() const { return memory(prim, eng(), arena(role, (prim.get_size() + sizeof(float) - 1) / sizeof(float))); }
  memory in(stream& st, float* ptr) const {  // user data into the primitive's layout
    memory m(user, eng(), ptr);
    if (!reordered) return m;
    memory buf = scratch();
    reorder(m, buf).execute(st, m, buf);
    return buf;
  }
  memory out(float* ptr) const { return reordered ? scratch() : memory(user, eng(), ptr); }
  void flush(stream& st, float* ptr) const {  // the primitive's result back to the user's layout
    if (!reordered) return;
    memory m(user, eng(), ptr);
    memory buf = scratch();
    reorder(buf, m).execute(st, buf, m);
  }
};

struct ConvEntry {
  primitive prim;
  Operand x, w, y;
};

std::unordered_map<std::string, std::shared_ptr<ConvEntry>> convCache;

std::shared_ptr<ConvEntry> convEntry(int kind, const std::vector<int64_t>& g) {
  static const char* names[] = {"fwd", "bwd_data", "bwd_weights"};
  auto key = keyOf(names[kind], g);
  auto it = convCache.find(key);
  if (it != convCache.end()) return it->second;
  ConvShape s(g);
  auto e = std::make_shared<ConvEntry>();
  if (kind == 0) {
    auto pd = s.forwardHint();
    e->prim = convolution_forward(pd);
    e->x.init(s.x, pd.src_desc(), 0);
    e->w.init(s.w, pd.weights_desc(), 2);
    e->y.init(s.y, pd.dst_desc(), 1);
  } else if (kind == 1) {
    auto pd = convolution_backward_data::primitive_desc(
        convolution_backward_data::desc(s.alg, s.xArg(), ConvShape::any(s.w), s.yArg(), s.strides, s.padL, s.padR), eng(), s.forwardHint());
    e->prim = convolution_backward_data(pd);
    e->x.init(s.x, pd.diff_src_desc(), 0);
    e->w.init(s.w, pd.weights_desc(), 2);
    e->y.init(s.y, pd.diff_dst_desc(), 1);
  } else {
    auto pd = convolution_backward_weights::primitive_desc(
        convolution_backward_weights::desc(s.alg, s.xArg(), ConvShape::any(s.w), s.yArg(), s.strides, s.padL, s.padR), eng(), s.forwardHint());
    e->prim = convolution_backward_weights(pd);
    e->x.init(s.x, pd.src_desc(), 0);
    e->w.init(s.w, pd.diff_weights_desc(), 2);
    e->y.init(s.y, pd.diff_dst_desc(), 1);
  }
  convCache.emplace(key, e);
  return e;
}

// conv(heap, kind, a, b, c, geometry): kind 0 y = conv(x=a, w=b) into c; 1 dx(c) from dy=a, w=b; 2 dw(c) from x=a, dy=b.
Napi::Value Conv(const Napi::CallbackInfo& info) {
  float* base = heapBase(info);
  int kind = info[1].As<Napi::Number>().Int32Value();
  float* a = at(info, base, 2);
  float* b = at(info, base, 3);
  float* c = at(info, base, 4);
  auto g = ints(info, 5);
  if (g.size() != 16 || kind < 0 || kind > 2 || g[15] < 0 || g[15] > 1) throw Napi::TypeError::New(info.Env(), "conv: bad kind or geometry");
  auto e = convEntry(kind, g);
  auto& st = strm();
  if (kind == 0) {
    exec("convolution forward", e->prim, {{DNNL_ARG_SRC, e->x.in(st, a)}, {DNNL_ARG_WEIGHTS, e->w.in(st, b)}, {DNNL_ARG_DST, e->y.out(c)}});
    e->y.flush(st, c);
  } else if (kind == 1) {
    exec("convolution backward data", e->prim, {{DNNL_ARG_DIFF_DST, e->y.in(st, a)}, {DNNL_ARG_WEIGHTS, e->w.in(st, b)}, {DNNL_ARG_DIFF_SRC, e->x.out(c)}});
    e->x.flush(st, c);
  } else {
    exec("convolution backward weights", e->prim, {{DNNL_ARG_SRC, e->x.in(st, a)}, {DNNL_ARG_DIFF_DST, e->y.in(st, b)}, {DNNL_ARG_DIFF_WEIGHTS, e->w.out(c)}});
    e->w.flush(st, c);
  }
  st.wait();
  return info.Env().Undefined();
}

// winogradAvailable(geometry): whether oneDNN has a Winograd implementation for this convolution on this CPU.
Napi::Value WinogradAvailable(const Napi::CallbackInfo& info) {
  auto g = ints(info, 0);
  if (g.size() != 16) throw Napi::TypeError::New(info.Env(), "winogradAvailable: bad geometry");
  g[15] = 1;
  try {
    ConvShape(g).forwardHint();
    return Napi::Boolean::New(info.Env(), true);
  } catch (const dnnl::error&) {
    return Napi::Boolean::New(info.Env(), false);
  }
}

// ---- batch norm (training statistics) + optional ReLU + 2x2/stride-2 'valid' max pool. Geometry: N, H, W, C, relu.

struct BnPoolEntry {
  std::vector<int64_t> g;
  memory::desc x, p, c1;
  batch_normalization_forward::primitive_desc bnTrain, bnGlobal;
  batch_normalization_backward::primitive_desc bnBwd;
  pooling_forward::primitive_desc poolInfer, poolTrain;
  pooling_backward::primitive_desc poolBwd;
  primitive bnTrainP, bnGlobalP, bnBwdP, poolInferP, poolTrainP, poolBwdP;
  std::unique_ptr<memory> bnWs, poolWs;
};

std::unordered_map<std::string, std::shared_ptr<BnPoolEntry>> bnCache;

// The entry for the call's geometry (argument i) and epsilon (argument i + 1).
std::shared_ptr<BnPoolEntry> bnEntry(const Napi::CallbackInfo& info, size_t i) {
  auto g = ints(info, i);
  if (g.size() != 5) throw Napi::TypeError::New(info.Env(), "batch norm + pool: bad geometry");
  float eps = info[i + 1].As<Napi::Number>().FloatValue();
  auto key = keyOf("bnpool", g) + "," + std::to_string(eps);
  auto it = bnCache.find(key);
  if (it != bnCache.end()) return it->second;
  const int64_t N = g[0], H = g[1], W = g[2], C = g[3];
  const bool relu = g[4] != 0;
  const int64_t OH = H / 2, OW = W / 2;
  auto e = std::make_shared<BnPoolEntry>();
  e->g = g;
  e->x = memory::desc({N, C, H, W}, dt::f32, tag::nhwc);
  e->p = memory::desc({N, C, OH, OW}, dt::f32, tag::nhwc);
  e->c1 = memory::desc({C}, dt::f32, tag::a);
  auto flags = normalization_flags::use_scale | normalization_flags::use_shift;
  if (relu) flags = flags | normalization_flags::fuse_norm_relu;
  e->bnTrain = batch_normalization_forward::primitive_desc(batch_normalization_forward::desc(prop_kind::forward_training, e->x, eps, flags), eng());
  e->bnGlobal = batch_normalization_forward::primitive_desc(
      batch_normalization_forward::desc(prop_kind::forward_training, e->x, eps, flags | normalization_flags::use_global_stats), eng());
  e->bnBwd = batch_normalization_backward::primitive_desc(batch_normalization_backward::desc(prop_kind::backward, e->x, e->x, eps, flags), eng(), e->bnTrain);
  // 'valid' pooling drops a trailing odd row/column: right padding -1 makes oneDNN's size rule give OH exactly.
  memory::dims padR{(OH - 1) * 2 + 2 - H, (OW - 1) * 2 + 2 - W};
  auto poolDesc = [&](prop_kind pk) { return pooling_forward::desc(pk, algorithm::pooling_max, e->x, e->p, {2, 2}, {2, 2}, {0, 0}, padR); };
  e->poolInfer = pooling_forward::primitive_desc(poolDesc(prop_kind::forward_inference), eng());
  e->poolTrain = pooling_forward::primitive_desc(poolDesc(prop_kind::forward_training), eng());
  e->poolBwd = pooling_backward::primitive_desc(pooling_backward::desc(algorithm::pooling_max, e->x, e->p, {2, 2}, {2, 2}, {0, 0}, padR), eng(), e->poolTrain);
  e->bnTrainP = batch_normalization_forward(e->bnTrain);
  e->bnGlobalP = batch_normalization_forward(e->bnGlobal);
  e->bnBwdP = batch_normalization_backward(e->bnBwd);
  e->poolInferP = pooling_forward(e->poolInfer);
  e->poolTrainP = pooling_forward(e->poolTrain);
  e->poolBwdP = pooling_backward(e->poolBwd);
  if (relu) e->bnWs = std::make_unique<memory>(e->bnTrain.workspace_desc(), eng());
  e->poolWs = std::make_unique<memory>(e->poolTrain.workspace_desc(), eng());
  bnCache.emplace(key, e);
  return e;
}

// The batch norm forward's arguments (training or recompute): with the ReLU workspace when the ReLU is fused.
std::unordered_map<int, memory> bnForwardArgs(const BnPoolEntry& e, const memory& src, const memory& dst, const memory& scale, const memory& shift,
                                              const memory& mean, const memory& var) {
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src},     {DNNL_ARG_DST, dst},   {DNNL_ARG_SCALE, scale},
                                       {DNNL_ARG_SHIFT, shift}, {DNNL_ARG_MEAN, mean}, {DNNL_ARG_VARIANCE, var}};
  if (e.bnWs) args.insert({DNNL_ARG_WORKSPACE, *e.bnWs});
  return args;
}

// bnPoolForward(heap, x, gamma, beta, p, mean, variance, [N, H, W, C, relu], eps)
Napi::Value BnPoolForward(const Napi::CallbackInfo& info) {
  auto [x, gamma, beta, p, mean, var] = heapArgs<6>(info);
  auto e = bnEntry(info, 7);
  const auto& g = e->g;
  // The full-size activations before pooling, in native scratch shared by every layer.
  memory y(e->x, eng(), arena(3, static_cast<size_t>(g[0] * g[1] * g[2] * g[3])));
  exec("batch norm forward", e->bnTrainP,
       bnForwardArgs(*e, memory(e->x, eng(), x), y, memory(e->c1, eng(), gamma), memory(e->c1, eng(), beta), memory(e->c1, eng(), mean),
                     memory(e->c1, eng(), var)));
  exec("max pool forward", e->poolInferP, {{DNNL_ARG_SRC, y}, {DNNL_ARG_DST, memory(e->p, eng(), p)}});
  strm().wait();
  return info.Env().Undefined();
}

// bnPoolBackward(heap, dp, x, gamma, beta, mean, variance, dmean, dvar, dx, dgamma, dbeta, [N, H, W, C, relu], eps)
Napi::Value BnPoolBackward(const Napi::CallbackInfo& info) {
  auto [dp, x, gamma, beta, mean, var, dmean, dvar, dx, dgamma, dbeta] = heapArgs<11>(info);
  auto e = bnEntry(info, 12);
  const auto& g = e->g;
  memory xm(e->x, eng(), x), dxm(e->x, eng(), dx), scale(e->c1, eng(), gamma), shift(e->c1, eng(), beta), mm(e->c1, eng(), mean),
      vm(e->c1, eng(), var);
  // dx's memory holds, in turn: the recomputed activations, the pooling gradient, and (in place) dx.
  exec("batch norm recompute", e->bnGlobalP, bnForwardArgs(*e, xm, dxm, scale, shift, mm, vm));
  float* pScratch = arena(4, static_cast<size_t>(g[0] * (g[1] / 2) * (g[2] / 2) * g[3]));
  exec("max pool recompute", e->poolTrainP, {{DNNL_ARG_SRC, dxm}, {DNNL_ARG_DST, memory(e->p, eng(), pScratch)}, {DNNL_ARG_WORKSPACE, *e->poolWs}});
  exec("max pool backward", e->poolBwdP, {{DNNL_ARG_DIFF_DST, memory(e->p, eng(), dp)}, {DNNL_ARG_DIFF_SRC, dxm}, {DNNL_ARG_WORKSPACE, *e->poolWs}});
  std::unordered_map<int, memory> bwdArgs{{DNNL_ARG_SRC, xm}, {DNNL_ARG_DIFF_DST, dxm}, {DNNL_ARG_DIFF_SRC, dxm}, {DNNL_ARG_SCALE, scale},
                                          {DNNL_ARG_SHIFT, shift}, {DNNL_ARG_MEAN, mm}, {DNNL_ARG_VARIANCE, vm},
                                          {DNNL_ARG_DIFF_SCALE, memory(e->c1, eng(), dgamma)}, {DNNL_ARG_DIFF_SHIFT, memory(e->c1, eng(), dbeta)}};
  if (e->bnWs) bwdArgs.insert({DNNL_ARG_WORKSPACE, *e->bnWs});
  exec("batch norm backward", e->bnBwdP, bwdArgs);
  strm().wait();
  // Gradients arriving at the mean / variance outputs (zero in a training step, which only reads them for the
  // running statistics): d mean/dx = 1/P, d var/dx = 2 (x - mean) / P.
  const int64_t C = g[3], P = g[0] * g[1] * g[2];
  bool any = false;
  for (int64_t c = 0; c < C; c++) any = any || dmean[c] != 0.0f || dvar[c] != 0.0f;
  if (any) {
    for (int64_t i = 0; i < P; i++)
      for (int64_t c = 0; c < C; c++) dx[i * C + c] += dmean[c] / P + dvar[c] * 2.0f * (x[i * C + c] - mean[c]) / P;
  }
  return info.Env().Undefined();
}

// ---- residual add + ReLU / leaky ReLU + 2x2/stride-2 'valid' max pool (ResNet-12's block tail):
// p = maxpool(act(a + b)). oneDNN's binary add with an eltwise post-op writes act(a + b) into native scratch, then
// max pooling reads it. The backward recomputes act(a + b) (no full-size tensor outlives a call), runs pooling's
// backward into d and the activation's backward in place on d (from the activation's output: z > 0 iff a + b > 0
// for a positive slope); d is the gradient of both a and b. Geometry: N, H, W, C; alpha is the negative slope
// (0: ReLU).

struct AddPoolEntry {
  memory::desc x, p;
  primitive addP, poolInferP, poolTrainP, poolBwdP, actBwdP;
  std::unique_ptr<memory> poolWs;
};
std::unordered_map<std::string, std::shared_ptr<AddPoolEntry>> addPoolCache;

std::shared_ptr<AddPoolEntry> addPoolEntry(const std::vector<int64_t>& g, float alpha) {
  auto key = keyOf("addpool", g) + "," + std::to_string(alpha);
  auto it = addPoolCache.find(key);
  if (it != addPoolCache.end()) return it->second;
  const int64_t N = g[0], H = g[1], W = g[2], C = g[3], OH = H / 2, OW = W / 2;
  auto e = std::make_shared<AddPoolEntry>();
  e->x = memory::desc({N, C, H, W}, dt::f32, tag::nhwc);
  e->p = memory::desc({N, C, OH, OW}, dt::f32, tag::nhwc);
  post_ops ops;
  ops.append_eltwise(1.0f, algorithm::eltwise_relu, alpha, 0.0f);
  primitive_attr attr;
  attr.set_post_ops(ops);
  e->addP = binary(binary::primitive_desc(binary::desc(algorithm::binary_add, e->x, e->x, e->x), attr, eng()));
  memory::dims padR{(OH - 1) * 2 + 2 - H, (OW - 1) * 2 + 2 - W};
  auto poolDesc = [&](prop_kind pk) { return pooling_forward::desc(pk, algorithm::pooling_max, e->x, e->p, {2, 2}, {2, 2}, {0, 0}, padR); };
  auto poolTrain = pooling_forward::primitive_desc(poolDesc(prop_kind::forward_training), eng());
  e->poolInferP = pooling_forward(pooling_forward::primitive_desc(poolDesc(prop_kind::forward_inference), eng()));
  e->poolTrainP = pooling_forward(poolTrain);
  e->poolBwdP = pooling_backward(pooling_backward::primitive_desc(
      pooling_backward::desc(algorithm::pooling_max, e->x, e->p, {2, 2}, {2, 2}, {0, 0}, padR), eng(), poolTrain));
  e->poolWs = std::make_unique<memory>(poolTrain.workspace_desc(), eng());
  auto actFwd = eltwise_forward::primitive_desc(
      eltwise_forward::desc(prop_kind::forward_training, algorithm::eltwise_relu_use_dst_for_bwd, e->x, alpha, 0.0f), eng());
  e->actBwdP = eltwise_backward(eltwise_backward::primitive_desc(
      eltwise_backward::desc(algorithm::eltwise_relu_use_dst_for_bwd, e->x, e->x, alpha, 0.0f), eng(), actFwd));
  addPoolCache.emplace(key, e);
  return e;
}

// addActPoolForward(heap, a, b, p, [N, H, W, C], alpha)
Napi::Value AddActPoolForward(const Napi::CallbackInfo& info) {
  auto [a, b, p] = heapArgs<3>(info);
  auto g = ints(info, 4);
  if (g.size() != 4) throw Napi::TypeError::New(info.Env(), "addActPoolForward: bad geometry");
  auto e = addPoolEntry(g, info[5].As<Napi::Number>().FloatValue());
  auto& st = strm();
  memory z(e->x, eng(), arena(3, static_cast<size_t>(g[0] * g[1] * g[2] * g[3])));
  exec("add + activation", e->addP, {{DNNL_ARG_SRC_0, memory(e->x, eng(), a)}, {DNNL_ARG_SRC_1, memory(e->x, eng(), b)}, {DNNL_ARG_DST, z}});
  exec("max pool forward", e->poolInferP, {{DNNL_ARG_SRC, z}, {DNNL_ARG_DST, memory(e->p, eng(), p)}});
  st.wait();
  return info.Env().Undefined();
}

// addActPoolBackward(heap, dp, a, b, d, [N, H, W, C], alpha): d = the gradient of a (and of b).
Napi::Value AddActPoolBackward(const Napi::CallbackInfo& info) {
  auto [dp, a, b, d] = heapArgs<4>(info);
  auto g = ints(info, 5);
  if (g.size() != 4) throw Napi::TypeError::New(info.Env(), "addActPoolBackward: bad geometry");
  auto e = addPoolEntry(g, info[6].As<Napi::Number>().FloatValue());
  auto& st = strm();
  memory z(e->x, eng(), arena(3, static_cast<size_t>(g[0] * g[1] * g[2] * g[3]))), dm(e->x, eng(), d);
  float* pScratch = arena(4, static_cast<size_t>(g[0] * (g[1] / 2) * (g[2] / 2) * g[3]));
  exec("add + activation recompute", e->addP, {{DNNL_ARG_SRC_0, memory(e->x, eng(), a)}, {DNNL_ARG_SRC_1, memory(e->x, eng(), b)}, {DNNL_ARG_DST, z}});
  exec("max pool recompute", e->poolTrainP, {{DNNL_ARG_SRC, z}, {DNNL_ARG_DST, memory(e->p, eng(), pScratch)}, {DNNL_ARG_WORKSPACE, *e->poolWs}});
  exec("max pool backward", e->poolBwdP, {{DNNL_ARG_DIFF_DST, memory(e->p, eng(), dp)}, {DNNL_ARG_DIFF_SRC, dm}, {DNNL_ARG_WORKSPACE, *e->poolWs}});
  exec("activation backward", e->actBwdP, {{DNNL_ARG_DST, z}, {DNNL_ARG_DIFF_DST, dm}, {DNNL_ARG_DIFF_SRC, dm}});
  st.wait();
  return info.Env().Undefined();
}

// ---- leaky ReLU (ReLU at alpha 0) over n floats, y may be x: oneDNN's eltwise on a flat view (layout does not
// matter to an elementwise op).

std::unordered_map<std::string, primitive> eltwiseCache;

// leakyRelu(heap, x, y, n, alpha)
Napi::Value LeakyRelu(const Napi::CallbackInfo& info) {
  auto [x, y] = heapArgs<2>(info);
  int64_t n = info[3].As<Napi::Number>().Int64Value();
  float alpha = info[4].As<Napi::Number>().FloatValue();
  memory::desc d({n}, dt::f32, tag::a);
  auto key = "leakyrelu," + std::to_string(n) + "," + std::to_string(alpha);
  auto it = eltwiseCache.find(key);
  if (it == eltwiseCache.end()) {
    auto pd = eltwise_forward::primitive_desc(eltwise_forward::desc(prop_kind::forward_inference, algorithm::eltwise_relu, d, alpha, 0.0f), eng());
    it = eltwiseCache.emplace(key, eltwise_forward(pd)).first;
  }
  auto& st = strm();
  exec("leaky relu", it->second, {{DNNL_ARG_SRC, memory(d, eng(), x)}, {DNNL_ARG_DST, memory(d, eng(), y)}});
  st.wait();
  return info.Env().Undefined();
}

// ---- Adam: one variable's update, the arithmetic of src/backend/wasm/adam.ts's adamLoop (PyTorch's Adam) in
// float32 with every intermediate rounded as there (built with -ffp-contract=off: no fused multiply-adds), so the
// result is bit-identical to the wasm and cpu kernels. No library has it (oneDNN has no optimizers); the loop is
// memory-bound, vectorised by the compiler for the CPU it runs on (target clones) and split over OpenMP threads.

__attribute__((target_clones("avx512f", "avx2", "default")))
void adamLoop(const float* p, const float* gr, const float* m, const float* v, float* po, float* mo, float* vo, int64_t n, const float* k) {
  const float b1 = k[0], b2 = k[1], c1 = k[2], c2 = k[3], bc2 = k[4], stepSize = k[5], eps = k[6], wd = k[7];
#pragma omp parallel for simd schedule(static) if (n >= (1 << 18))
  for (int64_t i = 0; i < n; i++) {
    const float gi = wd != 0.0f ? gr[i] + p[i] * wd : gr[i];
    const float mi = m[i] * b1 + gi * c1;
    const float vi = v[i] * b2 + (gi * gi) * c2;
    mo[i] = mi;
    vo[i] = vi;
    const float denom = __builtin_sqrtf(vi / bc2) + eps;
    po[i] = p[i] - (mi / denom) * stepSize;
  }
}

// adam(heap, p, g, m, v, pOut, mOut, vOut, n, [beta1, beta2, 1 - beta1, 1 - beta2, bias correction 2, step size, eps,
// weight decay]) with the constants already rounded to float32 by the caller.
Napi::Value Adam(const Napi::CallbackInfo& info) {
  auto [p, g, m, v, po, mo, vo] = heapArgs<7>(info);
  int64_t n = info[8].As<Napi::Number>().Int64Value();
  auto ka = info[9].As<Napi::Array>();
  if (ka.Length() != 8) throw Napi::TypeError::New(info.Env(), "adam: 8 constants expected");
  float k[8];
  for (uint32_t i = 0; i < 8; i++) k[i] = ka.Get(i).As<Napi::Number>().FloatValue();
  adamLoop(p, g, m, v, po, mo, vo, n, k);
  return info.Env().Undefined();
}

// ---- batched matrix product: c[b] = op(a[b]) @ op(b[b]), a [Ba, M, K] (or [Ba, K, M] if ta), b [Bb, K, N] (or
// [Bb, N, K] if tb), Ba and Bb equal or 1 (broadcast). Geometry: Ba, Bb, M, K, N, ta, tb.

struct MatMulEntry {
  memory::desc a, b, c;
  primitive prim;
};
std::unordered_map<std::string, std::shared_ptr<MatMulEntry>> mmCache;

Napi::Value MatMul(const Napi::CallbackInfo& info) {
  auto [a, b, c] = heapArgs<3>(info);
  auto g = ints(info, 4);
  auto key = keyOf("matmul", g);
  auto it = mmCache.find(key);
  std::shared_ptr<MatMulEntry> e;
  if (it != mmCache.end()) {
    e = it->second;
  } else {
    const int64_t Ba = g[0], Bb = g[1], M = g[2], K = g[3], N = g[4];
    const bool ta = g[5] != 0, tb = g[6] != 0;
    e = std::make_shared<MatMulEntry>();
    e->a = memory::desc({Ba, M, K}, dt::f32, ta ? memory::dims{M * K, 1, M} : memory::dims{M * K, K, 1});
    e->b = memory::desc({Bb, K, N}, dt::f32, tb ? memory::dims{K * N, 1, K} : memory::dims{K * N, N, 1});
    e->c = memory::desc({std::max(Ba, Bb), M, N}, dt::f32, memory::dims{M * N, N, 1});
    e->prim = matmul(matmul::primitive_desc(matmul::desc(e->a, e->b, e->c), eng()));
    mmCache.emplace(key, e);
  }
  auto& st = strm();
  e->prim.execute(st, {{DNNL_ARG_SRC, memory(e->a, eng(), a)}, {DNNL_ARG_WEIGHTS, memory(e->b, eng(), b)}, {DNNL_ARG_DST, memory(e->c, eng(), c)}});
  st.wait();
  return info.Env().Undefined();
}

// ---- information and threads.

const char* isaName(dnnl_cpu_isa_t isa) {
  switch (isa) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "all";
  }
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  const dnnl_version_t* v = dnnl_version();
  auto o = Napi::Object::New(env);
  o.Set("version", std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch));
  o.Set("hash", v->hash ? v->hash : "");
  o.Set("isa", isaName(dnnl_get_effective_cpu_isa()));
  o.Set("runtime", v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : v->cpu_runtime == DNNL_RUNTIME_TBB ? "TBB" : "other");
  o.Set("threads", omp_get_max_threads());
  return o;
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  int n = info[0].As<Napi::Number>().Int32Value();
  if (n >= 1) omp_set_num_threads(n);
  return Napi::Number::New(info.Env(), omp_get_max_threads());
}

template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value guarded(const Napi::CallbackInfo& info) {
  try {
    return F(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), std::string("oneDNN: ") + e.what());
  }
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("info", Napi::Function::New(env, guarded<Info>));
  exports.Set("setThreads", Napi::Function::New(env, guarded<SetThreads>));
  exports.Set("conv", Napi::Function::New(env, guarded<Conv>));
  exports.Set("winogradAvailable", Napi::Function::New(env, guarded<WinogradAvailable>));
  exports.Set("bnPoolForward", Napi::Function::New(env, guarded<BnPoolForward>));
  exports.Set("bnPoolBackward", Napi::Function::New(env, guarded<BnPoolBackward>));
  exports.Set("matMul", Napi::Function::New(env, guarded<MatMul>));
  exports.Set("addActPoolForward", Napi::Function::New(env, guarded<AddActPoolForward>));
  exports.Set("addActPoolBackward", Napi::Function::New(env, guarded<AddActPoolBackward>));
  exports.Set("adam", Napi::Function::New(env, guarded<Adam>));
  exports.Set("leakyRelu", Napi::Function::New(env, guarded<LeakyRelu>));
  return exports;
}

}  // namespace

NODE_API_MODULE(fewshot_onednn, Init)
