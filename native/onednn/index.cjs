'use strict';
// The compiled addon (build/Release/fewshot_onednn.node, built by `npm ci` through install.cjs). Requiring this
// throws when the build is absent or libdnnl.so.2 cannot be loaded; fewshot catches that and stays on wasm.
module.exports = require('./build/Release/fewshot_onednn.node');
