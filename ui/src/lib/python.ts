// The Python a `transformers` user would type for what a tab ran: shown under each result so the
// same call can be pasted into a notebook.
import type { Task } from "./bindings/Task";

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

/** `pipeline(task, model=...)(inputs, **kwargs)`, Wick's own keyword arguments left out. */
export function pythonCall(
  task: Task,
  model: string,
  inputs: unknown,
  kwargs: Record<string, unknown>,
): string {
  const args = [py(inputs), ...Object.entries(pythonKwargs(kwargs)).map(([k, v]) => `${k}=${py(v)}`)];
  return `pipeline("${task}", model=${JSON.stringify(model.trim())})(${args.join(", ")})`;
}

/** The keyword arguments transformers takes: Wick's own (`logprobs`, `seed`,
 * `sentence_embedding`) are left out. */
export function pythonKwargs(kwargs: Record<string, unknown>): Record<string, unknown> {
  const { logprobs: _logprobs, seed: _seed, sentence_embedding: _sentence, ...rest } = kwargs;
  return rest;
}

/** `SentenceTransformer(model).encode(sentences)`: what the embeddings tab computes. */
export function sentenceTransformersCall(model: string, sentences: string[], batchSize: number): string {
  return `SentenceTransformer(${JSON.stringify(model.trim())}).encode(${py(sentences)}, batch_size=${batchSize})`;
}
