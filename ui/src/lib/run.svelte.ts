// One run as the window follows it: waiting for the device behind other runs, loading its model
// (bytes read, layers built), then computing. Every runner (encoder tabs, generation, compare)
// keeps one of these, and `RunStatus.svelte` draws it with a Cancel button.
import type { LoadProgress } from "./bindings/LoadProgress";
import type { RunEvent } from "./bindings/RunEvent";
import type { RunTarget } from "./bindings/RunTarget";
import type { Quantization } from "./bindings/Quantization";

export type RunPhase = "idle" | "queued" | "loading" | "running";

/** A new id for a run: unique, so a cancel reaches that run and no other. */
export function newRunId(prefix: string): string {
  const random =
    typeof crypto !== "undefined" && "randomUUID" in crypto
      ? crypto.randomUUID()
      : `${Date.now()}-${Math.random().toString(36).slice(2)}`;
  return `${prefix}-${random}`;
}

/** What a command needs to know about where and as what a run happens. */
export function target(run: string, model: string, device: string, quantization: Quantization = "as_stored"): RunTarget {
  return { run, model: model.trim(), device, quantization };
}

export class RunState {
  phase = $state<RunPhase>("idle");
  /** Runs ahead of this one on the device, while queued. */
  ahead = $state(0);
  /** The model being loaded and how far it is. */
  loading = $state<{ model: string; progress: LoadProgress } | null>(null);
  /** Set once Cancel was pressed, until the run ends. */
  cancelling = $state(false);
  /** The id of the run in progress. */
  id: string | null = null;

  /** A new run starts: returns its id. */
  begin(prefix: string): string {
    this.id = newRunId(prefix);
    this.phase = "running";
    this.ahead = 0;
    this.loading = null;
    this.cancelling = false;
    return this.id;
  }

  /** Follows the run's events (tokens are the caller's business). */
  onEvent(event: RunEvent): void {
    if (event.kind === "queued") {
      this.phase = "queued";
      this.ahead = event.ahead;
    } else if (event.kind === "loading") {
      this.phase = "loading";
      this.loading = { model: event.model, progress: event.progress };
    } else {
      this.phase = "running";
      this.loading = null;
    }
  }

  /** The run ended (answer, error or cancelled). */
  end(): void {
    this.id = null;
    this.phase = "idle";
    this.loading = null;
    this.cancelling = false;
  }

  get busy(): boolean {
    return this.phase !== "idle";
  }
}

/** `12.5 MiB`: sizes in progress text. */
export function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(bytes < 10 * 1048576 ? 1 : 0)} MiB`;
}

/** 0-1: how far a load is, weights read first (a 50/50 split with the layers built). */
export function loadFraction(p: LoadProgress): number {
  const read = p.bytesTotal > 0 ? Math.min(1, p.bytesRead / p.bytesTotal) : 0;
  const built = p.layersTotal > 0 ? Math.min(1, p.layersBuilt / p.layersTotal) : 0;
  return p.layersTotal > 0 && p.bytesTotal === 0 ? built : (read + built) / 2;
}
