/**
 * A minimal, strict reader for the Python pickles of the CIFAR-100 "python version" (Krizhevsky 2009,
 * https://www.cs.toronto.edu/~kriz/cifar.html): a dict of byte strings, ints, lists and one uint8 numpy array.
 *
 * Why hand-written: the npm parser we tried (`pickleparser` 0.2.1) decodes every Python 2 byte string
 * (BINSTRING / SHORT_BINSTRING) as UTF-8, which destroys the pixel bytes of the array, and it turns unknown
 * globals into opaque objects. Here a byte string stays bytes, and only the handful of opcodes and globals
 * that Python 2's cPickle and Python 3's pickle emit at protocol 2 for such a dict are accepted; anything
 * else is a `PickleFormatError` naming the opcode or global, never arbitrary object construction.
 *
 * Values come back as: `number` (ints), `boolean`, `null` (None), `string` (unicode), `Uint8Array`
 * (byte strings; a view into the input, not a copy), `PickleValue[]` (lists), `PickleTuple` (tuples),
 * `Map<string, PickleValue>` (dicts; byte-string keys are decoded as latin-1), `NdArray` (numpy arrays).
 */

export class PickleFormatError extends Error {
  constructor(
    readonly detail: string,
    readonly offset: number,
  ) {
    super(`${detail} (at byte ${offset})`);
    this.name = 'PickleFormatError';
  }
}

/** A numpy ndarray of dtype uint8 in C order. */
export interface NdArray {
  readonly kind: 'ndarray';
  readonly dtype: 'uint8';
  readonly shape: readonly number[];
  readonly data: Uint8Array;
}

export class PickleTuple {
  constructor(readonly items: readonly PickleValue[]) {}
}

export type PickleValue = number | boolean | null | string | Uint8Array | PickleValue[] | PickleTuple | Map<string, PickleValue> | NdArray;

// Internal stack values: the above plus the few globals we allow and objects they build.
type Global = { readonly kind: 'global'; readonly name: AllowedGlobal };
type DtypePending = { readonly kind: 'dtype'; readonly code: string; state?: PickleTuple };
type ArrayPending = { readonly kind: 'ndarray-pending'; state?: PickleTuple };
type Mark = { readonly kind: 'mark' };
type Item = PickleValue | Global | DtypePending | ArrayPending | Mark;

type AllowedGlobal = 'reconstruct' | 'ndarray' | 'dtype' | 'codecs.encode' | 'bytes';

// numpy < 2 writes numpy.core.multiarray, numpy >= 2 numpy._core.multiarray; Python 3 at protocol < 3
// writes byte strings as _codecs.encode(<latin-1 text>, 'latin1') and b'' as __builtin__.bytes().
const ALLOWED_GLOBALS: Record<string, AllowedGlobal> = {
  'numpy.core.multiarray _reconstruct': 'reconstruct',
  'numpy._core.multiarray _reconstruct': 'reconstruct',
  'numpy ndarray': 'ndarray',
  'numpy dtype': 'dtype',
  '_codecs encode': 'codecs.encode',
  '__builtin__ bytes': 'bytes',
  'builtins bytes': 'bytes',
};

const MARK: Mark = { kind: 'mark' };
const latin1 = new TextDecoder('latin1');
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Whether `x` is the tagged object of this kind (an ndarray, or one of the stack's internal values). */
function isObj<K extends string>(x: Item, kind: K): x is Extract<Item, { kind: K }> {
  return (
    typeof x === 'object' &&
    x !== null &&
    !(x instanceof Uint8Array) &&
    !Array.isArray(x) &&
    !(x instanceof Map) &&
    !(x instanceof PickleTuple) &&
    x.kind === kind
  );
}

const isMark = (x: Item): x is Mark => isObj(x, 'mark');

/** Whether an unpickled value (or a missing dict entry) is a numpy array. */
export function isNdArray(v: PickleValue | undefined): v is NdArray {
  return v !== undefined && isObj(v, 'ndarray');
}

function describe(x: Item): string {
  if (x === null) return 'None';
  if (x instanceof Uint8Array) return 'bytes';
  if (Array.isArray(x)) return 'list';
  if (x instanceof Map) return 'dict';
  if (x instanceof PickleTuple) return 'tuple';
  if (typeof x === 'object') return x.kind;
  return typeof x;
}

/** Parse one pickle (protocol 0-2 opcode subset, see module comment) from `buf` and return its value. */
export function unpickle(buf: Uint8Array): PickleValue {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const stack: Item[] = [];
  const memo = new Map<number, Item>();
  let pos = 0;
  let opAt = 0;

  const fail = (detail: string): never => {
    throw new PickleFormatError(detail, opAt);
  };
  const need = (n: number): void => {
    if (n < 0 || pos + n > buf.length) fail(`pickle ends early: needs ${n} more bytes, has ${buf.length - pos}`);
  };
  const u8 = (): number => (need(1), buf[pos++]!);
  const u16 = (): number => (need(2), (pos += 2), view.getUint16(pos - 2, true));
  const u32 = (): number => (need(4), (pos += 4), view.getUint32(pos - 4, true));
  const i32 = (): number => (need(4), (pos += 4), view.getInt32(pos - 4, true));
  const bytes = (n: number): Uint8Array => (need(n), (pos += n), buf.subarray(pos - n, pos));
  const line = (): string => {
    const end = buf.indexOf(0x0a, pos);
    if (end < 0) fail('pickle ends inside a text line');
    const s = latin1.decode(buf.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const pop = (): Item => {
    if (stack.length === 0) fail('stack underflow');
    const x = stack.pop()!;
    if (isMark(x)) fail('unexpected MARK on the stack');
    return x;
  };
  const top = (): Item => {
    if (stack.length === 0) fail('stack underflow');
    return stack[stack.length - 1]!;
  };
  const popToMark = (): Item[] => {
    for (let i = stack.length - 1; i >= 0; i--) {
      if (isMark(stack[i]!)) {
        const items = stack.splice(i);
        items.shift();
        return items;
      }
    }
    return fail('no MARK on the stack');
  };
  const value = (x: Item, what: string): PickleValue => {
    if (isObj(x, 'global') || isObj(x, 'dtype') || isObj(x, 'ndarray-pending') || isMark(x)) fail(`${what}: unexpected ${describe(x)}`);
    return x as PickleValue;
  };
  const key = (x: Item): string => {
    if (typeof x === 'string') return x;
    if (x instanceof Uint8Array) return latin1.decode(x);
    if (typeof x === 'number') return String(x);
    return fail(`dict key of type ${describe(x)} is not supported`);
  };
  const setItems = (dict: Item, items: Item[]): void => {
    if (!(dict instanceof Map)) fail(`SETITEM(S) on a ${describe(dict)}, expected a dict`);
    if (items.length % 2 !== 0) fail('SETITEMS with an odd number of items');
    const d = dict as Map<string, PickleValue>;
    for (let i = 0; i < items.length; i += 2) d.set(key(items[i]!), value(items[i + 1]!, 'dict value'));
  };
  const append = (list: Item, items: Item[]): void => {
    if (!Array.isArray(list)) fail(`APPEND(S) on a ${describe(list)}, expected a list`);
    for (const x of items) (list as PickleValue[]).push(value(x, 'list item'));
  };
  // Tuples may hold the allowed globals and half-built numpy objects (the arguments of REDUCE and BUILD).
  const tuple = (items: Item[]): PickleTuple => new PickleTuple(items as PickleValue[]);

  const reduce = (callable: Item, args: Item): Item => {
    if (!isObj(callable, 'global')) return fail(`REDUCE on a ${describe(callable)}, expected an allowed global`);
    if (!(args instanceof PickleTuple)) return fail('REDUCE arguments are not a tuple');
    const a = args.items as readonly Item[];
    switch (callable.name) {
      case 'codecs.encode':
        if (a.length !== 2 || typeof a[0] !== 'string' || a[1] !== 'latin1') return fail("_codecs.encode expects (text, 'latin1')");
        return latin1Bytes(a[0], fail);
      case 'bytes':
        if (a.length !== 0) return fail('bytes() with arguments is not supported');
        return new Uint8Array(0);
      case 'dtype': {
        const code = a[0] instanceof Uint8Array ? latin1.decode(a[0]) : a[0];
        if (code !== 'u1') return fail(`numpy dtype ${JSON.stringify(code)} is not supported (only uint8, 'u1')`);
        return { kind: 'dtype', code };
      }
      case 'reconstruct':
        // numpy.core.multiarray._reconstruct(ndarray, (0,), b'b'): an empty array that BUILD then fills.
        const cls = a[0];
        if (a.length !== 3 || cls === undefined || !isObj(cls, 'global') || cls.name !== 'ndarray')
          return fail('_reconstruct expects (numpy.ndarray, shape, typecode)');
        return { kind: 'ndarray-pending' };
      default:
        return fail(`global ${callable.name} cannot be called`);
    }
  };

  const build = (obj: Item, state: Item): Item => {
    if (!(state instanceof PickleTuple)) return fail(`BUILD state of type ${describe(state)}, expected a tuple`);
    if (isObj(obj, 'dtype')) {
      // (version, byte order, subarray, names, fields, elsize, alignment, flags): uint8 has order '|'.
      const order = state.items[1];
      const o = order instanceof Uint8Array ? latin1.decode(order) : order;
      if (o !== '|' && o !== '<' && o !== '=') return fail(`numpy dtype byte order ${JSON.stringify(o)} is not supported`);
      if (state.items[2] !== null || state.items[3] !== null || state.items[4] !== null) return fail('structured numpy dtypes are not supported');
      obj.state = state;
      return obj;
    }
    if (isObj(obj, 'ndarray-pending')) {
      // (version, shape, dtype, is_fortran, raw bytes)
      const [version, shape, dtype, fortran, raw] = state.items as readonly Item[];
      if (version !== 1) return fail(`numpy array state version ${String(version)} is not supported`);
      if (!(shape instanceof PickleTuple) || !shape.items.every((d) => typeof d === 'number' && Number.isInteger(d) && d >= 0))
        return fail('numpy array shape is not a tuple of sizes');
      if (dtype === undefined || !isObj(dtype, 'dtype')) return fail('numpy array dtype is missing');
      if (fortran !== false && fortran !== 0) return fail('Fortran-order numpy arrays are not supported');
      if (!(raw instanceof Uint8Array)) return fail('numpy array data is not a byte string');
      const dims = shape.items as number[];
      const count = dims.reduce((p, d) => p * d, 1);
      if (raw.length !== count) return fail(`numpy array of shape (${dims.join(', ')}) needs ${count} bytes, data has ${raw.length}`);
      const arr: NdArray = { kind: 'ndarray', dtype: 'uint8', shape: dims, data: raw };
      return arr;
    }
    return fail(`BUILD on a ${describe(obj)} is not supported`);
  };

  for (;;) {
    opAt = pos;
    const op = u8();
    switch (op) {
      case 0x80: {
        const proto = u8();
        if (proto > 2) fail(`pickle protocol ${proto} is not supported (the CIFAR-100 files use protocol 2)`);
        break;
      }
      case 0x2e /* . STOP */:
        {
          const result = pop();
          if (stack.length !== 0) fail('values left on the stack at STOP');
          if (pos !== buf.length) fail(`${buf.length - pos} bytes after the end of the pickle`);
          return value(result, 'result');
        }
      case 0x28 /* ( MARK */:
        stack.push(MARK);
        break;
      case 0x7d /* } EMPTY_DICT */:
        stack.push(new Map());
        break;
      case 0x5d /* ] EMPTY_LIST */:
        stack.push([]);
        break;
      case 0x29 /* ) EMPTY_TUPLE */:
        stack.push(new PickleTuple([]));
        break;
      case 0x4e /* N NONE */:
        stack.push(null);
        break;
      case 0x88 /* NEWTRUE */:
        stack.push(true);
        break;
      case 0x89 /* NEWFALSE */:
        stack.push(false);
        break;
      case 0x4b /* K BININT1 */:
        stack.push(u8());
        break;
      case 0x4d /* M BININT2 */:
        stack.push(u16());
        break;
      case 0x4a /* J BININT */:
        stack.push(i32());
        break;
      case 0x8a /* LONG1 */:
        {
          const n = u8();
          const b = bytes(n);
          if (n > 6) fail(`LONG1 of ${n} bytes is too large`);
          let v = 0;
          for (let i = n - 1; i >= 0; i--) v = v * 256 + b[i]!;
          if (n > 0 && b[n - 1]! & 0x80) v -= 2 ** (8 * n);
          stack.push(v);
          break;
        }
      case 0x55 /* U SHORT_BINSTRING */:
        stack.push(bytes(u8()));
        break;
      case 0x54 /* T BINSTRING */:
        {
          const n = i32();
          if (n < 0) fail('negative BINSTRING length');
          stack.push(bytes(n));
          break;
        }
      case 0x58 /* X BINUNICODE */:
        {
          const b = bytes(u32());
          try {
            stack.push(utf8.decode(b));
          } catch {
            fail('BINUNICODE is not valid UTF-8');
          }
          break;
        }
      case 0x71 /* q BINPUT */:
        memo.set(u8(), top());
        break;
      case 0x72 /* r LONG_BINPUT */:
        memo.set(u32(), top());
        break;
      case 0x68 /* h BINGET */:
      case 0x6a /* j LONG_BINGET */:
        {
          const idx = op === 0x68 ? u8() : u32();
          if (!memo.has(idx)) fail(`memo entry ${idx} is not defined`);
          stack.push(memo.get(idx)!);
          break;
        }
      case 0x61 /* a APPEND */:
        {
          const x = pop();
          append(top(), [x]);
          break;
        }
      case 0x65 /* e APPENDS */:
        {
          const items = popToMark();
          append(top(), items);
          break;
        }
      case 0x73 /* s SETITEM */:
        {
          const v = pop();
          const k = pop();
          setItems(top(), [k, v]);
          break;
        }
      case 0x75 /* u SETITEMS */:
        {
          const items = popToMark();
          setItems(top(), items);
          break;
        }
      case 0x74 /* t TUPLE */:
        stack.push(tuple(popToMark()));
        break;
      case 0x85 /* TUPLE1 */:
        stack.push(tuple([pop()]));
        break;
      case 0x86 /* TUPLE2 */:
        {
          const b = pop();
          const a = pop();
          stack.push(tuple([a, b]));
          break;
        }
      case 0x87 /* TUPLE3 */:
        {
          const c = pop();
          const b = pop();
          const a = pop();
          stack.push(tuple([a, b, c]));
          break;
        }
      case 0x63 /* c GLOBAL */:
        {
          const name = `${line()} ${line()}`;
          const allowed = ALLOWED_GLOBALS[name];
          if (!allowed) fail(`global ${name.replace(' ', '.')} is not allowed (only the numpy array and byte-string constructors are)`);
          stack.push({ kind: 'global', name: allowed! });
          break;
        }
      case 0x52 /* R REDUCE */:
        {
          const args = pop();
          const callable = pop();
          stack.push(reduce(callable, args));
          break;
        }
      case 0x62 /* b BUILD */:
        {
          const state = pop();
          const obj = pop();
          stack.push(build(obj, state));
          break;
        }
      default:
        fail(`opcode 0x${op.toString(16).padStart(2, '0')} is not supported`);
    }
  }
}

function latin1Bytes(text: string, fail: (d: string) => never): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0xff) fail('_codecs.encode text has a character above U+00FF');
    out[i] = c;
  }
  return out;
}
