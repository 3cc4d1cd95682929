// Registers every built-in backbone, head and method wrapper. Plugins register theirs the same way.
import './backbones/builtin.ts';
import './learners/builtin.ts';
import './methods/builtin.ts';
import './data/providers/builtin.ts';
