import * as fs from "node:fs";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import {
  fluxInstallManifestUrl,
  CONTROLLER_FLAGS,
  lockDownControllers,
  onlyDefinitions,
  onlyNamespace,
  withoutNamespaceOrDefinitions,
} from "../components/lib/flux";
import { FLUX_FIXTURE } from "./lib/program";

type Manifest = {
  kind: string;
  metadata: { name: string };
  spec?: { template: { spec: { containers: { name: string; args: string[] }[] } } };
};
const fixture = (): Manifest[] => parseAllDocuments(fs.readFileSync(FLUX_FIXTURE, "utf8")).map((doc) => doc.toJS() as Manifest);
const argsOf = (objects: Manifest[], name: string) =>
  objects.find((obj) => obj.metadata.name === name && obj.kind === "Deployment")!.spec!.template.spec.containers[0].args;

describe("lockDownControllers", () => {
  const locked = () => {
    const objects = fixture();
    objects.forEach(lockDownControllers);
    return objects;
  };

  it("makes kustomize-controller and helm-controller impersonate `default` and refuse cross-namespace references", () => {
    const objects = locked();
    expect(argsOf(objects, "kustomize-controller")).toEqual([
      ...argsOf(fixture(), "kustomize-controller"),
      "--no-cross-namespace-refs=true",
      "--default-service-account=default",
      "--no-remote-bases=true",
      "--requeue-dependency=5s",
    ]);
    expect(argsOf(objects, "helm-controller")).toEqual([
      ...argsOf(fixture(), "helm-controller"),
      "--no-cross-namespace-refs=true",
      "--default-service-account=default",
      "--requeue-dependency=5s",
    ]);
    expect(CONTROLLER_FLAGS["kustomize-controller"]).not.toContain(expect.stringMatching(/sops-age-secret/));
  });

  it("replaces a flag the manifest already sets, and drops a controller-wide age key", () => {
    const objects = fixture();
    const kustomize = objects.find((obj) => obj.kind === "Deployment" && obj.metadata.name === "kustomize-controller")!;
    kustomize.spec!.template.spec.containers[0].args.push("--no-cross-namespace-refs=false", "--sops-age-secret=sops-age");
    objects.forEach(lockDownControllers);
    const args = argsOf(objects, "kustomize-controller");
    expect(args.filter((arg) => arg.startsWith("--no-cross-namespace-refs"))).toEqual(["--no-cross-namespace-refs=true"]);
    expect(args.some((arg) => arg.startsWith("--sops-age-secret"))).toBe(false);
  });

  it("leaves every other object untouched", () => {
    const objects = locked();
    const untouched = fixture();
    objects.forEach((obj, index) => {
      if (obj.kind !== "Deployment" || !(obj.metadata.name in CONTROLLER_FLAGS)) expect(obj).toEqual(untouched[index]);
    });
  });

  it("is idempotent", () => {
    const objects = locked();
    objects.forEach(lockDownControllers);
    expect(objects).toEqual(locked());
  });

  it("refuses a controller it cannot configure", () => {
    expect(() =>
      lockDownControllers({
        kind: "Deployment",
        metadata: { name: "helm-controller" },
        spec: { template: { spec: { containers: [] } } },
      }),
    ).toThrow(/helm-controller Deployment .* no container/);
  });
});

describe("onlyNamespace, onlyDefinitions and withoutNamespaceOrDefinitions", () => {
  const applied = (transformation: (obj: never) => void) =>
    fixture()
      .map((obj) => (transformation(obj as never), obj))
      .filter((obj) => obj.kind !== "List");

  it("split the manifest into its Namespace, its CRDs and everything else, losing and repeating nothing", () => {
    const namespaces = applied(onlyNamespace);
    const definitions = applied(onlyDefinitions);
    const rest = applied(withoutNamespaceOrDefinitions);
    expect(namespaces.map((obj) => `${obj.kind}/${obj.metadata.name}`)).toEqual(["Namespace/flux-system"]);
    expect(definitions.length).toBeGreaterThan(0);
    expect(definitions.every((obj) => obj.kind === "CustomResourceDefinition")).toBe(true);
    expect(rest.length + definitions.length + namespaces.length).toBe(fixture().length);
    expect(rest.some((obj) => ["Namespace", "CustomResourceDefinition"].includes(obj.kind))).toBe(false);
    expect(rest.filter((obj) => obj.kind === "Deployment")).toHaveLength(3);
  });

  it("leave an omitted object as an empty List, which ConfigFile applies as nothing", () => {
    const deployment = fixture().find((obj) => obj.kind === "Deployment")!;
    onlyNamespace(deployment);
    expect(deployment).toEqual({ apiVersion: "v1", kind: "List", metadata: {}, items: [] });
  });
});

it("downloads the pinned release's install manifest", () => {
  expect(fluxInstallManifestUrl("v2.7.3")).toBe("https://github.com/fluxcd/flux2/releases/download/v2.7.3/install.yaml");
});
