import * as fs from "node:fs";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import {
  enableControllerDecryption,
  fluxInstallManifestUrl,
  onlyNamespace,
  SOPS_AGE_SECRET_FLAG,
  withoutNamespace,
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

describe("enableControllerDecryption", () => {
  it("points kustomize-controller at the sops-age Secret", () => {
    const objects = fixture();
    objects.forEach(enableControllerDecryption);
    expect(argsOf(objects, "kustomize-controller")).toEqual([...argsOf(fixture(), "kustomize-controller"), "--sops-age-secret=sops-age"]);
    expect(SOPS_AGE_SECRET_FLAG).toBe("--sops-age-secret=sops-age");
  });

  it("leaves every other object untouched", () => {
    const objects = fixture();
    objects.forEach(enableControllerDecryption);
    const untouched = fixture();
    objects.forEach((obj, index) => {
      if (obj.metadata.name !== "kustomize-controller" || obj.kind !== "Deployment") expect(obj).toEqual(untouched[index]);
    });
  });

  it("is idempotent", () => {
    const objects = fixture();
    objects.forEach(enableControllerDecryption);
    objects.forEach(enableControllerDecryption);
    expect(argsOf(objects, "kustomize-controller").filter((arg) => arg.startsWith("--sops-age-secret"))).toHaveLength(1);
  });

  it("refuses a kustomize-controller it cannot configure", () => {
    expect(() =>
      enableControllerDecryption({
        kind: "Deployment",
        metadata: { name: "kustomize-controller" },
        spec: { template: { spec: { containers: [] } } },
      }),
    ).toThrow(/no container/);
  });
});

describe("onlyNamespace and withoutNamespace", () => {
  const applied = (transformation: (obj: never) => void) =>
    fixture()
      .map((obj) => (transformation(obj as never), obj))
      .filter((obj) => obj.kind !== "List");

  it("split the manifest into its Namespace and everything else, losing and repeating nothing", () => {
    const namespaces = applied(onlyNamespace);
    const rest = applied(withoutNamespace);
    expect(namespaces.map((obj) => `${obj.kind}/${obj.metadata.name}`)).toEqual(["Namespace/flux-system"]);
    expect(rest.length + namespaces.length).toBe(fixture().length);
    expect(rest.some((obj) => obj.kind === "Namespace")).toBe(false);
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
