/**
 * Runs `pulumi up|preview|refresh|destroy` on the real engine with the real program, as an
 * Automation API inline program: the Node.js language host cannot be built here (the module proxy
 * refuses it), so this process serves the program to the CLI instead, the way the Automation API
 * always does (`--client`). A fresh process per operation loads index.ts afresh, as the language host
 * would. Run with tsx, from the project directory:
 *
 *   tsx e2e/harness/inlineProgram.ts up --stack dev [--cwd DIR] [--expect-no-changes] [--target URN]...
 *
 * Prints the engine's output; exits 1 (with the CLI's error output) when the operation fails.
 */
import * as path from "node:path";
import { CommandError, LocalWorkspace, PulumiCommand, Stack } from "@pulumi/pulumi/automation";
import { TOOLCHAIN } from "./toolchain";

const OPERATIONS = ["up", "preview", "refresh", "destroy"] as const;
type Operation = (typeof OPERATIONS)[number];

interface Invocation {
  readonly operation: Operation;
  readonly stack: string;
  readonly workDir: string;
  readonly expectNoChanges: boolean;
  readonly targets: string[];
}

/** The CLI flags the rungs use; anything else is refused rather than silently dropped. */
export function parseInvocation(argv: readonly string[], cwd: string): Invocation {
  const [operation, ...rest] = argv;
  if (!OPERATIONS.includes(operation as Operation)) throw new Error(`not a program operation: ${operation}`);
  let stack: string | undefined;
  let workDir = cwd;
  let expectNoChanges = false;
  const targets: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const flag = rest[i];
    const value = () => {
      const next = rest[++i];
      if (next === undefined) throw new Error(`${flag} needs a value`);
      return next;
    };
    if (flag === "--stack") stack = value();
    else if (flag === "--cwd") workDir = path.resolve(cwd, value());
    else if (flag === "--target") targets.push(value());
    else if (flag === "--expect-no-changes") expectNoChanges = true;
    // The Automation API never prompts and `up` never previews first: what these ask for already.
    else if (flag === "--yes" || flag === "--skip-preview") continue;
    else throw new Error(`unsupported flag for an inline program: ${flag}`);
  }
  if (stack === undefined) throw new Error("--stack is required");
  return { operation: operation as Operation, stack, workDir, expectNoChanges, targets };
}

async function main(): Promise<void> {
  const invocation = parseInvocation(process.argv.slice(2), process.cwd());
  // Loaded per run, as the language host loads it; a throw surfaces as the program's failure.
  const program = () => {
    process.chdir(invocation.workDir);
    // index.ts is the program as a function (`export =`), called as the language host calls it.
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- index.ts is CommonJS under tsx
    return (require(path.join(invocation.workDir, "index.ts")) as () => Promise<Record<string, unknown>>)();
  };
  const pulumiCommand = await PulumiCommand.get({ root: TOOLCHAIN });
  const workspace = await LocalWorkspace.create({ workDir: invocation.workDir, program, pulumiCommand });
  const stack = await Stack.select(invocation.stack, workspace);
  // The CLI's own output, streamed as it comes, as a user's terminal shows it.
  const onOutput = (out: string) => process.stdout.write(out);
  const onError = (err: string) => process.stderr.write(err);
  const common = { onOutput, onError, ...(invocation.targets.length > 0 ? { target: invocation.targets } : {}) };
  switch (invocation.operation) {
    case "up":
      await stack.up({ ...common, expectNoChanges: invocation.expectNoChanges });
      break;
    case "preview":
      await stack.preview({ ...common, expectNoChanges: invocation.expectNoChanges });
      break;
    case "refresh":
      await stack.refresh({ ...common, expectNoChanges: invocation.expectNoChanges });
      break;
    case "destroy":
      await stack.destroy(common);
      break;
  }
}

if (require.main === module) {
  main().catch((error: unknown) => {
    // A failed operation's output has already been streamed; repeat only what the CLI never printed.
    if (!(error instanceof CommandError)) process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
