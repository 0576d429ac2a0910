/**
 * The platform, as a story: read and validate the stack config; reach the stack's cluster through an
 * explicit provider; give the cluster Flux and its age key; declare each environment's namespace.
 */
import * as pulumi from "@pulumi/pulumi";
import { loadConfig, PROJECT } from "./components/config";
import { capacityWarning } from "./components/lib/capacity";
import { cloudName, dnsRecords, domainWarning } from "./components/lib/cloudNames";
import { DigitalOceanHost } from "./components/digitalOceanHost";
import { EnvironmentNamespace } from "./components/environmentNamespace";
import { FluxBootstrap } from "./components/fluxBootstrap";
import { K0sOverSsh } from "./components/k0sOverSsh";
import { HostNamePolicy } from "./components/hostNamePolicy";
import { FLUX_NAMESPACE } from "./components/lib/flux";
import { missingCredentialWarnings } from "./components/lib/fluxConfig";
import { CERT_MANAGER_CONTROLLER } from "./components/lib/hostNames";
import { ClientRepository } from "./components/clientRepository";
import { LocalCluster } from "./components/localCluster";

/**
 * The program: a function, so the stack config (and the k0s version the stack installed last, read
 * from its own state) is validated before any resource is declared.
 */
export = async (): Promise<Record<string, unknown>> => {
  const config = await loadConfig();
  const target = config.cluster;
  /** What the stack's droplet, kubeconfig and cloud resources are called: never two stacks alike. */
  const stackCloudName = cloudName(pulumi.getProject(), pulumi.getStack());
  const ownerStack =
    config.clusterOwnerStack === ""
      ? undefined
      : new pulumi.StackReference(`${pulumi.getOrganization()}/${pulumi.getProject()}/${config.clusterOwnerStack}`);
  // Read before anything is declared: an owner not yet up stops the run here, not after this stack's
  // namespaces exist and its export fails.
  if (ownerStack !== undefined && (await ownerStack.getOutputValue("ageRecipient")) === undefined) {
    throw new pulumi.RunError(
      `${PROJECT}:clusterOwnerStack is "${config.clusterOwnerStack}", but that stack has no ageRecipient output yet: it installs Flux and the age key on this cluster, so bring it up first (\`pulumi up --stack ${config.clusterOwnerStack}\`)`,
    );
  }

  if (target.target === "remote") {
    // A warning, not a refusal: quotas are ceilings, and a team may knowingly overcommit.
    const overcommitted = capacityWarning(target.dropletSize, config.environments);
    if (overcommitted !== undefined) void pulumi.log.warn(overcommitted);
    // Also a warning: a host name outside `domain` may have its DNS elsewhere.
    const unresolved = domainWarning(target.domain, config.environments);
    if (unresolved !== undefined) void pulumi.log.warn(unresolved);
  }
  if (target.target !== "local") {
    // A server's repositories are a client's, usually private; the workstation's may well be public.
    for (const warning of missingCredentialWarnings(config.flux, config.environments)) void pulumi.log.warn(warning);
  }
  const droplet =
    target.target === "remote"
      ? new DigitalOceanHost("remote", {
          cloudName: stackCloudName,
          region: target.region,
          size: target.dropletSize,
          image: target.dropletImage,
          adminCidrs: target.adminCidrs,
          sshPublicKey: target.sshPublicKey,
          existingSshKey: target.existingSshKey,
          dns:
            target.domain === undefined
              ? undefined
              : {
                  domain: target.domain,
                  records: dnsRecords(
                    target.domain,
                    config.environments.flatMap((environment) => environment.hosts),
                  ),
                },
          protect: target.protectDroplet,
          backups: target.dropletBackups,
        })
      : undefined;
  const cluster =
    target.target === "local"
      ? new LocalCluster("local", { kubeconfigPath: target.kubeconfigPath, context: target.context })
      : target.target === "remote"
        ? new K0sOverSsh("remote-k0s", {
            host: droplet!.publicIp,
            kubeconfigName: stackCloudName,
            ssh: target.ssh,
            k0s: target.k0s,
            extraSans: target.domain === undefined ? [] : [`api.${target.domain}`],
            machineId: droplet!.dropletId,
            after: [droplet!],
            hostKey: droplet!.hostPublicKey,
            backup: target.backup,
          })
        : new K0sOverSsh("ssh-k0s", {
            host: target.host,
            kubeconfigName: stackCloudName,
            ssh: target.ssh,
            k0s: target.k0s,
            backup: target.backup,
          });
  const remote = cluster instanceof K0sOverSsh ? cluster : undefined;
  /** The age key of `owner` (`cluster`, or an environment): the stack's generation, and its import if any. */
  const ageKey = (owner: string) => {
    const imported = config.ageKeys.imported[owner];
    return {
      generation: config.ageKeys.generation,
      keepPrevious: config.ageKeys.keepPrevious,
      imported: imported === undefined ? undefined : pulumi.secret(imported),
    };
  };
  const onCluster = { providers: { kubernetes: cluster.provider } };

  /**
   * Flux, the age key and the host-name policy are cluster-wide, so on a shared cluster one stack owns
   * them (docs/configuration.md, clusterOwnerStack) and the others re-export its recipient.
   */
  function bootstrapCluster(): {
    ageRecipient: pulumi.Output<string>;
    fluxNamespace: pulumi.Input<string>;
    fluxDeployKey?: pulumi.Output<string>;
    fluxBootstrap: FluxBootstrap[];
  } {
    if (config.flux !== undefined) {
      new HostNamePolicy("host-names", { certManagerUser: CERT_MANAGER_CONTROLLER }, onCluster);
      const flux = new FluxBootstrap("flux", { ...config.flux, ageKey: ageKey("cluster") }, onCluster);
      return { ageRecipient: flux.ageRecipient, fluxNamespace: flux.namespace, fluxDeployKey: flux.deployKey, fluxBootstrap: [flux] };
    }
    return { ageRecipient: ownerStack!.requireOutput("ageRecipient").apply(String), fluxNamespace: FLUX_NAMESPACE, fluxBootstrap: [] };
  }
  const { ageRecipient, fluxNamespace, fluxDeployKey, fluxBootstrap } = bootstrapCluster();

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
          allowedEgress: environment.allowedEgress,
          hosts: environment.hosts,
          fluxNamespace,
          priority: environment.priority,
          ageKey: ageKey(environment.name),
        },
        { ...onCluster, protect: environment.protect },
      ),
  );

  /** Each client's own repository, applied into its environment alone (see docs/repositories.md). */
  const clientRepositories = config.environments.flatMap((environment, index) =>
    environment.repository === undefined
      ? []
      : [
          {
            environment: environment.name,
            repository: new ClientRepository(
              `${environment.name}-repository`,
              // After Flux's CRDs, the environment's tenant account and age key.
              { environment: environment.name, ...environment.repository, fluxNamespace, after: [environments[index], ...fluxBootstrap] },
              onCluster,
            ),
          },
        ],
  );

  return {
    ageRecipient,
    /** The public half of Flux's deploy key (ssh:// repositories): add it to the repository as a read-only deploy key. */
    fluxDeployKey,
    /** The public half of each client repository's deploy key (ssh:// repositories), by environment. */
    clientDeployKeys: pulumi.all(
      Object.fromEntries(
        clientRepositories.flatMap(({ environment, repository }) =>
          repository.deployKey === undefined ? [] : [[environment, repository.deployKey]],
        ),
      ),
    ),
    /** Each environment's age recipient, for `.sops.yaml` rules by path (npm run sops-config). */
    ageRecipients: pulumi.all(
      Object.fromEntries(environments.map((environment, index) => [config.environments[index].name, environment.ageRecipient])),
    ),
    namespaces: pulumi.all(environments.map((environment) => environment.namespaceName)),
    kubeconfig: remote?.kubeconfig,
    /** The k0s the host runs, as it reports itself; the next run refuses a change that skips a minor or goes back. */
    k0sVersion: remote?.k0sVersion,
    publicIp: droplet?.publicIp,
  };
};
