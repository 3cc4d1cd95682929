/**
 * Registers the gradient kernels the stock wasm backend lacks (owned by the kernels work; see
 * src/backend/wasm/). Placeholder until those land: registers nothing.
 */
export function registerWasmTrainingKernels(): void {}
