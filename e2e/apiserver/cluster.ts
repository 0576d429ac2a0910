/**
 * The cluster the e2e runs against: a throwaway control plane on 127.0.0.1 by default, or a
 * throwaway cluster the user names explicitly with E2E_KUBECONFIG and E2E_CONTEXT. Never the ambient
 * KUBECONFIG, so the e2e cannot touch a real cluster by accident.
 */
import * as fs from "node:fs";
import { startControlPlane } from "./controlPlane";
import { clientFromKubeconfig, KubeClient } from "../harness/kubeClient";
import { FLUX_INSTALL_MANIFEST } from "../harness/toolchain";

export interface TestCluster {
  readonly kubeconfigPath: string;
  readonly context: string;
  readonly client: KubeClient;
  /** Credential strings (PEM and base64 forms) that must never appear in plaintext state. */
  readonly credentials: readonly string[];
  stop(): Promise<void>;
}

/** The GitOps repository a user points Flux at, as the README has them set it (never fetched here). */
export const USER_REPOSITORY = "https://github.com/acme/k0s-platform-gitops";

/**
 * What a local stack needs, as `pulumi config set --path` entries, to run against this cluster: its
 * kubeconfig and context; and, for the stack that bootstraps Flux, the user's repository and Flux's
 * manifest from the toolchain, whose controllers cannot run without a node (so `up` must not wait
 * for them).
 */
export function stackSettings(cluster: TestCluster, options: { bootstrapsFlux: boolean }): Record<string, string> {
  return {
    kubeconfig: cluster.kubeconfigPath,
    kubeContext: cluster.context,
    ...(options.bootstrapsFlux
      ? { "flux.url": USER_REPOSITORY, "flux.manifestPath": FLUX_INSTALL_MANIFEST, "flux.waitForControllers": "false" }
      : {}),
  };
}

const base64 = (text: string) => Buffer.from(text).toString("base64");

export async function clusterForTests(): Promise<TestCluster> {
  const kubeconfigPath = process.env.E2E_KUBECONFIG;
  if (kubeconfigPath !== undefined) return userCluster(kubeconfigPath, process.env.E2E_CONTEXT);

  const plane = await startControlPlane();
  return {
    kubeconfigPath: plane.kubeconfigPath,
    context: plane.context,
    client: new KubeClient({ server: plane.server, tls: plane.tls }),
    credentials: [plane.tls.key.trim(), base64(plane.tls.key)],
    stop: () => plane.stop(),
  };
}

function userCluster(kubeconfigPath: string, context: string | undefined): TestCluster {
  if (context === undefined || context === "") {
    throw new Error("E2E_KUBECONFIG needs E2E_CONTEXT naming the throwaway cluster's context explicitly");
  }
  const { client, credentials } = clientFromKubeconfig(fs.readFileSync(kubeconfigPath, "utf8"), { context });
  return { kubeconfigPath, context, client, credentials, stop: () => Promise.resolve() };
}
