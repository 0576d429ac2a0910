import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";

export interface LocalClusterArgs {
  /**
   * Path of the kubeconfig for the workstation's k0s. The provider reads it at run time, so no
   * credential from it is written to the stack state. Defaults to k0s's admin kubeconfig,
   * /var/lib/k0s/pki/admin.conf.
   */
  readonly kubeconfigPath: string;
  /** The context to use; required so the ambient current-context is never used by accident. */
  readonly context: string;
}

/**
 * The single-node k0s on the workstation (see k0s/workstation.yaml, which keeps the API and NodePorts
 * on 127.0.0.1). It only builds the explicit Kubernetes provider that every other resource uses.
 */
export class LocalCluster extends pulumi.ComponentResource {
  public readonly provider: k8s.Provider;

  constructor(name: string, args: LocalClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("k0s-platform:index:LocalCluster", name, {}, opts);
    if (args.context === "") {
      throw new pulumi.ResourceError("[context] is required: name the kubeconfig context explicitly", this);
    }

    this.provider = new k8s.Provider(
      `${name}-provider`,
      { kubeconfig: args.kubeconfigPath, context: args.context, enableServerSideApply: true },
      { parent: this },
    );

    this.registerOutputs({});
  }
}
