import { existsSync, promises as fs } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { parseExportManifest, type ExportManifest } from '../methods/portable.ts';
import { UserError } from '../util/errors.ts';
import { packageInfo, packageRoot } from '../util/package-root.ts';
import { silentReporter, type ExperimentReporter } from './reporter.ts';

/**
 * `fewshot serve`: the browser page (built by scripts/build-web.mjs into dist/web) over HTTP on loopback,
 * optionally with an export (`fewshot export`) under /model/. Every response carries the cross-origin
 * isolation headers (COOP same-origin + COEP require-corp), without which browsers withhold
 * SharedArrayBuffer and the wasm backend runs single-threaded. Nothing is uploaded anywhere: the page
 * computes in the browser; this server only hands out files.
 */
export interface ServeRequest {
  /** An export folder (model.json + shards); without it the page asks the user for one. */
  model?: string;
  /** Default 8429; 0 picks a free port. */
  port?: number;
  /** Default 127.0.0.1 (loopback only). */
  host?: string;
  /** The built page; default `<package>/dist/web`. */
  pageDir?: string;
  reporter?: ExperimentReporter;
}

export interface ServedPage {
  url: string;
  model?: ExportManifest;
  close(): Promise<void>;
}

export const DEFAULT_PORT = 8429;

const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'X-Content-Type-Options': 'nosniff',
  // The page's service worker keeps it working offline; the server always answers with the current files.
  'Cache-Control': 'no-cache',
};

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.bin': 'application/octet-stream',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.webmanifest': 'application/manifest+json',
};

export function defaultPageDir(): string {
  return path.join(packageRoot(), 'dist', 'web');
}

/** The export under `dir`, checked as the page will check it (same version, intact manifest). */
async function readExport(dir: string): Promise<ExportManifest> {
  const file = path.join(dir, 'model.json');
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    throw new UserError(`${dir} holds no model.json`, 'pass --model the folder `fewshot export <checkpoint>` wrote (it prints it)');
  }
  let json: { modelTopology?: unknown; weightsManifest?: { paths: string[] }[] };
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new UserError(`${file} is not valid JSON (${(err as Error).message})`, 'export the checkpoint again with `fewshot export <checkpoint>`');
  }
  const manifest = parseExportManifest(json.modelTopology, packageInfo().version, file);
  for (const shard of (json.weightsManifest ?? []).flatMap((g) => g.paths)) {
    if (!existsSync(path.join(dir, shard)))
      throw new UserError(
        `${dir} lacks the weight file ${shard} that model.json lists`,
        'export the checkpoint again with `fewshot export <checkpoint>`, or copy the whole folder',
      );
  }
  return manifest;
}

/** `root/rel` if it stays inside root and is a file, else undefined. */
async function fileInside(root: string, rel: string): Promise<string | undefined> {
  const file = path.resolve(root, `.${path.posix.normalize(`/${rel}`)}`);
  if (file !== root && !file.startsWith(root + path.sep)) return undefined;
  const st = await fs.stat(file).catch(() => undefined);
  return st?.isFile() ? file : undefined;
}

export async function servePage(request: ServeRequest = {}): Promise<ServedPage> {
  const reporter = request.reporter ?? silentReporter;
  const pageDir = path.resolve(request.pageDir ?? defaultPageDir());
  if (!existsSync(path.join(pageDir, 'index.html'))) {
    throw new UserError(
      `the browser page is not built (no ${path.join(pageDir, 'index.html')})`,
      'build it with `npm run build` in the fewshot checkout (an installed fewshot package ships it built)',
    );
  }
  const modelDir = request.model !== undefined ? path.resolve(request.model) : undefined;
  const model = modelDir !== undefined ? await readExport(modelDir) : undefined;
  const port = request.port ?? DEFAULT_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new UserError(`port ${port} is not a TCP port`, 'use --port between 1 and 65535 (0 picks a free one)');
  const host = request.host ?? '127.0.0.1';

  const server = http.createServer(async (req, res) => {
    const send = (status: number, body: string | Buffer, type = 'text/plain; charset=utf-8') => {
      res.writeHead(status, { ...ISOLATION_HEADERS, 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'only GET and HEAD\n');
      const url = new URL(req.url ?? '/', 'http://localhost');
      const pathname = decodeURIComponent(url.pathname);
      // What the page asks first: is a model served, and which fewshot serves it.
      if (pathname === '/served.json') {
        return send(200, JSON.stringify({ fewshotVersion: packageInfo().version, model: model ? 'model/model.json' : null }), MIME['.json']);
      }
      let file: string | undefined;
      if (pathname.startsWith('/model/')) file = modelDir !== undefined ? await fileInside(modelDir, pathname.slice('/model/'.length)) : undefined;
      else file = await fileInside(pageDir, pathname === '/' ? 'index.html' : pathname.slice(1));
      if (!file) return send(404, `not found: ${pathname}\n`);
      return send(200, await fs.readFile(file), MIME[path.extname(file).toLowerCase()] ?? 'application/octet-stream');
    } catch (err) {
      return send(500, `${(err as Error).message}\n`);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE')
        reject(
          new UserError(`port ${port} on ${host} is already in use`, `pass --port another port (or --port 0 for a free one), or stop what listens on ${port}`),
        );
      else if (err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND')
        reject(new UserError(`cannot listen on ${host}: ${err.code}`, 'use --host 127.0.0.1 (the default) or an address of this machine'));
      else reject(err);
    });
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${shownHost}:${address.port}/`;
  reporter.log(
    model
      ? `serving ${model.method.name} (${model.method.backbone}, ${model.image.size}px) from ${modelDir}`
      : 'serving the page without a model: pick an export folder in the page',
  );
  return {
    url,
    model,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
