import { statSync, type Dirent } from 'node:fs';
import path from 'node:path';

/**
 * Whether a `readdir(..., { withFileTypes: true })` entry is a folder, following a symbolic link: a Dirent
 * describes the link itself, so a class folder linked in from elsewhere (`ln -s /data/cats train/cats`)
 * would otherwise count as a file. A dangling link is no folder (reading it then names the missing file).
 */
export function isFolderEntry(dir: string, entry: Dirent): boolean {
  if (entry.isDirectory()) return true;
  if (!entry.isSymbolicLink()) return false;
  return statSync(path.join(dir, entry.name), { throwIfNoEntry: false })?.isDirectory() ?? false;
}
