/**
 * The platform, as a story: read and validate the stack config; reach the stack's cluster through an
 * explicit provider; give the cluster Flux and its age key; declare each environment's namespace.
 */
import * as pulumi from "@pulumi/pulumi";
import { loadConfig } from "./components/config";
import { EnvironmentNamespace } from "./components/environmentNamespace";
import { FluxBootstrap } from "./components/fluxBootstrap";
import { LocalCluster } from "./components/localCluster";
import { RemoteK0sCluster } from "./components/remoteK0sCluster";

const config = loadConfig();
const target = config.cluster;

const cluster =
  target.target === "remote"
    ? new RemoteK0sCluster("remote", {
        region: target.region,
        size: target.dropletSize,
        image: target.dropletImage,
        k0sVersion: target.k0sVersion,
        adminCidrs: target.adminCidrs,
        sshPublicKey: target.sshPublicKey,
        sshPrivateKey: target.sshPrivateKey,
        domain: target.domain,
        protect: target.protectDroplet,
      })
    : new LocalCluster("local", { kubeconfigPath: target.kubeconfigPath, context: target.context });
const remote = cluster instanceof RemoteK0sCluster ? cluster : undefined;
const onCluster = { providers: { kubernetes: cluster.provider } };

/**
 * Flux and the age key are cluster-wide, so on a shared cluster one stack owns them (see README) and
 * the others re-export its recipient.
 */
function bootstrapCluster(): pulumi.Output<string> {
  if (config.clusterOwnerStack === "") return new FluxBootstrap("flux", config.flux, onCluster).ageRecipient;
  const owner = new pulumi.StackReference(`${pulumi.getOrganization()}/${pulumi.getProject()}/${config.clusterOwnerStack}`);
  return owner.requireOutput("ageRecipient").apply(String);
}
const ageRecipient = bootstrapCluster();

const environments = config.environments.map(
  (environment) =>
    new EnvironmentNamespace(
      environment.name,
      {
        namespace: environment.name,
        client: environment.client,
        billingGroup: environment.billingGroup,
        quota: environment.quota,
        networkIsolation: environment.networkIsolation,
      },
      { ...onCluster, protect: environment.protect },
    ),
);

export { ageRecipient };
export const namespaces = pulumi.all(environments.map((environment) => environment.namespaceName));
export const kubeconfig = remote?.kubeconfig;
export const publicIp = remote?.publicIp;
