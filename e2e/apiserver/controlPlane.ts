// A throwaway Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager)
// on 127.0.0.1 for end-to-end tests. No kubelet and no nodes: objects are stored,
// admitted, quota-checked and garbage-collected, but no pod ever runs, so nothing
// reaches the service range or any address other than loopback.
//
// Binaries come from e2e/toolchain/build.sh and Debian's etcd-server. Certificates are minted per
// run with the openssl CLI.
import * as fs from "node:fs";
import * as https from "node:https";
import * as os from "node:os";
import * as path from "node:path";
import { freePort, once, onTermination, startDaemon, StopWaiting, tail, waitFor, type Daemon } from "../harness/processes";
import { TOOLCHAIN_BIN } from "../harness/toolchain";
import { kubeconfig, makeCerts } from "./certificates";

export interface ControlPlaneOptions {
  /** Directory holding kube-apiserver and kube-controller-manager. */
  binDir?: string;
  /** etcd binary; defaults to `etcd` on PATH, then /usr/bin/etcd. */
  etcd?: string;
  /** Kubeconfig context (and cluster) name. */
  context?: string;
  /** Bound on each start-up wait, apiserver then controllers. */
  startTimeoutMs?: number;
  /** Parent of the per-run temp dir. */
  tmpRoot?: string;
}

export interface ControlPlane {
  kubeconfigPath: string;
  context: string;
  server: string;
  /** PEM material of the admin identity, for plain HTTPS clients. */
  tls: { ca: string; cert: string; key: string };
  /** Per-run dir with etcd data, certificates and `<name>.log` of each process. */
  dir: string;
  stop(): Promise<void>;
}

const HOST = "127.0.0.1";

function get(url: string, tls: { ca: string; cert: string; key: string }): Promise<number> {
  return new Promise((resolve) => {
    const req = https.get(url, { ...tls, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(0));
  });
}

function findEtcd(explicit?: string): string {
  if (explicit) return explicit;
  for (const dir of (process.env.PATH ?? "").split(path.delimiter).concat("/usr/bin")) {
    const p = path.join(dir, "etcd");
    if (dir && fs.existsSync(p)) return p;
  }
  throw new Error("etcd not found: install Debian's etcd-server (e2e/toolchain/build.sh debian-packages does)");
}

export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const binDir = opts.binDir ?? TOOLCHAIN_BIN;
  const context = opts.context ?? "e2e";
  const startTimeoutMs = opts.startTimeoutMs ?? 90_000;
  const etcdBin = findEtcd(opts.etcd);
  for (const b of ["kube-apiserver", "kube-controller-manager"]) {
    if (!fs.existsSync(path.join(binDir, b))) throw new Error(`${b} not in ${binDir}: run e2e/toolchain/build.sh kubernetes`);
  }

  const dir = fs.mkdtempSync(path.join(opts.tmpRoot ?? os.tmpdir(), "e2e-control-plane-"));
  const procs: Daemon[] = [];
  const start = (name: string, command: string, args: string[]) => procs.push(startDaemon(name, command, args, { logDir: dir }));

  const stop = once(async () => {
    // Reverse start order: controllers first, etcd last.
    for (const p of [...procs].reverse()) await p.stop();
    fs.rmSync(dir, { recursive: true, force: true });
    deregister();
  });
  const deregister = onTermination({
    async: stop,
    sync: () => {
      for (const p of procs) p.kill();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  });

  try {
    makeCerts(dir);
    const [etcdClient, etcdPeer, apiPort, kcmPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const server = `https://${HOST}:${apiPort}`;
    const etcdUrl = `http://${HOST}:${etcdClient}`;
    const peerUrl = `http://${HOST}:${etcdPeer}`;

    start("etcd", etcdBin, [
      "--name=e2e",
      `--data-dir=${path.join(dir, "etcd")}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=e2e=${peerUrl}`,
      "--initial-cluster-state=new",
      "--logger=zap",
      "--log-level=warn",
    ]);

    const f = (name: string) => path.join(dir, name);
    start("kube-apiserver", path.join(binDir, "kube-apiserver"), [
      `--etcd-servers=${etcdUrl}`,
      `--bind-address=${HOST}`,
      `--advertise-address=${HOST}`,
      `--secure-port=${apiPort}`,
      `--cert-dir=${f("apiserver-certs")}`,
      `--tls-cert-file=${f("apiserver.crt")}`,
      `--tls-private-key-file=${f("apiserver.key")}`,
      `--client-ca-file=${f("ca.crt")}`,
      "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
      `--service-account-key-file=${f("sa.pub")}`,
      `--service-account-signing-key-file=${f("sa.key")}`,
      "--service-cluster-ip-range=10.96.0.0/24",
      "--authorization-mode=RBAC",
      "--allow-privileged=true",
      // The lease reconciler would publish 127.0.0.1 as the `kubernetes` Service's
      // endpoint, which endpoint validation rejects; nothing here routes to it anyway.
      "--endpoint-reconciler-type=none",
      "--profiling=false",
    ]);

    const tls = {
      ca: fs.readFileSync(f("ca.crt"), "utf8"),
      cert: fs.readFileSync(f("admin.crt"), "utf8"),
      key: fs.readFileSync(f("admin.key"), "utf8"),
    };
    const kcmKubeconfig = f("controller-manager.kubeconfig");
    fs.writeFileSync(kcmKubeconfig, kubeconfig(dir, server, context, "controller-manager"));
    const kubeconfigPath = f("admin.kubeconfig");
    fs.writeFileSync(kubeconfigPath, kubeconfig(dir, server, context, "admin"));

    const serving = (what: string, url: string) =>
      waitFor(
        what,
        async () => {
          const dead = procs.find((p) => p.dead());
          if (dead) throw new StopWaiting(`${dead.name} exited while waiting for ${what}`);
          return (await get(url, tls)) === 200 || undefined;
        },
        startTimeoutMs,
        250,
      );
    await serving("kube-apiserver /readyz", `${server}/readyz`);

    start("kube-controller-manager", path.join(binDir, "kube-controller-manager"), [
      // No --authentication-kubeconfig: delegated authn would wait for a front-proxy
      // CA that is never configured and log errors all along; /healthz stays open.
      `--kubeconfig=${kcmKubeconfig}`,
      `--bind-address=${HOST}`,
      `--secure-port=${kcmPort}`,
      `--cert-dir=${f("kcm-certs")}`,
      // All default controllers: quota usage, namespace finalization, service
      // account tokens and garbage collection among them.
      "--controllers=*",
      "--use-service-account-credentials=false",
      "--leader-elect=false",
      `--service-account-private-key-file=${f("sa.key")}`,
      `--root-ca-file=${f("ca.crt")}`,
      `--cluster-signing-cert-file=${f("ca.crt")}`,
      `--cluster-signing-key-file=${f("ca.key")}`,
      "--cluster-name=e2e",
      "--profiling=false",
    ]);
    // The default ServiceAccount appears once the controllers run; pods need it.
    await serving("kube-controller-manager (default ServiceAccount)", `${server}/api/v1/namespaces/default/serviceaccounts/default`);

    return { kubeconfigPath, context, server, tls, dir, stop };
  } catch (err) {
    const logs = procs.map((p) => `--- ${p.name} log, last lines ---\n${tail(p.logPath)}`).join("\n");
    await stop();
    throw new Error(`control plane failed to start: ${(err as Error).message}\n${logs}`);
  }
}
