import * as fs from "node:fs";
import * as path from "node:path";
import { expect, it } from "vitest";
import { parse } from "yaml";
import { ROOT } from "./lib/program";

it("k0s/workstation.yaml keeps the API, NodePorts and metrics on 127.0.0.1", () => {
  const config = parse(fs.readFileSync(path.join(ROOT, "k0s/workstation.yaml"), "utf8"));
  expect(config).toMatchObject({ apiVersion: "k0s.k0sproject.io/v1beta1", kind: "ClusterConfig" });
  expect(config.spec.api).toMatchObject({ address: "127.0.0.1", onlyBindToAddress: true, sans: expect.arrayContaining(["127.0.0.1"]) });
  expect(config.spec.network.kubeProxy).toMatchObject({ nodePortAddresses: ["127.0.0.1/32"], metricsBindAddress: "127.0.0.1:10249" });
});
