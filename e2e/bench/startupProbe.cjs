// Loads the real program the way Pulumi's Node.js runtime does (its ts-node registration, with or
// without type-checking) under mocks, and prints the time from process start to the first resource
// registration. Usage: node startupProbe.cjs <typecheck|transpile-only>
// Run it with TS_NODE_CACHE_DIRECTORY pointing at an empty directory to measure a cold start.
const started = process.hrtime.bigint();
const fs = require("node:fs");
const path = require("node:path");
const { parse } = require("yaml");
const pulumi = require("@pulumi/pulumi");
const { typeScriptRequireStrings } = require("@pulumi/pulumi/tsutils");

const root = path.resolve(__dirname, "../..");
const { tsnodeRequire, typescriptRequire } = typeScriptRequireStrings();
const typecheck = process.argv[2] === "typecheck";
require(tsnodeRequire).register({
  compiler: typescriptRequire,
  transpileOnly: !typecheck,
  // What Pulumi.yaml has the CLI read (runtime.options.tsconfig).
  project: path.join(root, "tsconfig.pulumi.json"),
  skipProject: false,
  // That file sets noCheck (so Pulumi transpiles only); undo it to measure type-checking.
  compilerOptions: typecheck ? { noCheck: false } : {},
});

const stackConfig = parse(fs.readFileSync(path.join(root, "Pulumi.dev.yaml"), "utf8")).config;
// The shipped stack leaves flux.url for the user to set, as the README's first `pulumi up` asks.
stackConfig["k0s-platform:flux"] = { ...stackConfig["k0s-platform:flux"], url: "https://git.example.com/acme/gitops.git" };
const config = Object.fromEntries(
  Object.entries(stackConfig).map(([key, value]) => [key, typeof value === "string" ? value : JSON.stringify(value)]),
);

let reported = false;
pulumi.runtime
  .setMocks(
    {
      newResource(args) {
        if (!reported) {
          reported = true;
          console.log(JSON.stringify({ firstRegistrationMs: Number(process.hrtime.bigint() - started) / 1e6 }));
          process.exit(0);
        }
        return { id: `mocked::${args.name}`, state: args.inputs };
      },
      call: () => ({}),
    },
    "k0s-platform",
    "dev",
    false,
    "organization",
  )
  .then(() => {
    pulumi.runtime.setAllConfig(config);
    // The program is a function (`export =`), which Pulumi's runtime calls once it has loaded it.
    return require(path.join(root, "index.ts"))();
  });
