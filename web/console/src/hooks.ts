import { useCallback, useEffect, useRef, useState } from "preact/hooks";

/**
 * Loads with `load`, again every `intervalMs` while `keepPolling(value)` says so (and the tab is
 * visible), and whenever `reload` is called. A failed load keeps the last value and shows the error.
 */
export function usePolled<T>(
  load: () => Promise<T>,
  deps: readonly unknown[],
  options: { intervalMs?: number; keepPolling?: (value: T) => boolean } = {},
): { value: T | undefined; error: Error | undefined; reload: () => Promise<void> } {
  const [value, setValue] = useState<T | undefined>(undefined);
  const [error, setError] = useState<Error | undefined>(undefined);
  const generation = useRef(0);
  const optionsRef = useRef(options);
  optionsRef.current = options;
  const run = useCallback(async () => {
    const mine = generation.current;
    try {
      const next = await load();
      if (mine !== generation.current) return;
      setValue(() => next);
      setError(undefined);
    } catch (caught) {
      if (mine !== generation.current) return;
      setError(caught instanceof Error ? caught : new Error(String(caught)));
    }
  }, deps);

  useEffect(() => {
    generation.current += 1;
    setValue(undefined);
    setError(undefined);
    let timer: ReturnType<typeof setTimeout> | undefined;
    let stopped = false;
    const loop = async () => {
      await run();
      if (stopped) return;
      const { intervalMs, keepPolling } = optionsRef.current;
      if (!intervalMs) return;
      timer = setTimeout(function again() {
        if (stopped) return;
        const latest = latestValue.current;
        if (keepPolling && latest !== undefined && !keepPolling(latest)) {
          timer = setTimeout(again, intervalMs);
          return;
        }
        void run().then(() => {
          if (!stopped) timer = setTimeout(again, intervalMs);
        });
      }, intervalMs);
    };
    void loop();
    return () => {
      stopped = true;
      generation.current += 1;
      if (timer) clearTimeout(timer);
    };
  }, [run]);

  const latestValue = useRef<T | undefined>(undefined);
  latestValue.current = value;
  return { value, error, reload: run };
}
