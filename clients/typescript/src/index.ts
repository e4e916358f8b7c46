// The TypeScript SDK: the generated types (schema.ts) and the layer on them.
export type { components, operations, paths } from "./schema.js";
export * from "./yadtq.js";
export * from "./retry.js";
