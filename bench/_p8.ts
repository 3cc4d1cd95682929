import { registerCoreGradients } from '../src/backend/wasm/core_gradients.ts';
async function main() { await registerCoreGradients(); console.log('ok'); }
await main();
