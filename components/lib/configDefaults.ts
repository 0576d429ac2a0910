import { DEFAULT_MIN_PREFIX } from "./validation";

/** The Pulumi project name, which prefixes every config key (`k0s-platform:<key>`). */
export const PROJECT = "k0s-platform";

/** Defaults for every optional key; `Pulumi.yaml` declares the same values (a test keeps them equal). */
export const DEFAULTS = {
  kubeconfig: "/var/lib/k0s/pki/admin.conf",
  kubeContext: "",
  region: "fra1",
  dropletSize: "s-8vcpu-16gb",
  dropletImage: "debian-12-x64",
  k0sVersion: "v1.36.3+k0s.2",
  k0sRestoredVersion: "",
  k0sSha256: "",
  k0sBinary: "",
  k0sAirgapImages: "",
  apiSans: [] as string[],
  k0sSpec: {} as Record<string, unknown>,
  adminCidrs: [] as string[],
  adminCidrMinPrefixIpv4: DEFAULT_MIN_PREFIX.ipv4,
  adminCidrMinPrefixIpv6: DEFAULT_MIN_PREFIX.ipv6,
  sshHost: "",
  sshPort: 22,
  sshUser: "root",
  sshHostKey: "",
  sshPublicKey: "",
  existingSshKey: "",
  sshPrivateKey: "",
  fluxToken: "",
  ageKeyGeneration: 1,
  keepPreviousAgeKey: true,
  sshUseAgent: false,
  sshDialAttempts: 30,
  domain: "",
  acmeEmail: "",
  protectDroplet: true,
  dropletBackups: false,
  backupSecretAccessKey: "",
  alertWebhookUrl: "",
  clusterOwnerStack: "",
  flux: {
    version: "v2.7.3",
    branch: "main",
    interval: "1m",
    waitForControllers: true,
  },
} as const;
