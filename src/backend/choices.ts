// The backend names the CLI offers, in a module without tfjs imports so that parsing flags (and `--help`)
// loads no backend code.
export const BACKEND_CHOICES = ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm-onednn', 'wasm', 'cpu'] as const;
/** A `--backend` value: `auto` or one of the concrete tfjs backends. */
export type BackendChoice = (typeof BACKEND_CHOICES)[number];
