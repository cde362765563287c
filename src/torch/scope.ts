// Deterministic tensor lifetimes. Every tensor created while a scope is open belongs to it and
// is freed when the scope closes, unless it is part of the scope's return value (then it moves
// to the enclosing scope) or was kept with `keep`. Tensors made outside any scope live until
// disposed or garbage-collected (the binding's finalizer is the backstop).
//
// The backstop is late: Node runs the finalizers of collected handles only when the event loop
// turns (from setImmediate, on Node 20), so a synchronous loop that leaves its tensors to the
// garbage collector holds all of them until it returns (2.1 GB over 20,000 small steps). So:
// run each step of a loop in tidy() or dispose what it makes, and let a long loop yield to the
// event loop now and then (even a disposed handle keeps ~0.3 KB until its finalizer runs).

export interface Disposable {
  dispose(): void;
  readonly isDisposed: boolean;
}

const scopes: Set<Disposable>[] = [];
const kept = new WeakSet<Disposable>();

export function track(resource: Disposable): void {
  scopes[scopes.length - 1]?.add(resource);
}

/** Exempts a tensor from every scope: it lives until disposed explicitly. */
export function keep<R extends Disposable>(resource: R): R {
  kept.add(resource);
  for (const scope of scopes) scope.delete(resource);
  return resource;
}

function collectReturned(value: unknown, into: Set<Disposable>, seen = new Set<unknown>()): void {
  if (value === null || typeof value !== 'object' || seen.has(value)) return;
  seen.add(value);
  if (typeof (value as Disposable).dispose === 'function' && 'isDisposed' in value) {
    into.add(value as Disposable);
    return;
  }
  if (ArrayBuffer.isView(value)) return;
  const items = value instanceof Map ? value.values() : Array.isArray(value) ? value : Object.values(value);
  for (const item of items) collectReturned(item, into, seen);
}

/**
 * Runs `fn` in a scope and frees every tensor it made that is not returned (like tf.tidy). The
 * way to bound the memory of a loop: the garbage collector frees tensors only between turns of
 * the event loop (see the top of this file).
 */
export function tidy<R>(fn: () => R): R {
  const scope = new Set<Disposable>();
  scopes.push(scope);
  let result: R | undefined;
  try {
    result = fn();
    if (result instanceof Promise) throw new Error('tidy() takes a synchronous function');
    return result;
  } finally {
    scopes.pop();
    const returned = new Set<Disposable>();
    collectReturned(result, returned);
    const parent = scopes[scopes.length - 1];
    for (const resource of scope) {
      if (returned.has(resource)) parent?.add(resource);
      else if (!kept.has(resource)) resource.dispose();
    }
  }
}
