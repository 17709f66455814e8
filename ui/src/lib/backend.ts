// The one place the UI talks to the Rust side. Components receive a `Backend`, so tests (and a
// plain browser) can hand them another implementation of the same interface.
import { Channel, invoke } from "@tauri-apps/api/core";
import { open } from "@tauri-apps/plugin-dialog";
import type { AppInfo } from "./bindings/AppInfo";
import type { CachedRepo } from "./bindings/CachedRepo";
import type { DownloadEvent } from "./bindings/DownloadEvent";
import type { DownloadResult } from "./bindings/DownloadResult";
import type { ModelFacts } from "./bindings/ModelFacts";
import type { ModelSummary } from "./bindings/ModelSummary";
import type { SearchQuery } from "./bindings/SearchQuery";
import type { SystemReport } from "./bindings/SystemReport";
import type { Comparison } from "./bindings/Comparison";
import type { ErrorCode } from "./bindings/ErrorCode";
import type { ErrorPayload } from "./bindings/ErrorPayload";
import type { PipelineResponse } from "./bindings/PipelineResponse";
import type { Quantization } from "./bindings/Quantization";
import type { RunEvent } from "./bindings/RunEvent";
import type { RunTarget } from "./bindings/RunTarget";
import type { Task } from "./bindings/Task";
import type { TokenizeOptions } from "./bindings/TokenizeOptions";
import type { TokenizeResponse } from "./bindings/TokenizeResponse";
import type { ChatTokenizeResponse } from "./bindings/ChatTokenizeResponse";
import type { Message } from "./bindings/Message";
import type { TokenizerComparison } from "./bindings/TokenizerComparison";
import type { InsideView } from "./bindings/InsideView";
import type { InsideResponse } from "./bindings/InsideResponse";

export interface Backend {
  appInfo(): Promise<AppInfo>;
  tokenize(model: string, text: string, options: TokenizeOptions): Promise<TokenizeResponse>;
  /** The same text through two models' tokenizers, side by side. */
  tokenizeCompare(model: string, other: string, text: string, options: TokenizeOptions): Promise<TokenizerComparison>;
  /** A conversation through the model's own chat template, as tokens. */
  tokenizeChat(model: string, messages: Message[], addGenerationPrompt: boolean): Promise<ChatTokenizeResponse>;
  /** Runs `pipeline(task, model)(inputs, **kwargs)` in the engine, as `target` says (the run's
   * id, model, device and weights). `onEvent` follows it: queued behind another run, loading. */
  runPipeline(
    target: RunTarget,
    task: Task,
    inputs: unknown,
    kwargs: Record<string, unknown>,
    batchSize: number | null,
    onEvent: (event: RunEvent) => void,
  ): Promise<PipelineResponse>;
  /** Runs a generation task; `onEvent` also gets each token as it is generated. */
  generate(
    target: RunTarget,
    task: Task,
    inputs: unknown,
    kwargs: Record<string, unknown>,
    onEvent: (event: RunEvent) => void,
  ): Promise<PipelineResponse>;
  /** One prompt through two variants of a model: `target`'s weights and `b`. */
  compareVariants(
    target: RunTarget,
    b: Quantization,
    inputs: unknown,
    maxNewTokens: number,
    onEvent: (event: RunEvent) => void,
  ): Promise<Comparison>;
  /** Attention maps or the logit lens of a causal model on one text (a compute run). */
  inspectModel(
    target: RunTarget,
    view: InsideView,
    text: string,
    topK: number,
    onEvent: (event: RunEvent) => void,
  ): Promise<InsideResponse>;
  /** Cancels a run wherever it is (waiting, loading, computing); a generation keeps its tokens. */
  cancelRun(run: string): Promise<void>;
  /** Opens the system picker; resolves to null when the user cancels. */
  pickModel(kind: "folder" | "file"): Promise<string | null>;
  /** The machine, the Hub settings and the loaded models. */
  systemReport(): Promise<SystemReport>;
  /** Searches the Hub's models. */
  searchModels(query: SearchQuery): Promise<ModelSummary[]>;
  /** What a model is and whether it fits, without loading it (Hub repos: before downloading). */
  modelFacts(
    model: string,
    gguf?: string | null,
    quantization?: Quantization,
    context?: number,
  ): Promise<ModelFacts>;
  /** Downloads a Hub repo into the HF cache, calling `onEvent` with progress; `id` names it
   * for `cancelDownload`. */
  downloadModel(
    id: string,
    model: string,
    gguf: string | null,
    onEvent: (event: DownloadEvent) => void,
  ): Promise<DownloadResult>;
  cancelDownload(id: string): Promise<void>;
  cachedModels(): Promise<CachedRepo[]>;
  removeCachedModel(repo: string, revision?: string | null): Promise<number>;
  /** Unloads one loaded model by id, or all with null. */
  unloadModel(id: number | null): Promise<void>;
  /** Lets a model that failed the fit check load anyway. */
  loadAnyway(model: string): Promise<void>;
}

/** An error from the engine, with the machine-readable code it was sent with. */
export class BackendError extends Error {
  readonly code: ErrorCode;
  constructor(payload: ErrorPayload) {
    super(payload.message);
    this.code = payload.code;
  }
}

function isPayload(value: unknown): value is ErrorPayload {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as ErrorPayload).code === "string" &&
    typeof (value as ErrorPayload).message === "string"
  );
}

/** Wraps anything a command rejects with into a BackendError. */
export function toBackendError(err: unknown): BackendError {
  if (err instanceof BackendError) return err;
  if (isPayload(err)) return new BackendError(err);
  return new BackendError({ code: "internal", message: String(err) });
}

/** A channel the command sends its events on, delivered to `onEvent`. */
function channel<E>(onEvent: (event: E) => void): Channel<E> {
  const events = new Channel<E>();
  events.onmessage = onEvent;
  return events;
}

async function call<T>(command: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(command, args);
  } catch (err) {
    throw toBackendError(err);
  }
}

export const tauriBackend: Backend = {
  appInfo: () => call<AppInfo>("app_info"),
  tokenize: (model, text, options) => call<TokenizeResponse>("tokenize", { model, text, options }),
  tokenizeCompare: (model, other, text, options) =>
    call<TokenizerComparison>("tokenize_compare", { model, other, text, options }),
  tokenizeChat: (model, messages, addGenerationPrompt) =>
    call<ChatTokenizeResponse>("tokenize_chat", { model, messages, addGenerationPrompt }),
  runPipeline: (target, task, inputs, kwargs, batchSize, onEvent) =>
    call<PipelineResponse>("run_pipeline", {
      target,
      task,
      inputs,
      kwargs,
      batchSize,
      events: channel(onEvent),
    }),
  generate: (target, task, inputs, kwargs, onEvent) =>
    call<PipelineResponse>("generate", { target, task, inputs, kwargs, events: channel(onEvent) }),
  compareVariants: (target, b, inputs, maxNewTokens, onEvent) =>
    call<Comparison>("compare_variants", { target, b, inputs, maxNewTokens, events: channel(onEvent) }),
  inspectModel: (target, view, text, topK, onEvent) =>
    call<InsideResponse>("inspect_model", { target, view, text, topK, events: channel(onEvent) }),
  cancelRun: (run) => call<void>("cancel_run", { run }),
  systemReport: () => call<SystemReport>("system_report"),
  searchModels: (query) => call<ModelSummary[]>("search_models", { query }),
  modelFacts: (model, gguf, quantization, context) =>
    call<ModelFacts>("model_facts", {
      model,
      gguf: gguf ?? null,
      quantization: quantization ?? null,
      context: context ?? null,
    }),
  downloadModel: (id, model, gguf, onEvent) =>
    call<DownloadResult>("download_model", { id, model, gguf, events: channel(onEvent) }),
  cancelDownload: (id) => call<void>("cancel_download", { id }),
  cachedModels: () => call<CachedRepo[]>("cached_models"),
  removeCachedModel: (repo, revision) =>
    call<number>("remove_cached_model", { repo, revision: revision ?? null }),
  unloadModel: (id) => call<void>("unload_model", { id }),
  loadAnyway: (model) => call<void>("load_anyway", { model }),
  async pickModel(kind) {
    const picked = await open(
      kind === "folder"
        ? { directory: true, title: "Choose a model folder" }
        : {
            title: "Choose a tokenizer.json or GGUF file",
            filters: [{ name: "Tokenizer or GGUF", extensions: ["json", "gguf"] }],
          },
    );
    return typeof picked === "string" ? picked : null;
  },
};
