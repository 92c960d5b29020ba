// One macrotask turn (setImmediate in Node, a zero timeout in browsers): lets timers, I/O and
// abort handlers run. On the CPU backend every kernel resolves as a microtask, so a long
// computation that never yields would hold the event loop and no abort could land.
export function yieldToEventLoop(): Promise<void> {
  return new Promise<void>((resolve) => {
    if (typeof setImmediate === 'function') setImmediate(resolve);
    else setTimeout(resolve, 0);
  });
}
