// How the sampling settings reshape the next-token distribution, computed from the top
// alternatives the engine recorded (the same order of warpers as transformers: temperature,
// top-k, top-p, min-p). The tail beyond the recorded alternatives is ignored, so the picture is
// exact for whatever part of the distribution it shows.

export interface SamplingSettings {
  doSample: boolean;
  temperature: number;
  topK: number | null;
  topP: number;
  minP: number | null;
}

export interface Reshaped {
  /** Probability under the model (from its logprob). */
  before: number;
  /** Probability of being picked with these settings (0 when filtered out). */
  after: number;
}

function softmax(scores: number[]): number[] {
  const max = Math.max(...scores);
  if (!Number.isFinite(max)) return scores.map(() => 0);
  const exps = scores.map((s) => Math.exp(s - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

/** `logprobs` best first. Greedy puts everything on the first. */
export function reshape(logprobs: number[], s: SamplingSettings): Reshaped[] {
  const before = logprobs.map((l) => Math.exp(l));
  if (!s.doSample) return before.map((b, i) => ({ before: b, after: i === 0 ? 1 : 0 }));
  let scores = logprobs.map((l) => l / (s.temperature > 0 ? s.temperature : 1));
  if (s.topK !== null && s.topK > 0) {
    const kth = [...scores].sort((a, b) => b - a)[Math.min(s.topK, scores.length) - 1];
    scores = scores.map((x) => (x < kth ? -Infinity : x));
  }
  if (s.topP < 1) {
    const probs = softmax(scores);
    const order = probs.map((_, i) => i).sort((a, b) => probs[a] - probs[b]);
    let cumulative = 0;
    order.forEach((i, rank) => {
      cumulative += probs[i];
      if (cumulative <= 1 - s.topP && rank < order.length - 1) scores[i] = -Infinity;
    });
  }
  if (s.minP !== null && s.minP > 0) {
    const probs = softmax(scores);
    const top = Math.max(...probs);
    scores = scores.map((x, i) => (probs[i] < s.minP! * top && i !== 0 ? -Infinity : x));
  }
  const after = softmax(scores);
  return before.map((b, i) => ({ before: b, after: after[i] }));
}

/** A token's colour class by probability: 0 (sure) to 4 (a long shot). */
export function certainty(logprob: number): number {
  const p = Math.exp(logprob);
  if (p >= 0.9) return 0;
  if (p >= 0.6) return 1;
  if (p >= 0.3) return 2;
  if (p >= 0.1) return 3;
  return 4;
}

/** What a token looks like on screen: whitespace made visible. */
export function visible(text: string): string {
  return text.replace(/\n/g, "↵").replace(/\t/g, "⇥").replace(/^ /, "␣");
}
