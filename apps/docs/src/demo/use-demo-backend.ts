// A demo component's backend, as <BackendBadge> shows it: started when the component mounts
// (`?backend=a,b` in the page URL picks one, for tests), disposed when it unmounts. Every demo
// (calculator, visualiser, model) holds one the same way; this is that one way.

import { type Ref, type ShallowRef, onBeforeUnmount, onMounted, ref, shallowRef } from 'vue';
import { type DemoBackend, createDemoBackend, preferenceFromQuery } from './backend.js';

export interface DemoBackendHooks {
  /** Runs once the backend started (the demo's first computation); a throw lands in `error`. */
  ready?(demo: DemoBackend): Promise<void>;
  /** Runs when no backend started, after `error` was set. */
  failed?(): void;
  /** The component's own teardown on unmount, run before the backend is disposed. */
  release?(): void;
}

export interface DemoBackendState {
  /** The backend once started; null while starting or when none started. */
  readonly demo: ShallowRef<DemoBackend | null>;
  /** Why no backend started (or the first computation failed); null otherwise. */
  readonly error: Ref<string | null>;
}

/** Registers the mount and unmount hooks: call it from a component's `<script setup>`. */
export function useDemoBackend(hooks: DemoBackendHooks = {}): DemoBackendState {
  const demo = shallowRef<DemoBackend | null>(null);
  const error = ref<string | null>(null);
  onMounted(async () => {
    try {
      demo.value = await createDemoBackend(preferenceFromQuery(window.location.search));
      await hooks.ready?.(demo.value);
    } catch (e) {
      error.value = e instanceof Error ? e.message : String(e);
      hooks.failed?.();
    }
  });
  onBeforeUnmount(() => {
    hooks.release?.();
    void demo.value?.backend.dispose();
  });
  return { demo, error };
}
