import type { Store } from "../../src/core/ports.js";

type Override<K extends keyof Store> =
  NonNullable<Store[K]> extends (...args: infer A) => infer R
    ? (real: (...args: A) => R, ...args: A) => R
    : never;

/** Replacements for some of a store's methods; each gets the real method first. */
export type StoreOverrides = { [K in keyof Store]?: Override<K> };

/** `store` with some methods wrapped (to delay, fail or count them), the rest passed through. */
export function interceptStore(store: Store, overrides: StoreOverrides): Store {
  return new Proxy(store, {
    get(target, name) {
      const value = Reflect.get(target, name, target) as unknown;
      const override = (Object.hasOwn(overrides, name) ? overrides[name as keyof Store] : undefined) as
        | ((real: (...args: unknown[]) => unknown, ...args: unknown[]) => unknown)
        | undefined;
      // An optional method the store lacks (SQLite's clockOffsetMs) can be given one; its "real" is a no-op.
      if (typeof value !== "function") {
        return override === undefined ? value : (...args: unknown[]) => override(async () => null, ...args);
      }
      const real = (value as (...args: unknown[]) => unknown).bind(target);
      return override === undefined ? real : (...args: unknown[]) => override(real, ...args);
    },
  });
}

/**
 * A gate for refreshed tokens: `completeRefreshes` (an override for interceptStore) waits until the
 * test calls `open()`, so a refresh can be held between its provider's answer and its commit.
 */
export function completionGate(): { open: () => void; completeRefreshes: Override<"completeRefreshes"> } {
  let open: () => void = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return {
    open: () => open(),
    completeRefreshes: async (real, items) => {
      await opened;
      return real(items);
    },
  };
}
