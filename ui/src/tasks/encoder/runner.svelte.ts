// Running a pipeline from a tab: the latest request wins, its answer or error is kept, and the
// call is also written out as the Python a `transformers` user would type.
import type { Backend } from "../../lib/backend";
import { BackendError, toBackendError } from "../../lib/backend";
import type { PipelineResponse } from "../../lib/bindings/PipelineResponse";
import type { Task } from "../../lib/bindings/Task";

export class Runner {
  response = $state<PipelineResponse | null>(null);
  error = $state<BackendError | null>(null);
  busy = $state(false);
  /** The equivalent `pipeline(...)(...)` call. */
  call = $state("");
  /** The inputs the current response answers, as a list (one entry unless in batch mode). */
  ran = $state<unknown[]>([]);
  /** Finished runs so far, successful or not (tests wait for it to move). */
  runs = $state(0);
  readonly #backend: Backend;
  readonly #task: Task;
  #latest = 0;

  constructor(backend: Backend, task: Task) {
    this.#backend = backend;
    this.#task = task;
  }

  async run(model: string, inputs: unknown, kwargs: Record<string, unknown>): Promise<void> {
    const id = ++this.#latest;
    this.busy = true;
    this.error = null;
    this.call = pythonCall(this.#task, model, inputs, kwargs);
    try {
      const r = await this.#backend.runPipeline(this.#task, model.trim(), inputs, kwargs);
      if (id === this.#latest) {
        this.response = r;
        this.ran = Array.isArray(inputs) ? inputs : [inputs];
      }
    } catch (err) {
      if (id === this.#latest) {
        this.error = toBackendError(err);
        this.response = null;
      }
    } finally {
      if (id === this.#latest) {
        this.busy = false;
        this.runs += 1;
      }
    }
  }
}

/** A value as Python source: `None`, `True`, lists, dicts, quoted strings. */
export function py(value: unknown): string {
  if (value === null || value === undefined) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (Array.isArray(value)) return `[${value.map(py).join(", ")}]`;
  if (typeof value === "object") {
    const items = Object.entries(value as Record<string, unknown>).map(
      ([k, v]) => `${JSON.stringify(k)}: ${py(v)}`,
    );
    return `{${items.join(", ")}}`;
  }
  return JSON.stringify(value);
}

export function pythonCall(
  task: Task,
  model: string,
  inputs: unknown,
  kwargs: Record<string, unknown>,
): string {
  const args = [py(inputs), ...Object.entries(kwargs).map(([k, v]) => `${k}=${py(v)}`)];
  return `pipeline("${task}", model=${JSON.stringify(model.trim())})(${args.join(", ")})`;
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
