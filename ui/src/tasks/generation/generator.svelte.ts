// A generation from a tab: tokens arrive one by one over the event channel and are shown as
// they come; the final answer (the pipeline's JSON and every sequence's details) replaces them
// at the end. One run at a time per tab; Stop asks the engine to end it after the current token.
import type { Backend } from "../../lib/backend";
import { BackendError, toBackendError } from "../../lib/backend";
import type { GeneratedToken } from "../../lib/bindings/GeneratedToken";
import type { GenerationResult } from "../../lib/bindings/GenerationResult";
import type { PipelineResponse } from "../../lib/bindings/PipelineResponse";
import type { Quantization } from "../../lib/bindings/Quantization";
import type { Task } from "../../lib/bindings/Task";
import { pythonCall } from "../encoder/runner.svelte";

let counter = 0;

export class Generator {
  /** Tokens streamed so far, per returned sequence. */
  streamed = $state<GeneratedToken[][]>([]);
  response = $state<PipelineResponse | null>(null);
  error = $state<BackendError | null>(null);
  busy = $state(false);
  /** True until the first token (model loading and prefill). */
  waiting = $state(false);
  stopping = $state(false);
  call = $state("");
  /** Finished runs (tests wait for it to move). */
  runs = $state(0);
  readonly #backend: Backend;
  readonly #task: Task;
  #run: string | null = null;

  constructor(backend: Backend, task: Task) {
    this.#backend = backend;
    this.#task = task;
  }

  /** The finished result of the first prompt, if the last run succeeded. */
  get result(): GenerationResult | null {
    const d = this.response?.detail;
    return d?.kind === "generation" ? (d.results[0] ?? null) : null;
  }

  async run(
    model: string,
    inputs: unknown,
    kwargs: Record<string, unknown>,
    quantization: Quantization = "as_stored",
  ): Promise<void> {
    if (this.#run) await this.stop();
    const run = `run-${Date.now()}-${++counter}`;
    this.#run = run;
    this.busy = true;
    this.waiting = true;
    this.stopping = false;
    this.error = null;
    this.response = null;
    this.streamed = [];
    this.call = pythonCall(this.#task, model, inputs, pythonKwargs(kwargs));
    if (typeof kwargs.seed === "number") this.call = `set_seed(${kwargs.seed}); ${this.call}`;
    try {
      const response = await this.#backend.generate(
        this.#task,
        model.trim(),
        inputs,
        kwargs,
        run,
        (event) => {
          if (this.#run !== run || event.kind !== "token" || event.prompt !== 0) return;
          this.waiting = false;
          const rows = this.streamed;
          while (rows.length <= event.sequence) rows.push([]);
          rows[event.sequence].push(event.token);
        },
        quantization,
      );
      if (this.#run === run) this.response = response;
    } catch (err) {
      if (this.#run === run) this.error = toBackendError(err);
    } finally {
      if (this.#run === run) {
        this.#run = null;
        this.busy = false;
        this.waiting = false;
        this.stopping = false;
        this.runs += 1;
      }
    }
  }

  async stop(): Promise<void> {
    if (!this.#run) return;
    this.stopping = true;
    await this.#backend.stopGeneration(this.#run).catch(() => undefined);
  }

  /** What to draw: the final tokens when done, the streamed ones meanwhile. */
  tokens(sequence = 0): GeneratedToken[] {
    return this.result?.sequences[sequence]?.tokens ?? this.streamed[sequence] ?? [];
  }
}

/** The keyword arguments transformers takes: Wick's own (`logprobs`, `seed`) are left out. */
export function pythonKwargs(kwargs: Record<string, unknown>): Record<string, unknown> {
  const { logprobs: _logprobs, seed: _seed, ...rest } = kwargs;
  return rest;
}
