/** Prints a benchmark table and appends it to .cache/bench.md, for docs/performance.md. */
import * as fs from "node:fs";
import * as path from "node:path";

const REPORT = path.resolve(__dirname, "../../.cache/bench.md");

export function report(title: string, header: readonly string[], rows: readonly (readonly (string | number)[])[]): void {
  const cell = (value: string | number) =>
    typeof value !== "number" || Number.isInteger(value) ? String(value) : value.toFixed(value < 10 ? 2 : 0);
  const lines = [`### ${title}`, "", `| ${header.join(" | ")} |`, `| ${header.map(() => "---").join(" | ")} |`];
  for (const row of rows) lines.push(`| ${row.map(cell).join(" | ")} |`);
  const text = `${lines.join("\n")}\n\n`;
  console.log(text);
  fs.mkdirSync(path.dirname(REPORT), { recursive: true });
  fs.appendFileSync(REPORT, text);
}

/** Wall time of `action` in seconds. */
export async function seconds(action: () => unknown): Promise<number> {
  const start = process.hrtime.bigint();
  await action();
  return Number(process.hrtime.bigint() - start) / 1e9;
}
