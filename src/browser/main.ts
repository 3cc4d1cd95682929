/**
 * The browser page (web/index.html; bundled by scripts/build-web.mjs, served by `fewshot serve`): classes as
 * columns of the user's photos, photos to classify, and the predictions of an exported fewshot model with
 * every class's probability. The method is built and run by the same code as `fewshot predict`
 * (eval/classify.ts: buildMethodForClasses + classifyQueries); images are prepared as the cache is
 * (browser/image.ts). Everything runs in the page; nothing is uploaded.
 */
import * as tf from '@tensorflow/tfjs-core';
import '../backbones/builtin.ts';
import '../learners/builtin.ts';
import '../methods/builtin.ts';
import { normalizePixels } from '../data/normalize.ts';
import { argmax, classifyQueries } from '../eval/classify.ts';
import type { EpisodicMethod } from '../methods/contract.ts';
import { UserError } from '../util/errors.ts';
import { activateBackend, BACKEND_LABELS, PAGE_BACKENDS, type ActiveBackend, type PageBackend } from './backends.ts';
import { evaluateEpisodesInPage } from './episodes.ts';
import { prepareImage } from './image.ts';
import { formatCI } from '../eval/stats.ts';
import { instantiate, loadExportFiles, loadServedExport, PAGE_VERSION, type LoadedExport } from './model.ts';

interface Picture {
  id: number;
  file: File;
  url: string;
  /** Prepared pixels for the current model's image settings (`${size}/${grey}`). */
  prepared?: { key: string; pixels: Uint8Array };
  bad?: boolean;
}

interface ClassColumn {
  id: number;
  name: string;
  pictures: Picture[];
}

const MODE_LABELS: Record<string, string> = {
  ag: 'SLA+AG (aggregate over transformations)',
  si: 'SLA+SI (untransformed images only)',
  sd: 'SLA+SD (self-distilled head)',
  plain: 'plain',
};

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const params = new URLSearchParams(location.search);
let nextId = 1;

const state = {
  model: undefined as LoadedExport | undefined,
  backend: undefined as ActiveBackend | undefined,
  classes: [] as ClassColumn[],
  queries: [] as Picture[],
  /** Built methods by way, on the current backend. */
  methods: new Map<number, EpisodicMethod>(),
  runs: 0,
  busy: false,
};

// ---------- messages ----------

function say(kind: 'error' | 'warning' | 'info', text: string, fix?: string): void {
  const li = document.createElement('li');
  li.className = kind;
  li.dataset.kind = kind;
  const body = document.createElement('span');
  body.textContent = text;
  if (fix) {
    const f = document.createElement('span');
    f.className = 'fix';
    f.textContent = ` — ${fix}`;
    body.append(f);
  }
  const close = document.createElement('button');
  close.textContent = '×';
  close.title = 'dismiss';
  close.onclick = () => li.remove();
  li.append(body, close);
  $('messages').append(li);
}

function sayError(err: unknown): void {
  if (err instanceof UserError) say('error', err.problem, err.fix);
  else
    say(
      'error',
      `unexpected error: ${err instanceof Error ? err.message : String(err)}`,
      'reload the page; if it happens again, report it with the browser console output',
    );
  console.error(err);
}

function clearMessages(kind?: string): void {
  for (const li of [...$('messages').children] as HTMLElement[]) if (!kind || li.dataset.kind === kind) li.remove();
}

// ---------- pictures ----------

function addPictures(files: Iterable<File>, into: Picture[]): void {
  for (const file of files) {
    if (file.type && !file.type.startsWith('image/')) {
      say('error', `${file.name} is not an image (its type is ${file.type}); it was not added`, 'add JPEG, PNG, WebP, GIF or BMP photos');
      continue;
    }
    into.push({ id: nextId++, file, url: URL.createObjectURL(file) });
  }
}

function thumb(p: Picture, remove: () => void): HTMLElement {
  const fig = document.createElement('figure');
  fig.dataset.file = p.file.name;
  if (p.bad) fig.className = 'bad';
  const img = document.createElement('img');
  img.src = p.url;
  img.alt = p.file.name;
  img.title = p.file.name;
  const x = document.createElement('button');
  x.textContent = '×';
  x.title = `remove ${p.file.name}`;
  x.onclick = () => {
    URL.revokeObjectURL(p.url);
    remove();
    render();
  };
  fig.append(img, x);
  return fig;
}

function dropTarget(el: HTMLElement, onFiles: (files: File[]) => void | Promise<void>): void {
  el.addEventListener('dragover', (e) => {
    e.preventDefault();
    el.classList.add('over');
  });
  el.addEventListener('dragleave', () => el.classList.remove('over'));
  el.addEventListener('drop', async (e) => {
    e.preventDefault();
    e.stopPropagation();
    el.classList.remove('over');
    const files = await filesOfDrop(e.dataTransfer);
    await onFiles(files);
  });
}

/** Files of a drop, folders included (one level of entries per folder, recursively). */
async function filesOfDrop(dt: DataTransfer | null): Promise<File[]> {
  if (!dt) return [];
  const entries = [...dt.items].map((i) => i.webkitGetAsEntry?.()).filter((e): e is FileSystemEntry => e != null);
  if (entries.length === 0) return [...dt.files];
  const out: File[] = [];
  const walk = async (entry: FileSystemEntry): Promise<void> => {
    if (entry.isFile) out.push(await new Promise<File>((res, rej) => (entry as FileSystemFileEntry).file(res, rej)));
    else if (entry.isDirectory) {
      const reader = (entry as FileSystemDirectoryEntry).createReader();
      for (;;) {
        const batch = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej));
        if (batch.length === 0) break;
        for (const e of batch) await walk(e);
      }
    }
  };
  for (const e of entries) await walk(e);
  return out;
}

// ---------- rendering ----------

function addClass(name?: string): ClassColumn {
  const column = { id: nextId++, name: name ?? `class ${state.classes.length + 1}`, pictures: [] };
  state.classes.push(column);
  return column;
}

function render(): void {
  const host = $('classes');
  host.replaceChildren();
  state.classes.forEach((c, index) => {
    const col = document.createElement('div');
    col.className = 'class drop';
    col.dataset.index = String(index);
    const head = document.createElement('header');
    const name = document.createElement('input');
    name.className = 'name';
    name.value = c.name;
    name.setAttribute('aria-label', 'class name');
    name.onchange = () => (c.name = name.value.trim());
    const remove = document.createElement('button');
    remove.className = 'remove-class';
    remove.textContent = 'Remove';
    remove.onclick = () => {
      state.classes.splice(state.classes.indexOf(c), 1);
      render();
    };
    head.append(name, remove);
    const pick = document.createElement('label');
    pick.className = 'button';
    pick.textContent = 'Add photos';
    const input = document.createElement('input');
    input.type = 'file';
    input.multiple = true;
    input.accept = 'image/*';
    input.hidden = true;
    input.className = 'class-files';
    input.onchange = () => {
      addPictures(input.files ?? [], c.pictures);
      input.value = '';
      render();
    };
    pick.append(input);
    const cam = document.createElement('button');
    cam.type = 'button';
    cam.textContent = 'Camera';
    cam.onclick = () => openCamera(c.pictures);
    const count = document.createElement('div');
    count.className = 'count';
    count.textContent = `${c.pictures.length} photo${c.pictures.length === 1 ? '' : 's'}`;
    const thumbs = document.createElement('div');
    thumbs.className = 'thumbs';
    for (const p of c.pictures) thumbs.append(thumb(p, () => c.pictures.splice(c.pictures.indexOf(p), 1)));
    col.append(head, pick, ' ', cam, count, thumbs);
    dropTarget(col, (files) => {
      addPictures(files, c.pictures);
      render();
    });
    host.append(col);
  });
  const q = $('query-thumbs');
  q.replaceChildren(...state.queries.map((p) => thumb(p, () => state.queries.splice(state.queries.indexOf(p), 1))));
  ($('classify') as HTMLButtonElement).disabled = state.busy || !state.model;
}

function renderModel(): void {
  const info = $('model-info');
  const m = state.model;
  $('model-picker').hidden = false;
  if (!m) {
    info.textContent = 'No model loaded: choose an export below.';
    delete info.dataset.loaded;
    return;
  }
  const { method, image, provenance } = m.manifest;
  info.replaceChildren();
  const line = document.createElement('div');
  line.innerHTML = '';
  const strong = document.createElement('strong');
  strong.textContent = `${method.name}`;
  line.append(
    strong,
    ` — ${method.backbone} backbone, ${image.size}×${image.size} ${image.grayscale ? 'grey' : 'colour'} images, trained ${method.trainedWay}-way; ${(m.weightBytes / 1e6).toFixed(2)} MB of weights`,
  );
  const prov = document.createElement('div');
  prov.className = 'prov';
  const best = provenance.best as { accuracy?: { mean?: number } } | null;
  prov.textContent = [
    provenance.run ? `run ${String(provenance.run)}` : '',
    provenance.checkpoint ? `checkpoint ${String(provenance.checkpoint)} at episode ${String(provenance.episode)}` : '',
    best?.accuracy?.mean !== undefined ? `validation ${(best.accuracy.mean * 100).toFixed(2)} %` : '',
    provenance.trainingCommand ? `trained by: ${String(provenance.trainingCommand)}` : '',
    `exported by fewshot ${m.manifest.fewshotVersion}`,
  ]
    .filter(Boolean)
    .join(' · ');
  info.append(line, prov);
  info.dataset.loaded = method.name;
  const modes = $('mode-select') as HTMLSelectElement;
  modes.replaceChildren(...method.inferenceModes.map((mode) => new Option(MODE_LABELS[mode] ?? mode, mode)));
  modes.disabled = method.inferenceModes.length < 2;
  const wanted = params.get('mode');
  if (wanted && method.inferenceModes.includes(wanted)) modes.value = wanted;
}

function renderBackend(): void {
  const b = state.backend;
  const el = $('backend-info');
  el.textContent = b ? `${BACKEND_LABELS[b.name]}: ${b.detail}` : 'no backend';
  el.dataset.backend = b?.name ?? '';
}

// ---------- model and backend ----------

function disposeMethods(): void {
  state.methods.clear();
  tf.disposeVariables();
}

async function useModel(load: () => Promise<LoadedExport>): Promise<void> {
  const t0 = performance.now();
  try {
    const model = await load();
    disposeMethods();
    state.model = model;
    for (const p of [...state.classes.flatMap((c) => c.pictures), ...state.queries]) delete p.prepared;
    clearMessages('error');
    $('results').replaceChildren();
    renderModel();
    const ms = performance.now() - t0;
    $('model-info').dataset.loadMs = ms.toFixed(1);
    say('info', `model loaded from ${model.source} in ${ms.toFixed(0)} ms`);
  } catch (err) {
    sayError(err);
  }
  render();
}

async function useBackend(wanted: PageBackend | 'auto'): Promise<void> {
  const t0 = performance.now();
  disposeMethods();
  clearMessages('warning');
  try {
    state.backend = await activateBackend(wanted);
    for (const f of state.backend.fallbacks) say('warning', f, `using ${BACKEND_LABELS[state.backend.name]} instead`);
    $('backend-info').dataset.startMs = (performance.now() - t0).toFixed(1);
  } catch (err) {
    state.backend = undefined;
    say('error', err instanceof Error ? err.message : String(err), 'try another browser');
  }
  renderBackend();
}

// ---------- classification ----------

function checkInput(): { classes: ClassColumn[] } {
  const classes = state.classes;
  const empty = classes.find((c) => c.pictures.length === 0);
  if (empty) throw new UserError(`class "${empty.name || '(unnamed)'}" has no photos`, 'add photos to it, or remove the class');
  if (classes.length < 2)
    throw new UserError(
      `there ${classes.length === 1 ? 'is only one class' : 'are no classes'}; few-shot classification tells classes apart, so it needs at least 2`,
      'add another class with a few photos',
    );
  const names = classes.map((c) => c.name.trim());
  const blank = names.findIndex((n) => n === '');
  if (blank >= 0) throw new UserError(`class ${blank + 1} has no name`, 'type a name in its column header');
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new UserError(`two classes are named "${dup}"`, 'give every class its own name');
  if (state.queries.length === 0) throw new UserError('there are no photos to classify', 'add photos under "Photos to classify"');
  return { classes };
}

async function pixelsOf(pictures: Picture[], model: LoadedExport): Promise<Float32Array> {
  const { size, grayscale, normalization } = model.manifest.image;
  const key = `${size}/${grayscale}`;
  const per = size * size * 3;
  const all = new Uint8Array(pictures.length * per);
  for (let i = 0; i < pictures.length; i++) {
    const p = pictures[i];
    if (p.prepared?.key !== key) {
      try {
        p.prepared = { key, pixels: (await prepareImage(p.file, p.file.name, size, grayscale)).pixels };
        p.bad = false;
      } catch (err) {
        p.bad = true;
        throw err;
      }
    }
    all.set(p.prepared.pixels, i * per);
  }
  return normalizePixels(all, normalization);
}

function methodFor(model: LoadedExport, way: number): EpisodicMethod {
  let method = state.methods.get(way);
  if (!method) {
    method = instantiate(model, way);
    state.methods.set(way, method);
  }
  return method;
}

async function classify(): Promise<void> {
  const model = state.model;
  if (!model || state.busy) return;
  state.busy = true;
  document.body.dataset.state = 'running';
  clearMessages('error');
  render();
  const times: Record<string, number> = {};
  try {
    const { classes } = checkInput();
    if (!state.backend) throw new UserError('no compute backend is running', 'choose another backend in the Backend menu');
    const mode = ($('mode-select') as HTMLSelectElement).value || model.manifest.method.inferenceModes[0];
    const support = classes.flatMap((c) => c.pictures);
    const supportLabels = Int32Array.from(classes.flatMap((c, k) => c.pictures.map(() => k)));
    let t = performance.now();
    const supportImages = await pixelsOf(support, model);
    const queryImages = await pixelsOf(state.queries, model);
    times.decode = performance.now() - t;
    t = performance.now();
    const method = methodFor(model, classes.length);
    times.build = performance.now() - t;
    t = performance.now();
    const probs = await classifyQueries(method, { supportImages, supportLabels, queryImages, imageSize: model.manifest.image.size, way: classes.length, mode });
    times.classify = performance.now() - t;
    times.perQuery = times.classify / state.queries.length;
    state.runs++;
    renderResults(
      classes.map((c) => c.name.trim()),
      probs,
      mode,
      times,
    );
    document.body.dataset.state = 'done';
  } catch (err) {
    sayError(err);
    document.body.dataset.state = 'error';
  } finally {
    state.busy = false;
    render();
  }
}

function renderResults(names: string[], probs: Float32Array, mode: string, times: Record<string, number>): void {
  const way = names.length;
  const host = $('results');
  host.dataset.run = String(state.runs);
  host.dataset.mode = mode;
  host.dataset.backend = state.backend?.name ?? '';
  host.replaceChildren(
    ...state.queries.map((q, i) => {
      const row = Array.from(probs.subarray(i * way, (i + 1) * way));
      const best = argmax(row);
      const card = document.createElement('div');
      card.className = 'result';
      card.dataset.file = q.file.name;
      card.dataset.predicted = names[best];
      card.dataset.probabilities = JSON.stringify(row);
      const img = document.createElement('img');
      img.src = q.url;
      img.alt = q.file.name;
      const bars = document.createElement('div');
      bars.className = 'bars';
      const head = document.createElement('div');
      head.className = 'predicted';
      head.textContent = `${names[best]} (${(row[best] * 100).toFixed(1)} %)`;
      bars.append(head);
      names.forEach((name, k) => {
        const bar = document.createElement('div');
        bar.className = k === best ? 'bar top' : 'bar';
        const label = document.createElement('span');
        label.className = 'label';
        label.textContent = name;
        label.title = name;
        const track = document.createElement('span');
        track.className = 'track';
        const fill = document.createElement('span');
        fill.className = 'fill';
        fill.style.width = `${(row[k] * 100).toFixed(2)}%`;
        fill.style.display = 'block';
        track.append(fill);
        const pct = document.createElement('span');
        pct.className = 'pct';
        pct.textContent = `${(row[k] * 100).toFixed(1)} %`;
        bar.append(label, track, pct);
        bars.append(bar);
      });
      card.append(img, bars);
      return card;
    }),
  );
  const t = $('timings');
  for (const [k, v] of Object.entries(times)) t.dataset[k] = v.toFixed(2);
  t.textContent = `${MODE_LABELS[mode] ?? mode} on ${state.backend ? BACKEND_LABELS[state.backend.name] : '?'}: decode ${times.decode.toFixed(0)} ms · build ${times.build.toFixed(0)} ms · fit + classify ${times.classify.toFixed(0)} ms (${times.perQuery.toFixed(1)} ms per photo)`;
}

// ---------- episode evaluation ----------

async function evaluateEpisodes(): Promise<void> {
  const model = state.model;
  if (!model || state.busy) return;
  const files = (id: string) => [...(($(id) as HTMLInputElement).files ?? [])];
  state.busy = true;
  document.body.dataset.state = 'running';
  clearMessages('error');
  const progress = $('eval-progress');
  const out = $('eval-results');
  out.replaceChildren();
  render();
  try {
    const [episodeFile] = files('eval-episodes');
    const [csvFile] = files('eval-csv');
    if (!episodeFile) throw new UserError('no episode file was chosen', 'choose one, e.g. episodes/mini-imagenet/test_5w1s15q_seed0_2000.json');
    if (!csvFile) throw new UserError('no split CSV was chosen', 'choose the CSV of the split the episodes were drawn from, e.g. test.csv');
    if (!state.backend) throw new UserError('no compute backend is running', 'choose another backend in the Backend menu');
    const result = await evaluateEpisodesInPage({
      model,
      methodFor: (way) => methodFor(model, way),
      episodeFile,
      csvFile,
      images: [...files('eval-images'), ...files('eval-folder')],
      limit: Number(($('eval-count') as HTMLInputElement).value) || 100,
      onProgress: (done, total, phase) => (progress.textContent = `${phase} ${done} / ${total}`),
    });
    progress.textContent = `${result.episodes} episodes, ${result.images} images: decode ${(result.decodeMs / 1000).toFixed(1)} s, evaluate ${(result.evalMs / 1000).toFixed(1)} s on ${state.backend ? BACKEND_LABELS[state.backend.name] : '?'}`;
    out.dataset.episodes = String(result.episodes);
    for (const mode of result.modes) {
      const row = document.createElement('div');
      row.className = 'eval-mode';
      row.dataset.mode = mode;
      row.dataset.perEpisode = JSON.stringify(result.perEpisode[mode]);
      row.dataset.mean = String(result.summary[mode].mean);
      row.dataset.ci95 = String(result.summary[mode].ci95);
      row.textContent = `${MODE_LABELS[mode] ?? mode}: ${formatCI(result.summary[mode])} % over ${result.episodes} episodes`;
      out.append(row);
    }
    document.body.dataset.state = 'done';
  } catch (err) {
    sayError(err);
    progress.textContent = '';
    document.body.dataset.state = 'error';
  } finally {
    state.busy = false;
    render();
  }
}

// ---------- camera ----------

let cameraTarget: Picture[] | undefined;
let cameraStream: MediaStream | undefined;

async function openCamera(target: Picture[]): Promise<void> {
  try {
    cameraStream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' } });
  } catch (err) {
    say(
      'error',
      `the camera cannot be opened: ${err instanceof Error ? err.message : String(err)}`,
      'allow camera access for this page, or add photos from files',
    );
    return;
  }
  cameraTarget = target;
  ($('camera-video') as HTMLVideoElement).srcObject = cameraStream;
  ($('camera-dialog') as HTMLDialogElement).showModal();
}

function closeCamera(): void {
  for (const track of cameraStream?.getTracks() ?? []) track.stop();
  cameraStream = undefined;
  ($('camera-dialog') as HTMLDialogElement).close();
  render();
}

async function shoot(): Promise<void> {
  const video = $('camera-video') as HTMLVideoElement;
  const canvas = new OffscreenCanvas(video.videoWidth, video.videoHeight);
  canvas.getContext('2d')!.drawImage(video, 0, 0);
  const blob = await canvas.convertToBlob({ type: 'image/png' });
  if (cameraTarget) addPictures([new File([blob], `camera-${nextId}.png`, { type: 'image/png' })], cameraTarget);
  render();
}

// ---------- start ----------

async function start(): Promise<void> {
  $('footer').textContent =
    `fewshot ${PAGE_VERSION} · ${crossOriginIsolated ? 'cross-origin isolated (wasm threads available)' : 'not cross-origin isolated (wasm runs single-threaded; serve with `fewshot serve`)'}`;
  const select = $('backend-select') as HTMLSelectElement;
  for (const b of PAGE_BACKENDS) select.append(new Option(BACKEND_LABELS[b], b));
  const wanted = params.get('backend');
  select.value = wanted && (PAGE_BACKENDS as readonly string[]).includes(wanted) ? wanted : 'auto';
  select.onchange = async () => {
    await useBackend(select.value as PageBackend | 'auto');
    if ($('results').childElementCount > 0) await classify();
  };
  ($('mode-select') as HTMLSelectElement).onchange = () => void ($('results').childElementCount > 0 && classify());
  $('add-class').onclick = () => {
    addClass();
    render();
  };
  $('classify').onclick = () => void classify();
  $('evaluate').onclick = () => void evaluateEpisodes();
  const queryInput = $('query-files') as HTMLInputElement;
  queryInput.onchange = () => {
    addPictures(queryInput.files ?? [], state.queries);
    queryInput.value = '';
    render();
  };
  $('clear-query').onclick = () => {
    state.queries.splice(0).forEach((p) => URL.revokeObjectURL(p.url));
    $('results').replaceChildren();
    render();
  };
  dropTarget($('query'), (files) => {
    addPictures(files, state.queries);
    render();
  });
  for (const b of document.querySelectorAll<HTMLButtonElement>('button.camera')) b.onclick = () => openCamera(state.queries);
  $('camera-shoot').onclick = () => void shoot();
  $('camera-close').onclick = closeCamera;
  for (const id of ['model-files', 'model-folder']) {
    const input = $(id) as HTMLInputElement;
    input.onchange = () => {
      const files = [...(input.files ?? [])];
      input.value = '';
      void useModel(() => loadExportFiles(files));
    };
  }
  dropTarget($('model-picker'), (files) => useModel(() => loadExportFiles(files)));
  addClass();
  addClass();
  render();

  await useBackend(select.value as PageBackend | 'auto');
  let served: { model: string | null } = { model: null };
  try {
    served = (await (await fetch('served.json')).json()) as typeof served;
  } catch {
    // Opened from a plain static host or offline without a cached answer: the user picks the model.
  }
  if (served.model) await useModel(() => loadServedExport(new URL(served.model!, document.baseURI).href));
  else renderModel();
  if ('serviceWorker' in navigator && params.get('offline') !== '0') {
    navigator.serviceWorker
      .register('sw.js')
      .catch((err) => say('warning', `offline use is not available: ${err instanceof Error ? err.message : String(err)}`));
  }
  document.body.dataset.state = 'ready';
}

void start().catch(sayError);
