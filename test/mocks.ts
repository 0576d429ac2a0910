/**
 * Pulumi mocks that record every registration, so tests assert on the exact resource graph the real
 * program declares. Calls that are not mocked throw, so a new invoke cannot slip by unnoticed.
 */
import * as pulumi from "@pulumi/pulumi";
import { parseAllDocuments } from "yaml";
import { DEFAULTS } from "../components/lib/configDefaults";

/** One registered resource or component, as the engine would receive it. */
export interface Registration {
  readonly type: string;
  readonly name: string;
  readonly id: string;
  readonly inputs: Record<string, unknown>;
  /** Provider reference (`<provider urn>::<provider id>`), for custom resources. */
  readonly provider?: string;
  readonly custom: boolean;
  /** Resource options, as sent to the engine. */
  readonly options: RegistrationOptions;
}

export interface RegistrationOptions {
  readonly protect: boolean;
  readonly ignoreChanges: readonly string[];
  readonly additionalSecretOutputs: readonly string[];
  /** URNs of the resources this one explicitly or implicitly waits for. */
  readonly dependencies: readonly string[];
}

interface RegisterResourceRequest {
  getType(): string;
  getName(): string;
  getProtect(): boolean | undefined;
  getIgnorechangesList(): string[];
  getAdditionalsecretoutputsList(): string[];
  getDependenciesList(): string[];
}

/** Outputs the mocked cloud returns where the program reads them back. */
export interface MockCloud {
  /**
   * An age identity already stored in the cluster's sops-age Secret from an earlier run, which the
   * Secret's outputs then report instead of what this run proposed (as ignoreChanges makes it).
   */
  readonly storedAgeIdentity?: string;
  /** Likewise, the deploy key already stored in Flux's Git credentials Secret (private key and public line). */
  readonly storedDeployKey?: { readonly identity: string; readonly publicKey: string };
  /** What `k0s kubeconfig admin` prints on the droplet. */
  readonly adminKubeconfig: string;
  readonly reservedIp: string;
  /** Outputs of other stacks, for StackReference. */
  readonly stackOutputs: Readonly<Record<string, unknown>>;
}

/** Sentinel key with which the Pulumi SDK marks secret values in mocked inputs. */
export const SECRET_SIG = "4dabf18193072939515e22adb298388d";

export function isSecret(value: unknown): boolean {
  return (
    typeof value === "object" && value !== null && (value as Record<string, unknown>)[SECRET_SIG] === "1b47061264138c4ac30d75fd1eb44270"
  );
}

export async function installMocks(stack: string, cloud: MockCloud): Promise<Registration[]> {
  const registrations: Registration[] = [];
  const options = new Map<string, RegistrationOptions>();
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        const id = `mocked::${args.type}::${args.name}`;
        registrations.push({
          type: args.type,
          name: args.name,
          id,
          inputs: args.inputs,
          provider: args.provider,
          custom: args.custom ?? false,
          options: options.get(`${args.type}::${args.name}`)!,
        });
        return { id, state: { ...args.inputs, ...stateFor(args.type, args.name, args.inputs, cloud) } };
      },
      call(args) {
        if (args.token === "kubernetes:yaml:decode") {
          return {
            result: parseAllDocuments(String(args.inputs.text))
              .map((doc) => doc.toJS())
              .filter((obj) => obj !== null),
          };
        }
        throw new Error(`unmocked call ${args.token}`);
      },
    },
    "k0s-platform",
    stack,
    false,
    "organization",
  );
  recordOptions(options);
  return registrations;
}

function stateFor(type: string, name: string, inputs: Record<string, unknown>, cloud: MockCloud): Record<string, unknown> {
  switch (type) {
    case "kubernetes:core/v1:Secret":
      return { data: secretData(inputs, cloud) };
    case "command:remote:Command":
      return { stdout: name.endsWith("-admin-kubeconfig") ? cloud.adminKubeconfig : DEFAULTS.k0sVersion, stderr: "" };
    case "digitalocean:index/reservedIp:ReservedIp":
      return { ipAddress: cloud.reservedIp };
    case "digitalocean:index/droplet:Droplet":
      return { ipv4Address: "198.51.100.20", urn: `do:droplet:${name}` };
    case "digitalocean:index/sshKey:SshKey":
      return { fingerprint: "3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa" };
    case "pulumi:pulumi:StackReference":
      return { outputs: cloud.stackOutputs, secretOutputNames: [] };
    default:
      return inputs.metadata === undefined ? {} : { metadata: { ...(inputs.metadata as object) } };
  }
}

/**
 * Mocks see only type, name and inputs; resource options travel in the gRPC request to the monitor,
 * so the monitor's registerResource is wrapped to keep them.
 */
function recordOptions(options: Map<string, RegistrationOptions>): void {
  type Register = (request: RegisterResourceRequest, callback: unknown) => void;
  const monitor = pulumi.runtime.getMonitor() as unknown as { registerResource: Register };
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (request, callback) => {
    options.set(`${request.getType()}::${request.getName()}`, {
      protect: request.getProtect() ?? false,
      ignoreChanges: request.getIgnorechangesList(),
      additionalSecretOutputs: request.getAdditionalsecretoutputsList(),
      dependencies: request.getDependenciesList(),
    });
    register(request, callback);
  };
}

/** Deeply replaces the SDK's secret wrappers with the values they hold. */
export function reveal(value: unknown): unknown {
  if (isSecret(value)) return reveal((value as { value: unknown }).value);
  if (Array.isArray(value)) return value.map(reveal);
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([key]) => key !== SECRET_SIG)
        .map(([key, inner]) => [key, reveal(inner)]),
    );
  }
  return value;
}

/** What the API server reports as a Secret's `data`: base64 `data` as given, plus `stringData` encoded. */
function secretData(inputs: Record<string, unknown>, cloud: MockCloud): Record<string, string> {
  const base64 = (value: string) => Buffer.from(value).toString("base64");
  const data = (reveal(inputs.data) ?? {}) as Record<string, string>;
  const stringData = (reveal(inputs.stringData) ?? {}) as Record<string, string>;
  const stored: Record<string, string> = {
    ...(cloud.storedAgeIdentity === undefined ? {} : { "age.agekey": base64(cloud.storedAgeIdentity) }),
    ...(cloud.storedDeployKey === undefined
      ? {}
      : { identity: base64(cloud.storedDeployKey.identity), "identity.pub": base64(cloud.storedDeployKey.publicKey) }),
  };
  // Only what this Secret holds: the age key's Secret is not the deploy key's.
  const kept = Object.fromEntries(Object.entries(stored).filter(([key]) => key in data));
  return { ...data, ...Object.fromEntries(Object.entries(stringData).map(([key, value]) => [key, base64(value)])), ...kept };
}

/** The URN of every registration, from the mock monitor (URNs encode `ParentType$Type`). */
export function registeredUrns(): Map<string, string> {
  const monitor = pulumi.runtime.getMonitor() as unknown as { getRegisteredResources(): Map<string, { urn: string; id: string | null }> };
  return new Map([...monitor.getRegisteredResources().values()].map((entry) => [entry.id ?? "", entry.urn]));
}

/** Resolves an Output's value (and whether it is secret) outside of `apply`. */
export function promiseOf<T>(output: pulumi.Output<T>): Promise<{ value: T; secret: boolean }> {
  return new Promise((resolve) => {
    pulumi.all([output, pulumi.isSecret(output)]).apply(([value, secret]) => resolve({ value: value as T, secret }));
  });
}
