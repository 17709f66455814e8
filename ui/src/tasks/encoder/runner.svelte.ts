// Running a pipeline from a tab: the latest request wins, its answer or error is kept, the run is
// followed (queued, loading) and can be cancelled, and the call is also written out as the Python
// a `transformers` user would type.
import type { Backend } from "../../lib/backend";
import { BackendError, toBackendError } from "../../lib/backend";
import type { PipelineResponse } from "../../lib/bindings/PipelineResponse";
import type { Task } from "../../lib/bindings/Task";
import { pythonCall } from "../../lib/python";
import { RunState, target } from "../../lib/run.svelte";

export interface RunOptions {
  /** Inputs per forward pass (the engine's default when absent). */
  batchSize?: number;
  /** The Python shown for the call, when it is not `pipeline(...)(...)`. */
  call?: string;
}

export class Runner {
  response = $state<PipelineResponse | null>(null);
  error = $state<BackendError | null>(null);
  /** The last run was cancelled (no result, no error). */
  cancelled = $state(false);
  readonly run = new RunState();
  /** The equivalent `pipeline(...)(...)` call. */
  call = $state("");
  /** The inputs the current response answers, as a list (one entry unless in batch mode). */
  ran = $state<unknown[]>([]);
  /** From pressing Run to the answer, in the window (engine time is `response.elapsedMs`). */
  roundTripMs = $state(0);
  /** Finished runs so far, successful or not (tests wait for it to move). */
  runs = $state(0);
  readonly #backend: Backend;
  readonly #task: Task;
  #latest = 0;

  constructor(backend: Backend, task: Task) {
    this.#backend = backend;
    this.#task = task;
  }

  get busy(): boolean {
    return this.run.busy;
  }

  async start(
    model: string,
    device: string,
    inputs: unknown,
    kwargs: Record<string, unknown>,
    options: RunOptions = {},
  ): Promise<void> {
    if (this.run.id) await this.cancel();
    const latest = ++this.#latest;
    const id = this.run.begin(this.#task);
    const started = performance.now();
    this.error = null;
    this.cancelled = false;
    this.call = options.call ?? pythonCall(this.#task, model, inputs, kwargs);
    try {
      const r = await this.#backend.runPipeline(
        target(id, model, device),
        this.#task,
        inputs,
        kwargs,
        options.batchSize ?? null,
        (event) => {
          if (latest === this.#latest) this.run.onEvent(event);
        },
      );
      if (latest === this.#latest) {
        this.roundTripMs = performance.now() - started;
        this.response = r;
        this.ran = Array.isArray(inputs) ? inputs : [inputs];
      }
    } catch (err) {
      if (latest === this.#latest) {
        const e = toBackendError(err);
        if (e.code === "cancelled") this.cancelled = true;
        else this.error = e;
        this.response = null;
      }
    } finally {
      if (latest === this.#latest) {
        this.run.end();
        this.runs += 1;
      }
    }
  }

  /** Cancels the run in progress, wherever it is. */
  async cancel(): Promise<void> {
    const id = this.run.id;
    if (!id) return;
    this.run.cancelling = true;
    await this.#backend.cancelRun(id).catch(() => undefined);
  }
}

/** One pipeline input as a person reads it: the text, a text pair, or the question. */
export function describe(input: unknown): string {
  if (typeof input === "string") return input;
  const o = (input ?? {}) as { text?: string; text_pair?: string; question?: string };
  if (o.text !== undefined) return o.text_pair ? `${o.text} / ${o.text_pair}` : o.text;
  return o.question ?? "";
}

/** Non-empty lines of a text: batch mode's inputs. */
export function lines(text: string): string[] {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
}

/** A stable colour slot (0-7) for a label, so one entity type keeps its colour. */
export function colourOf(label: string): number {
  let h = 0;
  for (const ch of label) h = (h * 31 + ch.codePointAt(0)!) >>> 0;
  return h % 8;
}

export function percent(score: number): string {
  return `${(score * 100).toFixed(score >= 0.995 || score < 0.0005 ? 1 : 2)}%`;
}
