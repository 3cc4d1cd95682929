// Plugin loading and software versions live in the experiment layer (library callers need them too).
export { loadPlugins, softwareVersions } from '../experiment/software.ts';
