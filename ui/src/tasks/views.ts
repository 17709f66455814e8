// What every task view receives.
import type { Backend } from "../lib/backend";
import type { TaskInfo } from "../lib/bindings/TaskInfo";

export interface ViewProps {
  backend: Backend;
  task: TaskInfo;
  /** The model in the header's picker. */
  model: string;
  /** The device picked in the header (`cpu`, `cuda:0`), where runs go. */
  device: string;
  /** The task's input text, shared with the tokenizer inspector. */
  text: string;
}

/** A starter model that suits a task, picked when its tab is first opened. */
export const STARTER_FOR: Partial<Record<string, string>> = {
  "text-generation": "smollm2-135m-instruct",
  summarization: "flan-t5-small-titles",
  translation: "flan-t5-small-titles",
  "token-classification": "rampart-ner",
  "fill-mask": "splade-tiny",
  "feature-extraction": "all-minilm-l6-v2",
};

/** Inputs that show a task off better than one line of the engine's example. */
export const EXAMPLES: Partial<Record<string, string>> = {
  summarization:
    "The city council met on Tuesday to discuss the new bike lanes on Main Street. After a long debate, the members voted to build them next spring, and the mayor promised more trees.",
  translation: "The weather is nice today.",
  "question-answering":
    "Emperor penguins live in Antarctica, where they breed during the winter. The males keep the eggs warm on their feet for about two months while the females hunt at sea.",
  "feature-extraction": [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing the violin.",
  ].join("\n"),
};
