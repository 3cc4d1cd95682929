/**
 * The browser build's stand-in for src/tf-gradients.ts (scripts/build-web.mjs swaps it in). In Node that module
 * registers tfjs-core's gradients and chained tensor methods from a committed CommonJS bundle loaded with
 * createRequire; in the page there is one ES-module tfjs-core instance, and these two imports register the
 * same things on it. The page only predicts, but the shared modules import the registration and may use both.
 */
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops';
