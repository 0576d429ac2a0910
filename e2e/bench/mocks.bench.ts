/**
 * How program evaluation grows with the number of environments: the real program under mocks (no
 * engine), with 1, 10 and 100 environments on the remote target.
 */
import { it } from "vitest";
import { mockCloud } from "../../test/lib/cloud";
import { runProgram, withFluxFixture } from "../../test/lib/program";
import { seedStackConfig } from "../../test/lib/seedStacks";
import { report, seconds } from "./report";

it("evaluates the program for 1, 10 and 100 environments", async () => {
  const config = seedStackConfig("dev");
  const environments = (count: number) =>
    Object.fromEntries(
      Array.from({ length: count }, (_, index) => [
        `env-${index}`,
        { client: "acme", billingGroup: "enterprise", quota: { "requests.cpu": "1", "limits.cpu": "2", pods: "20" } },
      ]),
    );
  const rows: (string | number)[][] = [];
  await runProgram("dev", withFluxFixture(config), mockCloud()); // warm-up
  for (const count of [1, 10, 100]) {
    let resources = 0;
    const time = await seconds(async () => {
      const run = await runProgram("dev", withFluxFixture({ ...config, environments: environments(count) }), mockCloud());
      resources = run.registrations.length;
    });
    rows.push([count, resources, time, (time * 1000) / resources]);
  }
  report("Program evaluation under mocks", ["environments", "resources", "seconds", "ms per resource"], rows);
}, 300_000);
