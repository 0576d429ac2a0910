/**
 * The platform, as a story: read and validate the stack config; reach the stack's cluster through an
 * explicit provider; give the cluster its age key and Flux; declare each environment's namespace.
 */
import * as pulumi from "@pulumi/pulumi";
import { loadConfig } from "./components/config";
import { EnvironmentNamespace } from "./components/environmentNamespace";
import { FluxBootstrap } from "./components/fluxBootstrap";
import { LocalCluster } from "./components/localCluster";
import { RemoteK0sCluster } from "./components/remoteK0sCluster";
import { SopsAgeKey } from "./components/sopsAgeKey";

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

/** The cluster's age recipient: ours when this stack bootstraps the cluster, else the owner stack's. */
let ageRecipient: pulumi.Output<string>;
if (config.clusterOwnerStack === "") {
  const ageKey = new SopsAgeKey("sops-age-key");
  new FluxBootstrap("flux", { ...config.flux, sopsAgeIdentity: ageKey.identity }, onCluster);
  ageRecipient = ageKey.recipient;
} else {
  // Flux and the age key are cluster-wide; on a shared cluster one stack owns them (see README).
  const owner = new pulumi.StackReference(`${pulumi.getOrganization()}/${pulumi.getProject()}/${config.clusterOwnerStack}`);
  ageRecipient = owner.requireOutput("ageRecipient").apply(String);
}

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
