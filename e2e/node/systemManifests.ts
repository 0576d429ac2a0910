/**
 * The system workloads k0s applies on a single node, rendered for the node rung's test cluster of
 * k0s's components from the mapping in k0sComponents.ts: kube-proxy, kube-router (CNI and
 * NetworkPolicy) with its CNI installer, CoreDNS and metrics-server. Written from k0s's documented
 * behaviour, not from its manifests. Images are the kit's own (e2e/toolchain/images.sh), each named
 * for what it holds.
 */
import { cniConfList, effective, kubeProxyConfiguration, kubeRouterArgs, type ClusterConfig, type NodeLayout } from "./k0sComponents";

/** The kit's system images (e2e/toolchain/images.sh builds each under exactly this name). */
export const SYSTEM_IMAGES = {
  pause: "k0s-platform.local/pause:3.10.1",
  kubeProxy: "k0s-platform.local/kube-proxy:v1.36.3",
  coreDNS: "k0s-platform.local/coredns:1.14.6",
  // k0s v1.36.3+k0s.2 deploys kube-router v2.10.0, which cannot be built from served modules.
  kubeRouter: "k0s-platform.local/kube-router:v2.1.0",
  cniNode: "k0s-platform.local/cni-node:1.8.0",
  metricsServer: "k0s-platform.local/metrics-server:v0.9.0",
} as const;

type Obj = Record<string, any>;
const NS = "kube-system";
const meta = (name: string, namespaced = true, labels: Record<string, string> = {}) => ({
  name,
  ...(namespaced ? { namespace: NS } : {}),
  // RBAC names such as system:metrics-server are no label values.
  labels: { "k8s-app": name.replace(/^system:/, "").replace(/:.*$/, ""), ...labels },
});
const serviceAccount = (name: string): Obj => ({ apiVersion: "v1", kind: "ServiceAccount", metadata: meta(name) });
const clusterRole = (name: string, rules: Obj[]): Obj => ({
  apiVersion: "rbac.authorization.k8s.io/v1",
  kind: "ClusterRole",
  metadata: meta(name, false),
  rules,
});
const bindCluster = (name: string, role: string, account: string): Obj => ({
  apiVersion: "rbac.authorization.k8s.io/v1",
  kind: "ClusterRoleBinding",
  metadata: meta(name, false),
  roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: role },
  subjects: [{ kind: "ServiceAccount", name: account, namespace: NS }],
});
const read = (groups: string[], resources: string[], verbs = ["get", "list", "watch"]) => ({ apiGroups: groups, resources, verbs });
const hostPath = (name: string, path: string, type?: string) => ({ name, hostPath: { path, ...(type ? { type } : {}) } });

/** Host-network pods reach the API directly (the kubernetes Service needs kube-proxy first). */
function apiEnv(config: ClusterConfig, node: NodeLayout): Obj[] {
  const e = effective(config, node);
  return [
    { name: "KUBERNETES_SERVICE_HOST", value: e.apiAddress },
    { name: "KUBERNETES_SERVICE_PORT", value: String(e.apiPort) },
  ];
}

function daemonSet(name: string, pod: Obj): Obj {
  return {
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: meta(name),
    spec: {
      selector: { matchLabels: { "k8s-app": name } },
      template: {
        metadata: { labels: { "k8s-app": name } },
        spec: {
          hostNetwork: true,
          priorityClassName: "system-node-critical",
          serviceAccountName: name,
          tolerations: [{ operator: "Exists" }],
          ...pod,
        },
      },
    },
  };
}

/**
 * Inside a network namespace other than the machine's, nf_conntrack_max is read-only, so kube-proxy
 * must leave it alone (a workaround for this machine, ../shared/PITFALLS.md; the flag form is ignored
 * once kube-proxy reads a config file).
 */
const KUBE_PROXY_WORKAROUNDS = { conntrack: { maxPerCore: 0 } };

export function kubeProxyObjects(config: ClusterConfig, node: NodeLayout): Obj[] {
  return [
    serviceAccount("kube-proxy"),
    bindCluster("kube-proxy", "system:node-proxier", "kube-proxy"),
    {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: meta("kube-proxy"),
      data: { "config.conf": JSON.stringify({ ...kubeProxyConfiguration(config, node), ...KUBE_PROXY_WORKAROUNDS }) },
    },
    daemonSet("kube-proxy", {
      containers: [
        {
          name: "kube-proxy",
          image: SYSTEM_IMAGES.kubeProxy,
          command: ["/usr/local/bin/kube-proxy", "--config=/var/lib/kube-proxy/config.conf", `--hostname-override=${node.nodeName}`],
          env: apiEnv(config, node),
          securityContext: { privileged: true },
          volumeMounts: [
            { name: "config", mountPath: "/var/lib/kube-proxy" },
            { name: "lib-modules", mountPath: "/lib/modules", readOnly: true },
            { name: "xtables-lock", mountPath: "/run/xtables.lock" },
          ],
        },
      ],
      volumes: [
        { name: "config", configMap: { name: "kube-proxy" } },
        hostPath("lib-modules", "/lib/modules"),
        hostPath("xtables-lock", "/run/xtables.lock", "FileOrCreate"),
      ],
    }),
  ];
}

export function kubeRouterObjects(config: ClusterConfig, node: NodeLayout): Obj[] {
  return [
    serviceAccount("kube-router"),
    clusterRole("kube-router", [
      read([""], ["namespaces", "pods", "services", "nodes", "endpoints"]),
      read(["networking.k8s.io"], ["networkpolicies"]),
      read(["discovery.k8s.io"], ["endpointslices"]),
      { apiGroups: [""], resources: ["nodes"], verbs: ["get", "list", "watch", "patch", "update"] },
      { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "create", "update"] },
      { apiGroups: ["", "events.k8s.io"], resources: ["events"], verbs: ["create", "patch"] },
    ]),
    bindCluster("kube-router", "kube-router", "kube-router"),
    { apiVersion: "v1", kind: "ConfigMap", metadata: meta("kube-router-cfg"), data: { "cni-conf.json": JSON.stringify(cniConfList()) } },
    daemonSet("kube-router", {
      initContainers: [
        {
          name: "install-cni-bins",
          image: SYSTEM_IMAGES.cniNode,
          command: ["/usr/local/bin/cni-node", "install"],
          volumeMounts: [{ name: "cni-bin", mountPath: "/host/opt/cni/bin" }],
        },
        {
          name: "install-cniconf",
          image: SYSTEM_IMAGES.kubeRouter,
          command: [
            "/bin/sh",
            "-c",
            "set -e; cp /etc/kube-router/cni-conf.json /etc/cni/net.d/.10-kuberouter.tmp; mv /etc/cni/net.d/.10-kuberouter.tmp /etc/cni/net.d/10-kuberouter.conflist",
          ],
          volumeMounts: [
            { name: "cni-conf-dir", mountPath: "/etc/cni/net.d" },
            { name: "kube-router-cfg", mountPath: "/etc/kube-router" },
          ],
        },
      ],
      containers: [
        {
          name: "kube-router",
          image: SYSTEM_IMAGES.kubeRouter,
          command: ["/usr/local/bin/kube-router", ...kubeRouterArgs(config)],
          env: [
            ...apiEnv(config, node),
            { name: "NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
            { name: "KUBE_ROUTER_CNI_CONF_FILE", value: "/etc/cni/net.d/10-kuberouter.conflist" },
          ],
          securityContext: { privileged: true },
          volumeMounts: [
            { name: "lib-modules", mountPath: "/lib/modules", readOnly: true },
            { name: "cni-conf-dir", mountPath: "/etc/cni/net.d" },
            { name: "xtables-lock", mountPath: "/run/xtables.lock" },
          ],
        },
      ],
      volumes: [
        hostPath("lib-modules", "/lib/modules"),
        hostPath("cni-bin", "/opt/cni/bin", "DirectoryOrCreate"),
        hostPath("cni-conf-dir", "/etc/cni/net.d", "DirectoryOrCreate"),
        hostPath("xtables-lock", "/run/xtables.lock", "FileOrCreate"),
        { name: "kube-router-cfg", configMap: { name: "kube-router-cfg" } },
      ],
    }),
  ];
}

export function coreDNSObjects(config: ClusterConfig, node: NodeLayout): Obj[] {
  const e = effective(config, node);
  const corefile = [
    ".:53 {",
    "    errors",
    "    health {",
    "        lameduck 5s",
    "    }",
    "    ready",
    `    kubernetes ${e.clusterDomain} in-addr.arpa ip6.arpa {`,
    "        pods insecure",
    "        fallthrough in-addr.arpa ip6.arpa",
    "        ttl 30",
    "    }",
    "    prometheus :9153",
    "    forward . /etc/resolv.conf",
    "    cache 30",
    "    loop",
    "    reload",
    "    loadbalance",
    "}",
  ].join("\n");
  return [
    serviceAccount("coredns"),
    clusterRole("coredns", [
      read([""], ["endpoints", "services", "pods", "namespaces"], ["list", "watch"]),
      read(["discovery.k8s.io"], ["endpointslices"], ["list", "watch"]),
    ]),
    bindCluster("coredns", "coredns", "coredns"),
    { apiVersion: "v1", kind: "ConfigMap", metadata: meta("coredns"), data: { Corefile: corefile } },
    {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: meta("coredns"),
      spec: {
        replicas: 1,
        selector: { matchLabels: { "k8s-app": "kube-dns" } },
        template: {
          metadata: { labels: { "k8s-app": "kube-dns" } },
          spec: {
            serviceAccountName: "coredns",
            priorityClassName: "system-cluster-critical",
            dnsPolicy: "Default",
            tolerations: [{ key: "CriticalAddonsOnly", operator: "Exists" }],
            containers: [
              {
                name: "coredns",
                image: SYSTEM_IMAGES.coreDNS,
                args: ["-conf", "/etc/coredns/Corefile"],
                ports: [
                  { name: "dns", containerPort: 53, protocol: "UDP" },
                  { name: "dns-tcp", containerPort: 53, protocol: "TCP" },
                  { name: "metrics", containerPort: 9153, protocol: "TCP" },
                ],
                readinessProbe: { httpGet: { path: "/ready", port: 8181 }, periodSeconds: 2 },
                resources: { requests: { cpu: "100m", memory: "70Mi" }, limits: { memory: "170Mi" } },
                securityContext: {
                  allowPrivilegeEscalation: false,
                  capabilities: { add: ["NET_BIND_SERVICE"], drop: ["ALL"] },
                  readOnlyRootFilesystem: true,
                },
                volumeMounts: [{ name: "config", mountPath: "/etc/coredns", readOnly: true }],
              },
            ],
            volumes: [{ name: "config", configMap: { name: "coredns" } }],
          },
        },
      },
    },
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "kube-dns", namespace: NS, labels: { "k8s-app": "kube-dns" } },
      spec: {
        clusterIP: e.dnsServiceIP,
        selector: { "k8s-app": "kube-dns" },
        ports: [
          { name: "dns", port: 53, protocol: "UDP" },
          { name: "dns-tcp", port: 53, protocol: "TCP" },
          { name: "metrics", port: 9153, protocol: "TCP" },
        ],
      },
    },
  ];
}

export function metricsServerObjects(): Obj[] {
  return [
    serviceAccount("metrics-server"),
    clusterRole("system:aggregated-metrics-reader", [read(["metrics.k8s.io"], ["pods", "nodes"])]),
    clusterRole("system:metrics-server", [read([""], ["nodes/metrics"], ["get"]), read([""], ["pods", "nodes"])]),
    bindCluster("system:metrics-server", "system:metrics-server", "metrics-server"),
    bindCluster("metrics-server:system:auth-delegator", "system:auth-delegator", "metrics-server"),
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: meta("metrics-server-auth-reader"),
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "extension-apiserver-authentication-reader" },
      subjects: [{ kind: "ServiceAccount", name: "metrics-server", namespace: NS }],
    },
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: meta("metrics-server"),
      spec: { selector: { "k8s-app": "metrics-server" }, ports: [{ name: "https", port: 443, targetPort: "https", protocol: "TCP" }] },
    },
    {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: meta("metrics-server"),
      spec: {
        replicas: 1,
        selector: { matchLabels: { "k8s-app": "metrics-server" } },
        template: {
          metadata: { labels: { "k8s-app": "metrics-server" } },
          spec: {
            serviceAccountName: "metrics-server",
            priorityClassName: "system-cluster-critical",
            containers: [
              {
                name: "metrics-server",
                image: SYSTEM_IMAGES.metricsServer,
                args: [
                  "--cert-dir=/tmp",
                  "--secure-port=10250",
                  "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
                  "--kubelet-use-node-status-port",
                  "--metric-resolution=15s",
                ],
                ports: [{ name: "https", containerPort: 10250, protocol: "TCP" }],
                readinessProbe: { httpGet: { path: "/readyz", port: "https", scheme: "HTTPS" }, periodSeconds: 10 },
                securityContext: { readOnlyRootFilesystem: true, runAsNonRoot: true, runAsUser: 65534, allowPrivilegeEscalation: false },
                volumeMounts: [{ name: "tmp", mountPath: "/tmp" }],
              },
            ],
            volumes: [{ name: "tmp", emptyDir: {} }],
          },
        },
      },
    },
    {
      apiVersion: "apiregistration.k8s.io/v1",
      kind: "APIService",
      metadata: { name: "v1beta1.metrics.k8s.io", labels: { "k8s-app": "metrics-server" } },
      spec: {
        service: { name: "metrics-server", namespace: NS },
        group: "metrics.k8s.io",
        version: "v1beta1",
        insecureSkipTLSVerify: true,
        groupPriorityMinimum: 100,
        versionPriority: 100,
      },
    },
  ];
}

/** Everything, in the order it is applied. */
export function systemManifests(config: ClusterConfig, node: NodeLayout): Obj[] {
  return [
    ...kubeProxyObjects(config, node),
    ...kubeRouterObjects(config, node),
    ...coreDNSObjects(config, node),
    ...metricsServerObjects(),
  ];
}
