import { UserError } from './errors.ts';

/**
 * Names that become paths (run names, result names, dataset names) must stay inside the folder they are joined
 * to: `--name ../../x`, or a shared checkpoint whose recorded run name is `../../../elsewhere/x`, would otherwise
 * write outside `--runs` / `--results`. One rule for a path segment, applied everywhere a name becomes a path:
 * not empty, not `.` or `..`, no `/` or `\`, no control characters, and no leading `.` (hidden names are the
 * atomic writers' temp, journal and version names, e.g. `.last.v3`, `.r.<hex>.ready`, which their recovery
 * renames or deletes).
 */
export function pathSegmentProblem(segment: string): string | undefined {
  if (segment === '') return 'it is empty';
  if (segment === '.' || segment === '..') return `"${segment}" refers to a folder itself or its parent`;
  if (/[/\\]/.test(segment)) return 'it contains a path separator';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(segment)) return 'it contains a control character';
  if (segment.startsWith('.')) return 'it starts with "." (hidden names are reserved for temp and version folders)';
  if (Buffer.byteLength(segment) > 200) return 'it is longer than 200 bytes';
  return undefined;
}

/** A single safe path segment (a dataset name); throws a UserError naming `what` and the fix. */
export function checkPathSegment(name: string, what: string, fix: string): string {
  const problem = pathSegmentProblem(name);
  if (problem) throw new UserError(`${what} is ${JSON.stringify(name)}, which cannot name a folder: ${problem}`, fix);
  return name;
}

/**
 * A relative name of one or more safe segments joined by `/` (a run name: `protonet_conv4_…`, or a reproduced
 * run's `cells/<name>/seed0`), which therefore stays below the folder it is joined to.
 */
export function checkRelativeName(name: string, what: string, fix: string): string {
  const segments = name.split('/');
  for (const segment of segments) {
    const problem = pathSegmentProblem(segment);
    if (problem) {
      const where = segments.length > 1 ? ` (its part ${JSON.stringify(segment)})` : '';
      throw new UserError(`${what} ${JSON.stringify(name)} would not stay inside its folder${where}: ${problem}`, fix);
    }
  }
  return name;
}
