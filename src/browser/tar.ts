import { parseTar, parseTarGzip } from 'nanotar';

/** The regular files of a .tar or gzip-compressed .tar (.tar.gz, .tgz), as Files named by their path in the archive. */
export async function readTar(archive: Blob): Promise<File[]> {
  const bytes = new Uint8Array(await archive.arrayBuffer());
  const gzip = bytes[0] === 0x1f && bytes[1] === 0x8b;
  const items = gzip ? await parseTarGzip(bytes) : parseTar(bytes);
  if (items.length === 0) throw new Error('it holds no files');
  return items
    .filter((item) => (item.type === 'file' || item.type === undefined) && item.data)
    .map((item) => new File([item.data as Uint8Array<ArrayBuffer>], item.name));
}
