// The download manager's state: every download of this session, fed by the engine's events.
// `apply` is a pure step (tested on its own); `Downloads` runs downloads through a Backend.
import type { Backend } from "../backend";
import { toBackendError } from "../backend";
import type { DownloadEvent } from "../bindings/DownloadEvent";

export type DownloadState = "starting" | "running" | "done" | "failed" | "cancelled";

export interface FileRow {
  name: string;
  size: number;
  bytes: number;
  /** "waiting" | "downloading" | "cached" | "resumed" | "verified" | "done" */
  status: string;
}

export interface Download {
  id: string;
  model: string;
  gguf: string | null;
  state: DownloadState;
  files: FileRow[];
  fetched: number;
  toFetch: number;
  bytesPerSecond: number;
  etaSeconds: number | null;
  commit: string | null;
  /** What to put in the model picker once done. */
  result: string | null;
  error: string | null;
  seconds: number | null;
}

export function newDownload(id: string, model: string, gguf: string | null): Download {
  return {
    id,
    model,
    gguf,
    state: "starting",
    files: [],
    fetched: 0,
    toFetch: 0,
    bytesPerSecond: 0,
    etaSeconds: null,
    commit: null,
    result: null,
    error: null,
    seconds: null,
  };
}

/** Applies one engine event to a download (in place; returns it for convenience). */
export function apply(d: Download, e: DownloadEvent): Download {
  switch (e.event) {
    case "started":
      d.state = "running";
      d.commit = e.data.commit;
      d.toFetch = e.data.toFetch;
      d.files = e.data.files.map((f) => ({
        name: f.name,
        size: f.size,
        bytes: f.cached ? f.size : f.partial,
        status: f.cached ? "cached" : "waiting",
      }));
      break;
    case "progress": {
      d.fetched = e.data.fetched;
      d.toFetch = e.data.toFetch;
      d.bytesPerSecond = e.data.bytesPerSecond;
      d.etaSeconds = e.data.etaSeconds;
      const row = d.files.find((f) => f.name === e.data.file);
      if (row) {
        row.bytes = e.data.fileBytes;
        row.status = "downloading";
      }
      break;
    }
    case "fileDone": {
      const row = d.files.find((f) => f.name === e.data.file);
      if (row) {
        row.bytes = row.size;
        row.status = e.data.fromCache
          ? "cached"
          : e.data.verified
            ? "verified"
            : e.data.resumedFrom > 0
              ? "resumed"
              : "done";
      }
      break;
    }
    case "done":
      d.state = "done";
      d.commit = e.data.commit;
      d.fetched = e.data.fetched;
      d.seconds = e.data.seconds;
      d.etaSeconds = null;
      break;
    case "failed":
      d.state = "failed";
      d.error = e.data.error.message;
      break;
    case "cancelled":
      d.state = "cancelled";
      break;
  }
  return d;
}

/** Share of the download done, 0..1 (a download with nothing to fetch is complete). */
export function fraction(d: Download): number {
  if (d.state === "done") return 1;
  return d.toFetch > 0 ? Math.min(1, d.fetched / d.toFetch) : 0;
}

let counter = 0;

export class Downloads {
  list = $state<Download[]>([]);

  constructor(private backend: Backend) {}

  get active(): number {
    return this.list.filter((d) => d.state === "starting" || d.state === "running").length;
  }

  /** Starts (or, for one that stopped, resumes) a download; resolves to the picker value. */
  async start(model: string, gguf: string | null): Promise<string | null> {
    const id = `dl-${Date.now()}-${counter++}`;
    this.list.unshift(newDownload(id, model, gguf));
    // Through the proxy, so every change redraws.
    const d = this.list[0];
    try {
      const result = await this.backend.downloadModel(id, model, gguf, (e) => apply(d, e));
      d.state = "done";
      d.result = result.model;
      return result.model;
    } catch (err) {
      const e = toBackendError(err);
      if (e.code === "cancelled") d.state = "cancelled";
      else {
        d.state = "failed";
        d.error = e.message;
      }
      return null;
    }
  }

  cancel(id: string): Promise<void> {
    return this.backend.cancelDownload(id);
  }

  /** Starts a stopped download again: the engine resumes from the partial files. */
  resume(d: Download): Promise<string | null> {
    this.list = this.list.filter((x) => x.id !== d.id);
    return this.start(d.model, d.gguf);
  }

  clearFinished() {
    this.list = this.list.filter((d) => d.state === "starting" || d.state === "running");
  }
}

/** `1.5 GiB`, `12.0 MiB`: as the engine writes sizes. */
export function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u + 1 < units.length) {
    v /= 1024;
    u += 1;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** `2 min 5 s`, `40 s`. */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min ${s % 60} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}
