// A generation from a tab: tokens arrive one by one over the run's event channel and are shown as
// they come; the final answer (the pipeline's JSON and every sequence's details) replaces them at
// the end. One run at a time per tab; Stop cancels it wherever it is (waiting for the device,
// loading, prefilling), and during decoding keeps the tokens so far.
import type { Backend } from "../../lib/backend";
import { BackendError, toBackendError } from "../../lib/backend";
import type { GeneratedToken } from "../../lib/bindings/GeneratedToken";
import type { GenerationResult } from "../../lib/bindings/GenerationResult";
import type { PipelineResponse } from "../../lib/bindings/PipelineResponse";
import type { Quantization } from "../../lib/bindings/Quantization";
import type { Task } from "../../lib/bindings/Task";
import { pythonCall } from "../../lib/python";
import { RunState, target } from "../../lib/run.svelte";

/** What the window saw of a run's speed: times from pressing Send, as a person sees them. */
export interface WindowTiming {
  /** Send to the first token on screen, ms. */
  firstTokenMs: number | null;
  /** Tokens per second between the first and the last token to arrive. */
  decodeTokensPerS: number | null;
}

export class Generator {
  /** Tokens streamed so far, per returned sequence. */
  streamed = $state<GeneratedToken[][]>([]);
  response = $state<PipelineResponse | null>(null);
  error = $state<BackendError | null>(null);
  /** The last run was cancelled before its first token (nothing to show). */
  cancelled = $state(false);
  readonly run = new RunState();
  call = $state("");
  timing = $state<WindowTiming>({ firstTokenMs: null, decodeTokensPerS: null });
  /** Finished runs (tests wait for it to move). */
  runs = $state(0);
  readonly #backend: Backend;
  readonly #task: Task;

  constructor(backend: Backend, task: Task) {
    this.#backend = backend;
    this.#task = task;
  }

  get busy(): boolean {
    return this.run.busy;
  }

  /** True until the first token (waiting, loading, prefill). */
  get waiting(): boolean {
    return this.busy && this.streamed.length === 0;
  }

  get stopping(): boolean {
    return this.run.cancelling;
  }

  /** The finished result of the first prompt, if the last run succeeded. */
  get result(): GenerationResult | null {
    const d = this.response?.detail;
    return d?.kind === "generation" ? (d.results[0] ?? null) : null;
  }

  async start(
    model: string,
    device: string,
    inputs: unknown,
    kwargs: Record<string, unknown>,
    quantization: Quantization = "as_stored",
  ): Promise<void> {
    if (this.run.id) await this.stop();
    const id = this.run.begin(this.#task);
    const pressed = performance.now();
    let first: number | null = null;
    let last = pressed;
    let arrived = 0;
    this.error = null;
    this.cancelled = false;
    this.response = null;
    this.streamed = [];
    this.timing = { firstTokenMs: null, decodeTokensPerS: null };
    this.call = pythonCall(this.#task, model, inputs, kwargs);
    if (typeof kwargs.seed === "number") this.call = `set_seed(${kwargs.seed}); ${this.call}`;
    try {
      const response = await this.#backend.generate(
        target(id, model, device, quantization),
        this.#task,
        inputs,
        kwargs,
        (event) => {
          if (this.run.id !== id) return;
          if (event.kind !== "tokens") {
            this.run.onEvent(event);
            return;
          }
          // The engine sends tokens a few at a time (the first at once), so each event is drawn.
          const mine = event.tokens.filter((t) => t.prompt === 0);
          if (mine.length === 0) return;
          const now = performance.now();
          if (first === null) {
            first = now;
            this.timing = { firstTokenMs: now - pressed, decodeTokensPerS: null };
          }
          last = now;
          arrived += mine.length;
          const rows = this.streamed;
          for (const t of mine) {
            while (rows.length <= t.sequence) rows.push([]);
            rows[t.sequence].push(t.token);
          }
        },
      );
      if (this.run.id === id) {
        this.response = response;
        if (first !== null && arrived > 1) {
          this.timing = {
            firstTokenMs: this.timing.firstTokenMs,
            decodeTokensPerS: (arrived - 1) / ((last - first) / 1000),
          };
        }
      }
    } catch (err) {
      if (this.run.id === id) {
        const e = toBackendError(err);
        if (e.code === "cancelled") this.cancelled = true;
        else this.error = e;
      }
    } finally {
      if (this.run.id === id) {
        this.run.end();
        this.runs += 1;
      }
    }
  }


  async stop(): Promise<void> {
    const id = this.run.id;
    if (!id) return;
    this.run.cancelling = true;
    await this.#backend.cancelRun(id).catch(() => undefined);
  }

  /** What to draw: the final tokens when done, the streamed ones meanwhile. */
  tokens(sequence = 0): GeneratedToken[] {
    return this.result?.sequences[sequence]?.tokens ?? this.streamed[sequence] ?? [];
  }
}
