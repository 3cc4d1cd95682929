/*
 * Which module is registering things right now, so registries can record where each head, learner, backbone
 * and wrapper came from and name the plugin in their errors. The CLI's plugin loader (or a script) runs a
 * plugin's import inside `withRegistrationOrigin`; everything registered outside one is built in.
 */

/** fewshot plugin API version. Plugins declare the version they were written against (`apiVersion`); a
 *  different major version is refused at registration. Minor versions add to the API without breaking it. */
export const FEWSHOT_API_VERSION = '1.0';

export const BUILTIN_ORIGIN = 'fewshot (built in)';

let current: string = BUILTIN_ORIGIN;

/** The origin recorded for a registration made now. */
export function registrationOrigin(): string {
  return current;
}

/** Run `load` (e.g. `() => import(spec)`) with registrations attributed to `origin` (a module name or path). */
export async function withRegistrationOrigin<T>(origin: string, load: () => Promise<T>): Promise<T> {
  const previous = current;
  current = origin;
  try {
    return await load();
  } finally {
    current = previous;
  }
}

/** " (plugin X)" for plugin origins, "" for built-ins: appended to error messages about a registered thing. */
export function originSuffix(origin: string): string {
  return origin === BUILTIN_ORIGIN ? '' : ` (plugin ${origin})`;
}

/** Problem text if `declared` (a plugin's apiVersion) is incompatible with this fewshot, else undefined. */
export function apiVersionProblem(declared: unknown): string | undefined {
  if (declared === undefined) return undefined;
  if (typeof declared !== 'string' || !/^\d+\.\d+$/.test(declared)) return `apiVersion must be a "MAJOR.MINOR" string, got ${JSON.stringify(declared)}`;
  const [major, minor] = declared.split('.').map(Number);
  const [ourMajor, ourMinor] = FEWSHOT_API_VERSION.split('.').map(Number);
  if (major !== ourMajor) return `apiVersion ${declared} is incompatible with this fewshot's plugin API ${FEWSHOT_API_VERSION} (different major version)`;
  if (minor > ourMinor) return `apiVersion ${declared} needs a newer fewshot (this one has plugin API ${FEWSHOT_API_VERSION})`;
  return undefined;
}
