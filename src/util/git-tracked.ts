import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

/**
 * Is `file` tracked by the git repository it lies in? False when git is missing, the folder is not in a
 * repository, or the file is new. Used to keep the project's committed reference results from being replaced
 * by a user's run (a tracked result.json is a reference result).
 */
export function trackedByGit(file: string): boolean {
  const dir = path.dirname(path.resolve(file));
  if (!existsSync(dir)) return false;
  try {
    execFileSync('git', ['ls-files', '--error-unmatch', '--', path.basename(file)], { cwd: dir, stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
